/*
 * Routing (RFC 5321 section 5.1, RFC 7505): one MX lookup for the next-hop
 * domain, then an A and an AAAA lookup for every MX host kept, all in
 * parallel. A route_req owns its DNS queries and the route it builds until
 * it hands the route to the callback; route_cancel stops it at any point.
 */
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/dname.h"
#include "base/err.h"
#include "route.h"

#define ROUTE_SMTP_PORT 25

/* One A or AAAA lookup of one host. */
struct route_lookup {
	struct route_req *req;
	int type;			/* ns_t_a or ns_t_aaaa */
	struct dns_query *query;	/* NULL once finished */
	enum dns_outcome outcome;
	enum dns_security security;
	struct route_addr *addrs;
	size_t addr_count;
};

struct route_req {
	struct dns *dns;
	route_cb cb;
	void *arg;
	unsigned max_hosts;
	struct route *route;
	struct dns_query *mx_query;	/* NULL once the MX answer came */
	struct route_lookup *lookups;	/* per host: A, then AAAA */
	size_t lookup_count;
	size_t pending;
};

const char *route_status_name(enum route_status status)
{
	switch (status) {
	case ROUTE_OK: return "ok";
	case ROUTE_NULL_MX: return "null-mx";
	case ROUTE_NO_DOMAIN: return "no-domain";
	case ROUTE_TEMPFAIL: return "tempfail";
	case ROUTE_NO_ADDRESS: return "no-address";
	}
	return "unknown";
}

/* MX ordering ------------------------------------------------------------ */

static uint32_t getrandom_u32(void *arg)
{
	uint32_t value = 0;

	/* Without entropy the order stays sorted, which is still valid. */
	if (getrandom(&value, sizeof(value), 0) != sizeof(value))
		return 0;
	return value;
}

bool route_is_null_mx(const struct dns_mx *mx, size_t count)
{
	/* RFC 7505 section 3 forbids other MX records next to a Null MX.
	 * A root exchange among real hosts is therefore a broken zone, not
	 * a definite refusal, so route_sort_mx drops the root record and
	 * mail goes to the other hosts. A single root MX with a preference
	 * other than 0 names no host either, so it counts as a Null MX. */
	return count == 1 && mx[0].exchange[0] == '\0';
}

/* Keeps valid host names, in lower case without the trailing dot. */
static size_t drop_unusable(struct dns_mx *mx, size_t count)
{
	char name[sizeof(mx->exchange)];
	size_t kept = 0;

	for (size_t i = 0; i < count; i++) {
		if (mx[i].exchange[0] == '\0' ||
		    base_dname_normalize(mx[i].exchange, name,
					 sizeof(name)) < 0)
			continue;
		mx[kept].preference = mx[i].preference;
		memcpy(mx[kept].exchange, name, sizeof(name));
		kept++;
	}
	return kept;
}

/* A stable insertion sort, because MX sets are small. */
static void sort_by_preference(struct dns_mx *mx, size_t count)
{
	for (size_t i = 1; i < count; i++) {
		struct dns_mx item = mx[i];
		size_t j = i;

		while (j > 0 && mx[j - 1].preference > item.preference) {
			mx[j] = mx[j - 1];
			j--;
		}
		mx[j] = item;
	}
}

/* RFC 5321 section 5.1: hosts of equal preference are tried in random order. */
static void shuffle_ties(struct dns_mx *mx, size_t count, route_random_fn rng,
			 void *rng_arg)
{
	size_t start = 0;

	while (start < count) {
		unsigned preference = mx[start].preference;
		size_t end = start + 1;

		while (end < count && mx[end].preference == preference)
			end++;
		/* Fisher-Yates over [start, end). The modulo bias of a 32-bit
		 * value over a few hosts does not matter here. */
		for (size_t i = end - 1; i > start; i--) {
			size_t j = start + rng(rng_arg) % (i - start + 1);
			struct dns_mx tmp = mx[i];

			mx[i] = mx[j];
			mx[j] = tmp;
		}
		start = end;
	}
}

/* Keeps the first, best-preference, record of each host name. */
static size_t drop_duplicates(struct dns_mx *mx, size_t count)
{
	size_t kept = 0;

	for (size_t i = 0; i < count; i++) {
		size_t j = 0;

		while (j < kept && strcmp(mx[j].exchange, mx[i].exchange) != 0)
			j++;
		if (j < kept)
			continue;
		if (kept != i)
			mx[kept] = mx[i];
		kept++;
	}
	return kept;
}

size_t route_sort_mx(struct dns_mx *mx, size_t count, size_t max_hosts,
		     route_random_fn rng, void *rng_arg)
{
	if (rng == NULL)
		rng = getrandom_u32;

	count = drop_unusable(mx, count);
	sort_by_preference(mx, count);
	shuffle_ties(mx, count, rng, rng_arg);
	count = drop_duplicates(mx, count);
	return count < max_hosts ? count : max_hosts;
}

/* Requests --------------------------------------------------------------- */

void route_free(struct route *route)
{
	if (route == NULL)
		return;
	for (size_t i = 0; i < route->host_count; i++)
		free(route->hosts[i].addrs);
	free(route->hosts);
	free(route);
}

static void free_req(struct route_req *req)
{
	for (size_t i = 0; i < req->lookup_count; i++)
		free(req->lookups[i].addrs);
	free(req->lookups);
	route_free(req->route);
	free(req);
}

/* Hands the route to the caller and frees the request. */
static void finish(struct route_req *req, enum route_status status)
{
	struct route *route = req->route;
	route_cb cb = req->cb;
	void *arg = req->arg;

	req->route = NULL;
	free_req(req);
	cb(arg, status, route);
}

static enum dns_security weaker(enum dns_security a, enum dns_security b)
{
	/* The enum runs from the strongest status to the weakest. */
	return a > b ? a : b;
}

/* Fills host i from its two lookups: A addresses first, then AAAA. */
static void merge_host(struct route_req *req, size_t i)
{
	struct route_host *host = &req->route->hosts[i];
	const struct route_lookup *a = &req->lookups[2 * i];
	const struct route_lookup *aaaa = &req->lookups[2 * i + 1];
	size_t count = a->addr_count + aaaa->addr_count;

	host->addr_security = weaker(a->security, aaaa->security);
	if (count == 0) {
		bool failed = a->outcome == DNS_ERROR ||
			      aaaa->outcome == DNS_ERROR;

		host->error = failed ? BASE_EDNS : BASE_ENOTFOUND;
		return;
	}

	host->addrs = calloc(count, sizeof(*host->addrs));
	if (host->addrs == NULL) {
		host->error = BASE_ENOMEM;
		return;
	}
	for (size_t j = 0; j < a->addr_count; j++)
		host->addrs[host->addr_count++] = a->addrs[j];
	for (size_t j = 0; j < aaaa->addr_count; j++)
		host->addrs[host->addr_count++] = aaaa->addrs[j];
}

static void finish_hosts(struct route_req *req)
{
	struct route *route = req->route;
	bool any_address = false;
	bool any_failure = false;
	enum route_status status;

	for (size_t i = 0; i < route->host_count; i++) {
		merge_host(req, i);
		if (route->hosts[i].addr_count > 0)
			any_address = true;
		else if (route->hosts[i].error != BASE_ENOTFOUND)
			any_failure = true;
	}

	if (any_address)
		status = ROUTE_OK;
	else if (any_failure)
		status = ROUTE_TEMPFAIL;
	else if (route->implicit_mx)
		status = ROUTE_NO_DOMAIN;	/* no MX and no address */
	else
		status = ROUTE_NO_ADDRESS;
	finish(req, status);
}

static void mark_failed(struct route_lookup *lookup)
{
	lookup->outcome = DNS_ERROR;
	lookup->security = DNS_INDETERMINATE;
}

/* Stores the addresses of an answer. A parse failure makes it an error. */
static void store_addrs(struct route_lookup *lookup,
			const struct dns_result *result)
{
	struct sockaddr_storage found[DNS_ADDRS_MAX];
	size_t count = 0;

	if (dns_parse_addrs(result, lookup->type, ROUTE_SMTP_PORT, found,
			    DNS_ADDRS_MAX, &count) < 0) {
		mark_failed(lookup);
		return;
	}
	if (count == 0)
		return;
	lookup->addrs = calloc(count, sizeof(*lookup->addrs));
	if (lookup->addrs == NULL) {
		mark_failed(lookup);
		return;
	}

	for (size_t i = 0; i < count; i++) {
		bool v4 = found[i].ss_family == AF_INET;

		lookup->addrs[i].sa = found[i];
		lookup->addrs[i].len = v4 ? sizeof(struct sockaddr_in)
					  : sizeof(struct sockaddr_in6);
	}
	lookup->addr_count = count;
}

static void host_cb(void *arg, const struct dns_result *result)
{
	struct route_lookup *lookup = arg;
	struct route_req *req = lookup->req;

	lookup->query = NULL;
	lookup->outcome = result->outcome;
	lookup->security = result->security;
	if (result->outcome == DNS_ANSWER)
		store_addrs(lookup, result);

	if (--req->pending == 0)
		finish_hosts(req);
}

/*
 * Starts the A and AAAA lookups of every host. A lookup that cannot start
 * counts as failed; the route finishes once none is pending.
 */
static void start_host_lookups(struct route_req *req)
{
	struct route *route = req->route;
	size_t count = route->host_count * 2;

	req->lookups = calloc(count > 0 ? count : 1, sizeof(*req->lookups));
	if (req->lookups == NULL) {
		finish(req, ROUTE_TEMPFAIL);
		return;
	}
	req->lookup_count = count;
	req->pending = count;

	for (size_t i = 0; i < count; i++) {
		struct route_lookup *lookup = &req->lookups[i];

		lookup->req = req;
		lookup->type = i % 2 == 0 ? ns_t_a : ns_t_aaaa;
		/* Until its answer comes, a lookup counts as failed. */
		mark_failed(lookup);
		if (dns_lookup(req->dns, route->hosts[i / 2].name, lookup->type,
			       host_cb, lookup, &lookup->query) < 0)
			req->pending--;
	}
	if (req->pending == 0)
		finish_hosts(req);
}

static int add_hosts(struct route *route, const struct dns_mx *mx,
		     size_t count)
{
	route->hosts = calloc(count > 0 ? count : 1, sizeof(*route->hosts));
	if (route->hosts == NULL)
		return BASE_ENOMEM;

	for (size_t i = 0; i < count; i++) {
		struct route_host *host = &route->hosts[i];

		memcpy(host->name, mx[i].exchange, sizeof(host->name));
		host->preference = mx[i].preference;
		host->addr_security = DNS_INDETERMINATE;
	}
	route->host_count = count;
	return 0;
}

static void use_mx_answer(struct route_req *req,
			  const struct dns_result *result)
{
	struct dns_mx *mx;
	size_t count;
	int err;

	if (dns_parse_mx(result, &mx, &count) < 0) {
		finish(req, ROUTE_TEMPFAIL);
		return;
	}
	if (route_is_null_mx(mx, count)) {
		free(mx);
		finish(req, ROUTE_NULL_MX);
		return;
	}

	count = route_sort_mx(mx, count, req->max_hosts, NULL, NULL);
	err = add_hosts(req->route, mx, count);
	free(mx);
	if (err < 0) {
		finish(req, ROUTE_TEMPFAIL);
		return;
	}
	start_host_lookups(req);
}

/*
 * RFC 5321 section 5.1: a domain without MX records is its own host, as an
 * implicit MX of preference 0.
 */
static void use_implicit_mx(struct route_req *req)
{
	struct dns_mx self = { .preference = 0 };

	memcpy(self.exchange, req->route->domain, sizeof(self.exchange));
	req->route->implicit_mx = true;
	if (add_hosts(req->route, &self, 1) < 0) {
		finish(req, ROUTE_TEMPFAIL);
		return;
	}
	start_host_lookups(req);
}

static void mx_cb(void *arg, const struct dns_result *result)
{
	struct route_req *req = arg;

	req->mx_query = NULL;
	req->route->mx_security = result->security;

	switch (result->outcome) {
	case DNS_ANSWER:
		use_mx_answer(req, result);
		break;
	case DNS_NODATA:
		use_implicit_mx(req);
		break;
	case DNS_NXDOMAIN:
		finish(req, ROUTE_NO_DOMAIN);
		break;
	case DNS_ERROR:
		finish(req, ROUTE_TEMPFAIL);
		break;
	}
}

int route_resolve(struct dns *dns, const char *domain, unsigned max_hosts,
		  route_cb cb, void *arg, struct route_req **out)
{
	struct route_req *req;
	int err;

	*out = NULL;
	if (max_hosts == 0)
		return BASE_EINVAL;
	req = calloc(1, sizeof(*req));
	if (req == NULL)
		return BASE_ENOMEM;
	req->route = calloc(1, sizeof(*req->route));
	if (req->route == NULL) {
		free(req);
		return BASE_ENOMEM;
	}

	req->dns = dns;
	req->cb = cb;
	req->arg = arg;
	req->max_hosts = max_hosts;
	req->route->mx_security = DNS_INDETERMINATE;
	err = base_dname_normalize(domain, req->route->domain,
				   sizeof(req->route->domain));
	if (err == 0)
		err = dns_lookup(dns, req->route->domain, ns_t_mx, mx_cb, req,
				 &req->mx_query);
	if (err < 0) {
		free_req(req);
		return err;
	}
	*out = req;
	return 0;
}

void route_cancel(struct route_req *req)
{
	if (req == NULL)
		return;
	dns_cancel(req->mx_query);
	for (size_t i = 0; i < req->lookup_count; i++)
		dns_cancel(req->lookups[i].query);
	free_req(req);
}
