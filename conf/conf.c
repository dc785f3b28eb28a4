/*
 * Configuration loader. Reads one YAML file with libyaml's event API into a
 * small tree of scalars, lists and mappings, then checks the tree against the
 * tables of known keys below and fills a struct conf. Anchors, aliases and
 * tags are rejected, so every value sits where the file shows it. The file
 * may be at most CONF_FILE_MAX bytes and nest at most CONF_DEPTH_MAX levels.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "base/dname.h"
#include "base/err.h"
#include "conf.h"

#define CONF_FILE_MAX (1024 * 1024)
#define CONF_DEPTH_MAX 32
#define CONF_KEYS_MAX 16
#define CONF_KEY_PATH_MAX 64
#define CONF_QUOTE_MAX 48
#define CONF_TIMEOUT_MAX 86400		/* seconds: one day */
#define CONF_DNS_PORT 53
#define CONF_LISTEN_PORT 10025
#define CONF_STATE_DIR "/var/lib/mxlock"
/* Event loops at most: far above the cores a mail relay host has. */
#define CONF_WORKERS_MAX 64
#define CONF_YEAR_MIN 2000		/* first year of a rule's until date */
#define CONF_SECONDS_PER_DAY 86400

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

enum node_kind {
	NODE_SCALAR,
	NODE_LIST,
	NODE_MAP,
};

/* One YAML node with its position. A mapping's items alternate key, value. */
struct node {
	enum node_kind kind;
	unsigned line;			/* from 1 */
	unsigned column;		/* from 1 */
	char *value;			/* scalar text, NUL-terminated */
	size_t length;			/* bytes, NULs included */
	bool plain;			/* scalar written without quotes */
	struct node *items;
	size_t count;
	size_t capacity;
};

struct loader {
	const char *path;
	char *err;
	size_t errlen;
	char *text;			/* file contents */
	size_t text_len;
	char quote[CONF_QUOTE_MAX + 8];	/* scratch for one quoted value */
};

typedef int (*key_parse_fn)(struct loader *ld, const struct node *value,
			    const char *key, void *field);

/* A known key: its name, its parser, and where its field sits in the target. */
struct key_rule {
	const char *name;
	key_parse_fn parse;
	size_t offset;
};

/* A mapping's known keys. */
struct section {
	const char *where;		/* for messages: "the top level" */
	const char *prefix;		/* for key paths: "limits." */
	const struct key_rule *rules;
	size_t count;
};

typedef int (*item_parse_fn)(struct loader *ld, const struct node *item,
			     const char *key, void *array, size_t index);

/* ---- messages ---- */

static int vfail_at(struct loader *ld, unsigned line, unsigned column,
		    const char *fmt, va_list ap)
{
	int n;

	if (ld->err == NULL || ld->errlen == 0)
		return BASE_EINVAL;

	n = snprintf(ld->err, ld->errlen, "%s:%u:%u: ", ld->path, line, column);
	if (n >= 0 && (size_t)n < ld->errlen)
		vsnprintf(ld->err + n, ld->errlen - n, fmt, ap);
	return BASE_EINVAL;
}

__attribute__((format(printf, 4, 5)))
static int fail_at(struct loader *ld, unsigned line, unsigned column,
		   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail_at(ld, line, column, fmt, ap);
	va_end(ap);
	return BASE_EINVAL;
}

/* Writes "FILE:LINE:COLUMN: message" for node n and returns BASE_EINVAL. */
__attribute__((format(printf, 3, 4)))
static int fail(struct loader *ld, const struct node *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail_at(ld, n->line, n->column, fmt, ap);
	va_end(ap);
	return BASE_EINVAL;
}

/* Writes a message without a position, for errors about the whole file. */
__attribute__((format(printf, 3, 4)))
static int fail_file(struct loader *ld, int code, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ld->err == NULL || ld->errlen == 0)
		return code;

	n = snprintf(ld->err, ld->errlen, "%s: ", ld->path);
	if (n >= 0 && (size_t)n < ld->errlen) {
		va_start(ap, fmt);
		vsnprintf(ld->err + n, ld->errlen - n, fmt, ap);
		va_end(ap);
	}
	return code;
}

static int fail_nomem(struct loader *ld)
{
	return fail_file(ld, BASE_ENOMEM, "out of memory");
}

/*
 * Quotes s for a message: at most CONF_QUOTE_MAX bytes, control characters
 * shown as '?'. The result lives in ld->quote until the next call.
 */
static const char *quote(struct loader *ld, const char *s)
{
	size_t len = strlen(s);
	size_t n = len > CONF_QUOTE_MAX ? CONF_QUOTE_MAX : len;
	char *out = ld->quote;

	*out++ = '\'';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		*out++ = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (n < len)
		out = stpcpy(out, "...");
	*out++ = '\'';
	*out = '\0';
	return ld->quote;
}

/* Describes what a node is, for "found ..." in messages. */
static const char *describe(struct loader *ld, const struct node *n)
{
	if (n->kind == NODE_LIST)
		return "a list";
	if (n->kind == NODE_MAP)
		return "a mapping";
	if (n->plain && n->length == 0)
		return "an empty value";
	return quote(ld, n->value);
}

/* ---- file and YAML tree ---- */

/* Reads the whole file behind fd into ld->text, NUL-terminated. */
static int read_fd(struct loader *ld, int fd)
{
	struct stat st;
	size_t done = 0;

	if (fstat(fd, &st) < 0)
		return fail_file(ld, BASE_EIO, "cannot read the file: %s",
				 strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fail_file(ld, BASE_EINVAL, "not a regular file");
	if (st.st_size > CONF_FILE_MAX)
		return fail_file(ld, BASE_ETOOLONG,
				 "the file is larger than %d bytes",
				 CONF_FILE_MAX);

	ld->text = malloc((size_t)st.st_size + 1);
	if (ld->text == NULL)
		return fail_nomem(ld);
	while (done < (size_t)st.st_size) {
		size_t want = (size_t)st.st_size - done;
		ssize_t n = read(fd, ld->text + done, want);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail_file(ld, BASE_EIO,
					 "cannot read the file: %s",
					 strerror(errno));
		if (n == 0)
			break;
		done += (size_t)n;
	}
	ld->text[done] = '\0';
	ld->text_len = done;
	return 0;
}

static int read_file(struct loader *ld)
{
	int fd;
	int rc;

	fd = open(ld->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int code = errno == ENOENT ? BASE_ENOTFOUND : BASE_EIO;

		return fail_file(ld, code, "cannot open the file: %s",
				 strerror(errno));
	}
	rc = read_fd(ld, fd);
	close(fd);
	return rc;
}

static void node_clear(struct node *n)
{
	for (size_t i = 0; i < n->count; i++)
		node_clear(&n->items[i]);
	free(n->items);
	free(n->value);
	memset(n, 0, sizeof(*n));
}

/* Moves child into parent's items. On failure the caller still owns child. */
static int node_push(struct loader *ld, struct node *parent, struct node *child)
{
	if (parent->count == parent->capacity) {
		size_t cap = parent->capacity ? parent->capacity * 2 : 4;
		struct node *items;

		items = realloc(parent->items, cap * sizeof(*items));

		if (items == NULL)
			return fail_nomem(ld);
		parent->items = items;
		parent->capacity = cap;
	}
	parent->items[parent->count++] = *child;
	memset(child, 0, sizeof(*child));
	return 0;
}

/* Converts libyaml's byte offset of a reader error into a line and column. */
static void offset_position(struct loader *ld, size_t offset, unsigned *line,
			    unsigned *column)
{
	*line = 1;
	*column = 1;
	for (size_t i = 0; i < offset && i < ld->text_len; i++) {
		if (ld->text[i] == '\n') {
			++*line;
			*column = 1;
		} else {
			++*column;
		}
	}
}

/* Returns true when the leading white space of line (from 1) has a tab. */
static bool line_indent_has_tab(struct loader *ld, unsigned line)
{
	const char *p = ld->text;

	while (--line > 0) {
		p = strchr(p, '\n');
		if (p == NULL)
			return false;
		p++;
	}
	for (; *p == ' ' || *p == '\t'; p++)
		if (*p == '\t')
			return true;
	return false;
}

static int syntax_error(struct loader *ld, const yaml_parser_t *parser)
{
	unsigned line = parser->problem_mark.line + 1;
	unsigned column = parser->problem_mark.column + 1;
	const char *problem = parser->problem;

	if (parser->error == YAML_MEMORY_ERROR)
		return fail_nomem(ld);
	if (problem == NULL)
		problem = "unknown error";
	if (parser->error == YAML_READER_ERROR) {
		offset_position(ld, parser->problem_offset, &line, &column);
		return fail_at(ld, line, column, "invalid YAML: %s", problem);
	}

	/* libyaml does not say that YAML forbids tabs in indentation. */
	if (line_indent_has_tab(ld, line))
		return fail_at(ld, line, column,
			       "invalid YAML: %s (indent with spaces, not tabs)",
			       problem);
	/* A plain '*' starts an alias, which catches unquoted wildcards. */
	if (parser->context &&
	    strcmp(parser->context, "while scanning an alias") == 0)
		return fail_at(ld, line, column,
			       "invalid YAML: %s %s (quote a value that starts with '*', such as '*.example.org')",
			       problem, parser->context);
	if (parser->context)
		return fail_at(ld, line, column, "invalid YAML: %s %s", problem,
			       parser->context);
	return fail_at(ld, line, column, "invalid YAML: %s", problem);
}

static int next_event(struct loader *ld, yaml_parser_t *parser,
		      yaml_event_t *ev)
{
	if (!yaml_parser_parse(parser, ev))
		return syntax_error(ld, parser);
	return 0;
}

/* Rejects anchors and tags, because they make a value depend on another. */
static int check_properties(struct loader *ld, const yaml_event_t *ev,
			    const struct node *n)
{
	const yaml_char_t *anchor = NULL;
	const yaml_char_t *tag = NULL;

	if (ev->type == YAML_SCALAR_EVENT) {
		anchor = ev->data.scalar.anchor;
		tag = ev->data.scalar.tag;
	} else if (ev->type == YAML_SEQUENCE_START_EVENT) {
		anchor = ev->data.sequence_start.anchor;
		tag = ev->data.sequence_start.tag;
	} else if (ev->type == YAML_MAPPING_START_EVENT) {
		anchor = ev->data.mapping_start.anchor;
		tag = ev->data.mapping_start.tag;
	}

	if (anchor)
		return fail(ld, n,
			    "YAML anchors such as '&%s' are not supported; write each value out",
			    (const char *)anchor);
	if (tag)
		return fail(ld, n,
			    "YAML tags such as '%s' are not supported; remove the tag",
			    (const char *)tag);
	return 0;
}

static int node_build(struct loader *ld, yaml_parser_t *parser,
		      yaml_event_t *ev, struct node *out, int depth);

/*
 * Rejects a list or mapping where out, a mapping, expects its next key.
 * Deletes ev on error.
 */
static int key_check(struct loader *ld, const struct node *out,
		     yaml_event_t *ev)
{
	yaml_mark_t mark = ev->start_mark;

	if (out->kind != NODE_MAP || out->count % 2 != 0)
		return 0;
	if (ev->type == YAML_SCALAR_EVENT || ev->type == YAML_ALIAS_EVENT)
		return 0;

	yaml_event_delete(ev);
	return fail_at(ld, mark.line + 1, mark.column + 1,
		       "a mapping key must be a name, not a list or mapping");
}

/* Reads children until end_type. */
static int children_build(struct loader *ld, yaml_parser_t *parser,
			  struct node *out, yaml_event_type_t end_type,
			  int depth)
{
	yaml_event_t ev;
	int rc;

	for (;;) {
		struct node child = { 0 };

		rc = next_event(ld, parser, &ev);
		if (rc)
			return rc;
		if (ev.type == end_type) {
			yaml_event_delete(&ev);
			return 0;
		}

		rc = key_check(ld, out, &ev);
		if (rc == 0)
			rc = node_build(ld, parser, &ev, &child, depth + 1);
		if (rc == 0)
			rc = node_push(ld, out, &child);
		if (rc) {
			node_clear(&child);
			return rc;
		}
	}
}

/* Builds the node that starts with ev, which it deletes. */
static int node_build(struct loader *ld, yaml_parser_t *parser,
		      yaml_event_t *ev, struct node *out, int depth)
{
	yaml_event_type_t type = ev->type;
	int rc;

	out->line = ev->start_mark.line + 1;
	out->column = ev->start_mark.column + 1;
	rc = check_properties(ld, ev, out);
	if (rc == 0 && type == YAML_ALIAS_EVENT)
		rc = fail(ld, out,
			  "YAML aliases such as '*%s' are not supported; write each value out",
			  (const char *)ev->data.alias.anchor);
	if (rc == 0 && depth > CONF_DEPTH_MAX)
		rc = fail(ld, out, "values are nested more than %d levels deep",
			  CONF_DEPTH_MAX);
	if (rc == 0 && type == YAML_SCALAR_EVENT) {
		out->kind = NODE_SCALAR;
		out->length = ev->data.scalar.length;
		out->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		out->value = malloc(out->length + 1);
		if (out->value == NULL)
			rc = fail_nomem(ld);
		else
			memcpy(out->value, ev->data.scalar.value,
			       out->length + 1);
	}
	yaml_event_delete(ev);
	if (rc || type == YAML_SCALAR_EVENT)
		return rc;

	if (type == YAML_SEQUENCE_START_EVENT) {
		out->kind = NODE_LIST;
		return children_build(ld, parser, out, YAML_SEQUENCE_END_EVENT,
				      depth);
	}
	out->kind = NODE_MAP;
	return children_build(ld, parser, out, YAML_MAPPING_END_EVENT, depth);
}

/* Reads the stream's single document into root. */
static int tree_read(struct loader *ld, yaml_parser_t *parser,
		     struct node *root)
{
	yaml_event_t ev;
	int rc;

	rc = next_event(ld, parser, &ev);	/* stream start */
	if (rc)
		return rc;
	yaml_event_delete(&ev);

	rc = next_event(ld, parser, &ev);
	if (rc)
		return rc;
	if (ev.type == YAML_STREAM_END_EVENT) {
		yaml_event_delete(&ev);
		return fail_at(ld, 1, 1,
			       "the file is empty; expected a mapping of settings such as 'listen:'");
	}
	yaml_event_delete(&ev);			/* document start */

	rc = next_event(ld, parser, &ev);
	if (rc == 0)
		rc = node_build(ld, parser, &ev, root, 0);
	if (rc == 0)
		rc = next_event(ld, parser, &ev);	/* document end */
	if (rc)
		return rc;
	yaml_event_delete(&ev);

	rc = next_event(ld, parser, &ev);
	if (rc)
		return rc;
	if (ev.type != YAML_STREAM_END_EVENT)
		rc = fail_at(ld, ev.start_mark.line + 1,
			     ev.start_mark.column + 1,
			     "the file contains a second YAML document; write all settings in one");
	yaml_event_delete(&ev);
	return rc;
}

static int tree_load(struct loader *ld, struct node *root)
{
	yaml_parser_t parser;
	int rc;

	if (!yaml_parser_initialize(&parser))
		return fail_nomem(ld);
	yaml_parser_set_input_string(&parser, (const unsigned char *)ld->text,
				     ld->text_len);
	rc = tree_read(ld, &parser, root);
	yaml_parser_delete(&parser);
	return rc;
}

/* ---- scalar values ---- */

enum number_result {
	NUMBER_OK,
	NUMBER_SYNTAX,		/* empty, or not only digits */
	NUMBER_ZERO_PREFIX,	/* "010": octal in YAML 1.1, decimal in 1.2 */
	NUMBER_RANGE,		/* above max */
};

static enum number_result decimal_parse(const char *s, uint64_t max,
					uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0')
		return NUMBER_SYNTAX;
	for (const char *p = s; *p; p++)
		if (*p < '0' || *p > '9')
			return NUMBER_SYNTAX;
	if (s[0] == '0' && s[1] != '\0')
		return NUMBER_ZERO_PREFIX;

	for (; *s; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (d > max || v > (max - d) / 10)
			return NUMBER_RANGE;
		v = v * 10 + d;
	}
	*out = v;
	return NUMBER_OK;
}

/* Checks that n is a scalar without NUL bytes. expected describes the value. */
static int expect_scalar(struct loader *ld, const struct node *n,
			 const char *key, const char *expected)
{
	if (n->kind != NODE_SCALAR)
		return fail(ld, n, "'%s' must be %s, found %s", key, expected,
			    describe(ld, n));
	if (strlen(n->value) != n->length)
		return fail(ld, n, "'%s' contains a NUL character", key);
	return 0;
}

static int expect_map(struct loader *ld, const struct node *n, const char *key)
{
	if (n->kind != NODE_MAP)
		return fail(ld, n,
			    "'%s' must be a mapping of settings, found %s",
			    key, describe(ld, n));
	return 0;
}

static int integer_get(struct loader *ld, const struct node *n, const char *key,
		       uint64_t min, uint64_t max, uint64_t *out)
{
	enum number_result res;
	int rc;

	rc = expect_scalar(ld, n, key, "an integer");
	if (rc)
		return rc;
	if (!n->plain)
		return fail(ld, n,
			    "'%s' must be an integer without quotes, found %s",
			    key, quote(ld, n->value));
	if (n->value[0] == '-')
		return fail(ld, n, "'%s' must not be negative, found %s", key,
			    quote(ld, n->value));

	res = decimal_parse(n->value, max, out);
	if (res == NUMBER_SYNTAX)
		return fail(ld, n,
			    "'%s' must be a whole decimal number, found %s",
			    key, describe(ld, n));
	if (res == NUMBER_ZERO_PREFIX)
		return fail(ld, n, "'%s' must not start with 0, found %s", key,
			    quote(ld, n->value));
	if (res == NUMBER_RANGE || *out < min)
		return fail(ld, n, "'%s' must be from %llu to %llu, found %s",
			    key, (unsigned long long)min,
			    (unsigned long long)max, quote(ld, n->value));
	return 0;
}

/*
 * Reads a boolean. Only the plain scalars true and false count: YAML 1.1
 * also reads yes, no, on and off as booleans, YAML 1.2 does not, so they
 * are rejected rather than guessed.
 */
static int bool_get(struct loader *ld, const struct node *n, const char *key,
		    bool *out)
{
	int rc;

	rc = expect_scalar(ld, n, key, "true or false");
	if (rc)
		return rc;
	if (n->plain && strcmp(n->value, "true") == 0) {
		*out = true;
		return 0;
	}
	if (n->plain && strcmp(n->value, "false") == 0) {
		*out = false;
		return 0;
	}
	return fail(ld, n,
		    "'%s' must be true or false without quotes, found %s",
		    key, describe(ld, n));
}

static int bool_parse(struct loader *ld, const struct node *n,
		      const char *key, void *field)
{
	return bool_get(ld, n, key, field);
}

/* Matches a scalar against names[]; returns its index or a negative code. */
static int name_get(struct loader *ld, const struct node *n, const char *key,
		    const char *const *names, size_t count,
		    const char *expected)
{
	int rc;

	rc = expect_scalar(ld, n, key, expected);
	if (rc)
		return rc;
	for (size_t i = 0; i < count; i++)
		if (strcmp(n->value, names[i]) == 0)
			return (int)i;
	return fail(ld, n, "'%s' must be %s, found %s", key, expected,
		    describe(ld, n));
}

/* Parses an IPv4 or IPv6 literal into bytes; returns the family or 0. */
static int ip_parse(const char *s, uint8_t bytes[16])
{
	if (inet_pton(AF_INET, s, bytes) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, s, bytes) == 1)
		return AF_INET6;
	return 0;
}

/* ---- key tables and mappings ---- */

static int unknown_key(struct loader *ld, const struct node *key,
		       const struct section *sec)
{
	char names[256] = "";
	size_t len = 0;

	for (size_t i = 0; i < sec->count && len < sizeof(names); i++)
		len += snprintf(names + len, sizeof(names) - len, "%s%s",
				i ? ", " : "", sec->rules[i].name);
	return fail(ld, key, "unknown key %s in %s; expected one of: %s",
		    quote(ld, key->value), sec->where, names);
}

static int rule_find(const struct section *sec, const char *name)
{
	for (size_t i = 0; i < sec->count; i++)
		if (strcmp(name, sec->rules[i].name) == 0)
			return (int)i;
	return -1;
}

/*
 * Checks every key of mapping n against sec and runs the key's parser on
 * target. seen[i] receives the key node of rule i, or NULL when absent.
 */
static int map_walk(struct loader *ld, const struct node *n,
		    const struct section *sec, void *target,
		    const struct node *seen[CONF_KEYS_MAX])
{
	char path[CONF_KEY_PATH_MAX];

	memset(seen, 0, CONF_KEYS_MAX * sizeof(*seen));
	for (size_t i = 0; i + 1 < n->count; i += 2) {
		const struct node *key = &n->items[i];
		const struct key_rule *rule;
		int r;
		int rc;

		r = rule_find(sec, key->value);
		if (r < 0)
			return unknown_key(ld, key, sec);
		rule = &sec->rules[r];
		if (seen[r])
			return fail(ld, key,
				    "duplicate key %s in %s (first at line %u, column %u)",
				    quote(ld, key->value), sec->where,
				    seen[r]->line, seen[r]->column);
		seen[r] = key;

		snprintf(path, sizeof(path), "%s%s", sec->prefix, rule->name);
		rc = rule->parse(ld, &n->items[i + 1], path,
				 (char *)target + rule->offset);
		if (rc)
			return rc;
	}
	return 0;
}

static int section_parse(struct loader *ld, const struct node *n,
			 const char *key, const struct section *sec,
			 void *target)
{
	const struct node *seen[CONF_KEYS_MAX];
	int rc;

	rc = expect_map(ld, n, key);
	if (rc)
		return rc;
	return map_walk(ld, n, sec, target, seen);
}

/* Checks that n is a list with at least one item. */
static int list_expect(struct loader *ld, const struct node *n,
		       const char *key, const char *expected)
{
	if (n->kind != NODE_LIST)
		return fail(ld, n, "'%s' must be a list of %s, found %s", key,
			    expected, describe(ld, n));
	if (n->count == 0)
		return fail(ld, n,
			    "'%s' is an empty list; give at least one entry",
			    key);
	return 0;
}

/*
 * Parses a non-empty list with one parser per item into a new array that
 * the caller owns (*out). Items are elem_size bytes, zeroed before parsing.
 */
static int list_parse(struct loader *ld, const struct node *n, const char *key,
		      const char *expected, size_t elem_size,
		      item_parse_fn parse, void **out)
{
	void *array;
	int rc;

	*out = NULL;
	rc = list_expect(ld, n, key, expected);
	if (rc)
		return rc;

	array = calloc(n->count, elem_size);
	if (array == NULL)
		return fail_nomem(ld);
	for (size_t i = 0; i < n->count; i++) {
		rc = parse(ld, &n->items[i], key, array, i);
		if (rc) {
			free(array);
			return rc;
		}
	}
	*out = array;
	return 0;
}

/* ---- listen ---- */

static int listen_address_parse(struct loader *ld, const struct node *n,
				const char *key, void *field)
{
	struct conf_listen *l = field;
	uint8_t bytes[16];
	int family;
	int rc;

	rc = expect_scalar(ld, n, key, "an IPv4 or IPv6 address");
	if (rc)
		return rc;
	if (n->value[0] == '[')
		return fail(ld, n,
			    "'%s' must be an IP address without brackets, found %s",
			    key, quote(ld, n->value));
	family = ip_parse(n->value, bytes);
	if (family == 0)
		return fail(ld, n,
			    "'%s' must be an IPv4 or IPv6 address, found %s",
			    key, describe(ld, n));
	inet_ntop(family, bytes, l->address, sizeof(l->address));
	return 0;
}

static int listen_port_parse(struct loader *ld, const struct node *n,
			     const char *key, void *field)
{
	struct conf_listen *l = field;
	uint64_t port;
	int rc;

	rc = integer_get(ld, n, key, 1, 65535, &port);
	if (rc == 0)
		l->port = (uint16_t)port;
	return rc;
}

static int listen_mode_parse(struct loader *ld, const struct node *n,
			     const char *key, void *field)
{
	static const char *const names[] = { "relay", "transparent" };
	struct conf_listen *l = field;
	int index;

	index = name_get(ld, n, key, names, ARRAY_LEN(names),
			 "relay or transparent");
	if (index < 0)
		return index;
	l->mode = index == 0 ? CONF_LISTEN_RELAY : CONF_LISTEN_TRANSPARENT;
	return 0;
}

enum listen_key {
	LISTEN_ADDRESS,
	LISTEN_PORT,
	LISTEN_MODE,
	LISTEN_KEY_COUNT,
};

static const struct key_rule listen_rules[LISTEN_KEY_COUNT] = {
	[LISTEN_ADDRESS] = { "address", listen_address_parse, 0 },
	[LISTEN_PORT] = { "port", listen_port_parse, 0 },
	[LISTEN_MODE] = { "mode", listen_mode_parse, 0 },
};

static const struct section listen_section = {
	"a 'listen' entry", "listen.", listen_rules, LISTEN_KEY_COUNT,
};

static int listen_entry_parse(struct loader *ld, const struct node *item,
			      const char *key, void *array, size_t index)
{
	struct conf_listen *entries = array;
	const struct node *seen[CONF_KEYS_MAX];
	int rc;

	if (item->kind != NODE_MAP)
		return fail(ld, item,
			    "each '%s' entry must be a mapping with 'address' and 'port', found %s",
			    key, describe(ld, item));
	rc = map_walk(ld, item, &listen_section, &entries[index], seen);
	if (rc)
		return rc;
	/* mode is optional and relay unless the entry sets it. */
	for (size_t r = LISTEN_ADDRESS; r <= LISTEN_PORT; r++)
		if (seen[r] == NULL)
			return fail(ld, item, "this '%s' entry has no '%s'",
				    key, listen_rules[r].name);

	/* The second bind of the same address and port would fail at start. */
	for (size_t i = 0; i < index; i++) {
		const struct conf_listen *a = &entries[i];
		const struct conf_listen *b = &entries[index];

		if (strcmp(a->address, b->address) == 0 && a->port == b->port)
			return fail(ld, item, "'%s' lists %s port %u twice",
				    key, b->address, b->port);
	}
	return 0;
}

static int listen_parse(struct loader *ld, const struct node *n,
			const char *key, void *field)
{
	struct conf *conf = field;
	void *array;
	int rc;

	rc = list_parse(ld, n, key, "addresses and ports",
			sizeof(struct conf_listen), listen_entry_parse, &array);
	if (rc)
		return rc;
	free(conf->listen);
	conf->listen = array;
	conf->listen_count = n->count;
	return 0;
}

/* ---- clients ---- */

/* Returns true when no bit after the first prefix bits of bytes is set. */
static bool host_bits_clear(const uint8_t *bytes, size_t size, unsigned prefix)
{
	for (unsigned bit = prefix; bit < size * 8; bit++)
		if (bytes[bit / 8] & (0x80 >> (bit % 8)))
			return false;
	return true;
}

static void host_bits_clear_copy(const uint8_t *bytes, size_t size,
				 unsigned prefix, uint8_t *out)
{
	memcpy(out, bytes, size);
	for (unsigned bit = prefix; bit < size * 8; bit++)
		out[bit / 8] &= (uint8_t)~(0x80 >> (bit % 8));
}

static int network_host_bits_error(struct loader *ld, const struct node *n,
				   const char *key, struct conf_network *net)
{
	char text[INET6_ADDRSTRLEN];
	uint8_t masked[16];
	size_t size = net->family == AF_INET ? 4 : 16;

	host_bits_clear_copy(net->addr, size, net->prefix, masked);
	inet_ntop(net->family, masked, text, sizeof(text));
	return fail(ld, n,
		    "'%s' network %s has bits set after the /%u prefix; did you mean '%s/%u'?",
		    key, quote(ld, n->value), net->prefix, text, net->prefix);
}

static int network_parse(struct loader *ld, const struct node *item,
			 const char *key, void *array, size_t index)
{
	struct conf_network *net = (struct conf_network *)array + index;
	char text[INET6_ADDRSTRLEN + 8];
	uint64_t prefix;
	char *slash;
	int rc;

	rc = expect_scalar(ld, item, key, "a network such as '127.0.0.0/8'");
	if (rc)
		return rc;
	if (item->length >= sizeof(text))
		return fail(ld, item,
			    "'%s' entry %s is not a network in CIDR form",
			    key, quote(ld, item->value));
	memcpy(text, item->value, item->length + 1);

	slash = strchr(text, '/');
	if (slash)
		*slash = '\0';
	net->family = ip_parse(text, net->addr);
	if (net->family == 0)
		return fail(ld, item,
			    "'%s' entry %s is not an IPv4 or IPv6 network",
			    key, quote(ld, item->value));

	prefix = net->family == AF_INET ? 32 : 128;
	if (slash && decimal_parse(slash + 1, prefix, &prefix) != NUMBER_OK)
		return fail(ld, item,
			    "'%s' entry %s has an invalid prefix length; expected /0 to /%d",
			    key, quote(ld, item->value),
			    net->family == AF_INET ? 32 : 128);
	net->prefix = (unsigned)prefix;

	if (!host_bits_clear(net->addr, net->family == AF_INET ? 4 : 16,
			     net->prefix))
		return network_host_bits_error(ld, item, key, net);
	return 0;
}

static int clients_parse(struct loader *ld, const struct node *n,
			 const char *key, void *field)
{
	struct conf *conf = field;
	void *array;
	int rc;

	rc = list_parse(ld, n, key, "networks", sizeof(struct conf_network),
			network_parse, &array);
	if (rc)
		return rc;
	free(conf->clients);
	conf->clients = array;
	conf->client_count = n->count;
	return 0;
}

/* ---- hostname ---- */

/*
 * RFC 5321 section 4.1.2: a Domain in EHLO is dot-separated sub-domains of
 * letters, digits and hyphens that start and end with a letter or digit.
 * base_dname_valid also accepts underscores and edge hyphens.
 */
static bool hostname_valid(const char *name)
{
	size_t len = strlen(name);
	uint8_t bytes[16];

	if (!base_dname_valid(name) || strchr(name, '_') != NULL)
		return false;
	if (ip_parse(name, bytes) != 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		bool edge = i == 0 || name[i - 1] == '.' || i + 1 == len ||
			    name[i + 1] == '.';

		if (name[i] == '-' && edge)
			return false;
	}
	return true;
}

static int hostname_parse(struct loader *ld, const struct node *n,
			  const char *key, void *field)
{
	struct conf *conf = field;
	int rc;

	rc = expect_scalar(ld, n, key, "a host name");
	if (rc)
		return rc;
	if (!hostname_valid(n->value) ||
	    base_dname_normalize(n->value, conf->hostname,
				 sizeof(conf->hostname)) < 0)
		return fail(ld, n,
			    "'%s' must be a host name such as 'mail.example.org', found %s",
			    key, describe(ld, n));
	return 0;
}

/* Fills in the system's host name when the file sets none. */
static int hostname_default(struct loader *ld, const struct node *root,
			    struct conf *conf)
{
	char name[HOST_NAME_MAX + 1];

	if (gethostname(name, sizeof(name)) < 0)
		return fail(ld, root,
			    "'hostname' is not set and the system host name cannot be read (%s); set 'hostname'",
			    strerror(errno));
	name[HOST_NAME_MAX] = '\0';
	if (!hostname_valid(name) ||
	    base_dname_normalize(name, conf->hostname,
				 sizeof(conf->hostname)) < 0)
		return fail(ld, root,
			    "'hostname' is not set and the system host name %s is not a valid host name; set 'hostname'",
			    quote(ld, name));
	return 0;
}

/* ---- dns ---- */

/* Splits "ip", "ip:port", "[ipv6]" or "[ipv6]:port" into text and port. */
static int server_split(char *text, char **address, const char **port)
{
	char *colon;

	*port = NULL;
	if (text[0] == '[') {
		char *close = strchr(text, ']');

		if (close == NULL || (close[1] != '\0' && close[1] != ':'))
			return -1;
		*close = '\0';
		*address = text + 1;
		if (close[1] == ':')
			*port = close + 2;
		return 0;
	}

	*address = text;
	colon = strchr(text, ':');
	if (colon == NULL)
		return 0;
	if (strchr(colon + 1, ':') != NULL)
		return -2;		/* IPv6 without brackets */
	*colon = '\0';
	*port = colon + 1;
	return 0;
}

static int dns_server_parse(struct loader *ld, const struct node *item,
			    const char *key, void *array, size_t index)
{
	struct conf_dns_server *server;
	char text[INET6_ADDRSTRLEN + 16];
	uint8_t bytes[16];
	const char *port;
	char *address;
	uint64_t number = CONF_DNS_PORT;
	int family;
	int rc;

	server = (struct conf_dns_server *)array + index;
	rc = expect_scalar(ld, item, key, "an address such as '127.0.0.1:53'");
	if (rc)
		return rc;
	if (item->length >= sizeof(text))
		return fail(ld, item, "'%s' entry %s is not an address", key,
			    quote(ld, item->value));
	memcpy(text, item->value, item->length + 1);

	rc = server_split(text, &address, &port);
	if (rc == -2)
		return fail(ld, item,
			    "'%s' entry %s: write IPv6 addresses in brackets, such as '[::1]:53'",
			    key, quote(ld, item->value));
	family = rc == 0 ? ip_parse(address, bytes) : 0;
	if (family == 0 || (text[0] == '[' && family != AF_INET6))
		return fail(ld, item,
			    "'%s' entry %s must be 'ip:port' or '[ipv6]:port'",
			    key, quote(ld, item->value));
	if (port && (decimal_parse(port, 65535, &number) != NUMBER_OK ||
		     number == 0))
		return fail(ld, item,
			    "'%s' entry %s has an invalid port; expected 1 to 65535",
			    key, quote(ld, item->value));

	inet_ntop(family, bytes, server->address, sizeof(server->address));
	server->port = (uint16_t)number;
	return 0;
}

static int dns_servers_parse(struct loader *ld, const struct node *n,
			     const char *key, void *field)
{
	struct conf *conf = field;
	void *array;
	int rc;

	rc = list_parse(ld, n, key, "resolver addresses",
			sizeof(struct conf_dns_server), dns_server_parse,
			&array);
	if (rc)
		return rc;
	free(conf->dns_servers);
	conf->dns_servers = array;
	conf->dns_server_count = n->count;
	return 0;
}

/*
 * Stores "" for the root, which the header defines as the root's DNSKEY,
 * so "." and an absent key mean the same. Other names are stored in lower
 * case without a trailing dot.
 */
static int probe_parse(struct loader *ld, const struct node *n,
		       const char *key, void *field)
{
	struct conf *conf = field;
	int rc;

	rc = expect_scalar(ld, n, key, "a DNS name");
	if (rc)
		return rc;
	if (strcmp(n->value, ".") == 0) {
		conf->dns_probe[0] = '\0';
		return 0;
	}
	if (base_dname_normalize(n->value, conf->dns_probe,
				 sizeof(conf->dns_probe)) < 0)
		return fail(ld, n,
			    "'%s' must be a DNS name such as 'example.org', or '.' for the root, found %s",
			    key, describe(ld, n));
	return 0;
}

static const struct key_rule dns_rules[] = {
	{ "servers", dns_servers_parse, 0 },
	{ "trust_ad", bool_parse, offsetof(struct conf, dns_trust_ad) },
	{ "probe", probe_parse, 0 },
};

static const struct section dns_section = {
	"'dns'", "dns.", dns_rules, ARRAY_LEN(dns_rules),
};

static int dns_parse(struct loader *ld, const struct node *n, const char *key,
		     void *field)
{
	return section_parse(ld, n, key, &dns_section, field);
}

/* ---- tls ---- */

/*
 * Opens the file now, so a missing file stops the start, and stores a copy
 * of its path in *out. what names the expected content for messages.
 */
static int readable_file_get(struct loader *ld, const struct node *n,
			     const char *key, const char *what, char **out)
{
	struct stat st;
	bool regular;
	char *copy;
	int fd;
	int rc;

	rc = expect_scalar(ld, n, key, what);
	if (rc)
		return rc;
	if (n->length == 0)
		return fail(ld, n, "'%s' is empty; remove it or give %s", key,
			    what);

	fd = open(n->value, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(ld, n, "'%s' %s cannot be read: %s", key,
			    quote(ld, n->value), strerror(errno));
	regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	close(fd);
	if (!regular)
		return fail(ld, n, "'%s' %s is not a regular file", key,
			    quote(ld, n->value));

	copy = strdup(n->value);
	if (copy == NULL)
		return fail_nomem(ld);
	free(*out);
	*out = copy;
	return 0;
}

static int ca_file_parse(struct loader *ld, const struct node *n,
			 const char *key, void *field)
{
	struct conf *conf = field;

	return readable_file_get(ld, n, key, "the path of a CA bundle",
				 &conf->tls_ca_file);
}

static int server_cert_parse(struct loader *ld, const struct node *n,
			     const char *key, void *field)
{
	struct conf *conf = field;

	return readable_file_get(ld, n, key,
				 "the path of a PEM certificate chain",
				 &conf->tls_server_cert);
}

static int server_key_parse(struct loader *ld, const struct node *n,
			    const char *key, void *field)
{
	struct conf *conf = field;

	return readable_file_get(ld, n, key, "the path of a PEM private key",
				 &conf->tls_server_key);
}

static int min_version_parse(struct loader *ld, const struct node *n,
			     const char *key, void *field)
{
	static const char *const names[] = { "1.2", "1.3" };
	struct conf *conf = field;
	int index;

	index = name_get(ld, n, key, names, 2, "1.2 or 1.3");
	if (index < 0)
		return index;
	conf->tls_min_version = index == 0 ? 12 : 13;
	return 0;
}

enum tls_key {
	TLS_CA_FILE,
	TLS_MIN_VERSION,
	TLS_SERVER_CERT,
	TLS_SERVER_KEY,
	TLS_KEY_COUNT,
};

static const struct key_rule tls_rules[TLS_KEY_COUNT] = {
	[TLS_CA_FILE] = { "ca_file", ca_file_parse, 0 },
	[TLS_MIN_VERSION] = { "min_version", min_version_parse, 0 },
	[TLS_SERVER_CERT] = { "server_cert", server_cert_parse, 0 },
	[TLS_SERVER_KEY] = { "server_key", server_key_parse, 0 },
};

static const struct section tls_section = {
	"'tls'", "tls.", tls_rules, TLS_KEY_COUNT,
};

/* The certificate and its key only work together: both or neither. */
static int tls_parse(struct loader *ld, const struct node *n, const char *key,
		     void *field)
{
	const struct node *seen[CONF_KEYS_MAX];
	const struct node *cert, *priv;
	int rc;

	rc = expect_map(ld, n, key);
	if (rc == 0)
		rc = map_walk(ld, n, &tls_section, field, seen);
	if (rc)
		return rc;

	cert = seen[TLS_SERVER_CERT];
	priv = seen[TLS_SERVER_KEY];
	if (cert != NULL && priv == NULL)
		return fail(ld, cert,
			    "'tls.server_cert' is set but 'tls.server_key' is not; give both, or neither to turn STARTTLS toward clients off");
	if (priv != NULL && cert == NULL)
		return fail(ld, priv,
			    "'tls.server_key' is set but 'tls.server_cert' is not; give both, or neither to turn STARTTLS toward clients off");
	return 0;
}

/* ---- policy ---- */

/* Indexed by enum conf_level. */
static const char *const level_names[] = {
	"none", "may", "encrypt", "dane", "dane-only", "verify", "secure",
};

_Static_assert(ARRAY_LEN(level_names) == CONF_LEVEL_SECURE + 1,
	       "a security level has no name");

#define LEVELS_ALL "none, may, encrypt, dane, dane-only, verify or secure"
#define LEVELS_DEFAULT "none, may, encrypt, dane, dane-only or verify"

static int policy_default_parse(struct loader *ld, const struct node *n,
				const char *key, void *field)
{
	struct conf *conf = field;
	int rc;

	rc = name_get(ld, n, key, level_names, ARRAY_LEN(level_names),
		      LEVELS_DEFAULT);
	if (rc < 0)
		return rc;

	/* secure accepts only the names of a rule's match list. */
	if (rc == CONF_LEVEL_SECURE)
		return fail(ld, n,
			    "'%s' cannot be secure, because secure needs a 'match' list of certificate names and only a rule in 'policy.rules' has one; use verify, or add a rule",
			    key);
	conf->policy_default = (enum conf_level)rc;
	return 0;
}

/* ---- policy.rules ---- */

/*
 * A rule's domain is one recipient domain, matched exactly: RFC 5321
 * Domain syntax, stored in lower case without a trailing dot.
 */
static int rule_domain_parse(struct loader *ld, const struct node *n,
			     const char *key, void *field)
{
	struct conf_rule *rule = field;
	int rc;

	rc = expect_scalar(ld, n, key, "a domain name");
	if (rc)
		return rc;
	if (strncmp(n->value, "*.", 2) == 0)
		return fail(ld, n,
			    "'%s' must be one domain, found the wildcard %s; a rule covers exactly one domain, so write one rule per domain",
			    key, quote(ld, n->value));
	if (!hostname_valid(n->value) ||
	    base_dname_normalize(n->value, rule->domain,
				 sizeof(rule->domain)) < 0)
		return fail(ld, n,
			    "'%s' must be a domain name such as 'example.org', found %s",
			    key, describe(ld, n));
	return 0;
}

static int rule_level_parse(struct loader *ld, const struct node *n,
			    const char *key, void *field)
{
	int rc;

	rc = name_get(ld, n, key, level_names, ARRAY_LEN(level_names),
		      LEVELS_ALL);
	if (rc < 0)
		return rc;
	*(enum conf_level *)field = (enum conf_level)rc;
	return 0;
}

/*
 * Reads a host name or a wildcard with one leading "*." label, and stores
 * a new string in *out: lower case, without a trailing dot.
 */
static int match_name_parse(struct loader *ld, const struct node *item,
			    const char *key, char **out)
{
	char name[BASE_DNAME_MAX + 3];
	bool wildcard;
	size_t skip;
	int rc;

	rc = expect_scalar(ld, item, key,
			   "a host name or a wildcard such as '*.example.org'");
	if (rc)
		return rc;

	wildcard = strncmp(item->value, "*.", 2) == 0;
	skip = wildcard ? 2 : 0;
	strcpy(name, wildcard ? "*." : "");
	if (!hostname_valid(item->value + skip) ||
	    base_dname_normalize(item->value + skip, name + skip,
				 sizeof(name) - skip) < 0)
		return fail(ld, item,
			    "'%s' entry %s must be a host name such as 'mx.example.org' or a wildcard with one leading label such as '*.example.org'",
			    key, quote(ld, item->value));

	*out = strdup(name);
	if (*out == NULL)
		return fail_nomem(ld);
	return 0;
}

/*
 * Fills rule->match item by item, counting each stored name at once, so
 * conf_free releases them whatever fails later.
 */
static int rule_match_parse(struct loader *ld, const struct node *n,
			    const char *key, void *field)
{
	struct conf_rule *rule = field;
	int rc;

	rc = list_expect(ld, n, key, "certificate names");
	if (rc)
		return rc;
	rule->match = calloc(n->count, sizeof(*rule->match));
	if (rule->match == NULL)
		return fail_nomem(ld);

	for (size_t i = 0; i < n->count; i++) {
		rc = match_name_parse(ld, &n->items[i], key, &rule->match[i]);
		if (rc)
			return rc;
		rule->match_count = i + 1;
	}
	return 0;
}

static bool leap_year(unsigned year)
{
	return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static unsigned month_days(unsigned year, unsigned month)
{
	static const unsigned days[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31,
	};

	if (month == 2 && leap_year(year))
		return 29;
	return days[month - 1];
}

/* Leap years from year 1 to year - 1, in the proleptic Gregorian calendar. */
static int64_t leap_years_before(unsigned year)
{
	int64_t y = (int64_t)year - 1;

	return y / 4 - y / 100 + y / 400;
}

/* Converts a valid date to the Unix time of its first second (UTC). */
static int64_t date_unix_time(unsigned year, unsigned month, unsigned day)
{
	int64_t days;

	days = 365 * ((int64_t)year - 1970) + leap_years_before(year) -
	       leap_years_before(1970);
	for (unsigned m = 1; m < month; m++)
		days += month_days(year, m);
	days += day - 1;
	return days * CONF_SECONDS_PER_DAY;
}

static unsigned digits_value(const char *s, size_t count)
{
	unsigned value = 0;

	for (size_t i = 0; i < count; i++)
		value = value * 10 + (unsigned)(s[i] - '0');
	return value;
}

/* Returns true when s has the form YYYY-MM-DD, digits and hyphens only. */
static bool date_form(const char *s)
{
	if (strlen(s) != 10)
		return false;
	for (size_t i = 0; i < 10; i++) {
		bool hyphen = i == 4 || i == 7;
		bool digit = s[i] >= '0' && s[i] <= '9';

		if (hyphen ? s[i] != '-' : !digit)
			return false;
	}
	return true;
}

/*
 * Stores the Unix time at which the rule lapses: 00:00:00 UTC of the given
 * day. A date in the past is accepted, so an expired rule does not stop
 * mxlock from starting.
 */
static int rule_until_parse(struct loader *ld, const struct node *n,
			    const char *key, void *field)
{
	unsigned year;
	unsigned month;
	unsigned day;
	int rc;

	rc = expect_scalar(ld, n, key, "a date such as '2030-01-31'");
	if (rc)
		return rc;
	if (!date_form(n->value))
		return fail(ld, n,
			    "'%s' must be a date in the form YYYY-MM-DD, such as '2030-01-31', found %s",
			    key, describe(ld, n));

	year = digits_value(n->value, 4);
	month = digits_value(n->value + 5, 2);
	day = digits_value(n->value + 8, 2);
	/* 1970-01-01 would be 0, which means "never lapses". */
	if (year < CONF_YEAR_MIN)
		return fail(ld, n,
			    "'%s' must be a date from the year %d on, found %s",
			    key, CONF_YEAR_MIN, quote(ld, n->value));
	if (month < 1 || month > 12 || day < 1 ||
	    day > month_days(year, month))
		return fail(ld, n, "'%s' %s is not a valid calendar date",
			    key, quote(ld, n->value));

	*(int64_t *)field = date_unix_time(year, month, day);
	return 0;
}

enum rule_key {
	RULE_DOMAIN,
	RULE_LEVEL,
	RULE_MATCH,
	RULE_UNTIL,
	RULE_KEY_COUNT,
};

static const struct key_rule rule_rules[RULE_KEY_COUNT] = {
	[RULE_DOMAIN] = { "domain", rule_domain_parse,
			  offsetof(struct conf_rule, domain) },
	[RULE_LEVEL] = { "level", rule_level_parse,
			 offsetof(struct conf_rule, level) },
	[RULE_MATCH] = { "match", rule_match_parse, 0 },
	[RULE_UNTIL] = { "until", rule_until_parse,
			 offsetof(struct conf_rule, until) },
};

static const struct section rule_section = {
	"a 'policy.rules' entry", "policy.rules.", rule_rules, RULE_KEY_COUNT,
};

/* Checks the keys a rule needs and the match list against the level. */
static int rule_keys_check(struct loader *ld, const struct node *item,
			   const char *key, const struct conf_rule *rule,
			   const struct node *seen[CONF_KEYS_MAX])
{
	bool secure = rule->level == CONF_LEVEL_SECURE;

	if (seen[RULE_DOMAIN] == NULL)
		return fail(ld, item, "this '%s' entry has no 'domain'", key);
	if (seen[RULE_LEVEL] == NULL)
		return fail(ld, item, "this '%s' entry has no 'level'", key);
	if (secure && seen[RULE_MATCH] == NULL)
		return fail(ld, item,
			    "this '%s' entry has level secure but no 'match'; list the certificate names to accept",
			    key);
	if (!secure && seen[RULE_MATCH] != NULL)
		return fail(ld, seen[RULE_MATCH],
			    "'%s.match' is allowed only with level secure, but this rule has level %s; remove 'match' or set 'level: secure'",
			    key, level_names[rule->level]);
	return 0;
}

/*
 * Parses the last rule counted in conf->rule_count. The rule already
 * belongs to conf, so conf_free releases its match list on any error.
 */
static int rule_entry_parse(struct loader *ld, const struct node *item,
			    const char *key, struct conf *conf)
{
	struct conf_rule *rule = &conf->rules[conf->rule_count - 1];
	const struct node *seen[CONF_KEYS_MAX];
	int rc;

	if (item->kind != NODE_MAP)
		return fail(ld, item,
			    "each '%s' entry must be a mapping with 'domain' and 'level', found %s",
			    key, describe(ld, item));
	rule->line = item->line;
	rc = map_walk(ld, item, &rule_section, rule, seen);
	if (rc == 0)
		rc = rule_keys_check(ld, item, key, rule, seen);
	if (rc)
		return rc;

	/* Two rules for one domain would make the order of the file matter. */
	for (size_t i = 0; i + 1 < conf->rule_count; i++)
		if (strcmp(conf->rules[i].domain, rule->domain) == 0)
			return fail(ld, item,
				    "'%s' has two rules for the domain %s, at lines %u and %u; merge them into one",
				    key, quote(ld, rule->domain),
				    conf->rules[i].line, rule->line);
	return 0;
}

/* An empty list is allowed: it means no rules, as when the key is absent. */
static int rules_parse(struct loader *ld, const struct node *n,
		       const char *key, void *field)
{
	struct conf *conf = field;

	if (n->kind != NODE_LIST)
		return fail(ld, n, "'%s' must be a list of rules, found %s",
			    key, describe(ld, n));
	if (n->count == 0)
		return 0;
	conf->rules = calloc(n->count, sizeof(*conf->rules));
	if (conf->rules == NULL)
		return fail_nomem(ld);

	for (size_t i = 0; i < n->count; i++) {
		int rc;

		conf->rule_count = i + 1;
		rc = rule_entry_parse(ld, &n->items[i], key, conf);
		if (rc)
			return rc;
	}
	return 0;
}

static const struct key_rule policy_rules[] = {
	{ "default", policy_default_parse, 0 },
	{ "dane", bool_parse, offsetof(struct conf, policy_dane) },
	{ "dane_insecure_mx", bool_parse,
	  offsetof(struct conf, policy_dane_insecure_mx) },
	{ "mta_sts", bool_parse, offsetof(struct conf, policy_mta_sts) },
	{ "rules", rules_parse, 0 },
};

static const struct section policy_section = {
	"'policy'", "policy.", policy_rules, ARRAY_LEN(policy_rules),
};

static int policy_parse(struct loader *ld, const struct node *n,
			const char *key, void *field)
{
	return section_parse(ld, n, key, &policy_section, field);
}

/* ---- workers ---- */

static int workers_parse(struct loader *ld, const struct node *n,
			 const char *key, void *field)
{
	uint64_t value;
	int rc;

	rc = integer_get(ld, n, key, 1, CONF_WORKERS_MAX, &value);
	if (rc == 0)
		*(unsigned *)field = (unsigned)value;
	return rc;
}

/* ---- limits ---- */

static int count_parse(struct loader *ld, const struct node *n,
		       const char *key, void *field)
{
	uint64_t value;
	int rc;

	rc = integer_get(ld, n, key, 1, UINT_MAX, &value);
	if (rc == 0)
		*(unsigned *)field = (unsigned)value;
	return rc;
}

static int size_parse(struct loader *ld, const struct node *n, const char *key,
		      void *field)
{
	return integer_get(ld, n, key, 1, INT64_MAX, field);
}

/* Reads whole seconds and stores milliseconds. */
static int timeout_parse(struct loader *ld, const struct node *n,
			 const char *key, void *field)
{
	uint64_t seconds;
	int rc;

	rc = integer_get(ld, n, key, 1, CONF_TIMEOUT_MAX, &seconds);
	if (rc == 0)
		*(uint64_t *)field = seconds * 1000;
	return rc;
}

#define TIMEOUT_RULE(name) \
	{ #name, timeout_parse, offsetof(struct conf, limits.timeouts.name) }

static const struct key_rule timeout_rules[] = {
	TIMEOUT_RULE(command),
	TIMEOUT_RULE(data),
	TIMEOUT_RULE(dns),
	TIMEOUT_RULE(connect),
	TIMEOUT_RULE(greeting),
	TIMEOUT_RULE(tls),
	TIMEOUT_RULE(reply),
	TIMEOUT_RULE(final),
};

static const struct section timeout_section = {
	"'limits.timeouts'", "limits.timeouts.", timeout_rules, 8,
};

static int timeouts_parse(struct loader *ld, const struct node *n,
			  const char *key, void *field)
{
	return section_parse(ld, n, key, &timeout_section, field);
}

static const struct key_rule limit_rules[] = {
	{ "max_connections", count_parse,
	  offsetof(struct conf, limits.max_connections) },
	{ "max_message_size", size_parse,
	  offsetof(struct conf, limits.max_message_size) },
	{ "max_recipients", count_parse,
	  offsetof(struct conf, limits.max_recipients) },
	{ "max_mx_hosts", count_parse,
	  offsetof(struct conf, limits.max_mx_hosts) },
	{ "max_addresses", count_parse,
	  offsetof(struct conf, limits.max_addresses) },
	{ "timeouts", timeouts_parse, 0 },
};

static const struct section limit_section = {
	"'limits'", "limits.", limit_rules, 6,
};

static int limits_parse(struct loader *ld, const struct node *n,
			const char *key, void *field)
{
	return section_parse(ld, n, key, &limit_section, field);
}

/* ---- log ---- */

static int log_level_parse(struct loader *ld, const struct node *n,
			   const char *key, void *field)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	struct conf *conf = field;
	int index;

	index = name_get(ld, n, key, names, 4, "error, warn, info or debug");
	if (index < 0)
		return index;
	conf->log_level = (enum conf_log_level)index;
	return 0;
}

static const struct key_rule log_rules[] = {
	{ "level", log_level_parse, 0 },
};

static const struct section log_section = {
	"'log'", "log.", log_rules, 1,
};

static int log_parse(struct loader *ld, const struct node *n, const char *key,
		     void *field)
{
	return section_parse(ld, n, key, &log_section, field);
}

/* ---- transparent ---- */

static const char *const unmatched_names[] = {
	[CONF_UNMATCHED_REROUTE] = "reroute",
	[CONF_UNMATCHED_DEFER] = "defer",
	[CONF_UNMATCHED_PASSTHROUGH] = "passthrough",
};

static int unmatched_parse(struct loader *ld, const struct node *n,
			   const char *key, void *field)
{
	struct conf *conf = field;
	int index;

	index = name_get(ld, n, key, unmatched_names,
			 ARRAY_LEN(unmatched_names),
			 "reroute, defer or passthrough");
	if (index < 0)
		return index;
	conf->transparent_unmatched = (enum conf_unmatched)index;
	return 0;
}

/* A firewall mark is 32 bits; 0 means "no mark". */
static int mark_parse(struct loader *ld, const struct node *n,
		      const char *key, void *field)
{
	uint64_t value;
	int rc;

	rc = integer_get(ld, n, key, 0, UINT32_MAX, &value);
	if (rc == 0)
		*(uint32_t *)field = (uint32_t)value;
	return rc;
}

static const struct key_rule transparent_rules[] = {
	{ "unmatched", unmatched_parse, 0 },
	{ "mark", mark_parse, offsetof(struct conf, transparent_mark) },
};

static const struct section transparent_section = {
	"'transparent'", "transparent.", transparent_rules,
	ARRAY_LEN(transparent_rules),
};

static int transparent_parse(struct loader *ld, const struct node *n,
			     const char *key, void *field)
{
	return section_parse(ld, n, key, &transparent_section, field);
}

/* ---- state_dir ---- */

/*
 * The folder need not exist yet, because the proxy creates it at start.
 * Only the value's form is checked here.
 */
static int state_dir_parse(struct loader *ld, const struct node *n,
			   const char *key, void *field)
{
	struct conf *conf = field;
	char *copy;
	int rc;

	rc = expect_scalar(ld, n, key, "the path of a folder");
	if (rc)
		return rc;
	if (n->length == 0)
		return fail(ld, n,
			    "'%s' is empty; remove it to use %s or give the path of a folder",
			    key, CONF_STATE_DIR);

	copy = strdup(n->value);
	if (copy == NULL)
		return fail_nomem(ld);
	free(conf->state_dir);
	conf->state_dir = copy;
	return 0;
}

/* ---- top level ---- */

enum root_key {
	ROOT_LISTEN,
	ROOT_CLIENTS,
	ROOT_HOSTNAME,
	ROOT_DNS,
	ROOT_TLS,
	ROOT_POLICY,
	ROOT_LIMITS,
	ROOT_LOG,
	ROOT_STATE_DIR,
	ROOT_TRANSPARENT,
	ROOT_WORKERS,
	ROOT_KEY_COUNT,
};

static const struct key_rule root_rules[ROOT_KEY_COUNT] = {
	[ROOT_LISTEN] = { "listen", listen_parse, 0 },
	[ROOT_CLIENTS] = { "clients", clients_parse, 0 },
	[ROOT_HOSTNAME] = { "hostname", hostname_parse, 0 },
	[ROOT_DNS] = { "dns", dns_parse, 0 },
	[ROOT_TLS] = { "tls", tls_parse, 0 },
	[ROOT_POLICY] = { "policy", policy_parse, 0 },
	[ROOT_LIMITS] = { "limits", limits_parse, 0 },
	[ROOT_LOG] = { "log", log_parse, 0 },
	[ROOT_STATE_DIR] = { "state_dir", state_dir_parse, 0 },
	[ROOT_TRANSPARENT] = { "transparent", transparent_parse, 0 },
	[ROOT_WORKERS] = { "workers", workers_parse, offsetof(struct conf, workers) },
};

static const struct section root_section = {
	"the top level", "", root_rules, ROOT_KEY_COUNT,
};

_Static_assert(ROOT_KEY_COUNT <= CONF_KEYS_MAX, "too many top-level keys");

/* Sets every default that needs no system call. */
static int conf_defaults(struct conf *conf)
{
	conf->listen = calloc(1, sizeof(*conf->listen));
	conf->clients = calloc(2, sizeof(*conf->clients));
	conf->dns_servers = calloc(1, sizeof(*conf->dns_servers));
	conf->state_dir = strdup(CONF_STATE_DIR);
	if (!conf->listen || !conf->clients || !conf->dns_servers ||
	    !conf->state_dir)
		return BASE_ENOMEM;

	strcpy(conf->listen[0].address, "127.0.0.1");
	conf->listen[0].port = CONF_LISTEN_PORT;
	conf->listen_count = 1;
	conf->clients[0] = (struct conf_network){ AF_INET, { 127 }, 8 };
	conf->clients[1] = (struct conf_network){ AF_INET6, { [15] = 1 }, 128 };
	conf->client_count = 2;
	strcpy(conf->dns_servers[0].address, "127.0.0.1");
	conf->dns_servers[0].port = CONF_DNS_PORT;
	conf->dns_server_count = 1;

	conf->workers = 1;
	conf->tls_min_version = 12;
	conf->policy_default = CONF_LEVEL_MAY;
	conf->policy_dane = true;
	conf->policy_mta_sts = true;
	conf->limits = (struct conf_limits){
		.max_connections = 1000,
		.max_message_size = 100 * 1024 * 1024,
		.max_recipients = 1000,
		.max_mx_hosts = 5,
		.max_addresses = 10,
		.timeouts = {
			.command = 300 * 1000, .data = 180 * 1000,
			.dns = 10 * 1000, .connect = 30 * 1000,
			.greeting = 300 * 1000, .tls = 60 * 1000,
			.reply = 300 * 1000, .final = 600 * 1000,
		},
	};
	conf->log_level = CONF_LOG_INFO;
	return 0;
}

static int conf_build(struct loader *ld, const struct node *root,
		      struct conf **out)
{
	const struct node *seen[CONF_KEYS_MAX];
	struct conf *conf;
	int rc;

	if (root->kind != NODE_MAP)
		return fail(ld, root,
			    "the top level must be a mapping of settings such as 'listen:', found %s",
			    describe(ld, root));

	conf = calloc(1, sizeof(*conf));
	if (conf == NULL)
		return fail_nomem(ld);
	conf->path = strdup(ld->path);
	rc = conf->path ? conf_defaults(conf) : BASE_ENOMEM;
	if (rc)
		rc = fail_nomem(ld);
	if (rc == 0)
		rc = map_walk(ld, root, &root_section, conf, seen);
	if (rc == 0 && seen[ROOT_HOSTNAME] == NULL)
		rc = hostname_default(ld, root, conf);
	if (rc) {
		conf_free(conf);
		return rc;
	}
	*out = conf;
	return 0;
}

int conf_load(const char *path, struct conf **out, char *err, size_t errlen)
{
	struct loader ld = { .path = path, .err = err, .errlen = errlen };
	struct node root = { 0 };
	struct conf *conf = NULL;
	int rc;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';

	rc = read_file(&ld);
	if (rc == 0)
		rc = tree_load(&ld, &root);
	if (rc == 0)
		rc = conf_build(&ld, &root, &conf);

	node_clear(&root);
	free(ld.text);
	if (rc == 0)
		*out = conf;
	return rc;
}

static void rules_free(struct conf_rule *rules, size_t count)
{
	for (size_t r = 0; r < count; r++) {
		for (size_t m = 0; m < rules[r].match_count; m++)
			free(rules[r].match[m]);
		free(rules[r].match);
	}
	free(rules);
}

void conf_free(struct conf *conf)
{
	if (conf == NULL)
		return;
	free(conf->path);
	free(conf->listen);
	free(conf->clients);
	free(conf->dns_servers);
	free(conf->tls_ca_file);
	free(conf->tls_server_cert);
	free(conf->tls_server_key);
	rules_free(conf->rules, conf->rule_count);
	free(conf->state_dir);
	free(conf);
}

/* ---- client check ---- */

static bool network_contains(const struct conf_network *net,
			     const uint8_t *addr)
{
	unsigned full = net->prefix / 8;
	unsigned rest = net->prefix % 8;
	uint8_t mask;

	if (memcmp(net->addr, addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (uint8_t)(0xff << (8 - rest));
	return (net->addr[full] & mask) == (addr[full] & mask);
}

static bool networks_contain(const struct conf *conf, int family,
			     const uint8_t *addr)
{
	for (size_t i = 0; i < conf->client_count; i++)
		if (conf->clients[i].family == family &&
		    network_contains(&conf->clients[i], addr))
			return true;
	return false;
}

bool conf_client_allowed(const struct conf *conf, const struct sockaddr *addr)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	if (conf == NULL || addr == NULL)
		return false;
	if (addr->sa_family == AF_INET) {
		memcpy(&sin, addr, sizeof(sin));
		return networks_contain(conf, AF_INET,
					(const uint8_t *)&sin.sin_addr);
	}
	if (addr->sa_family != AF_INET6)
		return false;

	memcpy(&sin6, addr, sizeof(sin6));
	if (networks_contain(conf, AF_INET6, sin6.sin6_addr.s6_addr))
		return true;
	/* A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d. */
	return IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr) &&
	       networks_contain(conf, AF_INET, sin6.sin6_addr.s6_addr + 12);
}

const char *conf_unmatched_name(enum conf_unmatched unmatched)
{
	if ((unsigned)unmatched >= ARRAY_LEN(unmatched_names))
		return "unknown";
	return unmatched_names[unmatched];
}

bool conf_has_transparent(const struct conf *conf)
{
	for (size_t i = 0; i < conf->listen_count; i++)
		if (conf->listen[i].mode == CONF_LISTEN_TRANSPARENT)
			return true;
	return false;
}

const char *conf_level_name(enum conf_level level)
{
	if ((unsigned)level >= ARRAY_LEN(level_names))
		return "unknown";
	return level_names[level];
}

const struct conf_rule *conf_rule_find(const struct conf *conf,
				       const char *domain, int64_t now)
{
	if (conf == NULL || domain == NULL)
		return NULL;
	for (size_t i = 0; i < conf->rule_count; i++) {
		const struct conf_rule *rule = &conf->rules[i];

		if (!base_dname_equal(rule->domain, domain))
			continue;
		/* The loader rejects a second rule for a domain. */
		if (rule->until == 0 || now < rule->until)
			return rule;
		return NULL;
	}
	return NULL;
}
