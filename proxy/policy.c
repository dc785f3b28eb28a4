/* Policy decision and the post-handshake check: see policy.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtasts/policy.h"
#include "policy.h"
#include "stream.h"

static bool level_is_dane(enum conf_level level)
{
	return level == CONF_LEVEL_DANE || level == CONF_LEVEL_DANE_ONLY;
}

bool policy_wants_tlsa(const struct conf *conf, const char *domain,
		       int64_t now)
{
	const struct conf_rule *rule = conf_rule_find(conf, domain, now);

	/* With a rule, TLSA is still looked up when DANE is on, so that a rule
	   setting DANE aside can be logged as such. */
	if (rule != NULL)
		return level_is_dane(rule->level) || conf->policy_dane;
	return conf->policy_dane || level_is_dane(conf->policy_default);
}

bool policy_wants_sts(const struct conf *conf, const struct route *route,
		      int64_t now)
{
	const struct conf_rule *rule = conf_rule_find(conf, route->domain, now);

	/*
	 * Asked even when some MX hosts publish DANE: DANE decides for those
	 * hosts (RFC 8461 section 2), and MTA-STS still guards the others,
	 * so blocking a DANE host cannot strip TLS from the rest.
	 */
	(void)route;
	return conf->policy_mta_sts && rule == NULL;
}

void policy_decide(const struct conf *conf, const struct route *route,
		   const struct policy_sts *sts, int64_t now,
		   struct policy *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->domain, sizeof(out->domain), "%s", route->domain);
	out->rule = conf_rule_find(conf, route->domain, now);
	out->level = out->rule ? out->rule->level : conf->policy_default;
	out->dane = level_is_dane(out->level) ||
		(out->rule == NULL && conf->policy_dane);

	/* RFC 7672 section 2.2.1: only a secure MX RRset lets DANE speak for
	   the recipient domain; for an implicit MX the address answer counts. */
	if (route->implicit_mx && route->host_count > 0)
		out->mx_secure = route->hosts[0].addr_security == DNS_SECURE;
	else
		out->mx_secure = route->mx_security == DNS_SECURE;

	if (sts != NULL && sts->mode != POLICY_STS_NONE && out->rule == NULL &&
	    conf->policy_mta_sts) {
		out->has_sts = true;
		out->sts = *sts;
		out->sts.mx = policy_mx_list_ref(sts->mx);
	}
}

struct policy_mx_list *policy_mx_list_new(size_t count)
{
	struct policy_mx_list *list;

	list = calloc(1, sizeof(*list) + count * sizeof(list->mx[0]));
	if (list == NULL)
		return NULL;
	list->refs = 1;
	list->count = count;
	return list;
}

struct policy_mx_list *policy_mx_list_ref(struct policy_mx_list *list)
{
	if (list != NULL)
		list->refs++;
	return list;
}

void policy_mx_list_unref(struct policy_mx_list *list)
{
	if (list != NULL && --list->refs == 0)
		free(list);
}

void policy_copy(struct policy *dst, const struct policy *src)
{
	*dst = *src;
	policy_mx_list_ref(dst->sts.mx);
}

void policy_clear(struct policy *p)
{
	policy_mx_list_unref(p->sts.mx);
	p->sts.mx = NULL;
}

bool policy_sts_mx_match(const struct policy_sts *sts, const char *host)
{
	const struct policy_mx_list *list = sts->mx;

	if (list == NULL)
		return false;
	/* RFC 8461 section 4.1, with the matcher of mtasts/. */
	for (size_t i = 0; i < list->count; i++) {
		if (mtasts_pattern_match(list->mx[i], host))
			return true;
	}
	return false;
}

static void set_unusable(struct policy_host *out, const char *fmt,
			 const char *a, const char *b)
{
	out->usable = false;
	snprintf(out->skip_reason, sizeof(out->skip_reason), fmt, a, b);
}

static void apply_pkix(struct policy_host *out, const char *host)
{
	out->auth = POLICY_AUTH_PKIX;
	out->pkix_names[0] = host;
	out->pkix_name_count = 1;
}

/* MTA-STS for one host (RFC 8461 sections 4 and 5). */
static void apply_sts(const struct policy *p, const struct route_host *h,
		      struct policy_host *out)
{
	bool testing = p->sts.mode == POLICY_STS_TESTING;

	out->label = "mta-sts";
	out->try_tls = true;
	out->report_only = testing;
	out->require_tls = !testing;
	apply_pkix(out, h->name);
	if (policy_sts_mx_match(&p->sts, h->name))
		return;
	set_unusable(out, "MX host %s does not match the MTA-STS policy (id %s)",
		     h->name, p->sts.id);
	/* Section 5: testing mode reports the failure and delivers anyway. */
	if (testing)
		out->usable = true;
}

/* DANE for a host with a secure TLSA RRset (RFC 7672 section 2.2). */
static void apply_dane(const struct policy *p, const struct route_host *h,
		       struct policy_host *out)
{
	size_t keep[TLSA_RECORDS_MAX];
	size_t kept = 0;

	out->label = "dane";
	out->try_tls = true;
	out->require_tls = true;	/* one secure record, usable or not */
	out->sni = h->tlsa_base;	/* RFC 7672 section 8.1 */
	out->dane_names[0] = h->tlsa_base;
	out->dane_names[1] = p->domain;
	out->dane_verified = p->mx_secure;

	tlsa_select(h->tlsa, h->tlsa_count, keep, &kept);
	for (size_t i = 0; i < kept; i++)
		out->tlsa[i] = h->tlsa[keep[i]];
	out->tlsa_count = kept;
	if (kept > 0) {
		out->auth = POLICY_AUTH_DANE;
		return;
	}
	/* All records unusable: TLS without authentication, unless an
	   MTA-STS policy can authenticate the host. MTA-STS may only add
	   authentication: the secure TLSA RRset still demands TLS, even
	   under a testing policy (RFC 7672 section 2.2). */
	if (p->has_sts) {
		apply_sts(p, h, out);
		out->try_tls = true;
		out->require_tls = true;
	}
}

static void apply_level(const struct policy *p, const struct route_host *h,
			struct policy_host *out)
{
	out->label = conf_level_name(p->level);
	switch (p->level) {
	case CONF_LEVEL_NONE:
		return;
	case CONF_LEVEL_MAY:
	case CONF_LEVEL_DANE:
		out->try_tls = true;
		return;
	case CONF_LEVEL_DANE_ONLY:
		set_unusable(out, "no secure TLSA records for %s under dane-only%s",
			     h->name, "");
		return;
	case CONF_LEVEL_ENCRYPT:
		out->try_tls = true;
		out->require_tls = true;
		return;
	case CONF_LEVEL_VERIFY:
	case CONF_LEVEL_SECURE:
		out->try_tls = true;
		out->require_tls = true;
		apply_pkix(out, h->name);
		if (p->level == CONF_LEVEL_SECURE)
			out->secure_rule = p->rule;
		return;
	}
}

void policy_for_host(const struct policy *p, const struct route *route,
		     const struct route_host *h, struct policy_host *out)
{
	memset(out, 0, sizeof(*out));
	out->usable = true;
	out->host = h->name;
	out->sni = h->name;

	if (p->dane && h->tlsa_state == ROUTE_TLSA_FAILED) {
		/* RFC 7672 section 2.2: a failed TLSA lookup makes the host
		   unusable, even for plaintext. */
		out->label = "dane";
		set_unusable(out, "TLSA lookup failed for _25._tcp.%s%s", h->name, "");
		return;
	}
	if (p->dane && h->tlsa_state == ROUTE_TLSA_SECURE) {
		apply_dane(p, h, out);
		return;
	}
	if (p->has_sts) {
		apply_sts(p, h, out);
		return;
	}
	apply_level(p, h, out);
	(void)route;
}

static void check_dane(const struct policy_host *ph, const struct stream *s,
		       int64_t now, struct policy_verdict *v)
{
	struct tlsa_cert chain[TLSA_CHAIN_MAX];
	size_t n = stream_peer_chain(s, chain, TLSA_CHAIN_MAX);
	struct tlsa_result res;

	if (tlsa_verify(ph->tlsa, ph->tlsa_count, chain, n, ph->dane_names, 2,
			now, &res) < 0) {
		snprintf(v->detail, sizeof(v->detail),
			 "DANE verification could not run for %s", ph->host);
		return;
	}
	if (!res.matched) {
		snprintf(v->detail, sizeof(v->detail), "%s", res.reason);
		return;
	}
	v->ok = true;
	v->verified = ph->dane_verified ? "yes" : "trusted";
	snprintf(v->detail, sizeof(v->detail), "TLSA %u %u %u matched depth %zu",
		 res.record.usage, res.record.selector, res.record.mtype, res.depth);
}

static bool leaf_names(const struct policy_host *ph, const struct tlsa_cert *leaf)
{
	const struct conf_rule *rule = ph->secure_rule;

	if (rule == NULL)
		return tlsa_cert_names_match(leaf->der, leaf->len, ph->pkix_names[0]);
	for (size_t i = 0; i < rule->match_count; i++) {
		if (tlsa_cert_names_match(leaf->der, leaf->len, rule->match[i]))
			return true;
	}
	return false;
}

static void check_pkix(const struct policy_host *ph, const struct stream *s,
		       struct policy_verdict *v)
{
	const struct stream_tls_info *tls = stream_tls(s);
	struct tlsa_cert chain[1];

	if (!tls->pkix_valid) {
		snprintf(v->detail, sizeof(v->detail),
			 "certificate chain does not verify: %s", tls->pkix_error);
		return;
	}
	if (stream_peer_chain(s, chain, 1) != 1 || !leaf_names(ph, &chain[0])) {
		snprintf(v->detail, sizeof(v->detail),
			 "certificate does not name %s",
			 ph->secure_rule ? "a host of the rule's match list" : ph->host);
		return;
	}
	v->ok = true;
	v->verified = "yes";
	snprintf(v->detail, sizeof(v->detail), "certificate verified for %s",
		 ph->secure_rule ? "the match list" : ph->host);
}

void policy_check(const struct policy_host *ph, const struct stream *s,
		  int64_t now, struct policy_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->verified = "no";
	switch (ph->auth) {
	case POLICY_AUTH_NONE:
		v->ok = true;
		snprintf(v->detail, sizeof(v->detail), "certificate not checked");
		return;
	case POLICY_AUTH_DANE:
		check_dane(ph, s, now, v);
		return;
	case POLICY_AUTH_PKIX:
		check_pkix(ph, s, v);
		break;
	}
	/* RFC 8461 section 5: in testing mode a failure is only reported. */
	if (!v->ok && ph->report_only)
		v->ok = true;
}
