/*
 * Incremental parser for SMTP replies from a server (RFC 5321 section
 * 4.2). Bytes are fed as they arrive, split anywhere; a reply is complete
 * at the line whose code is followed by a space or by nothing. Line ends
 * are CRLF; a bare LF is accepted as a line end too (liberal in what we
 * accept from a server) and counted in the reply's flags.
 */
#ifndef SMTP_REPLY_H
#define SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

#define SMTP_REPLY_LINE_MAX 2048	/* RFC 5321 4.5.3.1.5 says 512; be lenient */
#define SMTP_REPLY_LINES_MAX 64		/* lines in one multi-line reply */
#define SMTP_REPLY_TEXT_MAX 16384		/* all lines of one reply */

/*
 * One complete reply. Text lines exclude the code, separator and line end,
 * are NUL-terminated and point into the parser's text buffer.
 */
struct smtp_reply {
	int code;				/* 200..599 */
	size_t line_count;
	const char *lines[SMTP_REPLY_LINES_MAX];
	bool bare_lf;				/* some line ended in a bare LF */
};

struct smtp_reply_parser {
	struct base_buf line;		/* bytes of the unfinished line */
	struct base_buf text;		/* NUL-separated texts of this reply */
	size_t offsets[SMTP_REPLY_LINES_MAX];
	struct smtp_reply reply;	/* reply being assembled */
	bool done;			/* reply is complete; reset on next call */
};

void smtp_reply_parser_init(struct smtp_reply_parser *p);
void smtp_reply_parser_free(struct smtp_reply_parser *p);

/*
 * Consumes bytes from data (length len) until one reply is complete or
 * the data runs out. Stores how many bytes were consumed in *used.
 * Returns 1 when a complete reply is available through *reply (valid
 * until the next call), 0 when more bytes are needed, BASE_ETOOLONG for a
 * line or reply over the limits, BASE_EPROTO for a malformed line or a
 * code that changes inside one reply. After an error the parser must not
 * be used again. Bytes after a complete reply are left unconsumed, so the
 * caller can tell whether a server sent anything after a reply.
 */
int smtp_reply_parse(struct smtp_reply_parser *p, const char *data,
		     size_t len, size_t *used, const struct smtp_reply **reply);

/* Returns true when a partial line is buffered (bytes not yet a reply). */
bool smtp_reply_parser_pending(const struct smtp_reply_parser *p);

/*
 * Extracts the enhanced status code (RFC 3463, "4.7.0") from the start of
 * the first line's text into out (size outlen). Returns true if present.
 */
bool smtp_reply_enhanced(const struct smtp_reply *r, char *out, size_t outlen);

#endif
