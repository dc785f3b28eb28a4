/*
 * Tests for the certificate name matcher (tls_name_match) and for the
 * plaintext side of the stream over loopback: write and read, peer address,
 * and the refusal of STARTTLS when bytes arrived before the handshake.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <uv.h>

#include "base/err.h"
#include "conf/conf.h"
#include "stream.h"
#include "tls_name.h"

struct name_case {
	const char *name;
	const char *pattern;
	const char *host;
	bool expected;
};

static const struct name_case name_cases[] = {
	{ "exact", "mx.example.test", "mx.example.test", true },
	{ "exact differs", "mx.example.test", "mx2.example.test", false },
	{ "case ignored", "MX.Example.TEST", "mx.example.test", true },
	{ "host trailing dot", "mx.example.test", "mx.example.test.", true },
	{ "pattern trailing dot", "mx.example.test.", "mx.example.test", true },
	{ "wildcard one label", "*.example.test", "a.example.test", true },
	{ "wildcard case", "*.EXAMPLE.test", "A.example.TEST", true },
	{ "wildcard not parent", "*.example.test", "example.test", false },
	{ "wildcard not two labels", "*.example.test", "a.b.example.test",
	  false },
	{ "wildcard trailing dot", "*.example.test.", "a.example.test.",
	  true },
	{ "partial wildcard prefix", "f*.example.test", "foo.example.test",
	  false },
	{ "partial wildcard suffix", "*o.example.test", "foo.example.test",
	  false },
	{ "wildcard not left-most", "a.*.example.test", "a.b.example.test",
	  false },
	{ "two wildcards", "*.*.example.test", "a.b.example.test", false },
	{ "bare wildcard", "*", "test", false },
	{ "wildcard over tld", "*.test", "example.test", false },
	{ "literal star host", "*.example.test", "*.example.test", false },
	{ "empty pattern", "", "mx.example.test", false },
	{ "empty host", "mx.example.test", "", false },
	{ "suffix only", "example.test", "mx.example.test", false },
	{ "empty label", "mx..example.test", "mx..example.test", false },
};

static void test_tls_name_match_table(void **state)
{
	for (size_t i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]);
	     i++) {
		const struct name_case *c = &name_cases[i];
		bool got = tls_name_match(c->pattern, c->host);

		if (got != c->expected)
			fail_msg("case \"%s\": tls_name_match(\"%s\", \"%s\") "
				 "returned %d, expected %d", c->name,
				 c->pattern, c->host, got, c->expected);
	}
}

/* A loopback server that accepts one connection and sends a greeting. */
struct fixture {
	uv_loop_t loop;
	uv_tcp_t server;
	uv_tcp_t peer;			/* accepted server side */
	struct sockaddr_in addr;
	struct stream *client;
	const char *greeting;		/* sent by the server on accept */
	char received[64];		/* what the client read */
	size_t received_len;
	int connect_status;
	int write_status;
	int tls_status;
	bool connected;
	bool written;
};

static void peer_write_cb(uv_write_t *req, int status)
{
	free(req);
}

static void server_accept_cb(uv_stream_t *server, int status)
{
	struct fixture *f = server->data;
	uv_write_t *req = malloc(sizeof(*req));
	uv_buf_t buf = uv_buf_init((char *)f->greeting,
				   (unsigned int)strlen(f->greeting));

	assert_int_equal(status, 0);
	assert_non_null(req);
	uv_tcp_init(&f->loop, &f->peer);
	assert_int_equal(uv_accept(server, (uv_stream_t *)&f->peer), 0);
	assert_int_equal(uv_write(req, (uv_stream_t *)&f->peer, &buf, 1,
				  peer_write_cb), 0);
}

static void client_read(struct stream *s, const char *data, size_t len,
			void *arg)
{
	struct fixture *f = arg;

	assert_true(f->received_len + len < sizeof(f->received));
	memcpy(f->received + f->received_len, data, len);
	f->received_len += len;
	if (memchr(f->received, '\n', f->received_len) != NULL) {
		stream_read_stop(s);
		uv_stop(&f->loop);
	}
}

static void client_error(struct stream *s, int err, void *arg)
{
	fail_msg("unexpected stream error %s", base_strerror(err));
}

static const struct stream_handler client_handler = {
	.on_read = client_read,
	.on_error = client_error,
};

static void client_connect_cb(struct stream *s, int status, void *arg)
{
	struct fixture *f = arg;

	f->connect_status = status;
	f->connected = true;
	uv_stop(&f->loop);
}

static void fixture_start(struct fixture *f, const char *greeting)
{
	int len = sizeof(f->addr);

	memset(f, 0, sizeof(*f));
	f->greeting = greeting;
	assert_int_equal(uv_loop_init(&f->loop), 0);
	uv_tcp_init(&f->loop, &f->server);
	f->server.data = f;
	uv_ip4_addr("127.0.0.1", 0, &f->addr);
	assert_int_equal(uv_tcp_bind(&f->server,
				     (const struct sockaddr *)&f->addr, 0), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&f->server, 4,
				   server_accept_cb), 0);
	uv_tcp_getsockname(&f->server, (struct sockaddr *)&f->addr, &len);

	assert_int_equal(stream_new(&f->loop, &f->client), 0);
	stream_set_handler(f->client, &client_handler, f);
	assert_int_equal(stream_connect(f->client,
					(const struct sockaddr *)&f->addr,
					client_connect_cb, f), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_true(f->connected);
	assert_int_equal(f->connect_status, 0);
}

static void fixture_read_line(struct fixture *f)
{
	assert_int_equal(stream_read_start(f->client), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
}

static void close_walk_cb(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void fixture_stop(struct fixture *f)
{
	stream_close(f->client);
	uv_walk(&f->loop, close_walk_cb, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void test_stream_plain_read(void **state)
{
	struct fixture f;

	fixture_start(&f, "220 ready\r\n");
	fixture_read_line(&f);

	assert_int_equal(f.received_len, strlen("220 ready\r\n"));
	assert_memory_equal(f.received, "220 ready\r\n", f.received_len);
	fixture_stop(&f);
}

static void client_write_cb(struct stream *s, int status, void *arg)
{
	struct fixture *f = arg;

	f->write_status = status;
	f->written = true;
	uv_stop(&f->loop);
}

static void test_stream_plain_write(void **state)
{
	struct fixture f;

	fixture_start(&f, "220 ready\r\n");
	assert_int_equal(stream_write(f.client, "EHLO a\r\n", 8,
				      client_write_cb, &f), 0);
	/* An idle socket takes the bytes at once; the callback still waits
	   for the loop. */
	assert_int_equal(stream_write_pending(f.client), 0);
	assert_false(f.written);
	uv_run(&f.loop, UV_RUN_DEFAULT);

	assert_true(f.written);
	assert_int_equal(f.write_status, 0);
	assert_int_equal(stream_write_pending(f.client), 0);
	fixture_stop(&f);
}

static void test_stream_peer_address(void **state)
{
	struct fixture f;
	struct sockaddr_storage sa;
	char text[64];

	fixture_start(&f, "220 ready\r\n");
	stream_peer(f.client, text, sizeof(text), &sa);

	assert_string_equal(text, "127.0.0.1");
	assert_int_equal(sa.ss_family, AF_INET);
	assert_int_equal(((struct sockaddr_in *)&sa)->sin_port,
			 f.addr.sin_port);
	assert_null(stream_tls(f.client));
	fixture_stop(&f);
}

static void tls_done_cb(struct stream *s, int status, void *arg)
{
	struct fixture *f = arg;

	f->tls_status = status;
}

/* Bytes after the 220 reply to STARTTLS and before the ClientHello. */
static void test_stream_starttls_injection(void **state)
{
	struct conf conf = { .tls_min_version = 12 };
	const char injected[] = "250 injected\r\n";
	uv_buf_t buf = uv_buf_init((char *)injected, sizeof(injected) - 1);
	struct tls_ctx *ctx;
	struct fixture f;
	char err[256];

	assert_int_equal(tls_ctx_new(&conf, &ctx, err, sizeof(err)), 0);
	fixture_start(&f, "220 go ahead\r\n");
	fixture_read_line(&f);

	/* On loopback the bytes are in the client's socket once written. */
	assert_int_equal(uv_try_write((uv_stream_t *)&f.peer, &buf, 1),
			 (int)buf.len);
	assert_int_equal(stream_starttls(f.client, ctx, "mx.example.test",
					 "mx.example.test", tls_done_cb, &f),
			 BASE_EINJECT);
	uv_run(&f.loop, UV_RUN_NOWAIT);
	assert_int_equal(f.tls_status, 0);

	fixture_stop(&f);
	tls_ctx_free(ctx);
}

static void test_tls_ctx_bad_version(void **state)
{
	struct conf conf = { .tls_min_version = 11 };
	struct tls_ctx *ctx;
	char err[256];

	assert_int_equal(tls_ctx_new(&conf, &ctx, err, sizeof(err)),
			 BASE_EINVAL);
	assert_null(ctx);
	assert_non_null(strstr(err, "tls.min_version"));
}

static void test_tls_ctx_missing_ca_file(void **state)
{
	struct conf conf = {
		.tls_min_version = 13,
		.tls_ca_file = "/nonexistent/ca.pem",
	};
	struct tls_ctx *ctx;
	char err[256];

	assert_int_equal(tls_ctx_new(&conf, &ctx, err, sizeof(err)),
			 BASE_EINVAL);
	assert_null(ctx);
	assert_non_null(strstr(err, "/nonexistent/ca.pem"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls_name_match_table),
		cmocka_unit_test(test_stream_plain_read),
		cmocka_unit_test(test_stream_plain_write),
		cmocka_unit_test(test_stream_peer_address),
		cmocka_unit_test(test_stream_starttls_injection),
		cmocka_unit_test(test_tls_ctx_bad_version),
		cmocka_unit_test(test_tls_ctx_missing_ca_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
