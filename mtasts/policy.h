/*
 * MTA-STS policy files (RFC 8461 section 3.2) and the matching of MX hosts
 * against a policy's mx patterns (section 4.1). Pure functions: no I/O, no
 * allocation. A policy contains at most MTASTS_MX_MAX patterns.
 */
#ifndef MTASTS_POLICY_H
#define MTASTS_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MTASTS_MX_MAX 64		/* mx lines kept; later ones are ignored */
#define MTASTS_PATTERN_MAX 256		/* "*." + a 253-octet name + NUL */
#define MTASTS_MAX_AGE_MAX 31557600	/* seconds (RFC 8461 section 3.2) */

enum mtasts_mode {
	MTASTS_MODE_NONE,
	MTASTS_MODE_TESTING,
	MTASTS_MODE_ENFORCE,
};

/* One parsed policy file. */
struct mtasts_policy {
	enum mtasts_mode mode;
	int64_t max_age;	/* seconds, at most MTASTS_MAX_AGE_MAX */
	size_t mx_count;
	/* Lower case, no trailing dot; a wildcard pattern starts with "*.". */
	char mx[MTASTS_MX_MAX][MTASTS_PATTERN_MAX];
};

/*
 * Parses a policy file of len bytes (not NUL-terminated) into *out.
 * Returns 0 or BASE_EINVAL when the file is invalid; *out is undefined on
 * error. mx lines past MTASTS_MX_MAX are ignored, so the hosts only they
 * match are refused.
 */
int mtasts_policy_parse(const char *body, size_t len,
			struct mtasts_policy *out);

/*
 * Same as mtasts_policy_parse. On error *reason (if reason is not NULL)
 * receives a static English text that describes the problem, for logs.
 */
int mtasts_policy_parse_reason(const char *body, size_t len,
			       struct mtasts_policy *out, const char **reason);

/* Returns the mode's name as written in a policy file ("enforce"). */
const char *mtasts_mode_name(enum mtasts_mode mode);

/*
 * Matches one MX host name against one mx pattern (RFC 8461 section 4.1):
 * equal names, or "*." followed by a suffix when the host is exactly one
 * label in front of that suffix. Case and a trailing dot do not matter.
 */
bool mtasts_pattern_match(const char *pattern, const char *host);

/* Returns true when host matches at least one of the policy's patterns. */
bool mtasts_mx_match(const struct mtasts_policy *p, const char *host);

#endif
