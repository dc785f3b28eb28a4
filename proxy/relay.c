/* Message data framing toward the MX: see relay.h. */
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

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

/*
 * Scans 16-byte blocks while each one passes unchanged. In such a block
 * every LF follows a CR, every CR precedes an LF, and no dot follows an
 * LF or starts the first line. Bit 15 of the block before and the byte
 * after the block count too. Returns the offset of the first block that
 * does not pass, where the caller goes on byte by byte.
 */
static size_t pass_blocks(const char *in, size_t len, bool line_start)
{
	size_t i = 0;
#ifdef __SSE2__
	const __m128i cr_v = _mm_set1_epi8('\r');
	const __m128i lf_v = _mm_set1_epi8('\n');
	const __m128i dot_v = _mm_set1_epi8('.');
	unsigned prev_cr = 0, prev_lf = line_start ? 1 : 0;

	while (i + 17 <= len) {
		__m128i v, cr_m, lf_m, dot_m;
		unsigned cr, lf, dot, next_lf;

		/* Most text contains none of the three bytes, so 64 of them
		   pass with one test. */
		if (prev_cr == 0 && i + 65 <= len) {
			__m128i any = _mm_setzero_si128();

			for (size_t k = 0; k < 64; k += 16) {
				__m128i w = _mm_loadu_si128((const __m128i *)
							    (const void *)(in + i + k));

				any = _mm_or_si128(any, _mm_cmpeq_epi8(w, cr_v));
				any = _mm_or_si128(any, _mm_cmpeq_epi8(w, lf_v));
				any = _mm_or_si128(any, _mm_cmpeq_epi8(w, dot_v));
			}
			if (_mm_movemask_epi8(any) == 0) {
				prev_lf = 0;
				i += 64;
				continue;
			}
		}
		v = _mm_loadu_si128((const __m128i *)(const void *)(in + i));
		cr_m = _mm_cmpeq_epi8(v, cr_v);
		lf_m = _mm_cmpeq_epi8(v, lf_v);
		dot_m = _mm_cmpeq_epi8(v, dot_v);
		cr = (unsigned)_mm_movemask_epi8(cr_m);
		lf = (unsigned)_mm_movemask_epi8(lf_m);
		dot = (unsigned)_mm_movemask_epi8(dot_m);
		next_lf = in[i + 16] == '\n' ? 1 : 0;

		if ((lf & ~(((cr << 1) | prev_cr) & 0xffffu)) != 0 ||
		    (cr & ~((lf >> 1) | (next_lf << 15))) != 0 ||
		    (dot & (((lf << 1) | prev_lf) & 0xffffu)) != 0)
			break;
		prev_cr = cr >> 15;
		prev_lf = lf >> 15;
		i += 16;
	}
	/* A block may end between CR and LF; the byte scan starts at the CR. */
	if (i > 0 && in[i - 1] == '\r')
		i--;
#else
	(void)in;
	(void)len;
	(void)line_start;
#endif
	return i;
}

size_t relay_data_pass(struct relay_data *r, const char *in, size_t len)
{
	size_t i;
	bool line_start;

	if (r->done || r->pending_cr || r->held_dot)
		return 0;

	i = pass_blocks(in, len, r->line_start);
	line_start = i == 0 ? r->line_start : in[i - 1] == '\n';
	while (i < len) {
		char c = in[i];

		if ((line_start && c == '.') || c == '\n')
			break;
		if (c == '\r') {
			if (i + 1 >= len || in[i + 1] != '\n')
				break;
			i += 2;
			line_start = true;
			continue;
		}
		line_start = false;
		i++;
	}
	if (i == 0)
		return 0;

	/* The prefix ends after a CRLF or inside a line; any line end in it
	   was a CRLF, so the current line began after one. */
	if (!r->start_crlf && memchr(in, '\n', i) != NULL)
		r->start_crlf = true;
	r->line_start = in[i - 1] == '\n';
	r->bytes += i;
	return i;
}
