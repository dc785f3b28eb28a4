/*
 * Unit tests for the base helpers: the bounded buffer and the DNS-name
 * checks. Every table row runs as its own cmocka test named after the row.
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

#include "base/buf.h"
#include "base/dname.h"
#include "base/err.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

struct valid_case {
	const char *name;
	const char *input;
	bool expected;
};

struct equal_case {
	const char *name;
	const char *a;
	const char *b;
	bool expected;
};

struct normalize_case {
	const char *name;
	const char *input;
	size_t outlen;
	int expected;
	const char *output;	/* checked when expected is 0 */
};

/* A label of 63 octets, the maximum (RFC 1035 section 2.3.4). */
#define LABEL63 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
/* Three 63-octet labels and their dots: 192 octets. */
#define NAME192 LABEL63 "." LABEL63 "." LABEL63 "."
/* 253 octets, the longest name base_dname_valid accepts. */
#define NAME253 NAME192 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
/* 254 octets. */
#define NAME254 NAME253 "b"

static const struct valid_case valid_cases[] = {
	{ "simple", "example.test", true },
	{ "single_label", "localhost", true },
	{ "trailing_dot", "example.test.", true },
	{ "digits_and_hyphen", "mx-1.example.test", true },
	{ "underscore", "_25._tcp.example.test", true },
	{ "upper_case", "MX.Example.TEST", true },
	{ "label_63", LABEL63 ".test", true },
	{ "label_64", LABEL63 "a.test", false },
	{ "name_253", NAME253, true },
	{ "name_253_trailing_dot", NAME253 ".", true },
	{ "name_254", NAME254, false },
	{ "empty", "", false },
	{ "root_dot", ".", false },
	{ "leading_dot", ".example.test", false },
	{ "empty_label", "example..test", false },
	{ "two_trailing_dots", "example.test..", false },
	{ "space", "exa mple.test", false },
	{ "bang", "exa!mple.test", false },
	{ "non_ascii", "b\xc3\xbc" "cher.test", false },
	{ "address_literal", "[127.0.0.1]", false },
};

static const struct equal_case equal_cases[] = {
	{ "same", "example.test", "example.test", true },
	{ "case_differs", "Example.TEST", "example.test", true },
	{ "trailing_dot_one_side", "example.test.", "example.test", true },
	{ "trailing_dot_other_side", "example.test", "EXAMPLE.test.", true },
	{ "different_names", "example.test", "example.org", false },
	{ "prefix", "example.test", "example.testing", false },
	{ "subdomain", "mx.example.test", "example.test", false },
	{ "two_trailing_dots", "example.test..", "example.test.", false },
	{ "both_empty", "", "", true },
};

static const struct normalize_case normalize_cases[] = {
	{ "lower_cases", "MX.Example.TEST", 64, 0, "mx.example.test" },
	{ "drops_trailing_dot", "example.test.", 64, 0, "example.test" },
	{ "exact_fit", "ab.cd", 6, 0, "ab.cd" },
	{ "exact_fit_trailing_dot", "ab.cd.", 6, 0, "ab.cd" },
	{ "one_short", "ab.cd", 5, BASE_EINVAL, NULL },
	{ "invalid_name", "ab..cd", 64, BASE_EINVAL, NULL },
	{ "empty_name", "", 64, BASE_EINVAL, NULL },
};

static void test_dname_valid(void **state)
{
	const struct valid_case *c = *state;

	assert_int_equal(base_dname_valid(c->input), c->expected);
}

static void test_dname_equal(void **state)
{
	const struct equal_case *c = *state;

	assert_int_equal(base_dname_equal(c->a, c->b), c->expected);
}

static void test_dname_normalize(void **state)
{
	const struct normalize_case *c = *state;
	char out[64];

	assert_true(c->outlen <= sizeof(out));
	assert_int_equal(base_dname_normalize(c->input, out, c->outlen),
			 c->expected);
	if (c->expected == 0)
		assert_string_equal(out, c->output);
}

static void test_buf_append_and_consume(void **state)
{
	struct base_buf b;

	base_buf_init(&b, 16);
	assert_int_equal(base_buf_append(&b, "hello", 5), 0);
	assert_int_equal(base_buf_append(&b, " world", 6), 0);
	assert_int_equal(b.len, 11);
	assert_memory_equal(b.data, "hello world", 11);

	base_buf_consume(&b, 6);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.data, "world", 5);
	base_buf_free(&b);
}

static void test_buf_fills_to_max(void **state)
{
	struct base_buf b;

	base_buf_init(&b, 8);
	assert_int_equal(base_buf_append(&b, "12345678", 8), 0);
	assert_int_equal(b.len, 8);
	assert_true(b.cap <= 8);
	base_buf_free(&b);
}

static void test_buf_over_max_unchanged(void **state)
{
	struct base_buf b;

	base_buf_init(&b, 8);
	assert_int_equal(base_buf_append(&b, "12345", 5), 0);
	assert_int_equal(base_buf_append(&b, "6789", 4), BASE_ETOOLONG);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.data, "12345", 5);
	assert_int_equal(base_buf_append(&b, "678", 3), 0);
	assert_memory_equal(b.data, "12345678", 8);
	base_buf_free(&b);
}

/* A length near SIZE_MAX must not wrap around the limit check. */
static void test_buf_huge_append_rejected(void **state)
{
	struct base_buf b;

	base_buf_init(&b, 8);
	assert_int_equal(base_buf_append(&b, "1", 1), 0);
	assert_int_equal(base_buf_append(&b, "2", SIZE_MAX), BASE_ETOOLONG);
	assert_int_equal(b.len, 1);
	base_buf_free(&b);
}

/* Appending nothing to an unallocated buffer must not touch memory. */
static void test_buf_empty_append(void **state)
{
	struct base_buf b;

	base_buf_init(&b, 8);
	assert_int_equal(base_buf_append(&b, "", 0), 0);
	assert_int_equal(b.len, 0);
	assert_null(b.data);
	base_buf_free(&b);
}

static void test_buf_zero_max_rejects(void **state)
{
	struct base_buf b;

	base_buf_init(&b, 0);
	assert_int_equal(base_buf_append(&b, "x", 1), BASE_ETOOLONG);
	assert_int_equal(base_buf_append(&b, "", 0), 0);
	base_buf_free(&b);
}

static void test_buf_grows_past_first_block(void **state)
{
	char data[1000];
	struct base_buf b;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)('a' + i % 26);
	base_buf_init(&b, 4096);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(base_buf_append(&b, data, sizeof(data)), 0);
	assert_int_equal(b.len, 4000);
	assert_true(b.cap >= 4000 && b.cap <= 4096);
	assert_memory_equal(b.data + 3000, data, sizeof(data));
	base_buf_free(&b);
}

static void test_buf_consume_all(void **state)
{
	struct base_buf b;

	base_buf_init(&b, 16);
	assert_int_equal(base_buf_append(&b, "abc", 3), 0);
	base_buf_consume(&b, 10);
	assert_int_equal(b.len, 0);
	assert_int_equal(base_buf_append(&b, "de", 2), 0);
	assert_memory_equal(b.data, "de", 2);
	base_buf_free(&b);
}

static void test_buf_free_then_reuse(void **state)
{
	struct base_buf b;

	base_buf_init(&b, 16);
	assert_int_equal(base_buf_append(&b, "abc", 3), 0);
	base_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.max, 16);

	assert_int_equal(base_buf_append(&b, "xyz", 3), 0);
	assert_memory_equal(b.data, "xyz", 3);
	base_buf_free(&b);
}

static void test_strerror_known_and_unknown(void **state)
{
	assert_string_equal(base_strerror(BASE_OK), "success");
	assert_string_equal(base_strerror(BASE_ETOOLONG),
			    "line or buffer limit exceeded");
	assert_string_equal(base_strerror(-999), "unknown error");
}

static const struct CMUnitTest fixed_tests[] = {
	cmocka_unit_test(test_buf_append_and_consume),
	cmocka_unit_test(test_buf_fills_to_max),
	cmocka_unit_test(test_buf_over_max_unchanged),
	cmocka_unit_test(test_buf_huge_append_rejected),
	cmocka_unit_test(test_buf_empty_append),
	cmocka_unit_test(test_buf_zero_max_rejects),
	cmocka_unit_test(test_buf_grows_past_first_block),
	cmocka_unit_test(test_buf_consume_all),
	cmocka_unit_test(test_buf_free_then_reuse),
	cmocka_unit_test(test_strerror_known_and_unknown),
};

int main(void)
{
	size_t max = COUNT(valid_cases) + COUNT(equal_cases) +
		     COUNT(normalize_cases) + COUNT(fixed_tests);
	struct CMUnitTest *tests = calloc(max, sizeof(*tests));
	size_t n = 0;
	int failed;

	assert_non_null(tests);
	add_rows(tests, &n, "dname_valid", test_dname_valid, valid_cases,
		 sizeof(valid_cases[0]), COUNT(valid_cases));
	add_rows(tests, &n, "dname_equal", test_dname_equal, equal_cases,
		 sizeof(equal_cases[0]), COUNT(equal_cases));
	add_rows(tests, &n, "dname_normalize", test_dname_normalize,
		 normalize_cases, sizeof(normalize_cases[0]),
		 COUNT(normalize_cases));
	for (size_t i = 0; i < COUNT(fixed_tests); i++)
		tests[n++] = fixed_tests[i];

	failed = _cmocka_run_group_tests("base", tests, n, NULL, NULL);
	for (size_t i = 0; i < n - COUNT(fixed_tests); i++)
		free((char *)tests[i].name);
	free(tests);
	return failed;
}
