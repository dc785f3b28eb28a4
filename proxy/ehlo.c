/*
 * EHLO reply parser: see ehlo.h. Only the keywords mxlock acts on are
 * recognised; every other line is ignored.
 */
#include <string.h>
#include <strings.h>

#include "ehlo.h"

struct ehlo_keyword {
	const char *name;
	enum ehlo_cap cap;
};

static const struct ehlo_keyword keywords[] = {
	{ "STARTTLS", EHLO_STARTTLS },
	{ "PIPELINING", EHLO_PIPELINING },
	{ "SIZE", EHLO_SIZE },
	{ "8BITMIME", EHLO_8BITMIME },
	{ "SMTPUTF8", EHLO_SMTPUTF8 },
	{ "ENHANCEDSTATUSCODES", EHLO_ENHANCEDSTATUSCODES },
	{ "DSN", EHLO_DSN },
	{ "CHUNKING", EHLO_CHUNKING },
	{ "REQUIRETLS", EHLO_REQUIRETLS },
};

/*
 * Reads the SIZE parameter (RFC 1870 section 4): a decimal number of
 * octets, 0 meaning no fixed maximum. A missing, malformed or overflowing
 * number gives 0.
 */
static uint64_t parse_size(const char *param)
{
	uint64_t size = 0;
	const char *p;

	for (p = param; *p >= '0' && *p <= '9'; p++) {
		unsigned digit = (unsigned)(*p - '0');

		if (size > (UINT64_MAX - digit) / 10)
			return 0;
		size = size * 10 + digit;
	}
	if (p == param || (*p != '\0' && *p != ' '))
		return 0;
	return size;
}

/* Adds the capability named by the first token of one reply line. */
static void parse_line(const char *line, struct ehlo_caps *caps)
{
	size_t len = strcspn(line, " ");

	for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
		if (strlen(keywords[i].name) != len ||
		    strncasecmp(keywords[i].name, line, len) != 0)
			continue;

		caps->flags |= keywords[i].cap;
		if (keywords[i].cap == EHLO_SIZE)
			caps->size = line[len] == ' ' ? parse_size(line + len + 1) : 0;
		return;
	}
}

void ehlo_parse(const struct smtp_reply *reply, struct ehlo_caps *caps)
{
	caps->flags = 0;
	caps->size = 0;
	if (reply->code != 250)
		return;

	/* RFC 5321 section 4.1.1.1: the first line names the server. */
	for (size_t i = 1; i < reply->line_count; i++)
		parse_line(reply->lines[i], caps);
}
