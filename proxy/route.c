/*
 * Routing (RFC 5321 section 5.1, RFC 7505, RFC 7672 section 2.2): one MX
 * lookup for the next-hop domain, then an A and an AAAA lookup for every
 * MX host kept, all in parallel. Once a host's addresses are known and
 * secure, its TLSA lookup follows. A route_req owns its DNS queries and
 * the route it builds until it hands the route to the callback, and
 * route_cancel stops it at any point.
 */
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <stdio.h>
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
	size_t host;			/* index in route->hosts */
	int type;			/* ns_t_a or ns_t_aaaa */
	struct dns_query *query;	/* NULL once finished */
	enum dns_outcome outcome;
	enum dns_security security;
	struct route_addr *addrs;
	size_t addr_count;
	char target[256];		/* end of the CNAME chain, or "" */
};

/* One host's progress: its two address lookups, then its TLSA lookup. */
struct route_work {
	struct route_req *req;
	size_t host;			/* index in route->hosts */
	unsigned addr_pending;		/* address lookups not finished */
	struct dns_query *tlsa_query;	/* NULL when none is outstanding */
	char base[256];			/* TLSA base domain being asked */
	bool at_expanded;		/* base is the CNAME-expanded name, so
					   the host name comes next */
};

struct route_req {
	struct dns *dns;
	route_cb cb;
	void *arg;
	struct route_options opts;
	struct route *route;
	struct dns_query *mx_query;	/* NULL once the MX answer came */
	struct route_lookup *lookups;	/* per host: A, then AAAA */
	struct route_work *work;	/* per host */
	size_t lookup_count;
	size_t pending;			/* lookups not finished */
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

const char *route_tlsa_name(enum route_tlsa state)
{
	switch (state) {
	case ROUTE_TLSA_NOT_ASKED: return "not-asked";
	case ROUTE_TLSA_NONE: return "none";
	case ROUTE_TLSA_INSECURE: return "insecure";
	case ROUTE_TLSA_SECURE: return "secure";
	case ROUTE_TLSA_FAILED: return "failed";
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

/* TLSA decisions --------------------------------------------------------- */

bool route_tlsa_allowed(const struct route *route,
			const struct route_host *host,
			const struct route_options *opts)
{
	if (!opts->want_tlsa || host->addr_count == 0)
		return false;

	/* RFC 7672 section 2.2.2: resolve addresses first; insecure
	 * addresses mean no TLSA lookup. */
	if (host->addr_security != DNS_SECURE)
		return false;

	/* RFC 7672 section 2.2.1: with an insecure MX RRset DANE is not
	 * required, but a host's secure TLSA records may still be used. */
	return route->mx_security == DNS_SECURE || route->implicit_mx ||
	       opts->tlsa_insecure_mx;
}

enum route_tlsa route_tlsa_state(const struct dns_result *result)
{
	/* RFC 7672 section 2.1: a bogus or indeterminate answer is a lookup
	 * error, never "no records". */
	if (result->outcome == DNS_ERROR)
		return ROUTE_TLSA_FAILED;
	if (result->security != DNS_SECURE)
		return ROUTE_TLSA_INSECURE;
	return result->outcome == DNS_ANSWER ? ROUTE_TLSA_SECURE
					     : ROUTE_TLSA_NONE;
}

/* Requests --------------------------------------------------------------- */

void route_free(struct route *route)
{
	if (route == NULL)
		return;
	for (size_t i = 0; i < route->host_count; i++) {
		free(route->hosts[i].addrs);
		free(route->hosts[i].tlsa);
	}
	free(route->hosts);
	free(route);
}

static void free_req(struct route_req *req)
{
	for (size_t i = 0; i < req->lookup_count; i++)
		free(req->lookups[i].addrs);
	free(req->lookups);
	free(req->work);
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

/*
 * Returns the security of a host's addresses. A failed lookup is ignored
 * when the other one brought addresses, so that blocking AAAA queries
 * cannot turn DANE off for a host with secure A records.
 */
static enum dns_security addr_security(const struct route_lookup *a,
				       const struct route_lookup *aaaa)
{
	if (a->outcome == DNS_ERROR && aaaa->addr_count > 0)
		return aaaa->security;
	if (aaaa->outcome == DNS_ERROR && a->addr_count > 0)
		return a->security;
	return weaker(a->security, aaaa->security);
}

/* Fills host i from its two lookups: A addresses first, then AAAA. */
static void merge_host(struct route_req *req, size_t i)
{
	struct route_host *host = &req->route->hosts[i];
	const struct route_lookup *a = &req->lookups[2 * i];
	const struct route_lookup *aaaa = &req->lookups[2 * i + 1];
	size_t count = a->addr_count + aaaa->addr_count;

	host->addr_security = addr_security(a, aaaa);
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

/* Ends one lookup; the last one hands the route over. */
static void drop_pending(struct route_req *req)
{
	if (--req->pending == 0)
		finish_hosts(req);
}

/* Keeps the TLSA records of a secure answer. */
static void store_tlsa(struct route_host *host, const struct dns_result *result)
{
	struct tlsa_record found[TLSA_RECORDS_MAX];
	size_t count = 0;

	if (dns_parse_tlsa(result->abuf, result->alen, found, TLSA_RECORDS_MAX,
			   &count) < 0) {
		host->tlsa_state = ROUTE_TLSA_FAILED;
		return;
	}
	if (count == 0)
		return;
	host->tlsa = calloc(count, sizeof(*host->tlsa));
	if (host->tlsa == NULL) {
		host->tlsa_state = ROUTE_TLSA_FAILED;
		return;
	}
	memcpy(host->tlsa, found, count * sizeof(*found));
	host->tlsa_count = count;
}

static void tlsa_cb(void *arg, const struct dns_result *result);

/*
 * Starts the TLSA lookup of work's host at "_port._tcp.base". A lookup
 * that cannot start makes the host's TLSA state FAILED.
 */
static void start_tlsa(struct route_work *work, const char *base,
		       bool at_expanded)
{
	struct route_req *req = work->req;
	struct route_host *host = &req->route->hosts[work->host];
	char owner[sizeof(work->base) + 16];
	int len;

	/* RFC 7672 section 2.2.3: the port label is the destination port. */
	len = snprintf(owner, sizeof(owner), "_%u._tcp.%s",
		       (unsigned)req->opts.port, base);
	snprintf(work->base, sizeof(work->base), "%s", base);
	work->at_expanded = at_expanded;
	if (len < 0 || (size_t)len > BASE_DNAME_MAX ||
	    dns_lookup(req->dns, owner, ns_t_tlsa, tlsa_cb, work,
		       &work->tlsa_query) < 0) {
		host->tlsa_state = ROUTE_TLSA_FAILED;
		return;
	}
	req->pending++;
}

static void tlsa_cb(void *arg, const struct dns_result *result)
{
	struct route_work *work = arg;
	struct route_req *req = work->req;
	struct route_host *host = &req->route->hosts[work->host];
	enum route_tlsa state = route_tlsa_state(result);

	work->tlsa_query = NULL;

	/* RFC 7672 section 2.2: no secure records at the CNAME-expanded
	 * name, so the original host name is asked next. A failure is kept:
	 * it must not be hidden by an answer at the other name. */
	if (work->at_expanded &&
	    (state == ROUTE_TLSA_NONE || state == ROUTE_TLSA_INSECURE)) {
		start_tlsa(work, host->name, false);
		drop_pending(req);
		return;
	}

	host->tlsa_state = state;
	if (state == ROUTE_TLSA_SECURE) {
		memcpy(host->tlsa_base, work->base, sizeof(host->tlsa_base));
		store_tlsa(host, result);
	}
	drop_pending(req);
}

/*
 * Returns the CNAME-expanded name of host i when a secure address answer
 * reached it through a CNAME chain, else NULL.
 */
static const char *expanded_name(const struct route_req *req, size_t i)
{
	const struct route_host *host = &req->route->hosts[i];

	for (size_t j = 2 * i; j < 2 * i + 2; j++) {
		const struct route_lookup *lookup = &req->lookups[j];

		if (lookup->outcome == DNS_ERROR ||
		    lookup->security != DNS_SECURE ||
		    lookup->target[0] == '\0')
			continue;
		if (strcmp(lookup->target, host->name) != 0)
			return lookup->target;
	}
	return NULL;
}

/* Both address lookups of host i are done: merge them, then ask TLSA. */
static void host_ready(struct route_req *req, size_t i)
{
	struct route_host *host = &req->route->hosts[i];
	const char *expanded;

	merge_host(req, i);
	if (!route_tlsa_allowed(req->route, host, &req->opts))
		return;

	/* RFC 7672 section 2.2: with a secure CNAME chain the expanded name
	 * is asked first, then the original. */
	expanded = expanded_name(req, i);
	if (expanded != NULL)
		start_tlsa(&req->work[i], expanded, true);
	else
		start_tlsa(&req->work[i], host->name, false);
}

static void lookup_done(struct route_lookup *lookup)
{
	struct route_req *req = lookup->req;

	if (--req->work[lookup->host].addr_pending == 0)
		host_ready(req, lookup->host);
	drop_pending(req);
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

	if (dns_parse_addrs(result, lookup->type, lookup->req->opts.port,
			    found, DNS_ADDRS_MAX, &count, lookup->target,
			    sizeof(lookup->target)) < 0) {
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

	lookup->query = NULL;
	lookup->outcome = result->outcome;
	lookup->security = result->security;
	if (result->outcome == DNS_ANSWER || result->outcome == DNS_NODATA)
		store_addrs(lookup, result);
	lookup_done(lookup);
}

/*
 * Starts the A and AAAA lookups of every host. A lookup that cannot start
 * counts as failed. One extra pending count keeps the route from finishing
 * before every lookup has started.
 */
static void start_host_lookups(struct route_req *req)
{
	struct route *route = req->route;
	size_t count = route->host_count * 2;

	req->lookups = calloc(count > 0 ? count : 1, sizeof(*req->lookups));
	req->work = calloc(route->host_count > 0 ? route->host_count : 1,
			   sizeof(*req->work));
	if (req->lookups == NULL || req->work == NULL) {
		finish(req, ROUTE_TEMPFAIL);
		return;
	}
	req->lookup_count = count;
	req->pending = count + 1;

	for (size_t i = 0; i < route->host_count; i++)
		req->work[i] = (struct route_work){ .req = req, .host = i,
						    .addr_pending = 2 };
	for (size_t i = 0; i < count; i++) {
		struct route_lookup *lookup = &req->lookups[i];

		lookup->req = req;
		lookup->host = i / 2;
		lookup->type = i % 2 == 0 ? ns_t_a : ns_t_aaaa;
		/* Until its answer comes, a lookup counts as failed. */
		mark_failed(lookup);
		if (dns_lookup(req->dns, route->hosts[i / 2].name, lookup->type,
			       host_cb, lookup, &lookup->query) < 0)
			lookup_done(lookup);
	}
	drop_pending(req);
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
		memcpy(host->tlsa_base, mx[i].exchange,
		       sizeof(host->tlsa_base));
		host->preference = mx[i].preference;
		host->addr_security = DNS_INDETERMINATE;
		host->tlsa_state = ROUTE_TLSA_NOT_ASKED;
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

	count = route_sort_mx(mx, count, req->opts.max_hosts, NULL, NULL);
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

int route_resolve(struct dns *dns, const char *domain,
		  const struct route_options *opts, route_cb cb, void *arg,
		  struct route_req **out)
{
	struct route_req *req;
	int err;

	*out = NULL;
	if (opts->max_hosts == 0)
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
	req->opts = *opts;
	if (req->opts.port == 0)
		req->opts.port = ROUTE_SMTP_PORT;
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
	for (size_t i = 0; req->work != NULL && i < req->route->host_count; i++)
		dns_cancel(req->work[i].tlsa_query);
	free_req(req);
}
