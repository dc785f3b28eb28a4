/*
 * TLS sessions toward MX hosts, kept for resumption. An entry is found
 * only by the same host name, address, SNI and policy requirements (the
 * certificate checks and the TLSA records or names they use) as the
 * handshake that made it, so a resumed session never replaces a
 * check that did not run. Each entry keeps the verdict of that full
 * handshake: a resumed handshake carries no certificate, and the verdict
 * is what the certificate earned under the same requirements.
 */
#ifndef SESSION_CACHE_H
#define SESSION_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "stream.h"

#define SESSION_CACHE_MAX 256
/* Seconds an entry is offered after its full handshake (Postfix's
   smtp_tls_session_cache_timeout defaults to one hour as well). */
#define SESSION_CACHE_TTL 3600

struct session_key {
	uint8_t digest[32];		/* SHA-256 of what the verdict used */
};

struct session_cache;

/* Returns a new empty cache, or NULL when out of memory. */
struct session_cache *session_cache_new(void);
void session_cache_free(struct session_cache *c);

/*
 * Computes the key of a handshake with the MX host ph->host at address
 * (numeric text) under the requirements ph. Returns false when no key can
 * be made (the host name or address is missing).
 */
bool session_key_make(const struct policy_host *ph, const char *address,
		      struct session_key *out);

/*
 * Returns the session stored under key that is younger than
 * SESSION_CACHE_TTL at time now and copies its verdict into v, or returns
 * NULL. The session stays owned by the cache; pass it to
 * stream_starttls_resume before any other call of the cache.
 */
struct tls_session *session_cache_find(struct session_cache *c,
				       const struct session_key *key,
				       int64_t now, struct policy_verdict *v);

/*
 * Stores session (taking it over) and the verdict of its full handshake
 * under key, replacing an older entry for the key or, when the cache is
 * full, the least recently used one. resumed is true when the session
 * came from resuming the entry's own. Its age then still counts from the
 * full handshake, so a verdict is never carried beyond SESSION_CACHE_TTL.
 */
void session_cache_put(struct session_cache *c, const struct session_key *key,
		       struct tls_session *session, const struct policy_verdict *v,
		       bool resumed, int64_t now);

/* Drops the entry for key, after a resumed session failed its check. */
void session_cache_drop(struct session_cache *c, const struct session_key *key);

#endif
