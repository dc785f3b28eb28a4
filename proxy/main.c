/*
 * mxlock's command line: `run -c FILE` runs the proxy in the foreground
 * and logs to standard error; `config-test -c FILE` checks a file;
 * `version` prints the version.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include "base/err.h"
#include "client.h"
#include "conf/conf.h"
#include "dns.h"
#include "server.h"
#include "stream.h"

#define MXLOCK_VERSION "0.1.0"

static int usage(const char *problem)
{
	if (problem != NULL)
		fprintf(stderr, "mxlock: %s\n", problem);
	fprintf(stderr,
		"usage: mxlock run -c FILE          run in the foreground\n"
		"       mxlock config-test -c FILE  check a configuration file\n"
		"       mxlock version              print the version\n");
	return 2;
}

static void close_walk_cb(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void on_hangup(uv_signal_t *sig, int signum)
{
	struct server *srv = sig->data;

	/* Reload is not built: say so instead of dying on the default action. */
	log_msg(&srv->log, CONF_LOG_WARN,
		"event=reload-unsupported signal=%d action=ignored", signum);
}

static void on_signal(uv_signal_t *sig, int signum)
{
	struct server *srv = sig->data;

	if (srv->stopping)
		return;
	srv->stopping = 1;
	log_msg(&srv->log, CONF_LOG_INFO, "event=stop signal=%d", signum);
	server_stop(srv);
	uv_close((uv_handle_t *)&srv->sigint, NULL);
	uv_close((uv_handle_t *)&srv->sigterm, NULL);
	uv_close((uv_handle_t *)&srv->sighup, NULL);
	uv_stop(srv->loop);
}

static int start(struct server *srv)
{
	char err[CONF_ERR_MAX];
	int rc;

	rc = tls_ctx_new(srv->conf, &srv->tls, err, sizeof(err));
	if (rc < 0) {
		log_msg(&srv->log, CONF_LOG_ERROR, "event=tls-setup-failed error=\"%s\"", err);
		return rc;
	}
	rc = dns_new(srv->loop, srv->conf, &srv->dns);
	if (rc < 0) {
		log_msg(&srv->log, CONF_LOG_ERROR, "event=dns-setup-failed error=\"%s\"",
			base_strerror(rc));
		return rc;
	}
	rc = server_listen(srv);
	if (rc < 0)
		return rc;

	uv_signal_init(srv->loop, &srv->sigint);
	uv_signal_init(srv->loop, &srv->sigterm);
	srv->sigint.data = srv;
	srv->sigterm.data = srv;
	uv_signal_start(&srv->sigint, on_signal, SIGINT);
	uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
	uv_signal_init(srv->loop, &srv->sighup);
	srv->sighup.data = srv;
	uv_signal_start(&srv->sighup, on_hangup, SIGHUP);

	if (strchr(srv->conf->hostname, '.') == NULL)
		log_msg(&srv->log, CONF_LOG_WARN,
			"event=hostname-unqualified hostname=%s hint=\"set hostname to a "
			"fully qualified name; many MX hosts reject a one-label EHLO name\"",
			srv->conf->hostname);
	return 0;
}

static int run(const struct conf *conf)
{
	struct server srv;
	int rc;

	memset(&srv, 0, sizeof(srv));
	srv.loop = uv_default_loop();
	srv.conf = conf;
	srv.log.level = conf->log_level;

	/* A peer that closes early must not kill the process with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	rc = start(&srv);
	if (rc == 0) {
		log_msg(&srv.log, CONF_LOG_INFO, "event=start version=%s config=%s",
			MXLOCK_VERSION, conf->path);
		uv_run(srv.loop, UV_RUN_DEFAULT);
	}

	/* Close every session so each close callback frees its owner. */
	client_close_all(&srv);
	dns_free(srv.dns);
	uv_walk(srv.loop, close_walk_cb, NULL);
	uv_run(srv.loop, UV_RUN_DEFAULT);
	tls_ctx_free(srv.tls);
	uv_loop_close(srv.loop);
	log_msg(&srv.log, CONF_LOG_INFO, "event=exit status=%d", rc < 0 ? 1 : 0);
	return rc < 0 ? 1 : 0;
}

/* Loads the TLS settings once, as `run` would, so config-test catches a
   CA file that exists but holds no usable certificate. */
static int check_tls(const struct conf *conf)
{
	struct tls_ctx *tls = NULL;
	char err[CONF_ERR_MAX];

	if (tls_ctx_new(conf, &tls, err, sizeof(err)) < 0) {
		fprintf(stderr, "mxlock: %s: %s\n", conf->path, err);
		return 1;
	}
	tls_ctx_free(tls);
	return 0;
}

int main(int argc, char **argv)
{
	struct conf *conf = NULL;
	char err[CONF_ERR_MAX];
	int rc;

	if (argc == 2 && strcmp(argv[1], "version") == 0) {
		printf("mxlock %s\n", MXLOCK_VERSION);
		return 0;
	}
	if (argc < 2 || (strcmp(argv[1], "run") != 0 &&
			 strcmp(argv[1], "config-test") != 0))
		return usage(argc < 2 ? NULL : "unknown command");
	if (argc != 4 || strcmp(argv[2], "-c") != 0)
		return usage("the configuration file is required: -c FILE");

	if (conf_load(argv[3], &conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "mxlock: %s\n", err);
		return 1;
	}
	if (strcmp(argv[1], "config-test") == 0) {
		rc = check_tls(conf);
		if (rc == 0)
			printf("%s: configuration is valid\n", argv[3]);
		conf_free(conf);
		return rc;
	}
	rc = run(conf);
	conf_free(conf);
	return rc;
}
