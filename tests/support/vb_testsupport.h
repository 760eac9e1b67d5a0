/* vb_testsupport — start REAL peers on 127.0.0.1 for integration tests
 * (child processes, a Cyrus SASL sasldb with a private config dir, an MIT KDC)
 * and clean every one of them up again.
 *
 * Test code only. Unlike library code it prints a diagnostic to stderr when
 * something fails, and aborts on out-of-memory.
 *
 * What it must never do:
 *  - sleep to synchronise: every wait polls a condition every few ms against a
 *    deadline (CLOCK_MONOTONIC);
 *  - kill anything it did not start: it signals registered pids, plus the
 *    process group each child leads, and only while that leader is not yet
 *    reaped (so the group id cannot have been reused);
 *  - let a Kerberos tool see /etc/krb5.conf: everything started by the KDC
 *    helpers runs with KRB5_CONFIG / KRB5_KDC_PROFILE set to the KDC's files.
 *
 * Exit statuses are shell-style everywhere: n for exit(n), 128+N for death by
 * signal N.
 *
 * Children get their own session (so their own process group) and
 * PR_SET_PDEATHSIG=SIGKILL, so they die even if the test binary is SIGKILLed.
 * The death signal fires when the *thread* that spawned the child ends: spawn
 * long-lived peers from the main thread (cmocka runs tests there).
 *
 * Set VB_TS_KEEP=1 in the environment to keep temp dirs (logs, configs) for a
 * post-mortem; their paths are printed at cleanup.
 *
 * A test process starts with VBROKER_PINENTRY=none (unless it is set), so no
 * broker a test starts asks through a pinentry on the tester's screen; a
 * test of the pinentry names one (vbrokerd --pinentry).
 */
#ifndef VB_TESTSUPPORT_H
#define VB_TESTSUPPORT_H

#include <stdint.h>
#include <sys/types.h>

/* ---- temp dirs ---------------------------------------------------------- */

/* Create a fresh 0700 dir /tmp/vbts-TAG-XXXXXX, registered for recursive
 * removal by vb_ts_cleanup(). The string is owned by this module and stays
 * valid until vb_ts_cleanup(). NULL on failure. */
char *vb_ts_tmpdir(const char *tag);

/* Small file helpers for configs and logs. write: create/truncate with mode,
 * 0/-1. read: malloc'd NUL-terminated contents (caller frees), NULL on error;
 * *len (may be NULL) gets the byte count. */
int vb_ts_write_file(const char *path, const char *content, mode_t mode);
char *vb_ts_read_file(const char *path, size_t *len);
/* A regular file's permission bits and its size (lstat: a symbolic link is
 * not followed); -1 when path is missing or not a regular file. */
int vb_ts_file_mode(const char *path);
long vb_ts_file_size(const char *path);

/* ---- the suite-wide secret scan (tests/scan/secret_scan.c) --------------- */

/* Record a secret this test uses (a password, a passphrase) so the scan at
 * the end of `make check` searches every log and sqlite file of the run for
 * it; returns secret. The sasldb and KDC helpers record their users'
 * passwords themselves. Temp dirs' logs and sqlite files are kept for the
 * scan at removal. Both only when tests/run-tests.sh set the variables
 * (VB_TS_SECRETS_FILE, VB_TS_SCAN_DIR). */
const char *vb_ts_note_secret(const char *secret);

/* ---- processes ---------------------------------------------------------- */

/* fork + execve argv (argv[0] is looked up in PATH when it has no '/').
 * env_extra: "K=V" entries added to / overriding the current environment; a
 * bare "K" removes K. May be NULL. stdin is /dev/null; stdout+stderr are
 * appended to log_path (created 0600), or go to /dev/null when it is NULL.
 * Returns the pid (registered for cleanup) or -1, also when exec fails. */
pid_t vb_ts_spawn(char *const argv[], char *const env_extra[], const char *log_path);

/* A daemon that detaches (forks, its parent exits) is reparented to init;
 * after vb_ts_adopt_orphans it is reparented to this process instead, so a
 * test can wait for it and stop it. vb_ts_adopt registers such a pid (read
 * from its pidfile) for cleanup like a spawned one. */
int vb_ts_adopt_orphans(void);
int vb_ts_adopt(pid_t pid, const char *name);

/* SIGTERM pid, wait up to timeout_ms for it to exit, then SIGKILL; then
 * SIGKILL whatever is left in its process group, and reap it. Returns its
 * exit status (143 = died of SIGTERM, 137 = had to be SIGKILLed), -1 if pid
 * is not an unreaped child of ours. */
int vb_ts_stop(pid_t pid, int timeout_ms);

/* Stop every registered pid still alive (SIGTERM to all, a shared 3 s
 * deadline, then SIGKILL; all by pid) and remove the registered temp dirs.
 * Idempotent; registered with atexit() on first use, and does nothing in a
 * forked copy of the test process. */
void vb_ts_cleanup(void);

/* cmocka group setup/teardown signature: calls vb_ts_cleanup(), returns 0. */
int vb_ts_group_teardown(void **state);

/* Number of registered children not yet reaped (for leak assertions). */
int vb_ts_pid_count(void);

/* Run a command to completion. stdin_text (NULL = /dev/null) is written to
 * its stdin, which is then closed. If output is not NULL, *output is always
 * set: the malloc'd combined stdout+stderr (partial on timeout; caller frees)
 * or NULL when nothing could be started. Returns the exit status, or -1 on
 * timeout (the child and its process group are killed) or spawn failure. */
int vb_ts_run(char *const argv[], char *const env_extra[], const char *stdin_text,
              char **output, int timeout_ms);

/* ---- waiting ------------------------------------------------------------ */

/* Evaluate cond(arg) now and then every ~2 ms until it returns non-zero (0)
 * or timeout_ms has passed (-1, with a diagnostic). */
int vb_ts_wait_until(int (*cond)(void *), void *arg, int timeout_ms);

/* Same, without the diagnostic: for conditions expected to stay false. */
int vb_ts_wait_until_quiet(int (*cond)(void *), void *arg, int timeout_ms);

/* 0 once a connect() to the unix socket / TCP host:port succeeds, -1 on
 * timeout. */
int vb_ts_wait_unix_socket(const char *path, int timeout_ms);
int vb_ts_wait_tcp(const char *host, int port, int timeout_ms);

/* 0 once path exists (stat succeeds; it may still be empty), -1 on timeout. */
int vb_ts_wait_file(const char *path, int timeout_ms);

/* 0 once the child pid has exited and been reaped (*status, may be NULL, gets
 * its shell-style exit status; anything it left in its process group is
 * SIGKILLed), -1 on timeout (child left running) or when pid is not our
 * child. */
int vb_ts_wait_pid_exit(pid_t pid, int timeout_ms, int *status);

/* A TCP port that was free on 127.0.0.1 a moment ago (bind port 0, read it,
 * close). Another process may take it before you do. -1 on error. */
int vb_ts_free_tcp_port(void);

/* VmRSS of pid in KiB from /proc/PID/status, -1 if unreadable. */
long vb_ts_rss_kib(pid_t pid);
/* Threads: of /proc/PID/status, -1 if unreadable. */
int vb_ts_thread_count(pid_t pid);

/* ---- throwaway accounts (root only) ------------------------------------ */

/* A local user a test plays (after fork + vb_ts_become), created with
 * useradd and removed at the end (a run that crashed leaves it behind:
 * give names that say so, with the test's pid). Waits out another
 * session's lock on /etc/passwd or /etc/group. */
typedef struct vb_ts_account {
    char name[32];
    uid_t uid;
    gid_t gid;
    int created;
    int has_home;
} vb_ts_account;

/* useradd NAME: shell nologin, no group of its own (-N); a home at home
 * (-m -d, removed with it) or none (-M); a member of group (-G) unless
 * NULL. 0/-1 (a->created says whether there is something to remove). */
int vb_ts_account_create(vb_ts_account *a, const char *name, const char *home, const char *group);
/* userdel (-r with a home); only what vb_ts_account_create made. */
void vb_ts_account_remove(vb_ts_account *a);
/* setgroups(0) + setgid + setuid to the account (in a forked child). 0/-1. */
int vb_ts_become(const vb_ts_account *a);
int vb_ts_group_create(const char *name);
void vb_ts_group_remove(const char *name);

/* ---- Cyrus SASL with a private config dir ------------------------------- */

/* Create dir if missing and write dir/APP.conf:
 *   mech_list: MECH_LIST / pwcheck_method: auxprop / auxprop_plugin: sasldb /
 *   sasldb_path: DIR/sasldb [/ keytab: KEYTAB]
 * then create each "name:password" of users (NULL-terminated, may be NULL) with
 * `saslpasswd2 -p -f DIR/sasldb -a APP -u REALM -c NAME` and chmod the db 600.
 * A server reads it after sasl_set_path(SASL_PATH_TYPE_CONFIG, dir) +
 * sasl_server_init(cb, APP), and must pass REALM as sasl_server_new's
 * user_realm (else SASL_NOUSER). 0/-1. */
int vb_ts_sasl_setup(const char *dir, const char *app, const char *realm,
                     const char *mech_list, const char *const users[],
                     const char *keytab);

/* Keep every SASL plugin mapped for the life of the process (dlopen with
 * RTLD_NODELETE). Call it before sasl_server_init/sasl_client_init in tests
 * built with SAN=1: sasl_*_done() unloads the plugins, and one of them
 * (libgs2.so of Cyrus 2.1.28) still points at 228 bytes it allocated at
 * init, which LeakSanitizer then reports as a leak from <unknown module>.
 * Pinned, that memory stays reachable, and a real leak inside a plugin is
 * reported with a symbolized stack. Returns the number of plugins pinned, or
 * -1 if none was found. */
int vb_ts_sasl_pin_plugins(void);

/* ---- a real MIT KDC ----------------------------------------------------- */

typedef struct vb_ts_kdc {
    char *dir;        /* private temp dir holding everything below */
    char *realm;
    int port;         /* UDP and TCP, 127.0.0.1 */
    pid_t pid;        /* krb5kdc, registered for cleanup */
    char *krb5_conf;  /* KRB5_CONFIG */
    char *kdc_conf;   /* KRB5_KDC_PROFILE */
    char *keytab;     /* plain path of the service keytab (KRB5_KTNAME=FILE:keytab) */
    char *ccache;     /* plain path of the client ccache (KRB5CCNAME=FILE:ccache) */
    char *rcache_dir; /* KRB5RCACHEDIR */
} vb_ts_kdc;

/* Create a realm (e.g. "LAB.TEST") in a fresh temp dir, add users
 * ("name:password", NULL-terminated; the password may not contain '"', '\\'
 * or newlines) and service principals (e.g. "vbhostd/localhost": random keys,
 * exported to kdc->keytab), start krb5kdc on a free 127.0.0.1 port and wait
 * (≤ 10 s) until kinit works. On success kdc->ccache holds a TGT for users[0]
 * (or for an internal principal when there are no users). Retries on a fresh
 * port if krb5kdc dies (port taken). On failure everything is undone and the
 * KDC log is printed. 0/-1. All fields are owned by *kdc until
 * vb_ts_kdc_stop(). */
int vb_ts_kdc_start(vb_ts_kdc *kdc, const char *realm, const char *const users[],
                    const char *const service_principals[]);

/* setenv() KRB5_CONFIG, KRB5_KDC_PROFILE, KRB5CCNAME=FILE:ccache,
 * KRB5RCACHEDIR in this process, and KRB5_KTNAME=FILE:keytab when
 * include_keytab (else KRB5_KTNAME is unset, so no keytab of an earlier KDC
 * lingers). MIT krb5 reads them when a krb5 context is created. */
void vb_ts_kdc_env(const vb_ts_kdc *kdc, int include_keytab);

/* The same variables as a NULL-terminated "K=V" array for vb_ts_spawn /
 * vb_ts_run env_extra (always including KRB5_KTNAME). Free with
 * vb_ts_env_free(). */
char **vb_ts_kdc_env_list(const vb_ts_kdc *kdc);
void vb_ts_env_free(char **env);

/* `kinit user` against this KDC (password on stdin), into kdc->ccache.
 * 0 on success; -1 with kinit's message otherwise (wrong password, ...). */
int vb_ts_kinit(const vb_ts_kdc *kdc, const char *user, const char *password);

/* Stop krb5kdc, remove its dir (unless VB_TS_KEEP) and free the fields. Safe
 * on a zeroed or already stopped struct. */
void vb_ts_kdc_stop(vb_ts_kdc *kdc);

/* ---- logs ---------------------------------------------------------------- */

/* How many times needle occurs in the file (0 when it cannot be read). */
int vb_ts_count_in_file(const char *path, const char *needle);
/* Wait until needle occurs at least at_least times in the file: 0, or -1
 * after timeout_ms. */
int vb_ts_wait_for_log(const char *path, const char *needle, int at_least, int timeout_ms);

/* A daemon's exit status after SIGTERM: 0 when clean (0 or 143); otherwise -1,
 * after printing to stderr the sanitizer or valgrind report found in its log
 * (the stack lines that leave libc and the sanitizer). */
int vb_ts_check_exit(const char *name, int status, const char *log);

/* vb_ts_spawn for a daemon under test: when VB_TEST_DAEMON_WRAPPER is set
 * (e.g. "valgrind --leak-check=full"), its words go in front of argv. */
pid_t vb_ts_spawn_daemon(char *const argv[], const char *log);

/* ---- vbhostd and vbrokerd as the integration tests start them ------------ */

/* A vbhostd: its files are DIR/NAME.conf, DIR/NAME.sock, DIR/NAME.log and
 * the state directory DIR/NAME-state. */
typedef struct vb_ts_hostd {
    char conf[256], sock[256], log[256], state[256];
    int port; /* its TCP listener on 127.0.0.1; 0: none */
    pid_t pid;
    int tls_port; /* its TLS listener on 127.0.0.1; 0: none */
} vb_ts_hostd;

/* Write DIR/NAME.conf (listen_unix, state_dir, log_level "debug", and with
 * tcp a listen_tcp on a free 127.0.0.1 port, or on h->port when already
 * set), then the lines fmt makes (a key given again there wins), and start
 * vbhostd --foreground on it; 0 once its sockets accept, else -1. */
int vb_ts_hostd_start(vb_ts_hostd *h, const char *dir, const char *name, int tcp,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The same with a listen_tls on a free 127.0.0.1 port (h->tls_port) and no
 * listen_tcp; fmt gives its cert_file, key_file, ca_file, ... */
int vb_ts_hostd_start_tls(vb_ts_hostd *h, const char *dir, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The SASL setup most vbhostd tests share: vb_ts_sasl_setup on DIR/sasl
 * for the application "vbhostd" (mechanisms, users and keytab as there). */
int vb_ts_hostd_sasl_setup(const char *dir, const char *realm, const char *mech_list,
                           const char *const users[], const char *keytab);
/* vb_ts_hostd_start on that setup: the config names sasl_conf_dir DIR/sasl
 * and sasl_realm REALM, then the lines fmt makes (a key given again wins). */
int vb_ts_hostd_start_sasl(vb_ts_hostd *h, const char *dir, const char *name, int tcp,
                           const char *realm, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Start it again on the config it was first given (after a stop). */
int vb_ts_hostd_restart(vb_ts_hostd *h);

/* A vbrokerd: socket DIR/NAME-run/sock, state DIR/NAME-state, log DIR/NAME.log. */
typedef struct vb_ts_broker {
    char sock[256], log[256], state[256];
    pid_t pid;
} vb_ts_broker;

/* Start vbrokerd --log-level debug and the options in extra (NULL-terminated;
 * may be NULL); 0 once its socket accepts, else -1. */
int vb_ts_broker_start(vb_ts_broker *b, const char *dir, const char *name,
                       const char *const extra[]);
/* Point libvbroker in this process at b, with autostart off. */
void vb_ts_broker_use(const vb_ts_broker *b);
/* vb_ts_run for a client of b (vbctl, say): VBROKER_SOCKET is b's, autostart off. */
int vb_ts_broker_run(const vb_ts_broker *b, char *const argv[], const char *stdin_text,
                     char **output, int timeout_ms);

/* The XenAPI simulator (tests/peers/xenapi_sim.py) on 127.0.0.1:port, its
 * accounts ("user:password" lines) in DIR/xen-users, its output DIR/xen.log,
 * one line per call (its --log) in DIR/xen-calls.log: its pid once it
 * accepts, else -1. */
pid_t vb_ts_xensim_start(const char *dir, int port, const char *users);

/* ---- throwaway X.509 (vb_testsupport_pki.c, libcrypto) -------------------- */

/* A certificate and its key: DIR/NAME-cert.pem and DIR/NAME-key.pem (0600). */
typedef struct vb_ts_pki {
    char cert[300], key[300];
} vb_ts_pki;

/* A self-signed CA (subject "/C=GB/O=Lab/CN=Lab CA"), valid for 30 days. */
int vb_ts_pki_ca(const char *dir, const char *name, const char *subject, vb_ts_pki *out);
/* A certificate ca issues for subject, with the subjectAltName san
 * ("IP:127.0.0.1,DNS:localhost"; NULL: none), valid from now+not_before_s to
 * now+not_after_s (both negative: expired), with the given serial. */
int vb_ts_pki_issue(const char *dir, const char *name, const vb_ts_pki *ca, const char *subject,
                    const char *san, long not_before_s, long not_after_s, long serial,
                    vb_ts_pki *out);
/* A CRL of ca at path revoking the n serials. */
int vb_ts_pki_crl(const char *path, const vb_ts_pki *ca, const long *serials, size_t n);
/* A client's pkipath directory DIR/NAME (into out, 400 bytes): cacert.pem
 * from ca, and clientcert.pem + clientkey.pem from id when it is given. */
int vb_ts_pki_dir(char *out, const char *dir, const char *name, const vb_ts_pki *ca,
                  const vb_ts_pki *id);

/* tests/peers/tls_mitm.py on 127.0.0.1:port toward 127.0.0.1:target_port,
 * in mode "tcp" (a port forward), "tls" (a man in the middle with id's
 * certificate) or "tls-up" (plain TCP in, TLS out); flag: one more option
 * ("--down-no-ems", "--up-no-ems") or NULL. Its log is DIR/fwd.log. Its
 * pid once it listens, else -1 (stop it with vb_ts_stop). */
pid_t vb_ts_tls_forwarder(const char *dir, int port, int target_port, const char *mode,
                          const vb_ts_pki *id, const char *flag);

/* base milliseconds scaled for slow runs: VB_TEST_SLOWDOWN=N multiplies every
 * deadline by N, and a daemon wrapper (valgrind) implies at least 10. */
int vb_ts_scaled_ms(int base);
/* CLOCK_MONOTONIC in milliseconds, for deadlines and measured waits. */
int64_t vb_ts_now_ms(void);

#endif
