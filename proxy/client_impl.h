/*
 * Internals of the client session shared by client.c (connection, command
 * dispatch) and client_txn.c (the transaction: routing, upstream, DATA).
 */
#ifndef CLIENT_IMPL_H
#define CLIENT_IMPL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "base/buf.h"
#include "conf/conf.h"
#include "outcome.h"
#include "relay.h"
#include "route.h"
#include "smtp_cmd.h"
#include "upstream.h"

struct mtasts_req;
struct transparent_probe;

#define CLIENT_INPUT_MAX (SMTP_CMD_LINE_MAX_EXT * 8)
#define CLIENT_OUTPUT_MAX (64 * 1024)	/* unread replies before pausing */
#define CLIENT_OUTPUT_LOW (16 * 1024)	/* resume below this */
#define CLIENT_CHUNK 16384

enum client_state {
	CLIENT_COMMAND,		/* reading and answering commands */
	CLIENT_WAIT,		/* a command awaits routing or the MX */
	CLIENT_DATA,		/* streaming message bytes to the MX */
	CLIENT_DISCARD,		/* reading message bytes that go nowhere */
	CLIENT_FINAL,		/* end of data sent, MX reply awaited */
	CLIENT_TLS,		/* 220 to STARTTLS sent, TLS handshake runs */
	CLIENT_CLOSING,
};

/* What the pending command waits for from the upstream session. */
enum client_wait {
	CLIENT_WAIT_NONE,
	CLIENT_WAIT_PROBE,		/* transparent: the original
					   destination's greeting */
	CLIENT_WAIT_ROUTE,
	CLIENT_WAIT_STS,		/* the MTA-STS policy lookup */
	CLIENT_WAIT_READY,
	CLIENT_WAIT_RSET,
	CLIENT_WAIT_MAIL,
	CLIENT_WAIT_RCPT,
	CLIENT_WAIT_DATA,
};

struct client {
	struct server *srv;
	struct client *next;		/* in srv->clients */
	struct client *prev;
	uint64_t id;
	struct stream *stream;
	uv_timer_t timer;
	enum client_state state;
	struct base_buf in;		/* unprocessed command bytes */
	bool discard_line;		/* skipping the rest of a long line */
	bool greeted;
	bool quitting;
	bool reading;
	bool output_blocked;		/* paused: the client reads no replies */
	bool tls;			/* the client connection uses TLS */
	char peer[64];

	/* The transaction. */
	bool has_mail;
	char mail_from[SMTP_CMD_PATH_MAX + 1];
	bool mail_smtputf8;
	bool mail_8bit;
	uint64_t mail_size;
	char domain[256];		/* next-hop domain, "" before 1st RCPT */
	char rcpt[SMTP_CMD_PATH_MAX + 1];	/* RCPT being relayed */
	char **accepted;		/* recipients the MX accepted */
	unsigned accepted_count;
	unsigned rcpt_count;
	bool txn_failed;		/* routing or delivery failed */
	struct outcome txn_failure;
	bool mail_sent;			/* MAIL FROM went to this MX */
	struct relay_data relay;
	struct outcome data_failure;
	bool data_failed;
	char *chunk;			/* RELAY_OUT_MAX(CLIENT_CHUNK) bytes */

	/* The upstream side. */
	enum client_wait wait;
	struct route_req *route_req;
	struct mtasts_req *sts_req;
	struct route *pending_route;	/* routed, waiting for MTA-STS */
	bool sts_enforced;		/* an enforce policy governs delivery */
	bool sts_rechecked;		/* RFC 8461 section 5.1 check done */
	char sts_id[33];		/* id of the MTA-STS policy in use */
	struct upstream *up;
	bool up_dirty;			/* the MX holds a transaction: RSET */
	/* Transparent interception. */
	bool transparent;		/* came in on a transparent listener */
	struct sockaddr_storage original; /* where the client was going */
	char original_text[80];		/* "192.0.2.7:25", for logs */
	struct transparent_probe *probe; /* greeted connection to it, until
					    the first delivery */

	struct upstream_info *last_mx;	/* the last MX tried, when all failed;
					   NULL otherwise (or out of memory,
					   which only shortens the log line) */
	uint64_t t_txn;			/* ms: first RCPT */
	uint64_t t_routed;
	uint64_t t_ready;
	uint64_t t_mail;
	char policy_name[16];
};

/* client.c */
void client_greet(struct client *c);	/* 220, then reads commands */
void client_reply(struct client *c, const char *line);
/* Sends a last reply and closes the connection once it is written. */
void client_reply_close(struct client *c, const char *line);
void client_reply_outcome(struct client *c, const struct outcome *o);
void client_resume(struct client *c);
void client_pause(struct client *c);
void client_close(struct client *c);

/* client_transparent.c */
void client_transparent_start(struct client *c,
			      const struct conf_listen *listener);

/* client_txn.c */
void client_txn_reset(struct client *c);
void client_txn_rcpt(struct client *c, const struct smtp_cmd *cmd);
void client_txn_data(struct client *c);
void client_txn_feed(struct client *c, const char *data, size_t len);
void client_txn_close(struct client *c, bool mid_message);

#endif
