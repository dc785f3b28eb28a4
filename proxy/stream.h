/*
 * A TCP connection on libuv that can switch to TLS (wolfSSL) in place, for
 * STARTTLS. Reads and writes look the same before and after the switch.
 * Data given to stream_write is copied (or encrypted into a new buffer), so
 * the caller's buffer is free when the call returns; the done callback
 * tells when the bytes have reached the kernel, for backpressure.
 *
 * Lifetime: stream_close marks the stream closing and frees it from the
 * libuv close callback; no callback of the stream runs after stream_close
 * returns. A callback never runs if the call that took it failed.
 */
#ifndef STREAM_H
#define STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "tlsa/tlsa.h"

struct conf;
struct stream;
struct tls_ctx;
struct tls_session;		/* a TLS session that can be resumed */

/* Result of a TLS handshake, for logs and the policy step. */
struct stream_tls_info {
	char version[16];		/* "TLSv1.3" */
	char cipher[64];		/* "TLS_AES_128_GCM_SHA256" */
	bool pkix_valid;		/* chain to tls.ca_file verified */
	char pkix_error[128];		/* why not, when !pkix_valid */
	bool name_match;		/* the name given to stream_starttls is
					   a DNS SAN of the leaf (one-label
					   wildcard allowed); no CN fallback */
	bool resumed;			/* an earlier session was resumed: the
					   server sent no certificate, and
					   pkix_valid and name_match say
					   nothing */
};

struct stream_handler {
	/* Bytes arrived (plaintext after TLS decryption). */
	void (*on_read)(struct stream *s, const char *data, size_t len,
			void *arg);
	/* The connection ended: BASE_EEOF, BASE_ETLS, BASE_EIO ... */
	void (*on_error)(struct stream *s, int err, void *arg);
};

typedef void (*stream_done_cb)(struct stream *s, int status, void *arg);

/*
 * Client-side TLS settings shared by all streams: CA file and minimum
 * version from conf. Returns 0 and stores the context in *out, or a
 * negative base_err code with a message in err.
 */
int tls_ctx_new(const struct conf *conf, struct tls_ctx **out, char *err,
		size_t errlen);
void tls_ctx_free(struct tls_ctx *ctx);

/*
 * Frees what wolfSSL keeps per thread (the ECC fixed-point cache of
 * builds with FP_ECC, such as Debian's). A thread that used TLS calls it
 * before it ends; the cache of the main thread lasts until exit.
 */
void tls_thread_cleanup(void);

/*
 * Server-side TLS settings for STARTTLS toward clients: the chain in
 * tls.server_cert, the key in tls.server_key and the minimum version.
 * Stores NULL in *out and returns 0 when conf sets no certificate. Returns
 * a negative base_err code with a message in err when a file does not
 * load or the key does not belong to the certificate.
 */
int tls_server_ctx_new(const struct conf *conf, struct tls_ctx **out,
		       char *err, size_t errlen);

/* A new unconnected stream on loop. Returns 0 or a negative base_err code. */
int stream_new(uv_loop_t *loop, struct stream **out);

/*
 * A new unconnected stream whose socket for family (AF_INET or AF_INET6)
 * carries the firewall mark mark (SO_MARK, which needs CAP_NET_ADMIN), so
 * firewall rules can tell mxlock's own connections apart. mark 0 is
 * stream_new. Returns 0 or a negative base_err code.
 */
int stream_new_marked(uv_loop_t *loop, int family, uint32_t mark,
		      struct stream **out);

/*
 * Accepts a pending connection on server into a new stream. Returns 0 or a
 * negative base_err code.
 */
int stream_accept(uv_stream_t *server, struct stream **out);

/* Connects to addr; cb gets 0 or a negative base_err code. */
int stream_connect(struct stream *s, const struct sockaddr *addr,
		   stream_done_cb cb, void *arg);

/* Sets the callbacks for reads and errors. */
void stream_set_handler(struct stream *s, const struct stream_handler *h,
			void *arg);

int stream_read_start(struct stream *s);
int stream_read_stop(struct stream *s);

/*
 * Queues len bytes. cb (may be NULL) runs when they are written or the
 * write failed. Returns 0 or a negative base_err code (cb then never runs).
 */
int stream_write(struct stream *s, const char *data, size_t len,
		 stream_done_cb cb, void *arg);

/*
 * Like stream_write, but cb runs only when some of the bytes had to wait
 * for the socket: when it took them all at once, cb never runs. Saves the
 * empty write that would carry cb, for bulk data whose cb only matters
 * once bytes pile up (backpressure).
 */
int stream_write_data(struct stream *s, const char *data, size_t len,
		      stream_done_cb cb, void *arg);

/* Bytes queued for writing and not yet written, for backpressure. */
size_t stream_write_pending(const struct stream *s);

/*
 * Starts a client TLS handshake with SNI set to sni, and checks the leaf
 * against name (may be NULL) for stream_tls_info.name_match. Reading must
 * be stopped and no unread bytes buffered. cb gets 0 when the handshake
 * finished (whatever the verification result, see stream_tls_info), or a
 * negative base_err code. Reads resume through the handler afterwards only
 * after stream_read_start.
 */
int stream_starttls(struct stream *s, struct tls_ctx *ctx, const char *sni,
		    const char *name, stream_done_cb cb, void *arg);

/*
 * Like stream_starttls, but offers to resume session (may be NULL), which
 * an earlier stream_session returned. The caller keeps session, because
 * the call takes its own copy. stream_tls_info.resumed is true when the
 * server accepted it.
 */
int stream_starttls_resume(struct stream *s, struct tls_ctx *ctx,
			   const char *sni, const char *name,
			   struct tls_session *resume, stream_done_cb cb,
			   void *arg);

/*
 * Returns wolfSSL's reason for a failed handshake ("max chain depth
 * exceeded"), or NULL when there is none.
 */
const char *stream_tls_error(const struct stream *s);

/*
 * Returns the client session of s for a later stream_starttls_resume, or
 * NULL. Under TLS 1.3 the server's ticket arrives after the handshake, so
 * call it after the first reply over TLS. The caller frees the session
 * with tls_session_free.
 */
struct tls_session *stream_session(const struct stream *s);
void tls_session_free(struct tls_session *session);

/*
 * Frees mxlock's copy of the peer chain once the owner has checked the
 * certificates, so stream_peer_chain returns 0 afterwards. It also calls
 * wolfSSL_FreeHandshakeResources, although wolfSSL 5.5.4 already frees
 * most of those at the end of a handshake.
 */
void stream_tls_trim(struct stream *s);

/*
 * Starts the server side of a TLS handshake with a client that received
 * the 220 reply to its STARTTLS. ctx comes from tls_server_ctx_new.
 * Reading must be stopped; plaintext the owner read before is its own to
 * discard. cb gets 0 when the handshake finished or a negative base_err
 * code. Reads resume only after stream_read_start.
 */
int stream_starttls_server(struct stream *s, struct tls_ctx *ctx,
			   stream_done_cb cb, void *arg);

/*
 * Stores the certificates the server sent, leaf first, as DER in out (at
 * most max and at most TLSA_CHAIN_MAX). They stay valid until the stream
 * closes or stream_tls_trim. Returns the count: 0 when the stream is
 * plaintext, after a resumed handshake (no certificate was sent) and
 * after stream_tls_trim.
 */
size_t stream_peer_chain(const struct stream *s, struct tlsa_cert *out,
			 size_t max);

/* Returns the TLS details, or NULL when the stream is plaintext. */
const struct stream_tls_info *stream_tls(const struct stream *s);

/* Peer and local addresses as "addr" text; "" when unknown. */
void stream_peer(const struct stream *s, char *out, size_t outlen,
		 struct sockaddr_storage *sa);

/* Stores the socket descriptor in *fd. Returns 0 or BASE_EINVAL. */
int stream_fileno(const struct stream *s, int *fd);

/* Stores the local address. Returns 0 or BASE_EINVAL. */
int stream_local(const struct stream *s, struct sockaddr_storage *sa);

/* Disables Nagle's algorithm (TCP_NODELAY) and acknowledges each read at
   once (TCP_QUICKACK). */
void stream_nodelay(struct stream *s);

/* Closes and later frees; no callback runs after this returns. */
void stream_close(struct stream *s);

#endif
