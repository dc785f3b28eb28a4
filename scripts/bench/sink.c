/*
 * Benchmark SMTP sink: accepts every message and stores nothing.
 *
 * It speaks ESMTP with PIPELINING and STARTTLS (OpenSSL) on each `-l` address,
 * and TLS from the first byte on each `-t` address (for the handshake loop).
 * One thread serves one connection with blocking I/O, so the sink scales to
 * both cores of a small machine without an event loop. Counters (connections,
 * handshakes, resumed handshakes, messages, message bytes) are written to the
 * `-s` file on SIGUSR1; SIGTERM or SIGINT ends the process.
 *
 * Build: cc -O2 -pthread -o sink sink.c -lssl -lcrypto
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define SINK_MAX_LISTENERS 8
/* RFC 5321 section 4.5.3.1.4: a command line is at most 512 octets. */
#define SINK_LINE_MAX 512
#define SINK_IN_SIZE 16384
#define SINK_OUT_SIZE 2048
#define SINK_THREAD_STACK (256 * 1024)

struct sink_counters {
	atomic_ulong connections;
	atomic_ulong handshakes;
	atomic_ulong resumed;
	atomic_ulong messages;
	atomic_ulong bytes;
};

struct sink {
	const char *hostname;
	SSL_CTX *tls;
	struct sink_counters count;
};

struct sink_listener {
	struct sink *sink;
	int fd;
	bool implicit_tls;
};

struct sink_conn {
	struct sink *sink;
	int fd;
	SSL *ssl;
	size_t in_start;
	size_t in_end;
	size_t out_len;
	char in[SINK_IN_SIZE];
	char out[SINK_OUT_SIZE];
};

static ssize_t conn_recv(struct sink_conn *c, char *buf, size_t len)
{
	int n;

	if (c->ssl == NULL)
		return read(c->fd, buf, len);
	n = SSL_read(c->ssl, buf, (int)len);
	return n > 0 ? n : -1;
}

static int conn_flush(struct sink_conn *c)
{
	size_t done = 0;
	ssize_t n;

	while (done < c->out_len) {
		if (c->ssl != NULL)
			n = SSL_write(c->ssl, c->out + done, (int)(c->out_len - done));
		else
			n = write(c->fd, c->out + done, c->out_len - done);
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	c->out_len = 0;
	return 0;
}

/* Queues a reply. conn_flush sends all queued replies in one write. */
static int conn_reply(struct sink_conn *c, const char *text)
{
	size_t len = strlen(text);

	if (c->out_len + len > sizeof(c->out) && conn_flush(c) < 0)
		return -1;
	memcpy(c->out + c->out_len, text, len);
	c->out_len += len;
	return 0;
}

/* Reads more input after the buffered bytes. Returns false at EOF or on an error. */
static bool conn_fill(struct sink_conn *c)
{
	ssize_t n;

	if (c->in_start > 0) {
		memmove(c->in, c->in + c->in_start, c->in_end - c->in_start);
		c->in_end -= c->in_start;
		c->in_start = 0;
	}
	if (c->in_end == sizeof(c->in))
		return false;
	n = conn_recv(c, c->in + c->in_end, sizeof(c->in) - c->in_end);
	if (n <= 0)
		return false;
	c->in_end += (size_t)n;
	return true;
}

static bool conn_has_line(const struct sink_conn *c)
{
	return memchr(c->in + c->in_start, '\n', c->in_end - c->in_start) != NULL;
}

/*
 * Copies the next command line, without its line end, into line. Flushes the
 * queued replies before it waits for input, so pipelined commands get their
 * replies in one write, as RFC 2920 recommends for servers. Returns false at
 * EOF, on an error or for a line longer than SINK_LINE_MAX.
 */
static bool conn_read_line(struct sink_conn *c, char *line)
{
	char *end;
	size_t len;

	while (!conn_has_line(c)) {
		if (conn_flush(c) < 0 || !conn_fill(c))
			return false;
	}
	end = memchr(c->in + c->in_start, '\n', c->in_end - c->in_start);
	len = (size_t)(end - (c->in + c->in_start));
	if (len > 0 && end[-1] == '\r')
		len--;
	if (len >= SINK_LINE_MAX)
		return false;
	memcpy(line, c->in + c->in_start, len);
	line[len] = '\0';
	c->in_start = (size_t)(end - c->in) + 1;
	return true;
}

/*
 * Consumes message data up to and including the CRLF.CRLF that ends it
 * (RFC 5321 section 4.1.1.4). state counts how much of that sequence has
 * been read, and 2 means "at the start of a line", which is where DATA
 * leaves the client. Returns the data length, or -1 at EOF or on an error.
 */
static long conn_read_data(struct sink_conn *c)
{
	int state = 2;
	long total = 0;
	char *p, *end, *cr;

	for (;;) {
		if (c->in_start == c->in_end && !conn_fill(c))
			return -1;
		p = c->in + c->in_start;
		end = c->in + c->in_end;
		while (p < end) {
			if (state == 0) {
				/* Most bytes are inside a line: skip to the next CR. */
				cr = memchr(p, '\r', (size_t)(end - p));
				if (cr == NULL) {
					p = end;
					break;
				}
				p = cr;
			}
			char ch = *p++;
			if (ch == '\r')
				state = state == 3 ? 4 : 1;
			else if (ch == '\n' && state == 4)
				state = 5;
			else if (ch == '\n')
				state = state == 1 ? 2 : 0;
			else if (ch == '.')
				state = state == 2 ? 3 : 0;
			else
				state = 0;
			if (state == 5)
				break;
		}
		total += (long)(p - (c->in + c->in_start));
		c->in_start = (size_t)(p - c->in);
		if (state == 5)
			return total;
	}
}

static int conn_start_tls(struct sink_conn *c)
{
	c->ssl = SSL_new(c->sink->tls);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
		return -1;
	if (SSL_accept(c->ssl) != 1)
		return -1;
	atomic_fetch_add(&c->sink->count.handshakes, 1);
	if (SSL_session_reused(c->ssl))
		atomic_fetch_add(&c->sink->count.resumed, 1);
	return 0;
}

static int reply_ehlo(struct sink_conn *c)
{
	char text[256];

	snprintf(text, sizeof(text),
		 "250-%s\r\n250-PIPELINING\r\n250-SIZE 1073741824\r\n"
		 "250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n%s"
		 "250 SMTPUTF8\r\n",
		 c->sink->hostname,
		 c->ssl == NULL && c->sink->tls != NULL ? "250-STARTTLS\r\n" : "");
	return conn_reply(c, text);
}

static int handle_data(struct sink_conn *c)
{
	long len;

	if (conn_reply(c, "354 End data with <CR><LF>.<CR><LF>\r\n") < 0 || conn_flush(c) < 0)
		return -1;
	len = conn_read_data(c);
	if (len < 0)
		return -1;
	atomic_fetch_add(&c->sink->count.messages, 1);
	atomic_fetch_add(&c->sink->count.bytes, (unsigned long)len);
	return conn_reply(c, "250 2.0.0 OK\r\n");
}

static int handle_starttls(struct sink_conn *c)
{
	if (c->ssl != NULL || c->sink->tls == NULL)
		return conn_reply(c, "503 5.5.1 TLS not available\r\n");
	if (conn_reply(c, "220 2.0.0 Ready to start TLS\r\n") < 0 || conn_flush(c) < 0)
		return -1;
	/* Bytes pipelined after STARTTLS would be plaintext injected into the
	   TLS session (CVE-2011-0411), so they are discarded. */
	c->in_start = c->in_end = 0;
	return conn_start_tls(c);
}

/* Handles one command. Returns 1 after QUIT, 0 to go on, -1 to close. */
static int handle_command(struct sink_conn *c, const char *line)
{
	if (strncasecmp(line, "EHLO", 4) == 0 || strncasecmp(line, "HELO", 4) == 0)
		return reply_ehlo(c);
	if (strncasecmp(line, "MAIL", 4) == 0)
		return conn_reply(c, "250 2.1.0 OK\r\n");
	if (strncasecmp(line, "RCPT", 4) == 0)
		return conn_reply(c, "250 2.1.5 OK\r\n");
	if (strcasecmp(line, "DATA") == 0)
		return handle_data(c);
	if (strcasecmp(line, "STARTTLS") == 0)
		return handle_starttls(c);
	if (strcasecmp(line, "RSET") == 0 || strcasecmp(line, "NOOP") == 0)
		return conn_reply(c, "250 2.0.0 OK\r\n");
	if (strcasecmp(line, "QUIT") == 0) {
		if (conn_reply(c, "221 2.0.0 Bye\r\n") < 0 || conn_flush(c) < 0)
			return -1;
		return 1;
	}
	return conn_reply(c, "502 5.5.2 Command not implemented\r\n");
}

static void conn_serve(struct sink_conn *c, bool implicit_tls)
{
	char line[SINK_LINE_MAX];
	char greeting[128];
	int rc = 0;

	if (implicit_tls && conn_start_tls(c) < 0)
		return;
	snprintf(greeting, sizeof(greeting), "220 %s ESMTP bench sink\r\n", c->sink->hostname);
	if (conn_reply(c, greeting) < 0)
		return;
	while (rc == 0 && conn_read_line(c, line))
		rc = handle_command(c, line);
}

struct conn_start {
	struct sink_listener *listener;
	int fd;
};

static void *conn_thread(void *arg)
{
	struct conn_start start = *(struct conn_start *)arg;
	struct sink_conn *c;

	free(arg);
	c = calloc(1, sizeof(*c));
	if (c != NULL) {
		c->sink = start.listener->sink;
		c->fd = start.fd;
		conn_serve(c, start.listener->implicit_tls);
		if (c->ssl != NULL)
			SSL_free(c->ssl);
		free(c);
	}
	close(start.fd);
	ERR_clear_error();
	return NULL;
}

static void *accept_thread(void *arg)
{
	struct sink_listener *l = arg;
	pthread_attr_t attr;
	pthread_t tid;
	int one = 1;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, SINK_THREAD_STACK);
	for (;;) {
		int fd = accept(l->fd, NULL, NULL);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				usleep(10000);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		atomic_fetch_add(&l->sink->count.connections, 1);
		struct conn_start *start = malloc(sizeof(*start));
		if (start == NULL) {
			close(fd);
			continue;
		}
		start->listener = l;
		start->fd = fd;
		if (pthread_create(&tid, &attr, conn_thread, start) != 0) {
			free(start);
			close(fd);
		}
	}
	return NULL;
}

/* Opens a listening socket on "a.b.c.d:port". Returns the descriptor or -1. */
static int listen_on(const char *spec)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char host[64];
	const char *colon = strrchr(spec, ':');
	int fd, one = 1;

	if (colon == NULL || (size_t)(colon - spec) >= sizeof(host)) {
		fprintf(stderr, "sink: invalid address '%s' (expected a.b.c.d:port)\n", spec);
		return -1;
	}
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	sa.sin_port = htons((unsigned short)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "sink: invalid IPv4 address '%s'\n", host);
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4096) < 0) {
		fprintf(stderr, "sink: cannot listen on %s: %s\n", spec, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static SSL_CTX *tls_context(const char *chain, const char *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, chain) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		fprintf(stderr, "sink: cannot load %s or %s\n", chain, key);
		ERR_print_errors_fp(stderr);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static void write_stats(struct sink *s, const char *path)
{
	FILE *f = fopen(path, "w");

	if (f == NULL) {
		fprintf(stderr, "sink: cannot write %s: %s\n", path, strerror(errno));
		return;
	}
	fprintf(f, "connections=%lu handshakes=%lu resumed=%lu messages=%lu bytes=%lu\n",
		atomic_load(&s->count.connections), atomic_load(&s->count.handshakes),
		atomic_load(&s->count.resumed), atomic_load(&s->count.messages),
		atomic_load(&s->count.bytes));
	fclose(f);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: sink [-n HOSTNAME] [-c CHAIN.pem -k KEY.pem] [-s STATS_FILE]\n"
		"            -l ADDR:PORT (STARTTLS offered) | -t ADDR:PORT (TLS at once) ...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static struct sink sink = { .hostname = "sink.bench.test" };
	struct sink_listener listeners[SINK_MAX_LISTENERS];
	const char *chain = NULL, *key = NULL, *stats = NULL;
	int count = 0, opt, sig, i;
	sigset_t set;
	pthread_t tid;

	while ((opt = getopt(argc, argv, "n:c:k:s:l:t:")) != -1) {
		switch (opt) {
		case 'n': sink.hostname = optarg; break;
		case 'c': chain = optarg; break;
		case 'k': key = optarg; break;
		case 's': stats = optarg; break;
		case 'l':
		case 't':
			if (count == SINK_MAX_LISTENERS)
				usage();
			listeners[count].sink = &sink;
			listeners[count].implicit_tls = opt == 't';
			listeners[count].fd = listen_on(optarg);
			if (listeners[count].fd < 0)
				return 1;
			count++;
			break;
		default: usage();
		}
	}
	if (count == 0 || (chain == NULL) != (key == NULL))
		usage();
	if (chain != NULL && (sink.tls = tls_context(chain, key)) == NULL)
		return 1;

	/* Threads inherit this mask, so only sigwait below receives the signals. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < count; i++) {
		if (listeners[i].implicit_tls && sink.tls == NULL)
			usage();
		if (pthread_create(&tid, NULL, accept_thread, &listeners[i]) != 0)
			return 1;
	}
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig != SIGUSR1)
			return 0;
		if (stats != NULL)
			write_stats(&sink, stats);
	}
}
