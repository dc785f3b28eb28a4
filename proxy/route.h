/*
 * Routing: the recipient domain's MX hosts by preference (hosts of equal
 * preference shuffled, RFC 5321 section 5.1), implicit MX when the domain
 * has no MX records, Null MX (RFC 7505), then the addresses of each host.
 * Every lookup's security status is kept for the policy step.
 */
#ifndef ROUTE_H
#define ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dns.h"
#include "tlsa/tlsa.h"

/* The TLSA outcome for one MX host. */
enum route_tlsa {
	ROUTE_TLSA_NOT_ASKED,	/* not requested, or not allowed: insecure
				   MX RRset or insecure address answer */
	ROUTE_TLSA_NONE,	/* secure NXDOMAIN or NODATA: no DANE */
	ROUTE_TLSA_INSECURE,	/* an insecure answer: no DANE */
	ROUTE_TLSA_SECURE,	/* a secure RRset: TLS mandatory */
	ROUTE_TLSA_FAILED,	/* bogus or indeterminate: host unusable */
};

/* Lookups wanted besides MX and addresses. */
struct route_options {
	unsigned max_hosts;
	bool want_tlsa;		/* TLSA for hosts of a secure MX RRset */
	bool tlsa_insecure_mx;	/* TLSA even when the MX RRset is insecure */
	uint16_t port;		/* destination port for the TLSA owner, 25 */
};

struct route_addr {
	struct sockaddr_storage sa;	/* port is 25 */
	socklen_t len;
};

struct route_host {
	char name[256];			/* MX host name, lower case, no dot */
	unsigned preference;
	struct route_addr *addrs;	/* A records first, then AAAA */
	size_t addr_count;
	/* The weaker of the A and AAAA answers. A failed lookup counts only
	   when the other one brought no address. */
	enum dns_security addr_security;
	int error;			/* 0, or BASE_EDNS when no address could be had
					   and a lookup failed, BASE_ENOTFOUND when the
					   host has no address at all */

	/* DANE (RFC 7672 section 2.2), filled when TLSA was requested. */
	enum route_tlsa tlsa_state;
	struct tlsa_record *tlsa;	/* every record of a secure RRset that
					   parses; may be empty when none does */
	size_t tlsa_count;
	char tlsa_base[256];		/* TLSA base domain: the CNAME-expanded
					   host name when the whole chain is
					   secure and it has TLSA, else name */
};

enum route_status {
	ROUTE_OK,		/* at least one host has an address */
	ROUTE_NULL_MX,		/* RFC 7505: the domain accepts no mail */
	ROUTE_NO_DOMAIN,	/* NXDOMAIN, or no MX and no address (definite) */
	ROUTE_TEMPFAIL,		/* a lookup failed; try again later */
	ROUTE_NO_ADDRESS,	/* MX hosts exist but none has an address */
};

struct route {
	char domain[256];		/* next-hop domain, lower case */
	bool implicit_mx;		/* the domain itself is the only host */
	enum dns_security mx_security;	/* of the MX answer */
	struct route_host *hosts;	/* best preference first */
	size_t host_count;
};

struct route_req;

/*
 * Called once with the status and, for every status, a route the callee
 * now owns (free with route_free; hosts may be empty).
 */
typedef void (*route_cb)(void *arg, enum route_status status,
			 struct route *route);

/*
 * Resolves domain through dns, keeping at most opts->max_hosts MX hosts,
 * and, as opts asks, the TLSA records of each host (RFC 7672 section
 * 2.2: addresses first, and no TLSA query when they are insecure). cb runs
 * exactly once, later, unless route_cancel is called first. Returns 0 and
 * stores a handle in *req (valid until cb runs), or a negative base_err code
 * and cb never runs. Cancel every pending request before dns_free: after it
 * no callback runs, so the request would never be freed.
 */
int route_resolve(struct dns *dns, const char *domain,
		  const struct route_options *opts, route_cb cb, void *arg,
		  struct route_req **req);

/* Stops a resolution: its callback will not run. */
void route_cancel(struct route_req *req);

void route_free(struct route *route);

const char *route_status_name(enum route_status status);

/* Returns "not-asked", "none", "insecure", "secure" or "failed". */
const char *route_tlsa_name(enum route_tlsa state);

/*
 * Returns true when host's TLSA records may be looked up (RFC 7672
 * sections 2.2.1 and 2.2.2): opts requests them, the host has addresses
 * from secure answers, and either the MX RRset is secure, the route is an
 * implicit MX, or opts->tlsa_insecure_mx is set.
 */
bool route_tlsa_allowed(const struct route *route,
			const struct route_host *host,
			const struct route_options *opts);

/* Returns the TLSA outcome of one TLSA lookup result (RFC 7672 section 2.2). */
enum route_tlsa route_tlsa_state(const struct dns_result *result);

/* Source of random numbers for the shuffle; arg is passed through. */
typedef uint32_t (*route_random_fn)(void *arg);

/*
 * Returns true when the MX set is a Null MX (RFC 7505 section 3): exactly
 * one record whose exchange is the root name.
 */
bool route_is_null_mx(const struct dns_mx *mx, size_t count);

/*
 * Orders mx in place for delivery: drops root and invalid exchanges, sorts
 * by preference, shuffles records of equal preference with rng (NULL
 * means getrandom), drops later duplicates of a host name and keeps at most
 * max_hosts. Returns the number of records kept at the front of mx.
 */
size_t route_sort_mx(struct dns_mx *mx, size_t count, size_t max_hosts,
		     route_random_fn rng, void *rng_arg);

#endif
