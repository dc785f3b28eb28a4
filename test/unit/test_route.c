/*
 * Unit tests for the pure parts of proxy/route.c: MX ordering (sort by
 * preference, shuffle of equal preferences, duplicates, host limit) and
 * Null MX detection (RFC 7505).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "route.h"

#define MX_MAX 8

/* Returns the numbers of a fixed list in turn, then 0. */
struct script {
	const uint32_t *values;
	size_t count;
	size_t next;
};

static uint32_t scripted_random(void *arg)
{
	struct script *script = arg;

	if (script->next >= script->count)
		return 0;
	return script->values[script->next++];
}

/* A linear congruential generator: enough to reach every order. */
static uint32_t lcg_random(void *arg)
{
	uint32_t *state = arg;

	*state = *state * 1664525u + 1013904223u;
	return *state >> 8;
}

static size_t load(struct dns_mx *mx, const char *const *names,
		   const unsigned *preferences)
{
	size_t count = 0;

	while (names[count] != NULL) {
		snprintf(mx[count].exchange, sizeof(mx[count].exchange), "%s",
			 names[count]);
		mx[count].preference = preferences[count];
		count++;
	}
	return count;
}

struct sort_case {
	const char *name;
	const char *in[MX_MAX];
	unsigned pref[MX_MAX];
	size_t max_hosts;
	const char *out[MX_MAX];
};

/* With no script the random source returns 0, so every tie of n hosts
 * ends rotated: Fisher-Yates swaps each position with the first. */
static const struct sort_case sort_cases[] = {
	{ "sorts by preference",
	  { "c.test", "a.test", "b.test" }, { 30, 10, 20 }, 8,
	  { "a.test", "b.test", "c.test" } },
	{ "drops root record among hosts",
	  { "", "a.test" }, { 0, 10 }, 8,
	  { "a.test" } },
	{ "drops invalid host name",
	  { "bad..name", "a.test" }, { 0, 10 }, 8,
	  { "a.test" } },
	{ "keeps best preference of duplicate",
	  { "b.test", "a.test", "a.test" }, { 5, 20, 1 }, 8,
	  { "a.test", "b.test" } },
	{ "duplicates ignore case and dot",
	  { "MX.Test.", "mx.test" }, { 10, 20 }, 8,
	  { "mx.test" } },
	{ "keeps at most max hosts",
	  { "a.test", "b.test", "c.test" }, { 10, 20, 30 }, 2,
	  { "a.test", "b.test" } },
	{ "shuffles only equal preferences",
	  { "x.test", "p.test", "q.test", "r.test" }, { 5, 10, 10, 10 }, 8,
	  { "x.test", "q.test", "r.test", "p.test" } },
	{ "empty set stays empty",
	  { NULL }, { 0 }, 8,
	  { NULL } },
};

static void test_route_sort_table(void **state)
{
	for (size_t i = 0; i < sizeof(sort_cases) / sizeof(*sort_cases); i++) {
		const struct sort_case *c = &sort_cases[i];
		struct script script = {0};
		struct dns_mx mx[MX_MAX];
		size_t count = load(mx, c->in, c->pref);
		size_t expected = 0;

		while (c->out[expected] != NULL)
			expected++;
		count = route_sort_mx(mx, count, c->max_hosts, scripted_random,
				      &script);

		print_message("case: %s\n", c->name);
		assert_int_equal(count, expected);
		for (size_t j = 0; j < count; j++)
			assert_string_equal(mx[j].exchange, c->out[j]);
	}
}

static void test_route_sort_uses_random_values(void **state)
{
	static const char *const names[] = { "a.test", "b.test", "c.test",
					     NULL };
	static const unsigned prefs[] = { 10, 10, 10 };
	/* i = 2 picks j = 2 % 3 = 2 (no swap), i = 1 picks j = 1 % 2 = 1. */
	static const uint32_t values[] = { 2, 1 };
	struct script script = { .values = values, .count = 2 };
	struct dns_mx mx[MX_MAX];
	size_t count = load(mx, names, prefs);

	count = route_sort_mx(mx, count, 8, scripted_random, &script);
	assert_int_equal(count, 3);
	assert_string_equal(mx[0].exchange, "a.test");
	assert_string_equal(mx[1].exchange, "b.test");
	assert_string_equal(mx[2].exchange, "c.test");
	assert_int_equal(script.next, 2);
}

static void test_route_sort_reaches_every_order(void **state)
{
	static const char *const names[] = { "a.test", "b.test", "c.test",
					     "z.test", NULL };
	static const unsigned prefs[] = { 10, 10, 10, 5 };
	bool seen[3][3] = {{false}};
	uint32_t seed = 1;

	for (int run = 0; run < 300; run++) {
		struct dns_mx mx[MX_MAX];
		size_t count = load(mx, names, prefs);

		count = route_sort_mx(mx, count, 8, lcg_random, &seed);
		assert_int_equal(count, 4);
		assert_string_equal(mx[0].exchange, "z.test");
		for (size_t j = 1; j < 4; j++) {
			assert_int_equal(mx[j].preference, 10);
			seen[j - 1][mx[j].exchange[0] - 'a'] = true;
		}
	}
	/* Each of the three hosts appeared at each of the three places. */
	for (int place = 0; place < 3; place++)
		for (int host = 0; host < 3; host++)
			assert_true(seen[place][host]);
}

static void test_route_sort_default_random(void **state)
{
	static const char *const names[] = { "b.test", "a.test", NULL };
	static const unsigned prefs[] = { 20, 10 };
	struct dns_mx mx[MX_MAX];
	size_t count = load(mx, names, prefs);

	count = route_sort_mx(mx, count, 8, NULL, NULL);
	assert_int_equal(count, 2);
	assert_string_equal(mx[0].exchange, "a.test");
	assert_string_equal(mx[1].exchange, "b.test");
}

struct null_mx_case {
	const char *name;
	const char *in[MX_MAX];
	unsigned pref[MX_MAX];
	bool null_mx;
};

static const struct null_mx_case null_mx_cases[] = {
	{ "single root record", { "" }, { 0 }, true },
	{ "single root with preference 10", { "" }, { 10 }, true },
	{ "root among other hosts", { "", "mx.test" }, { 0, 10 }, false },
	{ "single host", { "mx.test" }, { 0 }, false },
	{ "no records", { NULL }, { 0 }, false },
};

static void test_route_null_mx_table(void **state)
{
	for (size_t i = 0; i < sizeof(null_mx_cases) / sizeof(*null_mx_cases);
	     i++) {
		const struct null_mx_case *c = &null_mx_cases[i];
		struct dns_mx mx[MX_MAX];
		size_t count = load(mx, c->in, c->pref);

		print_message("case: %s\n", c->name);
		assert_int_equal(route_is_null_mx(mx, count), c->null_mx);
	}
}

static void test_route_status_names(void **state)
{
	assert_string_equal(route_status_name(ROUTE_OK), "ok");
	assert_string_equal(route_status_name(ROUTE_NULL_MX), "null-mx");
	assert_string_equal(route_status_name(ROUTE_NO_DOMAIN), "no-domain");
	assert_string_equal(route_status_name(ROUTE_TEMPFAIL), "tempfail");
	assert_string_equal(route_status_name(ROUTE_NO_ADDRESS),
			    "no-address");
}

static void test_route_free_null(void **state)
{
	route_free(NULL);
	route_cancel(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route_sort_table),
		cmocka_unit_test(test_route_sort_uses_random_values),
		cmocka_unit_test(test_route_sort_reaches_every_order),
		cmocka_unit_test(test_route_sort_default_random),
		cmocka_unit_test(test_route_null_mx_table),
		cmocka_unit_test(test_route_status_names),
		cmocka_unit_test(test_route_free_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
