/*
 * SMTP command parser: see smtp_cmd.h. The line is copied into the
 * command's own storage and split there, so every pointer in struct
 * smtp_cmd points into that storage. Line limits count the CRLF that the
 * client session removed, as RFC 5321 section 4.5.3.1.4 does.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "base/dname.h"
#include "base/err.h"
#include "smtp_cmd.h"

#define CRLF_LEN 2

enum verb_args {
	ARGS_NONE,		/* "DATA": nothing may follow the verb */
	ARGS_OPTIONAL,		/* "NOOP [string]" */
	ARGS_REQUIRED,		/* "EHLO domain" */
	ARGS_PATH,		/* "MAIL FROM:<path>", "RCPT TO:<path>" */
};

struct verb_info {
	const char *name;
	enum smtp_verb verb;
	enum verb_args args;
};

/*
 * Argument rules from the grammar of RFC 5321 section 4.1.1 and, for
 * STARTTLS, RFC 3207 section 4, which allows no parameters.
 */
static const struct verb_info verbs[] = {
	{ "HELO", SMTP_VERB_HELO, ARGS_REQUIRED },
	{ "EHLO", SMTP_VERB_EHLO, ARGS_REQUIRED },
	{ "MAIL", SMTP_VERB_MAIL, ARGS_PATH },
	{ "RCPT", SMTP_VERB_RCPT, ARGS_PATH },
	{ "DATA", SMTP_VERB_DATA, ARGS_NONE },
	{ "RSET", SMTP_VERB_RSET, ARGS_NONE },
	{ "NOOP", SMTP_VERB_NOOP, ARGS_OPTIONAL },
	{ "QUIT", SMTP_VERB_QUIT, ARGS_NONE },
	{ "VRFY", SMTP_VERB_VRFY, ARGS_REQUIRED },
	{ "EXPN", SMTP_VERB_EXPN, ARGS_REQUIRED },
	{ "HELP", SMTP_VERB_HELP, ARGS_OPTIONAL },
	{ "STARTTLS", SMTP_VERB_STARTTLS, ARGS_NONE },
	{ "BDAT", SMTP_VERB_BDAT, ARGS_REQUIRED },
	{ "AUTH", SMTP_VERB_AUTH, ARGS_REQUIRED },
};

static const struct verb_info unknown_verb = {
	"", SMTP_VERB_UNKNOWN, ARGS_OPTIONAL
};

static const struct verb_info *find_verb(const char *s, size_t len)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strlen(verbs[i].name) == len &&
		    strncasecmp(verbs[i].name, s, len) == 0)
			return &verbs[i];
	}
	return &unknown_verb;
}

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/*
 * Checks an address literal such as "[192.0.2.1]" or "[IPv6:2001:db8::1]"
 * (RFC 5321 section 4.1.3). General address literals with other tags are
 * rejected because nothing could route to them.
 */
static bool address_literal_valid(const char *s)
{
	unsigned char addr[16];
	char inner[64];
	size_t len = strlen(s);

	if (len < 3 || s[0] != '[' || s[len - 1] != ']')
		return false;
	if (len - 2 >= sizeof(inner))
		return false;
	memcpy(inner, s + 1, len - 2);
	inner[len - 2] = '\0';

	if (strncasecmp(inner, "IPv6:", 5) == 0)
		return inet_pton(AF_INET6, inner + 5, addr) == 1;
	return inet_pton(AF_INET, inner, addr) == 1;
}

/*
 * Returns the index of the '>' that closes the path at s (s[0] is '<'), or
 * 0 when there is none or the path contains a blank, a control character or
 * a '<' outside quotes. Inside a quoted local part, '>' and '@' do not count.
 * Stores the index of the last '@' outside quotes, or 0, in *last_at.
 */
static size_t find_path_end(const char *s, size_t *last_at)
{
	bool quoted = false;

	*last_at = 0;
	for (size_t i = 1; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (quoted && c == '\\' && s[i + 1] != '\0') {
			i++;
			continue;
		}
		if (c == '"') {
			quoted = !quoted;
			continue;
		}
		if (quoted)
			continue;
		if (c == '>')
			return i;
		if (c <= ' ' || c == 0x7f || c == '<')
			return 0;
		if (c == '@')
			*last_at = i;
	}
	return 0;
}

/*
 * Drops a source route ("@a,@b:") from the start of a path, because RFC
 * 5321 section 4.1.1.3 requires servers to accept source routes and to
 * ignore them. Returns the mailbox, or NULL when the route has no ':'.
 */
static char *strip_source_route(char *path)
{
	char *colon;

	if (path[0] != '@')
		return path;
	colon = strchr(path, ':');
	if (colon == NULL)
		return NULL;
	return colon + 1;
}

/* Checks the mailbox of a forward-path and sets cmd->domain. */
static int check_forward_path(struct smtp_cmd *cmd, char *at)
{
	/* RFC 5321 section 4.1.1.3: "<Postmaster>" needs no domain. */
	if (at == NULL) {
		if (strcasecmp(cmd->path, "postmaster") != 0)
			return BASE_EINVAL;
		cmd->domain = NULL;
		return 0;
	}
	if (at <= cmd->path)
		return BASE_EINVAL;

	cmd->domain = at + 1;
	if (cmd->domain[0] == '[')
		return address_literal_valid(cmd->domain) ? 0 : BASE_EINVAL;
	/*
	 * XXX: a UTF-8 domain (RFC 6531) is rejected because it is not a host
	 * name. Accepting it needs a conversion to A-labels for routing.
	 */
	return base_dname_valid(cmd->domain) ? 0 : BASE_EINVAL;
}

/*
 * Splits "<path>" at s into cmd->path, and for RCPT into cmd->domain.
 * Returns the number of characters read, or a negative code.
 */
static int parse_path(struct smtp_cmd *cmd, char *s)
{
	size_t last_at;
	size_t end;
	char *at;

	if (s[0] != '<')
		return BASE_EINVAL;
	end = find_path_end(s, &last_at);
	if (end == 0)
		return BASE_EINVAL;
	/* RFC 5321 section 4.5.3.1.3 counts the brackets in the 256 octets. */
	if (end + 1 > SMTP_CMD_PATH_MAX)
		return BASE_EINVAL;

	s[end] = '\0';
	at = last_at != 0 ? s + last_at : NULL;
	cmd->path = strip_source_route(s + 1);
	if (cmd->path == NULL)
		return BASE_EINVAL;
	if (at != NULL && at < cmd->path)
		at = NULL;

	/* Only MAIL may use the null reverse-path "<>". */
	if (cmd->path[0] == '\0' && (cmd->verb != SMTP_VERB_MAIL || end != 1))
		return BASE_EINVAL;
	if (cmd->verb == SMTP_VERB_RCPT) {
		int rc = check_forward_path(cmd, at);

		if (rc < 0)
			return rc;
	}
	return (int)end + 1;
}

static bool param_value_char(char c)
{
	unsigned char u = (unsigned char)c;

	/*
	 * RFC 5321 section 4.1.2 allows printable ASCII except '=' and SP.
	 * RFC 6531 section 3.3 adds UTF-8 octets.
	 */
	return (u > ' ' && u < 0x7f && u != '=') || u >= 0x80;
}

/* Checks and splits one "keyword[=value]" parameter in place. */
static int parse_param(struct smtp_param *param, char *s)
{
	char *eq = strchr(s, '=');

	if (!is_alnum(s[0]))
		return BASE_EINVAL;
	for (char *p = s + 1; p != eq && *p != '\0'; p++) {
		if (!is_alnum(*p) && *p != '-')
			return BASE_EINVAL;
	}

	param->keyword = s;
	param->value = NULL;
	if (eq == NULL)
		return 0;

	*eq = '\0';
	param->value = eq + 1;
	if (param->value[0] == '\0')
		return BASE_EINVAL;
	for (char *p = param->value; *p != '\0'; p++) {
		if (!param_value_char(*p))
			return BASE_EINVAL;
	}
	return 0;
}

/* Splits the space-separated ESMTP parameters that follow a path. */
static int parse_params(struct smtp_cmd *cmd, char *s)
{
	char *save = NULL;
	char *word;

	if (s[0] != '\0' && s[0] != ' ')
		return BASE_EINVAL;

	for (word = strtok_r(s, " ", &save); word != NULL;
	     word = strtok_r(NULL, " ", &save)) {
		int rc;

		if (cmd->param_count == SMTP_CMD_PARAMS_MAX)
			return BASE_EINVAL;
		rc = parse_param(&cmd->params[cmd->param_count], word);
		if (rc < 0)
			return rc;
		cmd->param_count++;
	}
	return 0;
}

/*
 * Parses "FROM:<path> params" or "TO:<path> params" (RFC 5321 section
 * 4.1.2). One space after the colon is accepted because many clients send
 * "MAIL FROM: <a@b>".
 */
static int parse_path_args(struct smtp_cmd *cmd)
{
	const char *prefix = cmd->verb == SMTP_VERB_MAIL ? "FROM:" : "TO:";
	size_t prefix_len = strlen(prefix);
	char *s = cmd->arg;
	int rc;

	if (strncasecmp(s, prefix, prefix_len) != 0)
		return BASE_EINVAL;
	s += prefix_len;
	if (s[0] == ' ')
		s++;

	rc = parse_path(cmd, s);
	if (rc < 0)
		return rc;
	return parse_params(cmd, s + rc);
}

static int check_args(struct smtp_cmd *cmd, enum verb_args args)
{
	switch (args) {
	case ARGS_NONE:
		return cmd->arg[0] == '\0' ? 0 : BASE_EINVAL;
	case ARGS_OPTIONAL:
		return 0;
	case ARGS_REQUIRED:
		return cmd->arg[0] != '\0' ? 0 : BASE_EINVAL;
	case ARGS_PATH:
		return parse_path_args(cmd);
	}
	return BASE_EINVAL;
}

static void reset_cmd(struct smtp_cmd *cmd)
{
	cmd->verb = SMTP_VERB_UNKNOWN;
	cmd->storage[0] = '\0';
	cmd->arg = cmd->storage;
	cmd->path = NULL;
	cmd->domain = NULL;
	cmd->param_count = 0;
}

int smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *cmd)
{
	const struct verb_info *info;
	const char *space;
	size_t trimmed = len;
	size_t verb_len;
	size_t max;

	reset_cmd(cmd);

	/* Trailing blanks carry no meaning, so "DATA " is plain "DATA". */
	while (trimmed > 0 && (line[trimmed - 1] == ' ' ||
			       line[trimmed - 1] == '\t'))
		trimmed--;
	space = memchr(line, ' ', trimmed);
	verb_len = space != NULL ? (size_t)(space - line) : trimmed;
	info = find_verb(line, verb_len);
	cmd->verb = info->verb;

	/* RFC 5321 section 4.5.3.1.4 lets extensions lengthen MAIL and RCPT. */
	max = info->args == ARGS_PATH ? SMTP_CMD_LINE_MAX_EXT : SMTP_CMD_LINE_MAX;
	if (len > max - CRLF_LEN)
		return BASE_ETOOLONG;
	if (memchr(line, '\0', len) != NULL)
		return BASE_EINVAL;

	memcpy(cmd->storage, line, trimmed);
	cmd->storage[trimmed] = '\0';
	cmd->storage[verb_len] = '\0';
	cmd->arg = cmd->storage + (verb_len < trimmed ? verb_len + 1 : trimmed);

	return check_args(cmd, info->args);
}

const struct smtp_param *smtp_cmd_param(const struct smtp_cmd *cmd,
					const char *keyword)
{
	for (size_t i = 0; i < cmd->param_count; i++) {
		if (strcasecmp(cmd->params[i].keyword, keyword) == 0)
			return &cmd->params[i];
	}
	return NULL;
}
