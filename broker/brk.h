/*
 * brk.h — vbrokerd internals.
 *
 * One event loop (the main thread) owns every socket. A thin client's calls
 * that touch a driver (OPEN, host and domain calls, LOGIN, LOGOUT) run on
 * that session's worker (util/vb_worker.h), because drivers block (network
 * logins, prompts). A worker never touches a socket: it hands finished
 * frames to the loop through a completion queue (an eventfd wakes the
 * loop), and when a login needs credentials it posts a CRED_REQUEST
 * callback frame and waits until the loop delivers the answer, the prompt
 * times out, or the client goes away. So a pending prompt or a slow host
 * stalls only the client that asked. When the client leaves, closing its
 * driver is the worker's last job.
 *
 * Request path: accept → peer uid check → vb_stream → brk_dispatch → (STATUS
 * → the store lane → loop → reply) | (job → worker → driver → completion →
 * loop → reply). The loop itself never reads cache.db nor closes a host
 * connection: the store lane (STATUS, the purge) and the teardown lane
 * (closing idle host connections, keepalive pings) do, one thread each.
 */
#ifndef BRK_H
#define BRK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vb_accept.h"
#include "vb_cred.h"
#include "vb_driver.h"
#include "vb_loop.h"
#include "vb_msg.h"
#include "vb_offloop.h"
#include "vb_secretcache.h"
#include "vb_store.h"
#include "vb_stream.h"
#include "vb_worker.h"

#define BRK_MAX_CRED_TYPES 16
#define BRK_WORKER_IDLE_MS 2000  /* a session's worker thread exits after this long idle */
#define BRK_MAX_PRIORITY 8

typedef struct brk_server brk_server;
typedef struct brk_session brk_session;

typedef struct brk_config {
    char *socket_path;
    int listen_fd;               /* >= 0 when socket-activated (LISTEN_FDS) */
    unsigned prompt_timeout_s;   /* an unanswered credential request fails after this */
    int log_level;
    char *state_dir;             /* holds cache.db: --state-dir, else $XDG_STATE_HOME/vbroker */
    uint64_t secret_ttl_ms;      /* sliding lifetime of a cached password */
    uint64_t secret_max_ms;      /* absolute lifetime of a cached password */
    unsigned frame_timeout_s;    /* a client's frame must arrive whole this long after its first byte */
    unsigned keepalive_interval_s; /* ping idle host connections this often (0: never) */
    unsigned keepalive_count;    /* ... and give one up after this many pings unanswered */
    uint64_t upstream_idle_ms;   /* close a shared host connection unused this long */
    unsigned max_logins_per_host; /* logins in progress to one server at once (0: no limit) */
    unsigned max_clients;        /* programs connected at once */
    unsigned max_output;         /* bytes queued for a program before its calls wait */
    unsigned output_timeout_s;   /* drop a program whose full queue has not moved this long */
    char *log_file;              /* --log-file; an autostarted broker: state_dir/vbrokerd.log */
    unsigned log_max_size;       /* rotate the log file past this many bytes (one .1 kept) */
    char *pinentry_program;      /* the broker's own asker (brk_pinentry.c): a path, a name
                                    looked up in PATH, or "none"; NULL: "pinentry" */
} brk_config;

/* brk_config.c: defaults < vbrokerd.conf < command line */
void brk_config_defaults(brk_config *cfg);
/* Free the strings (socket_path, state_dir, pinentry_program). */
void brk_config_clear(brk_config *cfg);
/* 1 when --option is one of the numeric settings */
int brk_config_is_setting(const char *option);
/* --option TEXT (seconds, or a count) */
int brk_config_set_option(brk_config *cfg, const char *option, const char *text, vb_error *err);
/* Read path (must be ours and not writable by others); a missing file is
 * fine unless must_exist. */
int brk_config_load(brk_config *cfg, const char *path, int must_exist, vb_error *err);
/* (the default file: vb_path_config_file("vbrokerd.conf"), vb_paths.h) */

/* One decoded call for the worker (strings copied out of the frame). */
typedef struct brk_job {
    vb_worker_job link;          /* first: the worker's queue */
    brk_session *s;              /* a reference, dropped when the job is done */
    int close;                   /* not a call: the client left, close the driver */
    int answered;                /* CLOSE answered on the loop already: post no reply */
    vb_msg_header hdr;
    char *uri;                   /* OPEN */
    uint32_t flags;              /* OPEN */
    char *name;                  /* DOMAIN_START / DOMAIN_SHUTDOWN */
    uint64_t ttl_s;              /* LOGIN */
} brk_job;

#define BRK_MAX_FAILED_QUESTIONS 8

/* Where the broker's pinentry may ask for a program without a callback: the
 * screen the program reported when it opened (OPEN's optional screen field);
 * all NULL from an old client or a non-interactive one. */
typedef struct brk_screen {
    char *display;               /* DISPLAY */
    char *wayland_display;       /* WAYLAND_DISPLAY */
    char *tty;                   /* the terminal on the program's stdin, e.g. /dev/pts/3 */
    char *term;                  /* TERM of that terminal */
} brk_screen;

struct brk_session {
    brk_server *srv;
    vb_stream *stream;           /* loop thread only; NULL once the client left */
    char peer[96];
    int refs;                    /* loop + worker + queued completions; under srv->lock */

    /* the worker that runs this session's driver calls (util/vb_worker.h):
     * made at accept, its thread started at the first call */
    vb_worker *worker;
    int busy;                    /* a job is queued or running (loop thread) */
    pthread_mutex_t mutex;       /* drv, drv_conn, uri, info: read by the loop (STATUS) */

    /* what the client said at OPEN */
    int can_prompt;
    int non_interactive;         /* VB_OPEN_NON_INTERACTIVE: nothing is asked, by any route */
    brk_screen screen;           /* where the broker's own pinentry may ask */
    pid_t peer_pid;              /* SO_PEERCRED at accept: named in the pinentry's text */
    int cred_types[BRK_MAX_CRED_TYPES];
    size_t ncred_types;
    char *priority[BRK_MAX_PRIORITY];
    size_t npriority;

    /* the driver connection (worker thread; info read by the loop under mutex) */
    const vb_driver *drv;
    void *drv_conn;
    char *uri;                   /* the open connection's URI (status) */
    char *cred_uri;              /* the URI of the login in progress (auth.conf); worker only */
    char *client_auth_file;      /* the client's VBROKER_AUTH_FILE (OPEN/LOGIN), for a hint only:
                                  * the broker never reads the file a client names this way */
    /* questions whose last answer was rejected: their next fill skips the
     * cache and auth.conf and tells the person it is a retry (the broker
     * counts failures itself; nothing on the wire makes it skip); worker only */
    char *failed_questions[BRK_MAX_FAILED_QUESTIONS];
    size_t nfailed_questions;
    int read_only;               /* OPEN had VB_OPEN_READ_ONLY: refuse domain changes */
    vb_conn_info info;

    brk_session *next, *prev;
};

struct brk_server {
    brk_config *cfg;
    vb_loop *loop;
    int listen_fd;
    int dir_fd;                  /* the socket's checked directory (-1: socket-activated) */
    vb_acceptor *acceptor;
    uid_t uid;
    uint64_t started_ms;
    brk_session *sessions;
    unsigned nsessions;
    vb_offloop *done;            /* frames finished by workers, for the loop */
    pthread_mutex_t lock;        /* session refcounts */
    vb_store *cache;             /* cached logins (tokens); workers share it under cache_lock */
    pthread_mutex_t cache_lock;
    vb_secretcache *secrets;     /* typed passwords, in memory only, with TTLs */
    uint64_t expiry_timer;
    uint64_t keepalive_timer;
    /* the loop's own blocking chores (vb_lane): cache.db (STATUS, the
     * purge) and closing or pinging host connections; *_running: one of
     * each at a time (loop thread) */
    vb_lane *store_lane;
    vb_lane *teardown_lane;
    int purge_running, reap_running, keepalive_running;
    unsigned keepalive_died;     /* the last keepalive round's result (its lane, then the loop) */
};

int brk_server_start(brk_server *srv, brk_config *cfg, vb_loop *loop, vb_error *err);
void brk_server_stop(brk_server *srv);

/* brk_server.c */
void brk_session_ref(brk_session *s);
void brk_session_unref(brk_session *s);
/* Called by workers: queue a frame for the loop to send on s (takes the frame). */
void brk_post(brk_session *s, uint8_t *frame, size_t len, int job_done);

/* brk_worker.c */
/* The session's worker (no thread yet): 0, or -1 out of memory. */
int brk_worker_new(brk_session *s, vb_error *err);
/* Hand a decoded job to the session's worker (starting its thread if needed). */
int brk_worker_submit(brk_session *s, brk_job *job, vb_error *err);
/* The client answered a CRED_REQUEST callback (loop thread). */
void brk_worker_cred_reply(brk_session *s, const vb_msg *msg);
/* The client left: end the worker, closing the driver as its last job
 * (loop thread). */
void brk_worker_cancel(brk_session *s);
/* Worker thread: 1 once the client left. */
int brk_session_left(brk_session *s);
void brk_job_free(brk_job *job);

/* brk_creds.c: the broker's credential source for one session's login */
/* Forget which questions failed (the session ends). */
void brk_creds_forget_failures(brk_session *s);
void brk_creds_source(brk_session *s, vb_cred_source *src, int *types, size_t ntypes_max,
                      int allow_token);
/* 1 when the secret cache holds answers to req now (a probe: nothing is
 * returned; the entry's sliding deadline moves as on any use) */
int brk_creds_kept(brk_session *s, const vb_cred_request *req);
/* LOGIN and LOGOUT jobs (worker thread) */
void brk_job_login(brk_session *s, const brk_job *job);
void brk_job_logout(brk_session *s, const brk_job *job);
/* brk_nested.c: the rest of a nested URI's chain at LOGIN (the first hop is
 * brk_job_login's). What the broker keeps for each hop, for the person. */
#define BRK_LOGIN_MAX_HOPS 8
typedef struct brk_login_hop {
    char hop[1200];              /* who asked, escaped: "vbhostd on unix:/a.sock (…) → xenapi://h:443/" */
    char kept[400];              /* what the broker keeps for it, in plain words */
    int64_t until;               /* unix time it lasts at most; 0: nothing kept */
    int is_token;                /* the first hop's login token (LOGIN's own entry) */
} brk_login_hop;
typedef struct brk_login_hops {
    brk_login_hop hop[BRK_LOGIN_MAX_HOPS];
    size_t n;
} brk_login_hops;
/* 1 when the URI's name= is itself a URI that logs in somewhere (a host, or
 * a transport): vbhostd then has a login of its own to make for it. */
int brk_nested_inner(const vb_uri *uri);
/* Open the whole chain once as the next script run will (a fresh
 * connection, the first hop's kept token), asking every question beyond the
 * first hop now; note in hops what is kept for each hop that asked. */
int brk_login_chain(brk_session *s, const brk_job *job, const vb_uri *uri, brk_login_hops *hops,
                    vb_error *err);
/* STATUS: append [[server_id, identity, uri, auth_type, created, expires], ...]
 * (the logins not expired); -1 with err, enc untouched, when cache.db cannot
 * be read. Reads cache.db: not on the loop. */
int brk_encode_logins(brk_server *srv, vb_enc *enc, vb_error *err);
/* brk_worker.c, shared with brk_creds.c */
int brk_ask_client(brk_session *s, vb_cred_request *req, vb_error *err);
typedef void (*brk_body_fn)(vb_enc *enc, const void *arg);
void brk_post_reply(brk_session *s, const brk_job *job, int rc, brk_body_fn body, const void *arg,
                    const vb_error *failure);

/* brk_pinentry.c: the broker asks by itself (a program without a callback) */
/* Read OPEN's screen field [display, wayland_display, tty, term] into sc
 * (cleared first); a value that is not printable ASCII is a protocol error. */
int brk_screen_read(vb_rd *rd, brk_screen *sc, vb_error *err);
void brk_screen_clear(brk_screen *sc);
/* 1 when the broker may ask this session's questions through a pinentry:
 * the program gave no callback, is not non-interactive, reported a display
 * or a terminal, and the pinentry is not "none". */
int brk_pinentry_can_ask(const brk_session *s);
/* Ask req's items through a pinentry on the session's screen (one at a time
 * per user, bounded by --prompt-timeout): 0 with the results filled, or -1
 * (CRED_REQUIRED, AUTH_CANCELLED, TIMEOUT, PEER_CLOSED). Worker thread. */
int brk_pinentry_ask(brk_session *s, vb_cred_request *req, vb_error *err);

/* brk_dispatch.c */
void brk_dispatch(brk_session *s, vb_msg *msg);

#endif
