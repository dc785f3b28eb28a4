/*
 * Persistent MTA-STS policy cache: see cache.h. Two SQLite connections
 * share the database: one for the caller's reads, deletes and synchronous
 * writes (used from one thread at a time), one owned by the writer thread.
 * The queue between them contains at most MTASTS_CACHE_QUEUE_MAX entries.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "base/err.h"
#include "cache.h"
#include "http.h"

#define READ_BUSY_MS 250	/* the event loop waits at most this long
				   (cache.h states the same number) */
#define WRITE_BUSY_MS 5000	/* the writer thread may wait longer */

static const char schema_sql[] =
	"PRAGMA journal_mode = WAL;"
	"PRAGMA synchronous = NORMAL;"
	"CREATE TABLE IF NOT EXISTS policies ("
	" domain TEXT PRIMARY KEY,"
	" id TEXT NOT NULL,"
	" body TEXT NOT NULL,"
	" fetched_at INTEGER NOT NULL,"
	" expires_at INTEGER NOT NULL"
	") WITHOUT ROWID;";

static const char get_sql[] =
	"SELECT id, body, fetched_at, expires_at FROM policies"
	" WHERE domain = ?1;";

/* A row written by another fetch that is newer than ours is kept. */
static const char put_sql[] =
	"INSERT INTO policies (domain, id, body, fetched_at, expires_at)"
	" VALUES (?1, ?2, ?3, ?4, ?5)"
	" ON CONFLICT (domain) DO UPDATE SET id = excluded.id,"
	" body = excluded.body, fetched_at = excluded.fetched_at,"
	" expires_at = excluded.expires_at"
	" WHERE excluded.fetched_at >= policies.fetched_at;";

static const char forget_sql[] = "DELETE FROM policies WHERE domain = ?1;";

/* One write waiting for the writer thread. */
struct cache_job {
	char domain[BASE_DNAME_MAX + 1];
	char id[MTASTS_ID_MAX + 1];
	int64_t fetched_at;
	int64_t expires_at;
	size_t body_len;
	char body[];
};

struct mtasts_cache {
	sqlite3 *db;			/* the caller's connection */
	sqlite3_stmt *get_stmt;
	sqlite3 *writer_db;		/* used only by the writer thread */

	pthread_t writer;
	pthread_mutex_t lock;
	pthread_cond_t wake;		/* a job arrived, or close began */
	pthread_cond_t idle;		/* the queue emptied */
	struct cache_job *jobs[MTASTS_CACHE_QUEUE_MAX];
	size_t head;
	size_t count;
	bool writing;
	bool stopping;
	struct mtasts_cache_stats stats;
};

/* Translates an SQLite result code into a base_err code. */
static int sqlite_err(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_NOMEM:
		return BASE_ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return BASE_ETIMEDOUT;
	case SQLITE_IOERR:
	case SQLITE_FULL:
	case SQLITE_CANTOPEN:
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_READONLY:
	case SQLITE_PERM:
		return BASE_EIO;
	default:
		return BASE_ESYS;
	}
}

/* Translates an errno value into a base_err code. */
static int errno_err(int e)
{
	switch (e) {
	case ENOMEM:
		return BASE_ENOMEM;
	case ENOTDIR:
	case ENAMETOOLONG:
		return BASE_EINVAL;
	case EACCES:
	case EPERM:
	case EROFS:
	case ENOSPC:
	case EIO:
		return BASE_EIO;
	default:
		return BASE_ESYS;
	}
}

/* Creates state_dir (mode 0700) unless it exists; it must be a folder. */
static int make_dir(const char *state_dir)
{
	struct stat st;

	if (mkdir(state_dir, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return errno_err(errno);
	if (stat(state_dir, &st) < 0)
		return errno_err(errno);
	return S_ISDIR(st.st_mode) ? 0 : BASE_EINVAL;
}

static int open_db(const char *path, int busy_ms, sqlite3 **out)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
		    SQLITE_OPEN_NOFOLLOW;
	sqlite3 *db = NULL;
	int rc;

	*out = NULL;
	rc = sqlite3_open_v2(path, &db, flags, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_busy_timeout(db, busy_ms);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, schema_sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_close(db);
		return sqlite_err(rc);
	}
	*out = db;
	return 0;
}

static void *writer_main(void *arg);

/*
 * Starts the writer thread with every signal blocked, so that signals
 * meant for the event loop are never delivered to it.
 */
static int start_writer(struct mtasts_cache *c)
{
	sigset_t all;
	sigset_t old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&c->writer, NULL, writer_main, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc == 0 ? 0 : errno_err(rc);
}

static int open_connections(struct mtasts_cache *c, const char *state_dir)
{
	char path[PATH_MAX];
	int n;
	int rc;

	n = snprintf(path, sizeof(path), "%s/%s", state_dir, MTASTS_CACHE_FILE);
	if (n < 0 || (size_t)n >= sizeof(path))
		return BASE_EINVAL;
	rc = make_dir(state_dir);
	if (rc == 0)
		rc = open_db(path, READ_BUSY_MS, &c->db);
	if (rc == 0)
		rc = open_db(path, WRITE_BUSY_MS, &c->writer_db);
	if (rc == 0)
		rc = sqlite_err(sqlite3_prepare_v2(c->db, get_sql, -1,
						   &c->get_stmt, NULL));
	return rc;
}

static void release(struct mtasts_cache *c)
{
	sqlite3_finalize(c->get_stmt);
	sqlite3_close(c->db);
	sqlite3_close(c->writer_db);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->wake);
	pthread_cond_destroy(&c->idle);
	free(c);
}

int mtasts_cache_open(const char *state_dir, struct mtasts_cache **out)
{
	struct mtasts_cache *c;
	int rc;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return BASE_ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->wake, NULL);
	pthread_cond_init(&c->idle, NULL);

	rc = open_connections(c, state_dir);
	if (rc == 0)
		rc = start_writer(c);
	if (rc < 0) {
		release(c);
		return rc;
	}
	*out = c;
	return 0;
}

void mtasts_cache_close(struct mtasts_cache *c)
{
	if (c == NULL)
		return;

	/* The thread writes every queued entry before it checks stopping. */
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->writer, NULL);
	release(c);
}

static int read_row(sqlite3_stmt *stmt, const char *domain,
		    struct mtasts_entry *out)
{
	const char *id = (const char *)sqlite3_column_text(stmt, 0);
	const char *body = (const char *)sqlite3_column_text(stmt, 1);
	size_t body_len = (size_t)sqlite3_column_bytes(stmt, 1);

	if (id == NULL || body == NULL || strlen(id) > MTASTS_ID_MAX)
		return BASE_EINVAL;
	memset(out, 0, sizeof(*out));
	strcpy(out->domain, domain);
	strcpy(out->id, id);
	out->fetched_at = sqlite3_column_int64(stmt, 2);
	out->expires_at = sqlite3_column_int64(stmt, 3);

	/* The stored file is parsed again, so a damaged row never applies. */
	return mtasts_policy_parse(body, body_len, &out->policy);
}

int mtasts_cache_get(struct mtasts_cache *c, const char *domain,
		     struct mtasts_entry *out)
{
	char name[BASE_DNAME_MAX + 1];
	sqlite3_stmt *stmt = c->get_stmt;
	int rc;

	if (base_dname_normalize(domain, name, sizeof(name)) < 0)
		return BASE_EINVAL;

	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		rc = read_row(stmt, name, out);
	else if (rc == SQLITE_DONE)
		rc = BASE_ENOTFOUND;
	else
		rc = sqlite_err(rc);
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	return rc;
}

static int write_job(sqlite3 *db, const struct cache_job *job)
{
	sqlite3_stmt *stmt;
	int rc;

	rc = sqlite3_prepare_v2(db, put_sql, -1, &stmt, NULL);
	if (rc != SQLITE_OK)
		return sqlite_err(rc);
	sqlite3_bind_text(stmt, 1, job->domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, job->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, job->body, (int)job->body_len,
			  SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 4, job->fetched_at);
	sqlite3_bind_int64(stmt, 5, job->expires_at);
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	return rc == SQLITE_DONE ? 0 : sqlite_err(rc);
}

/* Copies an entry and its policy file into a new job. */
static int make_job(const struct mtasts_entry *e, const char *body,
		    size_t len, struct cache_job **out)
{
	struct cache_job *job;
	size_t id_len = strlen(e->id);

	*out = NULL;
	if (len > MTASTS_HTTP_BODY_MAX || id_len == 0 || id_len > MTASTS_ID_MAX)
		return BASE_EINVAL;
	job = malloc(sizeof(*job) + len);
	if (job == NULL)
		return BASE_ENOMEM;
	if (base_dname_normalize(e->domain, job->domain,
				 sizeof(job->domain)) < 0) {
		free(job);
		return BASE_EINVAL;
	}
	memcpy(job->id, e->id, id_len + 1);
	job->fetched_at = e->fetched_at;
	job->expires_at = e->expires_at;
	job->body_len = len;
	memcpy(job->body, body, len);
	*out = job;
	return 0;
}

int mtasts_cache_put_sync(struct mtasts_cache *c,
			  const struct mtasts_entry *e, const char *body,
			  size_t len)
{
	struct cache_job *job;
	int rc;

	rc = make_job(e, body, len, &job);
	if (rc < 0)
		return rc;
	rc = write_job(c->db, job);
	free(job);
	return rc;
}

int mtasts_cache_put(struct mtasts_cache *c, const struct mtasts_entry *e,
		     const char *body, size_t len)
{
	struct cache_job *job;
	int rc;

	rc = make_job(e, body, len, &job);
	if (rc < 0)
		return rc;

	pthread_mutex_lock(&c->lock);
	if (c->count == MTASTS_CACHE_QUEUE_MAX) {
		c->stats.dropped++;
		pthread_mutex_unlock(&c->lock);
		free(job);
		return BASE_ETOOLONG;
	}
	c->jobs[(c->head + c->count) % MTASTS_CACHE_QUEUE_MAX] = job;
	c->count++;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* Runs on the writer thread until close, then drains the queue. */
static void *writer_main(void *arg)
{
	struct mtasts_cache *c = arg;
	struct cache_job *job;
	int rc;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (c->count == 0 && !c->stopping)
			pthread_cond_wait(&c->wake, &c->lock);
		if (c->count == 0)
			break;
		job = c->jobs[c->head];
		c->head = (c->head + 1) % MTASTS_CACHE_QUEUE_MAX;
		c->count--;
		c->writing = true;
		pthread_mutex_unlock(&c->lock);

		rc = write_job(c->writer_db, job);
		free(job);

		pthread_mutex_lock(&c->lock);
		c->writing = false;
		if (rc == 0)
			c->stats.written++;
		else
			c->stats.failed++;
		if (c->count == 0)
			pthread_cond_broadcast(&c->idle);
	}
	pthread_cond_broadcast(&c->idle);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

void mtasts_cache_flush(struct mtasts_cache *c)
{
	pthread_mutex_lock(&c->lock);
	while (c->count > 0 || c->writing)
		pthread_cond_wait(&c->idle, &c->lock);
	pthread_mutex_unlock(&c->lock);
}

void mtasts_cache_stats(struct mtasts_cache *c, struct mtasts_cache_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->stats;
	pthread_mutex_unlock(&c->lock);
}

int mtasts_cache_forget(struct mtasts_cache *c, const char *domain)
{
	char name[BASE_DNAME_MAX + 1];
	sqlite3_stmt *stmt;
	int rc;

	if (base_dname_normalize(domain, name, sizeof(name)) < 0)
		return BASE_EINVAL;
	rc = sqlite3_prepare_v2(c->db, forget_sql, -1, &stmt, NULL);
	if (rc != SQLITE_OK)
		return sqlite_err(rc);
	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE)
		return sqlite_err(rc);
	return sqlite3_changes(c->db) > 0 ? 0 : BASE_ENOTFOUND;
}
