/*
 * Failure classification. Every failure is classified once, here, into a
 * kind; the kind fixes its scope (connection, MX host, message or
 * recipient), whether it is permanent, the reply code and enhanced status
 * code sent to the client, and the reason word in the log line. Temporary
 * or uncertain failures are always 4xx; only definite answers are 5xx.
 */
#ifndef OUTCOME_H
#define OUTCOME_H

#include <stdbool.h>
#include <stddef.h>

#include "smtp_reply.h"

enum outcome_scope {
	OUTCOME_SCOPE_CONNECTION,	/* the client connection */
	OUTCOME_SCOPE_HOST,		/* one MX host; the next may work */
	OUTCOME_SCOPE_MESSAGE,		/* the whole transaction */
	OUTCOME_SCOPE_RECIPIENT,	/* one recipient */
};

enum outcome_kind {
	OUTCOME_NULL_MX,		/* RFC 7505: domain accepts no mail */
	OUTCOME_NO_DOMAIN,		/* recipient domain does not exist */
	OUTCOME_DNS_TEMPFAIL,		/* a lookup failed */
	OUTCOME_NO_ADDRESS,		/* no MX host has an address */
	OUTCOME_CONNECT_FAILED,		/* TCP connect failed or timed out */
	OUTCOME_GREETING_REFUSED,	/* MX greeting was not 220 */
	OUTCOME_EHLO_REFUSED,		/* MX refused both EHLO and HELO */
	OUTCOME_STARTTLS_MISSING,	/* TLS required, not offered */
	OUTCOME_STARTTLS_REFUSED,	/* TLS required, STARTTLS not 220 */
	OUTCOME_TLS_FAILED,		/* handshake failed */
	OUTCOME_TLS_INJECTION,		/* bytes between 220 and handshake */
	OUTCOME_DANE_FAILED,		/* no usable TLSA record matched */
	OUTCOME_CERT_FAILED,		/* PKIX chain or name check failed */
	OUTCOME_POLICY_SKIP,		/* the policy excludes the MX host */
	OUTCOME_PROTOCOL,		/* MX broke reply syntax */
	OUTCOME_TIMEOUT,		/* MX did not answer in time */
	OUTCOME_LOST,			/* connection to MX lost */
	OUTCOME_SMTPUTF8_UNSUPPORTED,	/* RFC 6531: MX lacks SMTPUTF8 */
	OUTCOME_TOO_BIG,		/* message over limits.max_message_size */
	OUTCOME_OTHER_DOMAIN,		/* recipient for another next hop */
	OUTCOME_TOO_MANY_RCPTS,		/* over limits.max_recipients */
	OUTCOME_LOCAL_ERROR,		/* mxlock itself failed */
	OUTCOME_REMOTE_REPLY,		/* the MX's own reply, relayed */
};

struct outcome {
	enum outcome_kind kind;
	enum outcome_scope scope;
	bool permanent;
	int code;			/* reply code sent to the client */
	char enhanced[16];		/* "4.4.1" */
	char reason[32];		/* log word: "connect-failed" */
	char text[384];			/* reply text after the status code */
};

/*
 * Classifies a failure of kind; detail (may be NULL) is appended to the
 * reply text, e.g. the MX host name. Returns nothing: the kind table is
 * complete, so every kind yields an outcome.
 */
void outcome_set(struct outcome *o, enum outcome_kind kind, const char *detail);

/*
 * Classifies an MX's reply for relaying: code and enhanced status code
 * taken from the reply (one made up from the code class when absent),
 * text from its first line.
 */
void outcome_from_reply(struct outcome *o, const struct smtp_reply *r);

/*
 * Formats the outcome as one SMTP reply line with CRLF into out (size
 * outlen): "451 4.4.1 text". Returns the length.
 */
size_t outcome_format(const struct outcome *o, char *out, size_t outlen);

/* Returns "deferred" (4xx), "bounced" (5xx) or "sent" (2xx). */
const char *outcome_status(const struct outcome *o);

#endif
