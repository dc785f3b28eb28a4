/*
 * Transparent interception: original destination, the probe connection
 * opened before the client is greeted, and the mapping of the original
 * destination to an MX host. See transparent.h. Linux only: the socket
 * options below are netfilter's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "log.h"
#include "server.h"
#include "smtp_reply.h"
#include "stream.h"
#include "transparent.h"

/* The option numbers of <linux/netfilter_ipv4.h> and
   <linux/netfilter_ipv6/ip6_tables.h>, whose headers clash with glibc's. */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

struct transparent_probe {
	struct server *srv;
	struct stream *stream;
	uv_timer_t timer;
	struct smtp_reply_parser parser;
	transparent_probe_cb cb;	/* NULL once it ran */
	void *arg;
	bool greeted;
	bool broken;			/* the greeted connection failed */
	char address[80];
};

static int transparent_errno(int err)
{
	switch (err) {
	case ENOMEM:
		return BASE_ENOMEM;
	case ENOENT:
	case ENOPROTOOPT:
		return BASE_ENOTFOUND;
	}
	return BASE_ESYS;
}

int transparent_original_dst(const struct stream *s,
			     struct sockaddr_storage *out)
{
	struct sockaddr_storage local;
	socklen_t len = sizeof(*out);
	int fd, level, option;

	if (stream_fileno(s, &fd) < 0 || stream_local(s, &local) < 0)
		return BASE_ESYS;
	level = local.ss_family == AF_INET6 ? SOL_IPV6 : SOL_IP;
	option = local.ss_family == AF_INET6 ? IP6T_SO_ORIGINAL_DST :
		 SO_ORIGINAL_DST;

	memset(out, 0, sizeof(*out));
	if (getsockopt(fd, level, option, out, &len) == 0 &&
	    out->ss_family == local.ss_family)
		return 0;
	/*
	 * No NAT entry: TPROXY delivered the connection without rewriting
	 * it, so the local address is where the client was going.
	 */
	*out = local;
	return 0;
}

int transparent_listener_setup(uv_tcp_t *tcp, int family)
{
	int level = family == AF_INET6 ? SOL_IPV6 : SOL_IP;
	int option = family == AF_INET6 ? IPV6_TRANSPARENT : IP_TRANSPARENT;
	int one = 1;
	int fd;

	if (uv_fileno((const uv_handle_t *)tcp, &fd) < 0)
		return BASE_ESYS;
	if (setsockopt(fd, level, option, &one, sizeof(one)) < 0)
		return transparent_errno(errno);
	return 0;
}

int transparent_mark_check(uint32_t mark, char *err, size_t errlen)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc = 0;

	if (fd < 0) {
		snprintf(err, errlen, "socket failed: %s", strerror(errno));
		return BASE_ESYS;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0) {
		snprintf(err, errlen, "transparent.mark %u: setting SO_MARK "
			 "failed: %s; it needs CAP_NET_ADMIN (or set mark 0 "
			 "and exclude mxlock's traffic by user)",
			 (unsigned)mark, strerror(errno));
		rc = BASE_ESYS;
	}
	close(fd);
	return rc;
}

void transparent_addr_text(const struct sockaddr *sa, char *out,
			   size_t outlen)
{
	char text[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6;

		in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
		snprintf(out, outlen, "[%s]:%u", text, ntohs(in6->sin6_port));
		return;
	}
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
		snprintf(out, outlen, "%s:%u", text, ntohs(in->sin_port));
		return;
	}
	snprintf(out, outlen, "unknown");
}

bool transparent_addr_equal(const struct sockaddr *a,
			    const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)a;
		const struct sockaddr_in *y = (const struct sockaddr_in *)b;

		return x->sin_port == y->sin_port &&
		       x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
		const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;

		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
	}
	return false;
}

/* ---- the probe ---- */

static void probe_timer_closed(uv_handle_t *h)
{
	struct transparent_probe *p = h->data;

	smtp_reply_parser_free(&p->parser);
	free(p);
}

/* Reports the result once; a failure also closes the connection. */
static void probe_finish(struct transparent_probe *p, int status,
			 const char *detail)
{
	transparent_probe_cb cb = p->cb;

	uv_timer_stop(&p->timer);
	p->cb = NULL;
	if (status < 0) {
		stream_close(p->stream);
		p->stream = NULL;
	}
	if (cb != NULL)
		cb(p->arg, status, detail);
}

static void probe_on_read(struct stream *s, const char *data, size_t len,
			  void *arg)
{
	struct transparent_probe *p = arg;
	const struct smtp_reply *r;
	char detail[300];
	size_t used;
	int rc;

	rc = smtp_reply_parse(&p->parser, data, len, &used, &r);
	if (rc == 0)
		return;
	stream_read_stop(s);
	if (rc < 0 || used < len) {
		/* A server speaks once before the first command. */
		probe_finish(p, BASE_EPROTO, rc < 0 ? base_strerror(rc) :
			     "bytes after the greeting");
		return;
	}
	if (r->code != 220) {
		snprintf(detail, sizeof(detail), "greeting %d", r->code);
		probe_finish(p, BASE_EPROTO, detail);
		return;
	}
	p->greeted = true;
	probe_finish(p, 0, "greeted");
}

static void probe_on_error(struct stream *s, int err, void *arg)
{
	struct transparent_probe *p = arg;

	if (p->cb != NULL) {
		probe_finish(p, err, base_strerror(err));
		return;
	}
	/* The idle greeted connection broke: delivery will connect anew. */
	p->broken = true;
	stream_close(p->stream);
	p->stream = NULL;
}

static const struct stream_handler probe_handler = {
	.on_read = probe_on_read,
	.on_error = probe_on_error,
};

static void probe_on_timeout(uv_timer_t *t)
{
	struct transparent_probe *p = t->data;

	probe_finish(p, BASE_ETIMEDOUT, p->greeted ? "greeting timed out" :
		     "connect or greeting timed out");
}

static void probe_on_connect(struct stream *s, int status, void *arg)
{
	struct transparent_probe *p = arg;
	int rc;

	if (status < 0) {
		probe_finish(p, status, base_strerror(status));
		return;
	}
	stream_nodelay(s);
	stream_set_handler(s, &probe_handler, p);
	rc = stream_read_start(s);
	if (rc < 0)
		probe_finish(p, rc, base_strerror(rc));
}

int transparent_probe_start(struct server *srv, const struct sockaddr *dst,
			    transparent_probe_cb cb, void *arg,
			    struct transparent_probe **out)
{
	const struct conf *conf = srv->conf;
	struct transparent_probe *p;
	int rc;

	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return BASE_ENOMEM;
	rc = stream_new_marked(srv->loop, dst->sa_family,
			       conf->transparent_mark, &p->stream);
	if (rc == 0)
		rc = stream_connect(p->stream, dst, probe_on_connect, p);
	if (rc < 0) {
		stream_close(p->stream);
		free(p);
		return rc;
	}

	p->srv = srv;
	p->cb = cb;
	p->arg = arg;
	transparent_addr_text(dst, p->address, sizeof(p->address));
	smtp_reply_parser_init(&p->parser);
	uv_timer_init(srv->loop, &p->timer);
	p->timer.data = p;
	uv_timer_start(&p->timer, probe_on_timeout,
		       conf->limits.timeouts.connect +
		       conf->limits.timeouts.greeting, 0);
	*out = p;
	return 0;
}

struct stream *transparent_probe_take(struct transparent_probe *p)
{
	struct stream *s;

	if (p == NULL)
		return NULL;
	s = p->greeted && !p->broken ? p->stream : NULL;
	if (s != NULL) {
		stream_set_handler(s, NULL, NULL);
		p->stream = NULL;
	}
	transparent_probe_free(p);
	return s;
}

void transparent_probe_free(struct transparent_probe *p)
{
	if (p == NULL)
		return;
	p->cb = NULL;
	if (p->stream != NULL && p->greeted && !p->broken)
		stream_write(p->stream, "QUIT\r\n", 6, NULL, NULL);
	stream_close(p->stream);
	p->stream = NULL;
	uv_close((uv_handle_t *)&p->timer, probe_timer_closed);
}

/* ---- mapping to the route ---- */

bool transparent_match(const struct route *route, const struct sockaddr *dst,
		       size_t *host, size_t *addr)
{
	for (size_t h = 0; h < route->host_count; h++) {
		const struct route_host *rh = &route->hosts[h];

		for (size_t a = 0; a < rh->addr_count; a++) {
			const struct sockaddr *sa;

			sa = (const struct sockaddr *)&rh->addrs[a].sa;
			if (!transparent_addr_equal(sa, dst))
				continue;
			*host = h;
			*addr = a;
			return true;
		}
	}
	return false;
}

static void route_host_drop(struct route_host *h)
{
	free(h->addrs);
	free(h->tlsa);
	memset(h, 0, sizeof(*h));
}

void transparent_route_focus(struct route *route, size_t h, size_t a,
			     bool keep_others)
{
	struct route_host chosen = route->hosts[h];
	struct route_addr first = chosen.addrs[a];

	memmove(&chosen.addrs[1], &chosen.addrs[0], a * sizeof(first));
	chosen.addrs[0] = first;
	memmove(&route->hosts[1], &route->hosts[0], h * sizeof(chosen));
	route->hosts[0] = chosen;
	if (keep_others)
		return;
	for (size_t i = 1; i < route->host_count; i++)
		route_host_drop(&route->hosts[i]);
	route->host_count = 1;
}

int transparent_route_passthrough(const char *domain,
				  const struct sockaddr *dst,
				  struct route **out)
{
	struct route *route = calloc(1, sizeof(*route));
	struct route_host *host;
	const void *raw;

	*out = NULL;
	if (route == NULL)
		return BASE_ENOMEM;
	route->hosts = calloc(1, sizeof(*route->hosts));
	host = route->hosts;
	if (host != NULL)
		host->addrs = calloc(1, sizeof(*host->addrs));
	if (host == NULL || host->addrs == NULL) {
		route_free(route);
		return BASE_ENOMEM;
	}
	route->host_count = 1;
	route->mx_security = DNS_INSECURE;
	snprintf(route->domain, sizeof(route->domain), "%s", domain);

	raw = dst->sa_family == AF_INET6 ?
	      (const void *)&((const struct sockaddr_in6 *)dst)->sin6_addr :
	      (const void *)&((const struct sockaddr_in *)dst)->sin_addr;
	inet_ntop(dst->sa_family, raw, host->name, sizeof(host->name));
	snprintf(host->tlsa_base, sizeof(host->tlsa_base), "%s", host->name);
	host->addr_count = 1;
	host->addr_security = DNS_INSECURE;
	host->tlsa_state = ROUTE_TLSA_NOT_ASKED;
	memcpy(&host->addrs[0].sa, dst, dst->sa_family == AF_INET6 ?
	       sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	host->addrs[0].len = dst->sa_family == AF_INET6 ?
			     sizeof(struct sockaddr_in6) :
			     sizeof(struct sockaddr_in);
	*out = route;
	return 0;
}

bool transparent_requires_tls(const struct policy *p,
			      const struct route *route)
{
	struct policy_host *ph;
	bool required = p->has_sts && p->sts.mode == POLICY_STS_ENFORCE;

	ph = malloc(sizeof(*ph));
	if (ph == NULL)
		return true;
	/* A host the policy excludes (a failed TLSA lookup, dane-only
	   without TLSA) counts as requiring TLS: DNS trouble must not turn
	   into an unauthenticated passthrough (RFC 7672 section 2.2). */
	for (size_t i = 0; i < route->host_count && !required; i++) {
		policy_for_host(p, route, &route->hosts[i], ph);
		required = ph->require_tls || !ph->usable;
	}
	free(ph);
	return required;
}
