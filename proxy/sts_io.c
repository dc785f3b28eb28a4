/*
 * MTA-STS I/O: see sts_io.h. A TXT lookup is one dns_lookup whose answer
 * c-ares parses. A fetch looks up the policy host's A, then AAAA records,
 * connects to port 443 of each address in turn until one accepts, runs
 * the TLS handshake at once, checks the certificate, sends the request and
 * reads the response until it is complete, rejected or cut off. One timer
 * per fetch bounds all of it. Lookups and fetches under way sit in two
 * lists so that sts_io_free can end them.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/dname.h"
#include "base/err.h"
#include "conf/conf.h"
#include "dns.h"
#include "mtasts/resolver.h"
#include "stream.h"
#include "sts_io.h"
#include "tlsa/tlsa.h"

#define STS_IO_PORT 443
#define STS_IO_ADDRS_MAX 16		/* addresses of one policy host */
#define STS_IO_REQUEST_MAX 512		/* the GET request, with the host */
#define STS_IO_ERROR_MAX 320

/* A list link. It is the first member of each lookup and fetch, so a
   pointer to the link is a pointer to its entry. */
struct sts_link {
	struct sts_link *prev, *next;
};

struct sts_io {
	uv_loop_t *loop;
	struct dns *dns;
	struct tls_ctx *tls;
	size_t addrs_max;		/* addresses tried per fetch */
	uint64_t fetch_timeout;		/* milliseconds */
	struct mtasts_io table;
	struct sts_link *txts;		/* lookups under way */
	struct sts_link *fetches;	/* fetches under way */
	size_t live;			/* fetches not yet released */
	bool closing;
	char last_error[STS_IO_ERROR_MAX];
};

struct sts_txt {
	struct sts_link link;
	struct sts_io *io;
	struct dns_query *query;
	mtasts_txt_cb done;
	void *ctx;
};

/* The records of one answer, each the joined strings of one TXT RR. */
struct sts_txt_records {
	char *records[STS_IO_TXT_RECORDS_MAX];
	size_t count;
};

enum sts_fetch_state {
	STS_FETCH_RESOLVE_A,
	STS_FETCH_RESOLVE_AAAA,
	STS_FETCH_CONNECT,
	STS_FETCH_HANDSHAKE,
	STS_FETCH_RESPONSE,
};

/*
 * One fetch. It lives until the close callback of its timer, after done
 * has run, so the response bytes stay valid during done.
 */
struct sts_fetch {
	struct sts_link link;
	struct sts_io *io;
	mtasts_fetch_cb done;		/* NULL once it has run */
	void *ctx;
	enum sts_fetch_state state;
	char host[BASE_DNAME_MAX + 1];
	uv_timer_t timer;
	struct dns_query *query;
	bool dns_failed;		/* an address lookup failed */
	struct sockaddr_storage addrs[STS_IO_ADDRS_MAX];
	size_t addr_count;
	size_t addr_next;		/* the next address to try */
	char peer[INET6_ADDRSTRLEN];	/* the address tried last */
	int connect_error;		/* why the last connect failed */
	struct stream *stream;
	struct mtasts_http *http;
	struct base_buf response;
};

static const char *const sts_fetch_state_names[] = {
	[STS_FETCH_RESOLVE_A] = "looking up A records",
	[STS_FETCH_RESOLVE_AAAA] = "looking up AAAA records",
	[STS_FETCH_CONNECT] = "connecting",
	[STS_FETCH_HANDSHAKE] = "in the TLS handshake",
	[STS_FETCH_RESPONSE] = "reading the response",
};

static void link_add(struct sts_link **head, struct sts_link *l)
{
	l->prev = NULL;
	l->next = *head;
	if (*head != NULL)
		(*head)->prev = l;
	*head = l;
}

static void link_remove(struct sts_link **head, struct sts_link *l)
{
	if (l->prev != NULL)
		l->prev->next = l->next;
	else
		*head = l->next;
	if (l->next != NULL)
		l->next->prev = l->prev;
	l->prev = NULL;
	l->next = NULL;
}

/* Translates a c-ares status into a base_err code. */
static int sts_ares_err(int status)
{
	switch (status) {
	case ARES_SUCCESS:
		return 0;
	case ARES_ENODATA:
	case ARES_ENOTFOUND:
		return BASE_ENOTFOUND;
	case ARES_ENOMEM:
		return BASE_ENOMEM;
	case ARES_EBADRESP:
		return BASE_EPROTO;
	}
	return BASE_EDNS;
}

/* TXT lookup ------------------------------------------------------------- */

static void txt_records_free(struct sts_txt_records *r)
{
	for (size_t i = 0; i < r->count; i++)
		free(r->records[i]);
	r->count = 0;
}

/*
 * Joins the strings of one RR, from first up to the next chunk that
 * starts a record, into a new C string. Stores the chunk after the record
 * in *rest. Returns 0, BASE_ETOOLONG or BASE_ENOMEM.
 */
static int txt_join_one(const struct ares_txt_ext *first,
			const struct ares_txt_ext **rest, char **out)
{
	const struct ares_txt_ext *c = first;
	size_t len = 0, off = 0;
	char *record;

	do {
		len += c->length;
		c = c->next;
	} while (c != NULL && !c->record_start);
	*rest = c;
	if (len > STS_IO_TXT_RECORD_MAX)
		return BASE_ETOOLONG;

	record = malloc(len + 1);
	if (record == NULL)
		return BASE_ENOMEM;
	for (c = first; c != *rest; c = c->next) {
		memcpy(record + off, c->txt, c->length);
		off += c->length;
	}
	record[len] = '\0';
	*out = record;
	return 0;
}

/* RFC 8461 section 3.1: the strings of one TXT RR are joined. */
static int txt_join(const struct ares_txt_ext *chunks,
		    struct sts_txt_records *out)
{
	const struct ares_txt_ext *c = chunks;
	int rc;

	while (c != NULL) {
		if (out->count == STS_IO_TXT_RECORDS_MAX)
			return BASE_ETOOLONG;
		rc = txt_join_one(c, &c, &out->records[out->count]);
		if (rc < 0)
			return rc;
		out->count++;
	}
	return 0;
}

/*
 * Reads the TXT records of a lookup result into out. c-ares takes every
 * TXT RR of the answer section, so the records at the end of a CNAME
 * chain count. Returns 0, or BASE_ENOTFOUND, BASE_EDNS, BASE_EPROTO,
 * BASE_ETOOLONG or BASE_ENOMEM.
 */
static int txt_read(const struct dns_result *result,
		    struct sts_txt_records *out)
{
	struct ares_txt_ext *chunks = NULL;
	int rc;

	switch (result->outcome) {
	case DNS_NXDOMAIN:
	case DNS_NODATA:
		return BASE_ENOTFOUND;
	case DNS_ERROR:
		return BASE_EDNS;
	case DNS_ANSWER:
		break;
	}
	if (result->abuf == NULL || result->alen > INT_MAX)
		return BASE_EPROTO;

	rc = ares_parse_txt_reply_ext(result->abuf, (int)result->alen,
				      &chunks);
	if (rc != ARES_SUCCESS)
		return sts_ares_err(rc);
	rc = txt_join(chunks, out);
	ares_free_data(chunks);
	if (rc < 0)
		txt_records_free(out);
	return rc;
}

static void txt_dns_cb(void *arg, const struct dns_result *result)
{
	struct sts_txt *t = arg;
	struct sts_txt_records records = { .count = 0 };
	int status;

	t->query = NULL;
	link_remove(&t->io->txts, &t->link);

	/* done may free the io, so nothing below touches it. */
	t->io->last_error[0] = '\0';
	status = txt_read(result, &records);
	t->done(t->ctx, status, (const char *const *)records.records,
		status == 0 ? records.count : 0);
	txt_records_free(&records);
	free(t);
}

static int sts_io_lookup_txt(void *arg, const char *name, mtasts_txt_cb done,
			     void *ctx)
{
	struct sts_io *io = arg;
	struct sts_txt *t;
	int rc;

	if (io->closing)
		return BASE_ECANCELED;
	if (done == NULL)
		return BASE_EINVAL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return BASE_ENOMEM;
	t->io = io;
	t->done = done;
	t->ctx = ctx;

	rc = dns_lookup(io->dns, name, ns_t_txt, txt_dns_cb, t, &t->query);
	if (rc < 0) {
		free(t);
		return rc;
	}
	link_add(&io->txts, &t->link);
	return 0;
}

/* Ends a lookup from sts_io_free: done gets BASE_ECANCELED. */
static void txt_cancel(struct sts_txt *t)
{
	link_remove(&t->io->txts, &t->link);
	dns_cancel(t->query);
	t->io->last_error[0] = '\0';
	t->done(t->ctx, BASE_ECANCELED, NULL, 0);
	free(t);
}

/* Fetch: release and completion ------------------------------------------ */

static void fetch_close_cb(uv_handle_t *h)
{
	struct sts_fetch *f = h->data;
	struct sts_io *io = f->io;

	mtasts_http_free(f->http);
	base_buf_free(&f->response);
	free(f);

	io->live--;
	if (io->closing && io->live == 0)
		free(io);
}

/*
 * Ends the fetch and runs done once with status, and with the response
 * bytes when status is 0. The fetch itself is freed in the close callback
 * of its timer, after done has returned. A failure must have stored its
 * text with fetch_fail first.
 */
static void fetch_finish(struct sts_fetch *f, int status)
{
	mtasts_fetch_cb done = f->done;
	const char *bytes = f->response.data != NULL ? f->response.data : "";

	if (status == 0)
		f->io->last_error[0] = '\0';
	link_remove(&f->io->fetches, &f->link);
	f->done = NULL;
	dns_cancel(f->query);
	f->query = NULL;
	stream_close(f->stream);
	f->stream = NULL;
	uv_timer_stop(&f->timer);
	uv_close((uv_handle_t *)&f->timer, fetch_close_cb);

	if (status < 0)
		done(f->ctx, status, NULL, 0);
	else
		done(f->ctx, 0, bytes, f->response.len);
}

/*
 * Stores why the fetch failed as the io's last error and ends the fetch
 * with status. The text starts with the policy host, and with the address
 * once one was tried.
 */
__attribute__((format(printf, 3, 4)))
static void fetch_fail(struct sts_fetch *f, int status, const char *fmt, ...)
{
	char *text = f->io->last_error;
	size_t size = sizeof(f->io->last_error);
	int n;
	va_list ap;

	if (f->peer[0] != '\0')
		n = snprintf(text, size, "%s[%s]:%d: ", f->host, f->peer,
			     STS_IO_PORT);
	else
		n = snprintf(text, size, "%s: ", f->host);
	if (n < 0 || (size_t)n >= size)
		n = 0;

	va_start(ap, fmt);
	vsnprintf(text + n, size - (size_t)n, fmt, ap);
	va_end(ap);
	fetch_finish(f, status);
}

static void fetch_timeout_cb(uv_timer_t *timer)
{
	struct sts_fetch *f = timer->data;

	fetch_fail(f, BASE_ETIMEDOUT, "timed out after %llu ms while %s",
		   (unsigned long long)f->io->fetch_timeout,
		   sts_fetch_state_names[f->state]);
}

/* Fetch: reading the response -------------------------------------------- */

/*
 * Bytes of the response arrived. The parser only decides when to stop:
 * the mtasts resolver parses the bytes again and finds the same result,
 * with its reason, when the response is rejected.
 */
static void fetch_read_cb(struct stream *s, const char *data, size_t len,
			  void *arg)
{
	struct sts_fetch *f = arg;
	int rc;

	if (len == 0)
		return;
	rc = base_buf_append(&f->response, data, len);
	if (rc == BASE_ETOOLONG) {
		fetch_fail(f, rc, "response longer than %d bytes",
			   STS_IO_RESPONSE_MAX);
		return;
	}
	if (rc < 0) {
		fetch_fail(f, rc, "reading the response: %s",
			   base_strerror(rc));
		return;
	}

	rc = mtasts_http_feed(f->http, data, len);
	if (rc < 0 || mtasts_http_done(f->http))
		fetch_finish(f, 0);
}

/*
 * The connection ended. After a close by the server the bytes go to the
 * resolver, whose parser decides whether the response was complete.
 *
 * XXX: the stream reports a TLS close_notify and a bare TCP close both as
 * BASE_EEOF, so an attacker who injects a TCP close can cut short a body
 * that the server delimits by closing (no Content-Length, not chunked).
 * Bodies with either framing are checked by the parser. A policy cut
 * short is mostly invalid or stricter; a shorter max_age is possible.
 */
static void fetch_error_cb(struct stream *s, int err, void *arg)
{
	struct sts_fetch *f = arg;

	if (err == BASE_EEOF) {
		fetch_finish(f, 0);
		return;
	}
	fetch_fail(f, err, "reading the response failed: %s",
		   base_strerror(err));
}

static void fetch_send_request(struct sts_fetch *f)
{
	static const struct stream_handler handler = {
		.on_read = fetch_read_cb,
		.on_error = fetch_error_cb,
	};
	char request[STS_IO_REQUEST_MAX];
	int rc;

	rc = mtasts_http_request(f->host, request, sizeof(request));
	if (rc < 0) {
		fetch_fail(f, rc, "cannot build the request: %s",
			   base_strerror(rc));
		return;
	}

	stream_set_handler(f->stream, &handler, f);
	rc = stream_write(f->stream, request, strlen(request), NULL, NULL);
	if (rc == 0)
		rc = stream_read_start(f->stream);
	if (rc < 0) {
		fetch_fail(f, rc, "sending the request failed: %s",
			   base_strerror(rc));
		return;
	}
	f->state = STS_FETCH_RESPONSE;
}

/* Fetch: TLS -------------------------------------------------------------- */

/*
 * RFC 8461 section 3.3: the certificate must chain to a trusted CA and be
 * valid for the policy host under RFC 6125, matching DNS-IDs only, with a
 * wildcard allowed as the whole left-most label. Both name checks of the
 * project must pass: the stream's and tlsa_cert_names_match, which also
 * refuses a wildcard right below a top-level domain. Returns 0, or fails
 * the fetch with BASE_EVERIFY and returns it.
 */
static int fetch_check_cert(struct sts_fetch *f)
{
	const struct stream_tls_info *info = stream_tls(f->stream);
	struct tlsa_cert leaf;

	if (info == NULL) {
		fetch_fail(f, BASE_ETLS, "no TLS session after the handshake");
		return BASE_ETLS;
	}
	if (!info->pkix_valid) {
		fetch_fail(f, BASE_EVERIFY, "certificate not trusted: %s",
			   info->pkix_error);
		return BASE_EVERIFY;
	}
	if (stream_peer_chain(f->stream, &leaf, 1) != 1 ||
	    !info->name_match ||
	    !tlsa_cert_names_match(leaf.der, leaf.len, f->host)) {
		fetch_fail(f, BASE_EVERIFY, "certificate does not name %s "
			   "(DNS subject alternative names only)", f->host);
		return BASE_EVERIFY;
	}
	return 0;
}

static void fetch_handshake_cb(struct stream *s, int status, void *arg)
{
	struct sts_fetch *f = arg;

	/* The stream reports a failed handshake with the code of what broke
	   it (EOF, I/O, TLS alert); to the resolver it is a TLS failure. */
	if (status < 0) {
		fetch_fail(f, status == BASE_ENOMEM ? status : BASE_ETLS,
			   "TLS handshake failed: %s", base_strerror(status));
		return;
	}
	if (fetch_check_cert(f) < 0)
		return;
	fetch_send_request(f);
}

/* Fetch: connecting ------------------------------------------------------- */

static void fetch_connect_next(struct sts_fetch *f);

static void fetch_connect_cb(struct stream *s, int status, void *arg)
{
	struct sts_fetch *f = arg;
	int rc;

	if (status < 0) {
		f->connect_error = status;
		stream_close(f->stream);
		f->stream = NULL;
		fetch_connect_next(f);
		return;
	}

	/*
	 * SNI carries the policy host (RFC 8461 section 7.1), so that a
	 * server with many names sends the certificate for this one.
	 */
	rc = stream_starttls(s, f->io->tls, f->host, f->host,
			     fetch_handshake_cb, f);
	if (rc < 0) {
		fetch_fail(f, rc == BASE_ENOMEM ? rc : BASE_ETLS,
			   "TLS handshake failed to start: %s",
			   base_strerror(rc));
		return;
	}
	f->state = STS_FETCH_HANDSHAKE;
}

static void fetch_addr_text(const struct sockaddr_storage *ss, char *out,
			    size_t outlen)
{
	const void *raw = ss->ss_family == AF_INET ?
		(const void *)&((const struct sockaddr_in *)ss)->sin_addr :
		(const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;

	if (inet_ntop(ss->ss_family, raw, out, (socklen_t)outlen) == NULL)
		snprintf(out, outlen, "?");
}

/*
 * Connects to the next address. A connection that fails moves on to the
 * next address, and after the last one the fetch fails with its error.
 *
 * XXX: there is no timer per connection attempt, only the fetch's, so an
 * address that drops SYN packets uses up the whole time limit and the
 * next address is never tried.
 */
static void fetch_connect_next(struct sts_fetch *f)
{
	const struct sockaddr_storage *ss;
	int rc;

	while (f->addr_next < f->addr_count) {
		ss = &f->addrs[f->addr_next++];
		fetch_addr_text(ss, f->peer, sizeof(f->peer));

		rc = stream_new(f->io->loop, &f->stream);
		if (rc == 0)
			rc = stream_connect(f->stream,
					    (const struct sockaddr *)ss,
					    fetch_connect_cb, f);
		if (rc == 0) {
			f->state = STS_FETCH_CONNECT;
			return;
		}
		f->connect_error = rc;
		stream_close(f->stream);
		f->stream = NULL;
	}
	fetch_fail(f, f->connect_error, "connect failed: %s",
		   base_strerror(f->connect_error));
}

/* Fetch: address lookup --------------------------------------------------- */

/* Adds the addresses of an A or AAAA lookup result, up to the limit. */
static void fetch_store_addrs(struct sts_fetch *f, int type,
			      const struct dns_result *result)
{
	size_t room = f->io->addrs_max - f->addr_count;
	size_t n = 0;

	if (result->outcome == DNS_ERROR) {
		f->dns_failed = true;
		return;
	}
	if (result->outcome != DNS_ANSWER || room == 0)
		return;
	if (dns_parse_addrs(result, type, STS_IO_PORT,
			    &f->addrs[f->addr_count], room, &n, NULL, 0) < 0) {
		f->dns_failed = true;
		return;
	}
	f->addr_count += n;
}

static void fetch_dns_cb(void *arg, const struct dns_result *result)
{
	struct sts_fetch *f = arg;
	int type = f->state == STS_FETCH_RESOLVE_A ? ns_t_a : ns_t_aaaa;
	int rc;

	f->query = NULL;
	fetch_store_addrs(f, type, result);

	/* A name that does not exist has no AAAA records either. */
	if (type == ns_t_a && result->outcome != DNS_NXDOMAIN) {
		rc = dns_lookup(f->io->dns, f->host, ns_t_aaaa, fetch_dns_cb,
				f, &f->query);
		if (rc < 0) {
			fetch_fail(f, rc, "AAAA lookup failed to start: %s",
				   base_strerror(rc));
			return;
		}
		f->state = STS_FETCH_RESOLVE_AAAA;
		return;
	}

	if (f->addr_count > 0)
		fetch_connect_next(f);
	else if (f->dns_failed)
		fetch_fail(f, BASE_EDNS, "address lookup failed");
	else
		fetch_fail(f, BASE_ENOTFOUND, "no A or AAAA records");
}

static int sts_io_fetch(void *arg, const char *policy_host,
			mtasts_fetch_cb done, void *ctx)
{
	struct sts_io *io = arg;
	struct sts_fetch *f;
	int rc;

	if (io->closing)
		return BASE_ECANCELED;
	if (done == NULL)
		return BASE_EINVAL;
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return BASE_ENOMEM;
	f->io = io;
	f->done = done;
	f->ctx = ctx;
	f->state = STS_FETCH_RESOLVE_A;
	base_buf_init(&f->response, STS_IO_RESPONSE_MAX);

	rc = base_dname_normalize(policy_host, f->host, sizeof(f->host));
	if (rc == 0)
		rc = mtasts_http_new(&f->http);
	if (rc == 0)
		rc = dns_lookup(io->dns, f->host, ns_t_a, fetch_dns_cb, f,
				&f->query);
	if (rc < 0) {
		mtasts_http_free(f->http);
		free(f);
		return rc;
	}

	/* One timer bounds the whole fetch; its close callback frees f. */
	uv_timer_init(io->loop, &f->timer);
	f->timer.data = f;
	uv_timer_start(&f->timer, fetch_timeout_cb, io->fetch_timeout, 0);
	link_add(&io->fetches, &f->link);
	io->live++;
	return 0;
}

/* Clock ------------------------------------------------------------------- */

static int64_t sts_io_now(void *arg)
{
	return (int64_t)time(NULL);
}

/* Public ------------------------------------------------------------------ */

int sts_io_new(uv_loop_t *loop, struct dns *dns, struct tls_ctx *tls,
	       const struct conf *conf, struct sts_io **out)
{
	struct sts_io *io;

	*out = NULL;
	io = calloc(1, sizeof(*io));
	if (io == NULL)
		return BASE_ENOMEM;

	io->loop = loop;
	io->dns = dns;
	io->tls = tls;
	io->addrs_max = STS_IO_ADDRS_MAX;
	if (conf->limits.max_addresses > 0 &&
	    conf->limits.max_addresses < io->addrs_max)
		io->addrs_max = conf->limits.max_addresses;
	io->fetch_timeout = STS_IO_FETCH_TIMEOUT_MS;
	io->table = (struct mtasts_io){
		.arg = io,
		.lookup_txt = sts_io_lookup_txt,
		.fetch = sts_io_fetch,
		.now = sts_io_now,
	};
	*out = io;
	return 0;
}

void sts_io_free(struct sts_io *io)
{
	if (io == NULL || io->closing)
		return;

	/* closing makes every new lookup or fetch fail, also from the
	   done callbacks that run here. */
	io->closing = true;
	while (io->txts != NULL)
		txt_cancel((struct sts_txt *)io->txts);
	while (io->fetches != NULL)
		fetch_fail((struct sts_fetch *)io->fetches, BASE_ECANCELED,
			   "canceled because mxlock is stopping");

	if (io->live == 0)
		free(io);
}

const struct mtasts_io *sts_io_table(struct sts_io *io)
{
	return &io->table;
}

void sts_io_set_fetch_timeout(struct sts_io *io, uint64_t ms)
{
	io->fetch_timeout = ms;
}

const char *sts_io_last_error(const struct sts_io *io)
{
	return io->last_error;
}
