/* A raw protocol client for tests (vb_testsupport_wire.h). */
#include "vb_testsupport_wire.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vb_net.h"
#include "vb_token.h"
#include "vb_testsupport.h"

void vb_ts_wire_adopt(vb_ts_wire *w, int fd)
{
    memset(w, 0, sizeof *w);
    w->fd = fd;
    vb_frame_reader_init(&w->rd, VB_FRAME_MAX_ABSOLUTE);
}

int vb_ts_wire_connect_unix(vb_ts_wire *w, const char *path)
{
    vb_error err;
    int fd = vb_net_connect_unix(path, &err);
    vb_ts_wire_adopt(w, fd);
    if (fd < 0) {
        fprintf(stderr, "vb_ts_wire: connect to %s: %s\n", path, err.message);
        return -1;
    }
    return 0;
}

void vb_ts_wire_close(vb_ts_wire *w)
{
    vb_frame_reader_clear(&w->rd);
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
}

int vb_ts_send_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

uint8_t *vb_ts_wire_encode(const vb_msg_header *h, vb_ts_body_fn body, const void *arg,
                           size_t *len)
{
    vb_enc enc;
    vb_enc_begin(&enc, h);
    if (body)
        body(&enc, arg);
    else
        vb_enc_array(&enc, 0);
    uint8_t *frame;
    vb_error err;
    if (vb_enc_finish(&enc, VB_FRAME_MAX_ABSOLUTE, &frame, len, &err) < 0) {
        fprintf(stderr, "vb_ts_wire: cannot encode: %s\n", err.message);
        return NULL;
    }
    return frame;
}

int vb_ts_send_msg(int fd, const vb_msg_header *h, vb_ts_body_fn body, const void *arg)
{
    size_t len;
    uint8_t *frame = vb_ts_wire_encode(h, body, arg, &len);
    if (!frame)
        return -1;
    int rc = vb_ts_send_all(fd, frame, len);
    vb_frame_free(frame, len);
    return rc;
}

int vb_ts_wire_send(vb_ts_wire *w, const vb_msg_header *h, vb_ts_body_fn body, const void *arg)
{
    return vb_ts_send_msg(w->fd, h, body, arg);
}

/* a frame already read: 1 with *out; 0 none yet; -1 garbage */
static int take_frame(vb_ts_wire *w, vb_msg *out)
{
    while (w->off < w->have) {
        size_t used = 0;
        vb_error err;
        int st = vb_frame_reader_feed(&w->rd, w->buf + w->off, w->have - w->off, &used, &err);
        w->off += used;
        if (st == VB_FRAME_ERROR)
            return -1;
        if (st == VB_FRAME_READY) {
            size_t len;
            uint8_t *p = vb_frame_reader_take(&w->rd, &len);
            return vb_msg_decode(out, p, len, &err) == 0 ? 1 : (vb_msg_clear(out), -1);
        }
    }
    return 0;
}

int vb_ts_wire_read(vb_ts_wire *w, int timeout_ms, vb_msg *out)
{
    int64_t deadline = vb_ts_now_ms() + timeout_ms;
    for (;;) {
        int got = take_frame(w, out);
        if (got != 0)
            return got;
        int64_t left = deadline - vb_ts_now_ms();
        struct pollfd p = { .fd = w->fd, .events = POLLIN };
        int rc = poll(&p, 1, left > 0 ? (int)left : 0); /* 0: what has arrived already */
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return rc == 0 ? -2 : -1;
        ssize_t n = read(w->fd, w->buf, sizeof w->buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return 0;
        if (n < 0)
            return -1;
        w->have = (size_t)n;
        w->off = 0;
    }
}

int vb_ts_wire_call(vb_ts_wire *w, const vb_msg_header *h, vb_ts_body_fn body, const void *arg,
                    int timeout_ms, vb_msg *out)
{
    if (vb_ts_wire_send(w, h, body, arg) < 0)
        return 0;
    return vb_ts_wire_read(w, timeout_ms, out);
}

int vb_ts_wire_wait_closed(vb_ts_wire *w, int timeout_ms)
{
    int64_t deadline = vb_ts_now_ms() + timeout_ms;
    for (;;) {
        vb_msg m;
        int64_t left = deadline - vb_ts_now_ms();
        int rc = vb_ts_wire_read(w, left > 0 ? (int)left : 0, &m);
        if (rc == 1) {
            vb_msg_clear(&m);
            continue;
        }
        return rc == 0 ? 0 : -1;
    }
}

void vb_ts_wire_error(const vb_msg *m, int *code, int *domain)
{
    vb_error e, err;
    *code = *domain = -1;
    if (vb_msg_error_body(m, &e, &err) == 0) {
        *code = e.code;
        *domain = e.domain;
    }
}

int vb_ts_wire_host_call(vb_ts_wire *w, uint32_t serial, uint32_t procedure, uint32_t conn_id,
                         vb_ts_body_fn body, const void *arg)
{
    vb_msg_header hdr = { VB_PROG_HOST, VB_PROG_HOST_VERSION, VB_MSG_CALL, serial, procedure,
                          VB_STATUS_OK, conn_id };
    return vb_ts_wire_send(w, &hdr, body, arg);
}

int vb_ts_wire_send_msg(vb_ts_wire *w, uint32_t prog, uint32_t type, uint32_t serial,
                        uint32_t proc, vb_ts_body_fn body, const void *arg)
{
    vb_msg_header h = { prog, vb_proto_program_version(prog), type, serial, proc, VB_STATUS_OK, 0 };
    return vb_ts_wire_send(w, &h, body, arg);
}

int vb_ts_wire_readable(vb_ts_wire *w)
{
    if (w->off < w->have)
        return 1;
    struct pollfd p = { .fd = w->fd, .events = POLLIN };
    return poll(&p, 1, 0) > 0;
}

int64_t vb_ts_wire_ping_ms(vb_ts_wire *w, uint32_t serial, int timeout_ms)
{
    int64_t start = vb_ts_now_ms();
    if (vb_ts_wire_send_msg(w, VB_PROG_KEEPALIVE, VB_MSG_CALL, serial, VB_KEEPALIVE_PROC_PING,
                            NULL, NULL) < 0)
        return -1;
    for (;;) {
        int64_t left = start + timeout_ms - vb_ts_now_ms();
        vb_msg m;
        if (left <= 0 || vb_ts_wire_read(w, (int)left, &m) != 1)
            return -1;
        int mine = m.hdr.type == VB_MSG_REPLY && m.hdr.serial == serial;
        vb_msg_clear(&m);
        if (mine)
            return vb_ts_now_ms() - start;
    }
}

void vb_ts_pack_token_challenge(vb_enc *enc, const void *arg)
{
    const vb_ts_token_challenge *a = arg;
    vb_enc_array(enc, a->endpoint ? 3 : 2);
    vb_enc_str(enc, a->id);
    vb_enc_bin(enc, a->cnonce, VB_TOKEN_NONCE_LEN);
    if (a->endpoint)
        vb_enc_str(enc, a->endpoint);
}

void vb_ts_pack_empty_error(vb_enc *enc, const void *arg)
{
    (void)arg;
    vb_enc_array(enc, 3);
    vb_enc_u64(enc, VB_ERR_OK);
    vb_enc_u64(enc, VB_DOM_NONE);
    vb_enc_str(enc, "");
}
