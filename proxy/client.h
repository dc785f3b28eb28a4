/*
 * Client session: the SMTP server side facing the legacy MTA. It answers
 * greeting, EHLO and MAIL itself, routes on the first RCPT, hands the
 * transaction to an upstream session and relays the MX's replies. It never
 * answers the end of DATA before the MX has.
 */
#ifndef CLIENT_H
#define CLIENT_H

#include <stdint.h>

struct conf_listen;
struct server;
struct stream;

/*
 * Starts a session on a stream accepted by listener (ownership passes to
 * the session). On a transparent listener the session first connects to
 * the original destination and greets the client only once it sent a 220
 * greeting. Returns 0 or a negative base_err code (the stream is then
 * closed).
 */
int client_start(struct server *srv, struct stream *stream,
		 const struct conf_listen *listener);

/* Closes every open session of srv, at shutdown. */
void client_close_all(struct server *srv);

/*
 * Starts the shutdown: replies 421 to every client and closes it, except
 * those whose message the MX may already have (the final dot was sent and
 * its reply is awaited). Those get the MX's reply, then 421 and the close.
 * Returns how many are left.
 */
unsigned client_close_idle(struct server *srv);

#endif
