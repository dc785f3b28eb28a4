/* Streaming line-end normalizer and end-of-data detector: see relay.h. */
#include "relay.h"

void relay_data_init(struct relay_data *r)
{
	r->pending_cr = false;
	r->line_start = true;	/* the DATA command line ended with CRLF */
	r->dot_line = false;
	r->done = false;
	r->bytes = 0;
}

/* Emits CRLF and reports whether it ended the final "." line. */
static bool end_line(struct relay_data *r, char *out, size_t *o)
{
	bool final = r->dot_line;

	out[(*o)++] = '\r';
	out[(*o)++] = '\n';
	r->line_start = true;
	r->dot_line = false;
	return final;
}

static void emit(struct relay_data *r, char c, char *out, size_t *o)
{
	r->dot_line = r->line_start && c == '.';
	r->line_start = false;
	out[(*o)++] = c;
}

size_t relay_data_feed(struct relay_data *r, const char *in, size_t len,
		       char *out, size_t *outlen)
{
	size_t i = 0;
	size_t o = 0;

	while (i < len && !r->done) {
		char c = in[i++];

		if (r->pending_cr) {
			r->pending_cr = false;
			if (end_line(r, out, &o)) {
				/* A bare CR ended the dot line; the byte after
				   it is the next command's. */
				if (c != '\n')
					i--;
				r->done = true;
				break;
			}
			if (c == '\n')
				continue;
		}
		if (c == '\r')
			r->pending_cr = true;
		else if (c == '\n')
			r->done = end_line(r, out, &o);
		else
			emit(r, c, out, &o);
	}
	r->bytes += o;
	*outlen = o;
	return i;
}
