/* key=value log lines on standard error: see log.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"

static const char *level_name(enum conf_log_level level)
{
	switch (level) {
	case CONF_LOG_ERROR: return "error";
	case CONF_LOG_WARN: return "warn";
	case CONF_LOG_INFO: return "info";
	case CONF_LOG_DEBUG: return "debug";
	}
	return "info";
}

static void write_line(enum conf_log_level level, const char *prefix,
		       const char *fmt, va_list ap)
{
	char line[4096];
	char stamp[32];
	struct timespec now;
	struct tm tm;
	int n;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

	n = snprintf(line, sizeof(line), "%s.%03ldZ %s %s", stamp,
		     now.tv_nsec / 1000000, level_name(level), prefix);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);

	/* One fputs per line keeps lines whole when several processes share
	   the stream. */
	strcat(line + strnlen(line, sizeof(line) - 2), "\n");
	fputs(line, stderr);
}

void log_conn(const struct log *log, enum conf_log_level level, uint64_t conn,
	      const char *fmt, ...)
{
	char prefix[32];
	va_list ap;

	if (level > log->level)
		return;
	snprintf(prefix, sizeof(prefix), "conn=%llu ", (unsigned long long)conn);
	va_start(ap, fmt);
	write_line(level, prefix, fmt, ap);
	va_end(ap);
}

void log_msg(const struct log *log, enum conf_log_level level,
	     const char *fmt, ...)
{
	va_list ap;

	if (level > log->level)
		return;
	va_start(ap, fmt);
	write_line(level, "", fmt, ap);
	va_end(ap);
}

char *log_escape(const char *text, size_t len, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	size_t limit = len > LOG_PEER_TEXT_MAX ? LOG_PEER_TEXT_MAX : len;

	/* Room for the worst case of one byte (4), "...", quotes and NUL. */
	if (outlen < 12) {
		if (outlen > 0)
			out[0] = '\0';
		return out;
	}
	out[o++] = '"';
	for (size_t i = 0; i < limit && o + 9 < outlen; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else {
			out[o++] = (char)c;
		}
		if (i + 1 == limit && limit < len) {
			memcpy(out + o, "...", 3);
			o += 3;
		}
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}
