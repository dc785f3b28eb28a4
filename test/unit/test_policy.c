/*
 * The per-host policy decision: which hosts may be dialled, whether TLS
 * is required, and how the certificate is checked, for DANE, MTA-STS and
 * the levels.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "policy.h"

enum host_kind {
	HOST_NO_TLSA,
	HOST_TLSA_USABLE,	/* one 3 1 1 record */
	HOST_TLSA_UNUSABLE,	/* one 1 1 1 record */
	HOST_TLSA_FAILED,
};

enum sts_kind { STS_NONE, STS_TESTING, STS_ENFORCE };

struct policy_case {
	const char *name;
	enum conf_level level;
	enum host_kind host;
	enum sts_kind sts;
	bool host_in_sts;	/* the MX host matches the STS policy */
	bool usable;
	bool require_tls;
	enum policy_auth auth;
	const char *label;
};

static const struct policy_case cases[] = {
	{ "may without dane or sts", CONF_LEVEL_MAY, HOST_NO_TLSA, STS_NONE,
	  false, true, false, POLICY_AUTH_NONE, "may" },
	{ "encrypt requires tls", CONF_LEVEL_ENCRYPT, HOST_NO_TLSA, STS_NONE,
	  false, true, true, POLICY_AUTH_NONE, "encrypt" },
	{ "verify checks pkix", CONF_LEVEL_VERIFY, HOST_NO_TLSA, STS_NONE,
	  false, true, true, POLICY_AUTH_PKIX, "verify" },
	{ "dane-only without tlsa unusable", CONF_LEVEL_DANE_ONLY, HOST_NO_TLSA,
	  STS_NONE, false, false, false, POLICY_AUTH_NONE, "dane-only" },
	{ "usable tlsa means dane", CONF_LEVEL_MAY, HOST_TLSA_USABLE, STS_NONE,
	  false, true, true, POLICY_AUTH_DANE, "dane" },
	{ "dane wins over sts enforce", CONF_LEVEL_MAY, HOST_TLSA_USABLE,
	  STS_ENFORCE, true, true, true, POLICY_AUTH_DANE, "dane" },
	{ "unusable tlsa still requires tls", CONF_LEVEL_MAY, HOST_TLSA_UNUSABLE,
	  STS_NONE, false, true, true, POLICY_AUTH_NONE, "dane" },
	{ "unusable tlsa under sts testing", CONF_LEVEL_MAY, HOST_TLSA_UNUSABLE,
	  STS_TESTING, true, true, true, POLICY_AUTH_PKIX, "mta-sts" },
	{ "failed tlsa lookup unusable", CONF_LEVEL_MAY, HOST_TLSA_FAILED,
	  STS_ENFORCE, true, false, false, POLICY_AUTH_NONE, "dane" },
	{ "sts enforce matching host", CONF_LEVEL_MAY, HOST_NO_TLSA, STS_ENFORCE,
	  true, true, true, POLICY_AUTH_PKIX, "mta-sts" },
	{ "sts enforce other host unusable", CONF_LEVEL_MAY, HOST_NO_TLSA,
	  STS_ENFORCE, false, false, true, POLICY_AUTH_PKIX, "mta-sts" },
	{ "sts testing other host delivers", CONF_LEVEL_MAY, HOST_NO_TLSA,
	  STS_TESTING, false, true, false, POLICY_AUTH_PKIX, "mta-sts" },
};

static void make_route(enum host_kind kind, struct route *route,
		       struct route_host *host, struct tlsa_record *rec)
{
	memset(route, 0, sizeof(*route));
	memset(host, 0, sizeof(*host));
	memset(rec, 0, sizeof(*rec));
	snprintf(route->domain, sizeof(route->domain), "example.test");
	route->mx_security = DNS_SECURE;
	route->hosts = host;
	route->host_count = 1;
	snprintf(host->name, sizeof(host->name), "mx.example.test");
	snprintf(host->tlsa_base, sizeof(host->tlsa_base), "mx.example.test");

	rec->usage = kind == HOST_TLSA_USABLE ? 3 : 1;
	rec->selector = 1;
	rec->mtype = 1;
	rec->len = 32;
	host->tlsa_state = kind == HOST_NO_TLSA ? ROUTE_TLSA_NONE :
		kind == HOST_TLSA_FAILED ? ROUTE_TLSA_FAILED : ROUTE_TLSA_SECURE;
	if (host->tlsa_state == ROUTE_TLSA_SECURE) {
		host->tlsa = rec;
		host->tlsa_count = 1;
	}
}

static void make_sts(const struct policy_case *tc, struct policy_sts *sts)
{
	memset(sts, 0, sizeof(*sts));
	sts->mode = tc->sts == STS_ENFORCE ? POLICY_STS_ENFORCE : POLICY_STS_TESTING;
	snprintf(sts->id, sizeof(sts->id), "id1");
	sts->mx = policy_mx_list_new(1);
	assert_non_null(sts->mx);
	snprintf(sts->mx->mx[0], sizeof(sts->mx->mx[0]), "%s",
		 tc->host_in_sts ? "*.example.test" : "other.example.test");
}

static void check_case(const struct policy_case *tc)
{
	struct conf conf = { .policy_default = tc->level, .policy_dane = true,
			     .policy_mta_sts = true };
	struct route route;
	struct route_host host;
	struct tlsa_record rec;
	struct policy_sts sts;
	struct policy p;
	static struct policy_host ph;

	make_route(tc->host, &route, &host, &rec);
	make_sts(tc, &sts);
	policy_decide(&conf, &route, tc->sts == STS_NONE ? NULL : &sts, 0, &p);
	policy_for_host(&p, &route, &host, &ph);

	print_message("case: %s\n", tc->name);
	assert_int_equal(ph.usable, tc->usable);
	if (ph.usable)
		assert_int_equal(ph.require_tls, tc->require_tls);
	if (ph.usable)
		assert_int_equal(ph.auth, tc->auth);
	assert_string_equal(ph.label, tc->label);
	policy_clear(&p);
	policy_mx_list_unref(sts.mx);
}

static void test_policy_host_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i]);
}

static void test_policy_dane_sni_is_tlsa_base(void **state)
{
	struct conf conf = { .policy_default = CONF_LEVEL_MAY, .policy_dane = true };
	struct route route;
	struct route_host host;
	struct tlsa_record rec;
	struct policy p;
	static struct policy_host ph;

	(void)state;
	make_route(HOST_TLSA_USABLE, &route, &host, &rec);
	snprintf(host.tlsa_base, sizeof(host.tlsa_base), "real.example.test");
	policy_decide(&conf, &route, NULL, 0, &p);
	policy_for_host(&p, &route, &host, &ph);
	assert_string_equal(ph.sni, "real.example.test");
	assert_string_equal(ph.dane_names[0], "real.example.test");
	assert_string_equal(ph.dane_names[1], "example.test");
	assert_true(ph.dane_verified);
}

static void test_policy_insecure_mx_is_trusted(void **state)
{
	struct conf conf = { .policy_default = CONF_LEVEL_MAY, .policy_dane = true };
	struct route route;
	struct route_host host;
	struct tlsa_record rec;
	struct policy p;
	static struct policy_host ph;

	(void)state;
	make_route(HOST_TLSA_USABLE, &route, &host, &rec);
	route.mx_security = DNS_INSECURE;
	policy_decide(&conf, &route, NULL, 0, &p);
	policy_for_host(&p, &route, &host, &ph);
	assert_int_equal(ph.auth, POLICY_AUTH_DANE);
	assert_false(ph.dane_verified);
}

static void test_policy_sts_wildcard_one_label(void **state)
{
	struct policy_sts sts = { .mx = policy_mx_list_new(1) };

	(void)state;
	assert_non_null(sts.mx);
	snprintf(sts.mx->mx[0], sizeof(sts.mx->mx[0]), "*.example.net");
	assert_true(policy_sts_mx_match(&sts, "a.example.net"));
	assert_true(policy_sts_mx_match(&sts, "A.Example.NET."));
	assert_false(policy_sts_mx_match(&sts, "example.net"));
	assert_false(policy_sts_mx_match(&sts, "b.a.example.net"));
	assert_false(policy_sts_mx_match(&sts, "aexample.net"));
	policy_mx_list_unref(sts.mx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_host_table),
		cmocka_unit_test(test_policy_dane_sni_is_tlsa_base),
		cmocka_unit_test(test_policy_insecure_mx_is_trusted),
		cmocka_unit_test(test_policy_sts_wildcard_one_label),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
