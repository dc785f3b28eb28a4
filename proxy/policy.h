/*
 * Policy decision: the security requirements for delivery to one next-hop
 * domain and to each of its MX hosts, and the check of a finished TLS
 * handshake against them. Order (RFC 7672, RFC 8461 section 2): a local
 * rule for the domain (the operator's explicit exception), then DANE for a
 * host with secure TLSA records, then MTA-STS, then policy.default. A
 * failing DANE result is never rescued by MTA-STS.
 */
#ifndef POLICY_H
#define POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "route.h"
#include "tlsa/tlsa.h"

struct stream;

enum policy_sts_mode {
	POLICY_STS_NONE,
	POLICY_STS_TESTING,
	POLICY_STS_ENFORCE,
};

#define POLICY_STS_MX_MAX 64

/*
 * The mx patterns of an MTA-STS policy. Every policy that copies them
 * shares one list and counts its reference, so an MX session does not
 * carry 16 KiB of mostly empty pattern slots.
 */
struct policy_mx_list {
	unsigned refs;
	size_t count;
	char mx[][256];
};

/* An MTA-STS policy in force for the domain (RFC 8461 section 3.2). */
struct policy_sts {
	enum policy_sts_mode mode;
	char id[33];
	char source[24];		/* "fetched", "cached", ... */
	struct policy_mx_list *mx;	/* NULL: no host matches */
};

/* The domain-level decision. */
struct policy {
	enum conf_level level;		/* rule level, else policy.default */
	const struct conf_rule *rule;	/* the local rule in force, or NULL */
	bool dane;			/* DANE applies to hosts with TLSA */
	bool mx_secure;			/* MX RRset secure: DANE may say
					   "verified", otherwise "trusted" */
	bool has_sts;
	struct policy_sts sts;
	char domain[256];
};

/* What one MX host must offer. */
enum policy_auth {
	POLICY_AUTH_NONE,		/* no certificate check */
	POLICY_AUTH_DANE,		/* a usable TLSA record must match */
	POLICY_AUTH_PKIX,		/* chain to tls.ca_file, name checked */
};

struct policy_host {
	bool usable;			/* false: do not dial this host */
	char skip_reason[400];		/* why not, for the log and reply */
	bool try_tls;			/* send STARTTLS when offered */
	bool require_tls;		/* no plaintext, ever */
	enum policy_auth auth;
	const char *label;		/* log word: "dane", "mta-sts", "may" */
	bool report_only;		/* MTA-STS testing: log, do not refuse */
	const char *sni;		/* points into the route or policy */
	const char *pkix_names[2];	/* names one of which the leaf must carry */
	size_t pkix_name_count;
	const struct conf_rule *secure_rule; /* secure: names from rule->match */
	struct tlsa_record tlsa[TLSA_RECORDS_MAX]; /* usable records */
	size_t tlsa_count;
	const char *dane_names[2];	/* TLSA base domain, next-hop domain */
	bool dane_verified;		/* MX RRset secure: say "verified",
					   else "trusted" */
	const char *host;		/* the MX host name */
};

/* The outcome of checking a finished handshake. */
struct policy_verdict {
	bool ok;			/* delivery may go on */
	const char *verified;		/* "yes", "trusted" or "no" */
	char detail[200];		/* matched record, or why the check failed */
};

/*
 * Returns a list with room for count patterns (count 0 allowed) and one
 * reference, or NULL when out of memory.
 */
struct policy_mx_list *policy_mx_list_new(size_t count);

/* Adds a reference to list (may be NULL) and returns it. */
struct policy_mx_list *policy_mx_list_ref(struct policy_mx_list *list);

/* Drops a reference; the last one frees the list. NULL is ignored. */
void policy_mx_list_unref(struct policy_mx_list *list);

/*
 * Copies src into dst, sharing its pattern list. Release dst with
 * policy_clear.
 */
void policy_copy(struct policy *dst, const struct policy *src);

/* Releases what p references; p must be decided or copied again before
   its next use. */
void policy_clear(struct policy *p);

/*
 * Decides the domain-level policy for route under conf at time now.
 * sts is the MTA-STS policy in force or NULL. Writes into out, which the
 * caller releases with policy_clear.
 */
void policy_decide(const struct conf *conf, const struct route *route,
		   const struct policy_sts *sts, int64_t now,
		   struct policy *out);

/*
 * Returns true when TLSA records could matter for domain: DANE is on for
 * every domain, or the domain's rule or policy.default is dane or
 * dane-only.
 */
bool policy_wants_tlsa(const struct conf *conf, const char *domain,
		       int64_t now);

/* Returns true when an MTA-STS lookup could matter for this route. */
bool policy_wants_sts(const struct conf *conf, const struct route *route,
		      int64_t now);

/* Fills out with what host h of route must offer under p. */
void policy_for_host(const struct policy *p, const struct route *route,
		     const struct route_host *h, struct policy_host *out);

/*
 * Checks the TLS session on s against ph after the handshake, at time now.
 * Writes the result into v.
 */
void policy_check(const struct policy_host *ph, const struct stream *s,
		  int64_t now, struct policy_verdict *v);

/* True when MTA-STS pattern matches MX host name (RFC 8461 section 4.1). */
bool policy_sts_mx_match(const struct policy_sts *sts, const char *host);

#endif
