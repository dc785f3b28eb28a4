/*
 * MTA-STS policy fetch over HTTP: see http.h. http-parser does the framing:
 * Content-Length, chunked, or a body that ends when the server closes.
 * The callbacks here check the status and Content-Type and collect the
 * body into a bounded buffer. Interim 1xx responses are skipped.
 */
#include <http_parser.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/dname.h"
#include "base/err.h"
#include "http.h"

#define FIELD_MAX 16			/* longer names are not Content-Type */
#define CONTENT_TYPE_MAX 128
#define TOO_LARGE "policy is larger than 65536 bytes"
#define CLOSED_EARLY "connection closed before the response ended"

struct mtasts_http {
	http_parser parser;
	struct base_buf body;

	/* The header being read: its name and, for Content-Type, the value. */
	char field[FIELD_MAX];
	size_t field_len;
	bool field_long;
	bool in_value;
	bool in_content_type;
	char content_type[CONTENT_TYPE_MAX];
	size_t content_type_len;
	bool content_type_long;
	int content_type_count;

	int status;
	bool done;
	int error;
	const char *reason;
	char reason_buf[64];
};

static int message_begin_cb(http_parser *p);
static int header_field_cb(http_parser *p, const char *at, size_t len);
static int header_value_cb(http_parser *p, const char *at, size_t len);
static int headers_complete_cb(http_parser *p);
static int body_cb(http_parser *p, const char *at, size_t len);
static int message_complete_cb(http_parser *p);

static const http_parser_settings settings = {
	.on_message_begin = message_begin_cb,
	.on_header_field = header_field_cb,
	.on_header_value = header_value_cb,
	.on_headers_complete = headers_complete_cb,
	.on_body = body_cb,
	.on_message_complete = message_complete_cb,
};

int mtasts_policy_host(const char *domain, char *out, size_t outlen)
{
	char name[BASE_DNAME_MAX + 1];
	int n;

	if (base_dname_normalize(domain, name, sizeof(name)) < 0)
		return BASE_EINVAL;
	n = snprintf(out, outlen, "mta-sts.%s", name);
	if (n < 0 || (size_t)n >= outlen)
		return BASE_EINVAL;
	return 0;
}

int mtasts_http_request(const char *policy_host, char *out, size_t outlen)
{
	int n;

	if (!base_dname_valid(policy_host))
		return BASE_EINVAL;

	/*
	 * RFC 8461 section 3.3 forbids HTTP caching, so the request carries
	 * no validators, and nothing here stores a response.
	 */
	n = snprintf(out, outlen,
		     "GET " MTASTS_POLICY_PATH " HTTP/1.1\r\n"
		     "Host: %s\r\n"
		     "User-Agent: mxlock\r\n"
		     "Accept: text/plain\r\n"
		     "Connection: close\r\n"
		     "\r\n", policy_host);
	if (n < 0 || (size_t)n >= outlen)
		return BASE_ETOOLONG;
	return 0;
}

int mtasts_http_new(struct mtasts_http **out)
{
	struct mtasts_http *h = calloc(1, sizeof(*h));

	*out = NULL;
	if (h == NULL)
		return BASE_ENOMEM;
	http_parser_init(&h->parser, HTTP_RESPONSE);
	h->parser.data = h;
	base_buf_init(&h->body, MTASTS_HTTP_BODY_MAX);
	*out = h;
	return 0;
}

void mtasts_http_free(struct mtasts_http *h)
{
	if (h == NULL)
		return;
	base_buf_free(&h->body);
	free(h);
}

/* Records the first error and returns -1, which stops http-parser. */
static int fail(struct mtasts_http *h, int err, const char *reason)
{
	if (h->error == 0) {
		h->error = err;
		h->reason = reason;
	}
	return -1;
}

/* Translates an http-parser error into a base_err code. */
static int parser_err(enum http_errno e)
{
	switch (e) {
	case HPE_OK:
		return 0;
	case HPE_INVALID_EOF_STATE:
		return BASE_EEOF;
	case HPE_HEADER_OVERFLOW:
		return BASE_ETOOLONG;
	default:
		return BASE_EPROTO;
	}
}

static int message_begin_cb(http_parser *p)
{
	struct mtasts_http *h = p->data;

	h->field_len = 0;
	h->field_long = false;
	h->in_value = true;
	h->in_content_type = false;
	h->content_type_len = 0;
	h->content_type_long = false;
	h->content_type_count = 0;
	return 0;
}

/* http-parser may hand a name or a value over in several pieces. */
static int header_field_cb(http_parser *p, const char *at, size_t len)
{
	struct mtasts_http *h = p->data;

	if (h->in_value) {
		h->in_value = false;
		h->field_len = 0;
		h->field_long = false;
	}
	if (len > sizeof(h->field) - h->field_len) {
		h->field_long = true;
		return 0;
	}
	memcpy(h->field + h->field_len, at, len);
	h->field_len += len;
	return 0;
}

static int header_value_cb(http_parser *p, const char *at, size_t len)
{
	struct mtasts_http *h = p->data;

	if (!h->in_value) {
		h->in_value = true;
		h->in_content_type = !h->field_long && h->field_len == 12 &&
			strncasecmp(h->field, "Content-Type", 12) == 0;
		if (h->in_content_type) {
			h->content_type_count++;
			h->content_type_len = 0;
		}
	}
	if (!h->in_content_type)
		return 0;
	if (len > sizeof(h->content_type) - h->content_type_len) {
		h->content_type_long = true;
		return 0;
	}
	memcpy(h->content_type + h->content_type_len, at, len);
	h->content_type_len += len;
	return 0;
}

/*
 * RFC 8461 section 3.2: the media type must be text/plain; parameters
 * such as charset do not matter. Media types are case-insensitive.
 */
static bool is_text_plain(const char *v, size_t n)
{
	static const char type[] = "text/plain";
	size_t start = 0;
	size_t end;

	while (start < n && (v[start] == ' ' || v[start] == '\t'))
		start++;
	end = start;
	while (end < n && v[end] != ';')
		end++;
	while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
		end--;
	return end - start == sizeof(type) - 1 &&
	       strncasecmp(v + start, type, sizeof(type) - 1) == 0;
}

static int headers_complete_cb(http_parser *p)
{
	struct mtasts_http *h = p->data;
	int status = (int)p->status_code;

	/* An interim response (100 Continue, 103 Early Hints) has no body. */
	if (status >= 100 && status < 200)
		return 0;
	h->status = status;

	/* RFC 8461 section 3.3: only 200 counts; redirects are not followed. */
	if (status >= 300 && status < 400)
		return fail(h, BASE_EPROTO, "redirect not followed");
	if (status != 200) {
		snprintf(h->reason_buf, sizeof(h->reason_buf),
			 "HTTP status %d, not 200", status);
		return fail(h, BASE_EPROTO, h->reason_buf);
	}

	if (h->content_type_count == 0)
		return fail(h, BASE_EPROTO, "Content-Type is missing");
	if (h->content_type_count > 1)
		return fail(h, BASE_EPROTO, "more than one Content-Type");
	if (h->content_type_long ||
	    !is_text_plain(h->content_type, h->content_type_len))
		return fail(h, BASE_EPROTO, "Content-Type is not text/plain");

	/* A body announced as too large is rejected before it arrives. */
	if (p->content_length != ULLONG_MAX &&
	    p->content_length > MTASTS_HTTP_BODY_MAX)
		return fail(h, BASE_ETOOLONG, TOO_LARGE);
	return 0;
}

static int body_cb(http_parser *p, const char *at, size_t len)
{
	struct mtasts_http *h = p->data;
	int rc = base_buf_append(&h->body, at, len);

	if (rc == BASE_ETOOLONG)
		return fail(h, rc, TOO_LARGE);
	if (rc < 0)
		return fail(h, rc, "out of memory");
	return 0;
}

static int message_complete_cb(http_parser *p)
{
	struct mtasts_http *h = p->data;

	if (p->status_code >= 100 && p->status_code < 200)
		return 0;

	/* Pausing makes http-parser stop at the end of this response. */
	h->done = true;
	http_parser_pause(p, 1);
	return 0;
}

int mtasts_http_feed(struct mtasts_http *h, const char *data, size_t len)
{
	enum http_errno e;

	if (h->error != 0)
		return h->error;
	if (h->done)
		return 0;

	http_parser_execute(&h->parser, &settings, data, len);
	if (h->done)
		return 0;
	if (h->error != 0)
		return h->error;

	e = HTTP_PARSER_ERRNO(&h->parser);
	if (e != HPE_OK) {
		fail(h, parser_err(e), http_errno_description(e));
		return h->error;
	}
	if (h->parser.upgrade) {
		fail(h, BASE_EPROTO, "unexpected protocol upgrade");
		return h->error;
	}
	if (len == 0) {
		fail(h, BASE_EEOF, CLOSED_EARLY);
		return h->error;
	}
	return 0;
}

bool mtasts_http_done(const struct mtasts_http *h)
{
	return h->done;
}

int mtasts_http_status(const struct mtasts_http *h)
{
	return h->status;
}

const char *mtasts_http_body(const struct mtasts_http *h, size_t *len)
{
	*len = h->body.len;
	return h->body.data != NULL ? h->body.data : "";
}

const char *mtasts_http_reason(const struct mtasts_http *h)
{
	return h->reason;
}
