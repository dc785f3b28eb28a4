/*
 * Unit tests for the pure parts of mtasts/: TXT discovery, policy files,
 * MX pattern matching and the HTTP response parser. Every table row runs
 * as its own cmocka test named after the row.
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
#include "mtasts/http.h"
#include "mtasts/policy.h"
#include "mtasts/txt.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- TXT records (RFC 8461 section 3.1) ---- */

struct txt_case {
	const char *name;
	const char *records[4];
	size_t count;
	int expected;
	const char *id;		/* checked when expected is 0 */
};

#define ID32 "abcdefghijklmnopqrstuvwxyz012345"

static const struct txt_case txt_cases[] = {
	{ "rfc_example", { "v=STSv1; id=20160831085700Z;" }, 1, 0,
	  "20160831085700Z" },
	{ "no_final_delimiter", { "v=STSv1; id=abc" }, 1, 0, "abc" },
	{ "no_blanks", { "v=STSv1;id=abc" }, 1, 0, "abc" },
	{ "blanks_around_delimiters", { "v=STSv1 ;\tid=abc ; " }, 1, 0,
	  "abc" },
	{ "extension_before_id", { "v=STSv1; ext=val.ue-1; id=abc" }, 1, 0,
	  "abc" },
	{ "extension_after_id", { "v=STSv1; id=abc; x_y.z-1=~!" }, 1, 0,
	  "abc" },
	{ "id_32_characters", { "v=STSv1; id=" ID32 }, 1, 0, ID32 },
	{ "first_id_wins", { "v=STSv1; id=first; id=second" }, 1, 0,
	  "first" },
	{ "other_records_ignored",
	  { "google-site-verification=xyz", "v=STSv1; id=abc", "v=spf1 -all" },
	  3, 0, "abc" },
	{ "stsv10_does_not_count", { "v=STSv10; id=aaa", "v=STSv1; id=bbb" },
	  2, 0, "bbb" },
	{ "only_stsv10", { "v=STSv10; id=aaa" }, 1, BASE_ENOTFOUND, NULL },
	{ "two_sts_records", { "v=STSv1; id=aaa", "v=STSv1; id=bbb" }, 2,
	  BASE_ENOTFOUND, NULL },
	{ "two_sts_records_one_invalid", { "v=STSv1; id=a-b", "v=STSv1; id=b" },
	  2, BASE_ENOTFOUND, NULL },
	{ "no_records", { NULL }, 0, BASE_ENOTFOUND, NULL },
	{ "id_33_characters", { "v=STSv1; id=" ID32 "6" }, 1, BASE_ENOTFOUND,
	  NULL },
	{ "id_with_hyphen", { "v=STSv1; id=2016-08-31" }, 1, BASE_ENOTFOUND,
	  NULL },
	{ "id_empty", { "v=STSv1; id=" }, 1, BASE_ENOTFOUND, NULL },
	{ "id_missing", { "v=STSv1; ext=1" }, 1, BASE_ENOTFOUND, NULL },
	{ "version_only", { "v=STSv1" }, 1, BASE_ENOTFOUND, NULL },
	{ "version_lower_case", { "v=stsv1; id=abc" }, 1, BASE_ENOTFOUND,
	  NULL },
	{ "id_key_upper_case", { "v=STSv1; ID=abc" }, 1, BASE_ENOTFOUND,
	  NULL },
	{ "leading_blank", { " v=STSv1; id=abc" }, 1, BASE_ENOTFOUND, NULL },
	{ "version_not_first", { "id=abc; v=STSv1" }, 1, BASE_ENOTFOUND,
	  NULL },
	{ "empty_field", { "v=STSv1;; id=abc" }, 1, BASE_ENOTFOUND, NULL },
	{ "two_final_delimiters", { "v=STSv1; id=abc;;" }, 1, BASE_ENOTFOUND,
	  NULL },
	{ "missing_delimiter", { "v=STSv1; id=abc def=1" }, 1, BASE_ENOTFOUND,
	  NULL },
	{ "equals_in_value", { "v=STSv1; id=abc; e=a=b" }, 1, BASE_ENOTFOUND,
	  NULL },
	{ "empty_extension_value", { "v=STSv1; id=abc; e=" }, 1,
	  BASE_ENOTFOUND, NULL },
	{ "extension_name_33", { "v=STSv1; id=abc; "
	  "abcdefghijklmnopqrstuvwxyz0123456=1" }, 1, BASE_ENOTFOUND, NULL },
	{ "extension_name_underscore_first", { "v=STSv1; id=abc; _e=1" }, 1,
	  BASE_ENOTFOUND, NULL },
	{ "non_ascii_value", { "v=STSv1; id=abc; e=caf\xc3\xa9" }, 1,
	  BASE_ENOTFOUND, NULL },
	{ "control_character", { "v=STSv1; id=abc\r" }, 1, BASE_ENOTFOUND,
	  NULL },
};

static void test_txt(void **state)
{
	const struct txt_case *c = *state;
	char id[MTASTS_ID_MAX + 1] = "";

	assert_int_equal(mtasts_txt_parse(c->records, c->count, id),
			 c->expected);
	if (c->expected == 0)
		assert_string_equal(id, c->id);
}

static void test_txt_reason_names_the_problem(void **state)
{
	const char *records[] = { "v=STSv1; id=a", "v=STSv1; id=b" };
	const char *reason = NULL;
	char id[MTASTS_ID_MAX + 1];

	assert_int_equal(mtasts_txt_parse_reason(records, 2, id, &reason),
			 BASE_ENOTFOUND);
	assert_string_equal(reason,
			    "more than one TXT record starts with v=STSv1");
}

/* ---- Policy files (RFC 8461 section 3.2) ---- */

struct policy_case {
	const char *name;
	const char *body;
	int expected;
	enum mtasts_mode mode;	/* the rest is checked when expected is 0 */
	int64_t max_age;
	size_t mx_count;
	const char *mx[3];
};

/* The fields of a row whose policy is invalid: nothing to check. */
#define NO_POLICY MTASTS_MODE_NONE, 0, 0, { NULL }

/* The same policy written five ways, all valid and all identical. */
#define SAME_MODE MTASTS_MODE_ENFORCE, 604800, 2, \
	{ "mail.example.com", "*.example.net" }

static const struct policy_case policy_cases[] = {
	{ "lf_only",
	  "version: STSv1\nmode: enforce\nmx: mail.example.com\n"
	  "mx: *.example.net\nmax_age: 604800\n", 0, SAME_MODE },
	{ "crlf_only",
	  "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
	  "mx: *.example.net\r\nmax_age: 604800\r\n", 0, SAME_MODE },
	{ "mixed_no_final_end",
	  "version: STSv1\r\nmode: enforce\nmx: mail.example.com\r\n"
	  "mx: *.example.net\nmax_age: 604800", 0, SAME_MODE },
	{ "other_key_order",
	  "max_age: 604800\nmx: mail.example.com\nmode: enforce\n"
	  "mx: *.example.net\nversion: STSv1\n", 0, SAME_MODE },
	{ "no_space_trailing_tabs",
	  "version:STSv1\t\nmode:enforce\t\t\nmx:mail.example.com\t\n"
	  "mx:*.example.net \t\nmax_age:604800\t\r\n", 0, SAME_MODE },
	{ "bare_cr_line_ends",
	  "version: STSv1\rmode: enforce\rmx: mail.example.com\r"
	  "max_age: 604800\r", BASE_EINVAL, NO_POLICY },
	{ "bare_cr_inside_line",
	  "version: STSv1\nmode: enf\rorce\nmx: mail.example.com\n"
	  "max_age: 604800\n", BASE_EINVAL, NO_POLICY },
	{ "bare_cr_in_unknown_value",
	  "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\n"
	  "note: a\rb\n", BASE_EINVAL, NO_POLICY },
	{ "bare_cr_before_crlf",
	  "version: STSv1\nmode: enforce\nmx: a.example\nnote: a\r\r\n"
	  "max_age: 1\n", BASE_EINVAL, NO_POLICY },
	{ "two_modes_first_wins",
	  "version: STSv1\nmode: testing\nmode: enforce\nmx: a.example\n"
	  "max_age: 86400\n", 0, MTASTS_MODE_TESTING, 86400, 1,
	  { "a.example" } },
	{ "two_max_ages_first_wins",
	  "version: STSv1\nmode: enforce\nmax_age: 100\nmx: a.example\n"
	  "max_age: 200\n", 0, MTASTS_MODE_ENFORCE, 100, 1, { "a.example" } },
	{ "second_version_ignored",
	  "version: STSv1\nversion: STSv2\nmode: enforce\nmx: a.example\n"
	  "max_age: 1\n", 0, MTASTS_MODE_ENFORCE, 1, 1, { "a.example" } },
	{ "first_max_age_invalid",
	  "version: STSv1\nmode: enforce\nmax_age: soon\nmx: a.example\n"
	  "max_age: 200\n", BASE_EINVAL, NO_POLICY },
	{ "every_mx_counts",
	  "version: STSv1\nmode: testing\nmx: a.example\nmax_age: 5\n"
	  "mx: b.example\nmx: *.c.example\n", 0, MTASTS_MODE_TESTING, 5, 3,
	  { "a.example", "b.example", "*.c.example" } },
	{ "unknown_key_ignored",
	  "version: STSv1\nmode: enforce\nnote_1.x-y: any text, caf\xc3\xa9\n"
	  "mx: a.example\nmax_age: 86400\n", 0, MTASTS_MODE_ENFORCE, 86400,
	  1, { "a.example" } },
	{ "blank_lines_skipped",
	  "\nversion: STSv1\n\nmode: enforce\n \t\nmx: a.example\n"
	  "max_age: 86400\n\n\n", 0, MTASTS_MODE_ENFORCE, 86400, 1,
	  { "a.example" } },
	{ "mx_normalized",
	  "version: STSv1\nmode: enforce\nmx: MAIL.Example.COM.\n"
	  "mx: *.EXAMPLE.net\nmax_age: 1\n", 0, MTASTS_MODE_ENFORCE, 1, 2,
	  { "mail.example.com", "*.example.net" } },
	{ "invalid_mx_dropped",
	  "version: STSv1\nmode: enforce\nmx: bad..example\nmx: *.*.example\n"
	  "mx: mail.*.example\nmx: good.example\nmax_age: 1\n", 0,
	  MTASTS_MODE_ENFORCE, 1, 1, { "good.example" } },
	{ "mode_none_without_mx",
	  "version: STSv1\nmode: none\nmax_age: 86400\n", 0,
	  MTASTS_MODE_NONE, 86400, 0, { NULL } },
	{ "enforce_without_mx",
	  "version: STSv1\nmode: enforce\nmax_age: 86400\n", BASE_EINVAL,
	  NO_POLICY },
	{ "testing_without_mx",
	  "version: STSv1\nmode: testing\nmax_age: 86400\n", BASE_EINVAL,
	  NO_POLICY },
	{ "enforce_only_invalid_mx",
	  "version: STSv1\nmode: enforce\nmx: *\nmax_age: 86400\n",
	  BASE_EINVAL, NO_POLICY },
	{ "version_stsv2",
	  "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n",
	  BASE_EINVAL, NO_POLICY },
	{ "version_missing",
	  "mode: enforce\nmx: a.example\nmax_age: 1\n", BASE_EINVAL,
	  NO_POLICY },
	{ "mode_missing",
	  "version: STSv1\nmx: a.example\nmax_age: 1\n", BASE_EINVAL,
	  NO_POLICY },
	{ "max_age_missing",
	  "version: STSv1\nmode: enforce\nmx: a.example\n", BASE_EINVAL,
	  NO_POLICY },
	{ "mode_report",
	  "version: STSv1\nmode: report\nmx: a.example\nmax_age: 1\n",
	  BASE_EINVAL, NO_POLICY },
	{ "mode_upper_case",
	  "version: STSv1\nmode: ENFORCE\nmx: a.example\nmax_age: 1\n",
	  BASE_EINVAL, NO_POLICY },
	{ "key_upper_case_is_unknown",
	  "version: STSv1\nMode: enforce\nmx: a.example\nmax_age: 1\n",
	  BASE_EINVAL, NO_POLICY },
	{ "blank_before_colon",
	  "version: STSv1\nmode : enforce\nmx: a.example\nmax_age: 1\n",
	  BASE_EINVAL, NO_POLICY },
	{ "leading_blank",
	  "version: STSv1\n  mode: enforce\nmx: a.example\nmax_age: 1\n",
	  BASE_EINVAL, NO_POLICY },
	{ "line_without_colon",
	  "version: STSv1\nmode enforce\nmx: a.example\nmax_age: 1\n",
	  BASE_EINVAL, NO_POLICY },
	{ "max_age_capped",
	  "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 99999999\n",
	  0, MTASTS_MODE_ENFORCE, MTASTS_MAX_AGE_MAX, 1, { "a.example" } },
	{ "max_age_10_digits",
	  "version: STSv1\nmode: enforce\nmx: a.example\n"
	  "max_age: 9999999999\n", 0, MTASTS_MODE_ENFORCE,
	  MTASTS_MAX_AGE_MAX, 1, { "a.example" } },
	{ "max_age_11_digits",
	  "version: STSv1\nmode: enforce\nmx: a.example\n"
	  "max_age: 10000000000\n", BASE_EINVAL, NO_POLICY },
	{ "max_age_zero",
	  "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 0\n", 0,
	  MTASTS_MODE_ENFORCE, 0, 1, { "a.example" } },
	{ "max_age_negative",
	  "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n",
	  BASE_EINVAL, NO_POLICY },
	{ "max_age_not_digits",
	  "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 12a\n",
	  BASE_EINVAL, NO_POLICY },
	{ "max_age_empty",
	  "version: STSv1\nmode: enforce\nmx: a.example\nmax_age:\n",
	  BASE_EINVAL, NO_POLICY },
	{ "empty_body", "", BASE_EINVAL, NO_POLICY },
};

static void test_policy(void **state)
{
	const struct policy_case *c = *state;
	struct mtasts_policy p;

	assert_int_equal(mtasts_policy_parse(c->body, strlen(c->body), &p),
			 c->expected);
	if (c->expected != 0)
		return;
	assert_int_equal(p.mode, c->mode);
	assert_int_equal(p.max_age, c->max_age);
	assert_int_equal(p.mx_count, c->mx_count);
	for (size_t i = 0; i < c->mx_count; i++)
		assert_string_equal(p.mx[i], c->mx[i]);
}

/* A policy with n mx lines a0.example ... */
static size_t many_mx_policy(char *buf, size_t size, size_t n)
{
	size_t len = (size_t)snprintf(buf, size,
				      "version: STSv1\nmode: enforce\n"
				      "max_age: 86400\n");

	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, size - len,
					"mx: a%zu.example\n", i);
	return len;
}

static void test_policy_64_mx_accepted(void **state)
{
	char buf[4096];
	size_t len = many_mx_policy(buf, sizeof(buf), MTASTS_MX_MAX);
	struct mtasts_policy p;

	assert_int_equal(mtasts_policy_parse(buf, len, &p), 0);
	assert_int_equal(p.mx_count, MTASTS_MX_MAX);
	assert_string_equal(p.mx[63], "a63.example");
}

static void test_policy_65_mx_keeps_first_64(void **state)
{
	char buf[4096];
	size_t len = many_mx_policy(buf, sizeof(buf), MTASTS_MX_MAX + 1);
	struct mtasts_policy p;

	assert_int_equal(mtasts_policy_parse(buf, len, &p), 0);
	assert_int_equal(p.mx_count, MTASTS_MX_MAX);
	assert_false(mtasts_mx_match(&p, "a64.example"));
	assert_true(mtasts_mx_match(&p, "a63.example"));
}

static void test_policy_nul_byte_rejected(void **state)
{
	static const char body[] =
		"version: STSv1\nmode: enforce\nmx: a.example\0\nmax_age: 1\n";
	struct mtasts_policy p;

	assert_int_equal(mtasts_policy_parse(body, sizeof(body) - 1, &p),
			 BASE_EINVAL);
}

/* The length decides where the body ends, not a NUL. */
static void test_policy_length_bounds_body(void **state)
{
	static const char body[] =
		"version: STSv1\nmode: none\nmax_age: 7\nmode: enforce";
	struct mtasts_policy p;

	assert_int_equal(mtasts_policy_parse(body, 37, &p), 0);
	assert_int_equal(p.mode, MTASTS_MODE_NONE);
	assert_int_equal(p.max_age, 7);
}

static void test_policy_reason_names_the_problem(void **state)
{
	static const char body[] = "version: STSv1\nmode: enforce\n";
	const char *reason = NULL;
	struct mtasts_policy p;

	assert_int_equal(mtasts_policy_parse_reason(body, sizeof(body) - 1,
						    &p, &reason),
			 BASE_EINVAL);
	assert_string_equal(reason, "max_age is missing");
}

static void test_mode_names(void **state)
{
	assert_string_equal(mtasts_mode_name(MTASTS_MODE_ENFORCE), "enforce");
	assert_string_equal(mtasts_mode_name(MTASTS_MODE_TESTING), "testing");
	assert_string_equal(mtasts_mode_name(MTASTS_MODE_NONE), "none");
}

/* ---- MX patterns (RFC 8461 section 4.1) ---- */

struct match_case {
	const char *name;
	const char *pattern;
	const char *host;
	bool expected;
};

static const struct match_case match_cases[] = {
	{ "exact", "mail.example.com", "mail.example.com", true },
	{ "exact_other_case", "mail.example.com", "MAIL.Example.COM", true },
	{ "exact_trailing_dot", "mail.example.com", "mail.example.com.", true },
	{ "exact_pattern_trailing_dot", "mail.example.com.", "mail.example.com",
	  true },
	{ "exact_longer_host", "mail.example.com",
	  "mail.example.com.evil.test", false },
	{ "exact_subdomain", "mail.example.com", "a.mail.example.com", false },
	{ "exact_other_name", "mail.example.com", "mx.example.com", false },
	{ "wildcard_one_label", "*.example.net", "a.example.net", true },
	{ "wildcard_other_case", "*.example.net", "A.EXAMPLE.NET", true },
	{ "wildcard_trailing_dot", "*.example.net", "a.example.net.", true },
	{ "wildcard_no_label", "*.example.net", "example.net", false },
	{ "wildcard_two_labels", "*.example.net", "b.a.example.net", false },
	{ "wildcard_glued_label", "*.example.net", "aexample.net", false },
	{ "wildcard_empty_label", "*.example.net", ".example.net", false },
	{ "wildcard_other_suffix", "*.example.net", "a.example.org", false },
	{ "wildcard_host_is_pattern", "*.example.net", "*.example.net",
	  false },
	{ "lone_star", "*", "example", false },
	{ "star_dot_only", "*.", "a.", false },
	{ "empty_host", "mail.example.com", "", false },
};

static void test_pattern(void **state)
{
	const struct match_case *c = *state;

	assert_int_equal(mtasts_pattern_match(c->pattern, c->host),
			 c->expected);
}

static void test_mx_match_any_pattern(void **state)
{
	static const char body[] = "version: STSv1\nmode: enforce\n"
		"mx: mail.example.com\nmx: *.example.net\nmax_age: 86400\n";
	static const char *const hosts[] = {
		"MAIL.Example.COM", "mail.example.com.", "a.example.net",
	};
	static const char *const others[] = {
		"example.net", "b.a.example.net", "aexample.net",
		"mail.example.com.evil.test",
	};
	struct mtasts_policy p;

	assert_int_equal(mtasts_policy_parse(body, sizeof(body) - 1, &p), 0);
	for (size_t i = 0; i < COUNT(hosts); i++)
		assert_true(mtasts_mx_match(&p, hosts[i]));
	for (size_t i = 0; i < COUNT(others); i++)
		assert_false(mtasts_mx_match(&p, others[i]));
}

/* ---- HTTP responses (RFC 8461 section 3.3) ---- */

struct http_case {
	const char *name;
	const char *response;	/* followed by the end of the connection */
	int expected;
	int status;
	const char *body;	/* checked when expected is 0 */
	const char *reason;	/* checked when not NULL */
};

#define OK_HEAD "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"

static const struct http_case http_cases[] = {
	{ "content_length", OK_HEAD "Content-Length: 5\r\n\r\nhello", 0, 200,
	  "hello", NULL },
	{ "chunked", "HTTP/1.1 200 OK\r\n"
	  "Content-Type: text/plain; charset=utf-8\r\n"
	  "Transfer-Encoding: chunked\r\n\r\n"
	  "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 0, 200, "hello world",
	  NULL },
	{ "close_delimited", OK_HEAD "\r\nhello\n", 0, 200, "hello\n", NULL },
	{ "http_1_0", "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nx",
	  0, 200, "x", NULL },
	{ "empty_body", OK_HEAD "Content-Length: 0\r\n\r\n", 0, 200, "", NULL },
	{ "type_case_and_parameters", "HTTP/1.1 200 OK\r\n"
	  "content-type:  TEXT/Plain ; charset=\"UTF-8\"\r\n"
	  "Content-Length: 1\r\n\r\nx", 0, 200, "x", NULL },
	{ "interim_response_skipped", "HTTP/1.1 100 Continue\r\n\r\n"
	  OK_HEAD "Content-Length: 2\r\n\r\nok", 0, 200, "ok", NULL },
	{ "bytes_after_response_ignored",
	  OK_HEAD "Content-Length: 5\r\n\r\nhelloHTTP/1.1 junk", 0, 200,
	  "hello", NULL },
	{ "redirect_301", "HTTP/1.1 301 Moved Permanently\r\n"
	  "Location: https://elsewhere.example/\r\nContent-Length: 0\r\n\r\n",
	  BASE_EPROTO, 301, NULL, "redirect not followed" },
	{ "redirect_302", "HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n",
	  BASE_EPROTO, 302, NULL, "redirect not followed" },
	{ "redirect_307", "HTTP/1.1 307 Temporary Redirect\r\n"
	  "Location: /x\r\nContent-Length: 0\r\n\r\n", BASE_EPROTO, 307, NULL,
	  "redirect not followed" },
	{ "not_modified_304", "HTTP/1.1 304 Not Modified\r\n\r\n", BASE_EPROTO,
	  304, NULL, "redirect not followed" },
	{ "not_found_404", "HTTP/1.1 404 Not Found\r\n"
	  "Content-Type: text/plain\r\nContent-Length: 0\r\n\r\n",
	  BASE_EPROTO, 404, NULL, "HTTP status 404, not 200" },
	{ "no_content_204", "HTTP/1.1 204 No Content\r\n\r\n", BASE_EPROTO,
	  204, NULL, "HTTP status 204, not 200" },
	{ "html", "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
	  "Content-Length: 1\r\n\r\nx", BASE_EPROTO, 200, NULL,
	  "Content-Type is not text/plain" },
	{ "text_plainer", "HTTP/1.1 200 OK\r\nContent-Type: text/plainer\r\n"
	  "Content-Length: 1\r\n\r\nx", BASE_EPROTO, 200, NULL,
	  "Content-Type is not text/plain" },
	{ "content_type_missing", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
	  "\r\nx", BASE_EPROTO, 200, NULL, "Content-Type is missing" },
	{ "content_type_twice", OK_HEAD "Content-Type: text/plain\r\n"
	  "Content-Length: 1\r\n\r\nx", BASE_EPROTO, 200, NULL,
	  "more than one Content-Type" },
	{ "announced_too_large", OK_HEAD "Content-Length: 65537\r\n\r\nx",
	  BASE_ETOOLONG, 200, NULL, "policy is larger than 65536 bytes" },
	{ "truncated_body", OK_HEAD "Content-Length: 10\r\n\r\nhello",
	  BASE_EEOF, 200, NULL, NULL },
	{ "truncated_headers", "HTTP/1.1 200 OK\r\nContent-Ty", BASE_EEOF, 0,
	  NULL, NULL },
	{ "truncated_chunk", OK_HEAD "Transfer-Encoding: chunked\r\n\r\n"
	  "5\r\nhel", BASE_EEOF, 200, NULL, NULL },
	{ "only_interim_response", "HTTP/1.1 100 Continue\r\n\r\n", BASE_EEOF,
	  0, NULL, "connection closed before the response ended" },
	{ "nothing", "", BASE_EEOF, 0, NULL,
	  "connection closed before the response ended" },
	{ "not_http", "SSH-2.0-OpenSSH_9.2\r\n", BASE_EPROTO, 0, NULL, NULL },
	{ "length_and_chunked", OK_HEAD "Content-Length: 5\r\n"
	  "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	  BASE_EPROTO, 0, NULL, NULL },
};

/* Feeds a response in pieces of step bytes, then the end of connection. */
static int feed_in_steps(struct mtasts_http *h, const char *data,
			 size_t len, size_t step)
{
	int rc = 0;

	for (size_t pos = 0; pos < len && rc == 0; pos += step) {
		size_t n = len - pos < step ? len - pos : step;

		rc = mtasts_http_feed(h, data + pos, n);
	}
	if (rc == 0)
		rc = mtasts_http_feed(h, NULL, 0);
	return rc;
}

static void check_http_case(const struct http_case *c, size_t step)
{
	struct mtasts_http *h;
	const char *body;
	size_t len;

	assert_int_equal(mtasts_http_new(&h), 0);
	assert_int_equal(feed_in_steps(h, c->response, strlen(c->response),
				       step), c->expected);
	assert_int_equal(mtasts_http_status(h), c->status);
	assert_int_equal(mtasts_http_done(h), c->expected == 0);
	if (c->expected == 0) {
		body = mtasts_http_body(h, &len);
		assert_int_equal(len, strlen(c->body));
		assert_memory_equal(body, c->body, len);
		assert_null(mtasts_http_reason(h));
	} else {
		assert_non_null(mtasts_http_reason(h));
	}
	if (c->reason != NULL)
		assert_string_equal(mtasts_http_reason(h), c->reason);
	mtasts_http_free(h);
}

/* Each response is parsed whole and again one byte at a time. */
static void test_http(void **state)
{
	const struct http_case *c = *state;

	check_http_case(c, strlen(c->response) + 1);
	check_http_case(c, 1);
}

static void check_large_body(size_t body_len, int expected)
{
	char head[128];
	struct mtasts_http *h;
	char *body = malloc(body_len);
	size_t len;
	int n;

	assert_non_null(body);
	memset(body, 'x', body_len);
	n = snprintf(head, sizeof(head),
		     OK_HEAD "Transfer-Encoding: chunked\r\n\r\n%zx\r\n",
		     body_len);
	assert_int_equal(mtasts_http_new(&h), 0);
	assert_int_equal(mtasts_http_feed(h, head, (size_t)n), 0);
	assert_int_equal(mtasts_http_feed(h, body, body_len), expected);
	if (expected == 0) {
		assert_int_equal(mtasts_http_feed(h, "\r\n0\r\n\r\n", 7), 0);
		assert_true(mtasts_http_done(h));
		assert_non_null(mtasts_http_body(h, &len));
		assert_int_equal(len, body_len);
	}
	mtasts_http_free(h);
	free(body);
}

static void test_http_body_at_limit(void **state)
{
	check_large_body(MTASTS_HTTP_BODY_MAX, 0);
}

static void test_http_chunked_body_over_limit(void **state)
{
	check_large_body(MTASTS_HTTP_BODY_MAX + 1, BASE_ETOOLONG);
}

static void test_http_error_sticks(void **state)
{
	struct mtasts_http *h;

	assert_int_equal(mtasts_http_new(&h), 0);
	assert_int_equal(mtasts_http_feed(h, "HTTP/1.1 302 Found\r\n\r\n", 22),
			 BASE_EPROTO);
	assert_int_equal(mtasts_http_feed(h, OK_HEAD, strlen(OK_HEAD)),
			 BASE_EPROTO);
	assert_false(mtasts_http_done(h));
	mtasts_http_free(h);
	mtasts_http_free(NULL);
}

static void test_http_request(void **state)
{
	static const char expected[] =
		"GET /.well-known/mta-sts.txt HTTP/1.1\r\n"
		"Host: mta-sts.example.com\r\n"
		"User-Agent: mxlock\r\n"
		"Accept: text/plain\r\n"
		"Connection: close\r\n"
		"\r\n";
	char host[64];
	char out[256];

	assert_int_equal(mtasts_policy_host("Example.COM.", host,
					    sizeof(host)), 0);
	assert_string_equal(host, "mta-sts.example.com");
	assert_int_equal(mtasts_http_request(host, out, sizeof(out)), 0);
	assert_string_equal(out, expected);
}

static void test_http_request_limits(void **state)
{
	char out[256];

	assert_int_equal(mtasts_http_request("mta-sts.example.com", out, 40),
			 BASE_ETOOLONG);
	assert_int_equal(mtasts_http_request("bad host\r\nX: y", out,
					     sizeof(out)), BASE_EINVAL);
	assert_int_equal(mtasts_policy_host("a..b", out, sizeof(out)),
			 BASE_EINVAL);
	assert_int_equal(mtasts_policy_host("example.com", out, 19),
			 BASE_EINVAL);
}

static const struct CMUnitTest fixed_tests[] = {
	cmocka_unit_test(test_txt_reason_names_the_problem),
	cmocka_unit_test(test_policy_64_mx_accepted),
	cmocka_unit_test(test_policy_65_mx_keeps_first_64),
	cmocka_unit_test(test_policy_nul_byte_rejected),
	cmocka_unit_test(test_policy_length_bounds_body),
	cmocka_unit_test(test_policy_reason_names_the_problem),
	cmocka_unit_test(test_mode_names),
	cmocka_unit_test(test_mx_match_any_pattern),
	cmocka_unit_test(test_http_body_at_limit),
	cmocka_unit_test(test_http_chunked_body_over_limit),
	cmocka_unit_test(test_http_error_sticks),
	cmocka_unit_test(test_http_request),
	cmocka_unit_test(test_http_request_limits),
};

int main(void)
{
	size_t max = COUNT(txt_cases) + COUNT(policy_cases) +
		     COUNT(match_cases) + COUNT(http_cases) +
		     COUNT(fixed_tests);
	struct CMUnitTest *tests = calloc(max, sizeof(*tests));
	size_t rows;
	size_t n = 0;
	int failed;

	assert_non_null(tests);
	add_rows(tests, &n, "txt", test_txt, txt_cases, sizeof(txt_cases[0]),
		 COUNT(txt_cases));
	add_rows(tests, &n, "policy", test_policy, policy_cases,
		 sizeof(policy_cases[0]), COUNT(policy_cases));
	add_rows(tests, &n, "pattern", test_pattern, match_cases,
		 sizeof(match_cases[0]), COUNT(match_cases));
	add_rows(tests, &n, "http", test_http, http_cases,
		 sizeof(http_cases[0]), COUNT(http_cases));
	rows = n;
	for (size_t i = 0; i < COUNT(fixed_tests); i++)
		tests[n++] = fixed_tests[i];

	failed = _cmocka_run_group_tests("mtasts", tests, n, NULL, NULL);
	for (size_t i = 0; i < rows; i++)
		free((char *)tests[i].name);
	free(tests);
	return failed;
}
