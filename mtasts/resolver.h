/*
 * MTA-STS resolver: decides which policy, if any, applies to a policy
 * domain (RFC 8461 sections 3, 4 and 5). It looks up the TXT record, reads
 * the persistent cache, fetches and stores a policy whose id is new, and
 * falls back to a still valid cached policy when the live one cannot be
 * had. DNS, HTTPS and the clock come from struct mtasts_io, which proxy/
 * fills, so this module does no network I/O of its own. Failed fetches and
 * recent checks are remembered in memory, not in the cache.
 */
#ifndef MTASTS_RESOLVER_H
#define MTASTS_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "http.h"
#include "policy.h"
#include "txt.h"

#define MTASTS_RETRY_AFTER 300		/* seconds before a failed fetch of
					   the same domain and id is retried */
#define MTASTS_CHECK_INTERVAL 300	/* seconds between two checks for a
					   newer policy of one domain */
#define MTASTS_REFRESH_INTERVAL 86400	/* refresh a policy in use daily */
#define MTASTS_MARKS_MAX 256		/* domains remembered for each of the
					   two limits above */

typedef void (*mtasts_txt_cb)(void *ctx, int status,
			      const char *const *records, size_t count);
typedef void (*mtasts_fetch_cb)(void *ctx, int status, const char *response,
				size_t len);

/*
 * The I/O that proxy/ provides. Each done callback must run exactly once,
 * later, never inside the call that took it, unless that call returned a
 * negative code (then it must never run). mtasts relies on this to call
 * its own callbacks only from an I/O callback, never from mtasts_resolve.
 */
struct mtasts_io {
	void *arg;

	/*
	 * Looks up the TXT records of name ("_mta-sts.<domain>"), following
	 * CNAMEs. done gets status 0 with the records, each the concatenated
	 * strings of one RR as a C string (valid during the call), or
	 * BASE_ENOTFOUND for NXDOMAIN or NODATA, or another negative code
	 * when the lookup failed.
	 */
	int (*lookup_txt)(void *arg, const char *name, mtasts_txt_cb done,
			  void *ctx);

	/*
	 * Fetches https://<policy_host>/.well-known/mta-sts.txt: TCP to port
	 * 443, TLS with SNI policy_host and a certificate valid for it under
	 * PKIX, the request from mtasts_http_request, and the response until
	 * the server closes (RFC 8461 section 3.3 suggests a limit of one
	 * minute). The proxy may feed a struct mtasts_http as bytes arrive to
	 * stop at the end of the response or at an error. done gets status 0
	 * with the raw response bytes (valid during the call), or a negative
	 * code when the connection, the handshake, the certificate check or
	 * the time limit failed.
	 */
	int (*fetch)(void *arg, const char *policy_host, mtasts_fetch_cb done,
		     void *ctx);

	/* Returns the current time in Unix seconds. */
	int64_t (*now)(void *arg);
};

enum mtasts_source {
	MTASTS_SOURCE_NONE,		/* no policy */
	MTASTS_SOURCE_FETCHED,		/* fetched just now */
	MTASTS_SOURCE_CACHED,		/* from the cache, still current */
	MTASTS_SOURCE_CACHED_REFETCH_FAILED, /* from the cache: the TXT id
					   changed or a refresh was due, and
					   the fetch failed */
};

/* The outcome of one resolve, refresh or check. */
struct mtasts_verdict {
	const char *domain;		/* policy domain, lower case */
	bool applies;			/* mode enforce or testing applies */
	enum mtasts_source source;
	char id[MTASTS_ID_MAX + 1];	/* the policy's id, "" for none */
	int64_t fetched_at;		/* Unix seconds */
	int64_t expires_at;
	struct mtasts_policy policy;	/* valid unless source is NONE */
	bool changed;			/* a policy was fetched and its id is
					   not the cached one (or none was
					   cached) */
	int cache_error;		/* 0, or why the fetched policy was
					   not queued for storing */
	bool uncertain;			/* no live policy, and the cache could
					   not be read: a policy may exist */
	bool fetch_error;		/* the HTTPS fetch of the policy failed
					   (not a policy that did not parse) */
	char reason[192];		/* why this verdict, for logs */
};

typedef void (*mtasts_verdict_cb)(void *arg, const struct mtasts_verdict *v);

struct mtasts;
struct mtasts_req;

/*
 * Creates a resolver that uses io (copied) and cache. The cache stays the
 * caller's and must outlive the resolver. Without a cache (NULL) every
 * resolve fetches the policy. Returns 0 and stores the resolver in *out,
 * or BASE_EINVAL or BASE_ENOMEM.
 */
int mtasts_new(const struct mtasts_io *io, struct mtasts_cache *cache,
	       struct mtasts **out);

/*
 * Cancels every request (their callbacks never run) and releases the
 * resolver once the I/O still under way has called back. Safe to call from
 * a verdict callback. mtasts_free(NULL) does nothing.
 */
void mtasts_free(struct mtasts *m);

/*
 * Finds the policy for domain (RFC 8461 sections 3 and 5.1): the TXT
 * record, then the cached policy when its id matches and it has not
 * expired, else a fetch. cb runs exactly once, later, with the verdict
 * (valid during the call), unless mtasts_cancel runs first. If req is not
 * NULL it receives a handle for mtasts_cancel, valid until cb runs.
 * Returns 0, or BASE_EINVAL (invalid domain), BASE_ENOMEM, or the error of
 * io->lookup_txt; then cb never runs.
 */
int mtasts_resolve(struct mtasts *m, const char *domain,
		   mtasts_verdict_cb cb, void *arg, struct mtasts_req **req);

/*
 * Like mtasts_resolve, but fetches the policy even when the cached one has
 * the TXT record's id, so that a policy in use is renewed before it
 * expires (RFC 8461 section 3.3). A missing TXT record keeps the cache.
 */
int mtasts_refresh(struct mtasts *m, const char *domain,
		   mtasts_verdict_cb cb, void *arg, struct mtasts_req **req);

/*
 * Checks whether the domain published a policy with a new id and fetches
 * it (RFC 8461 section 5.1: before a delivery fails for good). The verdict
 * has changed set when it did. A domain is checked at most once every
 * MTASTS_CHECK_INTERVAL seconds: sooner, the call returns BASE_ENOTFOUND
 * ("no newer policy") and cb never runs. Other returns as mtasts_resolve.
 */
int mtasts_check_newer(struct mtasts *m, const char *domain,
		       mtasts_verdict_cb cb, void *arg,
		       struct mtasts_req **req);

/* Stops a request: its callback will not run. Only before cb ran. */
void mtasts_cancel(struct mtasts_req *req);

/*
 * Returns true when the policy of a verdict should be refreshed with
 * mtasts_refresh: a day after it was fetched (RFC 8461 section 3.3
 * suggests daily), or when less than a quarter of its max_age is left.
 */
bool mtasts_refresh_due(const struct mtasts_verdict *v, int64_t now);

/* Returns "none", "fetched", "cached" or "cached-refetch-failed". */
const char *mtasts_source_name(enum mtasts_source source);

#endif
