/*
 * Message data framing: where the message ends and what the MX receives,
 * fed whole and one byte at a time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "relay.h"

struct relay_case {
	const char *name;
	const char *input;
	const char *output;	/* bytes for the MX, up to the end */
	long used;		/* input bytes up to the end; -1: no end */
};

static const struct relay_case cases[] = {
	{ "crlf lines end at the dot line", "a\r\nb\r\n.\r\nQUIT\r\n",
	  "a\r\nb\r\n.\r\n", 9 },
	{ "empty message", ".\r\n", ".\r\n", 3 },
	{ "stuffed dot line is forwarded as sent", "..\r\n.\r\n",
	  "..\r\n.\r\n", 7 },
	{ "stuffed text line is forwarded as sent", "..x\r\n.\r\n",
	  "..x\r\n.\r\n", 8 },
	{ "bare lf becomes crlf", "a\nb\r\n.\r\n", "a\r\nb\r\n.\r\n", 8 },
	{ "lf dot lf does not end the message", "a\n.\nMAIL FROM:<e@x>\r\n",
	  "a\r\n..\r\nMAIL FROM:<e@x>\r\n", -1 },
	{ "cr dot cr does not end the message", "a\r.\rMAIL\r\n",
	  "a\r\n..\r\nMAIL\r\n", -1 },
	{ "crlf dot lf does not end the message", "a\r\n.\nMAIL\r\n",
	  "a\r\n..\r\nMAIL\r\n", -1 },
	{ "lf dot crlf does not end the message", "a\n.\r\nMAIL\r\n",
	  "a\r\n..\r\nMAIL\r\n", -1 },
	{ "unstuffed dot after bare lf gets stuffed", "a\n.x\r\n.\r\n",
	  "a\r\n..x\r\n.\r\n", 9 },
	{ "bare cr inside a line becomes crlf", "a\rb\r\n.\r\n",
	  "a\r\nb\r\n.\r\n", 8 },
	{ "end after a bare lf line needs a crlf line", "a\n\r\n.\r\n",
	  "a\r\n\r\n.\r\n", 7 },
	{ "no end without the final crlf", "a\r\n.", "a\r\n", -1 },
	{ "dot line at the very start after data", ".\r\nx", ".\r\n", 3 },
	{ "dots inside long lines pass", "abc.def..\r\nx.y\r\n.\r\n",
	  "abc.def..\r\nx.y\r\n.\r\n", 19 },
};

static void feed_all(const struct relay_case *tc, size_t step, char *out,
		     size_t *outlen, long *used)
{
	struct relay_data r;
	size_t len = strlen(tc->input);
	size_t pos = 0;
	char buf[RELAY_OUT_MAX(64)];

	relay_data_init(&r);
	*outlen = 0;
	*used = -1;
	while (pos < len && !r.done) {
		size_t n = len - pos < step ? len - pos : step;
		size_t produced;
		size_t took = relay_data_feed(&r, tc->input + pos, n, buf, &produced);

		memcpy(out + *outlen, buf, produced);
		*outlen += produced;
		pos += took;
	}
	if (r.done)
		*used = (long)pos;
	assert_int_equal(r.bytes, *outlen);
}

static void check_case(const struct relay_case *tc, size_t step)
{
	char out[256];
	size_t outlen;
	long used;

	feed_all(tc, step, out, &outlen, &used);
	if (outlen != strlen(tc->output) || memcmp(out, tc->output, outlen) != 0)
		fail_msg("%s (step %zu): output \"%.*s\"", tc->name, step,
			 (int)outlen, out);
	if (used != tc->used)
		fail_msg("%s (step %zu): used %ld, expected %ld", tc->name, step,
			 used, tc->used);
}

static void test_relay_table_whole(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i], 64);
}

static void test_relay_table_byte_by_byte(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i], 1);
}

/* Feeds input in pieces of step bytes; returns the bytes used. */
static long feed_steps(const char *input, size_t len, size_t step,
		       char *out, size_t *outlen)
{
	struct relay_data r;
	char buf[RELAY_OUT_MAX(16)];
	size_t pos = 0;

	relay_data_init(&r);
	*outlen = 0;
	while (pos < len && !r.done) {
		size_t n = len - pos < step ? len - pos : step;
		size_t produced;

		pos += relay_data_feed(&r, input + pos, n, buf, &produced);
		memcpy(out + *outlen, buf, produced);
		*outlen += produced;
	}
	return r.done ? (long)pos : -1;
}

static void test_relay_pieces_agree(void **state)
{
	static const char alphabet[] = "a.\r\n";
	char input[200], whole[RELAY_OUT_MAX(200)], split[RELAY_OUT_MAX(200)];
	unsigned seed = 12345;

	(void)state;
	for (int round = 0; round < 2000; round++) {
		size_t whole_len, split_len;
		long whole_used, split_used;

		for (size_t i = 0; i < sizeof(input); i++) {
			seed = seed * 1103515245u + 12345u;
			input[i] = alphabet[(seed >> 16) % 4];
		}
		whole_used = feed_steps(input, sizeof(input), 16, whole, &whole_len);
		split_used = feed_steps(input, sizeof(input), 1 + round % 7, split,
					&split_len);
		assert_int_equal(whole_used, split_used);
		assert_int_equal(whole_len, split_len);
		assert_memory_equal(whole, split, whole_len);
	}
}

/*
 * Feeds input as the client session does: relay_data_pass first, then
 * relay_data_feed up to the next LF, in pieces of step bytes. Returns the
 * bytes used, or -1 when the message did not end.
 */
static long feed_with_pass(const char *input, size_t len, size_t step,
			   char *out, size_t *outlen)
{
	struct relay_data r;
	char buf[RELAY_OUT_MAX(512)];
	size_t pos = 0;

	relay_data_init(&r);
	*outlen = 0;
	while (pos < len && !r.done) {
		size_t end = len - pos < step ? len : pos + step;

		while (pos < end && !r.done) {
			size_t n = relay_data_pass(&r, input + pos, end - pos);
			const char *lf;
			size_t produced;

			if (n > 0) {
				memcpy(out + *outlen, input + pos, n);
				*outlen += n;
				pos += n;
				continue;
			}
			n = end - pos;
			lf = memchr(input + pos, '\n', n);
			if (lf != NULL)
				n = (size_t)(lf - (input + pos)) + 1;
			pos += relay_data_feed(&r, input + pos, n, buf, &produced);
			memcpy(out + *outlen, buf, produced);
			*outlen += produced;
		}
	}
	assert_int_equal(r.bytes, *outlen);
	return r.done ? (long)pos : -1;
}

/*
 * Mostly text and CRLF, sometimes a dot, a bare CR or a bare LF, so that
 * both the block scan and the byte-wise framing run. Of every 1000 bytes
 * about text_share are text; the rest are mostly CRLF.
 */
static size_t random_message(char *input, size_t max, unsigned text_share,
			     unsigned *seed)
{
	size_t len = 0;

	while (len + 2 <= max) {
		unsigned pick;

		*seed = *seed * 1103515245u + 12345u;
		pick = (*seed >> 8) % 1000;
		if (pick < text_share) {
			input[len++] = 'a';
			continue;
		}
		pick = (*seed >> 20) % 100;
		if (pick < 63) {
			input[len++] = '\r';
			input[len++] = '\n';
		} else if (pick < 88) {
			input[len++] = '.';
		} else if (pick < 94) {
			input[len++] = '\r';
		} else {
			input[len++] = '\n';
		}
	}
	return len;
}

/* The pass-through path must give the MX exactly what framing alone does. */
static void test_relay_pass_agrees(void **state)
{
	char input[512], framed[RELAY_OUT_MAX(512)], passed[RELAY_OUT_MAX(512)];
	unsigned seed = 424242;

	(void)state;
	for (int round = 0; round < 20000; round++) {
		/* Short lines, then long lines that fill whole blocks. */
		size_t len = random_message(input, 64 + (size_t)round % 448,
					    round % 2 ? 990 : 840, &seed);
		size_t framed_len, passed_len;
		long framed_used, passed_used;

		/* Often end with the final dot line, so that the end is found. */
		if (round % 3 == 0 && len + 5 <= sizeof(input)) {
			memcpy(input + len, "\r\n.\r\n", 5);
			len += 5;
		}
		framed_used = feed_steps(input, len, 16, framed, &framed_len);
		passed_used = feed_with_pass(input, len, 1 + (size_t)round % 97,
					     passed, &passed_len);
		if (framed_used != passed_used || framed_len != passed_len ||
		    memcmp(framed, passed, framed_len) != 0)
			fail_msg("round %d: input \"%.*s\"", round, (int)len, input);
	}
}

/* The table cases through the pass-through path. */
static void test_relay_pass_table(void **state)
{
	char out[256];
	size_t outlen;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct relay_case *tc = &cases[i];
		long used = feed_with_pass(tc->input, strlen(tc->input), 64, out,
					   &outlen);

		if (outlen != strlen(tc->output) ||
		    memcmp(out, tc->output, outlen) != 0 || used != tc->used)
			fail_msg("%s: output \"%.*s\", used %ld", tc->name,
				 (int)outlen, out, used);
	}
}

/* A line that starts with a dot right at a 64-byte boundary and ends in a
   bare LF comes out as framing alone makes it. */
static void test_relay_pass_dot_at_boundary(void **state)
{
	char input[256], framed[RELAY_OUT_MAX(256)], passed[RELAY_OUT_MAX(256)];
	size_t len = 0, framed_len, passed_len;
	long framed_used, passed_used;

	(void)state;
	memset(input, 'a', 62);
	len = 62;
	memcpy(input + len, "\r\n.", 3);
	len += 3;
	memset(input + len, 'b', 100);
	len += 100;
	memcpy(input + len, "\n\r\n.\r\n", 6);
	len += 6;

	framed_used = feed_steps(input, len, 16, framed, &framed_len);
	passed_used = feed_with_pass(input, len, len, passed, &passed_len);
	assert_int_equal(passed_used, framed_used);
	assert_int_equal(passed_len, framed_len);
	assert_memory_equal(passed, framed, framed_len);
	assert_memory_equal(passed + 62, "\r\n.bb", 5);
}

/* A long clean message passes whole, and the final dot line does not. */
static void test_relay_pass_stops_at_end(void **state)
{
	char input[300];
	struct relay_data r;
	size_t n;

	(void)state;
	memset(input, 'x', sizeof(input));
	for (size_t i = 78; i + 1 < 280; i += 80) {
		input[i] = '\r';
		input[i + 1] = '\n';
	}
	memcpy(input + 280, "\r\n.\r\n", 5);
	relay_data_init(&r);
	n = relay_data_pass(&r, input, 285);
	assert_int_equal(n, 282);
	assert_true(r.line_start);
	assert_false(r.done);
	assert_int_equal(r.bytes, 282);
}

static void test_relay_output_bound(void **state)
{
	static const char worst[] = ".\n.\n.\r.\r";
	struct relay_data r;
	char out[RELAY_OUT_MAX(sizeof(worst))];
	size_t outlen;

	(void)state;
	relay_data_init(&r);
	relay_data_feed(&r, worst, sizeof(worst) - 1, out, &outlen);
	assert_true(outlen <= RELAY_OUT_MAX(sizeof(worst) - 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_relay_table_whole),
		cmocka_unit_test(test_relay_table_byte_by_byte),
		cmocka_unit_test(test_relay_output_bound),
		cmocka_unit_test(test_relay_pieces_agree),
		cmocka_unit_test(test_relay_pass_agrees),
		cmocka_unit_test(test_relay_pass_table),
		cmocka_unit_test(test_relay_pass_stops_at_end),
		cmocka_unit_test(test_relay_pass_dot_at_boundary),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
