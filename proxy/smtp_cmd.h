/*
 * Parser for SMTP commands from a client (RFC 5321 section 4.1). Works on
 * one complete line without its CRLF; line framing is the client session's
 * job. Paths and ESMTP parameters of MAIL and RCPT are split out.
 */
#ifndef SMTP_CMD_H
#define SMTP_CMD_H

#include <stddef.h>

/* RFC 5321 4.5.3.1.4: 512 octets, plus room for extension parameters. */
#define SMTP_CMD_LINE_MAX 512
#define SMTP_CMD_LINE_MAX_EXT (512 + 2048)
#define SMTP_CMD_PATH_MAX 256		/* RFC 5321 4.5.3.1.3 */
#define SMTP_CMD_PARAMS_MAX 16

enum smtp_verb {
	SMTP_VERB_UNKNOWN,
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_BDAT,
	SMTP_VERB_AUTH,
};

/* One ESMTP parameter: "SIZE=1000" gives keyword "SIZE", value "1000". */
struct smtp_param {
	char *keyword;
	char *value;		/* NULL when the parameter has no "=" */
};

struct smtp_cmd {
	enum smtp_verb verb;
	char *arg;		/* text after the verb and one space, or "" */
	/* MAIL and RCPT only: */
	char *path;		/* mailbox between the brackets, "" for <> */
	char *domain;		/* RCPT: the part after the last '@', else NULL */
	size_t param_count;
	struct smtp_param params[SMTP_CMD_PARAMS_MAX];
	char storage[SMTP_CMD_LINE_MAX_EXT + 1];
};

/*
 * Parses one command line (without CRLF) of length len into cmd. Returns
 * 0; BASE_EINVAL with the verb still set for a syntax error in the
 * arguments ("MAIL FROM:" missing, unbalanced brackets, a path over
 * SMTP_CMD_PATH_MAX, too many parameters); BASE_ETOOLONG for a line over
 * SMTP_CMD_LINE_MAX_EXT. An unknown verb is not an error: verb is
 * SMTP_VERB_UNKNOWN.
 */
int smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *cmd);

/* Finds a parameter by keyword, case-insensitively. Returns NULL if absent. */
const struct smtp_param *smtp_cmd_param(const struct smtp_cmd *cmd,
					const char *keyword);

#endif
