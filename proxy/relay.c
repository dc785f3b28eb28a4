/* Message data framing toward the MX: see relay.h. */
#include <string.h>

#include "relay.h"

void relay_data_init(struct relay_data *r)
{
	r->pending_cr = false;
	r->line_start = true;
	r->start_crlf = true;	/* the DATA command line ended with CRLF */
	r->held_dot = false;
	r->done = false;
	r->bytes = 0;
}

/* Writes the held dot of a line that is not the final one. A dot the
   client did not stuff (the line began after a bare line end, or the line
   "." ends in one) gets a second dot for the MX to remove. */
static void release_dot(struct relay_data *r, bool line_ends_bare,
			char *out, size_t *o)
{
	out[(*o)++] = '.';
	if (!r->start_crlf || line_ends_bare)
		out[(*o)++] = '.';
	r->held_dot = false;
}

/* Ends the current line; crlf is true when it ended in CRLF. */
static void end_line(struct relay_data *r, bool crlf, char *out, size_t *o)
{
	if (r->held_dot) {
		if (crlf && r->start_crlf) {
			out[(*o)++] = '.';
			r->held_dot = false;
			r->done = true;
		} else {
			release_dot(r, true, out, o);
		}
	}
	out[(*o)++] = '\r';
	out[(*o)++] = '\n';
	r->line_start = true;
	r->start_crlf = crlf;
}

static void text_byte(struct relay_data *r, char c, char *out, size_t *o)
{
	if (r->line_start) {
		r->line_start = false;
		if (c == '.') {
			r->held_dot = true;
			return;
		}
	} else if (r->held_dot) {
		release_dot(r, false, out, o);
	}
	out[(*o)++] = c;
}

/* Returns how many bytes of p (n bytes) come before the first CR or LF. */
static size_t text_run(const char *p, size_t n)
{
	const char *lf = memchr(p, '\n', n);
	const char *cr = memchr(p, '\r', lf != NULL ? (size_t)(lf - p) : n);

	if (cr != NULL)
		return (size_t)(cr - p);
	return lf != NULL ? (size_t)(lf - p) : n;
}

size_t relay_data_feed(struct relay_data *r, const char *in, size_t len,
		       char *out, size_t *outlen)
{
	size_t i = 0;
	size_t o = 0;

	while (i < len && !r->done) {
		char c = in[i];

		/* Inside a line, text up to the next CR or LF passes as it is;
		   copying it in one run keeps the per-byte work for line ends. */
		if (!r->pending_cr && !r->line_start && !r->held_dot) {
			size_t run = text_run(in + i, len - i);

			memcpy(out + o, in + i, run);
			o += run;
			i += run;
			if (i == len)
				break;
			c = in[i];
		}

		if (r->pending_cr) {
			r->pending_cr = false;
			end_line(r, c == '\n', out, &o);
			if (c == '\n')
				i++;
			continue;
		}
		i++;
		if (c == '\r')
			r->pending_cr = true;
		else if (c == '\n')
			end_line(r, false, out, &o);
		else
			text_byte(r, c, out, &o);
	}
	r->bytes += o;
	*outlen = o;
	return i;
}
