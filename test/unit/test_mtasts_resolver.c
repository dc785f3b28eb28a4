/*
 * Unit tests for the MTA-STS resolver with a fake I/O: lookups and fetches
 * are queued, and each test answers them when it chooses, so callbacks
 * always run later than the call that started them, as in the proxy. The
 * cache is a real one in a folder made by mkdtemp.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>

#include <sqlite3.h>

#include <cmocka.h>

#include "base/err.h"
#include "mtasts/resolver.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define NOW 1700000000
#define PENDING_MAX 8

#define ENFORCE_BODY "version: STSv1\nmode: enforce\nmx: mx.example.com\n" \
	"mx: *.mx.example.net\nmax_age: 604800\n"
#define NONE_BODY "version: STSv1\nmode: none\nmax_age: 86400\n"
#define RESPONSE(body) "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" \
	"\r\n" body
#define ENFORCE_RESPONSE RESPONSE(ENFORCE_BODY)

/* One lookup or fetch waiting for the test to answer it. */
struct pending {
	bool is_fetch;
	char name[300];
	mtasts_txt_cb txt_done;
	mtasts_fetch_cb fetch_done;
	void *ctx;
};

struct fake {
	char base[64];
	struct mtasts_cache *cache;
	struct mtasts *m;
	int64_t now;

	int txt_return;		/* what lookup_txt returns */
	int fetch_return;	/* what fetch returns */
	int txt_calls;
	int fetch_calls;
	struct pending pending[PENDING_MAX];
	size_t pending_count;

	int verdicts;		/* verdict callbacks so far */
	struct mtasts_verdict verdict;
	char verdict_domain[BASE_DNAME_MAX + 1];
	bool free_in_callback;
	const void *row;	/* the table row of the test, if any */
};

static void push(struct fake *f, const struct pending *p)
{
	assert_true(f->pending_count < PENDING_MAX);
	f->pending[f->pending_count++] = *p;
}

static struct pending pop(struct fake *f, bool is_fetch)
{
	struct pending p;

	assert_true(f->pending_count > 0);
	p = f->pending[0];
	assert_int_equal(p.is_fetch, is_fetch);
	f->pending_count--;
	memmove(f->pending, f->pending + 1,
		f->pending_count * sizeof(f->pending[0]));
	return p;
}

static int fake_lookup_txt(void *arg, const char *name, mtasts_txt_cb done,
			   void *ctx)
{
	struct fake *f = arg;
	struct pending p = { .is_fetch = false, .txt_done = done, .ctx = ctx };

	f->txt_calls++;
	if (f->txt_return < 0)
		return f->txt_return;
	snprintf(p.name, sizeof(p.name), "%s", name);
	push(f, &p);
	return 0;
}

static int fake_fetch(void *arg, const char *policy_host,
		      mtasts_fetch_cb done, void *ctx)
{
	struct fake *f = arg;
	struct pending p = { .is_fetch = true, .fetch_done = done, .ctx = ctx };

	f->fetch_calls++;
	if (f->fetch_return < 0)
		return f->fetch_return;
	snprintf(p.name, sizeof(p.name), "%s", policy_host);
	push(f, &p);
	return 0;
}

static int64_t fake_now(void *arg)
{
	struct fake *f = arg;

	return f->now;
}

static void verdict_cb(void *arg, const struct mtasts_verdict *v)
{
	struct fake *f = arg;

	f->verdicts++;
	f->verdict = *v;
	snprintf(f->verdict_domain, sizeof(f->verdict_domain), "%s",
		 v->domain);
	f->verdict.domain = f->verdict_domain;
	if (f->free_in_callback) {
		mtasts_free(f->m);
		f->m = NULL;
	}
}

static void answer_txt(struct fake *f, int status, const char *record)
{
	struct pending p = pop(f, false);
	const char *records[1] = { record };

	p.txt_done(p.ctx, status, records, record != NULL ? 1 : 0);
}

static void answer_fetch(struct fake *f, int status, const char *response)
{
	struct pending p = pop(f, true);

	p.fetch_done(p.ctx, status, response,
		     response != NULL ? strlen(response) : 0);
}

static int setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct mtasts_io io = {
		.lookup_txt = fake_lookup_txt,
		.fetch = fake_fetch,
		.now = fake_now,
	};
	char dir[96];

	assert_non_null(f);
	f->row = *state;
	io.arg = f;
	f->now = NOW;
	snprintf(f->base, sizeof(f->base), "/tmp/mtasts-resolver-XXXXXX");
	assert_non_null(mkdtemp(f->base));
	snprintf(dir, sizeof(dir), "%s/state", f->base);
	assert_int_equal(mtasts_cache_open(dir, &f->cache), 0);
	assert_int_equal(mtasts_new(&io, f->cache, &f->m), 0);
	*state = f;
	return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag,
		      struct FTW *ftw)
{
	return remove(path);
}

static int teardown(void **state)
{
	struct fake *f = *state;

	mtasts_free(f->m);
	mtasts_cache_close(f->cache);
	nftw(f->base, remove_one, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Stores a cached entry for example.com fetched age seconds ago. */
static void put_cached(struct fake *f, const char *id, int64_t age,
		       const char *body)
{
	struct mtasts_entry e;

	memset(&e, 0, sizeof(e));
	snprintf(e.domain, sizeof(e.domain), "example.com");
	snprintf(e.id, sizeof(e.id), "%s", id);
	assert_int_equal(mtasts_policy_parse(body, strlen(body), &e.policy), 0);
	e.fetched_at = f->now - age;
	e.expires_at = e.fetched_at + e.policy.max_age;
	assert_int_equal(mtasts_cache_put_sync(f->cache, &e, body,
					       strlen(body)), 0);
}

/* Returns the id cached for example.com after queued writes, or "". */
static const char *cached_id(struct fake *f, struct mtasts_entry *e)
{
	mtasts_cache_flush(f->cache);
	if (mtasts_cache_get(f->cache, "example.com", e) != 0)
		return "";
	return e->id;
}

/* Starts a resolve; its callback must not run inside mtasts_resolve. */
static void resolve(struct fake *f, const char *domain)
{
	int before = f->verdicts;

	assert_int_equal(mtasts_resolve(f->m, domain, verdict_cb, f, NULL), 0);
	assert_int_equal(f->verdicts, before);
}

/* ---- Scenarios: one resolve of example.com ---- */

struct scenario {
	const char *name;
	const char *cached;	/* id of a cached policy, NULL for none */
	int64_t cached_age;	/* seconds since that policy was fetched */
	const char *cached_body;
	int txt_status;
	const char *txt;	/* the one TXT record, NULL for none */
	int fetch_status;	/* 1: no fetch expected */
	const char *response;
	enum mtasts_source source;
	bool applies;
	const char *id;		/* the verdict's id */
	const char *stored;	/* id in the cache afterwards, "" for none */
	const char *reason;	/* the verdict's reason starts with it */
};

#define NO_FETCH 1, NULL
#define WEEK 604800

static const struct scenario scenarios[] = {
	{ "fetch_without_cache", NULL, 0, NULL, 0, "v=STSv1; id=id1", 0,
	  ENFORCE_RESPONSE, MTASTS_SOURCE_FETCHED, true, "id1", "id1",
	  "fetched policy id1" },
	{ "cached_same_id", "id1", 60, ENFORCE_BODY, 0, "v=STSv1; id=id1",
	  NO_FETCH, MTASTS_SOURCE_CACHED, true, "id1", "id1",
	  "cached policy id1 matches" },
	{ "cached_other_id_fetched", "id1", 60, ENFORCE_BODY, 0,
	  "v=STSv1; id=id2", 0, RESPONSE(NONE_BODY), MTASTS_SOURCE_FETCHED,
	  false, "id2", "id2", "fetched policy id2" },
	{ "cached_expired_same_id", "id1", WEEK, ENFORCE_BODY, 0,
	  "v=STSv1; id=id1", 0, ENFORCE_RESPONSE, MTASTS_SOURCE_FETCHED, true,
	  "id1", "id1", "fetched policy id1" },
	{ "fetch_failed_cached_used", "id1", 60, ENFORCE_BODY, 0,
	  "v=STSv1; id=id2", BASE_EVERIFY, NULL,
	  MTASTS_SOURCE_CACHED_REFETCH_FAILED, true, "id1", "id1",
	  "policy fetch failed: certificate verification failed" },
	{ "fetch_failed_no_cache", NULL, 0, NULL, 0, "v=STSv1; id=id1",
	  BASE_ETIMEDOUT, NULL, MTASTS_SOURCE_NONE, false, "", "",
	  "policy fetch failed: timed out" },
	{ "fetch_404_cached_used", "id1", 60, ENFORCE_BODY, 0,
	  "v=STSv1; id=id2", 0, "HTTP/1.1 404 Not Found\r\n\r\n",
	  MTASTS_SOURCE_CACHED_REFETCH_FAILED, true, "id1", "id1",
	  "policy fetch failed: HTTP status 404" },
	{ "redirect_no_cache", NULL, 0, NULL, 0, "v=STSv1; id=id1", 0,
	  "HTTP/1.1 302 Found\r\nLocation: https://x.example/\r\n\r\n",
	  MTASTS_SOURCE_NONE, false, "", "",
	  "policy fetch failed: redirect not followed" },
	{ "invalid_policy_cached_used", "id1", 60, ENFORCE_BODY, 0,
	  "v=STSv1; id=id2", 0, RESPONSE("version: STSv1\nmode: enforce\n"),
	  MTASTS_SOURCE_CACHED_REFETCH_FAILED, true, "id1", "id1",
	  "invalid policy id2: max_age is missing" },
	{ "txt_missing_cached_kept", "id1", 60, ENFORCE_BODY, BASE_ENOTFOUND,
	  NULL, NO_FETCH, MTASTS_SOURCE_CACHED, true, "id1", "id1",
	  "no MTA-STS TXT record; cached policy id1" },
	{ "txt_missing_no_cache", NULL, 0, NULL, BASE_ENOTFOUND, NULL,
	  NO_FETCH, MTASTS_SOURCE_NONE, false, "", "",
	  "no MTA-STS TXT record" },
	{ "txt_error_cached_used", "id1", 60, ENFORCE_BODY, BASE_EDNS, NULL,
	  NO_FETCH, MTASTS_SOURCE_CACHED, true, "id1", "id1",
	  "TXT lookup failed: DNS lookup failed; cached policy id1" },
	{ "txt_error_no_cache", NULL, 0, NULL, BASE_ETIMEDOUT, NULL, NO_FETCH,
	  MTASTS_SOURCE_NONE, false, "", "", "TXT lookup failed: timed out" },
	{ "txt_invalid_cached_used", "id1", 60, ENFORCE_BODY, 0,
	  "v=STSv1; id=bad-id", NO_FETCH, MTASTS_SOURCE_CACHED, true, "id1",
	  "id1", "no valid MTA-STS TXT record" },
	{ "txt_invalid_no_cache", NULL, 0, NULL, 0, "v=STSv1", NO_FETCH,
	  MTASTS_SOURCE_NONE, false, "", "",
	  "no valid MTA-STS TXT record: id is missing" },
	{ "txt_missing_cache_expired", "id1", WEEK, ENFORCE_BODY,
	  BASE_ENOTFOUND, NULL, NO_FETCH, MTASTS_SOURCE_NONE, false, "", "id1",
	  "no MTA-STS TXT record" },
	{ "cached_mode_none", "id1", 60, NONE_BODY, 0, "v=STSv1; id=id1",
	  NO_FETCH, MTASTS_SOURCE_CACHED, false, "id1", "id1",
	  "cached policy id1 matches" },
};

static void test_scenario(void **state)
{
	struct fake *f = *state;
	const struct scenario *s = f->row;
	struct mtasts_entry e;

	if (s->cached != NULL)
		put_cached(f, s->cached, s->cached_age, s->cached_body);
	resolve(f, "Example.COM.");
	answer_txt(f, s->txt_status, s->txt);
	if (s->fetch_status != 1) {
		assert_int_equal(f->verdicts, 0);
		answer_fetch(f, s->fetch_status, s->response);
	}

	assert_int_equal(f->pending_count, 0);
	assert_int_equal(f->fetch_calls, s->fetch_status != 1);
	assert_int_equal(f->verdicts, 1);
	assert_string_equal(f->verdict.domain, "example.com");
	assert_int_equal(f->verdict.source, s->source);
	assert_int_equal(f->verdict.applies, s->applies);
	assert_string_equal(f->verdict.id, s->id);
	assert_int_equal(strncmp(f->verdict.reason, s->reason,
				 strlen(s->reason)), 0);
	/* The flag the fetch-failure log uses marks exactly these reasons. */
	assert_int_equal(f->verdict.fetch_error,
			 strncmp(s->reason, "policy fetch failed", 19) == 0);
	assert_string_equal(cached_id(f, &e), s->stored);
}

/* ---- Fixed behaviours ---- */

static void test_lookup_names(void **state)
{
	struct fake *f = *state;

	resolve(f, "Example.COM.");
	assert_string_equal(f->pending[0].name, "_mta-sts.example.com");
	answer_txt(f, 0, "v=STSv1; id=id1");
	assert_string_equal(f->pending[0].name, "mta-sts.example.com");
	answer_fetch(f, 0, ENFORCE_RESPONSE);
	assert_int_equal(f->verdict.policy.mx_count, 2);
	assert_string_equal(f->verdict.policy.mx[1], "*.mx.example.net");
	assert_int_equal(f->verdict.fetched_at, NOW);
	assert_int_equal(f->verdict.expires_at, NOW + WEEK);
	assert_true(f->verdict.changed);
	assert_int_equal(f->verdict.cache_error, 0);
}

static void test_invalid_domain_rejected(void **state)
{
	struct fake *f = *state;
	struct mtasts_req *req = (struct mtasts_req *)1;

	assert_int_equal(mtasts_resolve(f->m, "a..example", verdict_cb, f,
					&req), BASE_EINVAL);
	assert_null(req);
	assert_int_equal(f->txt_calls, 0);
}

/* A lookup that fails at once fails the call, and cb never runs. */
static void test_lookup_error_returned(void **state)
{
	struct fake *f = *state;

	f->txt_return = BASE_ENOMEM;
	assert_int_equal(mtasts_resolve(f->m, "example.com", verdict_cb, f,
					NULL), BASE_ENOMEM);
	assert_int_equal(f->verdicts, 0);
}

static void test_fetch_error_at_once(void **state)
{
	struct fake *f = *state;

	put_cached(f, "id1", 60, ENFORCE_BODY);
	f->fetch_return = BASE_EUNREACH;
	resolve(f, "example.com");
	answer_txt(f, 0, "v=STSv1; id=id2");
	assert_int_equal(f->verdicts, 1);
	assert_int_equal(f->verdict.source,
			 MTASTS_SOURCE_CACHED_REFETCH_FAILED);
	assert_string_equal(f->verdict.id, "id1");
}

/* Overwrites the cached policy text of example.com with junk. */
static void damage_cached(struct fake *f)
{
	char path[160];
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/state/mta-sts.db", f->base);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE policies SET body = 'junk'",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* RFC 8461 section 5: an unreadable cache may hide an enforce policy, so
   a failed fetch gives an uncertain verdict, not "no policy". */
static void test_unreadable_cache_uncertain(void **state)
{
	struct fake *f = *state;

	put_cached(f, "id1", 60, ENFORCE_BODY);
	damage_cached(f);
	f->fetch_return = BASE_EUNREACH;
	resolve(f, "example.com");
	answer_txt(f, 0, "v=STSv1; id=id2");
	assert_int_equal(f->verdicts, 1);
	assert_false(f->verdict.applies);
	assert_true(f->verdict.uncertain);
}

static void test_missing_cache_entry_not_uncertain(void **state)
{
	struct fake *f = *state;

	f->fetch_return = BASE_EUNREACH;
	resolve(f, "example.com");
	answer_txt(f, 0, "v=STSv1; id=id2");
	assert_int_equal(f->verdicts, 1);
	assert_false(f->verdict.uncertain);
}

/* RFC 8461 section 3.3: a failed id is not fetched again for 5 minutes. */
static void test_failed_fetch_waits(void **state)
{
	struct fake *f = *state;

	resolve(f, "example.com");
	answer_txt(f, 0, "v=STSv1; id=id1");
	answer_fetch(f, BASE_ETLS, NULL);

	f->now += MTASTS_RETRY_AFTER - 1;
	resolve(f, "example.com");
	answer_txt(f, 0, "v=STSv1; id=id1");
	assert_int_equal(f->fetch_calls, 1);
	assert_int_equal(f->verdicts, 2);
	assert_int_equal(f->verdict.source, MTASTS_SOURCE_NONE);
	assert_string_equal(f->verdict.reason,
			    "fetch of policy id1 failed less than 300 s ago");

	f->now += 1;
	resolve(f, "example.com");
	answer_txt(f, 0, "v=STSv1; id=id1");
	answer_fetch(f, 0, ENFORCE_RESPONSE);
	assert_int_equal(f->fetch_calls, 2);
	assert_int_equal(f->verdict.source, MTASTS_SOURCE_FETCHED);
}

static void test_failed_fetch_other_id_tried(void **state)
{
	struct fake *f = *state;

	resolve(f, "example.com");
	answer_txt(f, 0, "v=STSv1; id=id1");
	answer_fetch(f, 0, "HTTP/1.1 500 Oops\r\n\r\n");

	resolve(f, "example.com");
	answer_txt(f, 0, "v=STSv1; id=id2");
	answer_fetch(f, 0, ENFORCE_RESPONSE);
	assert_int_equal(f->fetch_calls, 2);
	assert_int_equal(f->verdict.source, MTASTS_SOURCE_FETCHED);
	assert_string_equal(f->verdict.id, "id2");
}

static void test_cancel_before_txt_answer(void **state)
{
	struct fake *f = *state;
	struct mtasts_req *req;

	assert_int_equal(mtasts_resolve(f->m, "example.com", verdict_cb, f,
					&req), 0);
	assert_non_null(req);
	mtasts_cancel(req);
	answer_txt(f, 0, "v=STSv1; id=id1");
	assert_int_equal(f->fetch_calls, 0);
	assert_int_equal(f->verdicts, 0);
}

static void test_cancel_during_fetch(void **state)
{
	struct fake *f = *state;
	struct mtasts_entry e;
	struct mtasts_req *req;

	assert_int_equal(mtasts_resolve(f->m, "example.com", verdict_cb, f,
					&req), 0);
	answer_txt(f, 0, "v=STSv1; id=id1");
	mtasts_cancel(req);
	answer_fetch(f, 0, ENFORCE_RESPONSE);
	assert_int_equal(f->verdicts, 0);
	assert_string_equal(cached_id(f, &e), "");
}

/* Freeing with requests under way: no callback, freed by the last answer. */
static void test_free_with_requests_pending(void **state)
{
	struct fake *f = *state;

	resolve(f, "example.com");
	resolve(f, "example.org");
	answer_txt(f, 0, "v=STSv1; id=id1");
	mtasts_free(f->m);
	f->m = NULL;
	answer_txt(f, 0, "v=STSv1; id=id2");
	answer_fetch(f, 0, ENFORCE_RESPONSE);
	assert_int_equal(f->verdicts, 0);
	assert_int_equal(f->pending_count, 0);
}

static void test_free_inside_callback(void **state)
{
	struct fake *f = *state;

	f->free_in_callback = true;
	resolve(f, "example.com");
	answer_txt(f, BASE_ENOTFOUND, NULL);
	assert_int_equal(f->verdicts, 1);
	assert_null(f->m);
}

static void test_without_cache_every_resolve_fetches(void **state)
{
	struct fake *f = *state;
	struct mtasts_io io = {
		.arg = f,
		.lookup_txt = fake_lookup_txt,
		.fetch = fake_fetch,
		.now = fake_now,
	};

	mtasts_free(f->m);
	assert_int_equal(mtasts_new(&io, NULL, &f->m), 0);
	for (int i = 1; i <= 2; i++) {
		resolve(f, "example.com");
		answer_txt(f, 0, "v=STSv1; id=id1");
		answer_fetch(f, 0, ENFORCE_RESPONSE);
		assert_int_equal(f->fetch_calls, i);
		assert_int_equal(f->verdict.source, MTASTS_SOURCE_FETCHED);
	}
}

static void test_new_rejects_incomplete_io(void **state)
{
	struct mtasts_io io = { .lookup_txt = fake_lookup_txt };
	struct mtasts *m = (struct mtasts *)1;

	assert_int_equal(mtasts_new(&io, NULL, &m), BASE_EINVAL);
	assert_null(m);
	mtasts_free(NULL);
}

/* A refresh fetches even when the cached policy has the TXT record's id. */
static void test_refresh_fetches_same_id(void **state)
{
	struct fake *f = *state;
	struct mtasts_entry e;

	put_cached(f, "id1", 2 * 86400, ENFORCE_BODY);
	assert_int_equal(mtasts_refresh(f->m, "example.com", verdict_cb, f,
					NULL), 0);
	answer_txt(f, 0, "v=STSv1; id=id1");
	answer_fetch(f, 0, ENFORCE_RESPONSE);
	assert_int_equal(f->verdict.source, MTASTS_SOURCE_FETCHED);
	assert_false(f->verdict.changed);
	assert_string_equal(cached_id(f, &e), "id1");
	assert_int_equal(e.fetched_at, NOW);
}

static void test_refresh_keeps_cache_without_txt(void **state)
{
	struct fake *f = *state;
	struct mtasts_entry e;

	put_cached(f, "id1", 2 * 86400, ENFORCE_BODY);
	assert_int_equal(mtasts_refresh(f->m, "example.com", verdict_cb, f,
					NULL), 0);
	answer_txt(f, BASE_ENOTFOUND, NULL);
	assert_int_equal(f->fetch_calls, 0);
	assert_int_equal(f->verdict.source, MTASTS_SOURCE_CACHED);
	assert_string_equal(cached_id(f, &e), "id1");
	assert_int_equal(e.fetched_at, NOW - 2 * 86400);
}

/* RFC 8461 section 5.1: look for a new id before failing for good. */
static void test_check_newer_finds_new_id(void **state)
{
	struct fake *f = *state;

	put_cached(f, "id1", 60, ENFORCE_BODY);
	assert_int_equal(mtasts_check_newer(f->m, "example.com", verdict_cb,
					    f, NULL), 0);
	answer_txt(f, 0, "v=STSv1; id=id2");
	answer_fetch(f, 0, RESPONSE(NONE_BODY));
	assert_int_equal(f->verdict.source, MTASTS_SOURCE_FETCHED);
	assert_true(f->verdict.changed);
	assert_string_equal(f->verdict.id, "id2");
}

static void test_check_newer_same_id(void **state)
{
	struct fake *f = *state;

	put_cached(f, "id1", 60, ENFORCE_BODY);
	assert_int_equal(mtasts_check_newer(f->m, "example.com", verdict_cb,
					    f, NULL), 0);
	answer_txt(f, 0, "v=STSv1; id=id1");
	assert_int_equal(f->fetch_calls, 0);
	assert_int_equal(f->verdict.source, MTASTS_SOURCE_CACHED);
	assert_false(f->verdict.changed);
}

static void test_check_newer_rate_limited(void **state)
{
	struct fake *f = *state;

	assert_int_equal(mtasts_check_newer(f->m, "example.com", verdict_cb,
					    f, NULL), 0);
	answer_txt(f, BASE_ENOTFOUND, NULL);

	f->now += MTASTS_CHECK_INTERVAL - 1;
	assert_int_equal(mtasts_check_newer(f->m, "EXAMPLE.com", verdict_cb,
					    f, NULL), BASE_ENOTFOUND);
	assert_int_equal(f->txt_calls, 1);
	assert_int_equal(mtasts_check_newer(f->m, "example.org", verdict_cb,
					    f, NULL), 0);
	answer_txt(f, BASE_ENOTFOUND, NULL);

	f->now += 1;
	assert_int_equal(mtasts_check_newer(f->m, "example.com", verdict_cb,
					    f, NULL), 0);
	answer_txt(f, BASE_ENOTFOUND, NULL);
	assert_int_equal(f->txt_calls, 3);
	assert_int_equal(f->verdicts, 3);
}

struct due_case {
	const char *name;
	enum mtasts_source source;
	int64_t max_age;
	int64_t age;		/* seconds since the fetch */
	bool expected;
};

static const struct due_case due_cases[] = {
	{ "fresh_week", MTASTS_SOURCE_FETCHED, WEEK, 0, false },
	{ "week_under_a_day", MTASTS_SOURCE_CACHED, WEEK, 86399, false },
	{ "week_after_a_day", MTASTS_SOURCE_CACHED, WEEK, 86400, true },
	{ "hour_half_used", MTASTS_SOURCE_CACHED, 3600, 1800, false },
	{ "hour_quarter_left", MTASTS_SOURCE_CACHED, 3600, 2701, true },
	{ "refetch_failed_due", MTASTS_SOURCE_CACHED_REFETCH_FAILED, WEEK,
	  90000, true },
	{ "no_policy", MTASTS_SOURCE_NONE, 0, 0, false },
};

static void test_refresh_due(void **state)
{
	const struct due_case *c = *state;
	struct mtasts_verdict v;

	memset(&v, 0, sizeof(v));
	v.source = c->source;
	v.fetched_at = NOW - c->age;
	v.expires_at = v.fetched_at + c->max_age;
	assert_int_equal(mtasts_refresh_due(&v, NOW), c->expected);
}

static void test_source_names(void **state)
{
	assert_string_equal(mtasts_source_name(MTASTS_SOURCE_NONE), "none");
	assert_string_equal(mtasts_source_name(MTASTS_SOURCE_FETCHED),
			    "fetched");
	assert_string_equal(mtasts_source_name(MTASTS_SOURCE_CACHED), "cached");
	assert_string_equal(
		mtasts_source_name(MTASTS_SOURCE_CACHED_REFETCH_FAILED),
		"cached-refetch-failed");
}

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

static const struct CMUnitTest fixed_tests[] = {
	TEST(test_lookup_names),
	TEST(test_invalid_domain_rejected),
	TEST(test_lookup_error_returned),
	TEST(test_fetch_error_at_once),
	TEST(test_unreadable_cache_uncertain),
	TEST(test_missing_cache_entry_not_uncertain),
	TEST(test_failed_fetch_waits),
	TEST(test_failed_fetch_other_id_tried),
	TEST(test_cancel_before_txt_answer),
	TEST(test_cancel_during_fetch),
	TEST(test_free_with_requests_pending),
	TEST(test_free_inside_callback),
	TEST(test_without_cache_every_resolve_fetches),
	TEST(test_refresh_fetches_same_id),
	TEST(test_refresh_keeps_cache_without_txt),
	TEST(test_check_newer_finds_new_id),
	TEST(test_check_newer_same_id),
	TEST(test_check_newer_rate_limited),
	cmocka_unit_test(test_new_rejects_incomplete_io),
	cmocka_unit_test(test_source_names),
};

/*
 * Adds one test per table row, named "<prefix>_<row name>". With a
 * fixture, setup finds the row in *state and replaces it with the fake.
 */
static void add_rows(struct CMUnitTest *tests, size_t *n, const char *prefix,
		     CMUnitTestFunction fn, bool fixture, const void *rows,
		     size_t row_size, size_t row_count)
{
	for (size_t i = 0; i < row_count; i++) {
		const void *row = (const char *)rows + i * row_size;
		const char *row_name = *(const char *const *)row;
		size_t name_len = strlen(prefix) + strlen(row_name) + 2;
		char *name = malloc(name_len);

		assert_non_null(name);
		snprintf(name, name_len, "%s_%s", prefix, row_name);
		tests[*n] = (struct CMUnitTest){
			.name = name,
			.test_func = fn,
			.initial_state = (void *)row,
			.setup_func = fixture ? setup : NULL,
			.teardown_func = fixture ? teardown : NULL,
		};
		(*n)++;
	}
}

int main(void)
{
	size_t max = COUNT(scenarios) + COUNT(due_cases) + COUNT(fixed_tests);
	struct CMUnitTest *tests = calloc(max, sizeof(*tests));
	size_t rows;
	size_t n = 0;
	int failed;

	assert_non_null(tests);
	add_rows(tests, &n, "resolve", test_scenario, true, scenarios,
		 sizeof(scenarios[0]), COUNT(scenarios));
	add_rows(tests, &n, "refresh_due", test_refresh_due, false, due_cases,
		 sizeof(due_cases[0]), COUNT(due_cases));
	rows = n;
	for (size_t i = 0; i < COUNT(fixed_tests); i++)
		tests[n++] = fixed_tests[i];

	failed = _cmocka_run_group_tests("mtasts_resolver", tests, n, NULL,
					 NULL);
	for (size_t i = 0; i < rows; i++)
		free((char *)tests[i].name);
	free(tests);
	return failed;
}
