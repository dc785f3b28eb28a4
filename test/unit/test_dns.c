/*
 * Unit tests for the pure parts of proxy/dns.c: answer classification
 * (rcode, TC, AD, answer section) and the MX and address parsers, on
 * answers built by hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "base/err.h"
#include "dns.h"

/* Header flag bytes 2 and 3 (RFC 1035 section 4.1.1, RFC 4035 3.2.3). */
#define FLAG_QR 0x80
#define FLAG_TC 0x02
#define FLAG_RD 0x01
#define FLAG_RA 0x80
#define FLAG_AD 0x20

struct msg {
	unsigned char buf[512];
	size_t len;
};

static void put8(struct msg *m, unsigned value)
{
	m->buf[m->len++] = (unsigned char)value;
}

static void put16(struct msg *m, unsigned value)
{
	put8(m, value >> 8);
	put8(m, value & 0xff);
}

/* Writes a name in wire form, where "" is the root. */
static void put_name(struct msg *m, const char *name)
{
	while (*name != '\0') {
		size_t len = strcspn(name, ".");

		put8(m, (unsigned)len);
		memcpy(m->buf + m->len, name, len);
		m->len += len;
		name += len;
		if (*name == '.')
			name++;
	}
	put8(m, 0);
}

static void put_header(struct msg *m, unsigned flags2, unsigned flags3,
		       unsigned ancount)
{
	m->len = 0;
	put16(m, 0x1234);
	put8(m, FLAG_QR | FLAG_RD | flags2);
	put8(m, FLAG_RA | flags3);
	put16(m, 1);
	put16(m, ancount);
	put16(m, 0);
	put16(m, 0);
}

static void put_question(struct msg *m, const char *name, unsigned type)
{
	put_name(m, name);
	put16(m, type);
	put16(m, ns_c_in);
}

/* Starts a record owned by the question name (pointer to offset 12). */
static void put_rr_start(struct msg *m, unsigned type, unsigned class,
			 unsigned rdlen)
{
	put16(m, 0xc00c);
	put16(m, type);
	put16(m, class);
	put16(m, 0);
	put16(m, 300);
	put16(m, rdlen);
}

static void put_mx(struct msg *m, unsigned preference, const char *exchange)
{
	struct msg rdata = {0};

	put16(&rdata, preference);
	put_name(&rdata, exchange);
	put_rr_start(m, ns_t_mx, ns_c_in, (unsigned)rdata.len);
	memcpy(m->buf + m->len, rdata.buf, rdata.len);
	m->len += rdata.len;
}

static void put_a(struct msg *m, const char *ip)
{
	put_rr_start(m, ns_t_a, ns_c_in, 4);
	inet_pton(AF_INET, ip, m->buf + m->len);
	m->len += 4;
}

/* The answers that the classification table uses. */
enum sample {
	SAMPLE_MX_ONE,		/* NOERROR, one MX record */
	SAMPLE_NO_ANSWER,	/* NOERROR, empty answer section */
	SAMPLE_NXDOMAIN,
	SAMPLE_SERVFAIL,
	SAMPLE_REFUSED,
	SAMPLE_TRUNCATED,	/* TC bit set */
	SAMPLE_SHORT_HEADER,	/* 8 bytes */
	SAMPLE_MISSING_RR,	/* ancount 1, no record */
	SAMPLE_RDATA_OVERRUN,	/* rdlength past the end */
	SAMPLE_QUERY_NOT_ANSWER, /* QR bit clear */
	SAMPLE_CNAME_ONLY,	/* MX query answered by a CNAME alone */
	SAMPLE_CNAME_THEN_A,	/* A query answered by CNAME and A */
	SAMPLE_OTHER_CLASS,	/* MX record of class CH */
};

static void build(struct msg *m, enum sample sample, unsigned flags3)
{
	switch (sample) {
	case SAMPLE_MX_ONE:
		put_header(m, 0, flags3, 1);
		put_question(m, "signed.test", ns_t_mx);
		put_mx(m, 10, "mx1.signed.test");
		break;
	case SAMPLE_NO_ANSWER:
		put_header(m, 0, flags3, 0);
		put_question(m, "signed.test", ns_t_mx);
		break;
	case SAMPLE_NXDOMAIN:
		put_header(m, 0, flags3 | ns_r_nxdomain, 0);
		put_question(m, "nx.plain.test", ns_t_mx);
		break;
	case SAMPLE_SERVFAIL:
		put_header(m, 0, flags3 | ns_r_servfail, 0);
		put_question(m, "bogus.test", ns_t_mx);
		break;
	case SAMPLE_REFUSED:
		put_header(m, 0, flags3 | ns_r_refused, 0);
		put_question(m, "signed.test", ns_t_mx);
		break;
	case SAMPLE_TRUNCATED:
		put_header(m, FLAG_TC, flags3, 0);
		put_question(m, "signed.test", ns_t_mx);
		break;
	case SAMPLE_SHORT_HEADER:
		put_header(m, 0, flags3, 0);
		m->len = 8;
		break;
	case SAMPLE_MISSING_RR:
		put_header(m, 0, flags3, 1);
		put_question(m, "signed.test", ns_t_mx);
		break;
	case SAMPLE_RDATA_OVERRUN:
		put_header(m, 0, flags3, 1);
		put_question(m, "signed.test", ns_t_mx);
		put_rr_start(m, ns_t_mx, ns_c_in, 40);
		put16(m, 10);
		break;
	case SAMPLE_QUERY_NOT_ANSWER:
		put_header(m, 0, flags3, 0);
		m->buf[2] &= (unsigned char)~FLAG_QR;
		put_question(m, "signed.test", ns_t_mx);
		break;
	case SAMPLE_CNAME_ONLY:
		put_header(m, 0, flags3, 1);
		put_question(m, "alias.plain.test", ns_t_mx);
		put_rr_start(m, ns_t_cname, ns_c_in, 2);
		put16(m, 0xc00c);
		break;
	case SAMPLE_CNAME_THEN_A:
		put_header(m, 0, flags3, 2);
		put_question(m, "alias.plain.test", ns_t_a);
		put_rr_start(m, ns_t_cname, ns_c_in, 2);
		put16(m, 0xc00c);
		put_a(m, "127.0.25.1");
		break;
	case SAMPLE_OTHER_CLASS:
		put_header(m, 0, flags3, 1);
		put_question(m, "signed.test", ns_t_mx);
		put_rr_start(m, ns_t_mx, ns_c_chaos, 3);
		put16(m, 10);
		put8(m, 0);
		break;
	}
}

struct classify_case {
	const char *name;
	enum sample sample;
	int qtype;
	unsigned flags3;
	bool trust_ad;
	int ret;
	enum dns_outcome outcome;
	enum dns_security security;
	int rcode;
};

static const struct classify_case classify_cases[] = {
	{ "mx with AD from trusted server", SAMPLE_MX_ONE,
	  ns_t_mx, FLAG_AD, true,
	  0, DNS_ANSWER, DNS_SECURE, 0 },
	{ "mx with AD from untrusted server", SAMPLE_MX_ONE,
	  ns_t_mx, FLAG_AD, false,
	  0, DNS_ANSWER, DNS_INSECURE, 0 },
	{ "mx without AD", SAMPLE_MX_ONE, ns_t_mx, 0, true,
	  0, DNS_ANSWER, DNS_INSECURE, 0 },
	{ "answer of another type", SAMPLE_MX_ONE, ns_t_a, FLAG_AD, true,
	  0, DNS_NODATA, DNS_SECURE, 0 },
	{ "empty answer section", SAMPLE_NO_ANSWER, ns_t_mx, 0, true,
	  0, DNS_NODATA, DNS_INSECURE, 0 },
	{ "empty answer with AD", SAMPLE_NO_ANSWER, ns_t_mx, FLAG_AD, true,
	  0, DNS_NODATA, DNS_SECURE, 0 },
	{ "nxdomain", SAMPLE_NXDOMAIN, ns_t_mx, 0, true,
	  0, DNS_NXDOMAIN, DNS_INSECURE, ns_r_nxdomain },
	{ "nxdomain with AD", SAMPLE_NXDOMAIN, ns_t_mx, FLAG_AD, true,
	  0, DNS_NXDOMAIN, DNS_SECURE, ns_r_nxdomain },
	{ "servfail", SAMPLE_SERVFAIL, ns_t_mx, 0, true,
	  0, DNS_ERROR, DNS_BOGUS, ns_r_servfail },
	{ "refused", SAMPLE_REFUSED, ns_t_mx, 0, true,
	  0, DNS_ERROR, DNS_INDETERMINATE, ns_r_refused },
	{ "truncated answer", SAMPLE_TRUNCATED, ns_t_mx, FLAG_AD, true,
	  0, DNS_ERROR, DNS_INDETERMINATE, 0 },
	{ "short header", SAMPLE_SHORT_HEADER, ns_t_mx, 0, true,
	  BASE_EPROTO, DNS_ERROR, DNS_INDETERMINATE, -1 },
	{ "missing answer record", SAMPLE_MISSING_RR, ns_t_mx, FLAG_AD, true,
	  BASE_EPROTO, DNS_ERROR, DNS_INDETERMINATE, 0 },
	{ "rdata past the end", SAMPLE_RDATA_OVERRUN, ns_t_mx, FLAG_AD, true,
	  BASE_EPROTO, DNS_ERROR, DNS_INDETERMINATE, 0 },
	{ "query instead of answer", SAMPLE_QUERY_NOT_ANSWER, ns_t_mx, 0, true,
	  BASE_EPROTO, DNS_ERROR, DNS_INDETERMINATE, -1 },
	{ "cname without target records", SAMPLE_CNAME_ONLY, ns_t_mx, 0, true,
	  0, DNS_NODATA, DNS_INSECURE, 0 },
	{ "cname followed by address", SAMPLE_CNAME_THEN_A, ns_t_a, 0, true,
	  0, DNS_ANSWER, DNS_INSECURE, 0 },
	{ "record of another class", SAMPLE_OTHER_CLASS, ns_t_mx, 0, true,
	  0, DNS_NODATA, DNS_INSECURE, 0 },
};

static void test_dns_classify_table(void **state)
{
	for (size_t i = 0; i < sizeof(classify_cases) / sizeof(*classify_cases);
	     i++) {
		const struct classify_case *c = &classify_cases[i];
		struct dns_result result;
		struct msg m = {0};
		int ret;

		build(&m, c->sample, c->flags3);
		ret = dns_classify(m.buf, m.len, c->qtype, c->trust_ad,
				   &result);
		print_message("case: %s\n", c->name);
		assert_int_equal(ret, c->ret);
		assert_int_equal(result.outcome, c->outcome);
		assert_int_equal(result.security, c->security);
		assert_int_equal(result.rcode, c->rcode);
		assert_ptr_equal(result.abuf, m.buf);
		assert_int_equal(result.alen, m.len);
	}
}

static void test_dns_classify_null_buffer(void **state)
{
	struct dns_result result;

	assert_int_equal(dns_classify(NULL, 0, ns_t_mx, true, &result),
			 BASE_EPROTO);
	assert_int_equal(result.outcome, DNS_ERROR);
	assert_int_equal(result.security, DNS_INDETERMINATE);
}

static void test_dns_classify_every_prefix(void **state)
{
	struct msg m = {0};

	/* No cut of a valid answer may read past its end (ASan checks). */
	build(&m, SAMPLE_CNAME_THEN_A, FLAG_AD);
	for (size_t len = 0; len < m.len; len++) {
		struct dns_result result;

		dns_classify(m.buf, len, ns_t_a, true, &result);
		assert_int_not_equal(result.outcome, DNS_ANSWER);
	}
}

static void test_dns_parse_mx_normalizes(void **state)
{
	struct dns_result result;
	struct dns_mx *mx;
	size_t count;
	struct msg m = {0};

	put_header(&m, 0, 0, 3);
	put_question(&m, "plain.test", ns_t_mx);
	put_mx(&m, 20, "MX2.Plain.Test");
	put_mx(&m, 10, "mx1.plain.test");
	put_mx(&m, 0, "");
	assert_int_equal(dns_classify(m.buf, m.len, ns_t_mx, false, &result),
			 0);

	assert_int_equal(dns_parse_mx(&result, &mx, &count), 0);
	assert_int_equal(count, 3);
	assert_string_equal(mx[0].exchange, "mx2.plain.test");
	assert_int_equal(mx[0].preference, 20);
	assert_string_equal(mx[1].exchange, "mx1.plain.test");
	assert_int_equal(mx[1].preference, 10);
	assert_string_equal(mx[2].exchange, "");
	assert_int_equal(mx[2].preference, 0);
	free(mx);
}

static void test_dns_parse_addrs_follows_cname(void **state)
{
	struct sockaddr_storage addrs[4];
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&addrs[0];
	struct dns_result result;
	char text[INET_ADDRSTRLEN];
	size_t count;
	struct msg m = {0};

	build(&m, SAMPLE_CNAME_THEN_A, 0);
	assert_int_equal(dns_classify(m.buf, m.len, ns_t_a, false, &result),
			 0);

	assert_int_equal(dns_parse_addrs(&result, ns_t_a, 25, addrs, 4,
					 &count), 0);
	assert_int_equal(count, 1);
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 25);
	inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
	assert_string_equal(text, "127.0.25.1");
}

static void test_dns_parse_addrs_respects_max(void **state)
{
	struct sockaddr_storage addrs[1];
	struct dns_result result;
	size_t count;
	struct msg m = {0};

	put_header(&m, 0, 0, 2);
	put_question(&m, "mx1.signed.test", ns_t_a);
	put_a(&m, "127.0.25.1");
	put_a(&m, "127.0.25.2");
	dns_classify(m.buf, m.len, ns_t_a, false, &result);

	assert_int_equal(dns_parse_addrs(&result, ns_t_a, 25, addrs, 1,
					 &count), 0);
	assert_int_equal(count, 1);
}

static void test_dns_security_names(void **state)
{
	assert_string_equal(dns_security_name(DNS_SECURE), "secure");
	assert_string_equal(dns_security_name(DNS_INSECURE), "insecure");
	assert_string_equal(dns_security_name(DNS_BOGUS), "bogus");
	assert_string_equal(dns_security_name(DNS_INDETERMINATE),
			    "indeterminate");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dns_classify_table),
		cmocka_unit_test(test_dns_classify_null_buffer),
		cmocka_unit_test(test_dns_classify_every_prefix),
		cmocka_unit_test(test_dns_parse_mx_normalizes),
		cmocka_unit_test(test_dns_parse_addrs_follows_cname),
		cmocka_unit_test(test_dns_parse_addrs_respects_max),
		cmocka_unit_test(test_dns_security_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
