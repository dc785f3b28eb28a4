/*
 * DNS over c-ares with DNSSEC status. Queries go only to the configured
 * servers (never to /etc/resolv.conf), carry the AD bit and EDNS DO, and
 * use random query IDs. c-ares 1.18 does not expose the AD flag, so the
 * query is built with ares_create_query and the answer header is read here.
 * Answers are cached per resolver by name and type for their TTL, at most
 * DNS_CACHE_TTL_MAX seconds, DNS_CACHE_MAX entries and DNS_CACHE_BYTES_MAX
 * bytes. Errors are not cached.
 */
#ifndef DNS_H
#define DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

struct conf;
struct tlsa_record;

#define DNS_CACHE_MAX 4096		/* cached answers per resolver */
#define DNS_CACHE_BYTES_MAX (16u << 20)	/* their total size in bytes */
#define DNS_CACHE_TTL_MAX 3600		/* seconds an answer stays cached */

/* Security status of one answer (RFC 7672 section 2.1). */
enum dns_security {
	DNS_SECURE,		/* AD set by a trusted resolver */
	DNS_INSECURE,		/* validated as unsigned, or AD not set */
	DNS_BOGUS,		/* SERVFAIL: validation failed or server error */
	DNS_INDETERMINATE,	/* timeout, REFUSED, truncated, unparsable */
};

/* What a lookup produced. NXDOMAIN and NODATA are answers, not errors. */
enum dns_outcome {
	DNS_ANSWER,		/* at least one record of the type asked */
	DNS_NXDOMAIN,
	DNS_NODATA,
	DNS_ERROR,		/* see security: BOGUS or INDETERMINATE */
};

struct dns_result {
	enum dns_outcome outcome;
	enum dns_security security;
	int rcode;			/* DNS rcode, -1 when no answer came */
	const unsigned char *abuf;	/* raw answer, valid during callback */
	size_t alen;
};

struct dns;
struct dns_query;

typedef void (*dns_cb)(void *arg, const struct dns_result *result);

/*
 * Creates a resolver on loop that sends to conf's dns.servers. It trusts
 * the AD bit when every server is on loopback, or when conf's dns.trust_ad
 * is true. Returns 0 and stores it in *out, or a negative base_err code.
 */
int dns_new(uv_loop_t *loop, const struct conf *conf, struct dns **out);

/*
 * Cancels every outstanding query (their callbacks never run) and closes
 * the resolver. The memory is released in libuv close callbacks, so the loop
 * must run once more before uv_loop_close. Safe to call from a dns_cb.
 */
void dns_free(struct dns *dns);

/*
 * Looks up name and type (ns_t_mx, ns_t_a, ...), from the cache when it
 * contains a live answer, else with one query. cb runs exactly once, later
 * (a cached answer on the next loop iteration, never inside dns_lookup),
 * unless dns_cancel is called first. If q is not NULL it receives a handle
 * for dns_cancel, valid until cb runs. Returns 0 or a negative base_err
 * code (then cb never runs).
 */
int dns_lookup(struct dns *dns, const char *name, int type, dns_cb cb,
	       void *arg, struct dns_query **q);

/* Stops a query: its callback will not run. */
void dns_cancel(struct dns_query *q);

/* Receives the result of dns_probe; detail is valid during the call. */
typedef void (*dns_probe_cb)(void *arg, bool secure, const char *detail);

/*
 * Checks that the resolver validates: looks up the DNSKEY records of name
 * ("" or "." for the root) and reports through cb whether the answer was
 * secure, with a one-line explanation for the log. cb runs once, later,
 * unless the resolver is freed first. Returns 0 or a negative base_err code
 * (then cb never runs).
 */
int dns_probe(struct dns *dns, const char *name, dns_probe_cb cb, void *arg);

const char *dns_security_name(enum dns_security s);

/*
 * Classifies the answer abuf (alen bytes) to a query of type qtype from the
 * header's rcode, TC and AD bits and the answer section. AD makes an answer
 * DNS_SECURE only when trust_ad is true. Fills every field of *out, with
 * out->abuf = abuf. Returns 0, or BASE_EPROTO when the answer is malformed
 * (then *out is DNS_ERROR with DNS_INDETERMINATE).
 */
int dns_classify(const unsigned char *abuf, size_t alen, int qtype,
		 bool trust_ad, struct dns_result *out);

/* One MX record: exchange in lower case without the trailing dot. */
struct dns_mx {
	char exchange[256];	/* "" for the root name (Null MX, RFC 7505) */
	unsigned preference;
};

/*
 * Parses the MX records of a DNS_ANSWER result into a new array stored in
 * *out (the caller frees it with free()) and its length in *count. Returns
 * 0, BASE_ENOMEM, or BASE_EPROTO when the answer cannot be parsed.
 */
int dns_parse_mx(const struct dns_result *result, struct dns_mx **out,
		 size_t *count);

/* Addresses dns_parse_addrs reads from one answer at most. */
#define DNS_ADDRS_MAX 64

/*
 * Parses the A (type ns_t_a) or AAAA (ns_t_aaaa) records of a DNS_ANSWER or
 * DNS_NODATA result, following CNAMEs, into addrs (room for max entries, of
 * which at most DNS_ADDRS_MAX are used) with port set in each address.
 * Stores the number written in *count. When target is not NULL, it
 * receives (target_len bytes) the name at the end of the CNAME chain in the
 * answer, or the question name when there is no CNAME. That name is in
 * lower case without the trailing dot, or "" when the chain loops or the
 * name is not a valid host name. Returns 0,
 * BASE_ENOMEM, or BASE_EPROTO when the answer cannot be parsed.
 */
int dns_parse_addrs(const struct dns_result *result, int type, uint16_t port,
		    struct sockaddr_storage *addrs, size_t max, size_t *count,
		    char *target, size_t target_len);

/*
 * Parses the TLSA records (RFC 6698 section 2.1) of the answer abuf (alen
 * bytes) into out (room for max records, of which at most TLSA_RECORDS_MAX
 * are used) and stores their number in *count. Only records owned by the
 * end of the CNAME chain that starts at the question name count. A record
 * whose RDATA tlsa_record_parse rejects is skipped. Over the limit, usable
 * records (tlsa_record_usable) replace unusable ones. Returns 0,
 * BASE_EPROTO when the answer cannot be parsed (then *count is 0), or
 * BASE_ETOOLONG when the usable records alone exceed the limit.
 */
int dns_parse_tlsa(const unsigned char *abuf, size_t alen,
		   struct tlsa_record *out, size_t max, size_t *count);

/*
 * Stores in *ttl the seconds the answer in result may be cached, at most
 * DNS_CACHE_TTL_MAX. For DNS_ANSWER it is the lowest TTL in the answer
 * section. For DNS_NXDOMAIN and DNS_NODATA it is the negative TTL of RFC
 * 2308 section 5: the lowest of the SOA record's TTL, its MINIMUM field and
 * the TTL of any CNAME in the answer, or 0 without an SOA record. It is 0
 * for DNS_ERROR. Returns 0, or BASE_EPROTO when the answer cannot be parsed
 * (*ttl is then 0).
 */
int dns_answer_ttl(const struct dns_result *result, uint32_t *ttl);

#endif
