/*
 * Incremental SMTP reply parser: see smtp_reply.h. The parser owns two
 * bounded buffers, one for the unfinished line and one for the texts of the
 * reply being assembled. A line counts its line end against
 * SMTP_REPLY_LINE_MAX, as RFC 5321 section 4.5.3.1.5 counts the CRLF. A
 * lone CR inside a line is kept as text, because RFC 5321 section 2.3.8
 * allows no line end other than CRLF. Callers must escape reply text
 * before they log or relay it.
 */
#include <string.h>

#include "base/err.h"
#include "smtp_reply.h"

void smtp_reply_parser_init(struct smtp_reply_parser *p)
{
	memset(p, 0, sizeof(*p));
	/* One byte of the line limit is kept for the LF that ends the line. */
	base_buf_init(&p->line, SMTP_REPLY_LINE_MAX - 1);
	base_buf_init(&p->text, SMTP_REPLY_TEXT_MAX);
}

void smtp_reply_parser_free(struct smtp_reply_parser *p)
{
	if (p == NULL)
		return;
	base_buf_free(&p->line);
	base_buf_free(&p->text);
}

static void start_reply(struct smtp_reply_parser *p)
{
	p->text.len = 0;
	p->reply.code = 0;
	p->reply.line_count = 0;
	p->reply.bare_lf = false;
	p->done = false;
}

static bool is_digit_in(char c, char lo, char hi)
{
	return c >= lo && c <= hi;
}

/*
 * Reads the reply code of one line. RFC 5321 section 4.2.1 gives the first
 * digit as 2 to 5 and the second as 0 to 5.
 */
static int parse_code(const char *s, size_t len, int *code)
{
	if (len < 3)
		return BASE_EPROTO;
	if (!is_digit_in(s[0], '2', '5') || !is_digit_in(s[1], '0', '5') ||
	    !is_digit_in(s[2], '0', '9'))
		return BASE_EPROTO;

	*code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	return 0;
}

/* Stores the text of one line, NUL-terminated, in the reply's text buffer. */
static int store_text(struct smtp_reply_parser *p, const char *text,
		      size_t len)
{
	size_t offset = p->text.len;
	int rc;

	if (p->reply.line_count == SMTP_REPLY_LINES_MAX)
		return BASE_ETOOLONG;
	if (len >= p->text.max - p->text.len)
		return BASE_ETOOLONG;

	rc = base_buf_append(&p->text, text, len);
	if (rc == 0)
		rc = base_buf_append(&p->text, "", 1);
	if (rc < 0)
		return rc;

	p->offsets[p->reply.line_count++] = offset;
	return 0;
}

/*
 * Handles one complete line without its line end. Returns 1 when the line
 * is the last of the reply, 0 when more lines follow, or a negative code.
 */
static int handle_line(struct smtp_reply_parser *p, const char *s, size_t len)
{
	bool last;
	int code;
	int rc;

	if (memchr(s, '\0', len) != NULL)
		return BASE_EPROTO;
	rc = parse_code(s, len, &code);
	if (rc < 0)
		return rc;
	if (len > 3 && s[3] != ' ' && s[3] != '-')
		return BASE_EPROTO;
	last = len == 3 || s[3] == ' ';

	/* RFC 5321 section 4.2: every line of a reply has the same code. */
	if (p->reply.line_count > 0 && code != p->reply.code)
		return BASE_EPROTO;
	p->reply.code = code;

	rc = len > 3 ? store_text(p, s + 4, len - 4) : store_text(p, "", 0);
	if (rc < 0)
		return rc;
	return last ? 1 : 0;
}

/* Points the reply's lines into the text buffer, whose address is final. */
static void finish_reply(struct smtp_reply_parser *p)
{
	for (size_t i = 0; i < p->reply.line_count; i++)
		p->reply.lines[i] = p->text.data + p->offsets[i];
	p->done = true;
}

/* Takes the buffered line, LF excluded, and strips the CR of a CRLF. */
static int end_line(struct smtp_reply_parser *p)
{
	size_t len = p->line.len;
	int rc;

	if (len > 0 && p->line.data[len - 1] == '\r')
		len--;
	else
		p->reply.bare_lf = true;

	rc = handle_line(p, p->line.data != NULL ? p->line.data : "", len);
	p->line.len = 0;
	return rc;
}

int smtp_reply_parse(struct smtp_reply_parser *p, const char *data,
		     size_t len, size_t *used, const struct smtp_reply **reply)
{
	size_t pos = 0;
	int rc = 0;

	*used = 0;
	if (p->done)
		start_reply(p);

	while (pos < len) {
		const char *lf = memchr(data + pos, '\n', len - pos);
		size_t chunk = lf != NULL ? (size_t)(lf - (data + pos)) : len - pos;

		/* The append fails as soon as the line passes its limit. */
		if (chunk > 0)
			rc = base_buf_append(&p->line, data + pos, chunk);
		if (rc < 0)
			break;
		pos += chunk;
		if (lf == NULL)
			break;

		pos++;
		rc = end_line(p);
		if (rc != 0)
			break;
	}

	*used = pos;
	if (rc == 1) {
		finish_reply(p);
		*reply = &p->reply;
	}
	return rc;
}

bool smtp_reply_parser_pending(const struct smtp_reply_parser *p)
{
	if (p->line.len > 0)
		return true;
	return !p->done && p->reply.line_count > 0;
}

/* Reads 1 to 3 digits at *s and moves *s past them. */
static bool skip_digits(const char **s)
{
	size_t n = 0;

	while (n < 3 && is_digit_in((*s)[n], '0', '9'))
		n++;
	if (n == 0 || is_digit_in((*s)[n], '0', '9'))
		return false;
	*s += n;
	return true;
}

bool smtp_reply_enhanced(const struct smtp_reply *r, char *out, size_t outlen)
{
	const char *start;
	const char *s;
	size_t len;

	if (r->line_count == 0)
		return false;
	start = r->lines[0];
	s = start;

	/* RFC 3463 section 2: class "." subject "." detail. */
	if (!is_digit_in(*s, '2', '5') || *s == '3' || s[1] != '.')
		return false;
	s += 2;
	if (!skip_digits(&s) || *s != '.')
		return false;
	s++;
	if (!skip_digits(&s) || (*s != ' ' && *s != '\0'))
		return false;

	len = (size_t)(s - start);
	if (len >= outlen)
		return false;
	memcpy(out, start, len);
	out[len] = '\0';
	return true;
}
