/*
 * Unit tests for the SMTP command parser. Every table row runs as its own
 * cmocka test named after the row.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rows.h"

#include "base/err.h"
#include "smtp_cmd.h"

#define MAX_PARAMS 4
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

struct verb_case {
	const char *name;
	const char *line;
	enum smtp_verb verb;
	int expected;
	const char *arg;	/* checked when expected is 0 */
};

struct expected_param {
	const char *keyword;
	const char *value;
};

struct path_case {
	const char *name;
	const char *line;
	int expected;
	const char *path;	/* the fields below are checked on success */
	const char *domain;
	size_t param_count;
	struct expected_param params[MAX_PARAMS];
};

static const struct verb_case verb_cases[] = {
	{ "helo", "HELO client.example.test", SMTP_VERB_HELO, 0,
	  "client.example.test" },
	{ "ehlo_lower_case", "ehlo client.example.test", SMTP_VERB_EHLO, 0,
	  "client.example.test" },
	{ "ehlo_mixed_case", "EhLo client.example.test", SMTP_VERB_EHLO, 0,
	  "client.example.test" },
	{ "ehlo_without_domain", "EHLO", SMTP_VERB_EHLO, BASE_EINVAL, NULL },
	{ "data", "DATA", SMTP_VERB_DATA, 0, "" },
	{ "data_trailing_spaces", "DATA   ", SMTP_VERB_DATA, 0, "" },
	{ "data_trailing_tab", "DATA\t", SMTP_VERB_DATA, 0, "" },
	{ "data_with_argument", "DATA x", SMTP_VERB_DATA, BASE_EINVAL, NULL },
	{ "rset", "rset", SMTP_VERB_RSET, 0, "" },
	{ "rset_with_argument", "RSET now", SMTP_VERB_RSET, BASE_EINVAL,
	  NULL },
	{ "quit", "QUIT", SMTP_VERB_QUIT, 0, "" },
	{ "quit_trailing_space", "QUIT ", SMTP_VERB_QUIT, 0, "" },
	{ "quit_with_argument", "QUIT bye", SMTP_VERB_QUIT, BASE_EINVAL,
	  NULL },
	{ "starttls", "STARTTLS", SMTP_VERB_STARTTLS, 0, "" },
	{ "starttls_with_argument", "STARTTLS x", SMTP_VERB_STARTTLS,
	  BASE_EINVAL, NULL },
	{ "noop", "NOOP", SMTP_VERB_NOOP, 0, "" },
	{ "noop_with_argument", "NOOP hello there", SMTP_VERB_NOOP, 0,
	  "hello there" },
	{ "help_with_argument", "HELP MAIL", SMTP_VERB_HELP, 0, "MAIL" },
	{ "vrfy", "VRFY user", SMTP_VERB_VRFY, 0, "user" },
	{ "vrfy_without_argument", "VRFY", SMTP_VERB_VRFY, BASE_EINVAL, NULL },
	{ "expn", "EXPN list", SMTP_VERB_EXPN, 0, "list" },
	{ "bdat", "BDAT 100 LAST", SMTP_VERB_BDAT, 0, "100 LAST" },
	{ "auth", "AUTH PLAIN", SMTP_VERB_AUTH, 0, "PLAIN" },
	{ "unknown_verb", "XYZZY magic", SMTP_VERB_UNKNOWN, 0, "magic" },
	{ "verb_prefix_unknown", "DATAX", SMTP_VERB_UNKNOWN, 0, "" },
	{ "empty_line", "", SMTP_VERB_UNKNOWN, 0, "" },
	{ "mail_without_argument", "MAIL", SMTP_VERB_MAIL, BASE_EINVAL, NULL },
	{ "rcpt_without_argument", "RCPT", SMTP_VERB_RCPT, BASE_EINVAL, NULL },
};

static const struct path_case path_cases[] = {
	{ "mail_plain", "MAIL FROM:<a@example.test>", 0, "a@example.test",
	  NULL, 0, { { NULL } } },
	{ "mail_lower_case", "mail from:<a@example.test>", 0,
	  "a@example.test", NULL, 0, { { NULL } } },
	{ "mail_space_after_colon", "MAIL FROM: <a@example.test>", 0,
	  "a@example.test", NULL, 0, { { NULL } } },
	{ "mail_two_spaces_after_colon", "MAIL FROM:  <a@example.test>",
	  BASE_EINVAL, NULL, NULL, 0, { { NULL } } },
	{ "mail_null_reverse_path", "MAIL FROM:<>", 0, "", NULL, 0,
	  { { NULL } } },
	{ "mail_null_path_with_params", "MAIL FROM:<> SIZE=10", 0, "", NULL,
	  1, { { "SIZE", "10" } } },
	{ "mail_params", "MAIL FROM:<a@example.test> SIZE=1000 BODY=8BITMIME",
	  0, "a@example.test", NULL, 2,
	  { { "SIZE", "1000" }, { "BODY", "8BITMIME" } } },
	{ "mail_param_without_value", "MAIL FROM:<a@example.test> SMTPUTF8",
	  0, "a@example.test", NULL, 1, { { "SMTPUTF8", NULL } } },
	{ "mail_params_extra_spaces",
	  "MAIL FROM:<a@example.test>  SIZE=1   SMTPUTF8", 0,
	  "a@example.test", NULL, 2, { { "SIZE", "1" }, { "SMTPUTF8", NULL } } },
	{ "mail_param_utf8_value", "MAIL FROM:<a@example.test> X-A=\xc3\xa9",
	  0, "a@example.test", NULL, 1, { { "X-A", "\xc3\xa9" } } },
	{ "mail_param_empty_value", "MAIL FROM:<a@example.test> SIZE=",
	  BASE_EINVAL, NULL, NULL, 0, { { NULL } } },
	{ "mail_param_bad_keyword", "MAIL FROM:<a@example.test> SI_ZE=1",
	  BASE_EINVAL, NULL, NULL, 0, { { NULL } } },
	{ "mail_param_keyword_hyphen_first", "MAIL FROM:<a@example.test> -X",
	  BASE_EINVAL, NULL, NULL, 0, { { NULL } } },
	{ "mail_param_value_with_equals",
	  "MAIL FROM:<a@example.test> ENVID=a=b", BASE_EINVAL, NULL, NULL, 0,
	  { { NULL } } },
	{ "mail_param_value_control_char",
	  "MAIL FROM:<a@example.test> ENVID=a\x01", BASE_EINVAL, NULL, NULL,
	  0, { { NULL } } },
	{ "mail_text_after_bracket", "MAIL FROM:<a@example.test>SIZE=1",
	  BASE_EINVAL, NULL, NULL, 0, { { NULL } } },
	{ "mail_missing_brackets", "MAIL FROM:a@example.test", BASE_EINVAL,
	  NULL, NULL, 0, { { NULL } } },
	{ "mail_missing_close_bracket", "MAIL FROM:<a@example.test",
	  BASE_EINVAL, NULL, NULL, 0, { { NULL } } },
	{ "mail_missing_from", "MAIL <a@example.test>", BASE_EINVAL, NULL,
	  NULL, 0, { { NULL } } },
	{ "mail_to_instead_of_from", "MAIL TO:<a@example.test>", BASE_EINVAL,
	  NULL, NULL, 0, { { NULL } } },
	{ "mail_space_in_path", "MAIL FROM:<a b@example.test>", BASE_EINVAL,
	  NULL, NULL, 0, { { NULL } } },
	{ "mail_nested_bracket", "MAIL FROM:<<a@example.test>>", BASE_EINVAL,
	  NULL, NULL, 0, { { NULL } } },
	{ "mail_source_route", "MAIL FROM:<@relay.example.test:a@example.test>",
	  0, "a@example.test", NULL, 0, { { NULL } } },
	{ "mail_route_only", "MAIL FROM:<@relay.example.test:>", BASE_EINVAL,
	  NULL, NULL, 0, { { NULL } } },
	{ "mail_route_without_colon", "MAIL FROM:<@relay.example.test>",
	  BASE_EINVAL, NULL, NULL, 0, { { NULL } } },
	{ "rcpt_plain", "RCPT TO:<b@example.test>", 0, "b@example.test",
	  "example.test", 0, { { NULL } } },
	{ "rcpt_lower_case", "rcpt to:<b@Example.Test>", 0, "b@Example.Test",
	  "Example.Test", 0, { { NULL } } },
	{ "rcpt_space_after_colon", "RCPT TO: <b@example.test>", 0,
	  "b@example.test", "example.test", 0, { { NULL } } },
	{ "rcpt_params", "RCPT TO:<b@example.test> NOTIFY=NEVER", 0,
	  "b@example.test", "example.test", 1, { { "NOTIFY", "NEVER" } } },
	{ "rcpt_null_path", "RCPT TO:<>", BASE_EINVAL, NULL, NULL, 0,
	  { { NULL } } },
	{ "rcpt_missing_brackets", "RCPT TO:b@example.test", BASE_EINVAL,
	  NULL, NULL, 0, { { NULL } } },
	{ "rcpt_postmaster", "RCPT TO:<postmaster>", 0, "postmaster", NULL, 0,
	  { { NULL } } },
	{ "rcpt_postmaster_upper_case", "RCPT TO:<Postmaster>", 0,
	  "Postmaster", NULL, 0, { { NULL } } },
	{ "rcpt_postmaster_with_domain", "RCPT TO:<postmaster@example.test>",
	  0, "postmaster@example.test", "example.test", 0, { { NULL } } },
	{ "rcpt_user_without_domain", "RCPT TO:<user>", BASE_EINVAL, NULL,
	  NULL, 0, { { NULL } } },
	{ "rcpt_empty_local_part", "RCPT TO:<@example.test>", BASE_EINVAL,
	  NULL, NULL, 0, { { NULL } } },
	{ "rcpt_empty_domain", "RCPT TO:<b@>", BASE_EINVAL, NULL, NULL, 0,
	  { { NULL } } },
	{ "rcpt_invalid_domain", "RCPT TO:<b@exa..mple>", BASE_EINVAL, NULL,
	  NULL, 0, { { NULL } } },
	{ "rcpt_domain_bad_char", "RCPT TO:<b@exa!mple.test>", BASE_EINVAL,
	  NULL, NULL, 0, { { NULL } } },
	{ "rcpt_quoted_local_with_bracket",
	  "RCPT TO:<\"a>b\"@example.test>", 0, "\"a>b\"@example.test",
	  "example.test", 0, { { NULL } } },
	{ "rcpt_quoted_local_with_at", "RCPT TO:<\"a@b\"@example.test>", 0,
	  "\"a@b\"@example.test", "example.test", 0, { { NULL } } },
	{ "rcpt_quoted_local_with_space", "RCPT TO:<\"a b\"@example.test>", 0,
	  "\"a b\"@example.test", "example.test", 0, { { NULL } } },
	{ "rcpt_quoted_escaped_quote", "RCPT TO:<\"a\\\">\"@example.test>", 0,
	  "\"a\\\">\"@example.test", "example.test", 0, { { NULL } } },
	{ "rcpt_quoted_at_without_domain", "RCPT TO:<\"a@b\">", BASE_EINVAL,
	  NULL, NULL, 0, { { NULL } } },
	{ "rcpt_unterminated_quote", "RCPT TO:<\"a>@example.test>",
	  BASE_EINVAL, NULL, NULL, 0, { { NULL } } },
	{ "rcpt_source_route",
	  "RCPT TO:<@a.example.test,@b.example.test:c@example.test>", 0,
	  "c@example.test", "example.test", 0, { { NULL } } },
	{ "rcpt_route_to_postmaster", "RCPT TO:<@a.example.test:postmaster>",
	  0, "postmaster", NULL, 0, { { NULL } } },
	{ "rcpt_ipv4_literal", "RCPT TO:<b@[127.0.0.1]>", 0, "b@[127.0.0.1]",
	  "[127.0.0.1]", 0, { { NULL } } },
	{ "rcpt_ipv6_literal", "RCPT TO:<b@[IPv6:2001:db8::1]>", 0,
	  "b@[IPv6:2001:db8::1]", "[IPv6:2001:db8::1]", 0, { { NULL } } },
	{ "rcpt_bad_ipv4_literal", "RCPT TO:<b@[127.0.0.256]>", BASE_EINVAL,
	  NULL, NULL, 0, { { NULL } } },
	{ "rcpt_ipv6_literal_without_tag", "RCPT TO:<b@[2001:db8::1]>",
	  BASE_EINVAL, NULL, NULL, 0, { { NULL } } },
	{ "rcpt_unclosed_literal", "RCPT TO:<b@[127.0.0.1>", BASE_EINVAL,
	  NULL, NULL, 0, { { NULL } } },
	{ "rcpt_from_instead_of_to", "RCPT FROM:<b@example.test>",
	  BASE_EINVAL, NULL, NULL, 0, { { NULL } } },
};

static void test_verb(void **state)
{
	const struct verb_case *c = *state;
	struct smtp_cmd command;
	struct smtp_cmd *cmd = &command;

	assert_int_equal(smtp_cmd_parse(c->line, strlen(c->line), cmd),
			 c->expected);
	assert_int_equal(cmd->verb, c->verb);
	if (c->expected == 0)
		assert_string_equal(cmd->arg, c->arg);
}

static void check_params(const struct path_case *c, const struct smtp_cmd *cmd)
{
	assert_int_equal(cmd->param_count, c->param_count);
	for (size_t i = 0; i < c->param_count; i++) {
		assert_string_equal(cmd->params[i].keyword,
				    c->params[i].keyword);
		if (c->params[i].value == NULL)
			assert_null(cmd->params[i].value);
		else
			assert_string_equal(cmd->params[i].value,
					    c->params[i].value);
	}
}

static void test_path(void **state)
{
	const struct path_case *c = *state;
	struct smtp_cmd command;
	struct smtp_cmd *cmd = &command;

	assert_int_equal(smtp_cmd_parse(c->line, strlen(c->line), cmd),
			 c->expected);
	if (c->expected == 0) {
		assert_string_equal(cmd->path, c->path);
		if (c->domain == NULL)
			assert_null(cmd->domain);
		else
			assert_string_equal(cmd->domain, c->domain);
		check_params(c, cmd);
	}
}

#define LINE_BUF_SIZE (SMTP_CMD_LINE_MAX_EXT + 1)

/* Writes "<prefix>xxx...<suffix>" of exactly len characters into line. */
static char *make_line(char *line, const char *prefix, const char *suffix,
		       size_t len)
{
	size_t prefix_len = strlen(prefix);
	size_t suffix_len = strlen(suffix);

	assert_true(len < LINE_BUF_SIZE);
	assert_true(len >= prefix_len + suffix_len);
	memset(line, 'x', len);
	memcpy(line, prefix, prefix_len);
	memcpy(line + len - suffix_len, suffix, suffix_len);
	line[len] = '\0';
	return line;
}

/* Parses line, stores the verb in *verb and returns the parse result. */
static int parse_line(const char *line, size_t len, enum smtp_verb *verb)
{
	struct smtp_cmd cmd;
	int rc;

	rc = smtp_cmd_parse(line, len, &cmd);
	*verb = cmd.verb;
	return rc;
}

/* The limits count the CRLF that the caller removed from the line. */
static void test_noop_at_line_limit(void **state)
{
	char buf[LINE_BUF_SIZE];
	char *line = make_line(buf, "NOOP ", "", SMTP_CMD_LINE_MAX - 2);
	enum smtp_verb verb;

	assert_int_equal(parse_line(line, strlen(line), &verb), 0);
	assert_int_equal(verb, SMTP_VERB_NOOP);
}

static void test_noop_over_line_limit(void **state)
{
	char buf[LINE_BUF_SIZE];
	char *line = make_line(buf, "NOOP ", "", SMTP_CMD_LINE_MAX - 1);
	enum smtp_verb verb;

	assert_int_equal(parse_line(line, strlen(line), &verb), BASE_ETOOLONG);
	assert_int_equal(verb, SMTP_VERB_NOOP);
}

static void test_unknown_over_line_limit(void **state)
{
	char buf[LINE_BUF_SIZE];
	char *line = make_line(buf, "XYZZY ", "", SMTP_CMD_LINE_MAX - 1);
	enum smtp_verb verb;

	assert_int_equal(parse_line(line, strlen(line), &verb), BASE_ETOOLONG);
	assert_int_equal(verb, SMTP_VERB_UNKNOWN);
}

static void test_mail_over_plain_limit_allowed(void **state)
{
	char buf[LINE_BUF_SIZE];
	char *line = make_line(buf, "MAIL FROM:<a@example.test> X-LONG=", "",
			       SMTP_CMD_LINE_MAX + 100);
	enum smtp_verb verb;

	assert_int_equal(parse_line(line, strlen(line), &verb), 0);
	assert_int_equal(verb, SMTP_VERB_MAIL);
}

static void test_rcpt_at_extended_limit(void **state)
{
	char buf[LINE_BUF_SIZE];
	char *line = make_line(buf, "RCPT TO:<b@example.test> X-LONG=", "",
			       SMTP_CMD_LINE_MAX_EXT - 2);
	enum smtp_verb verb;

	assert_int_equal(parse_line(line, strlen(line), &verb), 0);
	assert_int_equal(verb, SMTP_VERB_RCPT);
}

static void test_rcpt_over_extended_limit(void **state)
{
	char buf[LINE_BUF_SIZE];
	char *line = make_line(buf, "RCPT TO:<b@example.test> X-LONG=", "",
			       SMTP_CMD_LINE_MAX_EXT - 1);
	enum smtp_verb verb;

	assert_int_equal(parse_line(line, strlen(line), &verb), BASE_ETOOLONG);
	assert_int_equal(verb, SMTP_VERB_RCPT);
}

/* RFC 5321 section 4.5.3.1.3 counts the brackets in the path limit. */
static void test_path_at_limit(void **state)
{
	char buf[LINE_BUF_SIZE];
	char *line = make_line(buf, "RCPT TO:<", "@example.test>",
			       strlen("RCPT TO:") + SMTP_CMD_PATH_MAX);
	enum smtp_verb verb;

	assert_int_equal(parse_line(line, strlen(line), &verb), 0);
}

static void test_path_over_limit(void **state)
{
	char buf[LINE_BUF_SIZE];
	char *line = make_line(buf, "RCPT TO:<", "@example.test>",
			       strlen("RCPT TO:") + SMTP_CMD_PATH_MAX + 1);
	enum smtp_verb verb;

	assert_int_equal(parse_line(line, strlen(line), &verb), BASE_EINVAL);
	assert_int_equal(verb, SMTP_VERB_RCPT);
}

static void test_params_at_limit(void **state)
{
	char line[512] = "MAIL FROM:<a@example.test>";
	enum smtp_verb verb;

	for (int i = 0; i < SMTP_CMD_PARAMS_MAX; i++)
		snprintf(line + strlen(line), sizeof(line) - strlen(line),
			 " P%d=%d", i, i);
	assert_int_equal(parse_line(line, strlen(line), &verb), 0);
}

static void test_params_over_limit(void **state)
{
	char line[512] = "MAIL FROM:<a@example.test>";
	enum smtp_verb verb;

	for (int i = 0; i <= SMTP_CMD_PARAMS_MAX; i++)
		snprintf(line + strlen(line), sizeof(line) - strlen(line),
			 " P%d=%d", i, i);
	assert_int_equal(parse_line(line, strlen(line), &verb), BASE_EINVAL);
	assert_int_equal(verb, SMTP_VERB_MAIL);
}

static void test_nul_byte_rejected(void **state)
{
	static const char line[] = "NOOP a\0b";
	enum smtp_verb verb;

	assert_int_equal(parse_line(line, sizeof(line) - 1, &verb),
			 BASE_EINVAL);
	assert_int_equal(verb, SMTP_VERB_NOOP);
}

static void test_nul_byte_in_path_rejected(void **state)
{
	static const char line[] = "RCPT TO:<b@example.test>\0 X=1";
	enum smtp_verb verb;

	assert_int_equal(parse_line(line, sizeof(line) - 1, &verb),
			 BASE_EINVAL);
}

/* The parser reads exactly len bytes, even if the line is not terminated. */
static void test_reads_only_len_bytes(void **state)
{
	const char *line = "QUIT extra";
	enum smtp_verb verb;

	assert_int_equal(parse_line(line, 4, &verb), 0);
	assert_int_equal(verb, SMTP_VERB_QUIT);
}

static void test_param_lookup_ignores_case(void **state)
{
	const char *line = "MAIL FROM:<a@example.test> SIZE=42 smtputf8";
	struct smtp_cmd command;
	struct smtp_cmd *cmd = &command;
	const struct smtp_param *param;

	assert_int_equal(smtp_cmd_parse(line, strlen(line), cmd), 0);

	param = smtp_cmd_param(cmd, "size");
	assert_non_null(param);
	assert_string_equal(param->value, "42");
	param = smtp_cmd_param(cmd, "SMTPUTF8");
	assert_non_null(param);
	assert_null(param->value);
	assert_null(smtp_cmd_param(cmd, "BODY"));
}

/* A parse must not keep parameters or a path from the previous command. */
static void test_reused_cmd_is_reset(void **state)
{
	const char *mail = "MAIL FROM:<a@example.test> SIZE=42";
	struct smtp_cmd command;
	struct smtp_cmd *cmd = &command;

	assert_int_equal(smtp_cmd_parse(mail, strlen(mail), cmd), 0);
	assert_int_equal(smtp_cmd_parse("DATA", 4, cmd), 0);
	assert_int_equal(cmd->param_count, 0);
	assert_null(cmd->path);
	assert_null(cmd->domain);
	assert_null(smtp_cmd_param(cmd, "SIZE"));
}

static const struct CMUnitTest fixed_tests[] = {
	cmocka_unit_test(test_noop_at_line_limit),
	cmocka_unit_test(test_noop_over_line_limit),
	cmocka_unit_test(test_unknown_over_line_limit),
	cmocka_unit_test(test_mail_over_plain_limit_allowed),
	cmocka_unit_test(test_rcpt_at_extended_limit),
	cmocka_unit_test(test_rcpt_over_extended_limit),
	cmocka_unit_test(test_path_at_limit),
	cmocka_unit_test(test_path_over_limit),
	cmocka_unit_test(test_params_at_limit),
	cmocka_unit_test(test_params_over_limit),
	cmocka_unit_test(test_nul_byte_rejected),
	cmocka_unit_test(test_nul_byte_in_path_rejected),
	cmocka_unit_test(test_reads_only_len_bytes),
	cmocka_unit_test(test_param_lookup_ignores_case),
	cmocka_unit_test(test_reused_cmd_is_reset),
};

int main(void)
{
	size_t max = COUNT(verb_cases) + COUNT(path_cases) + COUNT(fixed_tests);
	struct CMUnitTest *tests = calloc(max, sizeof(*tests));
	size_t n = 0;
	int failed;

	assert_non_null(tests);
	add_rows(tests, &n, "cmd_verb", test_verb, verb_cases,
		 sizeof(verb_cases[0]), COUNT(verb_cases));
	add_rows(tests, &n, "cmd_path", test_path, path_cases,
		 sizeof(path_cases[0]), COUNT(path_cases));
	for (size_t i = 0; i < COUNT(fixed_tests); i++)
		tests[n++] = fixed_tests[i];

	failed = _cmocka_run_group_tests("smtp_cmd", tests, n, NULL, NULL);
	for (size_t i = 0; i < n - COUNT(fixed_tests); i++)
		free((char *)tests[i].name);
	free(tests);
	return failed;
}
