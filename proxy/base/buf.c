/* Bounded byte buffer: see buf.h. */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"

void base_buf_init(struct base_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

int base_buf_append(struct base_buf *b, const void *p, size_t n)
{
	size_t cap;
	char *data;

	/* Appending nothing must not reach memcpy with a NULL data pointer. */
	if (n == 0)
		return 0;
	if (n > b->max - b->len)
		return BASE_ETOOLONG;
	if (b->len + n <= b->cap) {
		memcpy(b->data + b->len, p, n);
		b->len += n;
		return 0;
	}

	cap = b->cap ? b->cap : 256;
	while (cap < b->len + n)
		cap *= 2;
	if (cap > b->max)
		cap = b->max;
	data = realloc(b->data, cap);
	if (data == NULL)
		return BASE_ENOMEM;

	b->data = data;
	b->cap = cap;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

void base_buf_consume(struct base_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

void base_buf_free(struct base_buf *b)
{
	free(b->data);
	base_buf_init(b, b->max);
}
