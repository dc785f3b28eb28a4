/*
 * libFuzzer target for the parsers of DNS answers in proxy/dns.c: the
 * header classification, the MX, A, AAAA and TLSA parsers, the CNAME
 * chain walk and the TTL extraction. The first input byte picks the query
 * type and the trust in AD; the rest is the answer. Built by `make fuzz`,
 * or by hand with
 *
 *   clang-14 -std=c11 -D_GNU_SOURCE -Iproxy -I. -g -O1 \
 *       -fsanitize=fuzzer,address,undefined \
 *       $(pkg-config --cflags libuv wolfssl libcares yaml-0.1) \
 *       -o build/fuzz/fuzz_dns test/fuzz/fuzz_dns.c proxy/dns.c \
 *       proxy/base/[a-z]*.c tlsa/[a-z]*.c \
 *       $(pkg-config --libs libuv wolfssl libcares yaml-0.1)
 *
 * and run as build/fuzz/fuzz_dns [corpus folder] [-runs=N].
 */
#include <arpa/nameser.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "dns.h"
#include "tlsa/tlsa.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int query_types[] = {
	ns_t_mx, ns_t_a, ns_t_aaaa, ns_t_tlsa, ns_t_dnskey, ns_t_cname,
};

static void fuzz_parsers(const struct dns_result *result)
{
	struct sockaddr_storage addrs[DNS_ADDRS_MAX];
	struct tlsa_record recs[TLSA_RECORDS_MAX];
	struct dns_mx *mx = NULL;
	char target[256];
	size_t count;

	if (dns_parse_mx(result, &mx, &count) == 0)
		free(mx);
	dns_parse_addrs(result, ns_t_a, 25, addrs, DNS_ADDRS_MAX, &count,
			target, sizeof(target));
	dns_parse_addrs(result, ns_t_aaaa, 25, addrs, DNS_ADDRS_MAX, &count,
			target, sizeof(target));
	dns_parse_tlsa(result->abuf, result->alen, recs, TLSA_RECORDS_MAX,
		       &count);
}

/* Reads the TTLs as if the answer were positive, then negative. */
static void fuzz_ttl(const struct dns_result *result)
{
	struct dns_result as = *result;
	uint32_t ttl;

	as.outcome = DNS_ANSWER;
	dns_answer_ttl(&as, &ttl);
	as.outcome = DNS_NODATA;
	dns_answer_ttl(&as, &ttl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t ntypes = sizeof(query_types) / sizeof(*query_types);
	struct dns_result result;
	int qtype;

	if (size < 1)
		return 0;
	qtype = query_types[data[0] % ntypes];

	/* The parsers run on every answer, even one that dns_classify
	 * rejects: none of them may trust the classification. */
	dns_classify(data + 1, size - 1, qtype, data[0] & 0x80, &result);
	fuzz_parsers(&result);
	fuzz_ttl(&result);
	return 0;
}
