/*
 * Policy decision: the security level that governs delivery to one
 * next-hop domain. Order (once DANE and MTA-STS exist): a local rule for
 * the domain, DANE when TLSA records are secure, MTA-STS, then the default.
 * Today only the default level exists.
 */
#ifndef POLICY_H
#define POLICY_H

#include <stdbool.h>

#include "conf/conf.h"
#include "route.h"

struct policy {
	enum conf_level level;
	const char *source;	/* "default" */
};

/* Decides the policy for route under conf. */
void policy_decide(const struct conf *conf, const struct route *route,
		   struct policy *out);

/* Returns true when the level forbids plaintext delivery. */
bool policy_requires_tls(const struct policy *p);

/* Returns true when the level permits trying STARTTLS at all. */
bool policy_tries_tls(const struct policy *p);

#endif
