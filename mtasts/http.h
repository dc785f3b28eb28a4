/*
 * The HTTP side of an MTA-STS policy fetch (RFC 8461 section 3.3): the
 * request for /.well-known/mta-sts.txt and an incremental parser for the
 * response, built on http-parser 2.9. Only a 200 response with a
 * text/plain body of at most MTASTS_HTTP_BODY_MAX bytes is accepted;
 * redirects are never followed. TLS is the caller's business.
 */
#ifndef MTASTS_HTTP_H
#define MTASTS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define MTASTS_HTTP_BODY_MAX 65536	/* bytes of policy accepted */
#define MTASTS_POLICY_PATH "/.well-known/mta-sts.txt"

struct mtasts_http;

/*
 * Writes "mta-sts.<domain>", the policy host of the policy domain, into
 * out (size outlen). Returns 0, or BASE_EINVAL when the domain is not a
 * valid host name or the result does not fit.
 */
int mtasts_policy_host(const char *domain, char *out, size_t outlen);

/*
 * Writes the GET request for the policy file on policy_host (as made by
 * mtasts_policy_host) into out (size outlen), NUL-terminated. The request
 * carries "Connection: close". Returns 0,
 * BASE_EINVAL for an invalid host name, or BASE_ETOOLONG when out is too
 * small.
 */
int mtasts_http_request(const char *policy_host, char *out, size_t outlen);

/* Creates a response parser in *out. Returns 0 or BASE_ENOMEM. */
int mtasts_http_new(struct mtasts_http **out);

/* Releases a parser; mtasts_http_free(NULL) does nothing. */
void mtasts_http_free(struct mtasts_http *h);

/*
 * Feeds len bytes of the response as they arrive; len 0 means the server
 * closed the connection. Bytes after a complete response are ignored.
 * Returns 0 (see mtasts_http_done) or a negative base_err code, which
 * every later call returns too. The codes are BASE_EPROTO for a malformed
 * response, a status other than 200, a redirect or a type other than
 * text/plain, BASE_ETOOLONG for a body or headers too large, and BASE_EEOF
 * when the server closed before the end. mtasts_http_reason has details.
 */
int mtasts_http_feed(struct mtasts_http *h, const char *data, size_t len);

/* Returns true once a whole acceptable response has been read. */
bool mtasts_http_done(const struct mtasts_http *h);

/* Returns the status code of the final response, 0 before its headers. */
int mtasts_http_status(const struct mtasts_http *h);

/*
 * Returns the body read so far and stores its length in *len. The bytes
 * belong to the parser and are not NUL-terminated.
 */
const char *mtasts_http_body(const struct mtasts_http *h, size_t *len);

/* Returns why the response was rejected, or NULL while there is no error. */
const char *mtasts_http_reason(const struct mtasts_http *h);

#endif
