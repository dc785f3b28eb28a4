/* Policy decision: see policy.h. */
#include "policy.h"

void policy_decide(const struct conf *conf, const struct route *route,
		   struct policy *out)
{
	(void)route;
	out->level = conf->policy_default;
	out->source = "default";
}

bool policy_requires_tls(const struct policy *p)
{
	return p->level >= CONF_LEVEL_ENCRYPT;
}

bool policy_tries_tls(const struct policy *p)
{
	return p->level != CONF_LEVEL_NONE;
}
