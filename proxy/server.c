/* Listeners: accept connections and start a client session on each. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "client.h"
#include "server.h"
#include "stream.h"

static void on_connection(uv_stream_t *listener, int status)
{
	struct server *srv = listener->data;
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
	client_start(srv, stream);
}

static int listen_one(struct server *srv, const struct conf_listen *l,
		      uv_tcp_t *tcp)
{
	struct sockaddr_storage sa;
	int err;

	if (strchr(l->address, ':') != NULL)
		err = uv_ip6_addr(l->address, l->port, (struct sockaddr_in6 *)&sa);
	else
		err = uv_ip4_addr(l->address, l->port, (struct sockaddr_in *)&sa);
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
	log_msg(&srv->log, CONF_LOG_INFO, "event=listen address=%s port=%u",
		l->address, l->port);
	return 0;
}

int server_listen(struct server *srv)
{
	const struct conf *conf = srv->conf;

	srv->listeners = calloc(conf->listen_count, sizeof(*srv->listeners));
	if (srv->listeners == NULL)
		return BASE_ENOMEM;
	for (size_t i = 0; i < conf->listen_count; i++) {
		uv_tcp_init(srv->loop, &srv->listeners[i]);
		srv->listeners[i].data = srv;
		srv->listener_count++;
		if (listen_one(srv, &conf->listen[i], &srv->listeners[i]) < 0)
			return BASE_ESYS;
	}
	return 0;
}

static void listener_closed(uv_handle_t *h)
{
	struct server *srv = h->data;

	if (--srv->listener_count == 0) {
		free(srv->listeners);
		srv->listeners = NULL;
	}
}

void server_stop(struct server *srv)
{
	size_t count = srv->listener_count;

	for (size_t i = 0; i < count; i++)
		uv_close((uv_handle_t *)&srv->listeners[i], listener_closed);
}
