/*
 * Unit tests for proxy/dns.c. Answer classification (rcode, TC, AD, answer
 * section), the MX, address and TLSA parsers and TTL extraction run on
 * answers built by hand. The cache and the DNSKEY probe run against a small
 * UDP server on 127.0.0.1 that answers every query the same way.
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
#include <uv.h>

#include "base/err.h"
#include "conf/conf.h"
#include "dns.h"
#include "tlsa/tlsa.h"

/* Header flag bytes 2 and 3 (RFC 1035 section 4.1.1, RFC 4035 3.2.3). */
#define FLAG_QR 0x80
#define FLAG_TC 0x02
#define FLAG_RD 0x01
#define FLAG_RA 0x80
#define FLAG_AD 0x20

#define DNS_QUESTION_OFFSET 12

struct msg {
	unsigned char buf[4096];
	size_t len;
};

static int read_type(const struct msg *m);

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

/*
 * Starts a record: owner NULL is the question name (a pointer to offset
 * 12), else the name written out.
 */
static void put_rr_head(struct msg *m, const char *owner, unsigned type,
			unsigned class, uint32_t ttl, unsigned rdlen)
{
	if (owner == NULL)
		put16(m, 0xc00c);
	else
		put_name(m, owner);
	put16(m, type);
	put16(m, class);
	put16(m, ttl >> 16);
	put16(m, ttl & 0xffff);
	put16(m, rdlen);
}

/* Starts a record owned by the question name, with TTL 300. */
static void put_rr_start(struct msg *m, unsigned type, unsigned class,
			 unsigned rdlen)
{
	put_rr_head(m, NULL, type, class, 300, rdlen);
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

static void put_a_named(struct msg *m, const char *owner, const char *ip)
{
	put_rr_head(m, owner, ns_t_a, ns_c_in, 300, 4);
	inet_pton(AF_INET, ip, m->buf + m->len);
	m->len += 4;
}

static void put_cname(struct msg *m, const char *owner, const char *target)
{
	struct msg rdata = {0};

	put_name(&rdata, target);
	put_rr_head(m, owner, ns_t_cname, ns_c_in, 300, (unsigned)rdata.len);
	memcpy(m->buf + m->len, rdata.buf, rdata.len);
	m->len += rdata.len;
}

/* A TLSA record whose association data is data_len bytes of fill. */
static void put_tlsa(struct msg *m, const char *owner, unsigned usage,
		     unsigned selector, unsigned mtype, size_t data_len,
		     unsigned fill)
{
	put_rr_head(m, owner, ns_t_tlsa, ns_c_in, 300,
		    (unsigned)(3 + data_len));
	put8(m, usage);
	put8(m, selector);
	put8(m, mtype);
	memset(m->buf + m->len, (int)fill, data_len);
	m->len += data_len;
}

/* An SOA record with the given record TTL and MINIMUM field. */
static void put_soa(struct msg *m, const char *owner, uint32_t ttl,
		    uint32_t minimum)
{
	struct msg rdata = {0};

	put_name(&rdata, "ns.test");
	put_name(&rdata, "hostmaster.test");
	for (int i = 0; i < 4; i++) {
		put16(&rdata, 0);
		put16(&rdata, 3600);
	}
	put16(&rdata, minimum >> 16);
	put16(&rdata, minimum & 0xffff);
	put_rr_head(m, owner, ns_t_soa, ns_c_in, ttl, (unsigned)rdata.len);
	memcpy(m->buf + m->len, rdata.buf, rdata.len);
	m->len += rdata.len;
}

/* Sets the authority record count (header bytes 8 and 9). */
static void set_nscount(struct msg *m, unsigned count)
{
	m->buf[8] = (unsigned char)(count >> 8);
	m->buf[9] = (unsigned char)(count & 0xff);
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
		put_cname(m, NULL, "MX1.Signed.Test");
		put_a_named(m, "mx1.signed.test", "127.0.25.1");
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
	char target[256];
	size_t count;
	struct msg m = {0};

	build(&m, SAMPLE_CNAME_THEN_A, 0);
	assert_int_equal(dns_classify(m.buf, m.len, ns_t_a, false, &result),
			 0);

	assert_int_equal(dns_parse_addrs(&result, ns_t_a, 25, addrs, 4,
					 &count, target, sizeof(target)), 0);
	assert_int_equal(count, 1);
	assert_string_equal(target, "mx1.signed.test");
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
					 &count, NULL, 0), 0);
	assert_int_equal(count, 1);
}

struct target_case {
	const char *name;
	int sample;
	const char *target;
};

enum target_sample {
	TARGET_NO_CNAME,	/* A records owned by the question name */
	TARGET_TWO_CNAMES,	/* alias -> middle -> final, then A */
	TARGET_NODATA_CNAME,	/* AAAA query: a CNAME, no AAAA record */
	TARGET_CNAME_LOOP,	/* a -> b -> a */
	TARGET_BAD_LABEL,	/* CNAME to a name with a space in a label */
};

static void build_target(struct msg *m, int sample)
{
	switch (sample) {
	case TARGET_NO_CNAME:
		put_header(m, 0, 0, 1);
		put_question(m, "MX1.signed.test", ns_t_a);
		put_a(m, "127.0.25.1");
		break;
	case TARGET_TWO_CNAMES:
		put_header(m, 0, 0, 3);
		put_question(m, "alias.signed.test", ns_t_a);
		put_cname(m, "middle.signed.test", "final.signed.test");
		put_cname(m, NULL, "middle.signed.test");
		put_a_named(m, "final.signed.test", "127.0.25.1");
		break;
	case TARGET_NODATA_CNAME:
		put_header(m, 0, 0, 1);
		put_question(m, "alias.signed.test", ns_t_aaaa);
		put_cname(m, NULL, "final.signed.test");
		break;
	case TARGET_CNAME_LOOP:
		put_header(m, 0, 0, 3);
		put_question(m, "a.signed.test", ns_t_a);
		put_cname(m, NULL, "b.signed.test");
		put_cname(m, "b.signed.test", "a.signed.test");
		put_a_named(m, "a.signed.test", "127.0.25.1");
		break;
	case TARGET_BAD_LABEL:
		put_header(m, 0, 0, 1);
		put_question(m, "alias.signed.test", ns_t_aaaa);
		put_cname(m, NULL, "bad name.signed.test");
		break;
	}
}

static const struct target_case target_cases[] = {
	{ "no cname gives question name", TARGET_NO_CNAME, "mx1.signed.test" },
	{ "chain of two cnames", TARGET_TWO_CNAMES, "final.signed.test" },
	{ "cname without address", TARGET_NODATA_CNAME, "final.signed.test" },
	{ "cname loop", TARGET_CNAME_LOOP, "" },
	{ "target not a host name", TARGET_BAD_LABEL, "" },
};

static void test_dns_parse_addrs_target_table(void **state)
{
	for (size_t i = 0; i < sizeof(target_cases) / sizeof(*target_cases);
	     i++) {
		const struct target_case *c = &target_cases[i];
		struct sockaddr_storage addrs[4];
		struct dns_result result;
		char target[256];
		size_t count;
		struct msg m = {0};
		int type;

		build_target(&m, c->sample);
		type = read_type(&m);
		print_message("case: %s\n", c->name);
		assert_int_equal(dns_classify(m.buf, m.len, type, false,
					      &result), 0);
		dns_parse_addrs(&result, type, 25, addrs, 4, &count, target,
				sizeof(target));
		assert_string_equal(target, c->target);
	}
}

/* TLSA parsing ----------------------------------------------------------- */

enum tlsa_sample {
	TLSA_ONE,		/* one 3 1 1 record */
	TLSA_SEVERAL,		/* 3 1 1, 2 0 1, 3 1 2 */
	TLSA_WRONG_TYPE,	/* an A record, then a TLSA record */
	TLSA_CNAME_THEN_TLSA,	/* owner is a CNAME; TLSA at its target */
	TLSA_OTHER_OWNER,	/* TLSA owned by an unrelated name */
	TLSA_TRUNCATED_RDATA,	/* rdlength 2 */
	TLSA_ZERO_DATA,		/* rdlength 3: no association data */
	TLSA_RDLEN_PAST_END,	/* rdlength runs past the message */
	TLSA_OTHER_CLASS,	/* TLSA of class CH */
	TLSA_NO_QUESTION,	/* qdcount 0 */
	TLSA_POINTER_LOOP,	/* owner name points at itself */
	TLSA_TOO_MANY,		/* 40 records */
	TLSA_USABLE_LAST,	/* 40 unusable records, then one usable */
};

#define TLSA_OWNER "_25._tcp.mx1.signed.test"

static void build_tlsa(struct msg *m, enum tlsa_sample sample)
{
	switch (sample) {
	case TLSA_ONE:
		put_header(m, 0, FLAG_AD, 1);
		put_question(m, TLSA_OWNER, ns_t_tlsa);
		put_tlsa(m, NULL, 3, 1, 1, 32, 0xab);
		break;
	case TLSA_SEVERAL:
		put_header(m, 0, FLAG_AD, 3);
		put_question(m, TLSA_OWNER, ns_t_tlsa);
		put_tlsa(m, NULL, 3, 1, 1, 32, 0x01);
		put_tlsa(m, NULL, 2, 0, 1, 32, 0x02);
		put_tlsa(m, NULL, 3, 1, 2, 64, 0x03);
		break;
	case TLSA_WRONG_TYPE:
		put_header(m, 0, FLAG_AD, 2);
		put_question(m, TLSA_OWNER, ns_t_tlsa);
		put_a(m, "127.0.25.1");
		put_tlsa(m, NULL, 3, 1, 1, 32, 0xab);
		break;
	case TLSA_CNAME_THEN_TLSA:
		put_header(m, 0, FLAG_AD, 2);
		put_question(m, TLSA_OWNER, ns_t_tlsa);
		put_cname(m, NULL, "_25._tcp.Other.signed.test");
		put_tlsa(m, "_25._tcp.other.signed.test", 3, 1, 1, 32, 0xab);
		break;
	case TLSA_OTHER_OWNER:
		put_header(m, 0, FLAG_AD, 1);
		put_question(m, TLSA_OWNER, ns_t_tlsa);
		put_tlsa(m, "_25._tcp.other.signed.test", 3, 1, 1, 32, 0xab);
		break;
	case TLSA_TRUNCATED_RDATA:
		put_header(m, 0, FLAG_AD, 1);
		put_question(m, TLSA_OWNER, ns_t_tlsa);
		put_rr_start(m, ns_t_tlsa, ns_c_in, 2);
		put8(m, 3);
		put8(m, 1);
		break;
	case TLSA_ZERO_DATA:
		put_header(m, 0, FLAG_AD, 1);
		put_question(m, TLSA_OWNER, ns_t_tlsa);
		put_tlsa(m, NULL, 3, 1, 1, 0, 0);
		break;
	case TLSA_RDLEN_PAST_END:
		put_header(m, 0, FLAG_AD, 1);
		put_question(m, TLSA_OWNER, ns_t_tlsa);
		put_rr_start(m, ns_t_tlsa, ns_c_in, 35);
		put8(m, 3);
		put8(m, 1);
		put8(m, 1);
		break;
	case TLSA_OTHER_CLASS:
		put_header(m, 0, FLAG_AD, 1);
		put_question(m, TLSA_OWNER, ns_t_tlsa);
		put_rr_start(m, ns_t_tlsa, ns_c_chaos, 4);
		put8(m, 3);
		put8(m, 1);
		put8(m, 1);
		put8(m, 0);
		break;
	case TLSA_NO_QUESTION:
		put_header(m, 0, FLAG_AD, 0);
		m->buf[5] = 0;
		break;
	case TLSA_POINTER_LOOP:
		put_header(m, 0, FLAG_AD, 1);
		put_question(m, TLSA_OWNER, ns_t_tlsa);
		put16(m, 0xc000 | (unsigned)m->len);
		put16(m, ns_t_tlsa);
		put16(m, ns_c_in);
		put16(m, 0);
		put16(m, 300);
		put16(m, 4);
		put16(m, 0x0301);
		put16(m, 0x0100);
		break;
	case TLSA_TOO_MANY:
		put_header(m, 0, FLAG_AD, 40);
		put_question(m, TLSA_OWNER, ns_t_tlsa);
		for (unsigned i = 0; i < 40; i++)
			put_tlsa(m, NULL, 3, 1, 1, 32, i);
		break;
	case TLSA_USABLE_LAST:
		put_header(m, 0, FLAG_AD, 41);
		put_question(m, TLSA_OWNER, ns_t_tlsa);
		for (unsigned i = 0; i < 40; i++)
			put_tlsa(m, NULL, 1, 1, 1, 32, i);
		put_tlsa(m, NULL, 3, 0, 1, 32, 0xee);
		break;
	}
}

struct tlsa_case {
	const char *name;
	enum tlsa_sample sample;
	int ret;
	size_t count;
	uint8_t usage;		/* of the first record, when count > 0 */
	size_t len;		/* its data length */
};

static const struct tlsa_case tlsa_cases[] = {
	{ "one record", TLSA_ONE, 0, 1, 3, 32 },
	{ "several records", TLSA_SEVERAL, 0, 3, 3, 32 },
	{ "other type skipped", TLSA_WRONG_TYPE, 0, 1, 3, 32 },
	{ "cname then tlsa", TLSA_CNAME_THEN_TLSA, 0, 1, 3, 32 },
	{ "unrelated owner skipped", TLSA_OTHER_OWNER, 0, 0, 0, 0 },
	{ "truncated rdata skipped", TLSA_TRUNCATED_RDATA, 0, 0, 0, 0 },
	{ "zero-length data skipped", TLSA_ZERO_DATA, 0, 0, 0, 0 },
	{ "rdlength past the end", TLSA_RDLEN_PAST_END, BASE_EPROTO, 0, 0, 0 },
	{ "other class skipped", TLSA_OTHER_CLASS, 0, 0, 0, 0 },
	{ "no question", TLSA_NO_QUESTION, BASE_EPROTO, 0, 0, 0 },
	{ "pointer loop", TLSA_POINTER_LOOP, BASE_EPROTO, 0, 0, 0 },
	{ "too many usable records", TLSA_TOO_MANY, BASE_ETOOLONG, 0, 0, 0 },
	{ "usable record past the maximum kept", TLSA_USABLE_LAST, 0,
	  TLSA_RECORDS_MAX, 3, 32 },
};

static void test_dns_parse_tlsa_table(void **state)
{
	for (size_t i = 0; i < sizeof(tlsa_cases) / sizeof(*tlsa_cases); i++) {
		const struct tlsa_case *c = &tlsa_cases[i];
		struct tlsa_record recs[TLSA_RECORDS_MAX + 8];
		size_t count = 99;
		struct msg m = {0};

		build_tlsa(&m, c->sample);
		print_message("case: %s\n", c->name);
		assert_int_equal(dns_parse_tlsa(m.buf, m.len, recs,
						TLSA_RECORDS_MAX + 8, &count),
				 c->ret);
		assert_int_equal(count, c->count);
		if (c->count == 0)
			continue;
		assert_int_equal(recs[0].usage, c->usage);
		assert_int_equal(recs[0].len, c->len);
	}
}

static void test_dns_parse_tlsa_fields(void **state)
{
	struct tlsa_record recs[4];
	size_t count;
	struct msg m = {0};

	build_tlsa(&m, TLSA_SEVERAL);
	assert_int_equal(dns_parse_tlsa(m.buf, m.len, recs, 4, &count), 0);
	assert_int_equal(count, 3);
	assert_int_equal(recs[1].usage, 2);
	assert_int_equal(recs[1].selector, 0);
	assert_int_equal(recs[1].mtype, 1);
	assert_int_equal(recs[1].data[0], 0x02);
	assert_int_equal(recs[2].mtype, 2);
	assert_int_equal(recs[2].len, 64);
}

static void test_dns_parse_tlsa_respects_max(void **state)
{
	struct tlsa_record recs[2];
	size_t count;
	struct msg m = {0};

	/* Three usable records do not fit in two: dropping one could hide
	   the record that matches, so the answer is refused. */
	build_tlsa(&m, TLSA_SEVERAL);
	assert_int_equal(dns_parse_tlsa(m.buf, m.len, recs, 2, &count),
			 BASE_ETOOLONG);
}

static void test_dns_parse_tlsa_every_prefix(void **state)
{
	struct tlsa_record recs[TLSA_RECORDS_MAX];
	struct msg m = {0};

	/* No cut of a valid answer may read past its end (ASan checks). */
	build_tlsa(&m, TLSA_CNAME_THEN_TLSA);
	for (size_t len = 0; len < m.len; len++) {
		size_t count;

		dns_parse_tlsa(m.buf, len, recs, TLSA_RECORDS_MAX, &count);
		assert_int_equal(count, 0);
	}
	assert_int_equal(dns_parse_tlsa(NULL, 0, recs, 1, &(size_t){0}),
			 BASE_EPROTO);
}

/* TTL extraction --------------------------------------------------------- */

enum ttl_sample {
	TTL_ANSWER_LOWEST,	/* A records with TTL 300 and 120 */
	TTL_ANSWER_CAPPED,	/* TTL 7200 */
	TTL_ANSWER_TOP_BIT,	/* TTL 0x80000001 */
	TTL_NXDOMAIN_MINIMUM,	/* SOA TTL 600, MINIMUM 60 */
	TTL_NODATA_SOA_TTL,	/* SOA TTL 30, MINIMUM 300 */
	TTL_NODATA_NO_SOA,
	TTL_NXDOMAIN_CNAME,	/* CNAME TTL 10, then SOA 60/60 */
	TTL_SERVFAIL,
	TTL_SOA_TOO_SHORT,	/* SOA rdlength 10 */
};

static void build_ttl(struct msg *m, enum ttl_sample sample)
{
	switch (sample) {
	case TTL_ANSWER_LOWEST:
		put_header(m, 0, 0, 2);
		put_question(m, "mx1.signed.test", ns_t_a);
		put_rr_head(m, NULL, ns_t_a, ns_c_in, 300, 4);
		put16(m, 0x7f00);
		put16(m, 0x1901);
		put_rr_head(m, NULL, ns_t_a, ns_c_in, 120, 4);
		put16(m, 0x7f00);
		put16(m, 0x1902);
		break;
	case TTL_ANSWER_CAPPED:
	case TTL_ANSWER_TOP_BIT:
		put_header(m, 0, 0, 1);
		put_question(m, "mx1.signed.test", ns_t_a);
		put_rr_head(m, NULL, ns_t_a, ns_c_in,
			    sample == TTL_ANSWER_CAPPED ? 7200 : 0x80000001u,
			    4);
		put16(m, 0x7f00);
		put16(m, 0x1901);
		break;
	case TTL_NXDOMAIN_MINIMUM:
		put_header(m, 0, ns_r_nxdomain, 0);
		put_question(m, "nx.signed.test", ns_t_a);
		put_soa(m, "signed.test", 600, 60);
		set_nscount(m, 1);
		break;
	case TTL_NODATA_SOA_TTL:
		put_header(m, 0, 0, 0);
		put_question(m, "mx1.signed.test", ns_t_aaaa);
		put_soa(m, "signed.test", 30, 300);
		set_nscount(m, 1);
		break;
	case TTL_NODATA_NO_SOA:
		put_header(m, 0, 0, 0);
		put_question(m, "mx1.signed.test", ns_t_aaaa);
		break;
	case TTL_NXDOMAIN_CNAME:
		put_header(m, 0, ns_r_nxdomain, 1);
		put_question(m, "alias.signed.test", ns_t_a);
		put_rr_head(m, NULL, ns_t_cname, ns_c_in, 10, 2);
		put16(m, 0xc00c);
		put_soa(m, "signed.test", 60, 60);
		set_nscount(m, 1);
		break;
	case TTL_SERVFAIL:
		put_header(m, 0, ns_r_servfail, 0);
		put_question(m, "bogus.test", ns_t_a);
		break;
	case TTL_SOA_TOO_SHORT:
		put_header(m, 0, 0, 0);
		put_question(m, "mx1.signed.test", ns_t_aaaa);
		put_rr_head(m, "signed.test", ns_t_soa, ns_c_in, 60, 10);
		memset(m->buf + m->len, 0, 10);
		m->len += 10;
		set_nscount(m, 1);
		break;
	}
}

struct ttl_case {
	const char *name;
	enum ttl_sample sample;
	int ret;
	uint32_t ttl;
};

static const struct ttl_case ttl_cases[] = {
	{ "answer takes lowest ttl", TTL_ANSWER_LOWEST, 0, 120 },
	{ "answer ttl capped", TTL_ANSWER_CAPPED, 0, DNS_CACHE_TTL_MAX },
	{ "ttl with top bit is zero", TTL_ANSWER_TOP_BIT, 0, 0 },
	{ "nxdomain uses soa minimum", TTL_NXDOMAIN_MINIMUM, 0, 60 },
	{ "nodata uses lower soa ttl", TTL_NODATA_SOA_TTL, 0, 30 },
	{ "negative without soa", TTL_NODATA_NO_SOA, 0, 0 },
	{ "cname ttl bounds negative", TTL_NXDOMAIN_CNAME, 0, 10 },
	{ "servfail not cached", TTL_SERVFAIL, 0, 0 },
	{ "soa rdata too short", TTL_SOA_TOO_SHORT, BASE_EPROTO, 0 },
};

static void test_dns_answer_ttl_table(void **state)
{
	for (size_t i = 0; i < sizeof(ttl_cases) / sizeof(*ttl_cases); i++) {
		const struct ttl_case *c = &ttl_cases[i];
		struct dns_result result;
		uint32_t ttl = 12345;
		struct msg m = {0};

		build_ttl(&m, c->sample);
		print_message("case: %s\n", c->name);
		assert_int_equal(dns_classify(m.buf, m.len, read_type(&m),
					      true, &result), 0);
		assert_int_equal(dns_answer_ttl(&result, &ttl), c->ret);
		assert_int_equal(ttl, c->ttl);
	}
}

static void test_dns_answer_ttl_every_prefix(void **state)
{
	struct msg m = {0};

	build_ttl(&m, TTL_NXDOMAIN_CNAME);
	for (size_t len = 0; len < m.len; len++) {
		struct dns_result result = {
			.outcome = DNS_NXDOMAIN,
			.abuf = m.buf,
			.alen = len,
		};
		uint32_t ttl;

		assert_int_equal(dns_answer_ttl(&result, &ttl), BASE_EPROTO);
		assert_int_equal(ttl, 0);
	}
}

/* Cache and probe, against a UDP server on loopback ------------------------ */

/* Answers every query with an A or DNSKEY record, or with an rcode. */
struct fake_server {
	uv_udp_t udp;
	struct sockaddr_in addr;
	unsigned queries;
	unsigned rcode;		/* 0 answers with one record */
	bool ad;		/* sets the AD flag */
	uint32_t ttl;
};

/* Returns the question's type, which follows the name at offset 12. */
static int read_type(const struct msg *m)
{
	size_t off = DNS_QUESTION_OFFSET;

	while (off < m->len && m->buf[off] != 0)
		off += 1 + m->buf[off];
	if (off + 3 > m->len)
		return -1;
	return m->buf[off + 1] << 8 | m->buf[off + 2];
}

/* Builds the reply to query (qlen bytes) into m. */
static void fake_reply(const struct fake_server *fake,
		       const unsigned char *query, size_t qlen, struct msg *m)
{
	struct msg q = { .len = qlen };
	size_t question_end = DNS_QUESTION_OFFSET;
	int type;

	memcpy(q.buf, query, qlen < sizeof(q.buf) ? qlen : sizeof(q.buf));
	type = read_type(&q);
	while (question_end < qlen && query[question_end] != 0)
		question_end += 1 + query[question_end];
	question_end += 5;

	put_header(m, 0, fake->rcode | (fake->ad ? FLAG_AD : 0),
		   fake->rcode == 0 ? 1 : 0);
	m->buf[0] = query[0];
	m->buf[1] = query[1];
	memcpy(m->buf + m->len, query + DNS_QUESTION_OFFSET,
	       question_end - DNS_QUESTION_OFFSET);
	m->len += question_end - DNS_QUESTION_OFFSET;
	if (fake->rcode != 0)
		return;
	if (type == ns_t_dnskey) {
		put_rr_head(m, NULL, ns_t_dnskey, ns_c_in, fake->ttl, 6);
		put16(m, 257);
		put16(m, 0x030d);
		put16(m, 0x0102);
		return;
	}
	put_rr_head(m, NULL, ns_t_a, ns_c_in, fake->ttl, 4);
	put16(m, 0x7f00);
	put16(m, 0x0009);
}

static void fake_alloc_cb(uv_handle_t *handle, size_t size, uv_buf_t *buf)
{
	static char storage[4096];

	buf->base = storage;
	buf->len = sizeof(storage);
}

static void fake_recv_cb(uv_udp_t *udp, ssize_t nread, const uv_buf_t *buf,
			 const struct sockaddr *from, unsigned flags)
{
	struct fake_server *fake = udp->data;
	struct msg reply = {0};
	uv_buf_t out;

	if (nread < DNS_QUESTION_OFFSET || from == NULL)
		return;
	fake->queries++;
	fake_reply(fake, (const unsigned char *)buf->base, (size_t)nread,
		   &reply);
	out = uv_buf_init((char *)reply.buf, (unsigned)reply.len);
	uv_udp_try_send(udp, &out, 1, from);
}

static void fake_start(uv_loop_t *loop, struct fake_server *fake)
{
	int len = sizeof(fake->addr);

	assert_int_equal(uv_udp_init(loop, &fake->udp), 0);
	fake->udp.data = fake;
	uv_ip4_addr("127.0.0.1", 0, &fake->addr);
	assert_int_equal(uv_udp_bind(&fake->udp,
				     (const struct sockaddr *)&fake->addr, 0),
			 0);
	uv_udp_getsockname(&fake->udp, (struct sockaddr *)&fake->addr, &len);
	assert_int_equal(uv_udp_recv_start(&fake->udp, fake_alloc_cb,
					   fake_recv_cb), 0);
}

/* A loop, a fake server, and a resolver that sends only to that server. */
struct dns_env {
	uv_loop_t loop;
	struct fake_server fake;
	struct conf_dns_server server;
	struct conf conf;
	struct dns *dns;
};

static void env_start(struct dns_env *env)
{
	memset(env, 0, sizeof(*env));
	assert_int_equal(uv_loop_init(&env->loop), 0);
	env->fake.ttl = 300;
	fake_start(&env->loop, &env->fake);
	snprintf(env->server.address, sizeof(env->server.address),
		 "127.0.0.1");
	env->server.port = ntohs(env->fake.addr.sin_port);
	env->conf.dns_servers = &env->server;
	env->conf.dns_server_count = 1;
	env->conf.limits.timeouts.dns = 2000;
	assert_int_equal(dns_new(&env->loop, &env->conf, &env->dns), 0);
}

static void env_stop(struct dns_env *env)
{
	dns_free(env->dns);
	uv_close((uv_handle_t *)&env->fake.udp, NULL);
	uv_run(&env->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&env->loop), 0);
}

struct lookup_state {
	unsigned calls;
	enum dns_outcome outcome;
	enum dns_security security;
};

static void record_cb(void *arg, const struct dns_result *result)
{
	struct lookup_state *st = arg;

	st->calls++;
	st->outcome = result->outcome;
	st->security = result->security;
}

static void tick_cb(uv_timer_t *timer)
{
}

/*
 * Runs the loop until *calls reaches want, for at most about 5 s. A ticking
 * timer keeps each round from blocking once the last callback has run.
 */
static void run_until_count(struct dns_env *env, const unsigned *calls,
			    unsigned want)
{
	uv_timer_t tick;

	uv_timer_init(&env->loop, &tick);
	uv_timer_start(&tick, tick_cb, 10, 10);
	for (int i = 0; i < 500 && *calls < want; i++)
		uv_run(&env->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&tick, NULL);
	uv_run(&env->loop, UV_RUN_NOWAIT);
}

static void run_until(struct dns_env *env, const unsigned *calls)
{
	run_until_count(env, calls, 1);
}

static void run_until_called(struct dns_env *env, struct lookup_state *st)
{
	run_until(env, &st->calls);
}

static void test_dns_cache_hit_is_async(void **state)
{
	struct lookup_state first = {0}, second = {0};
	struct dns_env env;

	env_start(&env);
	assert_int_equal(dns_lookup(env.dns, "cached.test", ns_t_a, record_cb,
				    &first, NULL), 0);
	run_until_called(&env, &first);
	assert_int_equal(first.calls, 1);
	assert_int_equal(first.outcome, DNS_ANSWER);
	assert_int_equal(env.fake.queries, 1);

	/* The same name, in another case and with a trailing dot. */
	assert_int_equal(dns_lookup(env.dns, "Cached.Test.", ns_t_a, record_cb,
				    &second, NULL), 0);
	assert_int_equal(second.calls, 0);
	run_until_called(&env, &second);
	assert_int_equal(second.calls, 1);
	assert_int_equal(second.outcome, DNS_ANSWER);
	assert_int_equal(second.security, DNS_INSECURE);
	assert_int_equal(env.fake.queries, 1);
	env_stop(&env);
}

static void test_dns_cache_hit_can_be_canceled(void **state)
{
	struct lookup_state first = {0}, second = {0};
	struct dns_query *q;
	struct dns_env env;

	env_start(&env);
	dns_lookup(env.dns, "cached.test", ns_t_a, record_cb, &first, NULL);
	run_until_called(&env, &first);

	assert_int_equal(dns_lookup(env.dns, "cached.test", ns_t_a, record_cb,
				    &second, &q), 0);
	dns_cancel(q);
	for (int i = 0; i < 5; i++)
		uv_run(&env.loop, UV_RUN_NOWAIT);
	assert_int_equal(second.calls, 0);
	env_stop(&env);
}

static void test_dns_cache_skips_errors(void **state)
{
	struct lookup_state first = {0}, second = {0};
	struct dns_env env;

	env_start(&env);
	env.fake.rcode = ns_r_servfail;
	dns_lookup(env.dns, "bogus.test", ns_t_a, record_cb, &first, NULL);
	run_until_called(&env, &first);
	assert_int_equal(first.outcome, DNS_ERROR);

	dns_lookup(env.dns, "bogus.test", ns_t_a, record_cb, &second, NULL);
	run_until_called(&env, &second);
	assert_int_equal(second.calls, 1);
	assert_int_equal(env.fake.queries, 2);
	env_stop(&env);
}

static void test_dns_cache_keeps_types_apart(void **state)
{
	struct lookup_state a = {0}, mx = {0};
	struct dns_env env;

	env_start(&env);
	dns_lookup(env.dns, "cached.test", ns_t_a, record_cb, &a, NULL);
	run_until_called(&env, &a);
	dns_lookup(env.dns, "cached.test", ns_t_mx, record_cb, &mx, NULL);
	run_until_called(&env, &mx);
	assert_int_equal(mx.calls, 1);
	assert_int_equal(mx.outcome, DNS_NODATA);
	assert_int_equal(env.fake.queries, 2);
	env_stop(&env);
}

/*
 * Looks up the names "hN.test" for N in [first, last), 64 at a time so
 * that no query is lost in a full socket buffer, and waits for the answers.
 */
static void lookup_range(struct dns_env *env, unsigned first, unsigned last)
{
	for (unsigned start = first; start < last; start += 64) {
		unsigned end = start + 64 < last ? start + 64 : last;
		struct lookup_state st = {0};

		for (unsigned i = start; i < end; i++) {
			char name[32];

			snprintf(name, sizeof(name), "h%u.test", i);
			assert_int_equal(dns_lookup(env->dns, name, ns_t_a,
						    record_cb, &st, NULL), 0);
		}
		run_until_count(env, &st.calls, end - start);
		assert_int_equal(st.calls, end - start);
		assert_int_equal(st.outcome, DNS_ANSWER);
	}
}

static void test_dns_cache_evicts_oldest(void **state)
{
	struct dns_env env;

	env_start(&env);
	lookup_range(&env, 0, DNS_CACHE_MAX);
	assert_int_equal(env.fake.queries, DNS_CACHE_MAX);

	/* One more name evicts h0.test, the oldest; h1.test stays. */
	lookup_range(&env, DNS_CACHE_MAX, DNS_CACHE_MAX + 1);
	lookup_range(&env, 1, 2);
	assert_int_equal(env.fake.queries, DNS_CACHE_MAX + 1);
	lookup_range(&env, 0, 1);
	assert_int_equal(env.fake.queries, DNS_CACHE_MAX + 2);
	env_stop(&env);
}

struct probe_state {
	unsigned calls;
	bool secure;
	char detail[512];
};

static void probe_record_cb(void *arg, bool secure, const char *detail)
{
	struct probe_state *st = arg;

	st->calls++;
	st->secure = secure;
	snprintf(st->detail, sizeof(st->detail), "%s", detail);
}

static void run_probe(struct dns_env *env, const char *name,
		      struct probe_state *st)
{
	assert_int_equal(dns_probe(env->dns, name, probe_record_cb, st), 0);
	assert_int_equal(st->calls, 0);
	run_until(env, &st->calls);
	assert_int_equal(st->calls, 1);
}

static void test_dns_probe_secure_root(void **state)
{
	struct probe_state st = {0};
	struct dns_env env;

	env_start(&env);
	env.fake.ad = true;
	run_probe(&env, "", &st);
	assert_true(st.secure);
	assert_string_equal(st.detail, "DNSKEY answer for . is secure");
	env_stop(&env);
}

static void test_dns_probe_without_ad(void **state)
{
	struct probe_state st = {0};
	struct dns_env env;

	env_start(&env);
	run_probe(&env, "signed.test", &st);
	assert_false(st.secure);
	assert_non_null(strstr(st.detail, "not validated"));
	env_stop(&env);
}

static void test_dns_probe_servfail(void **state)
{
	struct probe_state st = {0};
	struct dns_env env;

	env_start(&env);
	env.fake.rcode = ns_r_servfail;
	run_probe(&env, "signed.test", &st);
	assert_false(st.secure);
	assert_string_equal(st.detail,
			    "DNSKEY lookup for signed.test failed: bogus");
	env_stop(&env);
}

static void test_dns_probe_freed_before_answer(void **state)
{
	struct probe_state st = {0};
	struct dns_env env;

	/* The callback never runs and the probe's memory is released
	 * (LeakSanitizer checks). */
	env_start(&env);
	assert_int_equal(dns_probe(env.dns, ".", probe_record_cb, &st), 0);
	env_stop(&env);
	assert_int_equal(st.calls, 0);
}

static void test_dns_ad_trusted_from_loopback(void **state)
{
	struct lookup_state st = {0};
	struct dns_env env;

	/* 127.0.0.1 is loopback, so AD counts without dns.trust_ad. A
	 * remote server cannot be tested here: nothing may leave loopback. */
	env_start(&env);
	env.fake.ad = true;
	dns_lookup(env.dns, "signed.test", ns_t_a, record_cb, &st, NULL);
	run_until_called(&env, &st);
	assert_int_equal(st.security, DNS_SECURE);
	env_stop(&env);
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
		cmocka_unit_test(test_dns_parse_addrs_target_table),
		cmocka_unit_test(test_dns_parse_tlsa_table),
		cmocka_unit_test(test_dns_parse_tlsa_fields),
		cmocka_unit_test(test_dns_parse_tlsa_respects_max),
		cmocka_unit_test(test_dns_parse_tlsa_every_prefix),
		cmocka_unit_test(test_dns_answer_ttl_table),
		cmocka_unit_test(test_dns_answer_ttl_every_prefix),
		cmocka_unit_test(test_dns_cache_hit_is_async),
		cmocka_unit_test(test_dns_cache_hit_can_be_canceled),
		cmocka_unit_test(test_dns_cache_skips_errors),
		cmocka_unit_test(test_dns_cache_keeps_types_apart),
		cmocka_unit_test(test_dns_cache_evicts_oldest),
		cmocka_unit_test(test_dns_probe_secure_root),
		cmocka_unit_test(test_dns_probe_without_ad),
		cmocka_unit_test(test_dns_probe_servfail),
		cmocka_unit_test(test_dns_probe_freed_before_answer),
		cmocka_unit_test(test_dns_ad_trusted_from_loopback),
		cmocka_unit_test(test_dns_security_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
