/*
 * EHLO reply parser (RFC 5321 section 4.1.1.1): the first line is the
 * server's name; each later line starts with a keyword, compared without
 * regard to case. Capabilities are flags, never states.
 */
#ifndef EHLO_H
#define EHLO_H

#include <stdint.h>

#include "smtp_reply.h"

enum ehlo_cap {
	EHLO_STARTTLS = 1 << 0,
	EHLO_PIPELINING = 1 << 1,
	EHLO_SIZE = 1 << 2,
	EHLO_8BITMIME = 1 << 3,
	EHLO_SMTPUTF8 = 1 << 4,
	EHLO_ENHANCEDSTATUSCODES = 1 << 5,
	EHLO_DSN = 1 << 6,
	EHLO_CHUNKING = 1 << 7,
	EHLO_REQUIRETLS = 1 << 8,
};

struct ehlo_caps {
	unsigned flags;		/* enum ehlo_cap bits */
	uint64_t size;		/* SIZE parameter, 0 when absent or unlimited */
};

/*
 * Reads capabilities from a 250 EHLO reply into caps. A keyword counts only
 * as the first token of a line after the first: STARTTLS in the greeting
 * text or as the server name on the first line does not count; "starttls"
 * in lower case and "STARTTLS" followed by parameters do.
 */
void ehlo_parse(const struct smtp_reply *reply, struct ehlo_caps *caps);

#endif
