/*
 * Certificate name check: see tls_name.h. The rules follow RFC 6125
 * section 6.4.3 in its strict form: a wildcard is the whole left-most label
 * and stands for exactly one label, and partial wildcards are rejected.
 * Callers pass only DNS subject alternative names, so there is no
 * common-name fallback here.
 */
#include <string.h>

#include "base/dname.h"
#include "tls_name.h"

/* Matches "*.rest" against host: host must be one label followed by rest. */
static bool wildcard_match(const char *rest, const char *host)
{
	const char *dot = strchr(host, '.');

	if (dot == NULL || dot == host)
		return false;

	/*
	 * A wildcard directly under a top-level domain ("*.test") would
	 * cover every name in it, so it matches nothing (RFC 6125 section
	 * 7.2).
	 */
	if (strchr(rest, '.') == NULL)
		return false;
	if (strchr(rest, '.')[1] == '\0')
		return false;

	return base_dname_equal(rest, dot + 1);
}

bool tls_name_match(const char *pattern, const char *host)
{
	if (!base_dname_valid(host))
		return false;

	if (strncmp(pattern, "*.", 2) == 0) {
		if (!base_dname_valid(pattern + 2))
			return false;
		return wildcard_match(pattern + 2, host);
	}

	/* base_dname_valid rejects '*', so partial wildcards fail here. */
	if (!base_dname_valid(pattern))
		return false;
	return base_dname_equal(pattern, host);
}
