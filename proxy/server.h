/*
 * The one context object of a running mxlock: loop, configuration
 * snapshot, resolver, TLS settings and counters. Every session reaches it
 * through a pointer; nothing of it is global.
 */
#ifndef SERVER_H
#define SERVER_H

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "conf/conf.h"
#include "log.h"

struct client;
struct dns;
struct mtasts;
struct mtasts_cache;
struct sts_io;
struct tls_ctx;
struct upstream;

/* One listening socket and the listen entry it came from. */
struct server_listener {
	uv_tcp_t tcp;
	struct server *srv;
	const struct conf_listen *conf;
};

struct server {
	uv_loop_t *loop;
	const struct conf *conf;
	struct dns *dns;
	struct tls_ctx *tls;		/* client side, toward MX hosts */
	struct tls_ctx *tls_server;	/* STARTTLS toward clients; NULL: off */
	struct log log;
	uint64_t next_conn_id;
	unsigned conn_count;
	struct server_listener *listeners;
	size_t listener_count;
	uv_signal_t sigint;
	uv_signal_t sigterm;
	uv_signal_t sighup;
	int stopping;
	struct client *clients;		/* open client sessions */
	struct mtasts_cache *sts_cache;	/* NULL: no persistent cache */
	struct sts_io *sts_io;
	struct mtasts *sts;		/* NULL: MTA-STS switched off */
	struct upstream *pool;		/* idle MX sessions, see upstream.h */
	struct session_cache *sessions;	/* TLS sessions to resume; may be NULL */
	unsigned worker;		/* this loop's number, 0 first */
	unsigned workers;		/* loops sharing the listeners; 0 or 1:
					   only this one */
	atomic_uint *shared_conns;	/* connections of all loops, for
					   max_connections; NULL: one loop */
	uv_timer_t drain;		/* bounds the wait for final replies
					   at shutdown */
	uv_async_t stop;		/* with several loops: the main thread
					   asks this loop to stop */
	unsigned pool_count;
};

/*
 * Opens every listener of conf and starts accepting. Returns 0 or a
 * negative base_err code after logging which address failed.
 */
int server_listen(struct server *srv);

/*
 * Checks that no other socket listens on conf's addresses, by binding
 * each once without SO_REUSEPORT, and takes a lock per address and port
 * (an abstract socket name) that another mxlock starting at the same time
 * cannot take. Logs and returns BASE_ESYS for one that is taken; other
 * bind errors are left to server_listen.
 */
int server_check_ports(const struct conf *conf, struct log *log);

/* Stops accepting and closes the listeners and signal handles. */
void server_stop(struct server *srv);

#endif
