/*
 * Bare wolfSSL loops that give the benchmark its floors: the CPU cost of
 * AES-128-GCM on TLS-record-sized buffers, and the client-side CPU cost of
 * one full or one resumed TLS handshake. They link the same libwolfssl as
 * build/mxlock, so the floor moves with the wolfSSL build.
 *
 *   tlsloop aesgcm MIB                 encrypt MIB MiB in 16 KiB records
 *   tlsloop handshake ADDR:PORT COUNT full|resumed
 *                                      handshakes against a server that
 *                                      starts TLS at once (sink -t)
 *   tlsloop hold ADDR:PORT COUNT       open COUNT TLS sessions to such a
 *                                      server and hold them: the RSS each
 *                                      one adds
 *
 * Each prints one line of key=value pairs; CPU is this process's user plus
 * system time.
 */
#define _GNU_SOURCE
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/aes.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* RFC 8446 section 5.1: a TLS record carries at most 2^14 bytes. */
#define RECORD_SIZE 16384

static double cpu_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run_aesgcm(long mib)
{
	static unsigned char in[RECORD_SIZE], out[RECORD_SIZE];
	unsigned char key[16] = { 1 }, iv[12] = { 2 }, tag[16], aad[13] = { 3 };
	long records = mib * (1024 * 1024 / RECORD_SIZE), i;
	double start, cpu;
	Aes aes;

	if (wc_AesInit(&aes, NULL, INVALID_DEVID) != 0 ||
	    wc_AesGcmSetKey(&aes, key, sizeof(key)) != 0) {
		fprintf(stderr, "tlsloop: AES-GCM set-up failed\n");
		return 1;
	}
	start = cpu_seconds();
	for (i = 0; i < records; i++) {
		iv[11] = (unsigned char)i;
		if (wc_AesGcmEncrypt(&aes, out, in, sizeof(in), iv, sizeof(iv),
				     tag, sizeof(tag), aad, sizeof(aad)) != 0) {
			fprintf(stderr, "tlsloop: AES-GCM encryption failed\n");
			return 1;
		}
	}
	cpu = cpu_seconds() - start;
	wc_AesFree(&aes);
	/* GB here is 10^9 bytes, the unit of the benchmark's per-GB figures. */
	printf("aesgcm_ms_per_gb=%.1f mb_per_s=%.1f\n",
	       cpu * 1000.0 / ((double)mib * 1048576.0 / 1e9),
	       (double)mib * 1048576.0 / 1e6 / cpu);
	return 0;
}

static int connect_to(const struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Runs one handshake and reads the server's greeting, which also processes
 * a TLS 1.3 NewSessionTicket. Offers *session when it is set, and stores
 * the new session in *session when it is NULL. Returns 1 if the server
 * resumed the session, 0 if not, -1 on failure.
 */
static int one_handshake(WOLFSSL_CTX *ctx, const struct sockaddr_in *sa,
			 WOLFSSL_SESSION **session)
{
	char greeting[256];
	int fd, rc = -1;
	WOLFSSL *ssl;

	fd = connect_to(sa);
	if (fd < 0)
		return -1;
	ssl = wolfSSL_new(ctx);
	if (ssl != NULL && wolfSSL_set_fd(ssl, fd) == WOLFSSL_SUCCESS &&
	    (*session == NULL || wolfSSL_set_session(ssl, *session) == WOLFSSL_SUCCESS) &&
	    wolfSSL_connect(ssl) == WOLFSSL_SUCCESS &&
	    wolfSSL_read(ssl, greeting, sizeof(greeting)) > 0) {
		rc = wolfSSL_session_reused(ssl) ? 1 : 0;
		if (*session == NULL)
			*session = wolfSSL_get1_session(ssl);
	}
	wolfSSL_free(ssl);
	close(fd);
	return rc;
}

static int parse_address(const char *spec, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(spec, ':');

	if (colon == NULL || (size_t)(colon - spec) >= sizeof(host))
		return -1;
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((unsigned short)atoi(colon + 1));
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

static int run_handshakes(const char *addr, long count, int resume)
{
	WOLFSSL_SESSION *session = NULL;
	struct sockaddr_in sa;
	long i, resumed = 0;
	double start, cpu;
	WOLFSSL_CTX *ctx;
	int rc;

	if (parse_address(addr, &sa) < 0) {
		fprintf(stderr, "tlsloop: invalid address '%s' (expected a.b.c.d:port)\n", addr);
		return 2;
	}
	wolfSSL_Init();
	ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
	if (ctx == NULL)
		return 1;
	/* Like mxlock under "encrypt", check no certificate. */
	wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
	/* With resumption, the first handshake (not timed) gets the session. */
	if (resume && one_handshake(ctx, &sa, &session) < 0) {
		fprintf(stderr, "tlsloop: first handshake with %s failed\n", addr);
		return 1;
	}
	start = cpu_seconds();
	for (i = 0; i < count; i++) {
		WOLFSSL_SESSION *none = NULL;
		rc = one_handshake(ctx, &sa, resume ? &session : &none);
		if (rc < 0) {
			fprintf(stderr, "tlsloop: handshake %ld with %s failed\n", i, addr);
			return 1;
		}
		resumed += rc;
		if (none != NULL)
			wolfSSL_SESSION_free(none);
	}
	cpu = cpu_seconds() - start;
	printf("handshakes=%ld resumed=%ld us_per_handshake=%.1f\n",
	       count, resumed, cpu * 1e6 / (double)count);
	wolfSSL_SESSION_free(session);
	wolfSSL_CTX_free(ctx);
	wolfSSL_Cleanup();
	return 0;
}

/* Returns this process's resident set size in KiB, or -1. */
static long rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	}
	fclose(f);
	return kib;
}

static WOLFSSL *open_session(WOLFSSL_CTX *ctx, const struct sockaddr_in *sa)
{
	char greeting[256];
	int fd = connect_to(sa);
	WOLFSSL *ssl;

	if (fd < 0)
		return NULL;
	ssl = wolfSSL_new(ctx);
	if (ssl != NULL && wolfSSL_set_fd(ssl, fd) == WOLFSSL_SUCCESS &&
	    wolfSSL_connect(ssl) == WOLFSSL_SUCCESS &&
	    wolfSSL_read(ssl, greeting, sizeof(greeting)) > 0)
		return ssl;
	wolfSSL_free(ssl);
	close(fd);
	return NULL;
}

static int run_hold(const char *addr, long count)
{
	struct sockaddr_in sa;
	WOLFSSL **sessions;
	WOLFSSL_CTX *ctx;
	long before, after, i;

	if (parse_address(addr, &sa) < 0 || count <= 0) {
		fprintf(stderr, "tlsloop: invalid address '%s' or count\n", addr);
		return 2;
	}
	sessions = calloc((size_t)count, sizeof(*sessions));
	wolfSSL_Init();
	ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
	if (sessions == NULL || ctx == NULL)
		return 1;
	wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
	/* One session first, so library set-up is not counted per session. */
	wolfSSL_free(open_session(ctx, &sa));
	before = rss_kib();
	for (i = 0; i < count; i++) {
		sessions[i] = open_session(ctx, &sa);
		if (sessions[i] == NULL) {
			fprintf(stderr, "tlsloop: session %ld with %s failed\n", i, addr);
			return 1;
		}
	}
	after = rss_kib();
	printf("sessions=%ld kib_per_session=%.2f\n", count, (double)(after - before) / (double)count);
	for (i = 0; i < count; i++) {
		close(wolfSSL_get_fd(sessions[i]));
		wolfSSL_free(sessions[i]);
	}
	free(sessions);
	wolfSSL_CTX_free(ctx);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "aesgcm") == 0)
		return run_aesgcm(atol(argv[2]));
	if (argc == 5 && strcmp(argv[1], "handshake") == 0)
		return run_handshakes(argv[2], atol(argv[3]), strcmp(argv[4], "resumed") == 0);
	if (argc == 4 && strcmp(argv[1], "hold") == 0)
		return run_hold(argv[2], atol(argv[3]));
	fprintf(stderr, "usage: tlsloop aesgcm MIB\n"
			"       tlsloop handshake ADDR:PORT COUNT full|resumed\n"
			"       tlsloop hold ADDR:PORT COUNT\n");
	return 2;
}
