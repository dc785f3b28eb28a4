/* DNS-name helpers: see dname.h. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "dname.h"
#include "err.h"

static bool label_char(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '_';
}

bool base_dname_valid(const char *name)
{
	size_t len = strlen(name);
	size_t label = 0;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > BASE_DNAME_MAX)
		return false;

	for (size_t i = 0; i < len; i++) {
		if (name[i] == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!label_char((unsigned char)name[i]) || ++label > 63)
			return false;
	}
	return label > 0;
}

static size_t trimmed_len(const char *s)
{
	size_t len = strlen(s);

	if (len > 0 && s[len - 1] == '.')
		len--;
	return len;
}

bool base_dname_equal(const char *a, const char *b)
{
	size_t alen = trimmed_len(a);

	return alen == trimmed_len(b) && strncasecmp(a, b, alen) == 0;
}

int base_dname_normalize(const char *name, char *out, size_t outlen)
{
	size_t len;

	if (!base_dname_valid(name))
		return BASE_EINVAL;
	len = trimmed_len(name);
	if (len + 1 > outlen)
		return BASE_EINVAL;

	for (size_t i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)name[i]);
	out[len] = '\0';
	return 0;
}
