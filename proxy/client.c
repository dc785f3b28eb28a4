/*
 * Client session, connection side: greeting, line framing, command
 * dispatch, STARTTLS toward the client (RFC 3207), the replies mxlock
 * gives itself, timeouts and closing. The transaction toward the MX lives
 * in client_txn.c, the start of a transparent session in
 * client_transparent.c.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "client.h"
#include "client_impl.h"
#include "log.h"
#include "server.h"
#include "stream.h"

static void process_input(struct client *c);

/*
 * Counts a new connection against limits.max_connections, which all
 * loops share (workers). Returns false when the limit is reached.
 */
static bool conn_take(struct server *srv)
{
	unsigned max = srv->conf->limits.max_connections;

	if (srv->shared_conns == NULL) {
		if (srv->conn_count >= max)
			return false;
	} else if (atomic_fetch_add(srv->shared_conns, 1) >= max) {
		atomic_fetch_sub(srv->shared_conns, 1);
		return false;
	}
	srv->conn_count++;
	return true;
}

static void conn_release(struct server *srv)
{
	srv->conn_count--;
	if (srv->shared_conns != NULL)
		atomic_fetch_sub(srv->shared_conns, 1);
}

static void timer_close_cb(uv_handle_t *h)
{
	struct client *c = h->data;

	base_buf_free(&c->in);
	for (unsigned i = 0; i < c->accepted_count; i++)
		free(c->accepted[i]);
	free(c->accepted);
	free(c->last_mx);
	free(c->chunk);
	free(c);
}

void client_close(struct client *c)
{
	bool mid_message = c->state == CLIENT_DATA || c->state == CLIENT_DISCARD ||
		c->state == CLIENT_FINAL || c->wait == CLIENT_WAIT_DATA;

	if (c->state == CLIENT_CLOSING)
		return;
	c->state = CLIENT_CLOSING;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		c->srv->clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	client_txn_close(c, mid_message);
	stream_close(c->stream);
	conn_release(c->srv);
	log_conn(&c->srv->log, CONF_LOG_INFO, c->id, "event=disconnect client=%s",
		 c->peer);
	uv_close((uv_handle_t *)&c->timer, timer_close_cb);
}

static void last_reply_written(struct stream *s, int status, void *arg)
{
	client_close(arg);
}

void client_reply_close(struct client *c, const char *line)
{
	c->quitting = true;
	if (c->state == CLIENT_CLOSING)
		return;
	if (stream_write(c->stream, line, strlen(line), last_reply_written, c) < 0)
		client_close(c);
}

static void reply_written(struct stream *s, int status, void *arg)
{
	struct client *c = arg;

	if (status < 0) {
		client_close(c);
		return;
	}
	if (c->output_blocked && stream_write_pending(s) < CLIENT_OUTPUT_LOW) {
		c->output_blocked = false;
		client_resume(c);
	}
}

void client_reply(struct client *c, const char *line)
{
	if (c->state == CLIENT_CLOSING)
		return;
	if (stream_write(c->stream, line, strlen(line), reply_written, c) < 0)
		client_close(c);
}

void client_reply_outcome(struct client *c, const struct outcome *o)
{
	char line[512];

	outcome_format(o, line, sizeof(line));
	client_reply(c, line);
}

static void on_timeout(uv_timer_t *t)
{
	struct client *c = t->data;

	log_conn(&c->srv->log, CONF_LOG_INFO, c->id,
		 "event=timeout client=%s state=%d", c->peer, (int)c->state);
	/* Close now: a client that reads nothing would hold the 421 forever. */
	client_reply(c, "421 4.4.2 Timeout waiting for the client, closing\r\n");
	client_close(c);
}

static void arm_timer(struct client *c)
{
	const struct conf_timeouts *t = &c->srv->conf->limits.timeouts;
	uint64_t ms = c->state == CLIENT_COMMAND ? t->command : t->data;

	uv_timer_start(&c->timer, on_timeout, ms, 0);
}

void client_pause(struct client *c)
{
	if (c->reading)
		stream_read_stop(c->stream);
	c->reading = false;
	uv_timer_stop(&c->timer);
}

/* Reads again and answers buffered commands, after a wait ends. */
void client_resume(struct client *c)
{
	if (c->state == CLIENT_CLOSING || c->quitting)
		return;
	if (c->state == CLIENT_DATA || c->state == CLIENT_DISCARD) {
		if (c->in.len > 0) {
			size_t len = c->in.len;
			char *copy = malloc(len);

			if (copy == NULL) {
				client_close(c);
				return;
			}
			memcpy(copy, c->in.data, len);
			base_buf_consume(&c->in, len);
			client_txn_feed(c, copy, len);
			free(copy);
			if (c->state != CLIENT_DATA && c->state != CLIENT_DISCARD)
				return;
		}
	} else if (c->state == CLIENT_COMMAND) {
		process_input(c);
		if (c->state != CLIENT_COMMAND)
			return;
	} else {
		return;
	}
	if (c->output_blocked)
		return;
	if (!c->reading && stream_read_start(c->stream) == 0)
		c->reading = true;
	arm_timer(c);
}

static void reply_ehlo(struct client *c, bool extended)
{
	char line[1024];

	c->greeted = true;
	client_txn_reset(c);
	if (!extended) {
		snprintf(line, sizeof(line), "250 %s\r\n", c->srv->conf->hostname);
		client_reply(c, line);
		return;
	}
	/*
	 * No DSN: a relay without a queue cannot send the notices it
	 * promises. RFC 3207 section 4.2: no STARTTLS once TLS is active.
	 */
	snprintf(line, sizeof(line),
		 "250-%s\r\n250-PIPELINING\r\n250-SIZE %" PRIu64 "\r\n"
		 "250-8BITMIME\r\n250-SMTPUTF8\r\n%s250 ENHANCEDSTATUSCODES\r\n",
		 c->srv->conf->hostname, c->srv->conf->limits.max_message_size,
		 c->srv->tls_server != NULL && !c->tls ? "250-STARTTLS\r\n" : "");
	client_reply(c, line);
}

static void tls_done(struct stream *s, int status, void *arg)
{
	struct client *c = arg;
	const struct stream_tls_info *info = stream_tls(s);

	if (status < 0 || info == NULL) {
		const char *reason = stream_tls_error(s);

		log_conn(&c->srv->log, CONF_LOG_INFO, c->id,
			 "event=client-tls-failed client=%s error=\"%s%s%s\"",
			 c->peer, base_strerror(status), reason != NULL ? ": " : "",
			 reason != NULL ? reason : "");
		client_close(c);
		return;
	}
	c->tls = true;
	log_conn(&c->srv->log, CONF_LOG_INFO, c->id,
		 "event=client-tls client=%s tls=%s cipher=%s", c->peer,
		 info->version, info->cipher);

	/* RFC 3207 section 4.2: discard what the client sent before TLS,
	   the EHLO argument included, so it must send EHLO again. */
	c->greeted = false;
	client_txn_reset(c);
	c->state = CLIENT_COMMAND;
	client_resume(c);
}

/*
 * Runs after the 220 reply to STARTTLS was queued and the STARTTLS line
 * consumed. Commands the client pipelined behind STARTTLS arrived in
 * plaintext. Executing them as if they came over TLS is the command
 * injection of CVE-2011-0411, so they are dropped (RFC 3207 section 4).
 */
static void begin_tls(struct client *c)
{
	int rc;

	if (c->in.len > 0 || c->discard_line)
		log_conn(&c->srv->log, CONF_LOG_INFO, c->id,
			 "event=starttls-pipelined client=%s bytes=%zu action=discarded",
			 c->peer, c->in.len);
	base_buf_consume(&c->in, c->in.len);
	c->discard_line = false;

	client_pause(c);
	uv_timer_start(&c->timer, on_timeout, c->srv->conf->limits.timeouts.tls, 0);
	rc = stream_starttls_server(c->stream, c->srv->tls_server, tls_done, c);
	if (rc < 0) {
		log_conn(&c->srv->log, CONF_LOG_INFO, c->id,
			 "event=client-tls-failed client=%s error=\"%s\"",
			 c->peer, base_strerror(rc));
		client_close(c);
	}
}

static void handle_starttls(struct client *c)
{
	if (c->srv->tls_server == NULL) {
		/* Not advertised: no certificate in tls.server_cert. */
		client_reply(c, "502 5.5.1 STARTTLS not available\r\n");
		return;
	}
	if (c->tls) {
		client_reply(c, "503 5.5.1 TLS already active\r\n");
		return;
	}
	if (c->has_mail) {
		client_reply(c, "503 5.5.1 Mail transaction in progress\r\n");
		return;
	}
	client_reply(c, "220 2.0.0 Ready to start TLS\r\n");
	/* process_input starts the handshake once this line is consumed. */
	c->state = CLIENT_TLS;
}

/* Checks MAIL parameters and stores them in the form sent upstream. */
static int take_mail_params(struct client *c, const struct smtp_cmd *cmd)
{
	uint64_t max = c->srv->conf->limits.max_message_size;

	for (size_t i = 0; i < cmd->param_count; i++) {
		const struct smtp_param *p = &cmd->params[i];
		char *end;

		if (strcasecmp(p->keyword, "SIZE") == 0 && p->value != NULL) {
			c->mail_size = strtoull(p->value, &end, 10);
			if (*end != '\0' || !isdigit((unsigned char)p->value[0])) {
				client_reply(c, "501 5.5.4 Invalid SIZE value\r\n");
				return -1;
			}
			if (c->mail_size > max) {
				client_reply(c, "552 5.3.4 Message size exceeds the limit\r\n");
				return -1;
			}
		} else if (strcasecmp(p->keyword, "BODY") == 0 && p->value != NULL &&
			   (strcasecmp(p->value, "7BIT") == 0 ||
			    strcasecmp(p->value, "8BITMIME") == 0)) {
			c->mail_8bit = strcasecmp(p->value, "8BITMIME") == 0;
		} else if (strcasecmp(p->keyword, "SMTPUTF8") == 0 && p->value == NULL) {
			c->mail_smtputf8 = true;
		} else {
			client_reply(c, "555 5.5.4 Unsupported MAIL parameter\r\n");
			return -1;
		}
	}
	return 0;
}

static bool has_8bit(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s >= 0x80)
			return true;
	}
	return false;
}

static void handle_mail(struct client *c, const struct smtp_cmd *cmd)
{
	if (!c->greeted) {
		client_reply(c, "503 5.5.1 Send EHLO or HELO first\r\n");
		return;
	}
	if (c->has_mail) {
		client_reply(c, "503 5.5.1 Nested MAIL command\r\n");
		return;
	}
	client_txn_reset(c);
	if (take_mail_params(c, cmd) < 0) {
		client_txn_reset(c);
		return;
	}
	if (!c->mail_smtputf8 && has_8bit(cmd->path)) {
		client_reply(c, "553 5.6.7 Non-ASCII address needs the SMTPUTF8 parameter\r\n");
		client_txn_reset(c);
		return;
	}
	snprintf(c->mail_from, sizeof(c->mail_from), "%s", cmd->path);
	c->has_mail = true;
	client_reply(c, "250 2.1.0 Sender ok\r\n");
}

static void handle_rcpt(struct client *c, const struct smtp_cmd *cmd)
{
	if (!c->has_mail) {
		client_reply(c, "503 5.5.1 Send MAIL first\r\n");
		return;
	}
	if (cmd->param_count > 0) {
		client_reply(c, "555 5.5.4 Unsupported RCPT parameter\r\n");
		return;
	}
	if (cmd->domain == NULL) {
		client_reply(c, "550 5.1.3 Recipient address has no domain\r\n");
		return;
	}
	/* RFC 6531 section 3.4: UTF-8 addresses only in an SMTPUTF8 transaction. */
	if (!c->mail_smtputf8 && has_8bit(cmd->path)) {
		client_reply(c, "553 5.6.7 Non-ASCII address needs the SMTPUTF8 parameter\r\n");
		return;
	}
	if (cmd->domain[0] == '[') {
		client_reply(c, "550 5.1.2 Address literals are not relayed\r\n");
		return;
	}
	client_txn_rcpt(c, cmd);
}

static void dispatch(struct client *c, const struct smtp_cmd *cmd)
{
	switch (cmd->verb) {
	case SMTP_VERB_EHLO:
	case SMTP_VERB_HELO:
		if (cmd->arg[0] == '\0') {
			client_reply(c, "501 5.5.4 EHLO and HELO need a domain\r\n");
			return;
		}
		reply_ehlo(c, cmd->verb == SMTP_VERB_EHLO);
		return;
	case SMTP_VERB_MAIL:
		handle_mail(c, cmd);
		return;
	case SMTP_VERB_RCPT:
		handle_rcpt(c, cmd);
		return;
	case SMTP_VERB_DATA:
		if (!c->has_mail) {
			client_reply(c, "503 5.5.1 Send MAIL first\r\n");
			return;
		}
		client_txn_data(c);
		return;
	case SMTP_VERB_RSET:
		client_txn_reset(c);
		client_reply(c, "250 2.0.0 Reset\r\n");
		return;
	case SMTP_VERB_NOOP:
		client_reply(c, "250 2.0.0 Ok\r\n");
		return;
	case SMTP_VERB_QUIT:
		client_reply_close(c, "221 2.0.0 Bye\r\n");
		return;
	case SMTP_VERB_STARTTLS:
		handle_starttls(c);
		return;
	case SMTP_VERB_VRFY:
		client_reply(c, "252 2.5.0 Cannot verify the address; send mail to it\r\n");
		return;
	case SMTP_VERB_HELP:
		client_reply(c, "214 2.0.0 mxlock relays mail to the recipient's MX over verified TLS\r\n");
		return;
	case SMTP_VERB_UNKNOWN:
		client_reply(c, "500 5.5.2 Unknown command\r\n");
		return;
	default:
		client_reply(c, "502 5.5.1 Command not implemented\r\n");
		return;
	}
}

static void handle_line(struct client *c, const char *line, size_t len)
{
	struct smtp_cmd *cmd = malloc(sizeof(*cmd));
	int rc;

	if (cmd == NULL) {
		client_reply(c, "451 4.3.0 Out of memory\r\n");
		return;
	}
	rc = smtp_cmd_parse(line, len, cmd);
	if (rc == BASE_ETOOLONG)
		client_reply(c, "500 5.5.2 Line too long\r\n");
	else if (rc < 0 && (cmd->verb == SMTP_VERB_MAIL || cmd->verb == SMTP_VERB_RCPT))
		client_reply(c, "501 5.1.7 Invalid address or parameters\r\n");
	else if (rc < 0)
		client_reply(c, "501 5.5.4 Syntax error in arguments\r\n");
	else
		dispatch(c, cmd);
	free(cmd);
}

/*
 * Removes the line of len bytes (plus its LF) from the input before it is
 * handled: handling may answer the commands behind it at once (a wait
 * that ends without I/O resumes processing), and those must find the
 * input already past this line.
 */
static void take_line(struct client *c, size_t len)
{
	size_t text = len > 0 && c->in.data[len - 1] == '\r' ? len - 1 : len;
	char *line = malloc(text + 1);

	if (line == NULL) {
		base_buf_consume(&c->in, len + 1);
		client_reply(c, "451 4.3.0 Out of memory\r\n");
		return;
	}
	memcpy(line, c->in.data, text);
	line[text] = '\0';
	base_buf_consume(&c->in, len + 1);
	handle_line(c, line, text);
	free(line);
}

/* Takes one line off the input if a whole one is there. */
static bool next_line(struct client *c)
{
	char *lf = memchr(c->in.data, '\n', c->in.len);
	size_t len;

	if (lf == NULL) {
		if (c->in.len > SMTP_CMD_LINE_MAX_EXT) {
			/* RFC 5321 section 4.5.3.1.4: too long; skip to its end. */
			client_reply(c, "500 5.5.2 Line too long\r\n");
			c->discard_line = true;
			base_buf_consume(&c->in, c->in.len);
		}
		return false;
	}
	len = (size_t)(lf - c->in.data);
	if (c->discard_line) {
		c->discard_line = false;
		base_buf_consume(&c->in, len + 1);
		return true;
	}
	take_line(c, len);
	return true;
}

static void process_input(struct client *c)
{
	while (c->state == CLIENT_COMMAND && !c->quitting && c->in.len > 0) {
		/* A client that sends commands but reads no replies must not
		   make mxlock queue replies without bound. */
		if (stream_write_pending(c->stream) > CLIENT_OUTPUT_MAX) {
			c->output_blocked = true;
			client_pause(c);
			return;
		}
		if (!next_line(c))
			return;
		if (c->state == CLIENT_TLS) {
			begin_tls(c);
			return;
		}
		/* The command timeout runs per complete command, so a client
		   sending one byte at a time cannot hold the session. */
		arm_timer(c);
	}
}

static void on_read(struct stream *s, const char *data, size_t len, void *arg)
{
	struct client *c = arg;

	if (c->state == CLIENT_DATA || c->state == CLIENT_DISCARD) {
		arm_timer(c);
		client_txn_feed(c, data, len);
		return;
	}
	if (base_buf_append(&c->in, data, len) < 0) {
		log_conn(&c->srv->log, CONF_LOG_INFO, c->id,
			 "event=input-overflow client=%s bytes=%zu", c->peer, c->in.len);
		client_reply_close(c, "421 4.7.0 Too much pipelined input, closing\r\n");
		return;
	}
	if (c->state != CLIENT_COMMAND)
		return;
	process_input(c);
}

static void on_error(struct stream *s, int err, void *arg)
{
	struct client *c = arg;

	log_conn(&c->srv->log, CONF_LOG_INFO, c->id,
		 "event=client-lost client=%s error=\"%s\"", c->peer, base_strerror(err));
	client_close(c);
}

static const struct stream_handler handler = {
	.on_read = on_read,
	.on_error = on_error,
};

static void refuse_written(struct stream *s, int status, void *arg)
{
	stream_close(s);
}

static void refuse(struct server *srv, struct stream *stream, uint64_t id,
		   const char *peer, const char *why, const char *line)
{
	log_conn(&srv->log, CONF_LOG_INFO, id, "event=reject client=%s reason=%s",
		 peer, why);
	if (stream_write(stream, line, strlen(line), refuse_written, NULL) < 0)
		stream_close(stream);
}

void client_greet(struct client *c)
{
	char line[300];

	snprintf(line, sizeof(line), "220 %s ESMTP mxlock\r\n",
		 c->srv->conf->hostname);
	client_reply(c, line);
	c->wait = CLIENT_WAIT_NONE;
	c->state = CLIENT_COMMAND;
	client_resume(c);
}

int client_start(struct server *srv, struct stream *stream,
		 const struct conf_listen *listener)
{
	struct sockaddr_storage sa;
	struct client *c;
	char peer[64];
	unsigned workers = srv->workers > 1 ? srv->workers : 1;
	/* Loops number their connections apart: loop k takes k+1, k+1+n, ... */
	uint64_t id = srv->next_conn_id++ * workers + srv->worker + 1;

	stream_peer(stream, peer, sizeof(peer), &sa);
	if (!conf_client_allowed(srv->conf, (struct sockaddr *)&sa)) {
		refuse(srv, stream, id, peer, "client-not-allowed",
		       "554 5.7.1 Access denied: client network not allowed\r\n");
		return 0;
	}
	if (!conn_take(srv)) {
		refuse(srv, stream, id, peer, "too-many-connections",
		       "421 4.7.0 Too many connections, try again later\r\n");
		return 0;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		stream_close(stream);
		return BASE_ENOMEM;
	}

	c->srv = srv;
	c->id = id;
	c->stream = stream;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	base_buf_init(&c->in, CLIENT_INPUT_MAX);
	uv_timer_init(srv->loop, &c->timer);
	c->timer.data = c;
	c->next = srv->clients;
	if (c->next != NULL)
		c->next->prev = c;
	srv->clients = c;
	client_txn_reset(c);

	log_conn(&srv->log, CONF_LOG_INFO, id, "event=connect client=%s", peer);
	stream_nodelay(stream);
	stream_set_handler(stream, &handler, c);
	if (listener->mode == CONF_LISTEN_TRANSPARENT)
		client_transparent_start(c, listener);
	else
		client_greet(c);
	return 0;
}

void client_close_all(struct server *srv)
{
	while (srv->clients != NULL) {
		client_reply(srv->clients, "421 4.3.2 mxlock is shutting down\r\n");
		client_close(srv->clients);
	}
}

unsigned client_close_idle(struct server *srv)
{
	struct client *c = srv->clients;
	unsigned left = 0;

	while (c != NULL) {
		struct client *next = c->next;

		/* The MX may already have the message: its reply decides. */
		if (c->state == CLIENT_FINAL) {
			left++;
		} else {
			client_reply(c, "421 4.3.2 mxlock is shutting down\r\n");
			client_close(c);
		}
		c = next;
	}
	return left;
}
