/*
 * Client session, transaction side: routing on the first RCPT, the policy
 * step, the upstream session, relaying MAIL, RCPT and DATA, and the
 * summary line for each recipient. The end of DATA is answered only with
 * the MX's own final reply (or a 4xx/5xx of ours when it never came).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/dname.h"
#include "base/err.h"
#include "client_impl.h"
#include "log.h"
#include "mtasts/resolver.h"
#include "sts_io.h"
#include "policy.h"
#include "server.h"
#include "stream.h"
#include "transparent.h"
#include "upstream.h"

#define CLIENT_HIGH_WATER (256 * 1024)

static void end_message(struct client *c, const struct outcome *o);
static void sts_done(void *arg, const struct mtasts_verdict *v);
static void deliver(struct client *c, struct route *route,
		    const struct policy_sts *sts);
static void log_sts(struct client *c, const struct mtasts_verdict *v);
static void start_delivery(struct client *c);
static void fail_txn(struct client *c, const struct outcome *o);

static void recheck_done(void *arg, const struct mtasts_verdict *v)
{
	struct client *c = arg;

	c->sts_req = NULL;
	log_sts(c, v);
	if (v->changed && strcmp(v->id, c->sts_id) != 0) {
		/* A newer policy: route again and deliver under it. */
		log_conn(&c->srv->log, CONF_LOG_INFO, c->id,
			 "event=sts-policy-changed domain=%s id=%s action=retry",
			 c->domain, v->id);
		start_delivery(c);
		return;
	}
	fail_txn(c, &c->txn_failure);
}

/*
 * RFC 8461 section 5.1: before deferring a message that an enforce policy
 * kept from every MX host, check whether the domain published a newer
 * policy. Returns true when the check is under way.
 */
static bool recheck_sts(struct client *c, const struct outcome *o)
{
	if (!c->sts_enforced || c->sts_rechecked || c->srv->sts == NULL)
		return false;
	c->sts_rechecked = true;
	c->txn_failure = *o;
	c->wait = CLIENT_WAIT_STS;
	if (mtasts_check_newer(c->srv->sts, c->domain, recheck_done, c,
			       &c->sts_req) == 0)
		return true;
	c->sts_req = NULL;
	return false;
}

static void on_ready(void *arg, const struct outcome *o);
static void on_reply(void *arg, const struct smtp_reply *r);
static void on_error(void *arg, const struct outcome *o);
static void on_drain(void *arg);

static const struct upstream_hooks hooks = {
	.on_ready = on_ready,
	.on_reply = on_reply,
	.on_error = on_error,
	.on_drain = on_drain,
};

static double seconds(uint64_t from, uint64_t to)
{
	return to > from && from > 0 ? (double)(to - from) / 1000.0 : 0.0;
}

/* Writes the one summary line for a recipient's outcome. */
static void log_recipient(struct client *c, const char *rcpt,
			  const struct outcome *o)
{
	struct upstream_info info = { .host = "none", .address = "none",
				      .policy = "none", .verified = "no",
				      .detail = "" };
	uint64_t now = uv_now(c->srv->loop);
	char from[128], to[128], reply[512], text[420], detail[260], sts[80] = "";

	if (c->up != NULL)
		upstream_info(c->up, &info);
	else if (c->last_mx != NULL)
		info = *c->last_mx;
	log_escape(c->mail_from, strlen(c->mail_from), from, sizeof(from));
	log_escape(rcpt, strlen(rcpt), to, sizeof(to));
	snprintf(text, sizeof(text), "%d %s %s", o->code, o->enhanced, o->text);
	log_escape(text, strlen(text), reply, sizeof(reply));
	log_escape(info.detail, strlen(info.detail), detail, sizeof(detail));
	if (strcmp(info.policy, "mta-sts") == 0)
		snprintf(sts, sizeof(sts), " sts_mode=%s sts_id=%s",
			 c->sts_enforced ? "enforce" : "testing", c->sts_id);

	log_conn(&c->srv->log, CONF_LOG_INFO, c->id,
		 "event=recipient from=%s to=%s relay=%s[%s]:25 "
		 "delays=%.3f/%.3f/%.3f/%.3f delay=%.3f tls=%s cipher=%s "
		 "verified=%s policy=%s%s check=%s dsn=%s status=%s reason=%s reply=%s",
		 from, to, info.host, info.address,
		 seconds(c->t_txn, c->t_routed), info.connect_s, info.tls_s,
		 seconds(c->t_mail, now), seconds(c->t_txn, now),
		 info.tls ? info.tls->version : "none",
		 info.tls ? info.tls->cipher : "none",
		 c->up || c->last_mx ? info.verified : "no",
		 c->up || c->last_mx ? info.policy :
		 c->policy_name[0] ? c->policy_name : "undecided", sts, detail,
		 o->enhanced,
		 outcome_status(o), o->reason, reply);
}

static void free_accepted(struct client *c)
{
	for (unsigned i = 0; i < c->accepted_count; i++)
		free(c->accepted[i]);
	free(c->accepted);
	c->accepted = NULL;
	c->accepted_count = 0;
}

void client_txn_reset(struct client *c)
{
	if (c->mail_sent)
		c->up_dirty = true;
	free_accepted(c);
	c->has_mail = false;
	c->mail_from[0] = '\0';
	c->mail_smtputf8 = false;
	c->mail_8bit = false;
	c->mail_size = 0;
	c->domain[0] = '\0';
	c->rcpt_count = 0;
	c->txn_failed = false;
	c->mail_sent = false;
	c->data_failed = false;
	c->sts_rechecked = false;
	free(c->last_mx);
	c->last_mx = NULL;
	c->t_txn = c->t_routed = c->t_ready = c->t_mail = 0;
}

/* Ends the wait for the current command and answers buffered ones. */
static void finish_wait(struct client *c)
{
	c->wait = CLIENT_WAIT_NONE;
	if (c->state == CLIENT_WAIT)
		c->state = CLIENT_COMMAND;
	client_resume(c);
}

/* Fails the whole transaction; later RCPTs get the same reply. */
static void fail_txn(struct client *c, const struct outcome *o)
{
	c->txn_failed = true;
	c->txn_failure = *o;
	log_recipient(c, c->rcpt, o);
	client_reply_outcome(c, o);
	finish_wait(c);
}

static void drop_upstream(struct client *c)
{
	upstream_abort(c->up);
	c->up = NULL;
	c->up_dirty = false;
	c->mail_sent = false;
}

static void begin_wait(struct client *c, enum client_wait w)
{
	c->wait = w;
	c->state = CLIENT_WAIT;
	client_pause(c);
}

static void send_command(struct client *c, enum client_wait w, const char *line)
{
	struct outcome o;

	begin_wait(c, w);
	if (upstream_send(c->up, line, strlen(line)) < 0) {
		outcome_set(&o, OUTCOME_LOST, "write failed");
		drop_upstream(c);
		fail_txn(c, &o);
	}
}

/* Builds MAIL FROM with the parameters this MX supports. */
static void send_mail(struct client *c)
{
	const struct ehlo_caps *caps = upstream_caps(c->up);
	char line[SMTP_CMD_PATH_MAX + 128];
	struct outcome o;
	int n;

	/* RFC 6531 section 3.4: no SMTPUTF8 message to a server without it. */
	if (c->mail_smtputf8 && !(caps->flags & EHLO_SMTPUTF8)) {
		outcome_set(&o, OUTCOME_SMTPUTF8_UNSUPPORTED, NULL);
		fail_txn(c, &o);
		return;
	}
	n = snprintf(line, sizeof(line), "MAIL FROM:<%s>", c->mail_from);
	if (c->mail_size > 0 && (caps->flags & EHLO_SIZE))
		n += snprintf(line + n, sizeof(line) - n, " SIZE=%" PRIu64, c->mail_size);
	if (c->mail_8bit && (caps->flags & EHLO_8BITMIME))
		n += snprintf(line + n, sizeof(line) - n, " BODY=8BITMIME");
	else if (c->mail_8bit)
		log_conn(&c->srv->log, CONF_LOG_INFO, c->id,
			 "event=8bitmime-unsupported action=sent-as-is");
	if (c->mail_smtputf8)
		n += snprintf(line + n, sizeof(line) - n, " SMTPUTF8");
	snprintf(line + n, sizeof(line) - n, "\r\n");

	c->t_mail = uv_now(c->srv->loop);
	c->mail_sent = true;
	send_command(c, CLIENT_WAIT_MAIL, line);
}

static void send_rcpt(struct client *c)
{
	char line[SMTP_CMD_PATH_MAX + 16];

	snprintf(line, sizeof(line), "RCPT TO:<%s>\r\n", c->rcpt);
	send_command(c, CLIENT_WAIT_RCPT, line);
}

/*
 * Logs the use of a local rule with its expiry, and warns when the rule
 * sets aside DANE that the domain's MX hosts publish.
 */
/* Says so when the domain's rule has lapsed, so an exception that ended
   does not change delivery silently. */
static void log_lapsed_rule(struct client *c, const char *domain)
{
	const struct conf *conf = c->srv->conf;

	for (size_t i = 0; i < conf->rule_count; i++) {
		const struct conf_rule *rule = &conf->rules[i];

		if (!base_dname_equal(rule->domain, domain))
			continue;
		log_conn(&c->srv->log, CONF_LOG_INFO, c->id,
			 "event=policy-rule-lapsed domain=%s level=%s line=%u",
			 domain, conf_level_name(rule->level), rule->line);
		return;
	}
}

static void log_policy(struct client *c, const struct route *route,
		       const struct policy *p)
{
	const struct conf_rule *rule = p->rule;
	bool dane_published = false;
	char until[32] = "never";

	if (rule == NULL) {
		log_lapsed_rule(c, route->domain);
		return;
	}
	if (rule->until != 0) {
		time_t t = (time_t)rule->until;
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(until, sizeof(until), "%Y-%m-%d", &tm);
	}
	for (size_t i = 0; i < route->host_count; i++)
		dane_published |= route->hosts[i].tlsa_state == ROUTE_TLSA_SECURE;
	log_conn(&c->srv->log, CONF_LOG_INFO, c->id,
		 "event=policy-rule domain=%s level=%s until=%s line=%u",
		 route->domain, conf_level_name(rule->level), until, rule->line);
	if (dane_published && rule->level != CONF_LEVEL_DANE &&
	    rule->level != CONF_LEVEL_DANE_ONLY)
		log_conn(&c->srv->log, CONF_LOG_WARN, c->id,
			 "event=policy-rule-weaker domain=%s level=%s set-aside=dane",
			 route->domain, conf_level_name(rule->level));
}

static void route_done(void *arg, enum route_status status, struct route *route)
{
	static const enum outcome_kind kinds[] = {
		[ROUTE_NULL_MX] = OUTCOME_NULL_MX,
		[ROUTE_NO_DOMAIN] = OUTCOME_NO_DOMAIN,
		[ROUTE_TEMPFAIL] = OUTCOME_DNS_TEMPFAIL,
		[ROUTE_NO_ADDRESS] = OUTCOME_NO_ADDRESS,
	};
	struct client *c = arg;
	struct outcome o;

	c->route_req = NULL;
	c->t_routed = uv_now(c->srv->loop);
	log_conn(&c->srv->log, CONF_LOG_DEBUG, c->id,
		 "event=route domain=%s status=%s hosts=%zu", c->domain,
		 route_status_name(status), route->host_count);
	if (status != ROUTE_OK) {
		route_free(route);
		outcome_set(&o, kinds[status], c->domain);
		fail_txn(c, &o);
		return;
	}

	if (c->srv->sts != NULL &&
	    policy_wants_sts(c->srv->conf, route, (int64_t)time(NULL))) {
		c->pending_route = route;
		c->wait = CLIENT_WAIT_STS;
		if (mtasts_resolve(c->srv->sts, c->domain, sts_done, c,
				   &c->sts_req) == 0)
			return;
		c->pending_route = NULL;
		c->sts_req = NULL;
		log_conn(&c->srv->log, CONF_LOG_WARN, c->id,
			 "event=sts-lookup-failed domain=%s", c->domain);
	}
	deliver(c, route, NULL);
}

/*
 * Starts the upstream session for route under policy. With at_original
 * the route begins at the transparent original destination, and the
 * probe's greeted connection to it is used when it is still open.
 */
static void start_upstream(struct client *c, struct route *route,
			   const struct policy *policy, bool at_original)
{
	struct stream *greeted = NULL;
	struct outcome o;
	int rc;

	if (at_original)
		greeted = transparent_probe_take(c->probe);
	else
		transparent_probe_free(c->probe);
	c->probe = NULL;

	c->wait = CLIENT_WAIT_READY;
	if (greeted == NULL && !at_original) {
		c->up = upstream_unpark(c->srv, route->domain, policy, c->id,
					&hooks, c);
		if (c->up != NULL) {
			route_free(route);
			on_ready(c, NULL);
			return;
		}
	}
	if (greeted != NULL)
		rc = upstream_adopt(c->srv, c->id, route, policy, greeted,
				    &hooks, c, &c->up);
	else
		rc = upstream_new(c->srv, c->id, route, policy, &hooks, c,
				  &c->up);
	if (rc < 0) {
		c->up = NULL;
		outcome_set(&o, OUTCOME_LOCAL_ERROR, NULL);
		fail_txn(c, &o);
	}
}

/*
 * Applies transparent.unmatched when the original destination is no MX
 * host of the domain. Passthrough never applies where the policy
 * requires TLS, because no MX host name applies to the original
 * destination's certificate. Such mail is deferred instead.
 */
static void deliver_unmatched(struct client *c, struct route *route,
			      const struct policy *policy)
{
	enum conf_unmatched action = c->srv->conf->transparent_unmatched;
	bool tls_required = transparent_requires_tls(policy, route);
	struct route *direct = NULL;
	char detail[400];
	struct outcome o;

	if (action == CONF_UNMATCHED_PASSTHROUGH && tls_required)
		action = CONF_UNMATCHED_DEFER;
	log_conn(&c->srv->log, CONF_LOG_INFO, c->id,
		 "event=transparent-unmatched original=%s domain=%s action=%s tls-required=%s",
		 c->original_text, c->domain, conf_unmatched_name(action),
		 tls_required ? "yes" : "no");

	if (action == CONF_UNMATCHED_REROUTE) {
		start_upstream(c, route, policy, false);
		return;
	}
	route_free(route);
	if (action == CONF_UNMATCHED_DEFER) {
		snprintf(detail, sizeof(detail),
			 "original destination %s is no MX host of %s",
			 c->original_text, c->domain);
		outcome_set(&o, OUTCOME_POLICY_SKIP, detail);
		fail_txn(c, &o);
		return;
	}
	if (transparent_route_passthrough(c->domain,
					  (struct sockaddr *)&c->original,
					  &direct) < 0) {
		outcome_set(&o, OUTCOME_LOCAL_ERROR, NULL);
		fail_txn(c, &o);
		return;
	}
	start_upstream(c, direct, policy, true);
}

/*
 * Transparent delivery: the original destination must be a validated
 * address of an MX host of the domain. That host is tried first, and its
 * name is the one DANE and MTA-STS verify.
 */
static void deliver_transparent(struct client *c, struct route *route,
				const struct policy *policy)
{
	bool reroute = c->srv->conf->transparent_unmatched ==
		       CONF_UNMATCHED_REROUTE;
	size_t host, addr;

	if (!transparent_match(route, (struct sockaddr *)&c->original, &host,
			       &addr)) {
		deliver_unmatched(c, route, policy);
		return;
	}
	/* Other MX hosts replace this one only under reroute. */
	transparent_route_focus(route, host, addr, reroute);
	log_conn(&c->srv->log, CONF_LOG_INFO, c->id,
		 "event=transparent-match original=%s domain=%s mx=%s",
		 c->original_text, c->domain, route->hosts[0].name);
	start_upstream(c, route, policy, true);
}

/* Starts the upstream session for route under the policy now known. */
static void deliver(struct client *c, struct route *route,
		    const struct policy_sts *sts)
{
	struct policy policy;

	policy_decide(c->srv->conf, route, sts, (int64_t)time(NULL), &policy);
	log_policy(c, route, &policy);
	c->sts_enforced = policy.has_sts && policy.sts.mode == POLICY_STS_ENFORCE;
	snprintf(c->policy_name, sizeof(c->policy_name), "%s",
		 policy.has_sts ? "mta-sts" : conf_level_name(policy.level));
	/* The upstream session keeps its own copy of the policy. */
	if (c->transparent)
		deliver_transparent(c, route, &policy);
	else
		start_upstream(c, route, &policy, false);
	policy_clear(&policy);
}

/* Copies an MTA-STS verdict's policy into the policy step's form. */
static void sts_from_verdict(const struct mtasts_verdict *v,
			     struct policy_sts *out)
{
	size_t count;

	memset(out, 0, sizeof(*out));
	out->mode = v->policy.mode == MTASTS_MODE_ENFORCE ? POLICY_STS_ENFORCE :
		v->policy.mode == MTASTS_MODE_TESTING ? POLICY_STS_TESTING :
		POLICY_STS_NONE;
	snprintf(out->id, sizeof(out->id), "%s", v->id);
	snprintf(out->source, sizeof(out->source), "%s",
		 mtasts_source_name(v->source));
	count = v->policy.mx_count < POLICY_STS_MX_MAX ? v->policy.mx_count :
		POLICY_STS_MX_MAX;
	/* Out of memory leaves no pattern, so every host fails the policy. */
	out->mx = policy_mx_list_new(count);
	for (size_t i = 0; out->mx != NULL && i < count; i++)
		snprintf(out->mx->mx[i], sizeof(out->mx->mx[i]), "%s",
			 v->policy.mx[i]);
}

static void log_sts_fetch_failed(struct client *c,
				 const struct mtasts_verdict *v,
				 const char *reason)
{
	const char *io_error = sts_io_last_error(c->srv->sts_io);
	char detail[300];

	log_escape(io_error, strlen(io_error), detail, sizeof(detail));
	log_conn(&c->srv->log, CONF_LOG_WARN, c->id,
		 "event=sts-fetch-failed domain=%s id=%s reason=%s detail=%s",
		 c->domain, v->id[0] ? v->id : "none", reason, detail);
}

static void log_sts(struct client *c, const struct mtasts_verdict *v)
{
	char reason[300];

	log_escape(v->reason, strlen(v->reason), reason, sizeof(reason));
	if (v->source == MTASTS_SOURCE_CACHED_REFETCH_FAILED ||
	    (v->source == MTASTS_SOURCE_NONE && v->fetch_error))
		log_sts_fetch_failed(c, v, reason);
	log_conn(&c->srv->log, CONF_LOG_INFO, c->id,
		 "event=sts-policy domain=%s applies=%s mode=%s id=%s source=%s reason=%s",
		 c->domain, v->applies ? "yes" : "no",
		 v->source == MTASTS_SOURCE_NONE ? "none" : mtasts_mode_name(v->policy.mode),
		 v->id[0] ? v->id : "none", mtasts_source_name(v->source), reason);
}

static void refresh_done(void *arg, const struct mtasts_verdict *v)
{
	struct server *srv = arg;

	log_msg(&srv->log, CONF_LOG_INFO,
		"event=sts-refresh domain=%s id=%s source=%s", v->domain,
		v->id[0] ? v->id : "none", mtasts_source_name(v->source));
}

static void sts_done(void *arg, const struct mtasts_verdict *v)
{
	struct client *c = arg;
	struct route *route = c->pending_route;
	struct policy_sts sts;

	c->sts_req = NULL;
	c->pending_route = NULL;
	log_sts(c, v);
	if (v->uncertain) {
		struct outcome o;

		/* A cached enforce policy may be out of reach: defer. */
		route_free(route);
		outcome_set(&o, OUTCOME_LOCAL_ERROR, "MTA-STS policy cache unreadable");
		fail_txn(c, &o);
		return;
	}
	/* RFC 8461 section 3.3: renew a policy in use before it expires. The
	   refresh belongs to the server, so it outlives this client. */
	if (v->applies && mtasts_refresh_due(v, (int64_t)time(NULL)))
		mtasts_refresh(c->srv->sts, v->domain, refresh_done, c->srv, NULL);
	if (!v->applies) {
		deliver(c, route, NULL);
		return;
	}
	sts_from_verdict(v, &sts);
	snprintf(c->sts_id, sizeof(c->sts_id), "%s", v->id);
	deliver(c, route, &sts);
	policy_mx_list_unref(sts.mx);
}

/* Routes the transaction's domain, or reuses the MX session for it. */
static void start_delivery(struct client *c)
{
	const struct conf *conf = c->srv->conf;
	struct route_options opts = {
		.max_hosts = conf->limits.max_mx_hosts,
		.want_tlsa = policy_wants_tlsa(conf, c->domain, (int64_t)time(NULL)),
		.tlsa_insecure_mx = conf->policy_dane_insecure_mx,
		.port = 25,
	};
	struct outcome o;

	c->t_txn = uv_now(c->srv->loop);
	free(c->last_mx);
	c->last_mx = NULL;
	if (c->up != NULL &&
	    base_dname_equal(upstream_route(c->up)->domain, c->domain)) {
		c->t_routed = c->t_txn;
		if (c->up_dirty)
			send_command(c, CLIENT_WAIT_RSET, "RSET\r\n");
		else {
			begin_wait(c, CLIENT_WAIT_MAIL);
			send_mail(c);
		}
		return;
	}

	upstream_quit(c->up);
	c->up = NULL;
	c->up_dirty = false;
	begin_wait(c, CLIENT_WAIT_ROUTE);
	if (route_resolve(c->srv->dns, c->domain, &opts, route_done, c,
			  &c->route_req) < 0) {
		c->route_req = NULL;
		outcome_set(&o, OUTCOME_LOCAL_ERROR, "route lookup failed");
		fail_txn(c, &o);
	}
}

void client_txn_rcpt(struct client *c, const struct smtp_cmd *cmd)
{
	struct outcome o;

	snprintf(c->rcpt, sizeof(c->rcpt), "%s", cmd->path);
	if (c->rcpt_count >= c->srv->conf->limits.max_recipients) {
		outcome_set(&o, OUTCOME_TOO_MANY_RCPTS, NULL);
		client_reply_outcome(c, &o);
		return;
	}
	c->rcpt_count++;

	if (c->domain[0] == '\0') {
		if (base_dname_normalize(cmd->domain, c->domain, sizeof(c->domain)) < 0) {
			client_reply(c, "501 5.1.3 Invalid recipient domain\r\n");
			return;
		}
		start_delivery(c);
		return;
	}
	if (!base_dname_equal(c->domain, cmd->domain) && c->accepted_count == 0 &&
	    c->txn_failed) {
		/*
		 * No recipient is held for the failed domain, so the
		 * transaction may move on to this one. Otherwise a sender that
		 * lists an unreachable domain first would never get the others
		 * through.
		 */
		c->txn_failed = false;
		if (base_dname_normalize(cmd->domain, c->domain, sizeof(c->domain)) < 0) {
			client_reply(c, "501 5.1.3 Invalid recipient domain\r\n");
			return;
		}
		start_delivery(c);
		return;
	}
	if (!base_dname_equal(c->domain, cmd->domain)) {
		/* One next hop per transaction; the sender retries the rest. */
		outcome_set(&o, OUTCOME_OTHER_DOMAIN, cmd->domain);
		log_recipient(c, c->rcpt, &o);
		client_reply_outcome(c, &o);
		return;
	}
	if (c->txn_failed) {
		log_recipient(c, c->rcpt, &c->txn_failure);
		client_reply_outcome(c, &c->txn_failure);
		return;
	}
	send_rcpt(c);
}

void client_txn_data(struct client *c)
{
	struct outcome o;

	if (c->accepted_count == 0) {
		client_reply(c, "554 5.5.1 No valid recipients\r\n");
		return;
	}
	if (c->up == NULL) {
		/*
		 * The MX accepted recipients, then its session ended. A 5xx
		 * here would bounce them; the failure is temporary, so the
		 * client gets a 4xx and keeps the message.
		 */
		if (c->txn_failed && !c->txn_failure.permanent)
			o = c->txn_failure;
		else
			outcome_set(&o, OUTCOME_LOST, "before DATA");
		end_message(c, &o);
		return;
	}
	send_command(c, CLIENT_WAIT_DATA, "DATA\r\n");
}

static int add_accepted(struct client *c)
{
	char **list = realloc(c->accepted, (c->accepted_count + 1) * sizeof(*list));

	if (list == NULL)
		return BASE_ENOMEM;
	c->accepted = list;
	list[c->accepted_count] = strdup(c->rcpt);
	if (list[c->accepted_count] == NULL)
		return BASE_ENOMEM;
	c->accepted_count++;
	return 0;
}

/* Relays the MX's reply to the client in our own formatting. */
static void relay_reply(struct client *c, const struct smtp_reply *r,
			struct outcome *o)
{
	outcome_from_reply(o, r);
	client_reply_outcome(c, o);
}

static void end_message(struct client *c, const struct outcome *o)
{
	for (unsigned i = 0; i < c->accepted_count; i++)
		log_recipient(c, c->accepted[i], o);
	client_reply_outcome(c, o);
	c->mail_sent = false;
	client_txn_reset(c);
	c->state = CLIENT_COMMAND;
	c->wait = CLIENT_WAIT_NONE;
	/* A shutdown waited for this reply (client_close_idle). */
	if (c->srv->stopping) {
		client_reply_close(c, "421 4.3.2 mxlock is shutting down\r\n");
		return;
	}
	client_resume(c);
}

/*
 * RFC 5321 section 3.8: 421 means the MX is closing the connection. Pass
 * the failure on as a 451 and drop the session instead of reusing it.
 */
static void mx_closing(struct client *c, const struct smtp_reply *r)
{
	struct outcome o;

	outcome_from_reply(&o, r);
	o.code = 451;
	drop_upstream(c);
	if (c->state == CLIENT_FINAL)
		end_message(c, &o);
	else
		fail_txn(c, &o);
}

static void on_reply(void *arg, const struct smtp_reply *r)
{
	struct client *c = arg;
	struct outcome o;

	if (r->code == 421) {
		mx_closing(c, r);
		return;
	}
	if (c->state == CLIENT_FINAL) {
		/* Only 2xx, 4xx and 5xx can end a transaction (RFC 5321
		   section 4.3.2); anything else is a broken MX. */
		if (r->code / 100 == 3)
			outcome_set(&o, OUTCOME_PROTOCOL, "invalid reply to the end of DATA");
		else
			outcome_from_reply(&o, r);
		end_message(c, &o);
		return;
	}
	switch (c->wait) {
	case CLIENT_WAIT_RSET:
		c->up_dirty = false;
		if (r->code / 100 == 2) {
			send_mail(c);
			return;
		}
		drop_upstream(c);
		start_delivery(c);
		return;
	case CLIENT_WAIT_MAIL:
		if (r->code / 100 == 2) {
			send_rcpt(c);
			return;
		}
		c->mail_sent = false;
		outcome_from_reply(&o, r);
		fail_txn(c, &o);
		return;
	case CLIENT_WAIT_RCPT:
		relay_reply(c, r, &o);
		if (r->code / 100 != 2)
			log_recipient(c, c->rcpt, &o);
		else if (add_accepted(c) < 0)
			client_close(c);
		finish_wait(c);
		return;
	case CLIENT_WAIT_DATA:
		if (r->code / 100 == 2 || r->code / 100 == 3) {
			if (r->code != 354) {
				/* RFC 5321 section 4.3.2: DATA gets 354 or a
				   failure. Any other reply leaves the MX in an
				   unknown state. */
				outcome_set(&o, OUTCOME_PROTOCOL, "invalid reply to DATA");
				drop_upstream(c);
				fail_txn(c, &o);
				return;
			}
		} else {
			relay_reply(c, r, &o);
			finish_wait(c);
			return;
		}
		client_reply(c, "354 End data with <CR><LF>.<CR><LF>\r\n");
		relay_data_init(&c->relay);
		c->wait = CLIENT_WAIT_NONE;
		c->state = CLIENT_DATA;
		client_resume(c);
		return;
	default:
		return;
	}
}

static void on_ready(void *arg, const struct outcome *o)
{
	struct client *c = arg;

	if (o != NULL) {
		struct outcome copy = *o;

		/* The summary line names the last MX host tried and its policy. */
		free(c->last_mx);
		c->last_mx = malloc(sizeof(*c->last_mx));
		if (c->last_mx != NULL) {
			upstream_info(c->up, c->last_mx);
			c->last_mx->tls = NULL;
			if (c->last_mx->host[0] == '\0') {
				free(c->last_mx);
				c->last_mx = NULL;
			}
		}
		drop_upstream(c);
		if (recheck_sts(c, &copy))
			return;
		fail_txn(c, &copy);
		return;
	}
	c->t_ready = uv_now(c->srv->loop);
	send_mail(c);
}

static void on_error(void *arg, const struct outcome *o)
{
	struct client *c = arg;
	struct outcome copy = *o;

	drop_upstream(c);
	switch (c->state) {
	case CLIENT_WAIT:
		fail_txn(c, &copy);
		return;
	case CLIENT_DATA:
		c->data_failed = true;
		c->data_failure = copy;
		c->state = CLIENT_DISCARD;
		return;
	case CLIENT_FINAL:
		end_message(c, &copy);
		return;
	default:
		/* The idle MX session ended; the next transaction opens one. */
		return;
	}
}

static void on_drain(void *arg)
{
	struct client *c = arg;

	if (c->state == CLIENT_DATA && !c->reading)
		client_resume(c);
}

/* Handles the bytes after the final dot: the MX's reply or our own. */
static void data_done(struct client *c, const char *rest, size_t len)
{
	if (len > 0 && base_buf_append(&c->in, rest, len) < 0) {
		client_close(c);
		return;
	}
	if (c->state == CLIENT_DISCARD) {
		c->state = CLIENT_COMMAND;
		end_message(c, &c->data_failure);
		return;
	}
	c->state = CLIENT_FINAL;
	client_pause(c);
	upstream_await_final(c->up);
}

static void forward_data(struct client *c, const char *data, size_t len)
{
	struct outcome o;

	if (c->relay.bytes > c->srv->conf->limits.max_message_size) {
		/* Closing without the final dot makes the MX drop the message. */
		drop_upstream(c);
		outcome_set(&c->data_failure, OUTCOME_TOO_BIG, NULL);
		c->data_failed = true;
		c->state = CLIENT_DISCARD;
		return;
	}
	if (upstream_write_data(c->up, data, len) < 0) {
		outcome_set(&o, OUTCOME_LOST, "write failed");
		on_error(c, &o);
	}
}

/*
 * Sends the framed bytes waiting in c->chunk. Returns false when the
 * session closed meanwhile.
 */
static bool flush_framed(struct client *c, size_t *framed)
{
	if (*framed > 0 && c->state == CLIENT_DATA)
		forward_data(c, c->chunk, *framed);
	*framed = 0;
	return c->state != CLIENT_CLOSING;
}

void client_txn_feed(struct client *c, const char *data, size_t len)
{
	size_t framed = 0;	/* bytes waiting in c->chunk */

	if (c->chunk == NULL && (c->chunk = malloc(RELAY_OUT_MAX(CLIENT_CHUNK))) == NULL) {
		client_close(c);
		return;
	}
	while (len > 0) {
		/* Most message text passes as it is, straight from the read. */
		size_t n = relay_data_pass(&c->relay, data, len);
		size_t used, outlen;
		const char *lf;

		if (n > 0) {
			if (!flush_framed(c, &framed))
				return;
			if (c->state == CLIENT_DATA)
				forward_data(c, data, n);
			data += n;
			len -= n;
			if (c->state == CLIENT_CLOSING)
				return;
			continue;
		}
		/*
		 * The rest of this line needs framing work. Framed lines
		 * gather in c->chunk, so text where every line needs it still
		 * goes out in large writes.
		 */
		n = len > CLIENT_CHUNK ? CLIENT_CHUNK : len;
		lf = memchr(data, '\n', n);
		if (lf != NULL)
			n = (size_t)(lf - data) + 1;
		if (RELAY_OUT_MAX(CLIENT_CHUNK) - framed < RELAY_OUT_MAX(n) &&
		    !flush_framed(c, &framed))
			return;
		used = relay_data_feed(&c->relay, data, n, c->chunk + framed, &outlen);
		framed += outlen;
		data += used;
		len -= used;
		if (c->relay.done) {
			if (!flush_framed(c, &framed))
				return;
			data_done(c, data, len);
			return;
		}
	}
	if (!flush_framed(c, &framed))
		return;
	if (c->state == CLIENT_DATA && upstream_pending(c->up) > CLIENT_HIGH_WATER)
		client_pause(c);
}

void client_txn_close(struct client *c, bool mid_message)
{
	route_cancel(c->route_req);
	c->route_req = NULL;
	mtasts_cancel(c->sts_req);
	c->sts_req = NULL;
	route_free(c->pending_route);
	c->pending_route = NULL;
	transparent_probe_free(c->probe);
	c->probe = NULL;
	/* Without the final dot and a QUIT, the MX drops a partial message.
	   An idle session with no transaction open goes to the pool. */
	if (mid_message)
		upstream_abort(c->up);
	else if (c->up == NULL || c->up_dirty || c->mail_sent ||
		 !upstream_park(c->up))
		upstream_quit(c->up);
	c->up = NULL;
	free_accepted(c);
}
