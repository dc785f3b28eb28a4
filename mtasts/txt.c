/*
 * MTA-STS TXT records: see txt.h. A record (RFC 8461 section 3.1) is
 * "v=STSv1" followed by fields separated by ";" with optional blanks around
 * it, and an optional ";" at the end. One field must be "id=" with 1 to 32
 * letters and digits; every other field is an extension "name=value".
 * Names and values are case-sensitive.
 */
#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include "base/err.h"
#include "txt.h"

#define STS_VERSION "v=STSv1"
#define EXT_NAME_MAX 32

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static const char *skip_wsp(const char *p)
{
	while (is_wsp(*p))
		p++;
	return p;
}

/*
 * True when the first field is exactly "v=STSv1". Section 3.1 discards
 * other records, such as "v=STSv10" and " v=STSv1".
 */
static bool is_sts_record(const char *rec)
{
	size_t n = strlen(STS_VERSION);
	const char *p;

	if (strncmp(rec, STS_VERSION, n) != 0)
		return false;
	p = skip_wsp(rec + n);
	return *p == ';' || *p == '\0';
}

/* sts-ext-name: a letter or digit, then letters, digits, "_", "-", ".". */
static bool ext_name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.';
}

/* sts-ext-value: visible US-ASCII other than "=" and ";". */
static bool ext_value_char(char c)
{
	unsigned char u = (unsigned char)c;

	return u >= 0x21 && u <= 0x7e && u != '=' && u != ';';
}

/* Stores the first id; a later id field is ignored like any extension. */
static int store_id(const char *value, size_t len, char *id, bool *have_id,
		    const char **reason)
{
	if (*have_id)
		return 0;
	if (len > MTASTS_ID_MAX) {
		*reason = "id is longer than 32 characters";
		return BASE_EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		if (!isalnum((unsigned char)value[i])) {
			*reason = "id has a character that is not a letter "
				  "or digit";
			return BASE_EINVAL;
		}
	}
	memcpy(id, value, len);
	id[len] = '\0';
	*have_id = true;
	return 0;
}

/* Parses the field "name=value" at *pp and moves *pp past it. */
static int parse_field(const char **pp, char *id, bool *have_id,
		       const char **reason)
{
	const char *name = *pp;
	const char *value;
	const char *p = name;
	size_t name_len;

	*reason = "field is not \"name=value\"";
	if (!isalnum((unsigned char)*p))
		return BASE_EINVAL;
	while (ext_name_char(*p))
		p++;
	name_len = (size_t)(p - name);
	if (name_len > EXT_NAME_MAX || *p != '=')
		return BASE_EINVAL;

	value = ++p;
	while (ext_value_char(*p))
		p++;
	if (p == value)
		return BASE_EINVAL;
	*pp = p;

	if (name_len == 2 && memcmp(name, "id", 2) == 0)
		return store_id(value, (size_t)(p - value), id, have_id,
				reason);
	return 0;
}

static int parse_record(const char *rec, char *id, const char **reason)
{
	const char *p = rec + strlen(STS_VERSION);
	bool have_id = false;
	int rc;

	for (;;) {
		p = skip_wsp(p);
		if (*p == '\0')
			break;
		if (*p != ';') {
			*reason = "fields are not separated by \";\"";
			return BASE_EINVAL;
		}
		p = skip_wsp(p + 1);
		if (*p == '\0')
			break;
		rc = parse_field(&p, id, &have_id, reason);
		if (rc < 0)
			return rc;
	}

	if (!have_id) {
		*reason = "id is missing";
		return BASE_EINVAL;
	}
	return 0;
}

int mtasts_txt_parse_reason(const char *const *records, size_t count,
			    char id[MTASTS_ID_MAX + 1], const char **reason)
{
	const char *found = NULL;
	const char *why = NULL;
	size_t sts = 0;

	for (size_t i = 0; i < count; i++) {
		if (records[i] != NULL && is_sts_record(records[i])) {
			found = records[i];
			sts++;
		}
	}

	/* Section 3.1: all but exactly one valid record means no policy. */
	if (sts == 0)
		why = "no TXT record starts with v=STSv1";
	else if (sts > 1)
		why = "more than one TXT record starts with v=STSv1";
	else if (parse_record(found, id, &why) == 0)
		return 0;

	if (reason != NULL)
		*reason = why;
	return BASE_ENOTFOUND;
}

int mtasts_txt_parse(const char *const *records, size_t count,
		     char id[MTASTS_ID_MAX + 1])
{
	return mtasts_txt_parse_reason(records, count, id, NULL);
}
