/*
 * libFuzzer target for the parsers of SMTP peer data: replies from an MX
 * (fed in pieces the input itself chooses), EHLO capabilities of each
 * complete reply, and client command lines. Built by `make fuzz`; run with
 * build/fuzz/fuzz_smtp [corpus folder] [-runs=N].
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ehlo.h"
#include "smtp_cmd.h"
#include "smtp_reply.h"

/* Feeds data to a reply parser in pieces whose sizes come from the input. */
static void fuzz_replies(const uint8_t *data, size_t size)
{
	struct smtp_reply_parser parser;
	const struct smtp_reply *reply;
	size_t step = size > 0 ? (size_t)data[0] % 17 + 1 : 1;
	size_t used;

	smtp_reply_parser_init(&parser);
	while (size > 0) {
		size_t n = size < step ? size : step;
		int rc = smtp_reply_parse(&parser, (const char *)data, n, &used, &reply);

		if (rc < 0)
			break;
		if (rc == 1) {
			struct ehlo_caps caps;
			char enhanced[16];

			ehlo_parse(reply, &caps);
			smtp_reply_enhanced(reply, enhanced, sizeof(enhanced));
		}
		data += used;
		size -= used;
		if (rc == 0 && used < n)
			break;
	}
	smtp_reply_parser_free(&parser);
}

static void fuzz_command(const uint8_t *data, size_t size)
{
	static struct smtp_cmd cmd;

	smtp_cmd_parse((const char *)data, size, &cmd);
	smtp_cmd_param(&cmd, "SIZE");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_replies(data, size);
	fuzz_command(data, size);
	return 0;
}
