/*
 * Bounded byte buffer. Every buffer a peer can grow has a hard maximum;
 * appending past it fails with BASE_ETOOLONG and leaves the buffer unchanged.
 */
#ifndef BASE_BUF_H
#define BASE_BUF_H

#include <stddef.h>

struct base_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
};

/* Prepares an empty buffer that never holds more than max bytes. */
void base_buf_init(struct base_buf *b, size_t max);

/* Appends n bytes. Returns 0, BASE_ETOOLONG or BASE_ENOMEM. */
int base_buf_append(struct base_buf *b, const void *p, size_t n);

/* Drops the first n bytes (all of them if n >= len). */
void base_buf_consume(struct base_buf *b, size_t n);

/* Releases the memory; the buffer may be used again after base_buf_init. */
void base_buf_free(struct base_buf *b);

#endif
