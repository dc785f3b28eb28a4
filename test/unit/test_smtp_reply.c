/*
 * Unit tests for the incremental SMTP reply parser. Every table row runs
 * as its own cmocka test named after the row. Valid replies are also fed
 * one byte at a time and split at every offset, and must parse the same.
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
#include "smtp_reply.h"

#define MAX_LINES 4
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

struct valid_case {
	const char *name;
	const char *input;
	int code;
	size_t line_count;
	const char *lines[MAX_LINES];
	bool bare_lf;
};

struct error_case {
	const char *name;
	const char *input;
	size_t len;		/* 0: strlen(input) */
	int expected;
};

struct enhanced_case {
	const char *name;
	const char *input;
	const char *expected;	/* NULL when no enhanced status code */
};

static const struct valid_case valid_cases[] = {
	{ "single_line_crlf", "250 OK\r\n", 250, 1, { "OK" }, false },
	{ "single_line_bare_lf", "250 OK\n", 250, 1, { "OK" }, true },
	{ "code_only_line", "250\r\n", 250, 1, { "" }, false },
	{ "code_and_space_only", "354 \r\n", 354, 1, { "" }, false },
	{ "multi_line_crlf",
	  "250-mx.example.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n",
	  250, 3, { "mx.example.test", "PIPELINING", "STARTTLS" }, false },
	{ "multi_line_mixed_line_ends",
	  "250-mx.example.test\r\n250-SIZE 1000\n250 8BITMIME\r\n",
	  250, 3, { "mx.example.test", "SIZE 1000", "8BITMIME" }, true },
	{ "empty_continuation_text", "220-\r\n220 ready\r\n",
	  220, 2, { "", "ready" }, false },
	{ "lone_cr_kept_as_text", "250 a\rb\r\n", 250, 1, { "a\rb" }, false },
	{ "double_cr_keeps_one", "250 ok\r\r\n", 250, 1, { "ok\r" }, false },
	{ "highest_code", "559 no\r\n", 559, 1, { "no" }, false },
	{ "lowest_code", "200 yes\r\n", 200, 1, { "yes" }, false },
	{ "text_with_spaces_kept", "421 4.3.2  closing  now\r\n",
	  421, 1, { "4.3.2  closing  now" }, false },
};

static const struct error_case error_cases[] = {
	{ "empty_line", "\r\n", 0, BASE_EPROTO },
	{ "short_code", "25\r\n", 0, BASE_EPROTO },
	{ "letter_in_code", "2x0 OK\r\n", 0, BASE_EPROTO },
	{ "first_digit_one", "150 OK\r\n", 0, BASE_EPROTO },
	{ "first_digit_six", "650 OK\r\n", 0, BASE_EPROTO },
	{ "second_digit_six", "260 OK\r\n", 0, BASE_EPROTO },
	{ "bad_separator", "250_OK\r\n", 0, BASE_EPROTO },
	{ "tab_separator", "250\tOK\r\n", 0, BASE_EPROTO },
	{ "code_change_in_reply", "250-first\r\n251 second\r\n", 0, BASE_EPROTO },
	{ "nul_in_text", "250 O\0K\r\n",
	  sizeof("250 O\0K\r\n") - 1, BASE_EPROTO },
	{ "leading_space", " 250 OK\r\n", 0, BASE_EPROTO },
};

static const struct enhanced_case enhanced_cases[] = {
	{ "enhanced_simple", "550 5.1.1 no such user\r\n", "5.1.1" },
	{ "enhanced_three_digit_parts", "451 4.123.456 later\r\n",
	  "4.123.456" },
	{ "enhanced_code_only_text", "250 2.0.0\r\n", "2.0.0" },
	{ "enhanced_class_two", "250 2.1.5 ok\r\n", "2.1.5" },
	{ "enhanced_absent", "250 OK\r\n", NULL },
	{ "enhanced_class_three", "354 3.0.0 go\r\n", NULL },
	{ "enhanced_class_one", "250 1.0.0 ok\r\n", NULL },
	{ "enhanced_subject_four_digits", "550 5.1234.1 x\r\n", NULL },
	{ "enhanced_detail_four_digits", "550 5.1.1234 x\r\n", NULL },
	{ "enhanced_missing_detail", "550 5.1. x\r\n", NULL },
	{ "enhanced_missing_subject", "550 5..1 x\r\n", NULL },
	{ "enhanced_followed_by_letter", "550 5.1.1x user\r\n", NULL },
	{ "enhanced_not_at_start", "550 user 5.1.1\r\n", NULL },
	{ "enhanced_empty_text", "550\r\n", NULL },
	{ "enhanced_from_first_line_only",
	  "550-no code here\r\n550 5.1.1 user\r\n", NULL },
};

static size_t error_input_len(const struct error_case *c)
{
	return c->len != 0 ? c->len : strlen(c->input);
}

/*
 * Feeds input in chunks of at most chunk bytes (0: all at once), as a
 * network read would deliver it. Returns the last result and stores the
 * number of bytes consumed in *consumed.
 */
static int feed(struct smtp_reply_parser *p, const char *input, size_t len,
		size_t chunk, size_t *consumed, const struct smtp_reply **reply)
{
	size_t pos = 0;
	int rc = 0;

	while (pos < len) {
		size_t n = chunk == 0 || len - pos < chunk ? len - pos : chunk;
		size_t used = 0;

		rc = smtp_reply_parse(p, input + pos, n, &used, reply);
		pos += used;
		if (rc != 0)
			break;
		assert_int_equal(used, n);
	}
	*consumed = pos;
	return rc;
}

/* Feeds input split once at offset split. */
static int feed_split(struct smtp_reply_parser *p, const char *input,
		      size_t len, size_t split,
		      const struct smtp_reply **reply)
{
	size_t used = 0;
	int rc;

	rc = smtp_reply_parse(p, input, split, &used, reply);
	if (rc != 0)
		return rc;
	assert_int_equal(used, split);
	rc = smtp_reply_parse(p, input + split, len - split, &used, reply);
	assert_int_equal(used, len - split);
	return rc;
}

static void check_reply(const struct valid_case *c,
			const struct smtp_reply *r)
{
	assert_int_equal(r->code, c->code);
	assert_int_equal(r->line_count, c->line_count);
	for (size_t i = 0; i < c->line_count; i++)
		assert_string_equal(r->lines[i], c->lines[i]);
	assert_int_equal(r->bare_lf, c->bare_lf);
}

static void test_valid_whole(void **state)
{
	const struct valid_case *c = *state;
	const struct smtp_reply *r = NULL;
	struct smtp_reply_parser p;
	size_t used = 0;

	smtp_reply_parser_init(&p);
	assert_int_equal(feed(&p, c->input, strlen(c->input), 0, &used, &r), 1);
	assert_int_equal(used, strlen(c->input));
	check_reply(c, r);
	assert_false(smtp_reply_parser_pending(&p));
	smtp_reply_parser_free(&p);
}

static void test_valid_byte_by_byte(void **state)
{
	const struct valid_case *c = *state;
	const struct smtp_reply *r = NULL;
	struct smtp_reply_parser p;
	size_t used = 0;

	smtp_reply_parser_init(&p);
	assert_int_equal(feed(&p, c->input, strlen(c->input), 1, &used, &r), 1);
	assert_int_equal(used, strlen(c->input));
	check_reply(c, r);
	smtp_reply_parser_free(&p);
}

static void test_valid_every_split(void **state)
{
	const struct valid_case *c = *state;
	size_t len = strlen(c->input);

	for (size_t split = 0; split <= len; split++) {
		const struct smtp_reply *r = NULL;
		struct smtp_reply_parser p;

		smtp_reply_parser_init(&p);
		assert_int_equal(feed_split(&p, c->input, len, split, &r), 1);
		check_reply(c, r);
		smtp_reply_parser_free(&p);
	}
}

static void test_error(void **state)
{
	const struct error_case *c = *state;
	const struct smtp_reply *r = NULL;
	struct smtp_reply_parser p;
	size_t used = 0;

	smtp_reply_parser_init(&p);
	assert_int_equal(feed(&p, c->input, error_input_len(c), 0, &used, &r),
			 c->expected);
	smtp_reply_parser_free(&p);
}

static void test_error_byte_by_byte(void **state)
{
	const struct error_case *c = *state;
	const struct smtp_reply *r = NULL;
	struct smtp_reply_parser p;
	size_t used = 0;

	smtp_reply_parser_init(&p);
	assert_int_equal(feed(&p, c->input, error_input_len(c), 1, &used, &r),
			 c->expected);
	smtp_reply_parser_free(&p);
}

static void test_enhanced(void **state)
{
	const struct enhanced_case *c = *state;
	const struct smtp_reply *r = NULL;
	struct smtp_reply_parser p;
	char out[16];
	size_t used = 0;

	smtp_reply_parser_init(&p);
	assert_int_equal(feed(&p, c->input, strlen(c->input), 0, &used, &r), 1);
	if (c->expected == NULL) {
		assert_false(smtp_reply_enhanced(r, out, sizeof(out)));
	} else {
		assert_true(smtp_reply_enhanced(r, out, sizeof(out)));
		assert_string_equal(out, c->expected);
	}
	smtp_reply_parser_free(&p);
}

static void test_enhanced_output_too_small(void **state)
{
	const char *input = "550 5.1.1 no such user\r\n";
	const struct smtp_reply *r = NULL;
	struct smtp_reply_parser p;
	char out[sizeof("5.1.1")];
	size_t used = 0;

	smtp_reply_parser_init(&p);
	assert_int_equal(feed(&p, input, strlen(input), 0, &used, &r), 1);
	assert_false(smtp_reply_enhanced(r, out, sizeof(out) - 1));
	assert_true(smtp_reply_enhanced(r, out, sizeof(out)));
	assert_string_equal(out, "5.1.1");
	smtp_reply_parser_free(&p);
}

static void test_bytes_after_reply_left(void **state)
{
	const char *input = "250 first\r\n354 second\r\n";
	const struct smtp_reply *r = NULL;
	struct smtp_reply_parser p;
	size_t used = 0;

	smtp_reply_parser_init(&p);
	assert_int_equal(smtp_reply_parse(&p, input, strlen(input), &used, &r),
			 1);
	assert_int_equal(used, strlen("250 first\r\n"));
	assert_int_equal(r->code, 250);
	assert_string_equal(r->lines[0], "first");
	assert_false(smtp_reply_parser_pending(&p));

	input += used;
	assert_int_equal(smtp_reply_parse(&p, input, strlen(input), &used, &r),
			 1);
	assert_int_equal(used, strlen(input));
	assert_int_equal(r->code, 354);
	assert_int_equal(r->line_count, 1);
	assert_string_equal(r->lines[0], "second");
	smtp_reply_parser_free(&p);
}

static void test_next_reply_resets_bare_lf(void **state)
{
	const char *input = "250 first\n250 second\r\n";
	const struct smtp_reply *r = NULL;
	struct smtp_reply_parser p;
	size_t used = 0;

	smtp_reply_parser_init(&p);
	assert_int_equal(smtp_reply_parse(&p, input, strlen(input), &used, &r),
			 1);
	assert_true(r->bare_lf);
	input += used;
	assert_int_equal(smtp_reply_parse(&p, input, strlen(input), &used, &r),
			 1);
	assert_false(r->bare_lf);
	assert_string_equal(r->lines[0], "second");
	smtp_reply_parser_free(&p);
}

static void test_pending_states(void **state)
{
	const struct smtp_reply *r = NULL;
	struct smtp_reply_parser p;
	size_t used = 0;

	smtp_reply_parser_init(&p);
	assert_false(smtp_reply_parser_pending(&p));

	assert_int_equal(smtp_reply_parse(&p, "250-mx", 6, &used, &r), 0);
	assert_true(smtp_reply_parser_pending(&p));

	assert_int_equal(smtp_reply_parse(&p, "\r\n", 2, &used, &r), 0);
	assert_true(smtp_reply_parser_pending(&p));

	assert_int_equal(smtp_reply_parse(&p, "250 OK\r\n", 8, &used, &r), 1);
	assert_false(smtp_reply_parser_pending(&p));
	smtp_reply_parser_free(&p);
}

static void test_empty_input_needs_more(void **state)
{
	const struct smtp_reply *r = NULL;
	struct smtp_reply_parser p;
	size_t used = 1;

	smtp_reply_parser_init(&p);
	assert_int_equal(smtp_reply_parse(&p, "", 0, &used, &r), 0);
	assert_int_equal(used, 0);
	assert_false(smtp_reply_parser_pending(&p));
	smtp_reply_parser_free(&p);
}

#define INPUT_BUF_SIZE 32768

/* Writes "250 xxx..." ending in end, total octets long, into line. */
static char *make_line(char *line, size_t total, const char *end)
{
	size_t end_len = strlen(end);

	assert_true(total < INPUT_BUF_SIZE);
	memset(line, 'x', total);
	memcpy(line, "250 ", 4);
	memcpy(line + total - end_len, end, end_len);
	line[total] = '\0';
	return line;
}

static void test_line_at_limit_crlf(void **state)
{
	char buf[INPUT_BUF_SIZE];
	char *line = make_line(buf, SMTP_REPLY_LINE_MAX, "\r\n");
	const struct smtp_reply *r = NULL;
	struct smtp_reply_parser p;
	size_t used = 0;

	smtp_reply_parser_init(&p);
	assert_int_equal(smtp_reply_parse(&p, line, strlen(line), &used, &r), 1);
	assert_int_equal(strlen(r->lines[0]), SMTP_REPLY_LINE_MAX - 6);
	smtp_reply_parser_free(&p);
}

static void test_line_at_limit_bare_lf(void **state)
{
	char buf[INPUT_BUF_SIZE];
	char *line = make_line(buf, SMTP_REPLY_LINE_MAX, "\n");
	const struct smtp_reply *r = NULL;
	struct smtp_reply_parser p;
	size_t used = 0;

	smtp_reply_parser_init(&p);
	assert_int_equal(smtp_reply_parse(&p, line, strlen(line), &used, &r), 1);
	assert_true(r->bare_lf);
	smtp_reply_parser_free(&p);
}

static void test_line_over_limit(void **state)
{
	char buf[INPUT_BUF_SIZE];
	char *line = make_line(buf, SMTP_REPLY_LINE_MAX + 1, "\r\n");
	const struct smtp_reply *r = NULL;
	struct smtp_reply_parser p;
	size_t used = 0;

	smtp_reply_parser_init(&p);
	assert_int_equal(smtp_reply_parse(&p, line, strlen(line), &used, &r),
			 BASE_ETOOLONG);
	smtp_reply_parser_free(&p);
}

/* The limit must trip while the line is still open, before any LF. */
static void test_line_over_limit_without_end(void **state)
{
	char buf[INPUT_BUF_SIZE];
	char *line = make_line(buf, SMTP_REPLY_LINE_MAX, "x");
	const struct smtp_reply *r = NULL;
	struct smtp_reply_parser p;
	size_t used = 0;
	size_t pos = 0;
	int rc = 0;

	smtp_reply_parser_init(&p);
	while (rc == 0 && pos < SMTP_REPLY_LINE_MAX) {
		rc = smtp_reply_parse(&p, line + pos, 1, &used, &r);
		pos++;
	}
	assert_int_equal(rc, BASE_ETOOLONG);
	assert_int_equal(pos, SMTP_REPLY_LINE_MAX);
	smtp_reply_parser_free(&p);
}

/*
 * Writes a reply of count lines into reply: continuation lines, then a
 * last line, each with text_len octets of text.
 */
static char *make_reply(char *reply, size_t count, size_t text_len)
{
	size_t line_len = 4 + text_len + 2;
	char *p = reply;

	assert_true(count * line_len < INPUT_BUF_SIZE);
	for (size_t i = 0; i < count; i++) {
		memcpy(p, i + 1 < count ? "250-" : "250 ", 4);
		memset(p + 4, 'a', text_len);
		memcpy(p + 4 + text_len, "\r\n", 2);
		p += line_len;
	}
	*p = '\0';
	return reply;
}

static void test_lines_at_limit(void **state)
{
	char buf[INPUT_BUF_SIZE];
	char *input = make_reply(buf, SMTP_REPLY_LINES_MAX, 1);
	const struct smtp_reply *r = NULL;
	struct smtp_reply_parser p;
	size_t used = 0;

	smtp_reply_parser_init(&p);
	assert_int_equal(smtp_reply_parse(&p, input, strlen(input), &used, &r),
			 1);
	assert_int_equal(r->line_count, SMTP_REPLY_LINES_MAX);
	assert_string_equal(r->lines[SMTP_REPLY_LINES_MAX - 1], "a");
	smtp_reply_parser_free(&p);
}

static void test_lines_over_limit(void **state)
{
	char buf[INPUT_BUF_SIZE];
	char *input = make_reply(buf, SMTP_REPLY_LINES_MAX + 1, 1);
	const struct smtp_reply *r = NULL;
	struct smtp_reply_parser p;
	size_t used = 0;

	smtp_reply_parser_init(&p);
	assert_int_equal(smtp_reply_parse(&p, input, strlen(input), &used, &r),
			 BASE_ETOOLONG);
	smtp_reply_parser_free(&p);
}

static void test_text_over_limit(void **state)
{
	/* Ten lines of 2000 octets exceed SMTP_REPLY_TEXT_MAX. */
	char buf[INPUT_BUF_SIZE];
	char *input = make_reply(buf, 10, 2000);
	const struct smtp_reply *r = NULL;
	struct smtp_reply_parser p;
	size_t used = 0;

	assert_true(10 * 2001 > SMTP_REPLY_TEXT_MAX);
	smtp_reply_parser_init(&p);
	assert_int_equal(smtp_reply_parse(&p, input, strlen(input), &used, &r),
			 BASE_ETOOLONG);
	smtp_reply_parser_free(&p);
}

static void test_free_twice_safe(void **state)
{
	struct smtp_reply_parser p;

	smtp_reply_parser_init(&p);
	smtp_reply_parser_free(&p);
	smtp_reply_parser_free(&p);
	smtp_reply_parser_free(NULL);
}

static const struct CMUnitTest fixed_tests[] = {
	cmocka_unit_test(test_enhanced_output_too_small),
	cmocka_unit_test(test_bytes_after_reply_left),
	cmocka_unit_test(test_next_reply_resets_bare_lf),
	cmocka_unit_test(test_pending_states),
	cmocka_unit_test(test_empty_input_needs_more),
	cmocka_unit_test(test_line_at_limit_crlf),
	cmocka_unit_test(test_line_at_limit_bare_lf),
	cmocka_unit_test(test_line_over_limit),
	cmocka_unit_test(test_line_over_limit_without_end),
	cmocka_unit_test(test_lines_at_limit),
	cmocka_unit_test(test_lines_over_limit),
	cmocka_unit_test(test_text_over_limit),
	cmocka_unit_test(test_free_twice_safe),
};

int main(void)
{
	size_t max = 3 * COUNT(valid_cases) + 2 * COUNT(error_cases) +
		     COUNT(enhanced_cases) + COUNT(fixed_tests);
	struct CMUnitTest *tests = calloc(max, sizeof(*tests));
	size_t n = 0;
	int failed;

	assert_non_null(tests);
	add_rows(tests, &n, "reply_whole", test_valid_whole, valid_cases,
		 sizeof(valid_cases[0]), COUNT(valid_cases));
	add_rows(tests, &n, "reply_byte_by_byte", test_valid_byte_by_byte,
		 valid_cases, sizeof(valid_cases[0]), COUNT(valid_cases));
	add_rows(tests, &n, "reply_every_split", test_valid_every_split,
		 valid_cases, sizeof(valid_cases[0]), COUNT(valid_cases));
	add_rows(tests, &n, "reply_error", test_error, error_cases,
		 sizeof(error_cases[0]), COUNT(error_cases));
	add_rows(tests, &n, "reply_error_byte_by_byte", test_error_byte_by_byte,
		 error_cases, sizeof(error_cases[0]), COUNT(error_cases));
	add_rows(tests, &n, "reply", test_enhanced, enhanced_cases,
		 sizeof(enhanced_cases[0]), COUNT(enhanced_cases));
	for (size_t i = 0; i < COUNT(fixed_tests); i++)
		tests[n++] = fixed_tests[i];

	failed = _cmocka_run_group_tests("smtp_reply", tests, n, NULL, NULL);
	for (size_t i = 0; i < n - COUNT(fixed_tests); i++)
		free((char *)tests[i].name);
	free(tests);
	return failed;
}
