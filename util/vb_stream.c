#include "vb_stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vb_msgin.h"
#include "vb_net.h"

#define READ_CHUNK 16384
/* what one queued frame costs besides its bytes (its outbuf, two malloc
 * headers), so a flood of tiny replies counts at its real weight */
#define FRAME_OVERHEAD 64

typedef struct outbuf {
    uint8_t *data;
    size_t len;
    size_t off;
    struct outbuf *next;
} outbuf;

struct vb_stream {
    vb_loop *loop;
    int fd;
    vb_msgin in;             /* plaintext in, messages out (proto/vb_msgin.h) */
    vb_sasl *sasl;
    outbuf *out_head, *out_tail;
    size_t out_bytes;
    size_t out_frames;
    vb_stream_msg_fn on_msg;
    vb_stream_close_fn on_close;
    void *data;
    int paused;
    int closing;             /* close requested; freed when not in a handler */
    int close_after_flush;
    int why_set;             /* the first failure was noted; later failures keep its reason */
    int in_handler;
    uint64_t resume_timer_id; /* pending redelivery after a pause, 0 when none */
    unsigned frame_timeout_ms; /* 0: a frame may take forever */
    uint64_t frame_timer_id;  /* armed while a frame is arriving */
    size_t out_max;           /* handle no more frames at this many queued bytes (0: no limit) */
    int out_full;             /* out_max reached: the peer's frames wait until half is written */
    unsigned stall_ms;        /* drop a peer whose owed queue has not moved this long (0: never) */
    uint64_t stall_timer_id;  /* armed while the peer owes us reading */
    uint64_t last_progress_ms; /* when the socket last took output, while the stall timer runs */
    vb_error *why;            /* the first real reason, allocated only when one comes:
                               * an idle stream carries no 520-byte error */
    /* TLS below everything (vb_stream_start_tls) */
    vb_tls *tls;
    int tls_ready;            /* the handshake is complete */
    unsigned tls_wait;        /* ... until then, the event it waits for */
    int tls_read_wants_write; /* the last TLS read needs the socket writable */
    int tls_write_wants_read; /* the last TLS write needs it readable */
    unsigned handshake_ms;
    uint64_t handshake_timer_id;
    uint64_t tls_more_timer_id; /* the session holds bytes poll cannot announce */
    vb_stream_ready_fn on_tls_ready;
};

static void stall_timeout(vb_loop *loop, uint64_t id, void *data);
static void schedule_tls_more(vb_stream *s);

/* The stall deadline runs while the peer owes us reading: its queue is full,
 * or the stream only waits to flush before it closes. */
static void stall_deadline_update(vb_stream *s)
{
    int owed = s->stall_ms && s->out_head && !s->closing && (s->out_full || s->close_after_flush);
    if (owed && !s->stall_timer_id) {
        s->last_progress_ms = vb_now_ms();
        s->stall_timer_id = vb_loop_add_timer(s->loop, s->stall_ms, stall_timeout, s);
    } else if (!owed && s->stall_timer_id) {
        vb_loop_del_timer(s->loop, s->stall_timer_id);
        s->stall_timer_id = 0;
    }
}

/* Plaintext taken in and not yet handed on as messages (a pause, a full
 * output queue): no new input until it is. */
static int held(const vb_stream *s)
{
    return vb_msgin_pending(&s->in) > 0;
}

/* Whether the stream takes the peer's bytes now. */
static int reading_allowed(const vb_stream *s)
{
    return !s->closing && !s->paused && !s->close_after_flush && !s->out_full && !held(s);
}

static void stream_update_events(vb_stream *s)
{
    unsigned ev = 0;
    if (s->tls && !s->tls_ready) { /* only the handshake, until it is done */
        vb_loop_set_events(s->loop, s->fd, s->tls_wait);
        return;
    }
    if (!s->paused && !s->close_after_flush && !s->out_full)
        ev |= VB_LOOP_READ;
    if (s->out_head)
        ev |= VB_LOOP_WRITE;
    if (s->tls_read_wants_write)
        ev |= VB_LOOP_WRITE;
    if (s->tls_write_wants_read)
        ev |= VB_LOOP_READ;
    vb_loop_set_events(s->loop, s->fd, ev);
    stall_deadline_update(s);
    schedule_tls_more(s);
}

static size_t output_weight(const vb_stream *s)
{
    return s->out_bytes + s->out_frames * FRAME_OVERHEAD;
}

static int output_over_limit(const vb_stream *s)
{
    return s->out_max && output_weight(s) >= s->out_max;
}

/* A full queue is open again once half of it is written (not at the first
 * byte below the limit, which would wake us for every reply). */
static void output_drained(vb_stream *s)
{
    if (s->out_full && output_weight(s) <= s->out_max / 2)
        s->out_full = 0;
}

/* The reason a stream gives when nothing went wrong first (or when keeping
 * the real one found no memory). */
static const vb_error closed_plainly = { VB_ERR_PEER_CLOSED, VB_DOM_RPC, "connection closed" };

static void stream_destroy(vb_stream *s)
{
    if (s->resume_timer_id)
        vb_loop_del_timer(s->loop, s->resume_timer_id);
    if (s->frame_timer_id)
        vb_loop_del_timer(s->loop, s->frame_timer_id);
    if (s->stall_timer_id)
        vb_loop_del_timer(s->loop, s->stall_timer_id);
    if (s->handshake_timer_id)
        vb_loop_del_timer(s->loop, s->handshake_timer_id);
    if (s->tls_more_timer_id)
        vb_loop_del_timer(s->loop, s->tls_more_timer_id);
    vb_loop_del_fd(s->loop, s->fd);
    vb_tls_free(s->tls);
    close(s->fd);
    if (s->on_close)
        s->on_close(s, s->why ? s->why : &closed_plainly, s->data);
    free(s->why);
    while (s->out_head) {
        outbuf *o = s->out_head;
        s->out_head = o->next;
        vb_frame_free(o->data, o->len);
        free(o);
    }
    vb_msgin_clear(&s->in);
    free(s);
}

/* Out of memory here, the owner hears the plain reason instead. */
static void stream_note_why(vb_stream *s, const vb_error *why)
{
    if (!s->closing && !s->why_set && why) {
        s->why = malloc(sizeof *s->why);
        if (s->why)
            vb_error_copy(s->why, why);
        s->why_set = 1;
    }
}

static void stream_fail(vb_stream *s, const vb_error *why)
{
    stream_note_why(s, why);
    s->closing = 1;
}

/* The byte stream is out of sync: read and handle nothing more, but write
 * the replies the frames before the bad one produced, then close. */
static void stream_fail_after_flush(vb_stream *s, const vb_error *why)
{
    stream_note_why(s, why);
    s->close_after_flush = 1;
    vb_msgin_discard(&s->in); /* what follows the bad frame is not frames */
    if (s->frame_timer_id) {
        vb_loop_del_timer(s->loop, s->frame_timer_id);
        s->frame_timer_id = 0;
    }
    if (!s->out_head)
        s->closing = 1;
}

/* Hand every complete message taken in to the owner, until the owner
 * pauses us or the peer's replies fill the output limit. */
static void deliver_plain(vb_stream *s)
{
    while (held(s) && !s->closing && !s->paused && !s->out_full && !s->close_after_flush) {
        vb_msg msg;
        vb_error err;
        int st = vb_msgin_next(&s->in, &msg, &err);
        if (st < 0) {
            stream_fail_after_flush(s, &err);
            break;
        }
        if (st == 0)
            break;
        s->on_msg(s, &msg, s->data);
        if (output_over_limit(s))
            s->out_full = 1;
    }
}

/* Bytes read, through the security layer into the input stage; *decoded
 * says how many plaintext bytes they gave. */
static int take_input(vb_stream *s, uint8_t *buf, size_t n, size_t *decoded)
{
    uint8_t *plain = buf;
    size_t dlen = n;
    vb_error err;
    if (s->sasl && vb_sasl_decode(s->sasl, buf, n, &plain, &dlen, &err) < 0) {
        stream_fail(s, &err);
        return -1;
    }
    int rc = vb_msgin_push(&s->in, plain, dlen, &err);
    if (plain != buf)
        vb_frame_free(plain, dlen);
    if (rc < 0) {
        stream_fail(s, &err);
        return -1;
    }
    *decoded = dlen;
    return 0;
}

static void frame_timeout(vb_loop *loop, uint64_t id, void *data)
{
    (void)loop;
    (void)id;
    vb_stream *s = data;
    s->frame_timer_id = 0;
    if (s->paused || held(s) || s->out_full) {
        /* the frame is complete and waits for us (a paused stream): not the peer's fault */
        s->frame_timer_id = vb_loop_add_timer(s->loop, s->frame_timeout_ms, frame_timeout, s);
        return;
    }
    vb_error err;
    vb_error_set(&err, VB_ERR_PROTOCOL, VB_DOM_RPC,
                 "a frame did not arrive completely within %u ms; disconnecting", s->frame_timeout_ms);
    stream_fail(s, &err);
    stream_destroy(s);
}

/* The deadline runs from the first byte of a frame until the frame is whole,
 * so a peer that trickles a frame in (one byte a second) cannot hold the
 * connection. decoded == 0 after a read means the SASL layer is holding part
 * of a packet: a frame is still arriving. */
static void frame_deadline_update(vb_stream *s, size_t decoded)
{
    if (!s->frame_timeout_ms || s->closing || s->close_after_flush)
        return;
    int arriving = decoded == 0 || vb_msgin_partial(&s->in);
    if (arriving && !s->frame_timer_id)
        s->frame_timer_id = vb_loop_add_timer(s->loop, s->frame_timeout_ms, frame_timeout, s);
    else if (!arriving && s->frame_timer_id) {
        vb_loop_del_timer(s->loop, s->frame_timer_id);
        s->frame_timer_id = 0;
    }
}

/* Bytes from the socket, or from the TLS session over it: 1 with *n > 0;
 * 0 when nothing is there now; -1 when the stream failed (peer closed). */
static int raw_recv(vb_stream *s, uint8_t *buf, size_t cap, size_t *n)
{
    vb_error err;
    if (s->tls) {
        s->tls_read_wants_write = 0;
        int st = vb_tls_recv(s->tls, buf, cap, n, &err);
        if (st == VB_TLS_WANT_WRITE)
            s->tls_read_wants_write = 1;
        if (st >= 0)
            return st == VB_TLS_OK;
        stream_fail(s, &err);
        return -1;
    }
    ssize_t got = recv(s->fd, buf, cap, 0);
    if (got < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (got <= 0) {
        if (got == 0)
            vb_error_set(&err, VB_ERR_PEER_CLOSED, VB_DOM_RPC, "peer closed the connection");
        else
            vb_error_set_errno(&err, errno, VB_DOM_RPC, "read");
        stream_fail(s, &err);
        return -1;
    }
    *n = (size_t)got;
    return 1;
}

/* Bytes written from buf: >= 0, -2 when the socket takes nothing now,
 * -1 when the stream failed. */
static ssize_t raw_send(vb_stream *s, const uint8_t *buf, size_t len)
{
    vb_error err;
    if (s->tls) {
        size_t sent;
        s->tls_write_wants_read = 0;
        int st = vb_tls_send(s->tls, buf, len, &sent, &err);
        if (st == VB_TLS_WANT_READ)
            s->tls_write_wants_read = 1;
        if (st == VB_TLS_OK)
            return (ssize_t)sent;
        if (st > 0)
            return -2;
        stream_fail(s, &err);
        return -1;
    }
    ssize_t n = send(s->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return -2;
    if (n < 0) {
        vb_error_set_errno(&err, errno, VB_DOM_RPC, "write");
        stream_fail(s, &err);
        return -1;
    }
    return n;
}

static void stream_read(vb_stream *s)
{
    uint8_t buf[READ_CHUNK];
    size_t n = 0;
    if (raw_recv(s, buf, sizeof buf, &n) <= 0)
        return;
    size_t decoded;
    if (take_input(s, buf, n, &decoded) == 0) {
        deliver_plain(s);
        frame_deadline_update(s, decoded);
    }
    explicit_bzero(buf, n);
}

static void stream_write(vb_stream *s)
{
    while (s->out_head) {
        outbuf *o = s->out_head;
        ssize_t n = raw_send(s, o->data + o->off, o->len - o->off);
        if (n < 0)
            return;
        o->off += (size_t)n;
        s->out_bytes -= (size_t)n;
        if (s->stall_timer_id)
            s->last_progress_ms = vb_now_ms();
        output_drained(s);
        if (o->off < o->len)
            return;
        s->out_head = o->next;
        if (!s->out_head)
            s->out_tail = NULL;
        s->out_frames--;
        output_drained(s);
        vb_frame_free(o->data, o->len);
        free(o);
    }
    if (s->close_after_flush)
        s->closing = 1;
}

/* One step of the TLS handshake; when it completes the owner hears of it. */
static void tls_handshake_step(vb_stream *s)
{
    vb_error err;
    int st = vb_tls_handshake(s->tls, &err);
    if (st < 0) {
        stream_fail(s, &err);
        return;
    }
    if (st != VB_TLS_OK) {
        s->tls_wait = st == VB_TLS_WANT_WRITE ? VB_LOOP_WRITE : VB_LOOP_READ;
        return;
    }
    s->tls_ready = 1;
    if (s->handshake_timer_id) {
        vb_loop_del_timer(s->loop, s->handshake_timer_id);
        s->handshake_timer_id = 0;
    }
    if (s->on_tls_ready)
        s->on_tls_ready(s, s->data);
}

static void handshake_timeout(vb_loop *loop, uint64_t id, void *data)
{
    (void)loop;
    (void)id;
    vb_stream *s = data;
    s->handshake_timer_id = 0;
    vb_error err;
    vb_error_set(&err, VB_ERR_TIMEOUT, VB_DOM_RPC,
                 "no TLS handshake within %u ms of connecting; disconnecting", s->handshake_ms);
    stream_fail(s, &err);
    stream_destroy(s);
}

/* Leave a handler: free the stream it closed, else set the events it waits for. */
static void handler_done(vb_stream *s)
{
    s->in_handler = 0;
    if (s->closing)
        stream_destroy(s);
    else
        stream_update_events(s);
}

/* Decrypted bytes inside the TLS session wake no poll: read them from a
 * timer once the stream may read. */
static void tls_more(vb_loop *loop, uint64_t id, void *data)
{
    (void)loop;
    (void)id;
    vb_stream *s = data;
    s->tls_more_timer_id = 0;
    s->in_handler = 1;
    if (reading_allowed(s))
        stream_read(s);
    handler_done(s);
}

static void schedule_tls_more(vb_stream *s)
{
    if (s->tls && s->tls_ready && !s->tls_more_timer_id && reading_allowed(s) &&
        vb_tls_pending(s->tls))
        s->tls_more_timer_id = vb_loop_add_timer(s->loop, 0, tls_more, s);
}

/* Frames read earlier and held back (a pause, a full output queue). */
static void deliver_held(vb_stream *s)
{
    deliver_plain(s);
    frame_deadline_update(s, 1); /* what was held may end mid-frame */
}

/* Paused, the stream asks for no input, yet epoll reports a hangup or an
 * error whatever it is asked (and again at every turn, until the pause
 * ends). A peer that is gone is noticed now, so the work it was waiting for
 * ends without it; one whose bytes are still unread waits for the pause. */
static void notice_hangup(vb_stream *s)
{
    uint8_t b;
    vb_error err;
    ssize_t n = recv(s->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
        return;
    if (n == 0)
        vb_error_set(&err, VB_ERR_PEER_CLOSED, VB_DOM_RPC, "peer closed the connection");
    else
        vb_error_set_errno(&err, errno, VB_DOM_RPC, "read");
    stream_fail(s, &err);
}

static void stream_io(vb_loop *loop, int fd, unsigned events, void *data)
{
    (void)loop;
    (void)fd;
    vb_stream *s = data;
    s->in_handler = 1;
    if (s->tls && !s->tls_ready) {
        tls_handshake_step(s);
        events = 0; /* what the owner queued goes out at the next wakeup */
    }
    /* a TLS read may wait for the socket to take bytes, a TLS write for it
     * to bring some */
    int can_write = (events & VB_LOOP_WRITE) || ((events & VB_LOOP_READ) && s->tls_write_wants_read);
    int can_read = (events & VB_LOOP_READ) || ((events & VB_LOOP_WRITE) && s->tls_read_wants_write);
    if (can_write && !s->closing) {
        int was_full = s->out_full;
        stream_write(s);
        if (was_full && !s->out_full && held(s) && !s->closing)
            deliver_held(s);
    }
    if (can_read && reading_allowed(s))
        stream_read(s);
    else if ((events & VB_LOOP_READ) && !s->closing && s->paused)
        notice_hangup(s);
    handler_done(s);
}

vb_stream *vb_stream_new(vb_loop *loop, int fd, size_t max_frame, vb_stream_msg_fn on_msg,
                         vb_stream_close_fn on_close, void *data, vb_error *err)
{
    vb_stream *s = calloc(1, sizeof *s);
    if (!s) {
        vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SYSTEM, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->fd = fd;
    s->on_msg = on_msg;
    s->on_close = on_close;
    s->data = data;
    vb_msgin_init(&s->in, max_frame);
    vb_net_set_nonblock(fd, 1);
    if (vb_loop_add_fd(loop, fd, VB_LOOP_READ, stream_io, s, err) < 0) {
        free(s);
        return NULL;
    }
    return s;
}

int vb_stream_send(vb_stream *s, uint8_t *frame, size_t len)
{
    if (s->closing) {
        vb_frame_free(frame, len);
        return -1;
    }
    if (s->sasl) {
        uint8_t *enc;
        size_t enclen;
        vb_error err;
        int rc = vb_sasl_encode(s->sasl, frame, len, &enc, &enclen, &err);
        vb_frame_free(frame, len);
        if (rc < 0) {
            stream_fail(s, &err);
            return -1;
        }
        frame = enc;
        len = enclen;
    }
    /* Nothing queued before it: write it now. Arming EPOLLOUT, waking for
     * it, writing and disarming cost three more system calls and a loop turn
     * per reply; a socket buffer almost always takes a reply whole. What it
     * does not take is queued as before (a failure closes the stream at the
     * loop's next turn, as from the queue). TLS writes stay in the handler:
     * they may need the socket readable first. */
    size_t off = 0;
    if (!s->out_head && !s->tls) {
        ssize_t n = raw_send(s, frame, len);
        if (n < 0 && n != -2) {
            vb_frame_free(frame, len);
            if (!s->in_handler)
                stream_update_events(s);
            return -1;
        }
        if (n == (ssize_t)len) {
            vb_frame_free(frame, len);
            return 0;
        }
        off = n > 0 ? (size_t)n : 0;
    }
    outbuf *o = calloc(1, sizeof *o);
    if (!o) {
        vb_frame_free(frame, len);
        return -1;
    }
    o->data = frame;
    o->len = len;
    o->off = off;
    len -= off;
    if (s->out_tail)
        s->out_tail->next = o;
    else
        s->out_head = o;
    s->out_tail = o;
    s->out_bytes += len;
    s->out_frames++;
    if (output_over_limit(s))
        s->out_full = 1;
    if (!s->in_handler)
        stream_update_events(s);
    return 0;
}

static void resume_timer(vb_loop *loop, uint64_t id, void *data);

/* Bytes already decoded but undelivered must not wait for new input. */
static void schedule_held(vb_stream *s)
{
    if (held(s) && !s->paused && !s->out_full && !s->resume_timer_id)
        s->resume_timer_id = vb_loop_add_timer(s->loop, 0, resume_timer, s);
}

void vb_stream_set_output_limit(vb_stream *s, size_t max_bytes, unsigned stall_ms)
{
    s->out_max = max_bytes;
    s->stall_ms = stall_ms;
    s->out_full = s->out_full && output_over_limit(s);
    schedule_held(s);
    if (!s->in_handler)
        stream_update_events(s);
}

void vb_stream_set_sasl(vb_stream *s, vb_sasl *sasl) { s->sasl = sasl; }
void vb_stream_set_frame_timeout(vb_stream *s, unsigned ms) { s->frame_timeout_ms = ms; }
void vb_stream_set_max_frame(vb_stream *s, size_t max_frame)
{
    vb_msgin_set_limit(&s->in, max_frame);
}

void vb_stream_pause(vb_stream *s, int paused)
{
    s->paused = paused;
    if (!s->in_handler)
        stream_update_events(s);
    schedule_held(s);
}

static void resume_timer(vb_loop *loop, uint64_t id, void *data)
{
    (void)loop;
    (void)id;
    vb_stream *s = data;
    s->resume_timer_id = 0;
    s->in_handler = 1;
    deliver_held(s);
    handler_done(s);
}

static void stall_timeout(vb_loop *loop, uint64_t id, void *data)
{
    (void)id;
    vb_stream *s = data;
    s->stall_timer_id = 0;
    uint64_t quiet = vb_now_ms() - s->last_progress_ms;
    if (quiet < s->stall_ms) { /* it read some meanwhile: give it the rest */
        s->stall_timer_id = vb_loop_add_timer(loop, s->stall_ms - quiet, stall_timeout, s);
        return;
    }
    vb_error err;
    vb_error_set(&err, VB_ERR_TIMEOUT, VB_DOM_RPC,
                 "the peer read none of its %zu queued bytes for %u ms; disconnecting",
                 s->out_bytes, s->stall_ms);
    stream_fail(s, &err);
    stream_destroy(s);
}

void vb_stream_close(vb_stream *s)
{
    s->closing = 1;
    if (!s->in_handler)
        stream_destroy(s);
}

void vb_stream_close_after_flush(vb_stream *s)
{
    s->close_after_flush = 1;
    if (!s->out_head)
        vb_stream_close(s);
    else if (!s->in_handler)
        stream_update_events(s);
}

void vb_stream_start_tls(vb_stream *s, vb_tls *tls, unsigned timeout_ms, vb_stream_ready_fn ready)
{
    s->tls = tls;
    s->tls_ready = 0;
    s->tls_wait = VB_LOOP_READ; /* a server waits for the ClientHello */
    s->on_tls_ready = ready;
    s->handshake_ms = timeout_ms;
    if (timeout_ms)
        s->handshake_timer_id = vb_loop_add_timer(s->loop, timeout_ms, handshake_timeout, s);
    if (!s->in_handler)
        stream_update_events(s);
}

vb_tls *vb_stream_tls(const vb_stream *s) { return s->tls; }
int vb_stream_fd(const vb_stream *s) { return s->fd; }
size_t vb_stream_queued_bytes(const vb_stream *s) { return s->out_bytes; }
