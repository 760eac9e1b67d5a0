#include "vb_buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void release_with_free(void *p, size_t n)
{
    (void)n;
    free(p);
}

static void *(*buf_alloc)(size_t) = malloc;
static void (*buf_release)(void *, size_t) = release_with_free;

void vb_buf_set_allocator(void *(*alloc)(size_t n), void (*release)(void *p, size_t n))
{
    buf_alloc = alloc ? alloc : malloc;
    buf_release = release ? release : release_with_free;
}

static void wipe_and_release(uint8_t *p, size_t cap)
{
    if (!p)
        return;
    explicit_bzero(p, cap);
    buf_release(p, cap);
}

int vb_buf_reserve(vb_buf *b, size_t n)
{
    if (b->cap - b->len >= n)
        return 0;
    size_t live = b->len - b->off;
    if (n > SIZE_MAX / 2 - live)
        return -1;
    size_t ncap = b->cap ? b->cap : 4096;
    while (ncap < live + n)
        ncap *= 2;
    /* never realloc: the old block is wiped before it goes back to the heap */
    uint8_t *nb = buf_alloc(ncap);
    if (!nb)
        return -1;
    if (live)
        memcpy(nb, b->data + b->off, live);
    wipe_and_release(b->data, b->cap);
    b->data = nb;
    b->off = 0;
    b->len = live;
    b->cap = ncap;
    return 0;
}

int vb_buf_append(vb_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (vb_buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

uint8_t *vb_buf_space(vb_buf *b)
{
    return b->data ? b->data + b->len : NULL;
}

void vb_buf_added(vb_buf *b, size_t n)
{
    b->len += n <= b->cap - b->len ? n : b->cap - b->len;
}

void vb_buf_consume(vb_buf *b, size_t n)
{
    b->off += n <= b->len - b->off ? n : b->len - b->off;
    if (b->off == b->len && b->len) {
        explicit_bzero(b->data, b->len);
        b->off = b->len = 0;
    }
}

uint8_t *vb_buf_steal(vb_buf *b, size_t *len)
{
    size_t live = vb_buf_len(b);
    if (!live) {
        vb_buf_free(b);
        *len = 0;
        return NULL;
    }
    uint8_t *out = b->data; /* the block itself: no second copy of the bytes */
    if (b->off) {
        memmove(out, out + b->off, live);
        explicit_bzero(out + live, b->len - live);
    }
    memset(b, 0, sizeof *b);
    *len = live;
    return out;
}

void vb_buf_free(vb_buf *b)
{
    wipe_and_release(b->data, b->cap);
    memset(b, 0, sizeof *b);
}
