/*
 * The cache of TLS sessions toward MX hosts: which requirements make a
 * different key, how long an entry is offered, and which entry a full
 * cache gives up.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "session_cache.h"

static struct tls_session *new_session(void)
{
	WOLFSSL_SESSION *s = wolfSSL_SESSION_new();

	assert_non_null(s);
	return (struct tls_session *)s;
}

/* A DANE host with one 3 1 1 record. */
static void dane_host(struct policy_host *ph)
{
	memset(ph, 0, sizeof(*ph));
	ph->usable = true;
	ph->try_tls = true;
	ph->require_tls = true;
	ph->auth = POLICY_AUTH_DANE;
	ph->label = "dane";
	ph->host = "mx.example.test";
	ph->sni = "mx.example.test";
	ph->tlsa_count = 1;
	ph->tlsa[0].usage = 3;
	ph->tlsa[0].selector = 1;
	ph->tlsa[0].mtype = 1;
	ph->tlsa[0].len = 32;
	memset(ph->tlsa[0].data, 0xab, 32);
	ph->dane_names[0] = "mx.example.test";
	ph->dane_names[1] = "example.test";
	ph->dane_verified = true;
}

static void key_of(const struct policy_host *ph, const char *address,
		   struct session_key *key)
{
	assert_true(session_key_make(ph, address, key));
}

static bool same_key(const struct session_key *a, const struct session_key *b)
{
	return memcmp(a->digest, b->digest, sizeof(a->digest)) == 0;
}

/* Each change of what the verdict used gives another key. */
static void test_key_changes(void **state)
{
	struct policy_host base, ph;
	struct session_key k0, k;
	static const char *const names[] = { "mx.example.test" };
	struct conf_rule rule;
	char *match[] = { "*.example.test" };

	(void)state;
	dane_host(&base);
	key_of(&base, "192.0.2.1", &k0);

	ph = base;
	key_of(&ph, "192.0.2.1", &k);
	assert_true(same_key(&k0, &k));

	key_of(&base, "192.0.2.2", &k);
	assert_false(same_key(&k0, &k));		/* address */

	ph = base;
	ph.host = "mx2.example.test";
	key_of(&ph, "192.0.2.1", &k);
	assert_false(same_key(&k0, &k));		/* host name */

	ph = base;
	ph.sni = "other.example.test";
	key_of(&ph, "192.0.2.1", &k);
	assert_false(same_key(&k0, &k));		/* SNI */

	ph = base;
	ph.tlsa[0].data[31] ^= 1;
	key_of(&ph, "192.0.2.1", &k);
	assert_false(same_key(&k0, &k));		/* TLSA data */

	ph = base;
	ph.tlsa[0].usage = 2;
	key_of(&ph, "192.0.2.1", &k);
	assert_false(same_key(&k0, &k));		/* TLSA usage */

	ph = base;
	ph.dane_verified = false;
	key_of(&ph, "192.0.2.1", &k);
	assert_false(same_key(&k0, &k));		/* "trusted", not "yes" */

	ph = base;
	ph.auth = POLICY_AUTH_NONE;
	ph.label = "encrypt";
	ph.tlsa_count = 0;
	key_of(&ph, "192.0.2.1", &k);
	assert_false(same_key(&k0, &k));		/* a weaker level */

	/* verify and mta-sts check the same name but are different levels. */
	ph = base;
	ph.auth = POLICY_AUTH_PKIX;
	ph.tlsa_count = 0;
	ph.pkix_names[0] = names[0];
	ph.pkix_name_count = 1;
	ph.label = "verify";
	key_of(&ph, "192.0.2.1", &k0);
	ph.label = "mta-sts";
	key_of(&ph, "192.0.2.1", &k);
	assert_false(same_key(&k0, &k));
	ph.report_only = true;
	key_of(&ph, "192.0.2.1", &k0);
	assert_false(same_key(&k0, &k));		/* testing mode */

	/* secure: the match list counts. */
	memset(&rule, 0, sizeof(rule));
	snprintf(rule.domain, sizeof(rule.domain), "example.test");
	rule.match = match;
	rule.match_count = 1;
	ph.label = "secure";
	ph.report_only = false;
	ph.secure_rule = &rule;
	key_of(&ph, "192.0.2.1", &k0);
	match[0] = "mx.example.test";
	key_of(&ph, "192.0.2.1", &k);
	assert_false(same_key(&k0, &k));
}

static void test_no_key_without_address(void **state)
{
	struct policy_host ph;
	struct session_key k;

	(void)state;
	dane_host(&ph);
	assert_false(session_key_make(&ph, "", &k));
	ph.host = NULL;
	assert_false(session_key_make(&ph, "192.0.2.1", &k));
}

static void test_find_returns_verdict(void **state)
{
	struct session_cache *c = session_cache_new();
	struct policy_host ph;
	struct session_key k, other;
	struct policy_verdict v = { .ok = true, .verified = "yes" }, got;
	struct tls_session *s = new_session();

	(void)state;
	assert_non_null(c);
	dane_host(&ph);
	key_of(&ph, "192.0.2.1", &k);
	key_of(&ph, "192.0.2.2", &other);
	snprintf(v.detail, sizeof(v.detail), "TLSA 3 1 1 matched depth 0");

	assert_null(session_cache_find(c, &k, 1000, &got));
	session_cache_put(c, &k, s, &v, false, 1000);
	assert_ptr_equal(session_cache_find(c, &k, 1001, &got), s);
	assert_true(got.ok);
	assert_string_equal(got.verified, "yes");
	assert_string_equal(got.detail, "TLSA 3 1 1 matched depth 0");
	assert_null(session_cache_find(c, &other, 1001, &got));

	session_cache_drop(c, &k);
	assert_null(session_cache_find(c, &k, 1002, &got));
	session_cache_free(c);
}

/* An entry lapses SESSION_CACHE_TTL after its full handshake, however
   often it was resumed in between. */
static void test_age_counts_from_full_handshake(void **state)
{
	struct session_cache *c = session_cache_new();
	struct policy_host ph;
	struct session_key k;
	struct policy_verdict v = { .ok = true, .verified = "yes" }, got;
	struct tls_session *s2 = new_session();

	(void)state;
	dane_host(&ph);
	key_of(&ph, "192.0.2.1", &k);
	session_cache_put(c, &k, new_session(), &v, false, 1000);
	/* A resumed handshake stores its newer session. */
	session_cache_put(c, &k, s2, &v, true, 1000 + SESSION_CACHE_TTL - 10);
	assert_ptr_equal(session_cache_find(c, &k, 1000 + SESSION_CACHE_TTL - 1,
					    &got), s2);
	assert_null(session_cache_find(c, &k, 1000 + SESSION_CACHE_TTL, &got));
	/* A clock that went back also ends the entry. */
	session_cache_put(c, &k, new_session(), &v, false, 5000);
	assert_null(session_cache_find(c, &k, 4999, &got));
	/* A resumed session whose entry went is not kept: its age is unknown. */
	session_cache_put(c, &k, new_session(), &v, true, 6000);
	assert_null(session_cache_find(c, &k, 6000, &got));
	session_cache_free(c);
}

static void test_full_cache_drops_least_recent(void **state)
{
	struct session_cache *c = session_cache_new();
	struct policy_host ph;
	struct session_key keys[SESSION_CACHE_MAX + 1];
	struct policy_verdict v = { .ok = true, .verified = "no" }, got;
	char addr[32];

	(void)state;
	dane_host(&ph);
	for (int i = 0; i <= SESSION_CACHE_MAX; i++) {
		snprintf(addr, sizeof(addr), "10.0.%d.%d", i / 256, i % 256);
		key_of(&ph, addr, &keys[i]);
	}
	for (int i = 0; i < SESSION_CACHE_MAX; i++)
		session_cache_put(c, &keys[i], new_session(), &v, false, 100);
	/* Entry 0 was used last, so entry 1 is the least recent. */
	assert_non_null(session_cache_find(c, &keys[0], 101, &got));
	session_cache_put(c, &keys[SESSION_CACHE_MAX], new_session(), &v, false, 102);
	assert_non_null(session_cache_find(c, &keys[0], 103, &got));
	assert_null(session_cache_find(c, &keys[1], 103, &got));
	assert_non_null(session_cache_find(c, &keys[2], 103, &got));
	assert_non_null(session_cache_find(c, &keys[SESSION_CACHE_MAX], 103, &got));
	session_cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_changes),
		cmocka_unit_test(test_no_key_without_address),
		cmocka_unit_test(test_find_returns_verdict),
		cmocka_unit_test(test_age_counts_from_full_handshake),
		cmocka_unit_test(test_full_cache_drops_least_recent),
	};

	wolfSSL_Init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
