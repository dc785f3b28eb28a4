/*
 * Unit tests for proxy/route.c: MX ordering (sort by preference, shuffle of
 * equal preferences, duplicates, host limit), Null MX detection (RFC 7505)
 * and the TLSA decision tables. Whole resolutions run against a scripted
 * DNS server on 127.0.0.1 that serves a fixed answer per name and type.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <cmocka.h>
#include <uv.h>

#include "conf/conf.h"
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

/* TLSA decision tables ----------------------------------------------------- */

struct tlsa_state_case {
	const char *name;
	enum dns_outcome outcome;
	enum dns_security security;
	enum route_tlsa state;
};

static const struct tlsa_state_case tlsa_state_cases[] = {
	{ "secure records", DNS_ANSWER, DNS_SECURE, ROUTE_TLSA_SECURE },
	{ "secure nodata", DNS_NODATA, DNS_SECURE, ROUTE_TLSA_NONE },
	{ "secure nxdomain", DNS_NXDOMAIN, DNS_SECURE, ROUTE_TLSA_NONE },
	{ "insecure records", DNS_ANSWER, DNS_INSECURE, ROUTE_TLSA_INSECURE },
	{ "insecure nodata", DNS_NODATA, DNS_INSECURE, ROUTE_TLSA_INSECURE },
	{ "insecure nxdomain", DNS_NXDOMAIN, DNS_INSECURE,
	  ROUTE_TLSA_INSECURE },
	{ "bogus", DNS_ERROR, DNS_BOGUS, ROUTE_TLSA_FAILED },
	{ "indeterminate", DNS_ERROR, DNS_INDETERMINATE, ROUTE_TLSA_FAILED },
};

static void test_route_tlsa_state_table(void **state)
{
	for (size_t i = 0;
	     i < sizeof(tlsa_state_cases) / sizeof(*tlsa_state_cases); i++) {
		const struct tlsa_state_case *c = &tlsa_state_cases[i];
		struct dns_result result = {
			.outcome = c->outcome,
			.security = c->security,
		};

		print_message("case: %s\n", c->name);
		assert_int_equal(route_tlsa_state(&result), c->state);
	}
}

struct tlsa_allowed_case {
	const char *name;
	bool want_tlsa;
	bool insecure_mx_option;
	enum dns_security mx_security;
	bool implicit_mx;
	size_t addr_count;
	enum dns_security addr_security;
	bool allowed;
};

static const struct tlsa_allowed_case tlsa_allowed_cases[] = {
	{ "secure mx and addresses", true, false, DNS_SECURE, false, 1,
	  DNS_SECURE, true },
	{ "tlsa not wanted", false, false, DNS_SECURE, false, 1,
	  DNS_SECURE, false },
	{ "insecure mx rrset", true, false, DNS_INSECURE, false, 1,
	  DNS_SECURE, false },
	{ "insecure mx rrset with option", true, true, DNS_INSECURE, false, 1,
	  DNS_SECURE, true },
	{ "implicit mx with insecure nodata", true, false, DNS_INSECURE, true,
	  1, DNS_SECURE, true },
	{ "insecure addresses", true, false, DNS_SECURE, false, 1,
	  DNS_INSECURE, false },
	{ "insecure addresses with option", true, true, DNS_SECURE, false, 1,
	  DNS_INSECURE, false },
	{ "insecure implicit mx addresses", true, false, DNS_INSECURE, true, 1,
	  DNS_INSECURE, false },
	{ "no address", true, false, DNS_SECURE, false, 0, DNS_SECURE,
	  false },
	{ "bogus addresses", true, false, DNS_SECURE, false, 1, DNS_BOGUS,
	  false },
};

static void test_route_tlsa_allowed_table(void **state)
{
	for (size_t i = 0;
	     i < sizeof(tlsa_allowed_cases) / sizeof(*tlsa_allowed_cases);
	     i++) {
		const struct tlsa_allowed_case *c = &tlsa_allowed_cases[i];
		struct route_options opts = {
			.max_hosts = 2,
			.want_tlsa = c->want_tlsa,
			.tlsa_insecure_mx = c->insecure_mx_option,
			.port = 25,
		};
		struct route route = {
			.implicit_mx = c->implicit_mx,
			.mx_security = c->mx_security,
		};
		struct route_host host = {
			.addr_count = c->addr_count,
			.addr_security = c->addr_security,
		};

		print_message("case: %s\n", c->name);
		assert_int_equal(route_tlsa_allowed(&route, &host, &opts),
				 c->allowed);
	}
}

static void test_route_tlsa_names(void **state)
{
	assert_string_equal(route_tlsa_name(ROUTE_TLSA_NOT_ASKED), "not-asked");
	assert_string_equal(route_tlsa_name(ROUTE_TLSA_NONE), "none");
	assert_string_equal(route_tlsa_name(ROUTE_TLSA_INSECURE), "insecure");
	assert_string_equal(route_tlsa_name(ROUTE_TLSA_SECURE), "secure");
	assert_string_equal(route_tlsa_name(ROUTE_TLSA_FAILED), "failed");
}

/* A scripted DNS server ---------------------------------------------------- */

#define CANNED_MAX 8
#define RDATA_MAX 3

/*
 * The answer to one name and type. Records are written in presentation
 * form: "10 mx.d.test" (MX), "127.0.0.10" (A), "3 1 1" (TLSA, with 32
 * bytes of association data, each the usage value).
 */
struct canned {
	const char *name;	/* question name, lower case, no dot */
	unsigned type;
	unsigned rcode;
	bool ad;
	bool drop;		/* never answer: the lookup times out */
	const char *cname;	/* answer with name CNAME cname first */
	const char *rdata[RDATA_MAX];
};

struct scripted_server {
	uv_udp_t udp;
	struct sockaddr_in addr;
	const struct canned *answers;
	bool default_ad;	/* AD of the NODATA answer for other names */
	unsigned queries;
	unsigned tlsa_queries;
};

struct msg {
	unsigned char buf[2048];
	size_t len;
};

static void put8(struct msg *m, unsigned value)
{
	m->buf[m->len++] = (unsigned char)value;
}

static void put16(struct msg *m, unsigned value)
{
	put8(m, value >> 8);
	put8(m, value & 0xff);
}

static void put_name(struct msg *m, const char *name)
{
	while (*name != '\0') {
		size_t len = strcspn(name, ".");

		put8(m, (unsigned)len);
		memcpy(m->buf + m->len, name, len);
		m->len += len;
		name += len;
		if (*name == '.')
			name++;
	}
	put8(m, 0);
}

/* Appends the RDATA of a record of type from its presentation form. */
static void put_rdata(struct msg *m, unsigned type, const char *text)
{
	size_t start = m->len + 2;
	unsigned a, b, c;

	m->len = start;
	if (type == ns_t_mx) {
		sscanf(text, "%u", &a);
		put16(m, a);
		put_name(m, strchr(text, ' ') + 1);
	} else if (type == ns_t_a) {
		inet_pton(AF_INET, text, m->buf + m->len);
		m->len += 4;
	} else if (type == ns_t_aaaa) {
		inet_pton(AF_INET6, text, m->buf + m->len);
		m->len += 16;
	} else if (type == ns_t_tlsa) {
		sscanf(text, "%u %u %u", &a, &b, &c);
		put8(m, a);
		put8(m, b);
		put8(m, c);
		memset(m->buf + m->len, (int)a, 32);
		m->len += 32;
	}
	m->buf[start - 2] = (unsigned char)((m->len - start) >> 8);
	m->buf[start - 1] = (unsigned char)((m->len - start) & 0xff);
}

static void put_rr(struct msg *m, const char *owner, unsigned type,
		   const char *text)
{
	if (owner == NULL)
		put16(m, 0xc00c);
	else
		put_name(m, owner);
	put16(m, type);
	put16(m, ns_c_in);
	put16(m, 0);
	put16(m, 60);
	if (type == ns_t_cname) {
		size_t start = m->len + 2;

		m->len = start;
		put_name(m, text);
		m->buf[start - 2] = 0;
		m->buf[start - 1] = (unsigned char)(m->len - start);
		return;
	}
	put_rdata(m, type, text);
}

/* Reads the question into name (lower case) and *type; returns its end. */
static size_t read_question(const unsigned char *q, size_t len, char *name,
			    size_t name_len, unsigned *type)
{
	size_t off = 12, used = 0;

	while (off < len && q[off] != 0) {
		for (unsigned i = 1; i <= q[off] && used + 2 < name_len; i++) {
			unsigned char ch = q[off + i];

			name[used++] = (char)(ch >= 'A' && ch <= 'Z' ?
					      ch - 'A' + 'a' : ch);
		}
		off += 1 + q[off];
		if (off < len && q[off] != 0)
			name[used++] = '.';
	}
	name[used] = '\0';
	*type = off + 3 <= len ? (unsigned)(q[off + 1] << 8 | q[off + 2]) : 0;
	return off + 5;
}

static const struct canned *find_canned(const struct scripted_server *srv,
					const char *name, unsigned type)
{
	for (const struct canned *c = srv->answers;
	     c != NULL && c->name != NULL; c++)
		if (c->type == type && strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

static void build_reply(const struct scripted_server *srv,
			const struct canned *c, const unsigned char *q,
			size_t question_end, struct msg *m)
{
	unsigned count = 0;

	while (c != NULL && count < RDATA_MAX && c->rdata[count] != NULL)
		count++;
	memcpy(m->buf, q, 2);
	m->len = 2;
	put8(m, 0x81);
	put8(m, 0x80 | ((c != NULL ? c->ad : srv->default_ad) ? 0x20 : 0) |
		(c != NULL ? c->rcode : 0));
	put16(m, 1);
	put16(m, count + (c != NULL && c->cname != NULL ? 1 : 0));
	put16(m, 0);
	put16(m, 0);
	memcpy(m->buf + m->len, q + 12, question_end - 12);
	m->len += question_end - 12;
	if (c == NULL)
		return;
	if (c->cname != NULL)
		put_rr(m, NULL, ns_t_cname, c->cname);
	for (unsigned i = 0; i < count; i++)
		put_rr(m, c->cname, c->type, c->rdata[i]);
}

static void scripted_alloc_cb(uv_handle_t *handle, size_t size,
			      uv_buf_t *buf)
{
	static char storage[2048];

	buf->base = storage;
	buf->len = sizeof(storage);
}

static void scripted_recv_cb(uv_udp_t *udp, ssize_t nread,
			     const uv_buf_t *buf, const struct sockaddr *from,
			     unsigned flags)
{
	struct scripted_server *srv = udp->data;
	const unsigned char *q = (const unsigned char *)buf->base;
	const struct canned *c;
	struct msg reply = {0};
	char name[256];
	unsigned type;
	size_t end;
	uv_buf_t out;

	if (nread < 17 || from == NULL)
		return;
	end = read_question(q, (size_t)nread, name, sizeof(name), &type);
	if (end > (size_t)nread)
		return;
	srv->queries++;
	if (type == ns_t_tlsa)
		srv->tlsa_queries++;
	c = find_canned(srv, name, type);
	if (c != NULL && c->drop)
		return;
	build_reply(srv, c, q, end, &reply);
	out = uv_buf_init((char *)reply.buf, (unsigned)reply.len);
	uv_udp_try_send(udp, &out, 1, from);
}

/* A loop, a scripted server, and a resolver that sends only to it. */
struct route_env {
	uv_loop_t loop;
	struct scripted_server srv;
	struct conf_dns_server server;
	struct conf conf;
	struct dns *dns;
};

static void env_start(struct route_env *env, const struct canned *answers,
		      bool default_ad)
{
	int len = sizeof(env->srv.addr);

	memset(env, 0, sizeof(*env));
	assert_int_equal(uv_loop_init(&env->loop), 0);
	env->srv.answers = answers;
	env->srv.default_ad = default_ad;
	assert_int_equal(uv_udp_init(&env->loop, &env->srv.udp), 0);
	env->srv.udp.data = &env->srv;
	uv_ip4_addr("127.0.0.1", 0, &env->srv.addr);
	assert_int_equal(uv_udp_bind(&env->srv.udp,
				     (const struct sockaddr *)&env->srv.addr,
				     0), 0);
	uv_udp_getsockname(&env->srv.udp, (struct sockaddr *)&env->srv.addr,
			   &len);
	uv_udp_recv_start(&env->srv.udp, scripted_alloc_cb, scripted_recv_cb);

	snprintf(env->server.address, sizeof(env->server.address),
		 "127.0.0.1");
	env->server.port = ntohs(env->srv.addr.sin_port);
	env->conf.dns_servers = &env->server;
	env->conf.dns_server_count = 1;
	env->conf.limits.timeouts.dns = 300;
	assert_int_equal(dns_new(&env->loop, &env->conf, &env->dns), 0);
}

static void env_stop(struct route_env *env)
{
	dns_free(env->dns);
	uv_close((uv_handle_t *)&env->srv.udp, NULL);
	uv_run(&env->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&env->loop), 0);
}

struct route_outcome {
	unsigned calls;
	enum route_status status;
	struct route *route;
};

static void outcome_cb(void *arg, enum route_status status,
		       struct route *route)
{
	struct route_outcome *out = arg;

	out->calls++;
	out->status = status;
	out->route = route;
}

static void tick_cb(uv_timer_t *timer)
{
}

/* Runs the loop until *done is not 0, for at most about 5 s. */
static void run_until(struct route_env *env, const unsigned *done)
{
	uv_timer_t tick;

	uv_timer_init(&env->loop, &tick);
	uv_timer_start(&tick, tick_cb, 10, 10);
	for (int i = 0; i < 500 && *done == 0; i++)
		uv_run(&env->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&tick, NULL);
	uv_run(&env->loop, UV_RUN_NOWAIT);
}

/* Resolutions against the scripted server --------------------------------- */

#define SEC true
#define INSEC false
#define MX_D(ad) { "d.test", ns_t_mx, 0, ad, false, NULL, { "10 mx.d.test" } }
#define A_MX(ad) { "mx.d.test", ns_t_a, 0, ad, false, NULL, { "127.0.0.10" } }
#define TLSA_MX(ad) { "_25._tcp.mx.d.test", ns_t_tlsa, 0, ad, false, NULL, \
		      { "3 1 1", "2 0 1" } }
#define RCODE(n, t, rc, ad) { n, t, rc, ad, false, NULL, { NULL } }

struct resolve_case {
	const char *name;
	struct canned answers[CANNED_MAX];
	bool default_ad;
	bool want_tlsa;
	bool insecure_mx_option;
	uint16_t port;
	enum route_status status;
	enum route_tlsa tlsa;
	size_t tlsa_count;
	const char *tlsa_base;
	unsigned tlsa_queries;
};

static const struct resolve_case resolve_cases[] = {
	{ "secure records", { MX_D(SEC), A_MX(SEC), TLSA_MX(SEC) },
	  SEC, true, false, 25,
	  ROUTE_OK, ROUTE_TLSA_SECURE, 2, "mx.d.test", 1 },
	{ "secure nodata", { MX_D(SEC), A_MX(SEC) },
	  SEC, true, false, 25,
	  ROUTE_OK, ROUTE_TLSA_NONE, 0, "mx.d.test", 1 },
	{ "secure nxdomain", { MX_D(SEC), A_MX(SEC),
	  RCODE("_25._tcp.mx.d.test", ns_t_tlsa, ns_r_nxdomain, SEC) },
	  SEC, true, false, 25,
	  ROUTE_OK, ROUTE_TLSA_NONE, 0, "mx.d.test", 1 },
	{ "insecure records", { MX_D(SEC), A_MX(SEC), TLSA_MX(INSEC) },
	  SEC, true, false, 25,
	  ROUTE_OK, ROUTE_TLSA_INSECURE, 0, "mx.d.test", 1 },
	{ "insecure nxdomain", { MX_D(SEC), A_MX(SEC),
	  RCODE("_25._tcp.mx.d.test", ns_t_tlsa, ns_r_nxdomain, INSEC) },
	  SEC, true, false, 25,
	  ROUTE_OK, ROUTE_TLSA_INSECURE, 0, "mx.d.test", 1 },
	{ "bogus servfail", { MX_D(SEC), A_MX(SEC),
	  RCODE("_25._tcp.mx.d.test", ns_t_tlsa, ns_r_servfail, INSEC) },
	  SEC, true, false, 25,
	  ROUTE_OK, ROUTE_TLSA_FAILED, 0, "mx.d.test", 1 },
	{ "refused", { MX_D(SEC), A_MX(SEC),
	  RCODE("_25._tcp.mx.d.test", ns_t_tlsa, ns_r_refused, INSEC) },
	  SEC, true, false, 25,
	  ROUTE_OK, ROUTE_TLSA_FAILED, 0, "mx.d.test", 1 },
	{ "timeout", { MX_D(SEC), A_MX(SEC),
	  { "_25._tcp.mx.d.test", ns_t_tlsa, 0, SEC, true, NULL, { NULL } } },
	  SEC, true, false, 25,
	  ROUTE_OK, ROUTE_TLSA_FAILED, 0, "mx.d.test", 2 },
	{ "insecure mx rrset", { MX_D(INSEC), A_MX(SEC), TLSA_MX(SEC) },
	  SEC, true, false, 25,
	  ROUTE_OK, ROUTE_TLSA_NOT_ASKED, 0, "mx.d.test", 0 },
	{ "insecure mx rrset with option",
	  { MX_D(INSEC), A_MX(SEC), TLSA_MX(SEC) },
	  SEC, true, true, 25,
	  ROUTE_OK, ROUTE_TLSA_SECURE, 2, "mx.d.test", 1 },
	{ "insecure addresses", { MX_D(SEC), A_MX(INSEC), TLSA_MX(SEC) },
	  SEC, true, true, 25,
	  ROUTE_OK, ROUTE_TLSA_NOT_ASKED, 0, "mx.d.test", 0 },
	{ "tlsa not wanted", { MX_D(SEC), A_MX(SEC), TLSA_MX(SEC) },
	  SEC, false, false, 25,
	  ROUTE_OK, ROUTE_TLSA_NOT_ASKED, 0, "mx.d.test", 0 },
	{ "implicit mx", { RCODE("d.test", ns_t_mx, 0, INSEC),
	  { "d.test", ns_t_a, 0, SEC, false, NULL, { "127.0.0.10" } },
	  { "_25._tcp.d.test", ns_t_tlsa, 0, SEC, false, NULL, { "3 1 1" } } },
	  SEC, true, false, 25,
	  ROUTE_OK, ROUTE_TLSA_SECURE, 1, "d.test", 1 },
	{ "cname tlsa at target", { MX_D(SEC),
	  { "mx.d.test", ns_t_a, 0, SEC, false, "real.d.test",
	    { "127.0.0.10" } },
	  { "_25._tcp.real.d.test", ns_t_tlsa, 0, SEC, false, NULL,
	    { "3 1 1" } },
	  TLSA_MX(SEC) },
	  SEC, true, false, 25,
	  ROUTE_OK, ROUTE_TLSA_SECURE, 1, "real.d.test", 1 },
	{ "cname target nodata then original", { MX_D(SEC),
	  { "mx.d.test", ns_t_a, 0, SEC, false, "real.d.test",
	    { "127.0.0.10" } },
	  TLSA_MX(SEC) },
	  SEC, true, false, 25,
	  ROUTE_OK, ROUTE_TLSA_SECURE, 2, "mx.d.test", 2 },
	{ "cname nodata at both names", { MX_D(SEC),
	  { "mx.d.test", ns_t_a, 0, SEC, false, "real.d.test",
	    { "127.0.0.10" } } },
	  SEC, true, false, 25,
	  ROUTE_OK, ROUTE_TLSA_NONE, 0, "mx.d.test", 2 },
	{ "cname target bogus", { MX_D(SEC),
	  { "mx.d.test", ns_t_a, 0, SEC, false, "real.d.test",
	    { "127.0.0.10" } },
	  RCODE("_25._tcp.real.d.test", ns_t_tlsa, ns_r_servfail, INSEC),
	  TLSA_MX(SEC) },
	  SEC, true, false, 25,
	  ROUTE_OK, ROUTE_TLSA_FAILED, 0, "mx.d.test", 1 },
	{ "cname chain insecure", { MX_D(SEC),
	  { "mx.d.test", ns_t_a, 0, INSEC, false, "real.d.test",
	    { "127.0.0.10" } },
	  TLSA_MX(SEC) },
	  SEC, true, false, 25,
	  ROUTE_OK, ROUTE_TLSA_NOT_ASKED, 0, "mx.d.test", 0 },
	{ "cname on tlsa owner", { MX_D(SEC), A_MX(SEC),
	  { "_25._tcp.mx.d.test", ns_t_tlsa, 0, SEC, false,
	    "_25._tcp.other.d.test", { "3 1 1" } } },
	  SEC, true, false, 25,
	  ROUTE_OK, ROUTE_TLSA_SECURE, 1, "mx.d.test", 1 },
	{ "failed aaaa keeps tlsa", { MX_D(SEC), A_MX(SEC), TLSA_MX(SEC),
	  RCODE("mx.d.test", ns_t_aaaa, ns_r_servfail, INSEC) },
	  SEC, true, false, 25,
	  ROUTE_OK, ROUTE_TLSA_SECURE, 2, "mx.d.test", 1 },
	{ "port label", { MX_D(SEC), A_MX(SEC),
	  { "_2525._tcp.mx.d.test", ns_t_tlsa, 0, SEC, false, NULL,
	    { "3 1 1" } } },
	  SEC, true, false, 2525,
	  ROUTE_OK, ROUTE_TLSA_SECURE, 1, "mx.d.test", 1 },
	{ "host lookups failed", { MX_D(SEC),
	  RCODE("mx.d.test", ns_t_a, ns_r_servfail, INSEC),
	  RCODE("mx.d.test", ns_t_aaaa, ns_r_servfail, INSEC) },
	  SEC, true, false, 25,
	  ROUTE_TEMPFAIL, ROUTE_TLSA_NOT_ASKED, 0, "mx.d.test", 0 },
};

static void check_resolution(const struct resolve_case *c,
			     const struct route_outcome *out,
			     const struct route_env *env)
{
	const struct route_host *host = &out->route->hosts[0];

	assert_int_equal(out->calls, 1);
	assert_int_equal(out->status, c->status);
	assert_non_null(out->route);
	assert_int_equal(out->route->host_count, 1);
	assert_int_equal(host->tlsa_state, c->tlsa);
	assert_int_equal(host->tlsa_count, c->tlsa_count);
	assert_string_equal(host->tlsa_base, c->tlsa_base);
	assert_int_equal(env->srv.tlsa_queries, c->tlsa_queries);
	if (c->tlsa_count > 0) {
		assert_int_equal(host->tlsa[0].usage, 3);
		assert_int_equal(host->tlsa[0].data[0], 3);
	}
}

static void test_route_resolve_tlsa_table(void **state)
{
	for (size_t i = 0; i < sizeof(resolve_cases) / sizeof(*resolve_cases);
	     i++) {
		const struct resolve_case *c = &resolve_cases[i];
		struct route_options opts = {
			.max_hosts = 4,
			.want_tlsa = c->want_tlsa,
			.tlsa_insecure_mx = c->insecure_mx_option,
			.port = c->port,
		};
		struct route_outcome out = {0};
		struct route_req *req;
		struct route_env env;

		print_message("case: %s\n", c->name);
		env_start(&env, c->answers, c->default_ad);
		assert_int_equal(route_resolve(env.dns, "D.test", &opts,
					       outcome_cb, &out, &req), 0);
		run_until(&env, &out.calls);
		check_resolution(c, &out, &env);
		route_free(out.route);
		env_stop(&env);
	}
}

static void test_route_cancel_during_tlsa(void **state)
{
	static const struct canned answers[] = {
		MX_D(SEC), A_MX(SEC),
		{ "_25._tcp.mx.d.test", ns_t_tlsa, 0, SEC, true, NULL,
		  { NULL } },
		{ NULL },
	};
	struct route_options opts = { .max_hosts = 4, .want_tlsa = true,
				      .port = 25 };
	struct route_outcome out = {0};
	struct route_req *req;
	struct route_env env;

	/* The request is freed with its queries outstanding and its
	 * callback never runs (LeakSanitizer checks the memory). */
	env_start(&env, answers, SEC);
	assert_int_equal(route_resolve(env.dns, "d.test", &opts, outcome_cb,
				       &out, &req), 0);
	run_until(&env, &env.srv.tlsa_queries);
	assert_int_equal(env.srv.tlsa_queries, 1);
	route_cancel(req);
	for (int i = 0; i < 50; i++)
		uv_run(&env.loop, UV_RUN_NOWAIT);
	assert_int_equal(out.calls, 0);
	env_stop(&env);
}

static void test_route_tlsa_per_host(void **state)
{
	static const struct canned answers[] = {
		{ "d.test", ns_t_mx, 0, SEC, false, NULL,
		  { "10 mx.d.test", "20 mx2.d.test" } },
		A_MX(SEC),
		{ "mx2.d.test", ns_t_a, 0, INSEC, false, NULL,
		  { "127.0.0.11" } },
		TLSA_MX(SEC),
		{ NULL },
	};
	struct route_options opts = { .max_hosts = 4, .want_tlsa = true,
				      .port = 25 };
	struct route_outcome out = {0};
	struct route_req *req;
	struct route_env env;

	env_start(&env, answers, SEC);
	assert_int_equal(route_resolve(env.dns, "d.test", &opts, outcome_cb,
				       &out, &req), 0);
	run_until(&env, &out.calls);
	assert_int_equal(out.status, ROUTE_OK);
	assert_int_equal(out.route->host_count, 2);
	assert_string_equal(out.route->hosts[0].name, "mx.d.test");
	assert_int_equal(out.route->hosts[0].tlsa_state, ROUTE_TLSA_SECURE);
	assert_string_equal(out.route->hosts[1].name, "mx2.d.test");
	assert_int_equal(out.route->hosts[1].tlsa_state,
			 ROUTE_TLSA_NOT_ASKED);
	assert_int_equal(env.srv.tlsa_queries, 1);
	route_free(out.route);
	env_stop(&env);
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
		cmocka_unit_test(test_route_tlsa_state_table),
		cmocka_unit_test(test_route_tlsa_allowed_table),
		cmocka_unit_test(test_route_tlsa_names),
		cmocka_unit_test(test_route_resolve_tlsa_table),
		cmocka_unit_test(test_route_cancel_during_tlsa),
		cmocka_unit_test(test_route_tlsa_per_host),
		cmocka_unit_test(test_route_status_names),
		cmocka_unit_test(test_route_free_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
