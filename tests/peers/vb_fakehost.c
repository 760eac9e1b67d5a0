/* vb_fakehost — a scripted hostile vbhostd (see vb_fakehost.h). */
#include "vb_fakehost.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "vb_cred.h"
#include "vb_msg.h"
#include "vb_protocol.h"
#include "vb_testsupport.h"

struct vb_fakehost {
    vb_fakehost_script s;
    int lfd;
    char path[300];
    pthread_t thread;
    atomic_int stop;
    pthread_mutex_t mu;              /* guards the counters and rx */
    unsigned asked, answered_ok, answered_error, dropped_after_ask;
    uint8_t *rx;
    size_t rx_len, rx_cap;
};

/* one client connection */
typedef struct fconn {
    vb_fakehost *f;
    int fd;
    int asked;
    uint32_t serial;
    vb_msg_header open_call;        /* the OPEN a question interrupted */
} fconn;

static void send_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

static void send_enc(fconn *c, vb_enc *enc)
{
    uint8_t *frame;
    size_t len;
    if (vb_enc_finish(enc, VB_FRAME_MAX_POSTAUTH, &frame, &len, NULL) == 0) {
        send_all(c->fd, frame, len);
        vb_frame_free(frame, len);
    }
}

static void begin_reply(vb_enc *enc, const vb_msg_header *call)
{
    vb_msg_header h = *call;
    h.type = VB_MSG_REPLY;
    h.status = VB_STATUS_OK;
    vb_enc_begin(enc, &h);
}

static void reply_empty(fconn *c, const vb_msg_header *call)
{
    vb_enc enc;
    begin_reply(&enc, call);
    vb_enc_array(&enc, 0);
    send_enc(c, &enc);
}

static void reply_error(fconn *c, const vb_msg_header *call, int code, const char *text)
{
    vb_error e;
    uint8_t *frame;
    size_t len;
    vb_error_set(&e, code, VB_DOM_RPC, "%s", text);
    if (vb_enc_error_reply(call, VB_MSG_REPLY, &e, &frame, &len, NULL) == 0) {
        send_all(c->fd, frame, len);
        vb_frame_free(frame, len);
    }
}

static void reply_auth_list(fconn *c, const vb_msg_header *call)
{
    const vb_fakehost_script *s = &c->f->s;
    if (!s->auth) {
        reply_error(c, call, VB_ERR_NO_SUPPORT, "procedure 1 of program 2 is not supported");
        return;
    }
    vb_enc enc;
    begin_reply(&enc, call);
    vb_enc_array(&enc, 3);
    vb_enc_array(&enc, 1);
    vb_enc_str(&enc, s->auth);
    vb_enc_str(&enc, s->server_id ? s->server_id : "fakefakefakefakefakefakefakefake");
    vb_enc_array(&enc, 1);
    vb_enc_str(&enc, VB_FEATURE_CONN_ID);
    send_enc(c, &enc);
}

/* The question: [service, hops, retry, items, id, kind, target]. */
static void ask(fconn *c, const vb_msg_header *call)
{
    const vb_fakehost_script *s = &c->f->s;
    vb_msg_header h = { VB_PROG_HOST, VB_PROG_HOST_VERSION, VB_MSG_CALLBACK, 9000 + ++c->serial,
                        VB_HOST_PROC_CRED_FILL, VB_STATUS_OK,
                        (call ? call->conn_id : 0) + s->conn_id_offset };
    vb_enc enc;
    vb_enc_begin(&enc, &h);
    vb_enc_array(&enc, 7);
    vb_enc_str(&enc, s->service ? s->service : "vbhostd on fake");
    vb_enc_array(&enc, 0);
    vb_enc_bool(&enc, 0);
    vb_enc_array(&enc, 2);
    vb_enc_array(&enc, 4);
    vb_enc_u64(&enc, VB_CRED_AUTHNAME);
    vb_enc_str(&enc, "Username");
    vb_enc_nil(&enc);
    vb_enc_nil(&enc);
    vb_enc_array(&enc, 4);
    vb_enc_u64(&enc, VB_CRED_PASSPHRASE);
    vb_enc_str(&enc, "Password");
    vb_enc_nil(&enc);
    vb_enc_nil(&enc);
    vb_enc_u64(&enc, h.serial);
    vb_enc_str(&enc, s->kind);
    if (s->target_host) {
        vb_enc_array(&enc, 4);
        vb_enc_str(&enc, s->kind);
        vb_enc_str(&enc, s->target_host);
        vb_enc_u64(&enc, s->target_port);
        vb_enc_str(&enc, s->target_user);
    } else {
        vb_enc_nil(&enc);
    }
    /* counted before it goes out: the client may answer (or drop us) and
     * the test look at the count before this thread runs again */
    c->asked = 1;
    pthread_mutex_lock(&c->f->mu);
    c->f->asked++;
    pthread_mutex_unlock(&c->f->mu);
    send_enc(c, &enc);
}

static void handle_call(fconn *c, const vb_msg *m)
{
    const vb_fakehost_script *s = &c->f->s;
    const vb_msg_header *h = &m->hdr;
    if (h->program == VB_PROG_KEEPALIVE) {
        if (h->procedure == VB_KEEPALIVE_PROC_PING) {
            vb_msg_header p = *h;
            p.procedure = VB_KEEPALIVE_PROC_PONG;
            vb_enc enc;
            vb_enc_begin(&enc, &p);
            vb_enc_array(&enc, 0);
            send_enc(c, &enc);
        }
        return;
    }
    switch (h->procedure) {
    case VB_HOST_PROC_AUTH_LIST:
        if (s->when == VB_FAKEHOST_ASK_ON_AUTH_LIST)
            ask(c, h);
        else
            reply_auth_list(c, h);
        break;
    case VB_HOST_PROC_AUTH_SASL_INIT:
        if (s->when == VB_FAKEHOST_ASK_ON_SASL_INIT)
            ask(c, h);
        else
            reply_error(c, h, VB_ERR_AUTH_FAILED, "no");
        break;
    case VB_HOST_PROC_AUTH_PEER:
        reply_empty(c, h);
        break;
    case VB_HOST_PROC_OPEN:
        if (s->when == VB_FAKEHOST_ASK_ON_OPEN) {
            c->open_call = *h;
            ask(c, h); /* the OPEN reply follows the answer (handle_answer) */
        } else {
            reply_empty(c, h);
            if (s->when == VB_FAKEHOST_ASK_AFTER_OPEN)
                ask(c, NULL);
        }
        break;
    case VB_HOST_PROC_CLOSE:
        reply_empty(c, h);
        break;
    case VB_HOST_PROC_LIST_DOMAINS: {
        vb_enc enc;
        begin_reply(&enc, h);
        vb_enc_array(&enc, 1);
        vb_enc_array(&enc, 0);
        send_enc(c, &enc);
        break;
    }
    default:
        reply_error(c, h, VB_ERR_NO_SUPPORT, "not supported by the fake");
    }
}

/* The OPEN the question interrupted gets its reply after the answer. */
static void handle_answer(fconn *c, const vb_msg *m)
{
    pthread_mutex_lock(&c->f->mu);
    if (m->hdr.status == VB_STATUS_OK)
        c->f->answered_ok++;
    else
        c->f->answered_error++;
    pthread_mutex_unlock(&c->f->mu);
    if (c->f->s.when == VB_FAKEHOST_ASK_ON_OPEN && c->open_call.procedure == VB_HOST_PROC_OPEN)
        reply_error(c, &c->open_call, VB_ERR_AUTH_FAILED, "the fake server is done");
}

static void record(vb_fakehost *f, const uint8_t *p, size_t n)
{
    pthread_mutex_lock(&f->mu);
    if (f->rx_len + n > f->rx_cap) {
        size_t cap = (f->rx_len + n) * 2;
        uint8_t *grown = realloc(f->rx, cap);
        if (!grown) {
            pthread_mutex_unlock(&f->mu);
            return;
        }
        f->rx = grown;
        f->rx_cap = cap;
    }
    memcpy(f->rx + f->rx_len, p, n);
    f->rx_len += n;
    pthread_mutex_unlock(&f->mu);
}

static void serve(vb_fakehost *f, int fd)
{
    fconn c = { f, fd, 0, 0, { 0, 0, 0, 0, 0, 0, 0 } };
    vb_frame_reader rd;
    vb_frame_reader_init(&rd, VB_FRAME_MAX_POSTAUTH);
    while (!atomic_load(&f->stop)) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 20) <= 0)
            continue;
        uint8_t buf[8192];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            if (c.asked) {
                pthread_mutex_lock(&f->mu);
                f->dropped_after_ask++;
                pthread_mutex_unlock(&f->mu);
            }
            break;
        }
        record(f, buf, (size_t)n);
        size_t off = 0;
        while (off < (size_t)n) {
            size_t used;
            int st = vb_frame_reader_feed(&rd, buf + off, (size_t)n - off, &used, NULL);
            off += used;
            if (st == VB_FRAME_ERROR)
                goto out;
            if (st != VB_FRAME_READY)
                continue;
            size_t len;
            uint8_t *payload = vb_frame_reader_take(&rd, &len);
            vb_msg m;
            if (vb_msg_decode(&m, payload, len, NULL) < 0)
                goto out;
            if (m.hdr.type == VB_MSG_CALLBACK_REPLY)
                handle_answer(&c, &m);
            else if (m.hdr.type == VB_MSG_CALL || m.hdr.type == VB_MSG_EVENT)
                handle_call(&c, &m);
            vb_msg_clear(&m);
        }
    }
out:
    vb_frame_reader_clear(&rd);
    close(fd);
}

static void *fake_main(void *arg)
{
    vb_fakehost *f = arg;
    while (!atomic_load(&f->stop)) {
        struct pollfd p = { .fd = f->lfd, .events = POLLIN };
        if (poll(&p, 1, 20) <= 0)
            continue;
        int fd = accept(f->lfd, NULL, NULL);
        if (fd >= 0)
            serve(f, fd);
    }
    return NULL;
}

static vb_fakehost *start(int lfd, const char *path, const vb_fakehost_script *script)
{
    vb_fakehost *f = calloc(1, sizeof *f);
    if (!f || listen(lfd, 8) < 0) {
        fprintf(stderr, "vb_fakehost: listen: %s\n", strerror(errno));
        close(lfd);
        free(f);
        return NULL;
    }
    f->s = *script;
    f->lfd = lfd;
    snprintf(f->path, sizeof f->path, "%s", path ? path : "");
    pthread_mutex_init(&f->mu, NULL);
    if (pthread_create(&f->thread, NULL, fake_main, f) != 0) {
        close(lfd);
        free(f);
        return NULL;
    }
    return f;
}

vb_fakehost *vb_fakehost_start_unix(const char *path, const vb_fakehost_script *script)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sa.sun_path)
        return NULL;
    strcpy(sa.sun_path, path);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        fprintf(stderr, "vb_fakehost: bind %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    return start(fd, path, script);
}

vb_fakehost *vb_fakehost_start_tcp(int port, const vb_fakehost_script *script)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        fprintf(stderr, "vb_fakehost: bind 127.0.0.1:%d: %s\n", port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    return start(fd, NULL, script);
}

static unsigned counter(vb_fakehost *f, const unsigned *field)
{
    pthread_mutex_lock(&f->mu);
    unsigned v = *field;
    pthread_mutex_unlock(&f->mu);
    return v;
}

typedef struct wait_arg {
    vb_fakehost *f;
    const unsigned *fields[2];
} wait_arg;

static int counters_set(void *arg)
{
    wait_arg *w = arg;
    unsigned sum = 0;
    for (int i = 0; i < 2; i++)
        sum += w->fields[i] ? counter(w->f, w->fields[i]) : 0;
    return sum > 0;
}

static int wait_counters(vb_fakehost *f, const unsigned *a, const unsigned *b, int timeout_ms)
{
    wait_arg w = { f, { a, b } };
    return vb_ts_wait_until_quiet(counters_set, &w, timeout_ms);
}

int vb_fakehost_wait_dropped(vb_fakehost *f, int timeout_ms)
{
    return wait_counters(f, &f->dropped_after_ask, NULL, timeout_ms);
}

int vb_fakehost_wait_asked(vb_fakehost *f, int timeout_ms)
{
    return wait_counters(f, &f->asked, NULL, timeout_ms);
}

int vb_fakehost_wait_answered(vb_fakehost *f, int timeout_ms)
{
    return wait_counters(f, &f->answered_ok, &f->answered_error, timeout_ms);
}

unsigned vb_fakehost_asked(vb_fakehost *f) { return counter(f, &f->asked); }
unsigned vb_fakehost_answered_ok(vb_fakehost *f) { return counter(f, &f->answered_ok); }
unsigned vb_fakehost_answered_error(vb_fakehost *f) { return counter(f, &f->answered_error); }

int vb_fakehost_received(vb_fakehost *f, const char *needle)
{
    size_t n = strlen(needle);
    int found = 0;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; !found && n && f->rx_len >= n && i <= f->rx_len - n; i++)
        found = memcmp(f->rx + i, needle, n) == 0;
    pthread_mutex_unlock(&f->mu);
    return found;
}

void vb_fakehost_stop(vb_fakehost *f)
{
    if (!f)
        return;
    atomic_store(&f->stop, 1);
    pthread_join(f->thread, NULL);
    close(f->lfd);
    if (f->path[0])
        unlink(f->path);
    pthread_mutex_destroy(&f->mu);
    free(f->rx);
    free(f);
}
