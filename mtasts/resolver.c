/*
 * MTA-STS resolver: see resolver.h. A request is one TXT lookup and at
 * most one fetch. Failed fetches and checks for a newer policy are
 * remembered in memory only, in two tables of MTASTS_MARKS_MAX slots per
 * resolver (the oldest slot is reused when a table is full). A restart
 * forgets them, which costs at most one early retry per domain.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "resolver.h"

#define CAUSE_MAX 128

enum req_kind {
	REQ_RESOLVE,
	REQ_REFRESH,
	REQ_CHECK,
};

/* A domain, a policy id ("" for checks) and when it was last seen. */
struct mark {
	char domain[BASE_DNAME_MAX + 1];
	char id[MTASTS_ID_MAX + 1];
	int64_t at;			/* 0: the slot is free */
};

struct mtasts {
	struct mtasts_io io;
	struct mtasts_cache *cache;	/* NULL: nothing is cached */
	struct mtasts_req *reqs;	/* requests whose callback is due */
	size_t live;			/* requests not yet freed */
	bool closing;
	struct mark failures[MTASTS_MARKS_MAX];
	struct mark checks[MTASTS_MARKS_MAX];
};

struct mtasts_req {
	struct mtasts *m;
	struct mtasts_req *prev;
	struct mtasts_req *next;
	enum req_kind kind;
	mtasts_verdict_cb cb;
	void *arg;
	bool canceled;
	char domain[BASE_DNAME_MAX + 1];
	char id[MTASTS_ID_MAX + 1];	/* from the TXT record */
	bool have_cached;		/* cached is an unexpired entry */
	int cache_error;		/* why the cache could not be read */
	struct mtasts_entry cached;
	struct mtasts_verdict verdict;
};

static struct mark *mark_find(struct mark *marks, const char *domain,
			      const char *id)
{
	for (size_t i = 0; i < MTASTS_MARKS_MAX; i++) {
		struct mark *k = &marks[i];

		if (k->at != 0 && strcmp(k->domain, domain) == 0 &&
		    strcmp(k->id, id) == 0)
			return k;
	}
	return NULL;
}

/* Records domain and id at now, in their own slot, a free or the oldest. */
static void mark_set(struct mark *marks, const char *domain, const char *id,
		     int64_t now)
{
	struct mark *k = mark_find(marks, domain, id);

	for (size_t i = 0; k == NULL && i < MTASTS_MARKS_MAX; i++) {
		if (marks[i].at == 0)
			k = &marks[i];
	}
	for (size_t i = 0; k == NULL && i < MTASTS_MARKS_MAX; i++) {
		if (i == 0 || marks[i].at < k->at)
			k = &marks[i];
	}
	snprintf(k->domain, sizeof(k->domain), "%s", domain);
	snprintf(k->id, sizeof(k->id), "%s", id);
	k->at = now;
}

static void mark_clear(struct mark *marks, const char *domain)
{
	for (size_t i = 0; i < MTASTS_MARKS_MAX; i++) {
		if (strcmp(marks[i].domain, domain) == 0)
			marks[i].at = 0;
	}
}

/* True when domain and id were marked less than interval seconds ago. */
static bool mark_recent(struct mark *marks, const char *domain,
			const char *id, int64_t now, int64_t interval)
{
	struct mark *k = mark_find(marks, domain, id);

	return k != NULL && now >= k->at && now - k->at < interval;
}

__attribute__((format(printf, 2, 3)))
static void set_reason(struct mtasts_verdict *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
	va_end(ap);
}

static void req_link(struct mtasts_req *req)
{
	struct mtasts *m = req->m;

	req->next = m->reqs;
	if (m->reqs != NULL)
		m->reqs->prev = req;
	m->reqs = req;
	m->live++;
}

static void req_unlink(struct mtasts_req *req)
{
	struct mtasts *m = req->m;

	if (req->prev != NULL)
		req->prev->next = req->next;
	else
		m->reqs = req->next;
	if (req->next != NULL)
		req->next->prev = req->prev;
	req->prev = NULL;
	req->next = NULL;
}

/*
 * Delivers the verdict unless the request was canceled, then frees it,
 * and the resolver too when mtasts_free is waiting for this request.
 */
static void complete(struct mtasts_req *req)
{
	struct mtasts *m = req->m;

	req_unlink(req);
	if (!req->canceled)
		req->cb(req->arg, &req->verdict);
	free(req);
	m->live--;
	if (m->closing && m->live == 0)
		free(m);
}

static void verdict_from_entry(struct mtasts_verdict *v,
			       const struct mtasts_entry *e,
			       enum mtasts_source source)
{
	v->source = source;
	memcpy(v->id, e->id, sizeof(v->id));
	v->fetched_at = e->fetched_at;
	v->expires_at = e->expires_at;
	v->policy = e->policy;
	v->applies = e->policy.mode != MTASTS_MODE_NONE;
}

/*
 * Ends req without a live policy: RFC 8461 section 3.3 applies a valid
 * cached policy when the live one cannot be had, and section 5.1 keeps it
 * when the TXT record is gone. Without one there is no policy.
 */
static void fall_back(struct mtasts_req *req, enum mtasts_source source,
		      const char *cause)
{
	struct mtasts_verdict *v = &req->verdict;

	if (req->have_cached) {
		verdict_from_entry(v, &req->cached, source);
		set_reason(v, "%s; cached policy %s still valid", cause,
			   req->cached.id);
	} else if (req->cache_error < 0) {
		/* RFC 8461 section 5: a cached policy must apply when the live
		   one cannot be had. An unreadable cache may hide one, so the
		   verdict is uncertain rather than "no policy". */
		memset(&v->policy, 0, sizeof(v->policy));
		v->uncertain = true;
		set_reason(v, "%s; the policy cache could not be read: %s", cause,
			   base_strerror(req->cache_error));
	} else {
		memset(&v->policy, 0, sizeof(v->policy));
		set_reason(v, "%s", cause);
	}
	complete(req);
}

/* Loads the domain's cached policy unless it has expired. */
static void load_cache(struct mtasts_req *req, int64_t now)
{
	struct mtasts *m = req->m;
	int rc;

	req->have_cached = false;
	req->cache_error = 0;
	if (m->cache == NULL)
		return;
	rc = mtasts_cache_get(m->cache, req->domain, &req->cached);
	if (rc < 0 && rc != BASE_ENOTFOUND)
		req->cache_error = rc;
	req->have_cached = rc == 0 && now < req->cached.expires_at;
}

/* Takes a fetched policy into the verdict and queues it for the cache. */
static void use_fetched(struct mtasts_req *req, int64_t now,
			const char *body, size_t len)
{
	struct mtasts *m = req->m;
	struct mtasts_verdict *v = &req->verdict;
	struct mtasts_entry *e = &req->cached;

	v->changed = !req->have_cached || strcmp(req->cached.id, req->id) != 0;
	v->source = MTASTS_SOURCE_FETCHED;
	memcpy(v->id, req->id, sizeof(v->id));
	v->fetched_at = now;
	v->expires_at = now + v->policy.max_age;
	v->applies = v->policy.mode != MTASTS_MODE_NONE;
	set_reason(v, "fetched policy %s", req->id);
	mark_clear(m->failures, req->domain);
	if (m->cache == NULL)
		return;

	/* The cached entry is no longer needed, so it carries the new one. */
	memcpy(e->domain, req->domain, sizeof(e->domain));
	memcpy(e->id, req->id, sizeof(e->id));
	e->fetched_at = v->fetched_at;
	e->expires_at = v->expires_at;
	e->policy = v->policy;
	v->cache_error = mtasts_cache_put(m->cache, e, body, len);
}

/*
 * Parses a raw HTTP response and the policy file in it. Returns 0, or a
 * negative code with the cause written into cause (size CAUSE_MAX).
 */
static int read_policy(struct mtasts_req *req, int64_t now,
		       const char *response, size_t len, char *cause)
{
	struct mtasts_http *h;
	const char *why = "out of memory";
	const char *body;
	size_t body_len;
	int rc;

	rc = mtasts_http_new(&h);
	if (rc == 0)
		rc = mtasts_http_feed(h, response, len);
	if (rc == 0)
		rc = mtasts_http_feed(h, NULL, 0);
	if (rc < 0) {
		if (h != NULL)
			why = mtasts_http_reason(h);
		snprintf(cause, CAUSE_MAX, "policy fetch failed: %s", why);
		req->verdict.fetch_error = true;
		mtasts_http_free(h);
		return rc;
	}

	body = mtasts_http_body(h, &body_len);
	rc = mtasts_policy_parse_reason(body, body_len, &req->verdict.policy,
					&why);
	if (rc < 0)
		snprintf(cause, CAUSE_MAX, "invalid policy %s: %s", req->id,
			 why);
	else
		use_fetched(req, now, body, body_len);
	mtasts_http_free(h);
	return rc;
}

/* Section 3.3: the same domain and id are not fetched again for a while. */
static void fetch_failed(struct mtasts_req *req, int64_t now,
			 const char *cause)
{
	mark_set(req->m->failures, req->domain, req->id, now);
	fall_back(req, MTASTS_SOURCE_CACHED_REFETCH_FAILED, cause);
}

static void fetch_done_cb(void *ctx, int status, const char *response,
		       size_t len)
{
	struct mtasts_req *req = ctx;
	char cause[CAUSE_MAX];
	int64_t now;

	if (req->canceled) {
		complete(req);
		return;
	}

	now = req->m->io.now(req->m->io.arg);
	if (status < 0) {
		snprintf(cause, sizeof(cause), "policy fetch failed: %s",
			 base_strerror(status));
		req->verdict.fetch_error = true;
	} else if (read_policy(req, now, response, len, cause) == 0) {
		complete(req);
		return;
	}
	fetch_failed(req, now, cause);
}

/*
 * XXX: fetches are not shared. Two requests for one domain at the same
 * time fetch the policy twice, and so does a request that starts before
 * the writer thread has stored the first fetch. Both cost one extra HTTPS
 * request and change no verdict.
 */
static void start_fetch(struct mtasts_req *req, int64_t now)
{
	struct mtasts *m = req->m;
	char host[BASE_DNAME_MAX + 16];
	char cause[CAUSE_MAX];
	int rc;

	rc = mtasts_policy_host(req->domain, host, sizeof(host));
	if (rc == 0)
		rc = m->io.fetch(m->io.arg, host, fetch_done_cb, req);
	if (rc < 0) {
		snprintf(cause, sizeof(cause), "policy fetch failed: %s",
			 base_strerror(rc));
		req->verdict.fetch_error = true;
		fetch_failed(req, now, cause);
	}
}

/* Decides, once the TXT record gave an id, between the cache and a fetch. */
static void use_txt_id(struct mtasts_req *req, int64_t now)
{
	struct mtasts_verdict *v = &req->verdict;
	char cause[CAUSE_MAX];

	if (req->have_cached && strcmp(req->cached.id, req->id) == 0 &&
	    req->kind != REQ_REFRESH) {
		verdict_from_entry(v, &req->cached, MTASTS_SOURCE_CACHED);
		set_reason(v, "cached policy %s matches the TXT record",
			   req->id);
		complete(req);
		return;
	}

	if (mark_recent(req->m->failures, req->domain, req->id, now,
			MTASTS_RETRY_AFTER)) {
		snprintf(cause, sizeof(cause),
			 "fetch of policy %s failed less than %d s ago",
			 req->id, MTASTS_RETRY_AFTER);
		fall_back(req, MTASTS_SOURCE_CACHED_REFETCH_FAILED, cause);
		return;
	}
	start_fetch(req, now);
}

static void txt_done_cb(void *ctx, int status, const char *const *records,
		     size_t count)
{
	struct mtasts_req *req = ctx;
	const char *why = NULL;
	char cause[CAUSE_MAX];
	int64_t now;

	if (req->canceled) {
		complete(req);
		return;
	}

	now = req->m->io.now(req->m->io.arg);
	load_cache(req, now);
	if (status == BASE_ENOTFOUND) {
		fall_back(req, MTASTS_SOURCE_CACHED, "no MTA-STS TXT record");
		return;
	}
	if (status < 0) {
		snprintf(cause, sizeof(cause), "TXT lookup failed: %s",
			 base_strerror(status));
		fall_back(req, MTASTS_SOURCE_CACHED, cause);
		return;
	}
	if (mtasts_txt_parse_reason(records, count, req->id, &why) < 0) {
		snprintf(cause, sizeof(cause),
			 "no valid MTA-STS TXT record: %s", why);
		fall_back(req, MTASTS_SOURCE_CACHED, cause);
		return;
	}
	use_txt_id(req, now);
}

static int start(struct mtasts *m, enum req_kind kind, const char *domain,
		 mtasts_verdict_cb cb, void *arg, struct mtasts_req **out)
{
	struct mtasts_req *req;
	char name[BASE_DNAME_MAX + 16];
	int rc;

	if (out != NULL)
		*out = NULL;
	if (m->closing || cb == NULL)
		return BASE_EINVAL;
	req = calloc(1, sizeof(*req));
	if (req == NULL)
		return BASE_ENOMEM;
	rc = base_dname_normalize(domain, req->domain, sizeof(req->domain));
	if (rc < 0) {
		free(req);
		return rc;
	}

	req->m = m;
	req->kind = kind;
	req->cb = cb;
	req->arg = arg;
	req->verdict.domain = req->domain;
	snprintf(name, sizeof(name), "_mta-sts.%s", req->domain);

	req_link(req);
	rc = m->io.lookup_txt(m->io.arg, name, txt_done_cb, req);
	if (rc < 0) {
		req_unlink(req);
		m->live--;
		free(req);
		return rc;
	}
	if (out != NULL)
		*out = req;
	return 0;
}

int mtasts_new(const struct mtasts_io *io, struct mtasts_cache *cache,
	       struct mtasts **out)
{
	struct mtasts *m;

	*out = NULL;
	if (io->lookup_txt == NULL || io->fetch == NULL || io->now == NULL)
		return BASE_EINVAL;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return BASE_ENOMEM;
	m->io = *io;
	m->cache = cache;
	*out = m;
	return 0;
}

void mtasts_free(struct mtasts *m)
{
	if (m == NULL)
		return;
	for (struct mtasts_req *req = m->reqs; req != NULL; req = req->next)
		req->canceled = true;
	m->closing = true;
	if (m->live == 0)
		free(m);
}

int mtasts_resolve(struct mtasts *m, const char *domain,
		   mtasts_verdict_cb cb, void *arg, struct mtasts_req **req)
{
	return start(m, REQ_RESOLVE, domain, cb, arg, req);
}

int mtasts_refresh(struct mtasts *m, const char *domain,
		   mtasts_verdict_cb cb, void *arg, struct mtasts_req **req)
{
	return start(m, REQ_REFRESH, domain, cb, arg, req);
}

int mtasts_check_newer(struct mtasts *m, const char *domain,
		       mtasts_verdict_cb cb, void *arg,
		       struct mtasts_req **req)
{
	char name[BASE_DNAME_MAX + 1];
	int64_t now;
	int rc;

	if (req != NULL)
		*req = NULL;
	if (base_dname_normalize(domain, name, sizeof(name)) < 0)
		return BASE_EINVAL;
	now = m->io.now(m->io.arg);
	if (mark_recent(m->checks, name, "", now, MTASTS_CHECK_INTERVAL))
		return BASE_ENOTFOUND;

	rc = start(m, REQ_CHECK, name, cb, arg, req);
	if (rc == 0)
		mark_set(m->checks, name, "", now);
	return rc;
}

void mtasts_cancel(struct mtasts_req *req)
{
	if (req != NULL)
		req->canceled = true;
}

bool mtasts_refresh_due(const struct mtasts_verdict *v, int64_t now)
{
	int64_t max_age = v->expires_at - v->fetched_at;

	if (v->source == MTASTS_SOURCE_NONE)
		return false;
	return now - v->fetched_at >= MTASTS_REFRESH_INTERVAL ||
	       v->expires_at - now < max_age / 4;
}

const char *mtasts_source_name(enum mtasts_source source)
{
	switch (source) {
	case MTASTS_SOURCE_NONE: return "none";
	case MTASTS_SOURCE_FETCHED: return "fetched";
	case MTASTS_SOURCE_CACHED: return "cached";
	case MTASTS_SOURCE_CACHED_REFETCH_FAILED:
		return "cached-refetch-failed";
	}
	return "unknown";
}
