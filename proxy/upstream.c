/*
 * Upstream session: see upstream.h. One state enum; a function that enters
 * each state (and sends its command) and one switch that handles the reply
 * in each state. Capabilities are flags in ehlo_caps, never states.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>

#include "base/err.h"
#include "log.h"
#include "server.h"
#include "session_cache.h"
#include "upstream.h"

#define UPSTREAM_HIGH_WATER (256 * 1024)
#define UPSTREAM_LOW_WATER (64 * 1024)

enum upstream_state {
	UP_IDLE,		/* between connection attempts */
	UP_CONNECTING,
	UP_GREETING,
	UP_EHLO,
	UP_HELO,
	UP_STARTTLS,
	UP_HANDSHAKE,
	UP_EHLO_TLS,
	UP_READY,		/* no command outstanding */
	UP_COMMAND,		/* a relayed command awaits its reply */
	UP_DATA,		/* message bytes flowing, no reply expected */
	UP_FINAL,		/* end of data sent, final reply awaited */
	UP_CLOSED,
};

struct upstream {
	struct server *srv;
	uint64_t conn;
	struct route *route;
	struct policy policy;
	const struct upstream_hooks *hooks;
	void *arg;

	size_t host_index;
	size_t addr_index;
	unsigned addrs_tried;
	bool plaintext_retry;	/* retrying this address without TLS */
	struct policy_host ph;	/* what the current host must offer */
	struct policy_verdict verdict;
	struct session_key session_key;	/* of the current handshake */
	bool has_session_key;
	bool resume_offered;	/* a cached session was offered */
	struct policy_verdict cached; /* that session's verdict */

	enum upstream_state state;
	struct stream *stream;
	uv_timer_t timer;
	struct smtp_reply_parser parser;
	struct ehlo_caps caps;
	struct outcome failure;	/* the last host failure */

	char host[256];
	char address[64];
	struct upstream *pool_next;	/* in srv->pool while idle */
	struct upstream *pool_prev;
	bool pooled;
	uint64_t t_begin;	/* ms, start of this connection attempt */
	uint64_t t_greeted;
	uint64_t t_tls_begin;
	uint64_t t_ready;
};

static const char *state_name(enum upstream_state s)
{
	static const char *const names[] = {
		"idle", "connecting", "greeting", "ehlo", "helo", "starttls",
		"handshake", "ehlo-tls", "ready", "command", "data", "final",
		"closed",
	};

	return names[s];
}

static void set_state(struct upstream *up, enum upstream_state s)
{
	log_conn(&up->srv->log, CONF_LOG_DEBUG, up->conn,
		 "event=upstream-state mx=%s[%s] old=%s new=%s", up->host,
		 up->address, state_name(up->state), state_name(s));
	up->state = s;
}

static void try_next(struct upstream *up);
static void pool_unlink(struct upstream *up);
static void on_read(struct stream *s, const char *data, size_t len, void *arg);
static void on_stream_error(struct stream *s, int err, void *arg);

static const struct stream_handler handler = {
	.on_read = on_read,
	.on_error = on_stream_error,
};

static void timer_close_cb(uv_handle_t *h)
{
	struct upstream *up = h->data;

	smtp_reply_parser_free(&up->parser);
	route_free(up->route);
	policy_clear(&up->policy);
	free(up);
}

static void close_stream(struct upstream *up)
{
	if (up->stream != NULL)
		stream_close(up->stream);
	up->stream = NULL;
	uv_timer_stop(&up->timer);
}

static void on_timeout(uv_timer_t *t);

static void arm_timer(struct upstream *up, uint64_t ms)
{
	uv_timer_start(&up->timer, on_timeout, ms, 0);
}

/* Sends a command of our own (EHLO, STARTTLS) and enters state s. */
static void send_own(struct upstream *up, enum upstream_state s,
		     const char *line, uint64_t timeout)
{
	int err;

	set_state(up, s);
	arm_timer(up, timeout);
	err = stream_write(up->stream, line, strlen(line), NULL, NULL);
	if (err < 0)
		on_stream_error(up->stream, err, up);
}

/*
 * Records why this host failed, logs it and moves on: to the same address
 * in plaintext when `may` allows it after a TLS failure, otherwise to the
 * next address or host.
 */
static void host_failed(struct upstream *up, enum outcome_kind kind,
			const char *why)
{
	char detail[512];
	bool retry_plain;

	snprintf(detail, sizeof(detail), "%s[%s]: %s", up->host, up->address, why);
	outcome_set(&up->failure, kind, detail);
	log_conn(&up->srv->log, CONF_LOG_INFO, up->conn,
		 "event=mx-failed mx=%s[%s]:25 reason=%s detail=\"%s\"",
		 up->host, up->address, up->failure.reason, why);
	close_stream(up);
	set_state(up, UP_IDLE);

	retry_plain = !up->plaintext_retry && !up->ph.require_tls &&
		(kind == OUTCOME_STARTTLS_REFUSED || kind == OUTCOME_TLS_FAILED);
	if (retry_plain) {
		log_conn(&up->srv->log, CONF_LOG_INFO, up->conn,
			 "event=tls-fallback mx=%s[%s]:25 policy=%s action=plaintext-retry",
			 up->host, up->address, up->ph.label);
		up->plaintext_retry = true;
	} else {
		up->plaintext_retry = false;
		up->addr_index++;
	}
	try_next(up);
}

/*
 * Keeps the TLS session for the next connection to this host under the
 * same requirements. Called once the first reply over TLS arrived, after
 * a TLS 1.3 server's ticket. A verdict that MTA-STS testing let through
 * despite a failure is not kept, so the failure is checked and reported
 * again next time.
 */
static void keep_session(struct upstream *up)
{
	const struct stream_tls_info *tls = stream_tls(up->stream);
	struct tls_session *session;

	if (tls == NULL || up->srv->sessions == NULL || !up->has_session_key ||
	    !up->verdict.ok)
		return;
	if (up->ph.report_only && strcmp(up->verdict.verified, "yes") != 0)
		return;
	session = stream_session(up->stream);
	if (session != NULL)
		session_cache_put(up->srv->sessions, &up->session_key, session,
				  &up->verdict, tls->resumed, (int64_t)time(NULL));
}

static void become_ready(struct upstream *up)
{
	keep_session(up);
	up->t_ready = uv_now(up->srv->loop);
	uv_timer_stop(&up->timer);
	set_state(up, UP_READY);
	log_conn(&up->srv->log, CONF_LOG_INFO, up->conn,
		 "event=mx-ready mx=%s[%s]:25 tls=%s policy=%s verified=%s",
		 up->host, up->address,
		 stream_tls(up->stream) ? stream_tls(up->stream)->version : "none",
		 up->ph.label, up->verdict.verified ? up->verdict.verified : "no");
	up->hooks->on_ready(up->arg, NULL);
}

static void on_handshake(struct stream *s, int status, void *arg)
{
	struct upstream *up = arg;
	char line[300];

	if (status < 0) {
		const char *reason = stream_tls_error(s);

		if (up->resume_offered)
			session_cache_drop(up->srv->sessions, &up->session_key);
		snprintf(line, sizeof(line), "%s%s%s", base_strerror(status),
			 reason != NULL ? ": " : "", reason != NULL ? reason : "");
		host_failed(up, status == BASE_EINJECT ? OUTCOME_TLS_INJECTION :
			    OUTCOME_TLS_FAILED, line);
		return;
	}

	/*
	 * A resumed session brings no certificate. It was found under the
	 * same host, address and requirements as the full handshake whose
	 * verdict it carries, and only the server that completed that
	 * handshake can resume it.
	 */
	if (up->resume_offered && stream_tls(s)->resumed)
		up->verdict = up->cached;
	else
		policy_check(&up->ph, s, (int64_t)time(NULL), &up->verdict);
	if (!up->verdict.ok) {
		host_failed(up, up->ph.auth == POLICY_AUTH_DANE ? OUTCOME_DANE_FAILED :
			    OUTCOME_CERT_FAILED, up->verdict.detail);
		return;
	}
	log_conn(&up->srv->log, CONF_LOG_INFO, up->conn,
		 "event=tls mx=%s[%s]:25 policy=%s tls=%s resumed=%s verified=%s "
		 "detail=\"%s\"", up->host, up->address, up->ph.label,
		 stream_tls(s)->version, stream_tls(s)->resumed ? "yes" : "no",
		 up->verdict.verified, up->verdict.detail);
	if (up->ph.report_only && (up->ph.skip_reason[0] ||
				   strcmp(up->verdict.verified, "yes") != 0))
		log_conn(&up->srv->log, CONF_LOG_WARN, up->conn,
			 "event=sts-testing-failure mx=%s[%s]:25 id=%s detail=\"%s%s%s\"",
			 up->host, up->address, up->policy.sts.id, up->ph.skip_reason,
			 up->ph.skip_reason[0] ? "; " : "", up->verdict.detail);

	stream_tls_trim(s);
	/* RFC 3207 section 4.2: discard everything learned before TLS. */
	memset(&up->caps, 0, sizeof(up->caps));
	stream_read_start(s);
	snprintf(line, sizeof(line), "EHLO %s\r\n", up->srv->conf->hostname);
	send_own(up, UP_EHLO_TLS, line, up->srv->conf->limits.timeouts.reply);
}

static void start_tls(struct upstream *up, size_t unread)
{
	struct tls_session *session = NULL;
	int err;

	/*
	 * RFC 3207 section 5 and the response-injection attacks: bytes the MX
	 * sent after its 220 and before the handshake must not be read as TLS
	 * or as a later reply. They end this connection.
	 */
	stream_read_stop(up->stream);
	if (unread > 0 || smtp_reply_parser_pending(&up->parser)) {
		host_failed(up, OUTCOME_TLS_INJECTION, "bytes after the 220 reply to STARTTLS");
		return;
	}

	set_state(up, UP_HANDSHAKE);
	arm_timer(up, up->srv->conf->limits.timeouts.tls);
	up->has_session_key = session_key_make(&up->ph, up->address,
					       &up->session_key);
	up->resume_offered = false;
	if (up->has_session_key && up->srv->sessions != NULL)
		session = session_cache_find(up->srv->sessions, &up->session_key,
					     (int64_t)time(NULL), &up->cached);
	up->resume_offered = session != NULL;
	err = stream_starttls_resume(up->stream, up->srv->tls, up->ph.sni,
				     up->host, session, on_handshake, up);
	if (err < 0)
		host_failed(up, err == BASE_EINJECT ? OUTCOME_TLS_INJECTION :
			    OUTCOME_TLS_FAILED, base_strerror(err));
}

/* Decides what follows a successful EHLO or HELO before TLS. */
static void after_hello(struct upstream *up)
{
	bool offered = (up->caps.flags & EHLO_STARTTLS) != 0;

	if (offered && up->ph.try_tls && !up->plaintext_retry) {
		up->t_tls_begin = uv_now(up->srv->loop);
		send_own(up, UP_STARTTLS, "STARTTLS\r\n",
			 up->srv->conf->limits.timeouts.reply);
		return;
	}
	if (up->ph.require_tls) {
		host_failed(up, OUTCOME_STARTTLS_MISSING, "STARTTLS not offered");
		return;
	}
	log_conn(&up->srv->log, CONF_LOG_INFO, up->conn,
		 "event=plaintext mx=%s[%s]:25 reason=%s", up->host, up->address,
		 up->plaintext_retry ? "tls-failed-before" :
		 offered ? "policy-none" : "starttls-not-offered");
	become_ready(up);
}

static void reply_text(const struct smtp_reply *r, char *out, size_t outlen)
{
	char text[256];

	log_escape(r->line_count ? r->lines[0] : "", r->line_count ?
		   strlen(r->lines[0]) : 0, text, sizeof(text));
	snprintf(out, outlen, "%d %s", r->code, text);
}

/* Handles a reply received while setting up the session. */
static void handle_setup_reply(struct upstream *up, const struct smtp_reply *r)
{
	const struct conf *conf = up->srv->conf;
	char line[300];

	switch (up->state) {
	case UP_GREETING:
		if (r->code != 220) {
			reply_text(r, line, sizeof(line));
			host_failed(up, OUTCOME_GREETING_REFUSED, line);
			return;
		}
		up->t_greeted = uv_now(up->srv->loop);
		snprintf(line, sizeof(line), "EHLO %s\r\n", conf->hostname);
		send_own(up, UP_EHLO, line, conf->limits.timeouts.reply);
		return;
	case UP_EHLO:
		if (r->code / 100 != 2) {
			snprintf(line, sizeof(line), "HELO %s\r\n", conf->hostname);
			send_own(up, UP_HELO, line, conf->limits.timeouts.reply);
			return;
		}
		ehlo_parse(r, &up->caps);
		after_hello(up);
		return;
	case UP_HELO:
		if (r->code / 100 != 2) {
			reply_text(r, line, sizeof(line));
			host_failed(up, OUTCOME_EHLO_REFUSED, line);
			return;
		}
		memset(&up->caps, 0, sizeof(up->caps));
		after_hello(up);
		return;
	case UP_EHLO_TLS:
		if (r->code / 100 != 2) {
			reply_text(r, line, sizeof(line));
			host_failed(up, OUTCOME_EHLO_REFUSED, line);
			return;
		}
		ehlo_parse(r, &up->caps);
		become_ready(up);
		return;
	default:
		return;
	}
}

/* Handles one complete reply; unread is what is left of this read. */
static void handle_reply(struct upstream *up, const struct smtp_reply *r,
			 size_t unread)
{
	char line[300];

	switch (up->state) {
	case UP_STARTTLS:
		/* RFC 3207 section 4: only 220 means "go ahead". */
		if (r->code != 220) {
			reply_text(r, line, sizeof(line));
			host_failed(up, OUTCOME_STARTTLS_REFUSED, line);
			return;
		}
		start_tls(up, unread);
		return;
	case UP_COMMAND:
	case UP_FINAL:
		uv_timer_stop(&up->timer);
		set_state(up, UP_READY);
		up->hooks->on_reply(up->arg, r);
		return;
	case UP_READY:
	case UP_DATA:
		reply_text(r, line, sizeof(line));
		log_conn(&up->srv->log, CONF_LOG_INFO, up->conn,
			 "event=mx-unexpected-reply mx=%s[%s]:25 reply=%s",
			 up->host, up->address, line);
		return;
	default:
		handle_setup_reply(up, r);
		return;
	}
}

static void fail_session(struct upstream *up, enum outcome_kind kind,
			 const char *why)
{
	struct outcome o;
	char detail[512];

	if (up->state != UP_READY && up->state != UP_COMMAND &&
	    up->state != UP_DATA && up->state != UP_FINAL) {
		host_failed(up, kind, why);
		return;
	}
	snprintf(detail, sizeof(detail), "%s[%s]: %s", up->host, up->address, why);
	outcome_set(&o, kind, detail);
	log_conn(&up->srv->log, CONF_LOG_INFO, up->conn,
		 "event=mx-lost mx=%s[%s]:25 reason=%s detail=\"%s\"", up->host,
		 up->address, o.reason, why);
	close_stream(up);
	set_state(up, UP_CLOSED);
	up->hooks->on_error(up->arg, &o);
}

static void on_read(struct stream *s, const char *data, size_t len, void *arg)
{
	struct upstream *up = arg;
	const struct smtp_reply *r;
	size_t used;
	int rc;

	while (len > 0 && up->stream == s) {
		rc = smtp_reply_parse(&up->parser, data, len, &used, &r);
		data += used;
		len -= used;
		if (rc < 0) {
			fail_session(up, OUTCOME_PROTOCOL, base_strerror(rc));
			return;
		}
		if (rc == 0)
			return;
		handle_reply(up, r, len);
	}
}

static void on_stream_error(struct stream *s, int err, void *arg)
{
	struct upstream *up = arg;

	fail_session(up, err == BASE_ETLS ? OUTCOME_TLS_FAILED : OUTCOME_LOST,
		     base_strerror(err));
}

static void on_timeout(uv_timer_t *t)
{
	struct upstream *up = t->data;
	char why[64];

	if (up->state == UP_CONNECTING) {
		host_failed(up, OUTCOME_CONNECT_FAILED, "connect timed out");
		return;
	}
	if (up->pooled) {
		/* The idle time of a pooled session ran out. */
		upstream_quit(up);
		return;
	}
	snprintf(why, sizeof(why), "timed out in state %s", state_name(up->state));
	fail_session(up, OUTCOME_TIMEOUT, why);
}

static void on_connect(struct stream *s, int status, void *arg)
{
	struct upstream *up = arg;

	if (status < 0) {
		host_failed(up, OUTCOME_CONNECT_FAILED, base_strerror(status));
		return;
	}
	stream_nodelay(s);
	stream_set_handler(s, &handler, up);
	smtp_reply_parser_free(&up->parser);
	smtp_reply_parser_init(&up->parser);
	memset(&up->caps, 0, sizeof(up->caps));
	set_state(up, UP_GREETING);
	arm_timer(up, up->srv->conf->limits.timeouts.greeting);
	if (stream_read_start(s) < 0)
		host_failed(up, OUTCOME_CONNECT_FAILED, "read failed");
}

/* Names the host and address of this attempt, for logs and replies. */
static void set_peer(struct upstream *up, const struct route_host *host,
		     const struct route_addr *addr)
{
	const struct sockaddr *sa = (const struct sockaddr *)&addr->sa;
	const void *raw = sa->sa_family == AF_INET ?
		(const void *)&((const struct sockaddr_in *)sa)->sin_addr :
		(const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr;

	snprintf(up->host, sizeof(up->host), "%s", host->name);
	inet_ntop(sa->sa_family, raw, up->address, sizeof(up->address));
	up->t_begin = uv_now(up->srv->loop);
}

static void connect_addr(struct upstream *up, const struct route_host *host,
			 const struct route_addr *addr)
{
	const struct sockaddr *sa = (const struct sockaddr *)&addr->sa;
	int err;

	set_peer(up, host, addr);
	/* The mark lets the firewall exempt mxlock's own port 25 traffic
	   from a transparent redirect back to mxlock. */
	err = stream_new_marked(up->srv->loop, sa->sa_family,
				up->srv->conf->transparent_mark, &up->stream);
	if (err == 0)
		err = stream_connect(up->stream, sa, on_connect, up);
	if (err < 0) {
		host_failed(up, OUTCOME_CONNECT_FAILED, base_strerror(err));
		return;
	}
	set_state(up, UP_CONNECTING);
	arm_timer(up, up->srv->conf->limits.timeouts.connect);
}

/*
 * Computes what host must offer and reports whether it may be dialled at
 * all; a host the policy excludes is logged and skipped.
 */
static bool host_allowed(struct upstream *up, const struct route_host *host)
{
	char detail[700];

	policy_for_host(&up->policy, up->route, host, &up->ph);
	if (up->ph.usable) {
		if (up->ph.skip_reason[0] != '\0')
			log_conn(&up->srv->log, CONF_LOG_WARN, up->conn,
				 "event=sts-testing-failure mx=%s id=%s detail=\"%s\"",
				 host->name, up->policy.sts.id, up->ph.skip_reason);
		return true;
	}
	snprintf(detail, sizeof(detail), "%s: %s", host->name, up->ph.skip_reason);
	outcome_set(&up->failure, OUTCOME_POLICY_SKIP, detail);
	log_conn(&up->srv->log, CONF_LOG_INFO, up->conn,
		 "event=mx-skipped mx=%s policy=%s reason=\"%s\"", host->name,
		 up->ph.label, up->ph.skip_reason);
	return false;
}

/* Connects to the next untried address, or reports that none is left. */
static void try_next(struct upstream *up)
{
	const struct conf *conf = up->srv->conf;
	const struct route *route = up->route;

	while (up->host_index < route->host_count &&
	       up->host_index < conf->limits.max_mx_hosts) {
		const struct route_host *host = &route->hosts[up->host_index];

		if (up->addr_index >= host->addr_count) {
			up->host_index++;
			up->addr_index = 0;
			continue;
		}
		if (up->addr_index == 0 && !up->plaintext_retry &&
		    !host_allowed(up, host)) {
			up->host_index++;
			continue;
		}
		if (up->addrs_tried >= conf->limits.max_addresses)
			break;
		if (!up->plaintext_retry)
			up->addrs_tried++;
		connect_addr(up, host, &host->addrs[up->addr_index]);
		return;
	}

	set_state(up, UP_CLOSED);
	up->hooks->on_ready(up->arg, &up->failure);
}

static struct upstream *upstream_alloc(struct server *srv, uint64_t conn,
				       struct route *route,
				       const struct policy *policy,
				       const struct upstream_hooks *h,
				       void *arg)
{
	struct upstream *up = calloc(1, sizeof(*up));

	if (up == NULL)
		return NULL;
	up->srv = srv;
	up->conn = conn;
	up->route = route;
	policy_copy(&up->policy, policy);
	up->hooks = h;
	up->arg = arg;
	smtp_reply_parser_init(&up->parser);
	outcome_set(&up->failure, OUTCOME_NO_ADDRESS, route->domain);
	uv_timer_init(srv->loop, &up->timer);
	up->timer.data = up;
	return up;
}

int upstream_new(struct server *srv, uint64_t conn, struct route *route,
		 const struct policy *policy, const struct upstream_hooks *h,
		 void *arg, struct upstream **out)
{
	struct upstream *up = upstream_alloc(srv, conn, route, policy, h, arg);

	if (up == NULL) {
		route_free(route);
		return BASE_ENOMEM;
	}
	*out = up;
	try_next(up);
	return 0;
}

/* Continues on a connection that already received the 220 greeting. */
static void adopt_stream(struct upstream *up, struct stream *stream)
{
	const struct route_host *host = &up->route->hosts[0];
	char line[300];

	set_peer(up, host, &host->addrs[0]);
	up->t_greeted = up->t_begin;
	up->addrs_tried = 1;
	up->stream = stream;
	stream_set_handler(stream, &handler, up);
	set_state(up, UP_GREETING);
	if (stream_read_start(stream) < 0) {
		host_failed(up, OUTCOME_LOST, "read failed");
		return;
	}
	snprintf(line, sizeof(line), "EHLO %s\r\n", up->srv->conf->hostname);
	send_own(up, UP_EHLO, line, up->srv->conf->limits.timeouts.reply);
}

int upstream_adopt(struct server *srv, uint64_t conn, struct route *route,
		   const struct policy *policy, struct stream *stream,
		   const struct upstream_hooks *h, void *arg,
		   struct upstream **out)
{
	struct upstream *up = upstream_alloc(srv, conn, route, policy, h, arg);

	if (up == NULL) {
		stream_close(stream);
		route_free(route);
		return BASE_ENOMEM;
	}
	*out = up;
	if (route->host_count == 0 || route->hosts[0].addr_count == 0 ||
	    !host_allowed(up, &route->hosts[0])) {
		/* The policy excludes the host the client was going to. */
		stream_close(stream);
		up->host_index = 1;
		try_next(up);
		return 0;
	}
	adopt_stream(up, stream);
	return 0;
}

int upstream_send(struct upstream *up, const char *line, size_t len)
{
	if (up->state != UP_READY)
		return BASE_EINVAL;
	set_state(up, UP_COMMAND);
	arm_timer(up, up->srv->conf->limits.timeouts.reply);
	return stream_write(up->stream, line, len, NULL, NULL);
}

static void data_written(struct stream *s, int status, void *arg)
{
	struct upstream *up = arg;

	if (status == 0 && up->state == UP_DATA &&
	    stream_write_pending(s) < UPSTREAM_LOW_WATER)
		up->hooks->on_drain(up->arg);
}

int upstream_write_data(struct upstream *up, const char *data, size_t len)
{
	if (up->state != UP_READY && up->state != UP_DATA)
		return BASE_EINVAL;
	if (up->state == UP_READY)
		set_state(up, UP_DATA);
	/* A stalled MX must not hold the session forever. */
	arm_timer(up, up->srv->conf->limits.timeouts.data);
	/* data_written only matters once bytes pile up in the queue. */
	return stream_write_data(up->stream, data, len, data_written, up);
}

void upstream_await_final(struct upstream *up)
{
	set_state(up, UP_FINAL);
	arm_timer(up, up->srv->conf->limits.timeouts.final);
}

size_t upstream_pending(const struct upstream *up)
{
	return up->stream ? stream_write_pending(up->stream) : 0;
}

const struct ehlo_caps *upstream_caps(const struct upstream *up)
{
	return &up->caps;
}

const struct route *upstream_route(const struct upstream *up)
{
	return up->route;
}

void upstream_info(const struct upstream *up, struct upstream_info *out)
{
	uint64_t tls_end = up->t_ready;

	out->policy = up->ph.label ? up->ph.label : "none";
	out->verified = up->verdict.verified ? up->verdict.verified : "no";
	snprintf(out->detail, sizeof(out->detail), "%s", up->verdict.detail);
	snprintf(out->host, sizeof(out->host), "%s", up->host);
	snprintf(out->address, sizeof(out->address), "%s", up->address);
	out->tls = up->stream ? stream_tls(up->stream) : NULL;
	out->connect_s = up->t_greeted >= up->t_begin ?
		(double)(up->t_greeted - up->t_begin) / 1000.0 : 0;
	out->tls_s = out->tls && tls_end >= up->t_tls_begin ?
		(double)(tls_end - up->t_tls_begin) / 1000.0 : 0;
}

void upstream_quit(struct upstream *up)
{
	if (up == NULL)
		return;
	if (up->state == UP_READY && up->stream != NULL)
		stream_write(up->stream, "QUIT\r\n", 6, NULL, NULL);
	upstream_abort(up);
}

void upstream_abort(struct upstream *up)
{
	if (up == NULL || uv_is_closing((uv_handle_t *)&up->timer))
		return;
	pool_unlink(up);
	close_stream(up);
	up->state = UP_CLOSED;
	uv_close((uv_handle_t *)&up->timer, timer_close_cb);
}

/*
 * The idle pool: MX sessions kept after their client connection ended, for
 * the next client connection to the same domain under the same policy
 * (the connection cache of Postfix's SMTP client works alike). A pooled
 * session has no transaction open, is closed after UPSTREAM_POOL_IDLE_MS
 * or when the MX closes it, and the pool contains at most UPSTREAM_POOL_MAX.
 */
#define UPSTREAM_POOL_MAX 32
#define UPSTREAM_POOL_IDLE_MS 10000

static void pool_unlink(struct upstream *up)
{
	if (!up->pooled)
		return;
	if (up->pool_prev != NULL)
		up->pool_prev->pool_next = up->pool_next;
	else
		up->srv->pool = up->pool_next;
	if (up->pool_next != NULL)
		up->pool_next->pool_prev = up->pool_prev;
	up->pool_next = up->pool_prev = NULL;
	up->pooled = false;
	up->srv->pool_count--;
}

static void pooled_ready(void *arg, const struct outcome *o)
{
	(void)arg;
	(void)o;
}

static void pooled_reply(void *arg, const struct smtp_reply *r)
{
	(void)r;
	upstream_abort(arg);
}

/* The MX closed an idle session, or broke the protocol while idle. */
static void pooled_error(void *arg, const struct outcome *o)
{
	struct upstream *up = arg;

	(void)o;
	upstream_abort(up);
}

static void pooled_drain(void *arg)
{
	(void)arg;
}

static const struct upstream_hooks pooled_hooks = {
	.on_ready = pooled_ready,
	.on_reply = pooled_reply,
	.on_error = pooled_error,
	.on_drain = pooled_drain,
};

static bool same_policy(const struct policy *a, const struct policy *b)
{
	return a->level == b->level && a->rule == b->rule && a->dane == b->dane &&
		a->has_sts == b->has_sts &&
		(!a->has_sts || (a->sts.mode == b->sts.mode &&
				 strcmp(a->sts.id, b->sts.id) == 0));
}

bool upstream_park(struct upstream *up)
{
	struct server *srv = up->srv;

	if (up->state != UP_READY || up->stream == NULL || srv->stopping)
		return false;
	if (srv->pool_count >= UPSTREAM_POOL_MAX) {
		/* A full pool makes room by closing its oldest session. */
		struct upstream *oldest = srv->pool;

		while (oldest->pool_next != NULL)
			oldest = oldest->pool_next;
		upstream_quit(oldest);
	}
	up->hooks = &pooled_hooks;
	up->arg = up;
	up->pooled = true;
	up->pool_prev = NULL;
	up->pool_next = srv->pool;
	if (srv->pool != NULL)
		srv->pool->pool_prev = up;
	srv->pool = up;
	srv->pool_count++;
	arm_timer(up, UPSTREAM_POOL_IDLE_MS);
	log_conn(&srv->log, CONF_LOG_DEBUG, up->conn,
		 "event=mx-pooled mx=%s[%s]:25 domain=%s", up->host, up->address,
		 up->route->domain);
	return true;
}

struct upstream *upstream_unpark(struct server *srv, const char *domain,
				 const struct policy *policy, uint64_t conn,
				 const struct upstream_hooks *h, void *arg)
{
	for (struct upstream *up = srv->pool; up != NULL; up = up->pool_next) {
		if (strcmp(up->route->domain, domain) != 0 ||
		    !same_policy(&up->policy, policy))
			continue;
		pool_unlink(up);
		uv_timer_stop(&up->timer);
		log_conn(&srv->log, CONF_LOG_INFO, conn,
			 "event=mx-reuse mx=%s[%s]:25 from_conn=%llu", up->host,
			 up->address, (unsigned long long)up->conn);
		up->conn = conn;
		up->hooks = h;
		up->arg = arg;
		return up;
	}
	return NULL;
}

void upstream_pool_close(struct server *srv)
{
	while (srv->pool != NULL)
		upstream_quit(srv->pool);
}
