/*
 * Message bytes between DATA and the final dot. The client's bytes are
 * forwarded as they arrive, with every line end made CRLF: a bare LF or a
 * bare CR becomes CRLF. The MX then sees the same lines as mxlock, so both
 * agree on where the message ends (RFC 5321 section 4.1.1.4: the end is
 * CRLF "." CRLF) and no second message can be smuggled behind a line end
 * that one side reads differently. Dot-stuffing is left as the client sent
 * it, since both sides speak the same SMTP data encoding.
 */
#ifndef RELAY_H
#define RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct relay_data {
	bool pending_cr;	/* last input byte was CR */
	bool line_start;	/* next output byte starts a line */
	bool dot_line;		/* the current line so far is "." */
	bool done;		/* the final dot line was seen */
	uint64_t bytes;		/* output bytes so far */
};

void relay_data_init(struct relay_data *r);

/*
 * Reads up to len bytes of in, writing normalized bytes to out, which must
 * have room for 2 * len + 2 bytes. Stops right after the final CRLF.CRLF.
 * Stores the bytes written in *outlen and returns the input bytes used.
 * After the end, r->done is true and the rest of in belongs to the next
 * command.
 */
size_t relay_data_feed(struct relay_data *r, const char *in, size_t len,
		       char *out, size_t *outlen);

#endif
