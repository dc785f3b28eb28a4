/*
 * MTA-STS policy discovery: the "_mta-sts" TXT record (RFC 8461 section
 * 3.1). Pure functions: no I/O, no allocation.
 */
#ifndef MTASTS_TXT_H
#define MTASTS_TXT_H

#include <stddef.h>

#define MTASTS_ID_MAX 32		/* characters in a policy id */

/*
 * Picks the policy id from the TXT records of _mta-sts.<domain>. Each
 * record is the concatenation of the strings of one TXT RR, as a C string
 * (a record that contains a NUL byte is cut there). Only records whose
 * first field is exactly "v=STSv1" count; exactly one must remain and it
 * must follow the grammar of section 3.1. Returns 0 and writes the id,
 * NUL-terminated, into id; or BASE_ENOTFOUND when there is no such record,
 * more than one, or an invalid one.
 */
int mtasts_txt_parse(const char *const *records, size_t count,
		     char id[MTASTS_ID_MAX + 1]);

/*
 * Same as mtasts_txt_parse. On error *reason (if reason is not NULL)
 * receives a static English text that describes the problem, for logs.
 */
int mtasts_txt_parse_reason(const char *const *records, size_t count,
			    char id[MTASTS_ID_MAX + 1], const char **reason);

#endif
