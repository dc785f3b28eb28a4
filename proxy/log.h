/*
 * Logging: one key=value line per event on standard error, connection id
 * first after the time and level. Peer text goes through log_escape before
 * it reaches a line. The keys are listed in docs/LOGGING.md.
 */
#ifndef LOG_H
#define LOG_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

#define LOG_PEER_TEXT_MAX 200	/* bytes of peer text kept in one value */

struct log {
	enum conf_log_level level;
};

/* Writes one line if level is enabled: "TIME LEVEL conn=ID " then fmt. */
void log_conn(const struct log *log, enum conf_log_level level, uint64_t conn,
	      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Writes one line without a connection id. */
void log_msg(const struct log *log, enum conf_log_level level,
	     const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Writes text (length len) into out (size outlen) as a double-quoted value:
 * quotes and backslashes escaped, control and non-ASCII bytes as \xHH, cut
 * at LOG_PEER_TEXT_MAX input bytes with "..." appended. Returns out.
 */
char *log_escape(const char *text, size_t len, char *out, size_t outlen);

#endif
