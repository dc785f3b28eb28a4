/*
 * TCP stream on libuv that switches to TLS (wolfSSL) in place for STARTTLS.
 * A stream owns its uv_tcp_t, a uv_idle_t that delivers plaintext buffered
 * while reading was stopped, and the WOLFSSL object. It also owns two
 * buffers: the ciphertext that wolfSSL has not read yet, and the
 * ciphertext wolfSSL produced before uv_write takes it. Reads go through
 * one buffer that all streams of a thread share. wolfSSL never touches the socket, because its I/O
 * callbacks work on those buffers. The handshake step uses
 * wolfSSL_negotiate, so the client side (toward MX hosts) and the server
 * side (toward clients, stream_starttls_server) share it.
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/socket.h>

#include "base/buf.h"
#include "base/dname.h"
#include "base/err.h"
#include "conf/conf.h"
#include "stream.h"
#include "tls_name.h"

/* Bytes per libuv read, and per wolfSSL_read or wolfSSL_write call. */
#define STREAM_CHUNK 16384
/* Ciphertext waiting for wolfSSL: one read plus a partial TLS record. */
#define STREAM_IN_MAX (64 * 1024)
/* Ciphertext that one wolfSSL call may produce before it is written. */
#define STREAM_OUT_MAX (256 * 1024)
/* Reads shorter than this set TCP_QUICKACK again (stream_quickack). */
#define STREAM_QUICKACK_MAX 4096
/* GeneralName tag of a dNSName (RFC 5280 section 4.2.1.6). */
#define STREAM_GEN_DNS 2

enum stream_tls_state {
	STREAM_PLAIN,
	STREAM_HANDSHAKE,
	STREAM_TLS,
};

struct tls_ctx {
	WOLFSSL_CTX *ctx;
	bool has_ca;		/* tls.ca_file was loaded */
	bool server;		/* mxlock is the TLS server (toward clients) */
};

/*
 * The fields only a TLS stream needs. They are allocated at STARTTLS, so
 * the many sessions that never switch (or have not yet) do not carry them.
 */
struct stream_tls_part {
	bool has_ca;
	bool server;		/* the handshake is the server side */
	int verify_error;	/* first error the verify callback saw */
	int verify_depth;
	char name[BASE_DNAME_MAX + 2];	/* reference name; "" for none */
	struct stream_tls_info info;
	int error;		/* wolfSSL's code for the handshake failure */
	/* The certificates the server sent, leaf first, as one allocation of
	   DER copies; freed by stream_tls_trim. */
	struct tlsa_cert chain[TLSA_CHAIN_MAX];
	size_t chain_count;
	unsigned char *chain_der;
};

/* One uv_write; data is owned by the request and freed in its callback. */
struct stream_write_req {
	uv_write_t req;
	struct stream *s;
	stream_done_cb cb;
	void *arg;
	char *data;
	size_t len;
};

struct stream {
	uv_tcp_t tcp;
	uv_idle_t idle;
	uv_connect_t connect;
	int handles_open;	/* handles whose close callback is pending */

	struct stream_handler handler;
	void *handler_arg;

	stream_done_cb done_cb;	/* pending connect or handshake */
	void *done_arg;
	bool connecting;

	bool reading;		/* the owner wants on_read calls */
	bool uv_reading;	/* uv_read_start is in effect */
	bool closing;
	bool nodelay;		/* latency matters: TCP_NODELAY, TCP_QUICKACK */
	int failed;		/* first fatal error; 0 while usable */
	int callback_depth;	/* > 0 while a callback may use s->in */

	size_t write_pending;	/* bytes of writes whose callback has not run */

	enum stream_tls_state tls_state;
	WOLFSSL *ssl;
	struct base_buf in;	/* ciphertext; bytes before in_off are read */
	size_t in_off;
	struct base_buf out;	/* ciphertext not yet passed to uv_write */
	struct stream_tls_part *tls;	/* from STARTTLS on, else NULL */
};

/*
 * The one read buffer of the loop's thread: every read and every
 * decryption lands here and goes to the owner within the same callback,
 * which copies what it keeps. No callback reads another stream while it
 * runs, so streams share the buffer instead of holding one each while
 * they wait, which is most of an idle session's memory.
 */
static _Thread_local char stream_rbuf[STREAM_CHUNK];

static void stream_alloc_cb(uv_handle_t *h, size_t suggested,
			    uv_buf_t *buf);
static void stream_read_cb(uv_stream_t *h, ssize_t nread,
			   const uv_buf_t *buf);

/* Translates a libuv code (a negated errno on Unix) into a base_err code. */
static int stream_uv_err(int code)
{
	switch (code) {
	case 0:
		return 0;
	case UV_EOF:
		return BASE_EEOF;
	case UV_ENOMEM:
	case UV_ENOBUFS:
		return BASE_ENOMEM;
	case UV_EINVAL:
		return BASE_EINVAL;
	case UV_ECONNREFUSED:
		return BASE_ECONNREFUSED;
	case UV_ENETUNREACH:
	case UV_EHOSTUNREACH:
	case UV_ENETDOWN:
		return BASE_EUNREACH;
	case UV_ETIMEDOUT:
		return BASE_ETIMEDOUT;
	case UV_ECANCELED:
		return BASE_ECANCELED;
	case UV_ECONNRESET:
	case UV_ECONNABORTED:
	case UV_EPIPE:
	case UV_ENOTCONN:
	case UV_EIO:
		return BASE_EIO;
	}
	return BASE_ESYS;
}

/* Translates a wolfSSL_get_error code (not WANT_READ) into a base_err. */
static int stream_tls_err(int code)
{
	switch (code) {
	case WOLFSSL_ERROR_NONE:
		return 0;
	case WOLFSSL_ERROR_ZERO_RETURN:
		return BASE_EEOF;
	case MEMORY_E:
		return BASE_ENOMEM;
	}
	return BASE_ETLS;
}

/*
 * Copies the certificates the server sent, leaf first. wolfSSL's own copy
 * (wolfSSL_get_peer_chain) leaves out every certificate of 2 KiB or more
 * and costs each session room for nine certificates, so mxlock keeps its
 * own until the policy check is done.
 */
static void stream_keep_chain(struct stream_tls_part *t,
			      const WOLFSSL_X509_STORE_CTX *store)
{
	size_t count = 0, total = 0, off = 0;

	if (t->chain_der != NULL || store->certs == NULL || store->totalCerts < 1)
		return;
	count = (size_t)store->totalCerts;
	if (count > TLSA_CHAIN_MAX)
		count = TLSA_CHAIN_MAX;
	for (size_t i = 0; i < count; i++)
		total += store->certs[i].length;
	t->chain_der = malloc(total > 0 ? total : 1);
	if (t->chain_der == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		memcpy(t->chain_der + off, store->certs[i].buffer,
		       store->certs[i].length);
		t->chain[i].der = t->chain_der + off;
		t->chain[i].len = store->certs[i].length;
		off += store->certs[i].length;
	}
	t->chain_count = count;
}

/*
 * Runs for each certificate of the server's chain, the leaf last, and
 * records the first failure. Returns 1, so the handshake goes on and the
 * policy decides later.
 */
static int stream_verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *store)
{
	struct stream *s = store->userCtx;

	if (s == NULL || s->tls == NULL)
		return 1;
	stream_keep_chain(s->tls, store);
	if (preverify || s->tls->verify_error != 0)
		return 1;

	s->tls->verify_error = store->error != 0 ? store->error : -1;
	s->tls->verify_depth = store->error_depth;
	return 1;
}

static int tls_ctx_configure(struct tls_ctx *t, const struct conf *conf,
			     char *err, size_t errlen)
{
	int version = conf->tls_min_version == 13 ? WOLFSSL_TLSV1_3 :
		      WOLFSSL_TLSV1_2;
	int rc;

	if (wolfSSL_CTX_SetMinVersion(t->ctx, version) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "cannot set the minimum TLS version");
		return BASE_ETLS;
	}

	if (conf->tls_ca_file != NULL) {
		rc = wolfSSL_CTX_load_verify_locations(t->ctx,
						       conf->tls_ca_file, NULL);
		if (rc != WOLFSSL_SUCCESS) {
			snprintf(err, errlen, "tls.ca_file %s: loading CA "
				 "certificates failed: check that the file "
				 "exists and contains PEM certificates",
				 conf->tls_ca_file);
			return BASE_EINVAL;
		}
		t->has_ca = true;
	}

	/*
	 * NOTE: wolfSSL 5.5.4 adds every intermediate it verified to the
	 * context's certificate store, so a later server that omits that
	 * intermediate still gets pkix_valid. Unverified intermediates are
	 * not added (checked by hand with an untrusted intermediate).
	 *
	 * The handshake never fails on the chain: the policy decides later
	 * from pkix_valid, and levels such as encrypt accept any
	 * certificate. The callback runs even without a CA, because it also
	 * keeps the chain for DANE; with WOLFSSL_ALWAYS_VERIFY_CB and
	 * WOLFSSL_VERIFY_CB_ALL_CERTS (both builds set them) it runs for
	 * every certificate, the leaf included.
	 */
	wolfSSL_CTX_set_verify(t->ctx, WOLFSSL_VERIFY_PEER, stream_verify_cb);
	return 0;
}

/* wolfSSL_Init is not safe to run on two threads at once (several
   workers start together), so it runs once for the process. */
static uv_once_t tls_init_once = UV_ONCE_INIT;
static int tls_init_status;

static void tls_init(void)
{
	tls_init_status = wolfSSL_Init();
}

/*
 * Creates a context for one side (server true: toward clients) and lets
 * configure load its settings. Returns 0 with the context in *out, or a
 * negative base_err code with a message in err.
 */
static int tls_ctx_create(const struct conf *conf, bool server,
			  int (*configure)(struct tls_ctx *, const struct conf *,
					   char *, size_t),
			  struct tls_ctx **out, char *err, size_t errlen)
{
	struct tls_ctx *t;
	int rc;

	uv_once(&tls_init_once, tls_init);
	if (tls_init_status != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "wolfSSL_Init failed");
		return BASE_ETLS;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		snprintf(err, errlen, "out of memory");
		return BASE_ENOMEM;
	}
	t->server = server;
	t->ctx = wolfSSL_CTX_new(server ? wolfSSLv23_server_method() :
				 wolfSSLv23_client_method());
	if (t->ctx == NULL) {
		free(t);
		snprintf(err, errlen, "cannot create the wolfSSL context");
		return BASE_ENOMEM;
	}

	rc = configure(t, conf, err, errlen);
	if (rc < 0) {
		tls_ctx_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

int tls_ctx_new(const struct conf *conf, struct tls_ctx **out, char *err,
		size_t errlen)
{
	*out = NULL;
	if (conf->tls_min_version != 12 && conf->tls_min_version != 13) {
		snprintf(err, errlen, "tls.min_version %d is not supported: "
			 "use 12 or 13", conf->tls_min_version);
		return BASE_EINVAL;
	}
	return tls_ctx_create(conf, false, tls_ctx_configure, out, err, errlen);
}

/* Loads the certificate chain and key that mxlock presents to clients. */
static int tls_server_configure(struct tls_ctx *t, const struct conf *conf,
				char *err, size_t errlen)
{
	int version = conf->tls_min_version == 13 ? WOLFSSL_TLSV1_3 :
		      WOLFSSL_TLSV1_2;

	if (wolfSSL_CTX_SetMinVersion(t->ctx, version) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "cannot set the minimum TLS version");
		return BASE_ETLS;
	}
	if (wolfSSL_CTX_use_certificate_chain_file(t->ctx,
			conf->tls_server_cert) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "tls.server_cert %s: loading the "
			 "certificate chain failed: check that the file "
			 "contains PEM certificates, leaf first",
			 conf->tls_server_cert);
		return BASE_EINVAL;
	}
	if (wolfSSL_CTX_use_PrivateKey_file(t->ctx, conf->tls_server_key,
			WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "tls.server_key %s: loading the private "
			 "key failed: check that the file contains a PEM key",
			 conf->tls_server_key);
		return BASE_EINVAL;
	}
	if (wolfSSL_CTX_check_private_key(t->ctx) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "tls.server_key %s does not belong to "
			 "the certificate in tls.server_cert %s",
			 conf->tls_server_key, conf->tls_server_cert);
		return BASE_EINVAL;
	}
	/* Clients are not asked for a certificate. */
	wolfSSL_CTX_set_verify(t->ctx, WOLFSSL_VERIFY_NONE, NULL);
	return 0;
}

int tls_server_ctx_new(const struct conf *conf, struct tls_ctx **out,
		       char *err, size_t errlen)
{
	*out = NULL;
	if (conf->tls_server_cert == NULL || conf->tls_server_key == NULL)
		return 0;
	return tls_ctx_create(conf, true, tls_server_configure, out, err, errlen);
}

void tls_thread_cleanup(void)
{
#if defined(HAVE_ECC) && defined(FP_ECC)
	wc_ecc_fp_free();
#endif
}

void tls_ctx_free(struct tls_ctx *ctx)
{
	if (ctx == NULL)
		return;
	wolfSSL_CTX_free(ctx->ctx);
	free(ctx);
}

/* family AF_UNSPEC leaves the socket to connect or accept time. */
static int stream_create(uv_loop_t *loop, unsigned family,
			 struct stream **out)
{
	struct stream *s;
	int rc;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return BASE_ENOMEM;

	rc = uv_tcp_init_ex(loop, &s->tcp, family);
	if (rc < 0) {
		free(s);
		return stream_uv_err(rc);
	}
	uv_idle_init(loop, &s->idle);
	s->tcp.data = s;
	s->idle.data = s;
	s->handles_open = 2;

	base_buf_init(&s->in, STREAM_IN_MAX);
	base_buf_init(&s->out, STREAM_OUT_MAX);
	*out = s;
	return 0;
}

int stream_new(uv_loop_t *loop, struct stream **out)
{
	return stream_create(loop, AF_UNSPEC, out);
}

int stream_new_marked(uv_loop_t *loop, int family, uint32_t mark,
		      struct stream **out)
{
	struct stream *s;
	int fd, rc;

	if (mark == 0)
		return stream_new(loop, out);

	/* libuv would create the socket at connect time, too late for the
	   mark, so it is created now. */
	rc = stream_create(loop, (unsigned)family, &s);
	if (rc < 0)
		return rc;
	rc = uv_fileno((const uv_handle_t *)&s->tcp, &fd);
	if (rc == 0 && setsockopt(fd, SOL_SOCKET, SO_MARK, &mark,
				  sizeof(mark)) < 0)
		rc = -errno;
	if (rc < 0) {
		stream_close(s);
		return stream_uv_err(rc);
	}
	*out = s;
	return 0;
}

int stream_accept(uv_stream_t *server, struct stream **out)
{
	struct stream *s;
	int rc;

	rc = stream_new(server->loop, &s);
	if (rc < 0)
		return rc;

	rc = uv_accept(server, (uv_stream_t *)&s->tcp);
	if (rc < 0) {
		stream_close(s);
		*out = NULL;
		return stream_uv_err(rc);
	}
	*out = s;
	return 0;
}

static void stream_free(struct stream *s)
{
	wolfSSL_free(s->ssl);
	base_buf_free(&s->in);
	base_buf_free(&s->out);
	if (s->tls != NULL)
		free(s->tls->chain_der);
	free(s->tls);
	free(s);
}

static void stream_close_cb(uv_handle_t *h)
{
	struct stream *s = h->data;

	if (--s->handles_open > 0)
		return;
	stream_free(s);
}

void stream_close(struct stream *s)
{
	if (s == NULL || s->closing)
		return;

	/*
	 * libuv runs pending connect and write callbacks with UV_ECANCELED
	 * before the close callback. They find closing set and drop the
	 * owner's callback, so none runs after this returns.
	 */
	s->closing = true;
	s->reading = false;
	s->done_cb = NULL;
	uv_close((uv_handle_t *)&s->tcp, stream_close_cb);
	uv_close((uv_handle_t *)&s->idle, stream_close_cb);
}

static void stream_connect_cb(uv_connect_t *req, int status)
{
	struct stream *s = req->handle->data;
	stream_done_cb cb = s->done_cb;
	int rc = stream_uv_err(status);

	s->connecting = false;
	if (s->closing)
		return;

	s->done_cb = NULL;
	if (rc < 0)
		s->failed = rc;
	if (cb != NULL)
		cb(s, rc, s->done_arg);
}

int stream_connect(struct stream *s, const struct sockaddr *addr,
		   stream_done_cb cb, void *arg)
{
	int rc;

	if (s->closing)
		return BASE_ECANCELED;
	if (s->connecting || s->failed)
		return BASE_EINVAL;

	rc = uv_tcp_connect(&s->connect, &s->tcp, addr, stream_connect_cb);
	if (rc < 0)
		return stream_uv_err(rc);

	s->connecting = true;
	s->done_cb = cb;
	s->done_arg = arg;
	return 0;
}

void stream_set_handler(struct stream *s, const struct stream_handler *h,
			void *arg)
{
	if (h != NULL)
		s->handler = *h;
	else
		memset(&s->handler, 0, sizeof(s->handler));
	s->handler_arg = arg;
}

static int stream_uv_read_start(struct stream *s)
{
	int rc;

	if (s->uv_reading)
		return 0;
	rc = uv_read_start((uv_stream_t *)&s->tcp, stream_alloc_cb,
			   stream_read_cb);
	if (rc < 0)
		return stream_uv_err(rc);
	s->uv_reading = true;
	return 0;
}

static void stream_uv_read_stop(struct stream *s)
{
	if (!s->uv_reading)
		return;
	uv_read_stop((uv_stream_t *)&s->tcp);
	s->uv_reading = false;
}

/* Frees the ciphertext buffer once no read is active and no callback
   uses it. */
static void stream_release_buffers(struct stream *s)
{
	if (s->uv_reading || s->callback_depth > 0)
		return;

	if (s->in_off == s->in.len) {
		base_buf_free(&s->in);
		s->in_off = 0;
	}
}

static void stream_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	buf->base = stream_rbuf;
	buf->len = sizeof(stream_rbuf);
}

/*
 * Marks the stream failed and notifies the owner once, through the
 * handshake callback while a handshake runs and through on_error otherwise.
 * Only libuv callbacks call it, so no owner's call runs a callback.
 */
static void stream_fail(struct stream *s, int err)
{
	stream_done_cb cb = s->done_cb;

	if (s->failed || s->closing)
		return;

	s->failed = err;
	s->reading = false;
	stream_uv_read_stop(s);
	uv_idle_stop(&s->idle);

	if (s->tls_state == STREAM_HANDSHAKE) {
		s->done_cb = NULL;
		if (cb != NULL)
			cb(s, err, s->done_arg);
		return;
	}
	if (s->handler.on_error != NULL)
		s->handler.on_error(s, err, s->handler_arg);
}

static void stream_write_cb(uv_write_t *req, int status)
{
	struct stream_write_req *w = (struct stream_write_req *)req;
	struct stream *s = w->s;
	stream_done_cb cb = w->cb;
	void *arg = w->arg;
	int rc = stream_uv_err(status);

	s->write_pending -= w->len;
	free(w->data);
	free(w);
	if (s->closing)
		return;

	if (cb != NULL)
		cb(s, rc, arg);
	if (rc < 0)
		stream_fail(s, rc);
}

/* Queues len bytes at data, which the request takes over (even on error). */
static int stream_submit(struct stream *s, char *data, size_t len,
			 stream_done_cb cb, void *arg)
{
	struct stream_write_req *w;
	uv_buf_t buf = uv_buf_init(data, (unsigned int)len);
	int rc;

	w = malloc(sizeof(*w));
	if (w == NULL) {
		free(data);
		return BASE_ENOMEM;
	}
	w->s = s;
	w->cb = cb;
	w->arg = arg;
	w->data = data;
	w->len = len;

	rc = uv_write(&w->req, (uv_stream_t *)&s->tcp, &buf, 1,
		      stream_write_cb);
	if (rc < 0) {
		free(data);
		free(w);
		return stream_uv_err(rc);
	}
	s->write_pending += len;
	return 0;
}

/* Writes the ciphertext wolfSSL produced; cb runs when it is written. */
static int stream_flush(struct stream *s, stream_done_cb cb, void *arg)
{
	char *data = s->out.data;
	size_t len = s->out.len;

	if (len == 0 && cb == NULL)
		return 0;

	base_buf_init(&s->out, STREAM_OUT_MAX);
	return stream_submit(s, data, len, cb, arg);
}

/*
 * Takes ciphertext from wolfSSL. When nothing is waiting to be written,
 * the socket gets it at once, straight from wolfSSL's buffer; only what
 * the kernel does not take is copied into s->out. uv_try_write refuses
 * while earlier writes are queued, so the bytes stay in order.
 */
static int stream_tls_send_cb(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	struct stream *s = ctx;
	int done = 0;

	if (sz < 0)
		return WOLFSSL_CBIO_ERR_GENERAL;
	if (s->out.len == 0 && !s->closing && !s->failed) {
		uv_buf_t b = uv_buf_init(buf, (unsigned int)sz);

		done = uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
		if (done < 0)
			done = 0;	/* UV_EAGAIN, or an error uv_write reports */
	}
	if (done < sz &&
	    base_buf_append(&s->out, buf + done, (size_t)(sz - done)) < 0)
		return WOLFSSL_CBIO_ERR_GENERAL;
	return sz;
}

static int stream_tls_recv_cb(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	struct stream *s = ctx;
	size_t n = s->in.len - s->in_off;

	if (n == 0 || sz <= 0)
		return WOLFSSL_CBIO_ERR_WANT_READ;
	if (n > (size_t)sz)
		n = (size_t)sz;

	memcpy(buf, s->in.data + s->in_off, n);
	s->in_off += n;
	return (int)n;
}

/* Calls on_read with plaintext; the owner may stop or close inside. */
static void stream_deliver(struct stream *s, const char *data, size_t len)
{
	if (s->handler.on_read != NULL)
		s->handler.on_read(s, data, len, s->handler_arg);
}

/*
 * Decrypts and delivers records until wolfSSL needs more ciphertext or the
 * owner stops reading. What is left stays in wolfSSL and in s->in, in
 * order, for the next stream_read_start.
 */
static void stream_tls_drain(struct stream *s)
{
	int n, code, rc;

	while (s->reading && !s->closing && !s->failed) {
		n = wolfSSL_read(s->ssl, stream_rbuf, sizeof(stream_rbuf));
		code = n > 0 ? WOLFSSL_ERROR_NONE :
		       wolfSSL_get_error(s->ssl, n);
		rc = stream_flush(s, NULL, NULL);
		if (rc < 0) {
			stream_fail(s, rc);
			return;
		}

		if (n > 0) {
			stream_deliver(s, stream_rbuf, (size_t)n);
			continue;
		}
		if (code != WOLFSSL_ERROR_WANT_READ)
			stream_fail(s, stream_tls_err(code));
		return;
	}
}

static void stream_tls_version(struct stream *s)
{
	struct stream_tls_info *info = &s->tls->info;
	const char *version = wolfSSL_get_version(s->ssl);
	int suite = wolfSSL_get_current_cipher_suite(s->ssl);
	const char *cipher;

	/*
	 * wolfSSL's own names ("TLS13-AES128-GCM-SHA256") differ from the
	 * IANA registry names that other software logs, so log the latter.
	 */
	cipher = wolfSSL_get_cipher_name_iana_from_suite(
		(unsigned char)(suite >> 8), (unsigned char)suite);

	snprintf(info->version, sizeof(info->version), "%s",
		 version != NULL ? version : "");
	snprintf(info->cipher, sizeof(info->cipher), "%s",
		 cipher != NULL ? cipher : "");
}

/* Returns a decoded copy of the server's leaf certificate, or NULL. */
static WOLFSSL_X509 *stream_peer_leaf(struct stream *s)
{
	const struct tlsa_cert *leaf = &s->tls->chain[0];

	if (s->tls->chain_count < 1)
		return NULL;
	return wolfSSL_X509_d2i(NULL, leaf->der, (int)leaf->len);
}

static const char *stream_verify_text(int err)
{
	/* The verify callback receives negative wolfSSL codes or X509_V_ERR. */
	if (err < 0)
		return wolfSSL_ERR_reason_error_string((unsigned long)err);
	return wolfSSL_X509_verify_cert_error_string(err);
}

static void stream_tls_pkix(struct stream *s, WOLFSSL_X509 *leaf)
{
	struct stream_tls_info *info = &s->tls->info;
	long result;

	info->pkix_valid = false;
	if (!s->tls->has_ca) {
		snprintf(info->pkix_error, sizeof(info->pkix_error),
			 "no CA file configured (tls.ca_file)");
		return;
	}
	if (leaf == NULL) {
		snprintf(info->pkix_error, sizeof(info->pkix_error),
			 "the server sent no certificate");
		return;
	}
	if (s->tls->verify_error != 0) {
		snprintf(info->pkix_error, sizeof(info->pkix_error),
			 "certificate at depth %d: %s", s->tls->verify_depth,
			 stream_verify_text(s->tls->verify_error));
		return;
	}

	result = wolfSSL_get_verify_result(s->ssl);
	if (result != X509_V_OK) {
		snprintf(info->pkix_error, sizeof(info->pkix_error),
			 "verification failed: %s",
			 stream_verify_text((int)result));
		return;
	}
	info->pkix_valid = true;
	info->pkix_error[0] = '\0';
}

/* Checks one GeneralName: a dNSName without NUL bytes that covers name. */
static bool stream_san_matches(WOLFSSL_GENERAL_NAME *gn, const char *name)
{
	char pattern[BASE_DNAME_MAX + 2];
	const unsigned char *data;
	int len;

	if (gn == NULL || gn->type != STREAM_GEN_DNS || gn->d.dNSName == NULL)
		return false;

	data = wolfSSL_ASN1_STRING_data(gn->d.dNSName);
	len = wolfSSL_ASN1_STRING_length(gn->d.dNSName);
	if (data == NULL || len <= 0 || (size_t)len >= sizeof(pattern))
		return false;
	if (memchr(data, '\0', (size_t)len) != NULL)
		return false;

	memcpy(pattern, data, (size_t)len);
	pattern[len] = '\0';
	return tls_name_match(pattern, name);
}

/*
 * Only DNS subject alternative names count. RFC 6125 section 6.4.4 allows a
 * fallback to the subject common name when a certificate has no DNS name,
 * but mxlock never uses it.
 */
static bool stream_leaf_has_name(WOLFSSL_X509 *leaf, const char *name)
{
	WOLFSSL_STACK *names;
	bool found = false;
	int count;

	names = wolfSSL_X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL,
					 NULL);
	if (names == NULL)
		return false;

	count = wolfSSL_sk_GENERAL_NAME_num(names);
	for (int i = 0; i < count && !found; i++)
		found = stream_san_matches(wolfSSL_sk_GENERAL_NAME_value(names,
									 i),
					   name);

	wolfSSL_sk_GENERAL_NAME_pop_free(names, wolfSSL_GENERAL_NAME_free);
	return found;
}

static void stream_tls_fill_info(struct stream *s)
{
	WOLFSSL_X509 *leaf;

	stream_tls_version(s);
	s->tls->info.resumed = wolfSSL_session_reused(s->ssl) == 1;
	/* Clients send no certificate: there is nothing to verify. */
	if (s->tls->server)
		return;

	leaf = stream_peer_leaf(s);
	stream_tls_pkix(s, leaf);
	s->tls->info.name_match = leaf != NULL && s->tls->name[0] != '\0' &&
				  stream_leaf_has_name(leaf, s->tls->name);
	wolfSSL_X509_free(leaf);
}

/*
 * The handshake is complete: reading stops until the owner asks again, so
 * records that arrived with the server's last flight stay buffered.
 */
static void stream_handshake_done(struct stream *s)
{
	stream_done_cb cb = s->done_cb;

	stream_uv_read_stop(s);
	s->tls_state = STREAM_TLS;
	stream_tls_fill_info(s);

	s->done_cb = NULL;
	if (cb != NULL)
		cb(s, 0, s->done_arg);
}

/* Runs the handshake as far as the buffered ciphertext allows. */
static int stream_handshake_step(struct stream *s)
{
	int ret, code, rc;

	ret = wolfSSL_negotiate(s->ssl);
	code = ret == WOLFSSL_SUCCESS ? WOLFSSL_ERROR_NONE :
	       wolfSSL_get_error(s->ssl, ret);

	/* Send what wolfSSL produced, including a fatal alert. */
	rc = stream_flush(s, NULL, NULL);
	if (rc < 0)
		return rc;

	if (code == WOLFSSL_ERROR_WANT_READ)
		return 0;
	if (code != WOLFSSL_ERROR_NONE) {
		s->tls->error = code;
		return stream_tls_err(code);
	}

	stream_handshake_done(s);
	return 0;
}

/* Appends ciphertext from a read and moves the TLS state forward. */
static void stream_tls_input(struct stream *s, const char *data, size_t len)
{
	int rc;

	base_buf_consume(&s->in, s->in_off);
	s->in_off = 0;
	rc = base_buf_append(&s->in, data, len);
	if (rc < 0) {
		stream_fail(s, rc);
		return;
	}

	if (s->tls_state == STREAM_HANDSHAKE) {
		rc = stream_handshake_step(s);
		if (rc < 0)
			stream_fail(s, rc);
		return;
	}
	stream_tls_drain(s);
}

/*
 * Acknowledges at once instead of after the delayed-ACK timer. Linux
 * clears TCP_QUICKACK by itself, so it is set again after every read: a
 * peer that waits for the ACK of its last segment before it sends the
 * next reply (Nagle's algorithm, as Postfix's replies do) otherwise
 * stalls each exchange by about 40 ms.
 */
static void stream_quickack(struct stream *s)
{
	uv_os_fd_t fd;
	int on = 1;

	if (uv_fileno((uv_handle_t *)&s->tcp, &fd) == 0)
		setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof(on));
}

static void stream_read_cb(uv_stream_t *h, ssize_t nread,
			   const uv_buf_t *buf)
{
	struct stream *s = h->data;

	if (nread == 0 || s->closing)
		return;

	/*
	 * Only a short read can be the end of an exchange. A full buffer is
	 * part of a bulk transfer such as message text, where ACKing every
	 * read would cost a system call and an extra segment each time.
	 */
	if (nread > 0 && nread < STREAM_QUICKACK_MAX && s->nodelay)
		stream_quickack(s);
	s->callback_depth++;
	if (nread < 0)
		stream_fail(s, stream_uv_err((int)nread));
	else if (s->tls_state == STREAM_PLAIN)
		stream_deliver(s, buf->base, (size_t)nread);
	else
		stream_tls_input(s, buf->base, (size_t)nread);
	s->callback_depth--;

	stream_release_buffers(s);
}

static void stream_idle_cb(uv_idle_t *h)
{
	struct stream *s = h->data;

	uv_idle_stop(h);
	if (s->closing)
		return;

	s->callback_depth++;
	stream_tls_drain(s);
	s->callback_depth--;

	stream_release_buffers(s);
}

int stream_read_start(struct stream *s)
{
	int rc;

	if (s->closing)
		return BASE_ECANCELED;
	if (s->failed)
		return s->failed;
	if (s->tls_state == STREAM_HANDSHAKE)
		return BASE_EINVAL;
	if (s->reading)
		return 0;

	rc = stream_uv_read_start(s);
	if (rc < 0)
		return rc;
	s->reading = true;

	/*
	 * Plaintext may wait inside wolfSSL or as ciphertext in s->in; the
	 * idle callback delivers it on the next loop iteration, never from
	 * inside this call.
	 */
	if (s->tls_state == STREAM_TLS)
		uv_idle_start(&s->idle, stream_idle_cb);
	return 0;
}

int stream_read_stop(struct stream *s)
{
	if (s->closing)
		return 0;
	if (s->tls_state == STREAM_HANDSHAKE && !s->failed)
		return BASE_EINVAL;

	s->reading = false;
	uv_idle_stop(&s->idle);
	stream_uv_read_stop(s);
	stream_release_buffers(s);
	return 0;
}

/*
 * Encrypts and writes len bytes. cb runs once they are written; with
 * if_queued, only when some of them had to wait for the socket.
 */
static int stream_tls_write(struct stream *s, const char *data, size_t len,
			    stream_done_cb cb, void *arg, bool if_queued)
{
	size_t off = 0, chunk;
	int n, rc;

	if (len == 0)
		return stream_submit(s, NULL, 0, cb, arg);

	while (off < len) {
		chunk = len - off < STREAM_CHUNK ? len - off : STREAM_CHUNK;
		n = wolfSSL_write(s->ssl, data + off, (int)chunk);
		if (n != (int)chunk) {
			rc = n > 0 ? BASE_ETLS :
			     stream_tls_err(wolfSSL_get_error(s->ssl, n));
			return rc < 0 ? rc : BASE_ETLS;
		}

		off += chunk;
		if (off == len && if_queued && s->out.len == 0)
			cb = NULL;	/* the socket took every byte */
		rc = off == len ? stream_flush(s, cb, arg) :
				  stream_flush(s, NULL, NULL);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int stream_write_any(struct stream *s, const char *data, size_t len,
			    stream_done_cb cb, void *arg, bool if_queued)
{
	char *copy = NULL;
	int rc;

	if (s->closing)
		return BASE_ECANCELED;
	if (s->failed)
		return s->failed;
	if (s->tls_state == STREAM_HANDSHAKE)
		return BASE_EINVAL;

	if (s->tls_state == STREAM_TLS) {
		rc = stream_tls_write(s, data, len, cb, arg, if_queued);
		/* A partly queued write leaves the TLS stream unusable. */
		if (rc < 0)
			s->failed = rc;
		return rc;
	}

	/*
	 * When nothing is queued, the socket takes what it can straight from
	 * the caller's buffer, and only the rest is copied for uv_write. The
	 * request still runs cb once the bytes before it are written.
	 */
	if (len > 0 && s->write_pending == 0) {
		uv_buf_t b = uv_buf_init((char *)data, (unsigned int)len);
		int done = uv_try_write((uv_stream_t *)&s->tcp, &b, 1);

		if (done > 0) {
			data += done;
			len -= (size_t)done;
		}
		if (len == 0 && if_queued)
			return 0;
	}
	if (len > 0) {
		copy = malloc(len);
		if (copy == NULL)
			return BASE_ENOMEM;
		memcpy(copy, data, len);
	}
	return stream_submit(s, copy, len, cb, arg);
}

int stream_write(struct stream *s, const char *data, size_t len,
		 stream_done_cb cb, void *arg)
{
	return stream_write_any(s, data, len, cb, arg, false);
}

int stream_write_data(struct stream *s, const char *data, size_t len,
		      stream_done_cb cb, void *arg)
{
	return stream_write_any(s, data, len, cb, arg, true);
}

size_t stream_write_pending(const struct stream *s)
{
	return s->write_pending;
}

/*
 * Bytes that are already buffered or waiting in the socket before the
 * ClientHello is sent cannot come from the TLS server, which speaks only
 * after it. They were injected after the 220 reply to STARTTLS, the attack
 * behind CVE-2021-38371, so the handshake is refused.
 */
static int stream_check_injection(struct stream *s)
{
	uv_os_fd_t fd;
	char byte;
	ssize_t n;
	int rc;

	if (s->in.len > s->in_off)
		return BASE_EINJECT;

	rc = uv_fileno((const uv_handle_t *)&s->tcp, &fd);
	if (rc < 0)
		return stream_uv_err(rc);

	n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n > 0)
		return BASE_EINJECT;
	if (n == 0)
		return BASE_EEOF;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return 0;
	return stream_uv_err(-errno);
}

/*
 * Sets SNI to sni without a trailing dot. RFC 6066 section 3 forbids IP
 * literals in the HostName, so those are left out.
 */
static int stream_tls_sni(WOLFSSL *ssl, const char *sni)
{
	char host[BASE_DNAME_MAX + 2];
	unsigned char addr[16];
	size_t len;

	if (sni == NULL || inet_pton(AF_INET, sni, addr) == 1 ||
	    inet_pton(AF_INET6, sni, addr) == 1)
		return 0;

	len = strlen(sni);
	if (len > 0 && sni[len - 1] == '.')
		len--;
	if (len == 0 || len >= sizeof(host))
		return BASE_EINVAL;
	memcpy(host, sni, len);
	host[len] = '\0';

	if (wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, host,
			   (unsigned short)len) != WOLFSSL_SUCCESS)
		return BASE_ETLS;
	return 0;
}

static int stream_tls_setup(struct stream *s, struct tls_ctx *ctx,
			    const char *sni)
{
	WOLFSSL *ssl;
	int rc;

	s->tls = calloc(1, sizeof(*s->tls));
	if (s->tls == NULL)
		return BASE_ENOMEM;
	ssl = wolfSSL_new(ctx->ctx);
	if (ssl == NULL)
		return BASE_ENOMEM;

	wolfSSL_SSLSetIORecv(ssl, stream_tls_recv_cb);
	wolfSSL_SSLSetIOSend(ssl, stream_tls_send_cb);
	wolfSSL_SetIOReadCtx(ssl, s);
	wolfSSL_SetIOWriteCtx(ssl, s);
	wolfSSL_SetCertCbCtx(ssl, s);

	rc = stream_tls_sni(ssl, sni);
	if (rc < 0) {
		wolfSSL_free(ssl);
		return rc;
	}

	s->ssl = ssl;
	s->tls->server = ctx->server;
	s->tls->has_ca = ctx->has_ca;
	return 0;
}

/* Enters the handshake state and runs its first step; cb runs later. */
static int stream_handshake_begin(struct stream *s, stream_done_cb cb,
				  void *arg)
{
	int rc;

	/* The first step cannot finish the handshake or run cb. */
	s->tls_state = STREAM_HANDSHAKE;
	rc = stream_uv_read_start(s);
	if (rc == 0)
		rc = stream_handshake_step(s);
	if (rc < 0) {
		stream_uv_read_stop(s);
		s->failed = rc;
		return rc;
	}

	s->done_cb = cb;
	s->done_arg = arg;
	return 0;
}

int stream_starttls_server(struct stream *s, struct tls_ctx *ctx,
			   stream_done_cb cb, void *arg)
{
	int rc;

	if (s->closing)
		return BASE_ECANCELED;
	if (s->failed)
		return s->failed;
	if (s->tls_state != STREAM_PLAIN || s->reading || ctx == NULL ||
	    !ctx->server)
		return BASE_EINVAL;

	/*
	 * Unlike the client side, bytes waiting in the socket are expected:
	 * a client may send its ClientHello as soon as it reads the 220.
	 * Plaintext read before the 220 is the caller's to discard.
	 */
	rc = stream_tls_setup(s, ctx, NULL);
	if (rc < 0)
		return rc;
	return stream_handshake_begin(s, cb, arg);
}

int stream_starttls(struct stream *s, struct tls_ctx *ctx, const char *sni,
		    const char *name, stream_done_cb cb, void *arg)
{
	return stream_starttls_resume(s, ctx, sni, name, NULL, cb, arg);
}

int stream_starttls_resume(struct stream *s, struct tls_ctx *ctx,
			   const char *sni, const char *name,
			   struct tls_session *resume, stream_done_cb cb,
			   void *arg)
{
	int rc;

	if (s->closing)
		return BASE_ECANCELED;
	if (s->failed)
		return s->failed;
	if (s->tls_state != STREAM_PLAIN || s->reading || ctx == NULL ||
	    ctx->server)
		return BASE_EINVAL;
	if (name != NULL && strlen(name) > BASE_DNAME_MAX + 1)
		return BASE_EINVAL;

	rc = stream_check_injection(s);
	if (rc < 0)
		return rc;
	rc = stream_tls_setup(s, ctx, sni);
	if (rc < 0)
		return rc;
	snprintf(s->tls->name, sizeof(s->tls->name), "%s",
		 name != NULL ? name : "");
	/* A session the server no longer has means a full handshake. */
	if (resume != NULL &&
	    wolfSSL_set_session(s->ssl, (WOLFSSL_SESSION *)resume) !=
	    WOLFSSL_SUCCESS)
		resume = NULL;
	return stream_handshake_begin(s, cb, arg);
}

const char *stream_tls_error(const struct stream *s)
{
	const char *text;

	if (s->tls == NULL || s->tls->error == 0)
		return NULL;
	text = wolfSSL_ERR_reason_error_string((unsigned long)s->tls->error);
	return text != NULL && text[0] != '\0' ? text : NULL;
}

struct tls_session *stream_session(const struct stream *s)
{
	if (s->ssl == NULL || s->tls_state != STREAM_TLS || s->tls->server)
		return NULL;
	return (struct tls_session *)wolfSSL_get1_session(s->ssl);
}

void stream_tls_trim(struct stream *s)
{
	if (s->ssl == NULL || s->tls_state != STREAM_TLS)
		return;
	wolfSSL_FreeHandshakeResources(s->ssl);
	free(s->tls->chain_der);
	s->tls->chain_der = NULL;
	s->tls->chain_count = 0;
}

void tls_session_free(struct tls_session *session)
{
	if (session != NULL)
		wolfSSL_SESSION_free((WOLFSSL_SESSION *)session);
}

const struct stream_tls_info *stream_tls(const struct stream *s)
{
	return s->tls_state == STREAM_TLS ? &s->tls->info : NULL;
}

void stream_peer(const struct stream *s, char *out, size_t outlen,
		 struct sockaddr_storage *sa)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	int rc = -1;

	memset(&ss, 0, sizeof(ss));
	if (uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET)
			rc = uv_ip4_name((struct sockaddr_in *)&ss, out,
					 outlen);
		else if (ss.ss_family == AF_INET6)
			rc = uv_ip6_name((struct sockaddr_in6 *)&ss, out,
					 outlen);
	}
	if (rc != 0 && outlen > 0)
		out[0] = '\0';
	if (sa != NULL)
		*sa = ss;
}

int stream_fileno(const struct stream *s, int *fd)
{
	uv_os_fd_t out;

	if (uv_fileno((const uv_handle_t *)&s->tcp, &out) < 0)
		return BASE_EINVAL;
	*fd = out;
	return 0;
}

int stream_local(const struct stream *s, struct sockaddr_storage *sa)
{
	int len = sizeof(*sa);

	memset(sa, 0, sizeof(*sa));
	if (uv_tcp_getsockname(&s->tcp, (struct sockaddr *)sa, &len) < 0)
		return BASE_EINVAL;
	return 0;
}

void stream_nodelay(struct stream *s)
{
	if (s->closing)
		return;
	uv_tcp_nodelay(&s->tcp, 1);
	s->nodelay = true;
}

size_t stream_peer_chain(const struct stream *s, struct tlsa_cert *out,
			 size_t max)
{
	size_t n;

	if (s->ssl == NULL || s->tls_state != STREAM_TLS)
		return 0;
	n = s->tls->chain_count < max ? s->tls->chain_count : max;
	memcpy(out, s->tls->chain, n * sizeof(*out));
	return n;
}
