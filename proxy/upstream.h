/*
 * Upstream session: the SMTP client side toward the recipient domain's MX
 * hosts. It tries hosts and addresses in route order (capped by
 * limits.max_mx_hosts and limits.max_addresses), waits for the whole
 * greeting, sends EHLO (HELO when EHLO is refused), STARTTLS as the policy
 * allows or demands, runs the TLS handshake, forgets what it learned
 * before TLS and sends EHLO again (RFC 3207 section 4.2). Then it carries
 * the commands and message bytes the client session gives it.
 */
#ifndef UPSTREAM_H
#define UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "ehlo.h"
#include "outcome.h"
#include "policy.h"
#include "route.h"
#include "smtp_reply.h"
#include "stream.h"

struct server;
struct upstream;

struct upstream_hooks {
	/* The session is ready for MAIL (o NULL), or every host failed. */
	void (*on_ready)(void *arg, const struct outcome *o);
	/* The reply to the last command sent, or to the end of DATA. */
	void (*on_reply)(void *arg, const struct smtp_reply *r);
	/* The connection failed after it was ready. */
	void (*on_error)(void *arg, const struct outcome *o);
	/* Queued message bytes fell below the low-water mark. */
	void (*on_drain)(void *arg);
};

/* What the summary log line reports about the MX session. */
struct upstream_info {
	char host[256];			/* MX host name */
	char address[64];		/* its address, numeric */
	const struct stream_tls_info *tls; /* NULL when plaintext */
	double connect_s;		/* connect and greeting */
	double tls_s;			/* STARTTLS, handshake, second EHLO */
	const char *policy;		/* "dane", "mta-sts", "may", ... */
	const char *verified;		/* "yes", "trusted" or "no" */
	char detail[200];		/* what the certificate check found */
};

/*
 * Starts delivery toward route (ownership passes to the upstream) under
 * policy. Exactly one on_ready follows unless upstream_abort comes first.
 * Returns 0 and stores the session in *out, or a negative base_err code
 * (then no hook runs and route is freed).
 */
int upstream_new(struct server *srv, uint64_t conn, struct route *route,
		 const struct policy *policy, const struct upstream_hooks *h,
		 void *arg, struct upstream **out);

/*
 * Like upstream_new, but the first attempt goes over stream, a connection
 * to the first address of route's first host that already received its
 * 220 greeting (the transparent probe). Ownership of route and stream
 * passes to the upstream, even on error. The next attempts, if any,
 * connect as upstream_new does.
 */
int upstream_adopt(struct server *srv, uint64_t conn, struct route *route,
		   const struct policy *policy, struct stream *stream,
		   const struct upstream_hooks *h, void *arg,
		   struct upstream **out);

/*
 * Sends one command line (with CRLF); its reply arrives through on_reply.
 * Returns 0 or a negative base_err code.
 */
int upstream_send(struct upstream *up, const char *line, size_t len);

/* Queues message bytes; no reply is expected. */
int upstream_write_data(struct upstream *up, const char *data, size_t len);

/* Arms the final-reply timeout after the last message bytes were queued. */
void upstream_await_final(struct upstream *up);

/* Bytes queued toward the MX and not yet written. */
size_t upstream_pending(const struct upstream *up);

const struct ehlo_caps *upstream_caps(const struct upstream *up);
const struct route *upstream_route(const struct upstream *up);
void upstream_info(const struct upstream *up, struct upstream_info *out);

/*
 * Keeps an idle session (no transaction open) in the server's pool for a
 * later client connection, instead of closing it. Returns false when it
 * cannot be kept; the caller then closes it. No hook of the caller runs
 * after a true return.
 */
bool upstream_park(struct upstream *up);

/*
 * Takes a pooled session to domain that was set up under the same policy,
 * and binds it to conn and the hooks h with arg. Returns NULL when there
 * is none. The session is ready for MAIL.
 */
struct upstream *upstream_unpark(struct server *srv, const char *domain,
				 const struct policy *policy, uint64_t conn,
				 const struct upstream_hooks *h, void *arg);

/* Closes every pooled session, at shutdown. */
void upstream_pool_close(struct server *srv);

/* Sends QUIT without waiting for the reply, then closes. No hook runs after. */
void upstream_quit(struct upstream *up);

/* Closes at once; no hook runs after. upstream_abort(NULL) does nothing. */
void upstream_abort(struct upstream *up);

#endif
