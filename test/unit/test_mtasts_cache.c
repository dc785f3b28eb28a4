/*
 * Unit tests for the persistent MTA-STS policy cache. Each test works in a
 * fresh folder made by mkdtemp and removed afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/err.h"
#include "mtasts/cache.h"
#include "mtasts/http.h"

#define POLICY_A "version: STSv1\nmode: enforce\nmx: mx.a.example\n" \
	"max_age: 86400\n"
#define POLICY_B "version: STSv1\nmode: testing\nmx: *.b.example\n" \
	"mx: mx.b.example\nmax_age: 3600\n"

/* The test's folder and the state folder inside it. */
struct fixture {
	char base[64];
	char state_dir[96];
	char db_path[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->base, sizeof(f->base), "/tmp/mtasts-cache-XXXXXX");
	assert_non_null(mkdtemp(f->base));
	snprintf(f->state_dir, sizeof(f->state_dir), "%s/state", f->base);
	snprintf(f->db_path, sizeof(f->db_path), "%s/%s", f->state_dir,
		 MTASTS_CACHE_FILE);
	*state = f;
	return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag,
		      struct FTW *ftw)
{
	return remove(path);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	nftw(f->base, remove_one, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Fills an entry for domain from a policy file. */
static void make_entry(struct mtasts_entry *e, const char *domain,
		       const char *id, int64_t fetched_at, const char *body)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->domain, sizeof(e->domain), "%s", domain);
	snprintf(e->id, sizeof(e->id), "%s", id);
	assert_int_equal(mtasts_policy_parse(body, strlen(body), &e->policy),
			 0);
	e->fetched_at = fetched_at;
	e->expires_at = fetched_at + e->policy.max_age;
}

static void put_sync(struct mtasts_cache *c, const char *domain,
		     const char *id, int64_t fetched_at, const char *body)
{
	struct mtasts_entry e;

	make_entry(&e, domain, id, fetched_at, body);
	assert_int_equal(mtasts_cache_put_sync(c, &e, body, strlen(body)), 0);
}

static void test_open_creates_private_folder(void **state)
{
	struct fixture *f = *state;
	struct mtasts_cache *c;
	struct stat st;

	assert_int_equal(mtasts_cache_open(f->state_dir, &c), 0);
	assert_int_equal(stat(f->state_dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(stat(f->db_path, &st), 0);
	mtasts_cache_close(c);
	mtasts_cache_close(NULL);
}

static void test_open_uses_wal_mode(void **state)
{
	struct fixture *f = *state;
	struct mtasts_cache *c;
	sqlite3_stmt *stmt;
	sqlite3 *db;

	assert_int_equal(mtasts_cache_open(f->state_dir, &c), 0);
	assert_int_equal(sqlite3_open(f->db_path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode;", -1,
					    &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "wal");
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	mtasts_cache_close(c);
}

static void test_open_rejects_a_file(void **state)
{
	struct fixture *f = *state;
	struct mtasts_cache *c = (struct mtasts_cache *)1;
	FILE *file = fopen(f->state_dir, "w");

	assert_non_null(file);
	fclose(file);
	assert_int_equal(mtasts_cache_open(f->state_dir, &c), BASE_EINVAL);
	assert_null(c);
}

static void test_open_missing_parent_fails(void **state)
{
	struct fixture *f = *state;
	struct mtasts_cache *c;
	char path[160];

	snprintf(path, sizeof(path), "%s/missing/state", f->base);
	assert_true(mtasts_cache_open(path, &c) < 0);
	assert_null(c);
}

static void test_put_sync_then_get(void **state)
{
	struct fixture *f = *state;
	struct mtasts_cache *c;
	struct mtasts_entry e;

	assert_int_equal(mtasts_cache_open(f->state_dir, &c), 0);
	put_sync(c, "B.Example.", "id2", 1700000000, POLICY_B);

	assert_int_equal(mtasts_cache_get(c, "b.EXAMPLE", &e), 0);
	assert_string_equal(e.domain, "b.example");
	assert_string_equal(e.id, "id2");
	assert_int_equal(e.fetched_at, 1700000000);
	assert_int_equal(e.expires_at, 1700003600);
	assert_int_equal(e.policy.mode, MTASTS_MODE_TESTING);
	assert_int_equal(e.policy.max_age, 3600);
	assert_int_equal(e.policy.mx_count, 2);
	assert_string_equal(e.policy.mx[0], "*.b.example");
	assert_string_equal(e.policy.mx[1], "mx.b.example");
	mtasts_cache_close(c);
}

static void test_get_missing_and_invalid(void **state)
{
	struct fixture *f = *state;
	struct mtasts_cache *c;
	struct mtasts_entry e;

	assert_int_equal(mtasts_cache_open(f->state_dir, &c), 0);
	assert_int_equal(mtasts_cache_get(c, "a.example", &e), BASE_ENOTFOUND);
	assert_int_equal(mtasts_cache_get(c, "a..example", &e), BASE_EINVAL);
	mtasts_cache_close(c);
}

static void test_put_queued_then_flushed(void **state)
{
	struct fixture *f = *state;
	struct mtasts_cache_stats stats;
	struct mtasts_cache *c;
	struct mtasts_entry e;

	assert_int_equal(mtasts_cache_open(f->state_dir, &c), 0);
	make_entry(&e, "a.example", "id1", 1700000000, POLICY_A);
	assert_int_equal(mtasts_cache_put(c, &e, POLICY_A, strlen(POLICY_A)),
			 0);
	mtasts_cache_flush(c);

	assert_int_equal(mtasts_cache_get(c, "a.example", &e), 0);
	assert_string_equal(e.id, "id1");
	mtasts_cache_stats(c, &stats);
	assert_int_equal(stats.written, 1);
	assert_int_equal(stats.failed, 0);
	assert_int_equal(stats.dropped, 0);
	mtasts_cache_close(c);
}

/* Entries queued just before close are on disk after it. */
static void test_close_writes_queue(void **state)
{
	struct fixture *f = *state;
	struct mtasts_cache *c;
	struct mtasts_entry e;
	char domain[32];

	assert_int_equal(mtasts_cache_open(f->state_dir, &c), 0);
	for (int i = 0; i < 20; i++) {
		snprintf(domain, sizeof(domain), "d%d.example", i);
		make_entry(&e, domain, "id", 1700000000 + i, POLICY_A);
		assert_int_equal(mtasts_cache_put(c, &e, POLICY_A,
						  strlen(POLICY_A)), 0);
	}
	mtasts_cache_close(c);

	assert_int_equal(mtasts_cache_open(f->state_dir, &c), 0);
	for (int i = 0; i < 20; i++) {
		snprintf(domain, sizeof(domain), "d%d.example", i);
		assert_int_equal(mtasts_cache_get(c, domain, &e), 0);
		assert_int_equal(e.fetched_at, 1700000000 + i);
	}
	mtasts_cache_close(c);
}

static void test_newer_entry_replaces_older(void **state)
{
	struct fixture *f = *state;
	struct mtasts_cache *c;
	struct mtasts_entry e;

	assert_int_equal(mtasts_cache_open(f->state_dir, &c), 0);
	put_sync(c, "a.example", "old", 1700000000, POLICY_A);
	put_sync(c, "a.example", "new", 1700000100, POLICY_B);
	assert_int_equal(mtasts_cache_get(c, "a.example", &e), 0);
	assert_string_equal(e.id, "new");
	assert_int_equal(e.policy.mode, MTASTS_MODE_TESTING);

	/* A write that started earlier and arrives late loses. */
	put_sync(c, "a.example", "late", 1700000050, POLICY_A);
	assert_int_equal(mtasts_cache_get(c, "a.example", &e), 0);
	assert_string_equal(e.id, "new");
	mtasts_cache_close(c);
}

static void test_forget(void **state)
{
	struct fixture *f = *state;
	struct mtasts_cache *c;
	struct mtasts_entry e;

	assert_int_equal(mtasts_cache_open(f->state_dir, &c), 0);
	put_sync(c, "a.example", "id1", 1700000000, POLICY_A);
	assert_int_equal(mtasts_cache_forget(c, "A.EXAMPLE."), 0);
	assert_int_equal(mtasts_cache_get(c, "a.example", &e), BASE_ENOTFOUND);
	assert_int_equal(mtasts_cache_forget(c, "a.example"), BASE_ENOTFOUND);
	assert_int_equal(mtasts_cache_forget(c, "a..b"), BASE_EINVAL);
	mtasts_cache_close(c);
}

/*
 * Runs in a child process: waits for a byte on fd, then forgets a.example
 * and stores b.example through a cache of its own.
 */
static void child_changes_cache(const char *state_dir, int fd)
{
	struct mtasts_cache *other;
	struct mtasts_entry b;
	char go;
	int ok;

	ok = read(fd, &go, 1) == 1 &&
	     mtasts_cache_open(state_dir, &other) == 0;
	if (ok) {
		make_entry(&b, "b.example", "id9", 1700000000, POLICY_B);
		ok = mtasts_cache_forget(other, "a.example") == 0 &&
		     mtasts_cache_put_sync(other, &b, POLICY_B,
					   strlen(POLICY_B)) == 0;
		mtasts_cache_close(other);
	}
	_exit(ok ? 0 : 1);
}

/*
 * Another process forgets and stores entries; the open cache sees both
 * changes on its next read. The child is forked before this process
 * starts its writer thread, so that no thread is copied into it.
 */
static void test_other_process_changes_seen_at_once(void **state)
{
	struct fixture *f = *state;
	struct mtasts_cache *c;
	struct mtasts_entry e;
	int fds[2];
	int status;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child_changes_cache(f->state_dir, fds[0]);

	assert_int_equal(mtasts_cache_open(f->state_dir, &c), 0);
	put_sync(c, "a.example", "id1", 1700000000, POLICY_A);
	assert_int_equal(mtasts_cache_get(c, "a.example", &e), 0);
	assert_int_equal(write(fds[1], "x", 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(fds[0]);
	close(fds[1]);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	assert_int_equal(mtasts_cache_get(c, "a.example", &e), BASE_ENOTFOUND);
	assert_int_equal(mtasts_cache_get(c, "b.example", &e), 0);
	assert_string_equal(e.id, "id9");
	mtasts_cache_close(c);
}

/* A row whose policy file no longer parses is never returned. */
static void test_damaged_row_rejected(void **state)
{
	struct fixture *f = *state;
	struct mtasts_cache *c;
	struct mtasts_entry e;
	sqlite3 *db;

	assert_int_equal(mtasts_cache_open(f->state_dir, &c), 0);
	put_sync(c, "a.example", "id1", 1700000000, POLICY_A);
	assert_int_equal(sqlite3_open(f->db_path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE policies SET body = "
				      "'mode: enforce' WHERE domain = "
				      "'a.example';", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);

	assert_int_equal(mtasts_cache_get(c, "a.example", &e), BASE_EINVAL);
	mtasts_cache_close(c);
}

static void test_put_rejects_invalid_entries(void **state)
{
	struct fixture *f = *state;
	struct mtasts_cache *c;
	struct mtasts_entry e;
	char *big = calloc(1, MTASTS_HTTP_BODY_MAX + 1);

	assert_non_null(big);
	assert_int_equal(mtasts_cache_open(f->state_dir, &c), 0);
	make_entry(&e, "a.example", "id1", 1700000000, POLICY_A);
	assert_int_equal(mtasts_cache_put(c, &e, big, MTASTS_HTTP_BODY_MAX + 1),
			 BASE_EINVAL);

	make_entry(&e, "a.example", "", 1700000000, POLICY_A);
	assert_int_equal(mtasts_cache_put(c, &e, POLICY_A, strlen(POLICY_A)),
			 BASE_EINVAL);

	make_entry(&e, "a..example", "id1", 1700000000, POLICY_A);
	assert_int_equal(mtasts_cache_put_sync(c, &e, POLICY_A,
					       strlen(POLICY_A)), BASE_EINVAL);
	mtasts_cache_close(c);
	free(big);
}

/*
 * While another connection holds the write lock, the writer thread waits
 * on its first entry and the queue fills: further puts return at once
 * with BASE_ETOOLONG instead of blocking.
 */
static void test_full_queue_drops_without_blocking(void **state)
{
	struct fixture *f = *state;
	struct mtasts_cache_stats stats;
	struct mtasts_cache *c;
	struct mtasts_entry e;
	size_t dropped = 0;
	char domain[32];
	sqlite3 *db;
	int rc;

	assert_int_equal(mtasts_cache_open(f->state_dir, &c), 0);
	assert_int_equal(sqlite3_open(f->db_path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE;", NULL, NULL,
				      NULL), SQLITE_OK);

	for (int i = 0; i < MTASTS_CACHE_QUEUE_MAX + 8; i++) {
		snprintf(domain, sizeof(domain), "d%d.example", i);
		make_entry(&e, domain, "id", 1700000000, POLICY_A);
		rc = mtasts_cache_put(c, &e, POLICY_A, strlen(POLICY_A));
		assert_true(rc == 0 || rc == BASE_ETOOLONG);
		if (rc == BASE_ETOOLONG)
			dropped++;
	}
	assert_true(dropped >= 7);

	assert_int_equal(sqlite3_exec(db, "COMMIT;", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	mtasts_cache_flush(c);
	mtasts_cache_stats(c, &stats);
	assert_int_equal(stats.dropped, dropped);
	assert_int_equal(stats.failed, 0);
	assert_int_equal(stats.written, MTASTS_CACHE_QUEUE_MAX + 8 - dropped);
	mtasts_cache_close(c);
}

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	static const struct CMUnitTest tests[] = {
		TEST(test_open_creates_private_folder),
		TEST(test_open_uses_wal_mode),
		TEST(test_open_rejects_a_file),
		TEST(test_open_missing_parent_fails),
		TEST(test_put_sync_then_get),
		TEST(test_get_missing_and_invalid),
		TEST(test_put_queued_then_flushed),
		TEST(test_close_writes_queue),
		TEST(test_newer_entry_replaces_older),
		TEST(test_forget),
		TEST(test_other_process_changes_seen_at_once),
		TEST(test_damaged_row_rejected),
		TEST(test_put_rejects_invalid_entries),
		TEST(test_full_queue_drops_without_blocking),
	};

	return cmocka_run_group_tests_name("mtasts_cache", tests, NULL, NULL);
}
