/*
 * TLS session cache toward MX hosts: a fixed table searched in full, which
 * at SESSION_CACHE_MAX entries costs less than one handshake message.
 */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <stdlib.h>
#include <string.h>

#include "session_cache.h"

struct session_entry {
	bool used;
	struct session_key key;
	struct tls_session *session;
	struct policy_verdict verdict;
	int64_t created;	/* time of the full handshake */
	uint64_t last_use;	/* cache clock, for eviction */
};

struct session_cache {
	struct session_entry entries[SESSION_CACHE_MAX];
	uint64_t clock;
};

struct session_cache *session_cache_new(void)
{
	return calloc(1, sizeof(struct session_cache));
}

static void entry_clear(struct session_entry *e)
{
	tls_session_free(e->session);
	memset(e, 0, sizeof(*e));
}

void session_cache_free(struct session_cache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < SESSION_CACHE_MAX; i++)
		entry_clear(&c->entries[i]);
	free(c);
}

/* Adds a field with its length first, so no two field lists hash alike. */
static void hash_field(wc_Sha256 *h, const void *data, size_t len)
{
	uint32_t n = (uint32_t)len;

	wc_Sha256Update(h, (const byte *)&n, sizeof(n));
	if (len > 0)
		wc_Sha256Update(h, data, (word32)len);
}

static void hash_text(wc_Sha256 *h, const char *text)
{
	hash_field(h, text != NULL ? text : "", text != NULL ? strlen(text) : 0);
}

bool session_key_make(const struct policy_host *ph, const char *address,
		      struct session_key *out)
{
	uint8_t flags[4];
	wc_Sha256 h;

	if (ph->host == NULL || address == NULL || address[0] == '\0')
		return false;
	if (wc_InitSha256(&h) != 0)
		return false;

	hash_text(&h, ph->host);
	hash_text(&h, address);
	hash_text(&h, ph->sni);
	hash_text(&h, ph->label);
	flags[0] = (uint8_t)ph->auth;
	flags[1] = ph->report_only;
	flags[2] = ph->dane_verified;
	flags[3] = ph->require_tls;
	hash_field(&h, flags, sizeof(flags));

	hash_field(&h, &ph->pkix_name_count, sizeof(ph->pkix_name_count));
	for (size_t i = 0; i < ph->pkix_name_count; i++)
		hash_text(&h, ph->pkix_names[i]);
	if (ph->secure_rule != NULL) {
		hash_text(&h, ph->secure_rule->domain);
		for (size_t i = 0; i < ph->secure_rule->match_count; i++)
			hash_text(&h, ph->secure_rule->match[i]);
	}

	hash_field(&h, &ph->tlsa_count, sizeof(ph->tlsa_count));
	for (size_t i = 0; i < ph->tlsa_count; i++) {
		const struct tlsa_record *r = &ph->tlsa[i];
		uint8_t head[3] = { r->usage, r->selector, r->mtype };

		hash_field(&h, head, sizeof(head));
		hash_field(&h, r->data, r->len);
	}
	for (size_t i = 0; i < 2; i++)
		hash_text(&h, ph->dane_names[i]);

	wc_Sha256Final(&h, out->digest);
	wc_Sha256Free(&h);
	return true;
}

static struct session_entry *lookup(struct session_cache *c,
				    const struct session_key *key)
{
	for (size_t i = 0; i < SESSION_CACHE_MAX; i++) {
		struct session_entry *e = &c->entries[i];

		if (e->used && memcmp(e->key.digest, key->digest,
				      sizeof(key->digest)) == 0)
			return e;
	}
	return NULL;
}

struct tls_session *session_cache_find(struct session_cache *c,
				       const struct session_key *key,
				       int64_t now, struct policy_verdict *v)
{
	struct session_entry *e = lookup(c, key);

	if (e == NULL)
		return NULL;
	if (now < e->created || now - e->created >= SESSION_CACHE_TTL) {
		entry_clear(e);
		return NULL;
	}
	e->last_use = ++c->clock;
	*v = e->verdict;
	return e->session;
}

void session_cache_put(struct session_cache *c, const struct session_key *key,
		       struct tls_session *session, const struct policy_verdict *v,
		       bool resumed, int64_t now)
{
	struct session_entry *e = lookup(c, key);
	int64_t created = now;

	if (e != NULL && resumed)
		created = e->created;
	else if (resumed) {
		/* The entry went while the session was in use: its age is
		   unknown, so the session is not kept. */
		tls_session_free(session);
		return;
	}
	if (e == NULL) {
		for (size_t i = 0; i < SESSION_CACHE_MAX; i++) {
			struct session_entry *cand = &c->entries[i];

			if (!cand->used) {
				e = cand;
				break;
			}
			if (e == NULL || cand->last_use < e->last_use)
				e = cand;
		}
	}
	entry_clear(e);
	e->used = true;
	e->key = *key;
	e->session = session;
	e->verdict = *v;
	e->created = created;
	e->last_use = ++c->clock;
}

void session_cache_drop(struct session_cache *c, const struct session_key *key)
{
	struct session_entry *e = lookup(c, key);

	if (e != NULL)
		entry_clear(e);
}
