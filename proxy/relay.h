/*
 * Message bytes between DATA and the final dot. Only CRLF "." CRLF ends
 * the message (RFC 5321 section 4.1.1.4). A bare LF or bare CR is not a
 * line end to the client's SMTP framing, so it must not become one that
 * the MX acts on: mxlock sends it as CRLF, and when the line it starts or
 * ends begins with a dot that the client did not stuff, adds the dot
 * (RFC 5321 section 4.5.2) so the MX removes it again. The MX therefore
 * sees the message end exactly where mxlock does, and no second message
 * can be smuggled behind a line end that one side reads differently.
 * Dot-stuffing of CRLF lines is forwarded as the client sent it.
 */
#ifndef RELAY_H
#define RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Output room relay_data_feed needs for len input bytes. */
#define RELAY_OUT_MAX(len) (2 * (len) + 4)

struct relay_data {
	bool pending_cr;	/* last input byte was CR */
	bool line_start;	/* next input byte starts a line */
	bool start_crlf;	/* the current line began after CRLF */
	bool held_dot;		/* the line so far is "."; not yet written */
	bool done;		/* the final dot line was seen */
	uint64_t bytes;		/* output bytes so far */
};

void relay_data_init(struct relay_data *r);

/*
 * Reads up to len bytes of in and writes the bytes for the MX to out,
 * which must have room for RELAY_OUT_MAX(len) bytes. Stops right after
 * the final CRLF "." CRLF. Stores the bytes written in *outlen and
 * returns the input bytes used; after the end r->done is true and the rest
 * of in belongs to the next command.
 */
size_t relay_data_feed(struct relay_data *r, const char *in, size_t len,
		       char *out, size_t *outlen);

/*
 * Returns how many bytes at the start of in (len bytes) go to the MX
 * exactly as they are, and advances r past them as relay_data_feed would.
 * That prefix has every CR followed by LF, every LF after a CR, no line
 * that starts with a dot and no final CR. The caller sends those bytes
 * from in without a copy and passes what follows to relay_data_feed.
 * Returns 0 when the next byte needs relay_data_feed.
 */
size_t relay_data_pass(struct relay_data *r, const char *in, size_t len);

#endif
