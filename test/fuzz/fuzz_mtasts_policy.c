/*
 * libFuzzer target for the MTA-STS parsers of peer and DNS data: the
 * policy file, the _mta-sts TXT records (the input split at newlines) and
 * the HTTP response around a policy (fed in pieces the input chooses).
 * Each parser's output is checked against its documented limits.
 * Built by `make fuzz`, or by hand from the top of the tree:
 *   clang -std=c11 -D_GNU_SOURCE -Iproxy -I. -g -O1 \
 *     -fsanitize=fuzzer,address,undefined test/fuzz/fuzz_mtasts_policy.c \
 *     mtasts/http.c mtasts/policy.c mtasts/txt.c proxy/base/buf.c \
 *     proxy/base/dname.c proxy/base/err.c -lhttp_parser \
 *     -o build/fuzz/fuzz_mtasts_policy
 * Run: build/fuzz/fuzz_mtasts_policy [corpus folder] [-runs=N].
 */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/err.h"
#include "mtasts/http.h"
#include "mtasts/policy.h"
#include "mtasts/txt.h"

#define RECORDS_MAX 8
#define RECORD_LEN 512

/* A broken invariant stops the fuzzer with a crash it reports. */
static void check(int ok)
{
	if (!ok)
		__builtin_trap();
}

static void check_policy(const struct mtasts_policy *p)
{
	check(p->mx_count <= MTASTS_MX_MAX);
	check(p->max_age >= 0 && p->max_age <= MTASTS_MAX_AGE_MAX);
	check(p->mode != MTASTS_MODE_ENFORCE || p->mx_count > 0);
	for (size_t i = 0; i < p->mx_count; i++) {
		size_t len = strnlen(p->mx[i], MTASTS_PATTERN_MAX);

		check(len > 0 && len < MTASTS_PATTERN_MAX);
		if (p->mx[i][0] != '*')
			check(mtasts_mx_match(p, p->mx[i]));
	}
}

static void fuzz_policy(const char *data, size_t size)
{
	struct mtasts_policy p;

	if (mtasts_policy_parse(data, size, &p) == 0)
		check_policy(&p);
}

/* Splits the input at newlines into at most RECORDS_MAX TXT records. */
static void fuzz_txt(const char *data, size_t size)
{
	char records[RECORDS_MAX][RECORD_LEN];
	const char *ptrs[RECORDS_MAX];
	char id[MTASTS_ID_MAX + 1];
	size_t count = 0;
	size_t pos = 0;

	while (pos < size && count < RECORDS_MAX) {
		const char *nl = memchr(data + pos, '\n', size - pos);
		size_t len = nl != NULL ? (size_t)(nl - (data + pos)) :
					  size - pos;
		size_t keep = len < RECORD_LEN - 1 ? len : RECORD_LEN - 1;

		memcpy(records[count], data + pos, keep);
		records[count][keep] = '\0';
		ptrs[count] = records[count];
		count++;
		pos += len + 1;
	}

	if (mtasts_txt_parse(ptrs, count, id) != 0)
		return;
	check(id[0] != '\0' && strlen(id) <= MTASTS_ID_MAX);
	for (size_t i = 0; id[i] != '\0'; i++)
		check(isalnum((unsigned char)id[i]));
}

static void fuzz_http(const char *data, size_t size)
{
	struct mtasts_http *h;
	size_t step = size > 0 ? (size_t)(unsigned char)data[0] % 31 + 1 : 1;
	const char *body;
	size_t len;
	int rc = 0;

	if (mtasts_http_new(&h) < 0)
		return;
	for (size_t pos = 0; pos < size && rc == 0; pos += step) {
		size_t n = size - pos < step ? size - pos : step;

		rc = mtasts_http_feed(h, data + pos, n);
	}
	if (rc == 0)
		rc = mtasts_http_feed(h, NULL, 0);

	check((rc == 0) == mtasts_http_done(h));
	check(rc == 0 || mtasts_http_reason(h) != NULL);
	if (rc == 0) {
		check(mtasts_http_status(h) == 200);
		body = mtasts_http_body(h, &len);
		check(len <= MTASTS_HTTP_BODY_MAX);
		fuzz_policy(body, len);
	}
	mtasts_http_free(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;

	fuzz_policy(text, size);
	fuzz_txt(text, size);
	fuzz_http(text, size);
	return 0;
}
