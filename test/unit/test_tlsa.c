/*
 * Unit tests for tlsa/: record parsing, usability, selection with digest
 * agility, DANE-EE and DANE-TA matching and the DNS-ID name check. The
 * group setup runs tlsa-certs.sh once into a temporary folder, and every
 * expected digest is computed from the DER and SPKI files that the openssl
 * command wrote there, so no key or digest is a constant. Every table row
 * runs as its own cmocka test named after the row.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "rows.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/hash.h>

#include "base/err.h"
#include "tlsa/tlsa.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define FILE_MAX 65536
#define DAY 86400

/* The certificates tlsa-certs.sh writes; NO_CERT ends a list. */
enum cert_id {
	NO_CERT,
	CA, LEAF, REISSUED, RSA_LEAF, OTHER, WILD, CNONLY, PARTIAL, TLDWILD,
	MULTI, EXPIRED, ROOT, INT, INTLEAF, NOTCA, NOTCALEAF, SHORT,
	SHORTINT, SHORTLEAF,
	CERT_COUNT,
};

static const char *const cert_files[CERT_COUNT] = {
	[CA] = "ca", [LEAF] = "leaf", [REISSUED] = "reissued",
	[RSA_LEAF] = "rsa", [OTHER] = "other", [WILD] = "wild",
	[CNONLY] = "cnonly", [PARTIAL] = "partial", [TLDWILD] = "tldwild",
	[MULTI] = "multi", [EXPIRED] = "expired", [ROOT] = "root",
	[INT] = "int", [INTLEAF] = "intleaf", [NOTCA] = "notca",
	[NOTCALEAF] = "notcaleaf", [SHORT] = "short",
	[SHORTINT] = "shortint", [SHORTLEAF] = "shortleaf",
};

struct blob {
	uint8_t *data;
	size_t len;
};

/* The generated test PKI: one DER and one SPKI file per certificate. */
struct pki {
	char dir[64];
	bool dir_made;			/* dir exists and must be removed */
	struct blob der[CERT_COUNT];
	struct blob spki[CERT_COUNT];
};

/* Set by the group setup; cmocka hands table rows, not group state, to
   the tests. */
static struct pki *pki;

/* How a test record differs from the correct one. */
enum rr_flaw {
	RR_GOOD,
	RR_WRONG,	/* last byte of the association data flipped */
	RR_SHORT,	/* last byte of the association data dropped */
};

/* A TLSA record made from a certificate of the test PKI. */
struct rr_spec {
	uint8_t usage;
	uint8_t selector;
	uint8_t mtype;
	enum cert_id cert;	/* NO_CERT ends the list */
	enum rr_flaw flaw;
};

#define RR(u, s, m, c) { (u), (s), (m), (c), RR_GOOD }
#define RR_BAD(u, s, m, c, f) { (u), (s), (m), (c), (f) }
#define RR_MAX 8

struct verify_case {
	const char *name;
	struct rr_spec rrs[RR_MAX];
	enum cert_id chain[5];		/* leaf first; NO_CERT ends it */
	const char *names[4];		/* NULL ends the list */
	int64_t now_offset;		/* seconds added to the current time */
	bool matched;
	size_t depth;			/* checked when matched */
	uint8_t mtype;			/* of the matched record */
	const char *reason;		/* substring, checked on no match */
};

static const struct verify_case verify_cases[] = {
	{ "ee_spki_sha256_leaf", { RR(3, 1, 1, LEAF) }, { LEAF, CA },
	  { "mx.example.test" }, 0, true, 0, 1, NULL },
	{ "ee_spki_matches_reissued_expired_cert", { RR(3, 1, 1, LEAF) },
	  { REISSUED }, { "mx.example.test" }, 0, true, 0, 1, NULL },
	{ "ee_cert_digest_misses_reissued_cert", { RR(3, 0, 1, LEAF) },
	  { REISSUED }, { "mx.example.test" }, 0, false, 0, 0,
	  "no TLSA record matched the certificate chain" },
	{ "ee_key_of_non_leaf_fails", { RR(3, 1, 1, CA) }, { LEAF, CA },
	  { "mx.example.test" }, 0, false, 0, 0,
	  "no TLSA record matched the certificate chain" },
	{ "ee_leaf_sent_second_fails", { RR(3, 1, 1, LEAF) }, { CA, LEAF },
	  { "mx.example.test" }, 0, false, 0, 0, "no TLSA record matched" },
	{ "ee_rsa_spki_sha256", { RR(3, 1, 1, RSA_LEAF) }, { RSA_LEAF, CA },
	  { "mx.example.test" }, 0, true, 0, 1, NULL },
	{ "ee_rsa_spki_full", { RR(3, 1, 0, RSA_LEAF) }, { RSA_LEAF, CA },
	  { "mx.example.test" }, 0, true, 0, 0, NULL },
	{ "ee_spki_sha512", { RR(3, 1, 2, LEAF) }, { LEAF, CA },
	  { "mx.example.test" }, 0, true, 0, 2, NULL },
	{ "ee_cert_sha256", { RR(3, 0, 1, LEAF) }, { LEAF, CA },
	  { "mx.example.test" }, 0, true, 0, 1, NULL },
	{ "ee_cert_full", { RR(3, 0, 0, LEAF) }, { LEAF, CA },
	  { "mx.example.test" }, 0, true, 0, 0, NULL },
	{ "ee_spki_full", { RR(3, 1, 0, LEAF) }, { LEAF, CA },
	  { "mx.example.test" }, 0, true, 0, 0, NULL },
	{ "ee_wrong_full_cert_fails", { RR_BAD(3, 0, 0, LEAF, RR_WRONG) },
	  { LEAF, CA }, { "mx.example.test" }, 0, false, 0, 0,
	  "no TLSA record matched" },
	{ "ee_ignores_names_and_dates", { RR(3, 1, 1, EXPIRED) },
	  { EXPIRED }, { "unrelated.example.org" }, 0, true, 0, 1, NULL },
	{ "ee_second_record_matches",
	  { RR(3, 1, 1, OTHER), RR(3, 1, 1, LEAF) }, { LEAF, CA },
	  { "mx.example.test" }, 0, true, 0, 1, NULL },

	{ "ta_ca_sent_leaf_names_mx", { RR(2, 1, 1, CA) }, { LEAF, CA },
	  { "mx.example.test", "example.test" }, 0, true, 1, 1, NULL },
	{ "ta_ca_cert_sha512", { RR(2, 0, 2, CA) }, { LEAF, CA },
	  { "mx.example.test" }, 0, true, 1, 2, NULL },
	{ "ta_ca_not_sent_fails", { RR(2, 1, 1, CA) }, { LEAF },
	  { "mx.example.test", "example.test" }, 0, false, 0, 0,
	  "no TLSA record matched the certificate chain" },
	{ "ta_leaf_names_neither", { RR(2, 1, 1, CA) }, { OTHER, CA },
	  { "mx.example.test", "example.test" }, 0, false, 0, 0,
	  "DANE-TA matched depth 1 but the leaf names neither "
	  "mx.example.test nor example.test" },
	{ "ta_leaf_names_none_of_three", { RR(2, 1, 1, CA) }, { OTHER, CA },
	  { "a.example.test", "b.example.test", "c.example.test" }, 0,
	  false, 0, 0, "leaf names none of a.example.test, b.example.test, "
	  "c.example.test" },
	{ "ta_leaf_does_not_name_one", { RR(2, 1, 1, CA) }, { OTHER, CA },
	  { "mx.example.test" }, 0, false, 0, 0,
	  "leaf does not name mx.example.test" },
	{ "ta_same_name_twice_named_once", { RR(2, 1, 1, CA) },
	  { OTHER, CA }, { "example.test", "Example.Test." }, 0, false, 0, 0,
	  "DANE-TA matched depth 1 but the leaf does not name example.test" },
	{ "ta_second_name_matches", { RR(2, 1, 1, CA) }, { LEAF, CA },
	  { "mx1.example.org", "MX.Example.TEST." }, 0, true, 1, 1, NULL },
	{ "ta_intermediate_cert", { RR(2, 0, 1, INT) },
	  { INTLEAF, INT, ROOT }, { "mx.example.test" }, 0, true, 1, 1,
	  NULL },
	{ "ta_root_of_three", { RR(2, 0, 1, ROOT) }, { INTLEAF, INT, ROOT },
	  { "mx.example.test" }, 0, true, 2, 1, NULL },
	{ "ta_root_without_intermediate_fails", { RR(2, 0, 1, ROOT) },
	  { INTLEAF, ROOT }, { "mx.example.test" }, 0, false, 0, 0,
	  "DANE-TA matched depth 1 but the chain did not verify: "
	  "certificate at depth 0 is not signed" },
	{ "ta_wrong_issuer_fails", { RR(2, 1, 1, ROOT) }, { LEAF, ROOT },
	  { "mx.example.test" }, 0, false, 0, 0, "is not signed" },
	{ "ta_non_ca_intermediate_fails", { RR(2, 0, 1, ROOT) },
	  { NOTCALEAF, NOTCA, ROOT }, { "mx.example.test" }, 0, false, 0, 0,
	  "certificate at depth 1 is not a CA" },
	{ "ta_path_length_exceeded", { RR(2, 0, 1, SHORT) },
	  { SHORTLEAF, SHORTINT, SHORT }, { "mx.example.test" }, 0, false,
	  0, 0, "certificate at depth 2 allows only 0 intermediate CAs" },
	{ "ta_path_length_zero_direct", { RR(2, 0, 1, SHORTINT) },
	  { SHORTLEAF, SHORTINT, SHORT }, { "mx.example.test" }, 0, true, 1,
	  1, NULL },
	{ "ta_expired_leaf_fails", { RR(2, 1, 1, CA) }, { EXPIRED, CA },
	  { "mx.example.test" }, 0, false, 0, 0,
	  "chain did not verify: certificate at depth 0 has expired" },
	{ "ta_now_after_expiry_fails", { RR(2, 1, 1, CA) }, { LEAF, CA },
	  { "mx.example.test" }, 60 * DAY, false, 0, 0, "has expired" },
	{ "ta_now_before_issue_fails", { RR(2, 1, 1, CA) }, { LEAF, CA },
	  { "mx.example.test" }, -2 * DAY, false, 0, 0, "is not valid yet" },
	{ "ta_matching_leaf_not_accepted", { RR(2, 1, 1, LEAF) },
	  { LEAF, CA }, { "mx.example.test" }, 0, false, 0, 0,
	  "matched the leaf certificate itself" },
	{ "ta_wildcard_leaf", { RR(2, 1, 1, CA) }, { WILD, CA },
	  { "mx.example.test" }, 0, true, 1, 1, NULL },
	{ "ta_partial_wildcard_fails", { RR(2, 1, 1, CA) }, { PARTIAL, CA },
	  { "foo.example.test" }, 0, false, 0, 0,
	  "leaf does not name foo.example.test" },
	{ "ta_cn_only_leaf_fails", { RR(2, 1, 1, CA) }, { CNONLY, CA },
	  { "mx.example.test" }, 0, false, 0, 0,
	  "leaf does not name mx.example.test" },
	{ "ta_no_names_fails", { RR(2, 1, 1, CA) }, { LEAF, CA }, { NULL },
	  0, false, 0, 0, "no reference name" },
	{ "ta_ee_tried_first", { RR(2, 1, 1, CA), RR(3, 1, 1, LEAF) },
	  { LEAF, CA }, { "mx.example.test" }, 0, true, 0, 1, NULL },

	{ "agility_sha512_kept_over_sha256",
	  { RR_BAD(3, 1, 1, LEAF, RR_WRONG), RR(3, 1, 2, LEAF) },
	  { LEAF, CA }, { "mx.example.test" }, 0, true, 0, 2, NULL },
	{ "agility_sha256_dropped_by_sha512",
	  { RR(3, 1, 1, LEAF), RR_BAD(3, 1, 2, LEAF, RR_WRONG) },
	  { LEAF, CA }, { "mx.example.test" }, 0, false, 0, 0,
	  "no TLSA record matched" },
	{ "agility_malformed_sha512_ignored",
	  { RR(3, 1, 1, LEAF), RR_BAD(3, 1, 2, LEAF, RR_SHORT) },
	  { LEAF, CA }, { "mx.example.test" }, 0, true, 0, 1, NULL },
	{ "agility_full_kept_beside_sha512",
	  { RR(3, 1, 0, LEAF), RR_BAD(3, 1, 2, LEAF, RR_WRONG) },
	  { LEAF, CA }, { "mx.example.test" }, 0, true, 0, 0, NULL },
	{ "agility_per_selector",
	  { RR(3, 0, 1, LEAF), RR_BAD(3, 1, 2, LEAF, RR_WRONG) },
	  { LEAF, CA }, { "mx.example.test" }, 0, true, 0, 1, NULL },
	{ "agility_per_usage",
	  { RR(2, 1, 1, CA), RR_BAD(3, 1, 2, LEAF, RR_WRONG) },
	  { LEAF, CA }, { "mx.example.test" }, 0, true, 1, 1, NULL },

	{ "unusable_only_matches_nothing",
	  { RR(1, 1, 1, LEAF), RR(0, 0, 1, LEAF), RR(3, 2, 1, LEAF),
	    RR(3, 1, 7, LEAF), RR_BAD(3, 1, 1, LEAF, RR_SHORT),
	    RR(4, 1, 1, LEAF) },
	  { LEAF, CA }, { "mx.example.test" }, 0, false, 0, 0,
	  "no usable TLSA record" },
	{ "no_certificate_sent", { RR(3, 1, 1, LEAF) }, { NO_CERT },
	  { "mx.example.test" }, 0, false, 0, 0,
	  "the server sent no certificate" },
};

struct select_case {
	const char *name;
	struct rr_spec rrs[RR_MAX];
	size_t keep[RR_MAX];
	size_t kept;
};

static const struct select_case select_cases[] = {
	{ "unusable_only_keeps_none",
	  { RR(1, 1, 1, LEAF), RR(0, 0, 1, LEAF), RR(3, 2, 1, LEAF),
	    RR(3, 1, 7, LEAF), RR_BAD(3, 1, 1, LEAF, RR_SHORT),
	    RR(4, 1, 1, LEAF), RR(3, 1, 255, LEAF), RR(255, 1, 1, LEAF) },
	  { 0 }, 0 },
	{ "good_record_among_unusable",
	  { RR(1, 1, 1, LEAF), RR(0, 0, 1, LEAF), RR(3, 2, 1, LEAF),
	    RR(3, 1, 7, LEAF), RR_BAD(3, 1, 1, LEAF, RR_SHORT),
	    RR(4, 1, 1, LEAF), RR(3, 1, 1, LEAF) },
	  { 6 }, 1 },
	{ "strongest_digest_per_pair",
	  { RR(3, 1, 1, LEAF), RR(3, 1, 2, LEAF), RR(3, 1, 0, LEAF),
	    RR(2, 1, 1, CA), RR(2, 0, 2, CA), RR(2, 0, 1, CA) },
	  { 1, 2, 3, 4 }, 4 },
	{ "malformed_sha512_does_not_hide_sha256",
	  { RR_BAD(3, 1, 2, LEAF, RR_SHORT), RR(3, 1, 1, LEAF) },
	  { 1 }, 1 },
	{ "equal_digests_all_kept",
	  { RR(3, 1, 1, LEAF), RR(3, 1, 1, RSA_LEAF), RR(3, 1, 1, OTHER) },
	  { 0, 1, 2 }, 3 },
};

struct usable_case {
	const char *name;
	struct tlsa_record rec;
	bool expected;
};

static const struct usable_case usable_cases[] = {
	{ "dane_ee_sha256", { 3, 1, 1, { 0 }, 32, 32, false }, true },
	{ "dane_ta_sha256", { 2, 0, 1, { 0 }, 32, 32, false }, true },
	{ "dane_ee_sha512", { 3, 1, 2, { 0 }, 64, 64, false }, true },
	{ "dane_ee_full_short", { 3, 0, 0, { 0 }, 1, 1, false }, true },
	{ "dane_ee_full_hashed", { 3, 0, 0, { 0 }, 64, 700, true }, true },
	{ "sha256_31_bytes", { 3, 1, 1, { 0 }, 31, 31, false }, false },
	{ "sha256_33_bytes", { 3, 1, 1, { 0 }, 33, 33, false }, false },
	{ "sha256_hashed", { 3, 1, 1, { 0 }, 64, 100, true }, false },
	{ "sha512_63_bytes", { 3, 1, 2, { 0 }, 63, 63, false }, false },
	{ "full_empty", { 3, 1, 0, { 0 }, 0, 0, false }, false },
	{ "pkix_ta", { 0, 0, 1, { 0 }, 32, 32, false }, false },
	{ "pkix_ee", { 1, 1, 1, { 0 }, 32, 32, false }, false },
	{ "usage_4", { 4, 1, 1, { 0 }, 32, 32, false }, false },
	{ "usage_255", { 255, 1, 1, { 0 }, 32, 32, false }, false },
	{ "selector_2", { 3, 2, 1, { 0 }, 32, 32, false }, false },
	{ "selector_255", { 3, 255, 1, { 0 }, 32, 32, false }, false },
	{ "mtype_3", { 3, 1, 3, { 0 }, 32, 32, false }, false },
	{ "mtype_7", { 3, 1, 7, { 0 }, 32, 32, false }, false },
	{ "mtype_255", { 3, 1, 255, { 0 }, 32, 32, false }, false },
	{ "length_past_data", { 3, 1, 0, { 0 }, 65, 65, false }, false },
};

struct names_case {
	const char *name;
	enum cert_id cert;
	const char *host;
	bool expected;
};

static const struct names_case names_cases[] = {
	{ "exact", LEAF, "mx.example.test", true },
	{ "case_ignored", LEAF, "MX.Example.TEST", true },
	{ "trailing_dot_ignored", LEAF, "mx.example.test.", true },
	{ "parent_not_covered", LEAF, "example.test", false },
	{ "child_not_covered", LEAF, "a.mx.example.test", false },
	{ "other_name", OTHER, "mx.example.test", false },
	{ "wildcard_one_label", WILD, "mx.example.test", true },
	{ "wildcard_case_and_dot", WILD, "MX.Example.Test.", true },
	{ "wildcard_not_two_labels", WILD, "a.mx.example.test", false },
	{ "wildcard_not_parent", WILD, "example.test", false },
	{ "wildcard_under_tld_rejected", TLDWILD, "example.test", false },
	{ "partial_wildcard_rejected", PARTIAL, "foo.example.test", false },
	{ "partial_wildcard_not_f", PARTIAL, "f.example.test", false },
	{ "partial_wildcard_literal", PARTIAL, "f*.example.test", false },
	{ "cn_only_rejected", CNONLY, "mx.example.test", false },
	{ "later_dns_id", MULTI, "mail.example.org", true },
	{ "dns_id_with_dot_and_case", MULTI, "mx2.example.test", true },
	{ "ip_address_not_dns_id", MULTI, "192.0.2.1", false },
	{ "email_not_dns_id", MULTI, "postmaster@example.test", false },
	{ "empty_host", LEAF, "", false },
	{ "wildcard_reference_same_wildcard", WILD, "*.example.test", true },
	{ "wildcard_reference_covers_leaf", LEAF, "*.example.test", true },
	{ "wildcard_reference_not_two_labels", LEAF, "*.test", false },
	{ "wildcard_reference_other_parent", LEAF, "*.example.org", false },
	{ "wildcard_reference_partial", PARTIAL, "*.example.test", false },
};

static int read_file(const char *path, struct blob *out)
{
	FILE *f = fopen(path, "rb");
	uint8_t *data;
	size_t len;

	if (f == NULL)
		return -1;
	data = malloc(FILE_MAX);
	if (data == NULL) {
		fclose(f);
		return -1;
	}
	len = fread(data, 1, FILE_MAX, f);
	fclose(f);
	if (len == 0 || len == FILE_MAX) {
		free(data);
		return -1;
	}
	out->data = data;
	out->len = len;
	return 0;
}

/* The generator sits next to this file; the suite runs from the root. */
static const char *find_script(char *buf, size_t len)
{
	const char *slash = strrchr(__FILE__, '/');

	if (slash != NULL) {
		snprintf(buf, len, "%.*s/tlsa-certs.sh",
			 (int)(slash - __FILE__), __FILE__);
		if (access(buf, R_OK) == 0)
			return buf;
	}
	snprintf(buf, len, "test/unit/tlsa-certs.sh");
	return access(buf, R_OK) == 0 ? buf : NULL;
}

static int load_pki(struct pki *p)
{
	char path[128];

	for (int id = NO_CERT + 1; id < CERT_COUNT; id++) {
		snprintf(path, sizeof(path), "%s/%s.der", p->dir,
			 cert_files[id]);
		if (read_file(path, &p->der[id]) != 0)
			return -1;
		snprintf(path, sizeof(path), "%s/%s.spki", p->dir,
			 cert_files[id]);
		if (read_file(path, &p->spki[id]) != 0)
			return -1;
	}
	return 0;
}

static int group_setup(void **state)
{
	char script[512];
	char cmd[1024];

	if (wolfSSL_Init() != WOLFSSL_SUCCESS)
		return -1;
	pki = calloc(1, sizeof(*pki));
	if (pki == NULL)
		return -1;
	snprintf(pki->dir, sizeof(pki->dir), "/tmp/mxlock-tlsa-XXXXXX");
	if (mkdtemp(pki->dir) == NULL)
		return -1;
	pki->dir_made = true;
	if (find_script(script, sizeof(script)) == NULL) {
		fprintf(stderr, "tlsa-certs.sh not found\n");
		return -1;
	}

	snprintf(cmd, sizeof(cmd), "bash '%s' '%s' >'%s/generate.log' 2>&1",
		 script, pki->dir, pki->dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "%s failed, see %s/generate.log\n", script,
			pki->dir);
		return -1;
	}
	return load_pki(pki);
}

static int group_teardown(void **state)
{
	char cmd[128];

	if (pki != NULL) {
		for (int id = 0; id < CERT_COUNT; id++) {
			free(pki->der[id].data);
			free(pki->spki[id].data);
		}
		if (pki->dir_made) {
			snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", pki->dir);
			if (system(cmd) != 0)
				fprintf(stderr, "could not remove %s\n",
					pki->dir);
		}
		free(pki);
		pki = NULL;
	}
	wolfSSL_Cleanup();
	return 0;
}

/* Builds the RDATA of spec from the generated files and parses it. */
static void build_record(const struct rr_spec *spec, struct tlsa_record *rec)
{
	const struct blob *src = spec->selector == TLSA_SEL_SPKI ?
		&pki->spki[spec->cert] : &pki->der[spec->cert];
	uint8_t rdata[3 + FILE_MAX];
	size_t len;

	rdata[0] = spec->usage;
	rdata[1] = spec->selector;
	rdata[2] = spec->mtype;
	if (spec->mtype == TLSA_MATCH_FULL) {
		memcpy(rdata + 3, src->data, src->len);
		len = src->len;
	} else if (spec->mtype == TLSA_MATCH_SHA512) {
		assert_int_equal(wc_Sha512Hash(src->data, (word32)src->len,
					       rdata + 3), 0);
		len = 64;
	} else {
		/* Unassigned matching types get SHA2-256 data too. */
		assert_int_equal(wc_Sha256Hash(src->data, (word32)src->len,
					       rdata + 3), 0);
		len = 32;
	}

	if (spec->flaw == RR_WRONG)
		rdata[3 + len - 1] ^= 0x01;
	if (spec->flaw == RR_SHORT)
		len--;
	assert_int_equal(tlsa_record_parse(rdata, 3 + len, rec), 0);
}

static size_t build_records(const struct rr_spec *specs,
			    struct tlsa_record recs[RR_MAX])
{
	size_t n = 0;

	while (n < RR_MAX && specs[n].cert != NO_CERT) {
		build_record(&specs[n], &recs[n]);
		n++;
	}
	return n;
}

static void test_verify(void **state)
{
	const struct verify_case *c = *state;
	struct tlsa_record recs[RR_MAX];
	struct tlsa_cert chain[5];
	struct tlsa_result result;
	size_t rec_count = build_records(c->rrs, recs);
	size_t chain_len = 0;
	size_t name_count = 0;

	while (chain_len < COUNT(c->chain) && c->chain[chain_len] != NO_CERT) {
		const struct blob *der = &pki->der[c->chain[chain_len]];

		chain[chain_len].der = der->data;
		chain[chain_len].len = der->len;
		chain_len++;
	}
	while (name_count < COUNT(c->names) && c->names[name_count] != NULL)
		name_count++;

	assert_int_equal(tlsa_verify(recs, rec_count, chain, chain_len,
				     c->names, name_count,
				     (int64_t)time(NULL) + c->now_offset,
				     &result), 0);
	if (!c->matched) {
		assert_false(result.matched);
		print_message("reason: %s\n", result.reason);
		assert_non_null(strstr(result.reason, c->reason));
		return;
	}
	assert_true(result.matched);
	assert_int_equal(result.depth, c->depth);
	assert_int_equal(result.record.mtype, c->mtype);
	assert_string_equal(result.reason, "");
}

static void test_select(void **state)
{
	const struct select_case *c = *state;
	struct tlsa_record recs[RR_MAX];
	size_t keep[TLSA_RECORDS_MAX];
	size_t kept = 99;
	size_t count = build_records(c->rrs, recs);

	tlsa_select(recs, count, keep, &kept);
	assert_int_equal(kept, c->kept);
	for (size_t i = 0; i < kept && i < c->kept; i++)
		assert_int_equal(keep[i], c->keep[i]);
}

static void test_usable(void **state)
{
	const struct usable_case *c = *state;

	assert_int_equal(tlsa_record_usable(&c->rec), c->expected);
}

static void test_names(void **state)
{
	const struct names_case *c = *state;
	const struct blob *der = &pki->der[c->cert];

	assert_int_equal(tlsa_cert_names_match(der->data, der->len, c->host),
			 c->expected);
}

static void test_parse_fields(void **state)
{
	uint8_t rdata[3 + 32];
	struct tlsa_record rec;

	rdata[0] = 3;
	rdata[1] = 1;
	rdata[2] = 1;
	for (size_t i = 0; i < 32; i++)
		rdata[3 + i] = (uint8_t)i;

	assert_int_equal(tlsa_record_parse(rdata, sizeof(rdata), &rec), 0);
	assert_int_equal(rec.usage, 3);
	assert_int_equal(rec.selector, 1);
	assert_int_equal(rec.mtype, 1);
	assert_int_equal(rec.len, 32);
	assert_int_equal(rec.full_len, 32);
	assert_false(rec.full_hashed);
	assert_memory_equal(rec.data, rdata + 3, 32);
	assert_true(tlsa_record_usable(&rec));
}

static void test_parse_too_short(void **state)
{
	const uint8_t rdata[] = { 3, 1, 1, 0xab };
	struct tlsa_record rec;

	assert_int_equal(tlsa_record_parse(rdata, 3, &rec), BASE_EINVAL);
	assert_int_equal(tlsa_record_parse(rdata, 2, &rec), BASE_EINVAL);
	assert_int_equal(tlsa_record_parse(rdata, 0, &rec), BASE_EINVAL);
	assert_int_equal(tlsa_record_parse(NULL, 4, &rec), BASE_EINVAL);
	assert_int_equal(tlsa_record_parse(rdata, 4, NULL), BASE_EINVAL);
	assert_int_equal(tlsa_record_parse(rdata, 4, &rec), 0);
	assert_int_equal(rec.len, 1);
}

static void test_parse_full_64_kept(void **state)
{
	uint8_t rdata[3 + 64] = { 3, 0, 0 };
	struct tlsa_record rec;

	memset(rdata + 3, 0x5a, 64);
	assert_int_equal(tlsa_record_parse(rdata, sizeof(rdata), &rec), 0);
	assert_false(rec.full_hashed);
	assert_int_equal(rec.len, 64);
	assert_memory_equal(rec.data, rdata + 3, 64);
}

static void test_parse_long_full_hashed(void **state)
{
	uint8_t rdata[3 + 100] = { 2, 0, 0 };
	uint8_t digest[64];
	struct tlsa_record rec;

	memset(rdata + 3, 0xa5, 100);
	assert_int_equal(wc_Sha512Hash(rdata + 3, 100, digest), 0);
	assert_int_equal(tlsa_record_parse(rdata, sizeof(rdata), &rec), 0);
	assert_true(rec.full_hashed);
	assert_int_equal(rec.len, 64);
	assert_int_equal(rec.full_len, 100);
	assert_memory_equal(rec.data, digest, 64);
	assert_true(tlsa_record_usable(&rec));
}

/* A SHA2-256 record with 65 bytes parses, as a record, but is unusable. */
static void test_parse_long_digest_unusable(void **state)
{
	uint8_t rdata[3 + 65] = { 3, 1, 1 };
	struct tlsa_record rec;

	assert_int_equal(tlsa_record_parse(rdata, sizeof(rdata), &rec), 0);
	assert_int_equal(rec.full_len, 65);
	assert_false(tlsa_record_usable(&rec));
}

static void test_verify_rejects_null_arguments(void **state)
{
	struct tlsa_cert chain = { pki->der[LEAF].data, pki->der[LEAF].len };
	const char *names[] = { "mx.example.test", NULL };
	struct tlsa_result result;

	assert_int_equal(tlsa_verify(NULL, 0, &chain, 1, NULL, 0, 0, NULL),
			 BASE_EINVAL);
	assert_int_equal(tlsa_verify(NULL, 0, &chain, 1, names, 2, 0,
				     &result), BASE_EINVAL);
	assert_int_equal(tlsa_verify(NULL, 0, NULL, 1, names, 1, 0, &result),
			 BASE_EINVAL);
	assert_int_equal(tlsa_verify(NULL, 0, &chain, 1, names, 1, 0,
				     &result), 0);
	assert_false(result.matched);
}

/* Bytes that are no certificate match no TLSA record and no name. */
static void test_verify_garbage_leaf(void **state)
{
	static const uint8_t garbage[] = { 0x30, 0x03, 0x02, 0x01, 0x00 };
	const struct rr_spec spec = RR(3, 1, 1, LEAF);
	struct tlsa_cert chain = { garbage, sizeof(garbage) };
	const char *names[] = { "mx.example.test" };
	struct tlsa_record rec;
	struct tlsa_result result;

	build_record(&spec, &rec);
	assert_int_equal(tlsa_verify(&rec, 1, &chain, 1, names, 1,
				     (int64_t)time(NULL), &result), 0);
	assert_false(result.matched);
	assert_false(tlsa_cert_names_match(garbage, sizeof(garbage),
					   "mx.example.test"));
}

/* A record past TLSA_RECORDS_MAX is ignored by tlsa_select. */
static void test_select_ignores_past_max(void **state)
{
	const struct rr_spec good = RR(3, 1, 1, LEAF);
	const struct rr_spec pkix = RR(1, 1, 1, LEAF);
	struct tlsa_record recs[TLSA_RECORDS_MAX + 1];
	size_t keep[TLSA_RECORDS_MAX];
	size_t kept;

	for (size_t i = 0; i < TLSA_RECORDS_MAX; i++)
		build_record(&pkix, &recs[i]);
	build_record(&good, &recs[TLSA_RECORDS_MAX]);

	tlsa_select(recs, TLSA_RECORDS_MAX + 1, keep, &kept);
	assert_int_equal(kept, 0);
}

static const struct CMUnitTest fixed_tests[] = {
	cmocka_unit_test(test_parse_fields),
	cmocka_unit_test(test_parse_too_short),
	cmocka_unit_test(test_parse_full_64_kept),
	cmocka_unit_test(test_parse_long_full_hashed),
	cmocka_unit_test(test_parse_long_digest_unusable),
	cmocka_unit_test(test_verify_rejects_null_arguments),
	cmocka_unit_test(test_verify_garbage_leaf),
	cmocka_unit_test(test_select_ignores_past_max),
};

int main(void)
{
	size_t max = COUNT(verify_cases) + COUNT(select_cases) +
		     COUNT(usable_cases) + COUNT(names_cases) +
		     COUNT(fixed_tests);
	struct CMUnitTest *tests = calloc(max, sizeof(*tests));
	size_t rows;
	size_t n = 0;
	int failed;

	assert_non_null(tests);
	add_rows(tests, &n, "verify", test_verify, verify_cases,
		 sizeof(verify_cases[0]), COUNT(verify_cases));
	add_rows(tests, &n, "select", test_select, select_cases,
		 sizeof(select_cases[0]), COUNT(select_cases));
	add_rows(tests, &n, "usable", test_usable, usable_cases,
		 sizeof(usable_cases[0]), COUNT(usable_cases));
	add_rows(tests, &n, "names", test_names, names_cases,
		 sizeof(names_cases[0]), COUNT(names_cases));
	rows = n;
	for (size_t i = 0; i < COUNT(fixed_tests); i++)
		tests[n++] = fixed_tests[i];

	failed = _cmocka_run_group_tests("tlsa", tests, n, group_setup,
					 group_teardown);
	for (size_t i = 0; i < rows; i++)
		free((char *)tests[i].name);
	free(tests);
	return failed;
}
