/*
 * MTA-STS policy files and mx patterns: see policy.h. The parser follows
 * the grammar of RFC 8461 section 3.2 with two tolerances: blank lines are
 * skipped, and an mx value that is not a valid host name pattern is
 * dropped instead of invalidating the whole file.
 */
#include <ctype.h>
#include <string.h>

#include "base/dname.h"
#include "base/err.h"
#include "policy.h"

/* Parser state: which fields were seen, because the first of each wins. */
struct parse_state {
	struct mtasts_policy *out;
	bool have_version;
	bool have_mode;
	bool have_max_age;
	const char *reason;
};

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static bool span_equal(const char *p, size_t n, const char *literal)
{
	return strlen(literal) == n && memcmp(p, literal, n) == 0;
}

static int fail(struct parse_state *st, int err, const char *reason)
{
	st->reason = reason;
	return err;
}

/*
 * Finds the end of the line at p. Lines end in LF or CRLF (sts-policy-term
 * in RFC 8461 section 3.2); the last line may have no end. A CR anywhere
 * else stays in the line, where the character check rejects it.
 */
static void next_line(const char *p, size_t n, size_t *line_len,
		      size_t *consumed)
{
	const char *lf = memchr(p, '\n', n);

	if (lf == NULL) {
		*line_len = n;
		*consumed = n;
		return;
	}
	*line_len = (size_t)(lf - p);
	*consumed = *line_len + 1;
	if (*line_len > 0 && p[*line_len - 1] == '\r')
		(*line_len)--;
}

/* Control characters other than tab are invalid anywhere in the file. */
static bool has_control(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return true;
	}
	return false;
}

/* sts-policy-ext-name: a letter or digit, then up to 31 of [A-Za-z0-9_.-]. */
static size_t key_length(const char *p, size_t n)
{
	size_t i;

	if (n == 0 || !isalnum((unsigned char)p[0]))
		return 0;
	for (i = 1; i < n && i < 32; i++) {
		unsigned char c = (unsigned char)p[i];

		if (!isalnum(c) && c != '_' && c != '-' && c != '.')
			break;
	}
	return i;
}

static int parse_max_age(struct parse_state *st, const char *v, size_t n)
{
	int64_t value = 0;

	/* sts-policy-max-age-value is 1 to 10 digits. */
	if (n == 0 || n > 10)
		return fail(st, BASE_EINVAL, "max_age is not 1 to 10 digits");
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)v[i]))
			return fail(st, BASE_EINVAL, "max_age is not a number");
		value = value * 10 + (v[i] - '0');
	}

	/* Section 3.2 sets the maximum lifetime; a longer one is cut to it. */
	if (value > MTASTS_MAX_AGE_MAX)
		value = MTASTS_MAX_AGE_MAX;
	st->out->max_age = value;
	st->have_max_age = true;
	return 0;
}

static int parse_mode(struct parse_state *st, const char *v, size_t n)
{
	if (span_equal(v, n, "enforce"))
		st->out->mode = MTASTS_MODE_ENFORCE;
	else if (span_equal(v, n, "testing"))
		st->out->mode = MTASTS_MODE_TESTING;
	else if (span_equal(v, n, "none"))
		st->out->mode = MTASTS_MODE_NONE;
	else
		return fail(st, BASE_EINVAL,
			    "mode is not enforce, testing or none");
	st->have_mode = true;
	return 0;
}

/*
 * Stores an mx pattern: ["*."] Domain, normalized to lower case without a
 * trailing dot. Returns 0 when the value was stored or dropped as invalid.
 */
static int parse_mx(struct parse_state *st, const char *v, size_t n)
{
	struct mtasts_policy *p = st->out;
	char name[MTASTS_PATTERN_MAX];
	size_t skip = 0;
	char *slot;

	/* RFC 8461 sets no limit on mx lines. Patterns past the limit are
	   ignored, so hosts that only they match are refused: the policy
	   still applies, and fails closed instead of open. */
	if (p->mx_count == MTASTS_MX_MAX)
		return 0;
	if (n >= sizeof(name))
		return 0;
	memcpy(name, v, n);
	name[n] = '\0';
	if (n > 2 && name[0] == '*' && name[1] == '.')
		skip = 2;

	slot = p->mx[p->mx_count];
	memcpy(slot, name, skip);
	if (base_dname_normalize(name + skip, slot + skip,
				 MTASTS_PATTERN_MAX - skip) < 0)
		return 0;
	p->mx_count++;
	return 0;
}

/* Applies one "key: value" field; unknown keys are ignored (section 3.2). */
static int apply_field(struct parse_state *st, const char *key, size_t klen,
		       const char *v, size_t n)
{
	if (span_equal(key, klen, "mx"))
		return parse_mx(st, v, n);
	if (span_equal(key, klen, "version") && !st->have_version) {
		if (!span_equal(v, n, "STSv1"))
			return fail(st, BASE_EINVAL, "version is not STSv1");
		st->have_version = true;
		return 0;
	}
	if (span_equal(key, klen, "mode") && !st->have_mode)
		return parse_mode(st, v, n);
	if (span_equal(key, klen, "max_age") && !st->have_max_age)
		return parse_max_age(st, v, n);
	return 0;
}

static int parse_line(struct parse_state *st, const char *line, size_t n)
{
	size_t klen;
	size_t pos;

	if (has_control(line, n))
		return fail(st, BASE_EINVAL, "control character or bare CR");
	while (n > 0 && is_wsp(line[n - 1]))
		n--;
	if (n == 0)
		return 0;

	/* sts-policy-field: a key, ":", optional blanks, the value. */
	klen = key_length(line, n);
	if (klen == 0 || klen >= n || line[klen] != ':')
		return fail(st, BASE_EINVAL, "line is not \"key: value\"");
	pos = klen + 1;
	while (pos < n && is_wsp(line[pos]))
		pos++;
	return apply_field(st, line, klen, line + pos, n - pos);
}

static int check_complete(struct parse_state *st)
{
	if (!st->have_version)
		return fail(st, BASE_EINVAL, "version is missing");
	if (!st->have_mode)
		return fail(st, BASE_EINVAL, "mode is missing");
	if (!st->have_max_age)
		return fail(st, BASE_EINVAL, "max_age is missing");

	/* Section 3.2: mx is required at least once unless the mode is none. */
	if (st->out->mode != MTASTS_MODE_NONE && st->out->mx_count == 0)
		return fail(st, BASE_EINVAL, "no valid mx line");
	return 0;
}

int mtasts_policy_parse_reason(const char *body, size_t len,
			       struct mtasts_policy *out, const char **reason)
{
	struct parse_state st = { .out = out };
	size_t pos = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	while (pos < len && rc == 0) {
		size_t line_len;
		size_t consumed;

		next_line(body + pos, len - pos, &line_len, &consumed);
		rc = parse_line(&st, body + pos, line_len);
		pos += consumed;
	}
	if (rc == 0)
		rc = check_complete(&st);

	if (rc < 0 && reason != NULL)
		*reason = st.reason;
	return rc;
}

int mtasts_policy_parse(const char *body, size_t len,
			struct mtasts_policy *out)
{
	return mtasts_policy_parse_reason(body, len, out, NULL);
}

const char *mtasts_mode_name(enum mtasts_mode mode)
{
	switch (mode) {
	case MTASTS_MODE_NONE: return "none";
	case MTASTS_MODE_TESTING: return "testing";
	case MTASTS_MODE_ENFORCE: return "enforce";
	}
	return "unknown";
}

bool mtasts_pattern_match(const char *pattern, const char *host)
{
	const char *dot;

	if (host[0] == '\0' || strchr(host, '*') != NULL)
		return false;
	if (strncmp(pattern, "*.", 2) != 0)
		return base_dname_equal(pattern, host);

	/*
	 * RFC 8461 section 4.1: "*" matches the entire left-most label and
	 * nothing more, so "*.example.com" covers "mail.example.com" but
	 * neither "example.com" nor "foo.bar.example.com".
	 */
	if (pattern[2] == '\0' || pattern[2] == '.')
		return false;
	dot = strchr(host, '.');
	if (dot == NULL || dot == host)
		return false;
	return base_dname_equal(pattern + 2, dot + 1);
}

bool mtasts_mx_match(const struct mtasts_policy *p, const char *host)
{
	for (size_t i = 0; i < p->mx_count; i++) {
		if (mtasts_pattern_match(p->mx[i], host))
			return true;
	}
	return false;
}
