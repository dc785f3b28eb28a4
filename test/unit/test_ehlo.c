/*
 * Unit tests for the EHLO reply parser. Every table row runs as its own
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

#include "ehlo.h"

#define MAX_LINES 6
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

struct ehlo_case {
	const char *name;
	int code;
	const char *lines[MAX_LINES];	/* texts of the reply, NULL ends */
	unsigned flags;
	uint64_t size;
};

static const struct ehlo_case ehlo_cases[] = {
	{ "starttls", 250, { "mx.example.test", "STARTTLS" },
	  EHLO_STARTTLS, 0 },
	{ "starttls_lower_case", 250, { "mx.example.test", "starttls" },
	  EHLO_STARTTLS, 0 },
	{ "starttls_with_parameter", 250, { "mx.example.test", "STARTTLS foo" },
	  EHLO_STARTTLS, 0 },
	{ "starttls_in_greeting_text", 250,
	  { "mx.example.test STARTTLS ready", "PIPELINING" },
	  EHLO_PIPELINING, 0 },
	{ "starttls_as_server_name", 250, { "STARTTLS", "PIPELINING" },
	  EHLO_PIPELINING, 0 },
	{ "starttls_single_line_reply", 250, { "STARTTLS" }, 0, 0 },
	{ "starttls_with_suffix", 250, { "mx.example.test", "STARTTLSX" },
	  0, 0 },
	{ "starttls_not_first_token", 250,
	  { "mx.example.test", "X-EXT STARTTLS" }, 0, 0 },
	{ "starttls_leading_space", 250, { "mx.example.test", " STARTTLS" },
	  0, 0 },
	{ "size_with_value", 250, { "mx.example.test", "SIZE 52428800" },
	  EHLO_SIZE, 52428800 },
	{ "size_without_value", 250, { "mx.example.test", "SIZE" },
	  EHLO_SIZE, 0 },
	{ "size_zero", 250, { "mx.example.test", "SIZE 0" }, EHLO_SIZE, 0 },
	{ "size_garbage", 250, { "mx.example.test", "SIZE lots" },
	  EHLO_SIZE, 0 },
	{ "size_digits_then_garbage", 250, { "mx.example.test", "SIZE 10MB" },
	  EHLO_SIZE, 0 },
	{ "size_negative", 250, { "mx.example.test", "SIZE -1" },
	  EHLO_SIZE, 0 },
	{ "size_max_uint64", 250,
	  { "mx.example.test", "SIZE 18446744073709551615" },
	  EHLO_SIZE, UINT64_MAX },
	{ "size_overflow", 250,
	  { "mx.example.test", "SIZE 18446744073709551616" },
	  EHLO_SIZE, 0 },
	{ "size_extra_parameter", 250, { "mx.example.test", "SIZE 1000 x" },
	  EHLO_SIZE, 1000 },
	{ "size_lower_case", 250, { "mx.example.test", "size 2048" },
	  EHLO_SIZE, 2048 },
	{ "8bitmime", 250, { "mx.example.test", "8BITMIME" },
	  EHLO_8BITMIME, 0 },
	{ "smtputf8", 250, { "mx.example.test", "SMTPUTF8" },
	  EHLO_SMTPUTF8, 0 },
	{ "pipelining", 250, { "mx.example.test", "PIPELINING" },
	  EHLO_PIPELINING, 0 },
	{ "enhancedstatuscodes", 250,
	  { "mx.example.test", "ENHANCEDSTATUSCODES" },
	  EHLO_ENHANCEDSTATUSCODES, 0 },
	{ "dsn", 250, { "mx.example.test", "DSN" }, EHLO_DSN, 0 },
	{ "chunking", 250, { "mx.example.test", "CHUNKING" },
	  EHLO_CHUNKING, 0 },
	{ "requiretls", 250, { "mx.example.test", "REQUIRETLS" },
	  EHLO_REQUIRETLS, 0 },
	{ "unknown_keywords_ignored", 250,
	  { "mx.example.test", "AUTH PLAIN LOGIN", "X-FOO", "ETRN" }, 0, 0 },
	{ "typical_reply", 250,
	  { "mx.example.test greets you", "PIPELINING", "SIZE 10240000",
	    "STARTTLS", "ENHANCEDSTATUSCODES", "8BITMIME" },
	  EHLO_PIPELINING | EHLO_SIZE | EHLO_STARTTLS |
	  EHLO_ENHANCEDSTATUSCODES | EHLO_8BITMIME, 10240000 },
	{ "non_250_reply", 550, { "mx.example.test", "STARTTLS", "SIZE 100" },
	  0, 0 },
	{ "temporary_failure_reply", 421, { "mx.example.test", "STARTTLS" },
	  0, 0 },
};

static void build_reply(const struct ehlo_case *c, struct smtp_reply *r)
{
	memset(r, 0, sizeof(*r));
	r->code = c->code;
	while (r->line_count < MAX_LINES && c->lines[r->line_count] != NULL) {
		r->lines[r->line_count] = c->lines[r->line_count];
		r->line_count++;
	}
}

static void test_ehlo(void **state)
{
	const struct ehlo_case *c = *state;
	struct smtp_reply reply;
	struct ehlo_caps caps;

	build_reply(c, &reply);
	ehlo_parse(&reply, &caps);
	assert_int_equal(caps.flags, c->flags);
	assert_int_equal(caps.size, c->size);
}

/* Values left from an earlier EHLO must not survive a new parse. */
static void test_ehlo_clears_old_caps(void **state)
{
	struct ehlo_caps caps = { .flags = ~0u, .size = 99 };
	struct smtp_reply reply;

	memset(&reply, 0, sizeof(reply));
	reply.code = 250;
	reply.line_count = 1;
	reply.lines[0] = "mx.example.test";
	ehlo_parse(&reply, &caps);
	assert_int_equal(caps.flags, 0);
	assert_int_equal(caps.size, 0);
}

/* The parser reads what smtp_reply_parse produces from the wire. */
static void test_ehlo_from_parsed_reply(void **state)
{
	const char *input = "250-mx.example.test\r\n250-STARTTLS\r\n"
			    "250 SIZE 100\r\n";
	const struct smtp_reply *reply = NULL;
	struct smtp_reply_parser parser;
	struct ehlo_caps caps;
	size_t used = 0;

	smtp_reply_parser_init(&parser);
	assert_int_equal(smtp_reply_parse(&parser, input, strlen(input), &used,
					  &reply), 1);
	ehlo_parse(reply, &caps);
	assert_int_equal(caps.flags, EHLO_STARTTLS | EHLO_SIZE);
	assert_int_equal(caps.size, 100);
	smtp_reply_parser_free(&parser);
}

static const struct CMUnitTest fixed_tests[] = {
	cmocka_unit_test(test_ehlo_clears_old_caps),
	cmocka_unit_test(test_ehlo_from_parsed_reply),
};

int main(void)
{
	size_t max = COUNT(ehlo_cases) + COUNT(fixed_tests);
	struct CMUnitTest *tests = calloc(max, sizeof(*tests));
	size_t n = 0;
	int failed;

	assert_non_null(tests);
	for (size_t i = 0; i < COUNT(ehlo_cases); i++) {
		size_t name_len = strlen("ehlo_") + strlen(ehlo_cases[i].name) + 1;
		char *name = malloc(name_len);

		assert_non_null(name);
		snprintf(name, name_len, "ehlo_%s", ehlo_cases[i].name);
		tests[n++] = (struct CMUnitTest){
			.name = name,
			.test_func = test_ehlo,
			.initial_state = (void *)&ehlo_cases[i],
		};
	}
	for (size_t i = 0; i < COUNT(fixed_tests); i++)
		tests[n++] = fixed_tests[i];

	failed = _cmocka_run_group_tests("ehlo", tests, n, NULL, NULL);
	for (size_t i = 0; i < COUNT(ehlo_cases); i++)
		free((char *)tests[i].name);
	free(tests);
	return failed;
}
