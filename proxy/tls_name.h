/*
 * Certificate name check for TLS: matches one DNS subject alternative name
 * from a certificate against the host name the client expects. Pure
 * function, no I/O; the TLS stream calls it for every DNS name of the leaf.
 */
#ifndef TLS_NAME_H
#define TLS_NAME_H

#include <stdbool.h>

/*
 * Returns true when pattern, a DNS subject alternative name, covers host.
 * The comparison ignores case and one trailing dot. A wildcard is accepted
 * only as the whole left-most label ("*.example.test") and covers exactly
 * one label. Any other '*' makes the pattern match nothing.
 */
bool tls_name_match(const char *pattern, const char *host);

#endif
