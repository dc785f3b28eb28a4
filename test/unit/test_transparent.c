/*
 * Transparent interception helpers: address text and equality, matching
 * the original destination against a route, putting the matched host
 * first, and the one-host route for passthrough.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "route.h"
#include "transparent.h"

/* Fills sa with address text (IPv4 or IPv6) and port. */
static void make_addr(struct sockaddr_storage *sa, const char *text,
		      uint16_t port)
{
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
	struct sockaddr_in *in = (struct sockaddr_in *)sa;

	memset(sa, 0, sizeof(*sa));
	if (strchr(text, ':') != NULL) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		assert_int_equal(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
		return;
	}
	in->sin_family = AF_INET;
	in->sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, text, &in->sin_addr), 1);
}

static struct sockaddr *route_addr_at(const struct route *route, size_t h,
				   size_t a)
{
	return (struct sockaddr *)&route->hosts[h].addrs[a].sa;
}

/*
 * A route of three hosts, mx0 to mx2, with two addresses each on port 25:
 * mx0 has 192.0.2.10 and 2001:db8::11, mx1 .20 and ::21, mx2 .30 and ::31.
 */
static struct route *make_route(void)
{
	struct route *route = calloc(1, sizeof(*route));
	char text[64];

	assert_non_null(route);
	snprintf(route->domain, sizeof(route->domain), "example.org");
	route->host_count = 3;
	route->hosts = calloc(3, sizeof(*route->hosts));
	assert_non_null(route->hosts);
	for (size_t h = 0; h < 3; h++) {
		struct route_host *host = &route->hosts[h];

		snprintf(host->name, sizeof(host->name), "mx%zu.example.org", h);
		host->addr_count = 2;
		host->addrs = calloc(2, sizeof(*host->addrs));
		assert_non_null(host->addrs);
		snprintf(text, sizeof(text), "192.0.2.%zu0", h + 1);
		make_addr(&host->addrs[0].sa, text, 25);
		snprintf(text, sizeof(text), "2001:db8::%zu1", h + 1);
		make_addr(&host->addrs[1].sa, text, 25);
	}
	return route;
}

struct text_case {
	const char *address;
	uint16_t port;
	const char *expected;
};

static const struct text_case text_cases[] = {
	{ "192.0.2.7", 25, "192.0.2.7:25" },
	{ "2001:db8::7", 25, "[2001:db8::7]:25" },
	{ "::ffff:192.0.2.7", 2525, "[::ffff:192.0.2.7]:2525" },
};

static void test_transparent_addr_text_forms(void **state)
{
	struct sockaddr_storage sa;
	char out[80];

	for (size_t i = 0; i < sizeof(text_cases) / sizeof(text_cases[0]); i++) {
		make_addr(&sa, text_cases[i].address, text_cases[i].port);
		transparent_addr_text((struct sockaddr *)&sa, out, sizeof(out));
		assert_string_equal(out, text_cases[i].expected);
	}
}

struct equal_case {
	const char *a;
	uint16_t a_port;
	const char *b;
	uint16_t b_port;
	bool equal;
};

static const struct equal_case equal_cases[] = {
	{ "192.0.2.1", 25, "192.0.2.1", 25, true },
	{ "192.0.2.1", 25, "192.0.2.1", 587, false },
	{ "192.0.2.1", 25, "192.0.2.2", 25, false },
	{ "2001:db8::1", 25, "2001:db8::1", 25, true },
	{ "2001:db8::1", 25, "2001:db8::2", 25, false },
	{ "192.0.2.1", 25, "::ffff:192.0.2.1", 25, false },
};

static void test_transparent_addr_equal_cases(void **state)
{
	struct sockaddr_storage a, b;

	for (size_t i = 0; i < sizeof(equal_cases) / sizeof(equal_cases[0]); i++) {
		const struct equal_case *tc = &equal_cases[i];

		make_addr(&a, tc->a, tc->a_port);
		make_addr(&b, tc->b, tc->b_port);
		assert_int_equal(transparent_addr_equal((struct sockaddr *)&a,
							(struct sockaddr *)&b),
				 tc->equal);
	}
}

static void test_transparent_match_finds_host_and_address(void **state)
{
	struct route *route = make_route();
	struct sockaddr_storage dst;
	size_t host = 9, addr = 9;

	make_addr(&dst, "2001:db8::31", 25);
	assert_true(transparent_match(route, (struct sockaddr *)&dst, &host, &addr));
	assert_int_equal(host, 2);
	assert_int_equal(addr, 1);
	route_free(route);
}

static void test_transparent_match_needs_same_port(void **state)
{
	struct route *route = make_route();
	struct sockaddr_storage dst;
	size_t host, addr;

	make_addr(&dst, "192.0.2.20", 587);
	assert_false(transparent_match(route, (struct sockaddr *)&dst, &host, &addr));
	make_addr(&dst, "192.0.2.99", 25);
	assert_false(transparent_match(route, (struct sockaddr *)&dst, &host, &addr));
	route_free(route);
}

static void test_transparent_focus_keeps_others_in_order(void **state)
{
	struct route *route = make_route();
	struct sockaddr_storage want;

	transparent_route_focus(route, 2, 1, true);
	assert_int_equal(route->host_count, 3);
	assert_string_equal(route->hosts[0].name, "mx2.example.org");
	assert_string_equal(route->hosts[1].name, "mx0.example.org");
	assert_string_equal(route->hosts[2].name, "mx1.example.org");
	make_addr(&want, "2001:db8::31", 25);
	assert_true(transparent_addr_equal(route_addr_at(route, 0, 0),
					   (struct sockaddr *)&want));
	make_addr(&want, "192.0.2.30", 25);
	assert_true(transparent_addr_equal(route_addr_at(route, 0, 1),
					   (struct sockaddr *)&want));
	route_free(route);
}

static void test_transparent_focus_drops_others(void **state)
{
	struct route *route = make_route();

	transparent_route_focus(route, 1, 0, false);
	assert_int_equal(route->host_count, 1);
	assert_string_equal(route->hosts[0].name, "mx1.example.org");
	assert_int_equal(route->hosts[0].addr_count, 2);
	route_free(route);
}

static void test_transparent_passthrough_route_names_address(void **state)
{
	struct sockaddr_storage dst;
	struct route *route = NULL;
	size_t host, addr;

	make_addr(&dst, "2001:db8::99", 25);
	assert_int_equal(transparent_route_passthrough("example.org",
						       (struct sockaddr *)&dst,
						       &route), 0);
	assert_string_equal(route->domain, "example.org");
	assert_int_equal(route->host_count, 1);
	assert_string_equal(route->hosts[0].name, "2001:db8::99");
	assert_int_equal(route->hosts[0].tlsa_state, ROUTE_TLSA_NOT_ASKED);
	assert_int_equal(route->hosts[0].addr_security, DNS_INSECURE);
	assert_true(transparent_match(route, (struct sockaddr *)&dst, &host, &addr));
	route_free(route);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transparent_addr_text_forms),
		cmocka_unit_test(test_transparent_addr_equal_cases),
		cmocka_unit_test(test_transparent_match_finds_host_and_address),
		cmocka_unit_test(test_transparent_match_needs_same_port),
		cmocka_unit_test(test_transparent_focus_keeps_others_in_order),
		cmocka_unit_test(test_transparent_focus_drops_others),
		cmocka_unit_test(test_transparent_passthrough_route_names_address),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
