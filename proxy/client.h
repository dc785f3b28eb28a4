/*
 * Client session: the SMTP server side facing the legacy MTA. It answers
 * greeting, EHLO and MAIL itself, routes on the first RCPT, hands the
 * transaction to an upstream session and relays the MX's replies. It never
 * answers the end of DATA before the MX has.
 */
#ifndef CLIENT_H
#define CLIENT_H

#include <stdint.h>

struct server;
struct stream;

/*
 * Starts a session on an accepted stream (ownership passes to the
 * session). Returns 0 or a negative base_err code (the stream is then
 * closed).
 */
int client_start(struct server *srv, struct stream *stream);

/* Closes every open session of srv, at shutdown. */
void client_close_all(struct server *srv);

#endif
