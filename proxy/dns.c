/*
 * DNS over c-ares 1.18 on a libuv loop. One c-ares channel per struct dns,
 * one uv_poll_t per c-ares socket and one uv_timer_t for c-ares retries and
 * for the per-lookup deadline (dns timeout from the configuration). The
 * answer header is read here because c-ares 1.18 does not report the AD
 * bit. Only the configured servers are ever asked: resolv.conf is not read.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/dname.h"
#include "base/err.h"
#include "conf/conf.h"
#include "dns.h"
#include "tlsa/tlsa.h"

#define DNS_HEADER_LEN 12
#define DNS_EDNS_PAYLOAD 1232	/* bytes; avoids IP fragmentation */
#define DNS_OPT_LEN 11		/* an OPT record with empty RDATA */
#define DNS_TRIES 2
#define DNS_WIRE_NAME_MAX 255	/* RFC 1035 section 3.1 */
#define DNS_POINTER_HOPS_MAX 64	/* compression pointers in one name */
#define DNS_CNAME_MAX 16		/* CNAMEs followed in one answer */
#define DNS_CACHE_BUCKETS 1024	/* a power of two */
#define DNS_KEY_MAX 256		/* a name in presentation form, with NUL */

struct dns_poll {
	uv_poll_t handle;
	struct dns *dns;
	ares_socket_t fd;
	struct dns_poll *next;
};

/*
 * A lookup. A sent query lives until c-ares calls back, even when the
 * caller stopped waiting (cb NULL: canceled or timed out). A lookup
 * answered from the cache holds a copy of the answer until the hit timer
 * delivers it.
 */
struct dns_query {
	struct dns *dns;
	dns_cb cb;
	void *arg;
	void *owned;		/* freed with the query unless cb has run */
	bool delivered;		/* cb has run */
	int type;
	char key[DNS_KEY_MAX];	/* cache key, see cache_key() */
	bool cacheable;		/* key is valid */
	unsigned short id;
	uint64_t deadline;	/* uv_now() milliseconds */
	bool sending;		/* inside ares_send */
	bool failed_early;	/* c-ares failed it inside ares_send */
	int early_status;
	unsigned char *hit;	/* cached answer, NULL for a sent query */
	size_t hit_len;
	struct dns_query *prev, *next;
};

struct dns_query_list {
	struct dns_query *head, *tail;	/* oldest first */
};

/* One cached answer, in a hash chain and in insertion order. */
struct dns_cache_entry {
	char key[DNS_KEY_MAX];
	int type;
	uint64_t expires;		/* uv_now() milliseconds */
	unsigned char *abuf;
	size_t alen;
	struct dns_cache_entry *chain;	/* next in the same bucket */
	struct dns_cache_entry *older, *newer;
};

struct dns_cache {
	struct dns_cache_entry *buckets[DNS_CACHE_BUCKETS];
	struct dns_cache_entry *oldest, *newest;
	size_t count;
	size_t bytes;			/* sum of the answers' lengths */
};

struct dns {
	uv_loop_t *loop;
	ares_channel channel;		/* NULL once destroyed */
	uv_timer_t timer;		/* c-ares retries, lookup deadlines */
	uv_timer_t hit_timer;		/* delivers answers from the cache */
	struct dns_poll *polls;
	struct dns_query_list waiting;	/* sent, so deadlines rise */
	struct dns_query_list hits;	/* answered from the cache */
	struct dns_cache cache;
	uint64_t timeout_ms;
	bool trust_ad;
	bool closing;
	unsigned busy;			/* nesting of c-ares and dns_cb calls */
	unsigned open_handles;		/* handles whose close_cb is pending */
};

/* Translates a c-ares status code. No other function reads them. */
static int err_from_ares(int status)
{
	switch (status) {
	case ARES_SUCCESS:
		return 0;
	case ARES_ENOMEM:
		return BASE_ENOMEM;
	case ARES_ETIMEOUT:
		return BASE_ETIMEDOUT;
	case ARES_ECANCELLED:
	case ARES_EDESTRUCTION:
		return BASE_ECANCELED;
	case ARES_EBADNAME:
	case ARES_EBADQUERY:
	case ARES_EBADFAMILY:
	case ARES_EBADSTR:
		return BASE_EINVAL;
	case ARES_ENODATA:
	case ARES_ENOTFOUND:
		return BASE_ENOTFOUND;
	case ARES_EBADRESP:
		return BASE_EPROTO;
	}
	return BASE_EDNS;
}

const char *dns_security_name(enum dns_security s)
{
	switch (s) {
	case DNS_SECURE: return "secure";
	case DNS_INSECURE: return "insecure";
	case DNS_BOGUS: return "bogus";
	case DNS_INDETERMINATE: return "indeterminate";
	}
	return "unknown";
}

/* Answer parsing ------------------------------------------------------- */

/* A domain name in uncompressed wire form, in lower case. */
struct dns_wire_name {
	unsigned char bytes[DNS_WIRE_NAME_MAX];
	size_t len;
};

/* The fixed fields of one resource record and where its parts lie. */
struct dns_rr {
	size_t owner;		/* offset of the owner name */
	unsigned type;
	unsigned class;
	uint32_t ttl;
	size_t rdata;		/* offset of the RDATA */
	size_t rdlen;
};

static unsigned read16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static uint32_t read32(const unsigned char *p)
{
	return (uint32_t)read16(p) << 16 | read16(p + 2);
}

/* Moves *off past the domain name there (RFC 1035 section 4.1.4). */
static int skip_name(const unsigned char *abuf, size_t alen, size_t *off)
{
	while (*off < alen) {
		unsigned len = abuf[*off];

		if ((len & 0xc0) == 0xc0) {
			if (*off + 2 > alen)
				return BASE_EPROTO;
			*off += 2;
			return 0;
		}
		if (len & 0xc0)
			return BASE_EPROTO;
		*off += 1 + len;
		if (len == 0)
			return 0;
	}
	return BASE_EPROTO;
}

/*
 * Reads the name at off into name, following compression pointers (RFC
 * 1035 section 4.1.4). The hop limit and the 255-byte limit on the result
 * stop pointer loops.
 */
static int read_name(const unsigned char *abuf, size_t alen, size_t off,
		     struct dns_wire_name *name)
{
	unsigned hops = 0;

	name->len = 0;
	while (off < alen) {
		unsigned len = abuf[off];

		if ((len & 0xc0) == 0xc0) {
			if (off + 2 > alen || ++hops > DNS_POINTER_HOPS_MAX)
				return BASE_EPROTO;
			off = (len & 0x3f) << 8 | abuf[off + 1];
			continue;
		}
		if ((len & 0xc0) || off + 1 + len > alen ||
		    name->len + 1 + len > sizeof(name->bytes))
			return BASE_EPROTO;

		name->bytes[name->len++] = (unsigned char)len;
		for (unsigned i = 1; i <= len; i++) {
			unsigned char c = abuf[off + i];

			if (c >= 'A' && c <= 'Z')
				c = (unsigned char)(c - 'A' + 'a');
			name->bytes[name->len++] = c;
		}
		if (len == 0)
			return 0;
		off += 1 + len;
	}
	return BASE_EPROTO;
}

static bool wire_name_equal(const struct dns_wire_name *a,
			    const struct dns_wire_name *b)
{
	return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

static bool is_host_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '_';
}

/*
 * Writes name as a host name without the trailing dot ("" for the root).
 * Returns BASE_EINVAL when a label contains a byte that no host name has, or
 * when the result does not fit in out.
 */
static int wire_name_to_host(const struct dns_wire_name *name, char *out,
			     size_t outlen)
{
	size_t used = 0;

	for (size_t i = 0; i < name->len && name->bytes[i] != 0;) {
		unsigned len = name->bytes[i++];

		if (used > 0 && used + 1 < outlen)
			out[used++] = '.';
		for (unsigned j = 0; j < len; j++, i++) {
			if (!is_host_char(name->bytes[i]) || used + 1 >= outlen)
				return BASE_EINVAL;
			out[used++] = (char)name->bytes[i];
		}
	}
	if (used >= outlen)
		return BASE_EINVAL;
	out[used] = '\0';
	return 0;
}

/* Reads the resource record at *off and moves *off past it. */
static int read_rr(const unsigned char *abuf, size_t alen, size_t *off,
		   struct dns_rr *rr)
{
	rr->owner = *off;
	if (skip_name(abuf, alen, off) < 0 || *off + 10 > alen)
		return BASE_EPROTO;

	rr->type = read16(abuf + *off);
	rr->class = read16(abuf + *off + 2);
	rr->ttl = read32(abuf + *off + 4);
	rr->rdlen = read16(abuf + *off + 8);
	rr->rdata = *off + 10;
	if (rr->rdata + rr->rdlen > alen)
		return BASE_EPROTO;
	*off = rr->rdata + rr->rdlen;
	return 0;
}

/* Stores in *off where the answer section starts, after the questions. */
static int answer_offset(const unsigned char *abuf, size_t alen, size_t *off)
{
	unsigned qdcount;

	if (abuf == NULL || alen < DNS_HEADER_LEN)
		return BASE_EPROTO;
	qdcount = read16(abuf + 4);
	*off = DNS_HEADER_LEN;
	for (unsigned i = 0; i < qdcount; i++) {
		if (skip_name(abuf, alen, off) < 0 || *off + 4 > alen)
			return BASE_EPROTO;
		*off += 4;
	}
	return 0;
}

/*
 * Counts the records of qtype and class IN in the answer section, which
 * may also hold the CNAME chain that led to them.
 */
static int count_answers(const unsigned char *abuf, size_t alen, int qtype,
			 size_t *count)
{
	unsigned ancount = read16(abuf + 6);
	size_t off;

	if (answer_offset(abuf, alen, &off) < 0)
		return BASE_EPROTO;

	*count = 0;
	for (unsigned i = 0; i < ancount; i++) {
		struct dns_rr rr;

		if (read_rr(abuf, alen, &off, &rr) < 0)
			return BASE_EPROTO;
		if ((int)rr.type == qtype && rr.class == ns_c_in)
			(*count)++;
	}
	return 0;
}

/*
 * Replaces name with the target of the CNAME record owned by name in the
 * answer section. Returns 1 when one was found, 0 when none, or BASE_EPROTO.
 */
static int follow_cname(const unsigned char *abuf, size_t alen,
			struct dns_wire_name *name)
{
	unsigned ancount = read16(abuf + 6);
	struct dns_wire_name owner;
	size_t off;

	if (answer_offset(abuf, alen, &off) < 0)
		return BASE_EPROTO;
	for (unsigned i = 0; i < ancount; i++) {
		struct dns_rr rr;

		if (read_rr(abuf, alen, &off, &rr) < 0)
			return BASE_EPROTO;
		if (rr.type != ns_t_cname || rr.class != ns_c_in)
			continue;
		if (read_name(abuf, alen, rr.owner, &owner) < 0)
			return BASE_EPROTO;
		if (!wire_name_equal(&owner, name))
			continue;
		if (read_name(abuf, alen, rr.rdata, name) < 0)
			return BASE_EPROTO;
		return 1;
	}
	return 0;
}

/*
 * Stores in name the end of the CNAME chain that starts at the question
 * name (RFC 1034 section 3.6.2: the resolver puts the chain in the answer
 * section). A chain longer than DNS_CNAME_MAX is taken for a loop.
 */
static int chain_end(const unsigned char *abuf, size_t alen,
		     struct dns_wire_name *name)
{
	if (abuf == NULL || alen < DNS_HEADER_LEN || read16(abuf + 4) == 0)
		return BASE_EPROTO;
	if (read_name(abuf, alen, DNS_HEADER_LEN, name) < 0)
		return BASE_EPROTO;

	for (unsigned hop = 0; hop <= DNS_CNAME_MAX; hop++) {
		int found = follow_cname(abuf, alen, name);

		if (found <= 0)
			return found;
	}
	return BASE_EPROTO;
}

int dns_classify(const unsigned char *abuf, size_t alen, int qtype,
		 bool trust_ad, struct dns_result *out)
{
	size_t count = 0;

	*out = (struct dns_result){
		.outcome = DNS_ERROR,
		.security = DNS_INDETERMINATE,
		.rcode = -1,
		.abuf = abuf,
		.alen = alen,
	};
	if (abuf == NULL || alen < DNS_HEADER_LEN || !(abuf[2] & 0x80))
		return BASE_EPROTO;
	out->rcode = abuf[3] & 0x0f;

	/* A truncated answer may lack records, so it proves nothing. */
	if (abuf[2] & 0x02)
		return 0;

	switch (out->rcode) {
	case ns_r_noerror:
		if (count_answers(abuf, alen, qtype, &count) < 0)
			return BASE_EPROTO;
		out->outcome = count > 0 ? DNS_ANSWER : DNS_NODATA;
		break;
	case ns_r_nxdomain:
		out->outcome = DNS_NXDOMAIN;
		break;
	case ns_r_servfail:
		/* A validating resolver answers SERVFAIL for bogus data. */
		out->security = DNS_BOGUS;
		return 0;
	default:
		return 0;
	}

	/* RFC 4035 section 3.2.3: AD means the resolver validated the data. */
	out->security = trust_ad && (abuf[3] & 0x20) ? DNS_SECURE
						      : DNS_INSECURE;
	return 0;
}

int dns_parse_mx(const struct dns_result *result, struct dns_mx **out,
		 size_t *count)
{
	struct ares_mx_reply *head = NULL;
	struct dns_mx *mx;
	size_t n = 0;
	int status;

	*out = NULL;
	*count = 0;
	status = ares_parse_mx_reply(result->abuf, (int)result->alen, &head);
	if (status != ARES_SUCCESS)
		return err_from_ares(status);

	for (struct ares_mx_reply *r = head; r != NULL; r = r->next)
		n++;
	mx = calloc(n > 0 ? n : 1, sizeof(*mx));
	if (mx == NULL) {
		ares_free_data(head);
		return BASE_ENOMEM;
	}

	n = 0;
	for (struct ares_mx_reply *r = head; r != NULL; r = r->next) {
		bool root = r->host[0] == '\0' || strcmp(r->host, ".") == 0;

		/* The root stays "", and an exchange that is not a valid host
		 * name is dropped. */
		mx[n].preference = r->priority;
		if (root)
			mx[n].exchange[0] = '\0';
		else if (base_dname_normalize(r->host, mx[n].exchange,
					      sizeof(mx[n].exchange)) < 0)
			continue;
		n++;
	}
	ares_free_data(head);
	*out = mx;
	*count = n;
	return 0;
}

static void fill_addr(struct sockaddr_storage *ss, int type, const void *ip,
		      uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (type == ns_t_a) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, ip, sizeof(sin->sin_addr));
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		memcpy(&sin6->sin6_addr, ip, sizeof(sin6->sin6_addr));
	}
}

/*
 * Writes the end of the answer's CNAME chain as a host name, or "" when
 * the chain cannot be followed or does not end at a host name.
 */
static void store_target(const struct dns_result *result, char *target,
			 size_t target_len)
{
	struct dns_wire_name name;

	if (target == NULL || target_len == 0)
		return;
	if (chain_end(result->abuf, result->alen, &name) < 0 ||
	    wire_name_to_host(&name, target, target_len) < 0)
		target[0] = '\0';
}

int dns_parse_addrs(const struct dns_result *result, int type, uint16_t port,
		    struct sockaddr_storage *addrs, size_t max, size_t *count,
		    char *target, size_t target_len)
{
	struct ares_addrttl a[DNS_ADDRS_MAX];
	struct ares_addr6ttl aaaa[DNS_ADDRS_MAX];
	int n = (int)(max < DNS_ADDRS_MAX ? max : DNS_ADDRS_MAX);
	int status;

	*count = 0;
	if (type != ns_t_a && type != ns_t_aaaa)
		return BASE_EINVAL;
	store_target(result, target, target_len);

	if (type == ns_t_a)
		status = ares_parse_a_reply(result->abuf, (int)result->alen,
					    NULL, a, &n);
	else
		status = ares_parse_aaaa_reply(result->abuf,
					       (int)result->alen, NULL, aaaa,
					       &n);
	if (status == ARES_ENODATA)
		return 0;
	if (status != ARES_SUCCESS)
		return err_from_ares(status);

	for (int i = 0; i < n; i++) {
		if (type == ns_t_a)
			fill_addr(&addrs[i], type, &a[i].ipaddr, port);
		else
			fill_addr(&addrs[i], type, &aaaa[i].ip6addr, port);
	}
	*count = (size_t)n;
	return 0;
}

/*
 * Adds one TLSA RDATA to out (found records, at most max). Usable records
 * take precedence: an unusable one makes room for a usable one, because
 * dropping a usable record would let the rest look "all unusable" and
 * skip authentication. Returns BASE_ETOOLONG when usable records alone
 * exceed max; the host is then unusable rather than unauthenticated.
 */
static int keep_tlsa(const unsigned char *rdata, size_t len,
		     struct tlsa_record *out, size_t max, size_t *found)
{
	struct tlsa_record rec;

	if (tlsa_record_parse(rdata, len, &rec) < 0)
		return 0;
	if (*found < max) {
		out[(*found)++] = rec;
		return 0;
	}
	if (!tlsa_record_usable(&rec))
		return 0;
	for (size_t i = 0; i < *found; i++) {
		if (!tlsa_record_usable(&out[i])) {
			out[i] = rec;
			return 0;
		}
	}
	return BASE_ETOOLONG;
}

int dns_parse_tlsa(const unsigned char *abuf, size_t alen,
		   struct tlsa_record *out, size_t max, size_t *count)
{
	struct dns_wire_name owner, name;
	unsigned ancount;
	size_t off, found = 0;

	*count = 0;
	if (chain_end(abuf, alen, &owner) < 0 ||
	    answer_offset(abuf, alen, &off) < 0)
		return BASE_EPROTO;
	if (max > TLSA_RECORDS_MAX)
		max = TLSA_RECORDS_MAX;

	/* A CNAME on the TLSA owner name moves the records to its target.
	 * The caller's TLSA base domain does not change (RFC 7672 section
	 * 2.2). */
	ancount = read16(abuf + 6);
	for (unsigned i = 0; i < ancount; i++) {
		struct dns_rr rr;

		if (read_rr(abuf, alen, &off, &rr) < 0)
			return BASE_EPROTO;
		if (rr.type != ns_t_tlsa || rr.class != ns_c_in)
			continue;
		if (read_name(abuf, alen, rr.owner, &name) < 0)
			return BASE_EPROTO;
		if (!wire_name_equal(&name, &owner))
			continue;
		if (keep_tlsa(abuf + rr.rdata, rr.rdlen, out, max, &found) < 0)
			return BASE_ETOOLONG;
	}
	*count = found;
	return 0;
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

/* RFC 2181 section 8: a TTL with the top bit set counts as zero. */
static uint32_t ttl_value(uint32_t ttl)
{
	return ttl & 0x80000000u ? 0 : ttl;
}

/*
 * Lowers *ttl to the negative TTL of the SOA record in the authority
 * section that starts at off (RFC 2308 section 5). Returns 1 when an SOA
 * record was found, 0 when none, or BASE_EPROTO.
 */
static int soa_ttl(const unsigned char *abuf, size_t alen, size_t off,
		   uint32_t *ttl)
{
	unsigned nscount = read16(abuf + 8);

	for (unsigned i = 0; i < nscount; i++) {
		struct dns_rr rr;
		uint32_t minimum;

		if (read_rr(abuf, alen, &off, &rr) < 0)
			return BASE_EPROTO;
		if (rr.type != ns_t_soa || rr.class != ns_c_in)
			continue;
		/* MINIMUM is the last of five 32-bit fields after two names,
		 * each at least one byte (RFC 1035 section 3.3.13). */
		if (rr.rdlen < 22)
			return BASE_EPROTO;
		minimum = ttl_value(read32(abuf + rr.rdata + rr.rdlen - 4));
		*ttl = min_u32(*ttl, min_u32(ttl_value(rr.ttl), minimum));
		return 1;
	}
	return 0;
}

int dns_answer_ttl(const struct dns_result *result, uint32_t *ttl)
{
	const unsigned char *abuf = result->abuf;
	size_t alen = result->alen;
	uint32_t lowest = DNS_CACHE_TTL_MAX;
	unsigned ancount;
	size_t off;
	int found;

	*ttl = 0;
	if (result->outcome == DNS_ERROR)
		return 0;
	if (answer_offset(abuf, alen, &off) < 0)
		return BASE_EPROTO;

	ancount = read16(abuf + 6);
	for (unsigned i = 0; i < ancount; i++) {
		struct dns_rr rr;

		if (read_rr(abuf, alen, &off, &rr) < 0)
			return BASE_EPROTO;
		lowest = min_u32(lowest, ttl_value(rr.ttl));
	}
	if (result->outcome != DNS_ANSWER) {
		/* RFC 2308 section 5: without an SOA record a negative answer
		 * is not cached. */
		found = soa_ttl(abuf, alen, off, &lowest);
		if (found <= 0)
			return found;
	}
	*ttl = lowest;
	return 0;
}

/* Cache ------------------------------------------------------------------ */

/*
 * Writes the cache key of name: lower case, without the trailing dot, ""
 * for the root. Returns false when the name does not fit.
 */
static bool cache_key(const char *name, char key[DNS_KEY_MAX])
{
	size_t len = strlen(name);

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len >= DNS_KEY_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		key[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	key[len] = '\0';
	return true;
}

/* FNV-1a over the key and the type. */
static size_t cache_bucket(const char *key, int type)
{
	uint32_t hash = 2166136261u;

	for (const char *p = key; *p != '\0'; p++)
		hash = (hash ^ (unsigned char)*p) * 16777619u;
	hash = (hash ^ (uint32_t)type) * 16777619u;
	return hash & (DNS_CACHE_BUCKETS - 1);
}

static void cache_remove(struct dns_cache *cache, struct dns_cache_entry *e)
{
	struct dns_cache_entry **link =
		&cache->buckets[cache_bucket(e->key, e->type)];

	while (*link != e)
		link = &(*link)->chain;
	*link = e->chain;

	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		cache->oldest = e->newer;
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		cache->newest = e->older;

	cache->count--;
	cache->bytes -= e->alen;
	free(e->abuf);
	free(e);
}

/* Returns the live entry for key and type, dropping an expired one. */
static struct dns_cache_entry *cache_find(struct dns *dns, const char *key,
					  int type)
{
	struct dns_cache_entry *e = dns->cache.buckets[cache_bucket(key, type)];

	while (e != NULL && (e->type != type || strcmp(e->key, key) != 0))
		e = e->chain;
	if (e == NULL)
		return NULL;
	if (e->expires <= uv_now(dns->loop)) {
		cache_remove(&dns->cache, e);
		return NULL;
	}
	return e;
}

static void cache_link(struct dns_cache *cache, struct dns_cache_entry *e)
{
	size_t bucket = cache_bucket(e->key, e->type);

	e->chain = cache->buckets[bucket];
	cache->buckets[bucket] = e;
	e->older = cache->newest;
	if (cache->newest != NULL)
		cache->newest->newer = e;
	else
		cache->oldest = e;
	cache->newest = e;
	cache->count++;
	cache->bytes += e->alen;
}

/*
 * Stores the answer to q for its TTL, replacing an older answer for the
 * same name and type and evicting the oldest entries while the cache is
 * full. Errors and answers with a TTL of 0 are not stored.
 */
static void cache_store(struct dns_query *q, const struct dns_result *result)
{
	struct dns *dns = q->dns;
	struct dns_cache_entry *e;
	uint32_t ttl;

	if (!q->cacheable || result->alen > DNS_CACHE_BYTES_MAX ||
	    dns_answer_ttl(result, &ttl) < 0 || ttl == 0)
		return;
	e = cache_find(dns, q->key, q->type);
	if (e != NULL)
		cache_remove(&dns->cache, e);
	while (dns->cache.count >= DNS_CACHE_MAX ||
	       dns->cache.bytes + result->alen > DNS_CACHE_BYTES_MAX)
		cache_remove(&dns->cache, dns->cache.oldest);

	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return;
	e->abuf = malloc(result->alen);
	if (e->abuf == NULL) {
		free(e);
		return;
	}
	memcpy(e->abuf, result->abuf, result->alen);
	e->alen = result->alen;
	memcpy(e->key, q->key, sizeof(e->key));
	e->type = q->type;
	e->expires = uv_now(dns->loop) + (uint64_t)ttl * 1000;
	cache_link(&dns->cache, e);
}

static void cache_clear(struct dns_cache *cache)
{
	while (cache->oldest != NULL)
		cache_remove(cache, cache->oldest);
}

/* Query lists -------------------------------------------------------------- */

static void link_query(struct dns_query_list *list, struct dns_query *q)
{
	q->next = NULL;
	q->prev = list->tail;
	if (list->tail != NULL)
		list->tail->next = q;
	else
		list->head = q;
	list->tail = q;
}

static void unlink_query(struct dns_query_list *list, struct dns_query *q)
{
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		list->head = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	else
		list->tail = q->prev;
}

static void free_query(struct dns_query *q)
{
	if (!q->delivered)
		free(q->owned);
	free(q->hit);
	free(q);
}

static void free_list(struct dns_query_list *list)
{
	while (list->head != NULL) {
		struct dns_query *q = list->head;

		unlink_query(list, q);
		free_query(q);
	}
}

/* Sockets and the timers ------------------------------------------------- */

static void release(struct dns *dns)
{
	if (!dns->closing || dns->open_handles > 0)
		return;
	free(dns);
	ares_library_cleanup();
}

static void poll_close_cb(uv_handle_t *handle)
{
	struct dns_poll *poll = handle->data;
	struct dns *dns = poll->dns;

	free(poll);
	dns->open_handles--;
	release(dns);
}

static void timer_close_cb(uv_handle_t *handle)
{
	struct dns *dns = handle->data;

	dns->open_handles--;
	release(dns);
}

static void close_poll(struct dns *dns, struct dns_poll *poll)
{
	struct dns_poll **link = &dns->polls;

	while (*link != poll)
		link = &(*link)->next;
	*link = poll->next;
	uv_close((uv_handle_t *)&poll->handle, poll_close_cb);
}

static void after_process(struct dns *dns);

static void poll_cb(uv_poll_t *handle, int status, int events)
{
	struct dns_poll *poll = handle->data;
	struct dns *dns = poll->dns;
	ares_socket_t rfd = ARES_SOCKET_BAD;
	ares_socket_t wfd = ARES_SOCKET_BAD;

	/* On a poll error c-ares reads and writes, meets the error itself
	 * and retries on another server. */
	if (status < 0 || (events & UV_READABLE))
		rfd = poll->fd;
	if (status < 0 || (events & UV_WRITABLE))
		wfd = poll->fd;

	dns->busy++;
	ares_process_fd(dns->channel, rfd, wfd);
	dns->busy--;
	after_process(dns);
}

static struct dns_poll *open_poll(struct dns *dns, ares_socket_t fd)
{
	struct dns_poll *poll = calloc(1, sizeof(*poll));

	if (poll == NULL)
		return NULL;
	if (uv_poll_init_socket(dns->loop, &poll->handle, fd) < 0) {
		free(poll);
		return NULL;
	}
	poll->handle.data = poll;
	poll->dns = dns;
	poll->fd = fd;
	poll->next = dns->polls;
	dns->polls = poll;
	dns->open_handles++;
	return poll;
}

/*
 * Called by c-ares when a socket opens, changes interest or closes (it
 * calls with no interest before it closes the descriptor).
 */
static void sock_state_cb(void *data, ares_socket_t fd, int readable,
			  int writable)
{
	struct dns *dns = data;
	struct dns_poll *poll = dns->polls;
	int events = (readable ? UV_READABLE : 0) |
		     (writable ? UV_WRITABLE : 0);

	while (poll != NULL && poll->fd != fd)
		poll = poll->next;

	if (events == 0) {
		if (poll != NULL)
			close_poll(dns, poll);
		return;
	}
	if (poll == NULL)
		poll = open_poll(dns, fd);
	/* Without a poll handle the lookup ends at its deadline. */
	if (poll != NULL)
		uv_poll_start(&poll->handle, events, poll_cb);
}

/* Answers ---------------------------------------------------------------- */

/* Classifies the answer (or the failure) and runs the caller's callback. */
static void deliver(struct dns_query *q, int status, const unsigned char *abuf,
		    size_t alen)
{
	struct dns_result result = {
		.outcome = DNS_ERROR,
		.security = DNS_INDETERMINATE,
		.rcode = -1,
	};
	dns_cb cb = q->cb;

	q->cb = NULL;
	q->delivered = true;
	if (status == ARES_SUCCESS)
		dns_classify(abuf, alen, q->type, q->dns->trust_ad, &result);
	cb(q->arg, &result);
}

static void query_cb(void *arg, int status, int timeouts, unsigned char *abuf,
		     int alen)
{
	struct dns_query *q = arg;
	struct dns *dns = q->dns;
	size_t len = alen > 0 ? (size_t)alen : 0;

	if (q->sending) {
		q->failed_early = true;
		q->early_status = status;
		return;
	}

	unlink_query(&dns->waiting, q);
	if (status == ARES_SUCCESS && !dns->closing) {
		struct dns_result result;

		/* An answer that came after its deadline still fills the
		 * cache. */
		if (dns_classify(abuf, len, q->type, dns->trust_ad,
				 &result) == 0)
			cache_store(q, &result);
	}
	if (q->cb != NULL && !dns->closing)
		deliver(q, status, abuf, len);
	free_query(q);
}

/* Ends, as timed out, every waiting lookup whose deadline has passed. */
static void expire_queries(struct dns *dns)
{
	uint64_t now = uv_now(dns->loop);

	for (struct dns_query *q = dns->waiting.head; q != NULL; q = q->next) {
		if (dns->closing)
			return;
		if (q->cb == NULL)
			continue;
		if (q->deadline > now)
			return;
		deliver(q, ARES_ETIMEOUT, NULL, 0);
	}
}

static void timer_cb(uv_timer_t *timer)
{
	struct dns *dns = timer->data;

	dns->busy++;
	ares_process_fd(dns->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	expire_queries(dns);
	dns->busy--;
	after_process(dns);
}

/*
 * Delivers the answers taken from the cache. Lookups that these callbacks
 * start wait for the next loop iteration.
 */
static void hit_timer_cb(uv_timer_t *timer)
{
	struct dns *dns = timer->data;
	struct dns_query_list ready = dns->hits;

	dns->hits = (struct dns_query_list){ NULL, NULL };
	dns->busy++;
	while (ready.head != NULL) {
		struct dns_query *q = ready.head;

		unlink_query(&ready, q);
		if (q->cb != NULL && !dns->closing)
			deliver(q, ARES_SUCCESS, q->hit, q->hit_len);
		free_query(q);
	}
	dns->busy--;
	if (dns->hits.head != NULL && !dns->closing)
		uv_timer_start(&dns->hit_timer, hit_timer_cb, 0, 0);
	after_process(dns);
}

/* Arms the timer for the next c-ares retry or lookup deadline. */
static void schedule_timer(struct dns *dns)
{
	struct dns_query *q = dns->waiting.head;
	uint64_t now = uv_now(dns->loop);
	struct timeval max, tv, *next;
	uint64_t ms = 0;

	while (q != NULL && q->cb == NULL)
		q = q->next;
	if (q != NULL) {
		ms = q->deadline > now ? q->deadline - now : 0;
		max.tv_sec = (time_t)(ms / 1000);
		max.tv_usec = (suseconds_t)(ms % 1000 * 1000);
	}

	next = ares_timeout(dns->channel, q != NULL ? &max : NULL, &tv);
	if (next == NULL) {
		uv_timer_stop(&dns->timer);
		return;
	}
	/* Round up so the timer never fires before c-ares is due. */
	ms = (uint64_t)next->tv_sec * 1000 +
	     ((uint64_t)next->tv_usec + 999) / 1000;
	uv_timer_start(&dns->timer, timer_cb, ms, 0);
}

/*
 * Destroys the channel (c-ares then calls back every query with
 * ARES_EDESTRUCTION and closes its sockets), drops the cache and closes
 * the handles.
 */
static void shut_down(struct dns *dns)
{
	ares_destroy(dns->channel);
	dns->channel = NULL;

	free_list(&dns->waiting);
	free_list(&dns->hits);
	cache_clear(&dns->cache);
	while (dns->polls != NULL)
		close_poll(dns, dns->polls);
	uv_close((uv_handle_t *)&dns->timer, timer_close_cb);
	uv_close((uv_handle_t *)&dns->hit_timer, timer_close_cb);
}

static void after_process(struct dns *dns)
{
	if (dns->busy > 0)
		return;
	if (dns->closing)
		shut_down(dns);
	else
		schedule_timer(dns);
}

/* Set-up ----------------------------------------------------------------- */

static bool server_is_loopback(const struct conf_dns_server *server)
{
	struct in_addr v4;
	struct in6_addr v6;

	if (inet_pton(AF_INET, server->address, &v4) == 1)
		return (ntohl(v4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, server->address, &v6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&v6);
	return false;
}

/*
 * Trusts the AD bit when the operator declares the path to the servers
 * secure (dns.trust_ad), or else when every server is on loopback, because
 * c-ares does not report which server answered. RFC 4035 section 4.9 lets
 * a stub resolver rely on AD only from a trusted resolver over a secure
 * channel.
 */
static bool servers_trusted(const struct conf *conf)
{
	if (conf->dns_trust_ad)
		return true;
	for (size_t i = 0; i < conf->dns_server_count; i++)
		if (!server_is_loopback(&conf->dns_servers[i]))
			return false;
	return true;
}

/* Writes conf's servers as "ip:port,[ipv6]:port" into a new string. */
static char *servers_csv(const struct conf *conf)
{
	size_t size = conf->dns_server_count * 80 + 1;
	char *csv = malloc(size);
	size_t used = 0;

	if (csv == NULL)
		return NULL;
	csv[0] = '\0';
	for (size_t i = 0; i < conf->dns_server_count; i++) {
		const struct conf_dns_server *server = &conf->dns_servers[i];
		bool v6 = strchr(server->address, ':') != NULL;

		used += (size_t)snprintf(csv + used, size - used,
					 v6 ? "%s[%s]:%u" : "%s%s:%u",
					 i > 0 ? "," : "", server->address,
					 (unsigned)server->port);
	}
	return csv;
}

static int open_channel(struct dns *dns, const struct conf *conf)
{
	struct ares_options opts = {0};
	char lookups[] = "b";		/* DNS only, never /etc/hosts */
	char resolv_conf[] = "/dev/null";	/* servers come from conf */
	int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
		   ARES_OPT_SOCK_STATE_CB | ARES_OPT_EDNSPSZ |
		   ARES_OPT_LOOKUPS | ARES_OPT_DOMAINS | ARES_OPT_RESOLVCONF;
	char *csv;
	int status;

	/* NOCHECKRESP hands SERVFAIL and REFUSED to query_cb as answers. */
	opts.flags = ARES_FLAG_NOCHECKRESP | ARES_FLAG_EDNS |
		     ARES_FLAG_NOSEARCH;
	/* Two tries take about three per-try timeouts with one server. */
	opts.timeout = (int)(dns->timeout_ms / 3 > 0 ? dns->timeout_ms / 3 : 1);
	opts.tries = DNS_TRIES;
	opts.sock_state_cb = sock_state_cb;
	opts.sock_state_cb_data = dns;
	opts.ednspsz = DNS_EDNS_PAYLOAD;
	opts.lookups = lookups;
	opts.resolvconf_path = resolv_conf;

	status = ares_init_options(&dns->channel, &opts, mask);
	if (status != ARES_SUCCESS)
		return err_from_ares(status);

	csv = servers_csv(conf);
	status = csv != NULL ? ares_set_servers_ports_csv(dns->channel, csv)
			     : ARES_ENOMEM;
	free(csv);
	if (status != ARES_SUCCESS) {
		ares_destroy(dns->channel);
		return err_from_ares(status);
	}
	return 0;
}

int dns_new(uv_loop_t *loop, const struct conf *conf, struct dns **out)
{
	struct dns *dns;
	int err;

	*out = NULL;
	if (conf->dns_server_count == 0)
		return BASE_EINVAL;
	if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
		return BASE_ENOMEM;

	dns = calloc(1, sizeof(*dns));
	if (dns == NULL) {
		ares_library_cleanup();
		return BASE_ENOMEM;
	}
	dns->loop = loop;
	dns->timeout_ms = conf->limits.timeouts.dns > 0 ?
			  conf->limits.timeouts.dns : 1;
	dns->trust_ad = servers_trusted(conf);

	err = open_channel(dns, conf);
	if (err < 0) {
		free(dns);
		ares_library_cleanup();
		return err;
	}
	uv_timer_init(loop, &dns->timer);
	uv_timer_init(loop, &dns->hit_timer);
	dns->timer.data = dns;
	dns->hit_timer.data = dns;
	dns->open_handles = 2;
	*out = dns;
	return 0;
}

void dns_free(struct dns *dns)
{
	if (dns == NULL || dns->closing)
		return;
	dns->closing = true;

	/* Inside a callback c-ares is still on the stack: after_process
	 * shuts down once it has returned. */
	if (dns->busy == 0)
		shut_down(dns);
}

/* Lookups ---------------------------------------------------------------- */

/*
 * Builds the query with EDNS (RFC 6891) and sets DO in the OPT record
 * (RFC 3225 section 3) so the resolver validates. It also sets AD in the
 * header, because Unbound reports AD in the answer only when it is asked.
 */
static int build_query(const char *name, int type, unsigned short id,
		       unsigned char **qbuf, int *qlen)
{
	int status = ares_create_query(name, ns_c_in, type, id, 1, qbuf, qlen,
				       DNS_EDNS_PAYLOAD);
	unsigned char *opt;

	if (status != ARES_SUCCESS)
		return err_from_ares(status);
	if (*qlen < DNS_HEADER_LEN + DNS_OPT_LEN) {
		ares_free_string(*qbuf);
		return BASE_EPROTO;
	}

	/* The OPT record ends the query: root name, type 41, payload size,
	 * extended rcode, version, then the flags whose top bit is DO. */
	opt = *qbuf + *qlen - DNS_OPT_LEN;
	if (opt[0] != 0 || read16(opt + 1) != ns_t_opt) {
		ares_free_string(*qbuf);
		return BASE_EPROTO;
	}
	opt[7] |= 0x80;
	(*qbuf)[3] |= 0x20;
	return 0;
}

/* Picks a random query ID that no waiting query of this resolver uses. */
static int random_id(struct dns *dns, unsigned short *id)
{
	for (int attempt = 0; attempt < 8; attempt++) {
		struct dns_query *q = dns->waiting.head;

		if (getrandom(id, sizeof(*id), 0) != sizeof(*id))
			return BASE_ESYS;
		while (q != NULL && q->id != *id)
			q = q->next;
		if (q == NULL)
			return 0;
	}
	return 0;
}

/* Queues a copy of the cached answer e for delivery by the hit timer. */
static int answer_from_cache(struct dns *dns, struct dns_query *q,
			     const struct dns_cache_entry *e)
{
	q->hit = malloc(e->alen);
	if (q->hit == NULL)
		return BASE_ENOMEM;
	memcpy(q->hit, e->abuf, e->alen);
	q->hit_len = e->alen;
	link_query(&dns->hits, q);
	uv_timer_start(&dns->hit_timer, hit_timer_cb, 0, 0);
	return 0;
}

/* Sends q's query. Returns 0, or a negative code (q is then not linked). */
static int send_query(struct dns *dns, struct dns_query *q, const char *name)
{
	unsigned char *qbuf;
	int qlen, err;

	err = random_id(dns, &q->id);
	if (err == 0)
		err = build_query(name, q->type, q->id, &qbuf, &qlen);
	if (err < 0)
		return err;

	q->deadline = uv_now(dns->loop) + dns->timeout_ms;
	link_query(&dns->waiting, q);
	q->sending = true;
	ares_send(dns->channel, qbuf, qlen, query_cb, q);
	q->sending = false;
	ares_free_string(qbuf);

	/* c-ares may fail the query before ares_send returns, for example
	 * when it cannot open a socket. The caller then gets the error
	 * instead of a callback. */
	if (q->failed_early) {
		err = err_from_ares(q->early_status);
		unlink_query(&dns->waiting, q);
		return err < 0 ? err : BASE_EDNS;
	}
	if (dns->busy == 0)
		schedule_timer(dns);
	return 0;
}

/*
 * Starts a lookup. owned, if not NULL, is freed with the query when cb
 * never runs (the resolver was freed or the query canceled).
 */
static int start_lookup(struct dns *dns, const char *name, int type,
			dns_cb cb, void *arg, void *owned,
			struct dns_query **out)
{
	const struct dns_cache_entry *e = NULL;
	struct dns_query *q;
	int err;

	if (out != NULL)
		*out = NULL;
	if (dns->closing)
		return BASE_ECANCELED;
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return BASE_ENOMEM;
	*q = (struct dns_query){ .dns = dns, .cb = cb, .arg = arg,
				 .owned = owned, .type = type };

	q->cacheable = cache_key(name, q->key);
	if (q->cacheable)
		e = cache_find(dns, q->key, type);
	err = e != NULL ? answer_from_cache(dns, q, e)
			: send_query(dns, q, name);
	if (err < 0) {
		free(q->hit);
		free(q);
		return err;
	}
	if (out != NULL)
		*out = q;
	return 0;
}

int dns_lookup(struct dns *dns, const char *name, int type, dns_cb cb,
	       void *arg, struct dns_query **out)
{
	return start_lookup(dns, name, type, cb, arg, NULL, out);
}

void dns_cancel(struct dns_query *q)
{
	/* c-ares 1.18 cannot cancel a single query, so the query runs to
	 * its end and query_cb frees it without calling cb. An answer from
	 * the cache is dropped by the hit timer the same way. */
	if (q != NULL)
		q->cb = NULL;
}

/* Probe ------------------------------------------------------------------ */

struct dns_probe_req {
	struct dns *dns;
	dns_probe_cb cb;
	void *arg;
	char name[DNS_KEY_MAX];		/* as logged: "." for the root */
};

/* Explains a probe result for the log. Returns true when it is secure. */
static bool describe_probe(const struct dns_probe_req *probe,
			   const struct dns_result *result, char *detail,
			   size_t size)
{
	const char *name = probe->name;
	bool ad = result->abuf != NULL && result->alen > 3 &&
		  (result->abuf[3] & 0x20);

	if (result->outcome == DNS_ERROR) {
		snprintf(detail, size, "DNSKEY lookup for %s failed: %s", name,
			 dns_security_name(result->security));
		return false;
	}
	if (result->security == DNS_SECURE && result->outcome == DNS_ANSWER) {
		snprintf(detail, size, "DNSKEY answer for %s is secure", name);
		return true;
	}
	if (result->security == DNS_SECURE)
		snprintf(detail, size, "%s has no DNSKEY records", name);
	else if (ad)
		snprintf(detail, size, "AD flag for %s not trusted: a server "
			 "is not on loopback and dns.trust_ad is false", name);
	else
		snprintf(detail, size, "DNSKEY answer for %s is not validated "
			 "(no AD flag): the resolver does not validate or has "
			 "no trust anchor for it", name);
	return false;
}

static void probe_cb(void *arg, const struct dns_result *result)
{
	struct dns_probe_req *probe = arg;
	char detail[DNS_KEY_MAX + 160];
	bool secure = describe_probe(probe, result, detail, sizeof(detail));

	probe->cb(probe->arg, secure, detail);
	free(probe);
}

int dns_probe(struct dns *dns, const char *name, dns_probe_cb cb, void *arg)
{
	struct dns_probe_req *probe;
	int err;

	if (name[0] == '\0')
		name = ".";
	if (strlen(name) >= sizeof(probe->name))
		return BASE_EINVAL;
	probe = calloc(1, sizeof(*probe));
	if (probe == NULL)
		return BASE_ENOMEM;
	probe->dns = dns;
	probe->cb = cb;
	probe->arg = arg;
	snprintf(probe->name, sizeof(probe->name), "%s", name);

	err = start_lookup(dns, name, ns_t_dnskey, probe_cb, probe, probe,
			   NULL);
	if (err < 0)
		free(probe);
	return err;
}
