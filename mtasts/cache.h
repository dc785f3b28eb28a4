/*
 * Persistent MTA-STS policy cache (RFC 8461 sections 3.3 and 5): one
 * SQLite database, <state_dir>/mta-sts.db, in WAL mode, with one row per
 * policy domain. Reads go to the database every time, so a change made by
 * another process (`mxlock sts forget`, a second instance) counts at once.
 * Writes from the event loop go through a bounded queue to a writer thread
 * with its own connection, so mtasts_cache_put never waits for the disk.
 */
#ifndef MTASTS_CACHE_H
#define MTASTS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "base/dname.h"
#include "policy.h"
#include "txt.h"

#define MTASTS_CACHE_FILE "mta-sts.db"
#define MTASTS_CACHE_QUEUE_MAX 64	/* writes waiting for the thread */

/* One cached policy. Times are Unix seconds. */
struct mtasts_entry {
	char domain[BASE_DNAME_MAX + 1];	/* lower case, no final dot */
	char id[MTASTS_ID_MAX + 1];		/* from the TXT record */
	int64_t fetched_at;
	int64_t expires_at;			/* fetched_at + max_age */
	struct mtasts_policy policy;
};

/* Counters of the writer thread, for logs and tests. */
struct mtasts_cache_stats {
	uint64_t written;	/* queued writes stored */
	uint64_t failed;	/* queued writes that SQLite rejected */
	uint64_t dropped;	/* writes not queued: the queue was full */
};

struct mtasts_cache;

/*
 * Opens (and creates, with mode 0700 for a missing folder) the cache in
 * state_dir and starts the writer thread. Only the last component of
 * state_dir is created. Returns 0 and stores the cache in *out, or
 * BASE_EINVAL (state_dir is not a folder or the path is too long),
 * BASE_EIO or BASE_ESYS (SQLite or the file system failed), BASE_ENOMEM.
 */
int mtasts_cache_open(const char *state_dir, struct mtasts_cache **out);

/*
 * Writes every queued entry, stops the writer thread and closes the
 * database. mtasts_cache_close(NULL) does nothing.
 */
void mtasts_cache_close(struct mtasts_cache *c);

/*
 * Reads the entry of domain (any case, trailing dot allowed) into *out,
 * expired or not: the caller compares expires_at with the time. The read
 * waits at most 250 ms for a lock held by a writer. Returns 0,
 * BASE_ENOTFOUND (no entry), BASE_EINVAL (invalid domain, or a stored
 * policy that no longer parses) or an SQLite failure (BASE_ETIMEDOUT when
 * the database stayed locked, BASE_EIO, BASE_ESYS).
 */
int mtasts_cache_get(struct mtasts_cache *c, const char *domain,
		     struct mtasts_entry *out);

/*
 * Queues a write of e with the policy file it was parsed from (body, len
 * bytes, at most MTASTS_HTTP_BODY_MAX) and returns without waiting. An
 * older fetched_at never replaces a newer one. Returns 0, BASE_EINVAL,
 * BASE_ENOMEM, or BASE_ETOOLONG when the queue is full (the write is
 * dropped and counted).
 */
int mtasts_cache_put(struct mtasts_cache *c, const struct mtasts_entry *e,
		     const char *body, size_t len);

/* Same as mtasts_cache_put, but writes at once on the caller's thread. */
int mtasts_cache_put_sync(struct mtasts_cache *c,
			  const struct mtasts_entry *e, const char *body,
			  size_t len);

/*
 * Deletes the entry of domain at once. Returns 0, BASE_ENOTFOUND when
 * there was none, BASE_EINVAL, or an SQLite failure.
 */
int mtasts_cache_forget(struct mtasts_cache *c, const char *domain);

/* Waits until the writer thread has stored every queued entry. */
void mtasts_cache_flush(struct mtasts_cache *c);

/* Copies the writer thread's counters into *out. */
void mtasts_cache_stats(struct mtasts_cache *c, struct mtasts_cache_stats *out);

#endif
