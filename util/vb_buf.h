/*
 * vb_buf.h — a byte buffer for secrets: it wipes what it held when it grows
 * and when it is freed.
 *
 * realloc may move a block and leave the old copy, unwiped, in freed heap
 * memory; a buffer that carries decrypted traffic (the SASL security
 * layer's plaintext, the SSH pump's channel bytes) or a password must not.
 * Growth here allocates a new block, copies the live bytes, wipes the old
 * block and frees it; consuming the last byte wipes what was consumed;
 * vb_buf_free wipes the whole block.
 *
 * Layout: data[off .. len) are the bytes not yet consumed, data[len .. cap)
 * is free space a reader may fill (vb_buf_space, then vb_buf_added).
 */
#ifndef VB_BUF_H
#define VB_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct vb_buf {
    uint8_t *data;
    size_t off;  /* consumed up to here */
    size_t len;  /* filled up to here */
    size_t cap;
} vb_buf;

#define VB_BUF_INIT { NULL, 0, 0, 0 }

/* Make room for n more bytes after len. -1 when out of memory or n is
 * absurd; the buffer is unchanged then. */
int vb_buf_reserve(vb_buf *b, size_t n);
/* Copy n bytes in at the end (reserving as needed). */
int vb_buf_append(vb_buf *b, const void *p, size_t n);
/* Where to write up to cap - len bytes directly (after vb_buf_reserve),
 * and how many were written. */
uint8_t *vb_buf_space(vb_buf *b);
void vb_buf_added(vb_buf *b, size_t n);
/* The unconsumed bytes. */
static inline const uint8_t *vb_buf_data(const vb_buf *b)
{
    return b->data ? b->data + b->off : NULL;
}
static inline size_t vb_buf_len(const vb_buf *b)
{
    return b->len - b->off;
}
/* Drop n bytes from the front; once all are consumed, the block is wiped
 * and reused from its start. */
void vb_buf_consume(vb_buf *b, size_t n);
/* Hand the unconsumed bytes over as one malloc'd block (NULL when empty),
 * moved to its start: the caller wipes *len bytes and frees it (e.g.
 * vb_frame_free). The buffer is empty after. */
uint8_t *vb_buf_steal(vb_buf *b, size_t *len);
/* Wipe the whole block and free it; the buffer is empty and reusable. */
void vb_buf_free(vb_buf *b);

/* Tests only: replace how blocks are obtained and released (NULL, NULL
 * restores malloc and free). release sees a block after it was wiped,
 * with its size, so a test can check nothing survived. alloc must return
 * blocks free() releases (vb_buf_steal hands them to callers that free). */
void vb_buf_set_allocator(void *(*alloc)(size_t n), void (*release)(void *p, size_t n));

#endif
