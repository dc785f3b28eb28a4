/*
 * Listeners: accept connections and start a client session on each. A
 * transparent listener's socket gets IP_TRANSPARENT before its bind, so
 * TPROXY can deliver connections for foreign addresses to it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/err.h"
#include "client.h"
#include "server.h"
#include "stream.h"
#include "transparent.h"

static void on_connection(uv_stream_t *listener, int status)
{
	struct server_listener *l = listener->data;
	struct server *srv = l->srv;
	struct stream *stream;
	int err;

	if (status < 0) {
		log_msg(&srv->log, CONF_LOG_WARN, "event=accept-failed error=\"%s\"",
			uv_strerror(status));
		return;
	}
	err = stream_accept(listener, &stream);
	if (err < 0) {
		log_msg(&srv->log, CONF_LOG_WARN, "event=accept-failed error=\"%s\"",
			base_strerror(err));
		return;
	}
	client_start(srv, stream, l->conf);
}

/*
 * Without IP_TRANSPARENT only REDIRECT works on this listener; TPROXY
 * needs the option, so its absence is logged and the start goes on.
 */
static void transparent_setup(struct server *srv, const struct conf_listen *l,
			      uv_tcp_t *tcp, int family)
{
	int rc = transparent_listener_setup(tcp, family);

	if (rc == 0)
		return;
	log_msg(&srv->log, CONF_LOG_WARN,
		"event=tproxy-unavailable address=%s port=%u error=\"%s\" "
		"hint=\"REDIRECT works; TPROXY needs CAP_NET_ADMIN for IP_TRANSPARENT\"",
		l->address, l->port, base_strerror(rc));
}

/*
 * Lets every loop bind the same address; the kernel then spreads new
 * connections over their sockets. libuv 1.44 has no flag for it, so the
 * option goes on the socket that uv_tcp_init_ex created, before the bind.
 */
static int reuse_port(uv_tcp_t *tcp)
{
	uv_os_fd_t fd;
	int on = 1, rc;

	rc = uv_fileno((uv_handle_t *)tcp, &fd);
	if (rc < 0)
		return rc;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) < 0)
		return uv_translate_sys_error(errno);
	return 0;
}

/* Fills sa from a listener's address and port. Returns 0 or a libuv code. */
static int listener_addr(const struct conf_listen *l, struct sockaddr_storage *sa)
{
	if (strchr(l->address, ':') != NULL)
		return uv_ip6_addr(l->address, l->port, (struct sockaddr_in6 *)sa);
	return uv_ip4_addr(l->address, l->port, (struct sockaddr_in *)sa);
}

static int listen_one(struct server *srv, struct server_listener *listener)
{
	const struct conf_listen *l = listener->conf;
	uv_tcp_t *tcp = &listener->tcp;
	struct sockaddr_storage sa;
	int err;

	err = listener_addr(l, &sa);
	if (err == 0)
		err = uv_tcp_init_ex(srv->loop, tcp, sa.ss_family);
	if (err == 0) {
		tcp->data = listener;
		srv->listener_count++;	/* server_stop closes it */
	}
	if (err == 0 && l->mode == CONF_LISTEN_TRANSPARENT)
		transparent_setup(srv, l, tcp, sa.ss_family);
	if (err == 0 && srv->workers > 1)
		err = reuse_port(tcp);
	if (err == 0)
		err = uv_tcp_bind(tcp, (struct sockaddr *)&sa,
				  sa.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
	if (err == 0)
		err = uv_listen((uv_stream_t *)tcp, 511, on_connection);
	if (err < 0) {
		log_msg(&srv->log, CONF_LOG_ERROR,
			"event=listen-failed address=%s port=%u error=\"%s\"",
			l->address, l->port, uv_strerror(err));
		return BASE_ESYS;
	}
	log_msg(&srv->log, CONF_LOG_INFO, "event=listen address=%s port=%u mode=%s",
		l->address, l->port,
		l->mode == CONF_LISTEN_TRANSPARENT ? "transparent" : "relay");
	return 0;
}

/*
 * Takes a name in the abstract socket namespace for address and port and
 * keeps it until the process ends. Names are unique per network
 * namespace, like ports, so of two mxlock processes that start together
 * only one gets it. Returns false when another process has it.
 */
static bool lock_port(const struct conf_listen *l)
{
	struct sockaddr_un sun;
	socklen_t len;
	int fd, n;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	n = snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1,
		     "mxlock-listen-%s-%u", l->address, l->port);
	if (n < 0 || (size_t)n >= sizeof(sun.sun_path) - 1)
		return true;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return true;
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	if (bind(fd, (struct sockaddr *)&sun, len) < 0) {
		bool name_in_use = errno == EADDRINUSE;

		close(fd);
		return !name_in_use;
	}
	/* fd stays open, and the name with it, until mxlock exits. */
	return true;
}

int server_check_ports(const struct conf *conf, struct log *log)
{
	for (size_t i = 0; i < conf->listen_count; i++) {
		const struct conf_listen *l = &conf->listen[i];
		struct sockaddr_storage sa;
		int fd, on = 1, in_use;

		if (!lock_port(l)) {
			log_msg(log, CONF_LOG_ERROR,
				"event=listen-failed address=%s port=%u error=\"address "
				"already in use\" hint=\"another mxlock is starting there\"",
				l->address, l->port);
			return BASE_ESYS;
		}
		if (listener_addr(l, &sa) != 0)
			continue;
		fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		/* As libuv binds: SO_REUSEADDR, so only a listener conflicts. */
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
		if (sa.ss_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
		in_use = bind(fd, (struct sockaddr *)&sa,
			     sa.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
			     sizeof(struct sockaddr_in)) < 0 && errno == EADDRINUSE;
		close(fd);
		if (in_use) {
			log_msg(log, CONF_LOG_ERROR,
				"event=listen-failed address=%s port=%u error=\"address "
				"already in use\" hint=\"another process listens there\"",
				l->address, l->port);
			return BASE_ESYS;
		}
	}
	return 0;
}

int server_listen(struct server *srv)
{
	const struct conf *conf = srv->conf;

	srv->listeners = calloc(conf->listen_count, sizeof(*srv->listeners));
	if (srv->listeners == NULL)
		return BASE_ENOMEM;
	for (size_t i = 0; i < conf->listen_count; i++) {
		struct server_listener *l = &srv->listeners[i];

		l->srv = srv;
		l->conf = &conf->listen[i];
		if (listen_one(srv, l) < 0)
			return BASE_ESYS;
	}
	return 0;
}

static void listener_closed(uv_handle_t *h)
{
	struct server_listener *l = h->data;
	struct server *srv = l->srv;

	if (--srv->listener_count == 0) {
		free(srv->listeners);
		srv->listeners = NULL;
	}
}

void server_stop(struct server *srv)
{
	size_t count = srv->listener_count;

	for (size_t i = 0; i < count; i++) {
		uv_handle_t *h = (uv_handle_t *)&srv->listeners[i].tcp;

		uv_close(h, listener_closed);
	}
}
