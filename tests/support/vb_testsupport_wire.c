#include "vb_testsupport_wire.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vb_net.h"

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int vb_ts_wire_connect_unix(vb_ts_wire *w, const char *path)
{
    vb_error err;
    memset(w, 0, sizeof *w);
    vb_frame_reader_init(&w->rd, VB_FRAME_MAX_ABSOLUTE);
    w->fd = vb_net_connect_unix(path, &err);
    if (w->fd < 0)
        fprintf(stderr, "vb_ts_wire: connect %s: %s\n", path, err.message);
    return w->fd < 0 ? -1 : 0;
}

void vb_ts_wire_close(vb_ts_wire *w)
{
    vb_frame_reader_clear(&w->rd);
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
}

int vb_ts_wire_send(vb_ts_wire *w, const vb_msg_header *hdr, vb_ts_wire_body_fn body,
                    const void *arg)
{
    vb_enc enc;
    uint8_t *frame;
    size_t len;
    vb_error err;
    vb_enc_begin(&enc, hdr);
    if (body)
        body(&enc, arg);
    else
        vb_enc_array(&enc, 0);
    if (vb_enc_finish(&enc, VB_FRAME_MAX_ABSOLUTE, &frame, &len, &err) < 0)
        return -1;
    int rc = vb_net_write_all(w->fd, frame, len, &err);
    vb_frame_free(frame, len);
    return rc;
}

int vb_ts_wire_call(vb_ts_wire *w, uint32_t serial, uint32_t procedure, uint32_t conn_id,
                    vb_ts_wire_body_fn body, const void *arg)
{
    vb_msg_header hdr = { VB_PROG_HOST, VB_PROG_HOST_VERSION, VB_MSG_CALL, serial, procedure,
                          VB_STATUS_OK, conn_id };
    return vb_ts_wire_send(w, &hdr, body, arg);
}

/* Feed what is buffered: 1 with a message, 0 when more bytes are needed,
 * -1 on garbage. */
static int take_buffered(vb_ts_wire *w, vb_msg *out)
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
            uint8_t *payload = vb_frame_reader_take(&w->rd, &len);
            return vb_msg_decode(out, payload, len, &err) == 0 ? 1 : -1;
        }
    }
    return 0;
}

int vb_ts_wire_read(vb_ts_wire *w, int timeout_ms, vb_msg *out)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        int got = take_buffered(w, out);
        if (got != 0)
            return got;
        int64_t left = deadline - mono_ms();
        struct pollfd p = { .fd = w->fd, .events = POLLIN };
        int rc = left > 0 ? poll(&p, 1, (int)left) : 0;
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return -1;
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
