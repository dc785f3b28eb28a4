/*
 * DNS over c-ares 1.18 on a libuv loop. One c-ares channel per struct dns,
 * one uv_poll_t per c-ares socket and one uv_timer_t for c-ares retries and
 * for the per-lookup deadline (dns timeout from the configuration). The
 * answer header is read here because c-ares 1.18 does not report the AD
 * bit. Only the configured servers are ever asked: resolv.conf is not read.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/dname.h"
#include "base/err.h"
#include "conf/conf.h"
#include "dns.h"

#define DNS_HEADER_LEN 12
#define DNS_EDNS_PAYLOAD 1232	/* bytes; avoids IP fragmentation */
#define DNS_OPT_LEN 11		/* an OPT record with empty RDATA */
#define DNS_TRIES 2

struct dns_poll {
	uv_poll_t handle;
	struct dns *dns;
	ares_socket_t fd;
	struct dns_poll *next;
};

/*
 * A query c-ares still holds. cb is NULL once the caller stops waiting
 * (canceled or timed out); the struct lives until c-ares calls back.
 */
struct dns_query {
	struct dns *dns;
	dns_cb cb;
	void *arg;
	int type;
	unsigned short id;
	uint64_t deadline;	/* uv_now() milliseconds */
	bool sending;		/* inside ares_send */
	bool failed_early;	/* c-ares failed it inside ares_send */
	int early_status;
	struct dns_query *prev, *next;
};

struct dns {
	uv_loop_t *loop;
	ares_channel channel;		/* NULL once destroyed */
	uv_timer_t timer;
	struct dns_poll *polls;
	struct dns_query *head, *tail;	/* oldest first, so deadlines rise */
	uint64_t timeout_ms;
	bool trust_ad;
	bool closing;
	unsigned busy;			/* nesting of c-ares and dns_cb calls */
	unsigned open_handles;		/* handles whose close_cb is pending */
};

/* Translates a c-ares status code. No other function reads them. */
static int err_from_ares(int status)
{
	switch (status) {
	case ARES_SUCCESS:
		return 0;
	case ARES_ENOMEM:
		return BASE_ENOMEM;
	case ARES_ETIMEOUT:
		return BASE_ETIMEDOUT;
	case ARES_ECANCELLED:
	case ARES_EDESTRUCTION:
		return BASE_ECANCELED;
	case ARES_EBADNAME:
	case ARES_EBADQUERY:
	case ARES_EBADFAMILY:
	case ARES_EBADSTR:
		return BASE_EINVAL;
	case ARES_ENODATA:
	case ARES_ENOTFOUND:
		return BASE_ENOTFOUND;
	case ARES_EBADRESP:
		return BASE_EPROTO;
	}
	return BASE_EDNS;
}

const char *dns_security_name(enum dns_security s)
{
	switch (s) {
	case DNS_SECURE: return "secure";
	case DNS_INSECURE: return "insecure";
	case DNS_BOGUS: return "bogus";
	case DNS_INDETERMINATE: return "indeterminate";
	}
	return "unknown";
}

/* Answer parsing ------------------------------------------------------- */

static unsigned read16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* Moves *off past the domain name there (RFC 1035 section 4.1.4). */
static int skip_name(const unsigned char *abuf, size_t alen, size_t *off)
{
	while (*off < alen) {
		unsigned len = abuf[*off];

		if ((len & 0xc0) == 0xc0) {
			if (*off + 2 > alen)
				return BASE_EPROTO;
			*off += 2;
			return 0;
		}
		if (len & 0xc0)
			return BASE_EPROTO;
		*off += 1 + len;
		if (len == 0)
			return 0;
	}
	return BASE_EPROTO;
}

/*
 * Counts the records of qtype and class IN in the answer section, which
 * may also hold the CNAME chain that led to them.
 */
static int count_answers(const unsigned char *abuf, size_t alen, int qtype,
			 size_t *count)
{
	unsigned qdcount = read16(abuf + 4);
	unsigned ancount = read16(abuf + 6);
	size_t off = DNS_HEADER_LEN;

	for (unsigned i = 0; i < qdcount; i++) {
		if (skip_name(abuf, alen, &off) < 0 || off + 4 > alen)
			return BASE_EPROTO;
		off += 4;
	}

	*count = 0;
	for (unsigned i = 0; i < ancount; i++) {
		if (skip_name(abuf, alen, &off) < 0 || off + 10 > alen)
			return BASE_EPROTO;
		if ((int)read16(abuf + off) == qtype &&
		    read16(abuf + off + 2) == ns_c_in)
			(*count)++;
		off += 10 + read16(abuf + off + 8);
		if (off > alen)
			return BASE_EPROTO;
	}
	return 0;
}

int dns_classify(const unsigned char *abuf, size_t alen, int qtype,
		 bool trust_ad, struct dns_result *out)
{
	size_t count = 0;

	*out = (struct dns_result){
		.outcome = DNS_ERROR,
		.security = DNS_INDETERMINATE,
		.rcode = -1,
		.abuf = abuf,
		.alen = alen,
	};
	if (abuf == NULL || alen < DNS_HEADER_LEN || !(abuf[2] & 0x80))
		return BASE_EPROTO;
	out->rcode = abuf[3] & 0x0f;

	/* A truncated answer may lack records, so it proves nothing. */
	if (abuf[2] & 0x02)
		return 0;

	switch (out->rcode) {
	case ns_r_noerror:
		if (count_answers(abuf, alen, qtype, &count) < 0)
			return BASE_EPROTO;
		out->outcome = count > 0 ? DNS_ANSWER : DNS_NODATA;
		break;
	case ns_r_nxdomain:
		out->outcome = DNS_NXDOMAIN;
		break;
	case ns_r_servfail:
		/* A validating resolver answers SERVFAIL for bogus data. */
		out->security = DNS_BOGUS;
		return 0;
	default:
		return 0;
	}

	/* RFC 4035 section 3.2.3: AD means the resolver validated the data. */
	out->security = trust_ad && (abuf[3] & 0x20) ? DNS_SECURE
						      : DNS_INSECURE;
	return 0;
}

int dns_parse_mx(const struct dns_result *result, struct dns_mx **out,
		 size_t *count)
{
	struct ares_mx_reply *head = NULL;
	struct dns_mx *mx;
	size_t n = 0;
	int status;

	*out = NULL;
	*count = 0;
	status = ares_parse_mx_reply(result->abuf, (int)result->alen, &head);
	if (status != ARES_SUCCESS)
		return err_from_ares(status);

	for (struct ares_mx_reply *r = head; r != NULL; r = r->next)
		n++;
	mx = calloc(n > 0 ? n : 1, sizeof(*mx));
	if (mx == NULL) {
		ares_free_data(head);
		return BASE_ENOMEM;
	}

	n = 0;
	for (struct ares_mx_reply *r = head; r != NULL; r = r->next) {
		bool root = r->host[0] == '\0' || strcmp(r->host, ".") == 0;

		/* The root stays "", and an exchange that is not a valid host
		 * name is dropped. */
		mx[n].preference = r->priority;
		if (root)
			mx[n].exchange[0] = '\0';
		else if (base_dname_normalize(r->host, mx[n].exchange,
					      sizeof(mx[n].exchange)) < 0)
			continue;
		n++;
	}
	ares_free_data(head);
	*out = mx;
	*count = n;
	return 0;
}

static void fill_addr(struct sockaddr_storage *ss, int type, const void *ip,
		      uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (type == ns_t_a) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, ip, sizeof(sin->sin_addr));
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		memcpy(&sin6->sin6_addr, ip, sizeof(sin6->sin6_addr));
	}
}

int dns_parse_addrs(const struct dns_result *result, int type, uint16_t port,
		    struct sockaddr_storage *addrs, size_t max, size_t *count)
{
	struct ares_addrttl a[DNS_ADDRS_MAX];
	struct ares_addr6ttl aaaa[DNS_ADDRS_MAX];
	int n = (int)(max < DNS_ADDRS_MAX ? max : DNS_ADDRS_MAX);
	int status;

	*count = 0;
	if (type == ns_t_a)
		status = ares_parse_a_reply(result->abuf, (int)result->alen,
					    NULL, a, &n);
	else if (type == ns_t_aaaa)
		status = ares_parse_aaaa_reply(result->abuf,
					       (int)result->alen, NULL, aaaa,
					       &n);
	else
		return BASE_EINVAL;
	if (status == ARES_ENODATA)
		return 0;
	if (status != ARES_SUCCESS)
		return err_from_ares(status);

	for (int i = 0; i < n; i++) {
		if (type == ns_t_a)
			fill_addr(&addrs[i], type, &a[i].ipaddr, port);
		else
			fill_addr(&addrs[i], type, &aaaa[i].ip6addr, port);
	}
	*count = (size_t)n;
	return 0;
}

/* Sockets and the timer ------------------------------------------------- */

static void release(struct dns *dns)
{
	if (!dns->closing || dns->open_handles > 0)
		return;
	free(dns);
	ares_library_cleanup();
}

static void poll_close_cb(uv_handle_t *handle)
{
	struct dns_poll *poll = handle->data;
	struct dns *dns = poll->dns;

	free(poll);
	dns->open_handles--;
	release(dns);
}

static void timer_close_cb(uv_handle_t *handle)
{
	struct dns *dns = handle->data;

	dns->open_handles--;
	release(dns);
}

static void close_poll(struct dns *dns, struct dns_poll *poll)
{
	struct dns_poll **link = &dns->polls;

	while (*link != poll)
		link = &(*link)->next;
	*link = poll->next;
	uv_close((uv_handle_t *)&poll->handle, poll_close_cb);
}

static void after_process(struct dns *dns);

static void poll_cb(uv_poll_t *handle, int status, int events)
{
	struct dns_poll *poll = handle->data;
	struct dns *dns = poll->dns;
	ares_socket_t rfd = ARES_SOCKET_BAD;
	ares_socket_t wfd = ARES_SOCKET_BAD;

	/* On a poll error c-ares reads and writes, meets the error itself
	 * and retries on another server. */
	if (status < 0 || (events & UV_READABLE))
		rfd = poll->fd;
	if (status < 0 || (events & UV_WRITABLE))
		wfd = poll->fd;

	dns->busy++;
	ares_process_fd(dns->channel, rfd, wfd);
	dns->busy--;
	after_process(dns);
}

static struct dns_poll *open_poll(struct dns *dns, ares_socket_t fd)
{
	struct dns_poll *poll = calloc(1, sizeof(*poll));

	if (poll == NULL)
		return NULL;
	if (uv_poll_init_socket(dns->loop, &poll->handle, fd) < 0) {
		free(poll);
		return NULL;
	}
	poll->handle.data = poll;
	poll->dns = dns;
	poll->fd = fd;
	poll->next = dns->polls;
	dns->polls = poll;
	dns->open_handles++;
	return poll;
}

/*
 * Called by c-ares when a socket opens, changes interest or closes (it
 * calls with no interest before it closes the descriptor).
 */
static void sock_state_cb(void *data, ares_socket_t fd, int readable,
			  int writable)
{
	struct dns *dns = data;
	struct dns_poll *poll = dns->polls;
	int events = (readable ? UV_READABLE : 0) |
		     (writable ? UV_WRITABLE : 0);

	while (poll != NULL && poll->fd != fd)
		poll = poll->next;

	if (events == 0) {
		if (poll != NULL)
			close_poll(dns, poll);
		return;
	}
	if (poll == NULL)
		poll = open_poll(dns, fd);
	/* Without a poll handle the lookup ends at its deadline. */
	if (poll != NULL)
		uv_poll_start(&poll->handle, events, poll_cb);
}

/* Queries ---------------------------------------------------------------- */

static void link_query(struct dns *dns, struct dns_query *q)
{
	q->prev = dns->tail;
	if (dns->tail != NULL)
		dns->tail->next = q;
	else
		dns->head = q;
	dns->tail = q;
}

static void unlink_query(struct dns *dns, struct dns_query *q)
{
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		dns->head = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	else
		dns->tail = q->prev;
}

static void deliver(struct dns_query *q, int status, const unsigned char *abuf,
		    size_t alen)
{
	struct dns_result result = {
		.outcome = DNS_ERROR,
		.security = DNS_INDETERMINATE,
		.rcode = -1,
	};
	dns_cb cb = q->cb;

	q->cb = NULL;
	if (status == ARES_SUCCESS)
		dns_classify(abuf, alen, q->type, q->dns->trust_ad, &result);
	cb(q->arg, &result);
}

static void query_cb(void *arg, int status, int timeouts, unsigned char *abuf,
		     int alen)
{
	struct dns_query *q = arg;
	struct dns *dns = q->dns;

	if (q->sending) {
		q->failed_early = true;
		q->early_status = status;
		return;
	}

	unlink_query(dns, q);
	if (q->cb != NULL && !dns->closing)
		deliver(q, status, abuf, alen > 0 ? (size_t)alen : 0);
	free(q);
}

/* Ends, as timed out, every waiting lookup whose deadline has passed. */
static void expire_queries(struct dns *dns)
{
	uint64_t now = uv_now(dns->loop);

	for (struct dns_query *q = dns->head; q != NULL; q = q->next) {
		if (dns->closing)
			return;
		if (q->cb == NULL)
			continue;
		if (q->deadline > now)
			return;
		deliver(q, ARES_ETIMEOUT, NULL, 0);
	}
}

static void timer_cb(uv_timer_t *timer)
{
	struct dns *dns = timer->data;

	dns->busy++;
	ares_process_fd(dns->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	expire_queries(dns);
	dns->busy--;
	after_process(dns);
}

/* Arms the timer for the next c-ares retry or lookup deadline. */
static void schedule_timer(struct dns *dns)
{
	struct dns_query *q = dns->head;
	uint64_t now = uv_now(dns->loop);
	struct timeval max, tv, *next;
	uint64_t ms = 0;

	while (q != NULL && q->cb == NULL)
		q = q->next;
	if (q != NULL) {
		ms = q->deadline > now ? q->deadline - now : 0;
		max.tv_sec = (time_t)(ms / 1000);
		max.tv_usec = (suseconds_t)(ms % 1000 * 1000);
	}

	next = ares_timeout(dns->channel, q != NULL ? &max : NULL, &tv);
	if (next == NULL) {
		uv_timer_stop(&dns->timer);
		return;
	}
	/* Round up so the timer never fires before c-ares is due. */
	ms = (uint64_t)next->tv_sec * 1000 +
	     ((uint64_t)next->tv_usec + 999) / 1000;
	uv_timer_start(&dns->timer, timer_cb, ms, 0);
}

/*
 * Destroys the channel (c-ares then calls back every query with
 * ARES_EDESTRUCTION and closes its sockets) and closes the handles.
 */
static void shut_down(struct dns *dns)
{
	ares_destroy(dns->channel);
	dns->channel = NULL;

	while (dns->head != NULL) {
		struct dns_query *q = dns->head;

		unlink_query(dns, q);
		free(q);
	}
	while (dns->polls != NULL)
		close_poll(dns, dns->polls);
	uv_close((uv_handle_t *)&dns->timer, timer_close_cb);
}

static void after_process(struct dns *dns)
{
	if (dns->busy > 0)
		return;
	if (dns->closing)
		shut_down(dns);
	else
		schedule_timer(dns);
}

/* Set-up ----------------------------------------------------------------- */

static bool server_is_loopback(const struct conf_dns_server *server)
{
	struct in_addr v4;
	struct in6_addr v6;

	if (inet_pton(AF_INET, server->address, &v4) == 1)
		return (ntohl(v4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, server->address, &v6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&v6);
	return false;
}

/*
 * Trusts the AD bit only when every server is on loopback, because c-ares
 * does not report which server answered. RFC 4035 section 4.9 lets a stub
 * resolver rely on AD only from a trusted resolver over a secure channel.
 */
static bool servers_trusted(const struct conf *conf)
{
	for (size_t i = 0; i < conf->dns_server_count; i++)
		if (!server_is_loopback(&conf->dns_servers[i]))
			return false;
	return true;
}

/* Writes conf's servers as "ip:port,[ipv6]:port" into a new string. */
static char *servers_csv(const struct conf *conf)
{
	size_t size = conf->dns_server_count * 80 + 1;
	char *csv = malloc(size);
	size_t used = 0;

	if (csv == NULL)
		return NULL;
	csv[0] = '\0';
	for (size_t i = 0; i < conf->dns_server_count; i++) {
		const struct conf_dns_server *server = &conf->dns_servers[i];
		bool v6 = strchr(server->address, ':') != NULL;

		used += (size_t)snprintf(csv + used, size - used,
					 v6 ? "%s[%s]:%u" : "%s%s:%u",
					 i > 0 ? "," : "", server->address,
					 (unsigned)server->port);
	}
	return csv;
}

static int open_channel(struct dns *dns, const struct conf *conf)
{
	struct ares_options opts = {0};
	char lookups[] = "b";		/* DNS only, never /etc/hosts */
	char resolv_conf[] = "/dev/null";	/* servers come from conf */
	int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
		   ARES_OPT_SOCK_STATE_CB | ARES_OPT_EDNSPSZ |
		   ARES_OPT_LOOKUPS | ARES_OPT_DOMAINS | ARES_OPT_RESOLVCONF;
	char *csv;
	int status;

	/* NOCHECKRESP hands SERVFAIL and REFUSED to query_cb as answers. */
	opts.flags = ARES_FLAG_NOCHECKRESP | ARES_FLAG_EDNS |
		     ARES_FLAG_NOSEARCH;
	/* Two tries take about three per-try timeouts with one server. */
	opts.timeout = (int)(dns->timeout_ms / 3 > 0 ? dns->timeout_ms / 3 : 1);
	opts.tries = DNS_TRIES;
	opts.sock_state_cb = sock_state_cb;
	opts.sock_state_cb_data = dns;
	opts.ednspsz = DNS_EDNS_PAYLOAD;
	opts.lookups = lookups;
	opts.resolvconf_path = resolv_conf;

	status = ares_init_options(&dns->channel, &opts, mask);
	if (status != ARES_SUCCESS)
		return err_from_ares(status);

	csv = servers_csv(conf);
	status = csv != NULL ? ares_set_servers_ports_csv(dns->channel, csv)
			     : ARES_ENOMEM;
	free(csv);
	if (status != ARES_SUCCESS) {
		ares_destroy(dns->channel);
		return err_from_ares(status);
	}
	return 0;
}

int dns_new(uv_loop_t *loop, const struct conf *conf, struct dns **out)
{
	struct dns *dns;
	int err;

	*out = NULL;
	if (conf->dns_server_count == 0)
		return BASE_EINVAL;
	if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
		return BASE_ENOMEM;

	dns = calloc(1, sizeof(*dns));
	if (dns == NULL) {
		ares_library_cleanup();
		return BASE_ENOMEM;
	}
	dns->loop = loop;
	dns->timeout_ms = conf->limits.timeouts.dns > 0 ?
			  conf->limits.timeouts.dns : 1;
	dns->trust_ad = servers_trusted(conf);

	err = open_channel(dns, conf);
	if (err < 0) {
		free(dns);
		ares_library_cleanup();
		return err;
	}
	uv_timer_init(loop, &dns->timer);
	dns->timer.data = dns;
	dns->open_handles = 1;
	*out = dns;
	return 0;
}

void dns_free(struct dns *dns)
{
	if (dns == NULL || dns->closing)
		return;
	dns->closing = true;

	/* Inside a callback c-ares is still on the stack: after_process
	 * shuts down once it has returned. */
	if (dns->busy == 0)
		shut_down(dns);
}

/* Lookups ---------------------------------------------------------------- */

/*
 * Builds the query with EDNS (RFC 6891) and sets DO in the OPT record
 * (RFC 3225 section 3) so the resolver validates. It also sets AD in the
 * header, because Unbound reports AD in the answer only when it is asked.
 */
static int build_query(const char *name, int type, unsigned short id,
		       unsigned char **qbuf, int *qlen)
{
	int status = ares_create_query(name, ns_c_in, type, id, 1, qbuf, qlen,
				       DNS_EDNS_PAYLOAD);
	unsigned char *opt;

	if (status != ARES_SUCCESS)
		return err_from_ares(status);
	if (*qlen < DNS_HEADER_LEN + DNS_OPT_LEN) {
		ares_free_string(*qbuf);
		return BASE_EPROTO;
	}

	/* The OPT record ends the query: root name, type 41, payload size,
	 * extended rcode, version, then the flags whose top bit is DO. */
	opt = *qbuf + *qlen - DNS_OPT_LEN;
	if (opt[0] != 0 || read16(opt + 1) != ns_t_opt) {
		ares_free_string(*qbuf);
		return BASE_EPROTO;
	}
	opt[7] |= 0x80;
	(*qbuf)[3] |= 0x20;
	return 0;
}

/* Picks a random query ID that no waiting query of this resolver uses. */
static int random_id(struct dns *dns, unsigned short *id)
{
	for (int attempt = 0; attempt < 8; attempt++) {
		struct dns_query *q = dns->head;

		if (getrandom(id, sizeof(*id), 0) != sizeof(*id))
			return BASE_ESYS;
		while (q != NULL && q->id != *id)
			q = q->next;
		if (q == NULL)
			return 0;
	}
	return 0;
}

int dns_lookup(struct dns *dns, const char *name, int type, dns_cb cb,
	       void *arg, struct dns_query **out)
{
	struct dns_query *q;
	unsigned char *qbuf;
	unsigned short id;
	int qlen, err;

	if (out != NULL)
		*out = NULL;
	if (dns->closing)
		return BASE_ECANCELED;
	err = random_id(dns, &id);
	if (err < 0)
		return err;
	err = build_query(name, type, id, &qbuf, &qlen);
	if (err < 0)
		return err;
	q = calloc(1, sizeof(*q));
	if (q == NULL) {
		ares_free_string(qbuf);
		return BASE_ENOMEM;
	}

	q->dns = dns;
	q->cb = cb;
	q->arg = arg;
	q->type = type;
	q->id = id;
	q->deadline = uv_now(dns->loop) + dns->timeout_ms;
	link_query(dns, q);
	q->sending = true;
	ares_send(dns->channel, qbuf, qlen, query_cb, q);
	q->sending = false;
	ares_free_string(qbuf);

	/* c-ares may fail the query before ares_send returns, for example
	 * when it cannot open a socket. The caller then gets the error
	 * instead of a callback. */
	if (q->failed_early) {
		err = err_from_ares(q->early_status);
		unlink_query(dns, q);
		free(q);
		return err < 0 ? err : BASE_EDNS;
	}
	if (out != NULL)
		*out = q;
	if (dns->busy == 0)
		schedule_timer(dns);
	return 0;
}

void dns_cancel(struct dns_query *q)
{
	/* c-ares 1.18 cannot cancel a single query, so the query runs to
	 * its end and query_cb frees it without calling cb. */
	if (q != NULL)
		q->cb = NULL;
}
