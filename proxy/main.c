/*
 * mxlock's command line: `run -c FILE` runs the proxy in the foreground
 * and logs to standard error; `config-test -c FILE` checks a file;
 * `version` prints the version.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <stdlib.h>

#include "base/err.h"
#include "client.h"
#include "conf/conf.h"
#include "dns.h"
#include "mtasts/resolver.h"
#include "sts_io.h"
#include "upstream.h"
#include "server.h"
#include "session_cache.h"
#include "stream.h"
#include "transparent.h"

#define MXLOCK_VERSION "0.1.0"

static int usage(const char *problem)
{
	if (problem != NULL)
		fprintf(stderr, "mxlock: %s\n", problem);
	fprintf(stderr,
		"usage: mxlock run -c FILE          run in the foreground\n"
		"       mxlock config-test -c FILE  check a configuration file\n"
		"       mxlock sts show -c FILE DOMAIN    print the cached MTA-STS policy\n"
		"       mxlock sts forget -c FILE DOMAIN  delete it from the cache\n"
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

	/* Reload is not built: log that instead of dying on the default action. */
	log_msg(&srv->log, CONF_LOG_WARN,
		"event=reload-unsupported signal=%d action=ignored", signum);
}

/*
 * Stops accepting and ends the loop; finish then waits for the clients
 * whose message the MX may have and closes the rest. A second stop while
 * it waits closes every client at once. The signal and stop handles stay
 * open until finish, so a second signal arrives here too.
 */
static void stop_server(struct server *srv)
{
	if (srv->stopping) {
		if (srv->clients != NULL)
			log_msg(&srv->log, CONF_LOG_WARN,
				"event=stop-forced action=close-all");
		client_close_all(srv);
		return;
	}
	srv->stopping = 1;
	server_stop(srv);
	uv_stop(srv->loop);
}

static void on_signal(uv_signal_t *sig, int signum)
{
	struct server *srv = sig->data;

	if (!srv->stopping)
		log_msg(&srv->log, CONF_LOG_INFO, "event=stop signal=%d", signum);
	stop_server(srv);
}

/* A loop of several: the main thread requests its stop. */
static void on_stop_request(uv_async_t *async)
{
	stop_server(async->data);
}

/*
 * Opens the MTA-STS policy cache and resolver. A cache that cannot be
 * opened stops mxlock: running without it would ignore the enforce
 * policies stored there and deliver such domains' mail opportunistically.
 */
static int start_sts(struct server *srv)
{
	const struct conf *conf = srv->conf;
	int rc;

	if (!conf->policy_mta_sts)
		return 0;
	rc = mtasts_cache_open(conf->state_dir, &srv->sts_cache);
	if (rc < 0) {
		log_msg(&srv->log, CONF_LOG_ERROR,
			"event=sts-cache-failed state_dir=%s error=\"%s\" "
			"hint=\"state_dir must be a writable folder (mxlock creates only "
			"its last part) whose %s is not locked or damaged; or set "
			"policy.mta_sts: false\"",
			conf->state_dir, base_strerror(rc), MTASTS_CACHE_FILE);
		return rc;
	}
	rc = sts_io_new(srv->loop, srv->dns, srv->tls, conf, &srv->sts_io);
	if (rc == 0)
		rc = mtasts_new(sts_io_table(srv->sts_io), srv->sts_cache, &srv->sts);
	if (rc < 0)
		log_msg(&srv->log, CONF_LOG_ERROR, "event=sts-setup-failed error=\"%s\"",
			base_strerror(rc));
	return rc;
}

static void stop_sts(struct server *srv)
{
	mtasts_free(srv->sts);
	srv->sts = NULL;
	sts_io_free(srv->sts_io);
	srv->sts_io = NULL;
}

static void probe_done(void *arg, bool secure, const char *detail)
{
	struct server *srv = arg;
	const char *name = srv->conf->dns_probe[0] ? srv->conf->dns_probe : ".";

	if (secure) {
		log_msg(&srv->log, CONF_LOG_INFO,
			"event=dns-probe name=%s secure=yes detail=\"%s\"", name, detail);
		return;
	}
	/* Without validation DNS answers never come back secure, so DANE
	   never applies; log why once, where the operator looks first. */
	log_msg(&srv->log, CONF_LOG_WARN,
		"event=dns-probe name=%s secure=no detail=\"%s\" "
		"hint=\"use a DNSSEC-validating resolver on loopback; DANE cannot verify any MX until then\"",
		name, detail);
}

/*
 * A mark that cannot be set would fail every delivery, so it stops the
 * start. Without a mark, a redirect on mxlock's own host loops back to
 * mxlock unless the firewall exempts its user, so a warning is logged.
 */
static int check_transparent(struct server *srv)
{
	const struct conf *conf = srv->conf;
	char err[CONF_ERR_MAX];
	int rc;

	if (conf->transparent_mark != 0) {
		rc = transparent_mark_check(conf->transparent_mark, err,
					    sizeof(err));
		if (rc < 0) {
			log_msg(&srv->log, CONF_LOG_ERROR,
				"event=transparent-setup-failed error=\"%s\"", err);
			return rc;
		}
	}
	if (conf_has_transparent(conf) && conf->transparent_mark == 0)
		log_msg(&srv->log, CONF_LOG_WARN,
			"event=transparent-no-mark hint=\"set transparent.mark and "
			"exclude that mark in the firewall rule, or exclude mxlock's "
			"user, or its own connections loop back to it\"");
	return 0;
}

static int start(struct server *srv)
{
	char err[CONF_ERR_MAX];
	int rc;

	rc = tls_ctx_new(srv->conf, &srv->tls, err, sizeof(err));
	if (rc == 0)
		rc = tls_server_ctx_new(srv->conf, &srv->tls_server, err,
					sizeof(err));
	if (rc < 0) {
		log_msg(&srv->log, CONF_LOG_ERROR, "event=tls-setup-failed error=\"%s\"", err);
		return rc;
	}
	/* Without it every handshake is a full one, which still works. */
	srv->sessions = session_cache_new();
	rc = dns_new(srv->loop, srv->conf, &srv->dns);
	if (rc < 0) {
		log_msg(&srv->log, CONF_LOG_ERROR, "event=dns-setup-failed error=\"%s\"",
			base_strerror(rc));
		return rc;
	}
	/* Every loop queries the same resolver, so the first one checks it. */
	if (srv->worker == 0 &&
	    dns_probe(srv->dns, srv->conf->dns_probe, probe_done, srv) < 0)
		log_msg(&srv->log, CONF_LOG_WARN, "event=dns-probe-failed");
	rc = start_sts(srv);
	if (rc < 0)
		return rc;
	rc = check_transparent(srv);
	if (rc < 0)
		return rc;
	/*
	 * With one loop it takes the signals, before it accepts anything;
	 * with several the main thread does.
	 */
	if (srv->workers <= 1) {
		uv_signal_init(srv->loop, &srv->sigint);
		uv_signal_init(srv->loop, &srv->sigterm);
		srv->sigint.data = srv;
		srv->sigterm.data = srv;
		uv_signal_start(&srv->sigint, on_signal, SIGINT);
		uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
		uv_signal_init(srv->loop, &srv->sighup);
		srv->sighup.data = srv;
		uv_signal_start(&srv->sighup, on_hangup, SIGHUP);
	}
	rc = server_listen(srv);
	if (rc < 0)
		return rc;
	if (srv->worker != 0)
		return 0;

	if (strchr(srv->conf->hostname, '.') == NULL)
		log_msg(&srv->log, CONF_LOG_WARN,
			"event=hostname-unqualified hostname=%s hint=\"set hostname to a "
			"fully qualified name; many MX hosts reject a one-label EHLO name\"",
			srv->conf->hostname);
	return 0;
}

static void drain_expired(uv_timer_t *t)
{
	struct server *srv = t->data;

	log_msg(&srv->log, CONF_LOG_WARN,
		"event=stop-wait-expired clients=%s", srv->clients ? "left" : "none");
	client_close_all(srv);
}

/*
 * After a stop: closes idle clients at once and lets those that wait for
 * the MX's reply to their message get it. A 421 for a message the MX
 * accepted would make the MTA send it twice. The MX side's final-reply
 * timeout bounds the wait, and drain_expired is the backstop.
 */
static void drain(struct server *srv)
{
	unsigned left;

	if (!srv->stopping)
		return;
	left = client_close_idle(srv);
	if (left == 0)
		return;
	log_msg(&srv->log, CONF_LOG_INFO,
		"event=stop-wait clients=%u reason=final-reply", left);
	uv_timer_init(srv->loop, &srv->drain);
	srv->drain.data = srv;
	uv_timer_start(&srv->drain, drain_expired,
		       srv->conf->limits.timeouts.final + 5000, 0);
	while (srv->clients != NULL)
		uv_run(srv->loop, UV_RUN_ONCE);
	uv_timer_stop(&srv->drain);
}

/*
 * Closing the last libuv signal handle restores the default action, which
 * for SIGTERM ends the process at once. A stop signal that arrives during
 * the exit stays pending on this thread instead; ignore_stop_signals then
 * drops it.
 */
static void hold_stop_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static void ignore_stop_signals(void)
{
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
}

/* Closes every session so each close callback frees its owner, then the
   loop and what it used. drain must have run. */
static void finish(struct server *srv)
{
	hold_stop_signals();
	client_close_all(srv);
	upstream_pool_close(srv);
	stop_sts(srv);
	dns_free(srv->dns);
	uv_walk(srv->loop, close_walk_cb, NULL);
	uv_run(srv->loop, UV_RUN_DEFAULT);
	/* A start that failed closed the listeners without server_stop. */
	free(srv->listeners);
	srv->listeners = NULL;
	session_cache_free(srv->sessions);
	tls_ctx_free(srv->tls);
	tls_ctx_free(srv->tls_server);
	mtasts_cache_close(srv->sts_cache);
	uv_loop_close(srv->loop);
}

static void server_init(struct server *srv, uv_loop_t *loop,
			const struct conf *conf, unsigned worker)
{
	memset(srv, 0, sizeof(*srv));
	srv->loop = loop;
	srv->conf = conf;
	srv->log.level = conf->log_level;
	srv->worker = worker;
	srv->workers = conf->workers;
}

static int run_one(const struct conf *conf)
{
	struct server srv;
	int rc;

	server_init(&srv, uv_default_loop(), conf, 0);
	rc = start(&srv);
	if (rc == 0) {
		log_msg(&srv.log, CONF_LOG_INFO, "event=start version=%s config=%s",
			MXLOCK_VERSION, conf->path);
		uv_run(srv.loop, UV_RUN_DEFAULT);
		drain(&srv);
	}
	finish(&srv);
	ignore_stop_signals();
	log_msg(&srv.log, CONF_LOG_INFO, "event=exit status=%d", rc < 0 ? 1 : 0);
	return rc < 0 ? 1 : 0;
}

struct workers;

/* One event loop of several, on a thread of its own. */
struct worker {
	struct server srv;
	struct workers *ws;
	uv_loop_t loop;
	uv_thread_t thread;
	uv_sem_t started;	/* posted once start returned, with rc set */
	int rc;
	bool done;		/* its stop handle is closing; under ws->lock */
};

/* The main thread's share: the signals, for every loop. */
struct workers {
	struct worker *list;
	unsigned count;
	unsigned created;	/* threads running, the first ones of list */
	atomic_uint conns;	/* client connections of every loop */
	struct log log;
	uv_mutex_t lock;	/* done flags and sends to the stop handles */
	unsigned finished;	/* loops done; under lock */
	uv_async_t all_done;	/* a loop finished: the main thread checks */
	uv_signal_t sigint;
	uv_signal_t sigterm;
	uv_signal_t sighup;
};

static void worker_main(void *arg)
{
	struct worker *w = arg;
	struct workers *ws = w->ws;
	sigset_t all;

	/* Signals go to the main thread, which passes stops on. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	w->rc = start(&w->srv);
	uv_sem_post(&w->started);
	if (w->rc == 0) {
		uv_run(w->srv.loop, UV_RUN_DEFAULT);
		drain(&w->srv);
	}
	/* From here the main thread sends this loop nothing more. */
	uv_mutex_lock(&ws->lock);
	w->done = true;
	ws->finished++;
	uv_mutex_unlock(&ws->lock);
	finish(&w->srv);
	tls_thread_cleanup();
	if (w->rc == 0)
		uv_async_send(&ws->all_done);
}

/* Asks every loop that is still running to stop, or to stop at once. */
static void stop_workers(struct workers *ws)
{
	uv_mutex_lock(&ws->lock);
	for (unsigned i = 0; i < ws->created; i++) {
		if (ws->list[i].rc == 0 && !ws->list[i].done)
			uv_async_send(&ws->list[i].srv.stop);
	}
	uv_mutex_unlock(&ws->lock);
}

/* Once every loop has finished, the main loop has nothing left to do. */
static void on_worker_done(uv_async_t *async)
{
	struct workers *ws = async->data;
	bool all;

	uv_mutex_lock(&ws->lock);
	all = ws->finished == ws->created;
	uv_mutex_unlock(&ws->lock);
	if (!all)
		return;
	hold_stop_signals();
	uv_close((uv_handle_t *)&ws->all_done, NULL);
	uv_close((uv_handle_t *)&ws->sigint, NULL);
	uv_close((uv_handle_t *)&ws->sigterm, NULL);
	uv_close((uv_handle_t *)&ws->sighup, NULL);
}

static void on_workers_signal(uv_signal_t *sig, int signum)
{
	struct workers *ws = sig->data;

	log_msg(&ws->log, CONF_LOG_INFO, "event=stop signal=%d", signum);
	stop_workers(ws);
}

static void on_workers_hangup(uv_signal_t *sig, int signum)
{
	struct workers *ws = sig->data;

	log_msg(&ws->log, CONF_LOG_WARN,
		"event=reload-unsupported signal=%d action=ignored", signum);
}

/*
 * Runs conf->workers loops on as many threads. Each one starts as
 * run_one's loop does and binds the listeners with SO_REUSEPORT; the main
 * thread waits for signals and passes a stop to each loop.
 */
static int run_workers(const struct conf *conf)
{
	struct workers ws = { .count = conf->workers };
	uv_loop_t *main_loop = uv_default_loop();
	unsigned created = 0;
	int rc = 0;

	ws.log.level = conf->log_level;
	atomic_init(&ws.conns, 0);
	/* SO_REUSEPORT would let the loops share a port with another
	   process as well, so one taken already stops the start. */
	if (server_check_ports(conf, &ws.log) < 0)
		return 1;
	ws.list = calloc(ws.count, sizeof(*ws.list));
	if (ws.list == NULL || uv_mutex_init(&ws.lock) != 0) {
		log_msg(&ws.log, CONF_LOG_ERROR, "event=start-failed error=\"out of memory\"");
		free(ws.list);
		return 1;
	}
	uv_async_init(main_loop, &ws.all_done, on_worker_done);
	ws.all_done.data = &ws;
	/*
	 * The handlers go in before the first loop accepts: a signal during
	 * the start then waits for the main loop instead of killing the
	 * process. Worker threads block every signal.
	 */
	uv_signal_init(main_loop, &ws.sigint);
	uv_signal_init(main_loop, &ws.sigterm);
	uv_signal_init(main_loop, &ws.sighup);
	ws.sigint.data = ws.sigterm.data = ws.sighup.data = &ws;
	uv_signal_start(&ws.sigint, on_workers_signal, SIGINT);
	uv_signal_start(&ws.sigterm, on_workers_signal, SIGTERM);
	uv_signal_start(&ws.sighup, on_workers_hangup, SIGHUP);
	for (; created < ws.count; created++) {
		struct worker *w = &ws.list[created];

		w->ws = &ws;
		rc = uv_loop_init(&w->loop);
		if (rc == 0) {
			server_init(&w->srv, &w->loop, conf, created);
			w->srv.shared_conns = &ws.conns;
			rc = uv_async_init(&w->loop, &w->srv.stop, on_stop_request);
			w->srv.stop.data = &w->srv;
		}
		if (rc == 0)
			rc = uv_sem_init(&w->started, 0);
		if (rc == 0)
			rc = uv_thread_create(&w->thread, worker_main, w);
		if (rc < 0) {
			log_msg(&ws.log, CONF_LOG_ERROR,
				"event=start-failed worker=%u error=\"%s\"", created,
				uv_strerror(rc));
			break;
		}
		/*
		 * One loop starts at a time: the libraries' global set-up
		 * (c-ares, the MTA-STS cache's first open) is not meant for
		 * several threads at once. start logged why a loop failed.
		 */
		uv_sem_wait(&w->started);
		if (w->rc < 0) {
			rc = w->rc;
			created++;
			break;
		}
	}
	ws.created = created;

	if (rc == 0) {
		log_msg(&ws.log, CONF_LOG_INFO,
			"event=start version=%s config=%s workers=%u",
			MXLOCK_VERSION, conf->path, ws.count);
		uv_run(main_loop, UV_RUN_DEFAULT);
	} else {
		stop_workers(&ws);
	}

	for (unsigned i = 0; i < created; i++) {
		uv_thread_join(&ws.list[i].thread);
		uv_sem_destroy(&ws.list[i].started);
	}
	if (!uv_is_closing((uv_handle_t *)&ws.all_done)) {
		/* The start failed: the main loop never ran. */
		hold_stop_signals();
		uv_close((uv_handle_t *)&ws.all_done, NULL);
		uv_close((uv_handle_t *)&ws.sigint, NULL);
		uv_close((uv_handle_t *)&ws.sigterm, NULL);
		uv_close((uv_handle_t *)&ws.sighup, NULL);
	}
	uv_run(main_loop, UV_RUN_DEFAULT);
	ignore_stop_signals();
	uv_mutex_destroy(&ws.lock);
	free(ws.list);
	uv_loop_close(main_loop);
	log_msg(&ws.log, CONF_LOG_INFO, "event=exit status=%d", rc < 0 ? 1 : 0);
	return rc < 0 ? 1 : 0;
}

static int run(const struct conf *conf)
{
	/* A peer that closes early must not kill the process with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	if (conf->workers > 1)
		return run_workers(conf);
	return run_one(conf);
}

/* Loads the TLS settings once, as `run` would, so config-test catches a
   CA file that exists but contains no usable certificate, and a server key
   that does not belong to the server certificate. */
static int check_tls(const struct conf *conf)
{
	struct tls_ctx *tls = NULL;
	char err[CONF_ERR_MAX];
	int rc;

	rc = tls_ctx_new(conf, &tls, err, sizeof(err));
	tls_ctx_free(tls);
	tls = NULL;
	if (rc == 0)
		rc = tls_server_ctx_new(conf, &tls, err, sizeof(err));
	tls_ctx_free(tls);
	if (rc < 0) {
		fprintf(stderr, "mxlock: %s: %s\n", conf->path, err);
		return 1;
	}
	return 0;
}

static void print_entry(const struct mtasts_entry *e)
{
	char fetched[32], expires[32];
	time_t f = (time_t)e->fetched_at, x = (time_t)e->expires_at;
	struct tm tm;

	strftime(fetched, sizeof(fetched), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&f, &tm));
	strftime(expires, sizeof(expires), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&x, &tm));
	printf("domain: %s\nid: %s\nmode: %s\nmax_age: %lld\nfetched: %s\nexpires: %s%s\n",
	       e->domain, e->id, mtasts_mode_name(e->policy.mode),
	       (long long)e->policy.max_age, fetched, expires,
	       e->expires_at <= (int64_t)time(NULL) ? " (expired)" : "");
	for (size_t i = 0; i < e->policy.mx_count; i++)
		printf("mx: %s\n", e->policy.mx[i]);
}

/*
 * `mxlock sts show|forget -c FILE DOMAIN`: reads or edits the policy
 * cache, also while the daemon runs (it reads the cache at every use).
 */
static int sts_command(int argc, char **argv)
{
	struct mtasts_cache *cache = NULL;
	struct mtasts_entry entry;
	struct conf *conf = NULL;
	char err[CONF_ERR_MAX];
	bool show;
	int rc;

	if (argc != 6 || strcmp(argv[3], "-c") != 0 ||
	    (strcmp(argv[2], "show") != 0 && strcmp(argv[2], "forget") != 0))
		return usage("usage of sts: mxlock sts show|forget -c FILE DOMAIN");
	show = strcmp(argv[2], "show") == 0;
	if (conf_load(argv[4], &conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "mxlock: %s\n", err);
		return 1;
	}
	rc = mtasts_cache_open(conf->state_dir, &cache);
	if (rc < 0) {
		fprintf(stderr, "mxlock: cannot open the MTA-STS cache in %s: %s\n",
			conf->state_dir, base_strerror(rc));
		conf_free(conf);
		return 1;
	}
	rc = show ? mtasts_cache_get(cache, argv[5], &entry) :
		mtasts_cache_forget(cache, argv[5]);
	if (rc == 0 && show)
		print_entry(&entry);
	else if (rc == 0)
		printf("%s: cached MTA-STS policy deleted\n", argv[5]);
	else if (rc == BASE_ENOTFOUND)
		printf("%s: no cached MTA-STS policy\n", argv[5]);
	else
		fprintf(stderr, "mxlock: %s: %s\n", argv[5], base_strerror(rc));
	mtasts_cache_close(cache);
	conf_free(conf);
	/* Exit status: 0 done, 3 no cached policy, 1 failure. */
	if (rc == 0)
		return 0;
	if (rc == BASE_ENOTFOUND)
		return 3;
	return 1;
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
	if (argc == 2 && (strcmp(argv[1], "help") == 0 ||
			  strcmp(argv[1], "--help") == 0 ||
			  strcmp(argv[1], "-h") == 0)) {
		usage(NULL);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "sts") == 0)
		return sts_command(argc, argv);
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
