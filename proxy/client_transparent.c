/*
 * Client session, transparent start: the original destination of a
 * redirected connection, the check that it was redirected at all, and the
 * probe connection to it, which must send a 220 greeting before the
 * client gets mxlock's. The delivery side lives in client_txn.c.
 */
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "client_impl.h"
#include "log.h"
#include "server.h"
#include "transparent.h"

/* Sends one reply and closes once it is written. */
static void reply_and_quit(struct client *c, const char *line)
{
	client_reply_close(c, line);
}

static void probe_done(void *arg, int status, const char *detail)
{
	struct client *c = arg;
	char line[300];

	if (status == 0) {
		log_conn(&c->srv->log, CONF_LOG_DEBUG, c->id,
			 "event=transparent-greeted original=%s",
			 c->original_text);
		client_greet(c);
		return;
	}
	transparent_probe_free(c->probe);
	c->probe = NULL;
	log_conn(&c->srv->log, CONF_LOG_INFO, c->id,
		 "event=transparent-connect-failed client=%s original=%s detail=\"%s\"",
		 c->peer, c->original_text, detail);
	/* 421 makes the client try its next MX, as it would without mxlock. */
	snprintf(line, sizeof(line),
		 "421 4.4.1 %s did not accept the connection (%s), try another MX\r\n",
		 c->original_text, detail);
	reply_and_quit(c, line);
}

/* Returns true when the original destination is the listener itself. */
static bool not_intercepted(const struct client *c,
			    const struct conf_listen *listener)
{
	struct sockaddr_storage own;
	int rc;

	memset(&own, 0, sizeof(own));
	if (strchr(listener->address, ':') != NULL)
		rc = uv_ip6_addr(listener->address, listener->port,
				 (struct sockaddr_in6 *)&own);
	else
		rc = uv_ip4_addr(listener->address, listener->port,
				 (struct sockaddr_in *)&own);
	if (rc != 0)
		return false;
	return transparent_addr_equal((struct sockaddr *)&own,
				      (const struct sockaddr *)&c->original);
}

/*
 * Connects to the original destination before greeting the client, so a
 * client whose MX is down gets 421 and tries its next MX as it would
 * without mxlock.
 */
void client_transparent_start(struct client *c,
			      const struct conf_listen *listener)
{
	int rc = transparent_original_dst(c->stream, &c->original);

	c->transparent = true;
	c->state = CLIENT_WAIT;
	c->wait = CLIENT_WAIT_PROBE;
	if (rc < 0) {
		log_conn(&c->srv->log, CONF_LOG_WARN, c->id,
			 "event=reject client=%s reason=no-original-destination error=\"%s\"",
			 c->peer, base_strerror(rc));
		reply_and_quit(c, "421 4.3.0 Original destination unknown, closing\r\n");
		return;
	}
	transparent_addr_text((struct sockaddr *)&c->original, c->original_text,
			      sizeof(c->original_text));
	if (not_intercepted(c, listener)) {
		log_conn(&c->srv->log, CONF_LOG_INFO, c->id,
			 "event=reject client=%s reason=not-intercepted", c->peer);
		reply_and_quit(c, "554 5.3.5 This port accepts only redirected connections\r\n");
		return;
	}
	log_conn(&c->srv->log, CONF_LOG_INFO, c->id,
		 "event=transparent-connect client=%s original=%s", c->peer,
		 c->original_text);
	rc = transparent_probe_start(c->srv, (struct sockaddr *)&c->original,
				     probe_done, c, &c->probe);
	if (rc < 0) {
		c->probe = NULL;
		probe_done(c, rc, base_strerror(rc));
	}
}
