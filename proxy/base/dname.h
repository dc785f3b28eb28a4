/*
 * DNS-name helpers shared by proxy/, tlsa/ and mtasts/: validation and
 * comparison of host names in presentation form.
 */
#ifndef BASE_DNAME_H
#define BASE_DNAME_H

#include <stdbool.h>
#include <stddef.h>

#define BASE_DNAME_MAX 253

/*
 * Checks that name is a syntactically valid host name: labels of 1 to 63
 * letters, digits, hyphens or underscores, 253 characters at most, an
 * optional trailing dot. Returns true when it is.
 */
bool base_dname_valid(const char *name);

/* Compares two names without regard to case or a trailing dot. */
bool base_dname_equal(const char *a, const char *b);

/*
 * Copies name into out (size outlen) in lower case without a trailing dot.
 * Returns 0, or BASE_EINVAL when the name is invalid or does not fit.
 */
int base_dname_normalize(const char *name, char *out, size_t outlen);

#endif
