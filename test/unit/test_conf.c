/*
 * Unit tests for the configuration loader: valid files and the values they
 * give, broken files and the position and text of their error, and the
 * client network check. Each case writes its YAML text to a temporary file.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/err.h"
#include "conf/conf.h"

#define SUMMARY_MAX 1024
#define EXPECT_MAX 4
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Writes text to a new temporary file and stores its path in path. */
static void write_temp(const char *text, char path[64])
{
	size_t len = strlen(text);
	int fd;

	strcpy(path, "/tmp/test_conf_XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static int load_text(const char *text, struct conf **conf, char path[64],
		     char *err, size_t errlen)
{
	int rc;

	write_temp(text, path);
	rc = conf_load(path, conf, err, errlen);
	unlink(path);
	return rc;
}

static void append(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

static void append_network(char *buf, size_t size,
			   const struct conf_network *net)
{
	char text[INET6_ADDRSTRLEN];

	inet_ntop(net->family, net->addr, text, sizeof(text));
	append(buf, size, "%s/%u,", text, net->prefix);
}

/*
 * Formats a snapshot as space-separated "key=value" tokens, each ending in
 * a space, so a case can look for "policy=encrypt " with strstr.
 */
static void summarize(const struct conf *c, char *buf, size_t size)
{
	const struct conf_timeouts *t = &c->limits.timeouts;
	static const char *const log_names[] = {
		"error", "warn", "info", "debug",
	};

	buf[0] = '\0';
	append(buf, size, "listen=");
	for (size_t i = 0; i < c->listen_count; i++)
		append(buf, size, "%s:%u,", c->listen[i].address,
		       c->listen[i].port);
	append(buf, size, " clients=");
	for (size_t i = 0; i < c->client_count; i++)
		append_network(buf, size, &c->clients[i]);
	append(buf, size, " hostname=%s dns=", c->hostname);
	for (size_t i = 0; i < c->dns_server_count; i++)
		append(buf, size, "%s:%u,", c->dns_servers[i].address,
		       c->dns_servers[i].port);
	append(buf, size, " ca_file=%s tls=%d policy=%s",
	       c->tls_ca_file ? c->tls_ca_file : "(none)", c->tls_min_version,
	       conf_level_name(c->policy_default));
	append(buf, size,
	       " connections=%u size=%llu recipients=%u mx=%u addresses=%u",
	       c->limits.max_connections,
	       (unsigned long long)c->limits.max_message_size,
	       c->limits.max_recipients, c->limits.max_mx_hosts,
	       c->limits.max_addresses);
	append(buf, size, " timeouts=%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu",
	       (unsigned long long)t->command, (unsigned long long)t->data,
	       (unsigned long long)t->dns, (unsigned long long)t->connect,
	       (unsigned long long)t->greeting, (unsigned long long)t->tls,
	       (unsigned long long)t->reply, (unsigned long long)t->final);
	append(buf, size, " log=%s ", log_names[c->log_level]);
}

/* ---- valid files ---- */

struct valid_case {
	const char *name;
	const char *yaml;
	const char *expect[EXPECT_MAX];	/* tokens of the summary */
};

static const struct valid_case valid_cases[] = {
	{ "empty mapping gives defaults", "{}\n", {
		"listen=127.0.0.1:10025, clients=127.0.0.0/8,::1/128, ",
		"dns=127.0.0.1:53, ca_file=(none) tls=12 policy=may ",
		"connections=1000 size=104857600 recipients=1000 mx=5 addresses=10 ",
		"timeouts=300000,180000,10000,30000,300000,60000,300000,600000 log=info ",
	} },
	{ "listen takes IPv4 and IPv6", "listen:\n"
	  "  - address: 127.0.0.2\n    port: 25\n"
	  "  - {address: '0:0::1', port: 2525}\n", {
		"listen=127.0.0.2:25,::1:2525, ",
	} },
	{ "clients bare address is a host", "clients: [10.1.2.3, '2001:db8::1']\n", {
		"clients=10.1.2.3/32,2001:db8::1/128, ",
	} },
	{ "clients keep prefix lengths", "clients:\n  - 0.0.0.0/0\n  - 192.168.0.0/16\n"
	  "  - 2001:db8::/32\n  - 10.0.0.128/25\n", {
		"clients=0.0.0.0/0,192.168.0.0/16,2001:db8::/32,10.0.0.128/25, ",
	} },
	{ "hostname is lowercased", "hostname: Relay.Example.ORG.\n", {
		"hostname=relay.example.org ",
	} },
	{ "hostname may be quoted", "hostname: \"mx-1.example.net\"\n", {
		"hostname=mx-1.example.net ",
	} },
	{ "dns servers with and without port", "dns:\n  servers:\n"
	  "    - 127.0.0.2\n    - 127.0.0.3:5300\n    - '[::1]:5353'\n"
	  "    - '[::1]'\n", {
		"dns=127.0.0.2:53,127.0.0.3:5300,::1:5353,::1:53, ",
	} },
	{ "tls settings", "tls:\n  ca_file: /etc/ssl/certs/ca-certificates.crt\n"
	  "  min_version: 1.3\n", {
		"ca_file=/etc/ssl/certs/ca-certificates.crt tls=13 ",
	} },
	{ "min_version may be quoted", "tls: {min_version: '1.2'}\n", {
		"tls=12 ",
	} },
	{ "policy none", "policy:\n  default: none\n", { "policy=none " } },
	{ "policy encrypt", "policy:\n  default: 'encrypt'\n", {
		"policy=encrypt ",
	} },
	{ "limits are stored", "limits:\n  max_connections: 1\n"
	  "  max_message_size: 9223372036854775807\n  max_recipients: 100\n"
	  "  max_mx_hosts: 2\n  max_addresses: 3\n", {
		"connections=1 size=9223372036854775807 recipients=100 mx=2 addresses=3 ",
	} },
	{ "timeouts become milliseconds", "limits:\n  timeouts:\n"
	  "    command: 1\n    data: 2\n    dns: 3\n    connect: 4\n"
	  "    greeting: 5\n    tls: 6\n    reply: 7\n    final: 86400\n", {
		"timeouts=1000,2000,3000,4000,5000,6000,7000,86400000 ",
	} },
	{ "some timeouts keep defaults", "limits: {timeouts: {dns: 5}}\n", {
		"timeouts=300000,180000,5000,30000,",
	} },
	{ "log level debug", "log:\n  level: debug\n", { "log=debug " } },
	{ "log level error", "log: {level: error}\n", { "log=error " } },
	{ "quoted keys and document markers", "---\n\"log\": {'level': warn}\n...\n", {
		"log=warn ",
	} },
	{ "comments are ignored", "# top\nlog: # here\n  # inside\n  level: info # end\n", {
		"log=info ",
	} },
};

static void test_conf_valid_files(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(valid_cases); i++) {
		const struct valid_case *c = &valid_cases[i];
		char summary[SUMMARY_MAX];
		char err[CONF_ERR_MAX];
		struct conf *conf;
		char path[64];
		int rc;

		rc = load_text(c->yaml, &conf, path, err, sizeof(err));
		if (rc != 0)
			fail_msg("%s: load failed: %s", c->name, err);
		summarize(conf, summary, sizeof(summary));
		for (size_t e = 0; e < EXPECT_MAX && c->expect[e]; e++)
			if (strstr(summary, c->expect[e]) == NULL)
				fail_msg("%s: expected '%s' in '%s'", c->name,
					 c->expect[e], summary);
		conf_free(conf);
	}
}

static void test_conf_path_is_kept(void **state)
{
	char err[CONF_ERR_MAX];
	struct conf *conf;
	char path[64];

	assert_int_equal(load_text("log: {level: info}\n", &conf, path, err,
				   sizeof(err)), 0);
	assert_string_equal(conf->path, path);
	conf_free(conf);
}

static void test_conf_hostname_defaults_to_system(void **state)
{
	char name[256] = "";
	char err[CONF_ERR_MAX];
	struct conf *conf;
	char path[64];

	assert_int_equal(gethostname(name, sizeof(name) - 1), 0);
	assert_int_equal(load_text("{}\n", &conf, path, err, sizeof(err)), 0);
	assert_string_equal(conf->hostname, name);
	conf_free(conf);
}

/*
 * Finds the example through the path this file was compiled under, so the
 * test runs from the repository root or after a build with absolute paths.
 */
static void test_conf_example_file_loads(void **state)
{
	const char *suffix = "test/unit/test_conf.c";
	size_t prefix = strlen(__FILE__);
	char err[CONF_ERR_MAX];
	struct conf *conf;
	char path[1024];

	prefix = prefix >= strlen(suffix) ? prefix - strlen(suffix) : 0;
	snprintf(path, sizeof(path), "%.*sconf/mxlock.yaml", (int)prefix,
		 __FILE__);
	if (conf_load(path, &conf, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_string_equal(conf->hostname, "relay.example.org");
	assert_string_equal(conf->tls_ca_file,
			    "/etc/ssl/certs/ca-certificates.crt");
	assert_int_equal(conf->listen_count, 1);
	assert_int_equal(conf->limits.timeouts.final, 600000);
	conf_free(conf);
}

/* ---- broken files ---- */

struct broken_case {
	const char *name;
	const char *yaml;
	const char *position;		/* "LINE:COLUMN" */
	const char *message;		/* substring of the message */
};

static const struct broken_case broken_cases[] = {
	/* structure */
	{ "empty file", "", "1:1", "the file is empty" },
	{ "only comments", "# nothing\n", "1:1", "the file is empty" },
	{ "root is a list", "- listen\n", "1:1",
	  "the top level must be a mapping of settings such as 'listen:', found a list" },
	{ "root is a scalar", "listen\n", "1:1", "found 'listen'" },
	{ "root is empty document", "---\n", "2:1", "found an empty value" },
	{ "second document", "log: {level: info}\n---\nlog: {level: info}\n",
	  "2:1", "second YAML document" },
	{ "unknown top-level key", "log: {level: info}\nlisen: []\n", "2:1",
	  "unknown key 'lisen' in the top level; expected one of: listen, clients, "
	  "hostname, dns, tls, policy, limits, log" },
	{ "unknown nested key", "limits:\n  timeouts:\n    datta: 5\n", "3:5",
	  "unknown key 'datta' in 'limits.timeouts'; expected one of: command, data," },
	{ "unknown listen entry key", "listen:\n  - address: 127.0.0.1\n    prot: 25\n",
	  "3:5", "unknown key 'prot' in a 'listen' entry; expected one of: address, port" },
	{ "duplicate top-level key", "log: {level: info}\nhostname: a.example\n"
	  "log: {level: warn}\n", "3:1",
	  "duplicate key 'log' in the top level (first at line 1, column 1)" },
	{ "duplicate nested key", "tls:\n  min_version: 1.2\n  min_version: 1.3\n",
	  "3:3", "duplicate key 'min_version' in 'tls' (first at line 2, column 3)" },
	{ "mapping key is a list", "? [a, b]\n: c\n", "1:3",
	  "a mapping key must be a name" },

	/* YAML features */
	{ "anchor", "limits:\n  max_recipients: &n 10\n", "2:19",
	  "YAML anchors such as '&n' are not supported" },
	{ "alias", "limits:\n  max_recipients: 10\n  max_mx_hosts: *n\n", "3:17",
	  "YAML aliases such as '*n' are not supported" },
	{ "anchor and alias", "a: &x 1\nb: *x\n", "1:4", "anchors such as '&x'" },
	{ "alias as key", "log:\n  *lvl : info\n", "2:3", "aliases such as '*lvl'" },
	{ "tag", "hostname: !!str relay.example.org\n", "1:11",
	  "YAML tags such as 'tag:yaml.org,2002:str' are not supported" },
	{ "unclosed quote", "hostname: \"relay\n", "2:1", "invalid YAML: found unexpected end of stream" },
	{ "bad indentation", "log:\n  level: info\n bad: 1\n", "3:2",
	  "invalid YAML: did not find expected key" },
	{ "tab indentation", "log:\n\tlevel: info\n", "2:1",
	  "(indent with spaces, not tabs)" },
	{ "invalid UTF-8", "hostname: \"\xff\"\n", "1:12", "invalid YAML: invalid" },
	{ "too deep", "log: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
	  "1:38", "nested more than 32 levels" },

	/* types */
	{ "listen is a scalar", "listen: 127.0.0.1\n", "1:9",
	  "'listen' must be a list of addresses and ports, found '127.0.0.1'" },
	{ "listen is empty", "listen: []\n", "1:9",
	  "'listen' is an empty list; give at least one entry" },
	{ "listen has no value", "listen:\nlog: {level: info}\n", "1:8",
	  "'listen' must be a list of addresses and ports, found an empty value" },
	{ "listen entry is a scalar", "listen:\n  - 127.0.0.1:25\n", "2:5",
	  "each 'listen' entry must be a mapping with 'address' and 'port'" },
	{ "tls is a list", "tls: [a]\n", "1:6",
	  "'tls' must be a mapping of settings, found a list" },
	{ "hostname is a mapping", "hostname: {a: b}\n", "1:11",
	  "'hostname' must be a host name, found a mapping" },
	{ "port is a list", "listen:\n  - {address: 127.0.0.1, port: [25]}\n", "2:32",
	  "'listen.port' must be an integer, found a list" },
	{ "string with NUL", "hostname: \"a\\0b\"\n", "1:11", "contains a NUL character" },

	/* integers */
	{ "integer with garbage", "limits: {max_connections: 10x}\n", "1:27",
	  "'limits.max_connections' must be a whole decimal number, found '10x'" },
	{ "integer negative", "limits: {max_recipients: -1}\n", "1:26",
	  "'limits.max_recipients' must not be negative, found '-1'" },
	{ "integer overflow", "limits: {max_message_size: 99999999999999999999}\n", "1:28",
	  "'limits.max_message_size' must be from 1 to 9223372036854775807" },
	{ "integer above unsigned", "limits: {max_mx_hosts: 4294967296}\n", "1:24",
	  "must be from 1 to 4294967295, found '4294967296'" },
	{ "integer leading zero", "limits: {max_addresses: 010}\n", "1:25",
	  "must not start with 0, found '010'" },
	{ "integer quoted", "limits: {max_addresses: '10'}\n", "1:25",
	  "must be an integer without quotes, found '10'" },
	{ "integer empty", "limits:\n  max_addresses:\n", "2:17",
	  "must be a whole decimal number, found an empty value" },
	{ "integer with sign", "limits: {max_addresses: +5}\n", "1:25",
	  "must be a whole decimal number" },
	{ "integer zero", "limits: {max_connections: 0}\n", "1:27",
	  "must be from 1 to 4294967295, found '0'" },
	{ "timeout zero", "limits: {timeouts: {dns: 0}}\n", "1:26",
	  "'limits.timeouts.dns' must be from 1 to 86400, found '0'" },
	{ "timeout too long", "limits:\n  timeouts:\n    final: 86401\n", "3:12",
	  "'limits.timeouts.final' must be from 1 to 86400" },
	{ "timeout fraction", "limits: {timeouts: {tls: 1.5}}\n", "1:26",
	  "must be a whole decimal number, found '1.5'" },

	/* listen */
	{ "port zero", "listen:\n  - address: 127.0.0.1\n    port: 0\n", "3:11",
	  "'listen.port' must be from 1 to 65535, found '0'" },
	{ "port too large", "listen:\n  - address: 127.0.0.1\n    port: 65536\n", "3:11",
	  "'listen.port' must be from 1 to 65535, found '65536'" },
	{ "listen address invalid", "listen:\n  - address: 127.0.0.256\n    port: 25\n",
	  "2:14", "'listen.address' must be an IPv4 or IPv6 address, found '127.0.0.256'" },
	{ "listen address host name", "listen:\n  - {address: localhost, port: 25}\n",
	  "2:15", "must be an IPv4 or IPv6 address, found 'localhost'" },
	{ "listen address in brackets", "listen:\n  - {address: '[::1]', port: 25}\n",
	  "2:15", "must be an IP address without brackets" },
	{ "listen entry without port", "listen:\n  - address: 127.0.0.1\n", "2:5",
	  "this 'listen' entry has no 'port'" },
	{ "listen entry without address", "listen:\n  - port: 25\n", "2:5",
	  "this 'listen' entry has no 'address'" },
	{ "listen entry twice", "listen:\n  - {address: 127.0.0.1, port: 25}\n"
	  "  - {address: 127.0.0.1, port: 26}\n  - {address: 127.0.0.1, port: 25}\n",
	  "4:5", "'listen' lists 127.0.0.1 port 25 twice" },

	/* clients */
	{ "clients empty", "clients: []\n", "1:10", "'clients' is an empty list; give at least one entry" },
	{ "clients prefix too long", "clients: [10.0.0.0/33]\n", "1:11",
	  "'clients' entry '10.0.0.0/33' has an invalid prefix length; expected /0 to /32" },
	{ "clients IPv6 prefix too long", "clients: ['::1/129']\n", "1:11",
	  "expected /0 to /128" },
	{ "clients prefix missing", "clients: [10.0.0.0/]\n", "1:11",
	  "has an invalid prefix length" },
	{ "clients prefix garbage", "clients: [10.0.0.0/8a]\n", "1:11",
	  "has an invalid prefix length" },
	{ "clients host bits", "clients:\n  - 127.0.0.1/8\n", "2:5",
	  "network '127.0.0.1/8' has bits set after the /8 prefix; did you mean '127.0.0.0/8'?" },
	{ "clients IPv6 host bits", "clients: ['2001:db8::1/64']\n", "1:11",
	  "did you mean '2001:db8::/64'?" },
	{ "clients not an address", "clients: [localhost]\n", "1:11",
	  "'clients' entry 'localhost' is not an IPv4 or IPv6 network" },
	{ "clients entry is a mapping", "clients: [{a: b}]\n", "1:11",
	  "'clients' must be a network such as '127.0.0.0/8', found a mapping" },

	/* hostname */
	{ "hostname underscore", "hostname: bad_name.example\n", "1:11",
	  "'hostname' must be a host name such as 'mail.example.org', found 'bad_name.example'" },
	{ "hostname leading hyphen", "hostname: -relay.example\n", "1:11",
	  "must be a host name" },
	{ "hostname trailing hyphen", "hostname: relay-.example\n", "1:11",
	  "must be a host name" },
	{ "hostname is an address", "hostname: 192.0.2.1\n", "1:11",
	  "must be a host name" },
	{ "hostname empty", "hostname: ''\n", "1:11", "must be a host name" },
	{ "hostname empty label", "hostname: a..example\n", "1:11", "must be a host name" },

	/* dns */
	{ "dns servers empty", "dns: {servers: []}\n", "1:16",
	  "'dns.servers' is an empty list" },
	{ "dns server IPv6 without brackets", "dns:\n  servers: ['::1']\n", "2:13",
	  "write IPv6 addresses in brackets, such as '[::1]:53'" },
	{ "dns server port zero", "dns: {servers: ['127.0.0.1:0']}\n", "1:17",
	  "'dns.servers' entry '127.0.0.1:0' has an invalid port" },
	{ "dns server port too large", "dns: {servers: ['127.0.0.1:65536']}\n", "1:17",
	  "has an invalid port; expected 1 to 65535" },
	{ "dns server port empty", "dns: {servers: ['127.0.0.1:']}\n", "1:17",
	  "has an invalid port" },
	{ "dns server IPv4 in brackets", "dns: {servers: ['[127.0.0.1]:53']}\n", "1:17",
	  "must be 'ip:port' or '[ipv6]:port'" },
	{ "dns server host name", "dns: {servers: ['localhost:53']}\n", "1:17",
	  "must be 'ip:port' or '[ipv6]:port'" },
	{ "dns server unclosed bracket", "dns: {servers: ['[::1:53']}\n", "1:17",
	  "must be 'ip:port' or '[ipv6]:port'" },
	{ "dns is a scalar", "dns: 127.0.0.1\n", "1:6",
	  "'dns' must be a mapping of settings, found '127.0.0.1'" },

	/* tls */
	{ "ca_file missing", "tls:\n  ca_file: /nonexistent/ca.pem\n", "2:12",
	  "'tls.ca_file' '/nonexistent/ca.pem' cannot be read: No such file or directory" },
	{ "ca_file is a folder", "tls: {ca_file: /tmp}\n", "1:16",
	  "'tls.ca_file' '/tmp' is not a regular file" },
	{ "ca_file empty", "tls: {ca_file: ''}\n", "1:16", "'tls.ca_file' is empty" },
	{ "min_version 1.1", "tls: {min_version: 1.1}\n", "1:20",
	  "'tls.min_version' must be 1.2 or 1.3, found '1.1'" },
	{ "min_version 1.20", "tls: {min_version: 1.20}\n", "1:20", "must be 1.2 or 1.3" },

	/* policy and log */
	{ "policy dane not yet", "policy: {default: dane}\n", "1:19",
	  "security level 'dane' is not supported yet; use none, may or encrypt" },
	{ "policy dane-only not yet", "policy: {default: dane-only}\n", "1:19",
	  "'dane-only' is not supported yet" },
	{ "policy verify not yet", "policy: {default: verify}\n", "1:19",
	  "'verify' is not supported yet" },
	{ "policy secure not yet", "policy: {default: secure}\n", "1:19",
	  "'secure' is not supported yet" },
	{ "policy unknown level", "policy:\n  default: maybe\n", "2:12",
	  "'policy.default' must be none, may or encrypt, found 'maybe'" },
	{ "policy level is case sensitive", "policy: {default: MAY}\n", "1:19",
	  "must be none, may or encrypt" },
	{ "log level unknown", "log: {level: verbose}\n", "1:14",
	  "'log.level' must be error, warn, info or debug, found 'verbose'" },
};

static void check_broken(const struct broken_case *c)
{
	char expected[128];
	char err[CONF_ERR_MAX];
	struct conf *conf = (struct conf *)1;
	char path[64];
	int rc;

	rc = load_text(c->yaml, &conf, path, err, sizeof(err));
	if (rc == 0) {
		conf_free(conf);
		fail_msg("%s: loaded without error", c->name);
	}
	assert_int_equal(rc, BASE_EINVAL);
	assert_null(conf);

	snprintf(expected, sizeof(expected), "%s:%s: ", path, c->position);
	if (strncmp(err, expected, strlen(expected)) != 0)
		fail_msg("%s: expected position '%s' in '%s'", c->name,
			 expected, err);
	if (strstr(err, c->message) == NULL)
		fail_msg("%s: expected '%s' in '%s'", c->name, c->message, err);
}

static void test_conf_broken_files(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(broken_cases); i++)
		check_broken(&broken_cases[i]);
}

static void test_conf_missing_file(void **state)
{
	char err[CONF_ERR_MAX];
	struct conf *conf;

	assert_int_equal(conf_load("/nonexistent/mxlock.yaml", &conf, err,
				   sizeof(err)), BASE_ENOTFOUND);
	assert_null(conf);
	assert_string_equal(err,
			    "/nonexistent/mxlock.yaml: cannot open the file: "
			    "No such file or directory");
}

static void test_conf_folder_is_rejected(void **state)
{
	char err[CONF_ERR_MAX];
	struct conf *conf;

	assert_int_equal(conf_load("/tmp", &conf, err, sizeof(err)),
			 BASE_EINVAL);
	assert_null(conf);
	assert_string_equal(err, "/tmp: not a regular file");
}

static void test_conf_large_file_is_rejected(void **state)
{
	char *text = malloc(2 * 1024 * 1024);
	char err[CONF_ERR_MAX];
	struct conf *conf;
	char path[64];

	assert_non_null(text);
	memset(text, '#', 2 * 1024 * 1024 - 1);
	text[2 * 1024 * 1024 - 1] = '\0';
	assert_int_equal(load_text(text, &conf, path, err, sizeof(err)),
			 BASE_ETOOLONG);
	free(text);
	assert_null(conf);
	assert_non_null(strstr(err, "the file is larger than 1048576 bytes"));
}

static void test_conf_error_fits_small_buffer(void **state)
{
	char err[16];
	struct conf *conf;
	char path[64];

	assert_int_equal(load_text("lisen: []\n", &conf, path, err,
				   sizeof(err)),
			 BASE_EINVAL);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_int_equal(load_text("lisen: []\n", &conf, path, NULL, 0),
			 BASE_EINVAL);
}

/* ---- client networks ---- */

struct client_case {
	const char *name;
	const char *clients;		/* YAML flow list */
	const char *address;
	bool allowed;
};

static const struct client_case client_cases[] = {
	{ "default allows IPv4 loopback", NULL, "127.0.0.1", true },
	{ "default allows any 127/8", NULL, "127.255.0.9", true },
	{ "default allows IPv6 loopback", NULL, "::1", true },
	{ "default allows mapped loopback", NULL, "::ffff:127.0.0.1", true },
	{ "default rejects other IPv4", NULL, "192.0.2.1", false },
	{ "default rejects other IPv6", NULL, "2001:db8::1", false },
	{ "default rejects mapped other", NULL, "::ffff:192.0.2.1", false },
	{ "default rejects IPv4-compatible", NULL, "::127.0.0.1", false },
	{ "odd prefix inside", "[10.0.0.128/25]", "10.0.0.200", true },
	{ "odd prefix outside", "[10.0.0.128/25]", "10.0.0.127", false },
	{ "host entry matches itself", "[192.0.2.7]", "192.0.2.7", true },
	{ "host entry rejects neighbour", "[192.0.2.7]", "192.0.2.6", false },
	{ "zero prefix allows all IPv4", "[0.0.0.0/0]", "203.0.113.5", true },
	{ "zero prefix IPv4 skips IPv6", "[0.0.0.0/0]", "2001:db8::1", false },
	{ "IPv6 network inside", "['2001:db8:1::/48']", "2001:db8:1:ff::1", true },
	{ "IPv6 network outside", "['2001:db8:1::/48']", "2001:db8:2::1", false },
	{ "IPv6 network skips IPv4", "['::/0']", "192.0.2.1", false },
	{ "mapped matches IPv4 network", "[192.0.2.0/24]", "::ffff:192.0.2.9", true },
	{ "second network matches", "[10.0.0.0/8, 192.0.2.0/24]", "192.0.2.1", true },
};

static void address_parse(const char *text, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		return;
	}
	assert_int_equal(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1);
	sin6->sin6_family = AF_INET6;
}

static void test_conf_client_allowed(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(client_cases); i++) {
		const struct client_case *c = &client_cases[i];
		struct sockaddr_storage ss;
		char yaml[256] = "{}\n";
		char err[CONF_ERR_MAX];
		struct conf *conf;
		char path[64];
		bool allowed;

		if (c->clients)
			snprintf(yaml, sizeof(yaml), "clients: %s\n",
				 c->clients);
		if (load_text(yaml, &conf, path, err, sizeof(err)) != 0)
			fail_msg("%s: load failed: %s", c->name, err);
		address_parse(c->address, &ss);
		allowed = conf_client_allowed(conf, (struct sockaddr *)&ss);
		conf_free(conf);
		if (allowed != c->allowed)
			fail_msg("%s: %s expected %s", c->name, c->address,
				 c->allowed ? "allowed" : "rejected");
	}
}

static void test_conf_client_allowed_rejects_unix(void **state)
{
	struct sockaddr sa = { .sa_family = AF_UNIX };
	char err[CONF_ERR_MAX];
	struct conf *conf;
	char path[64];

	assert_int_equal(load_text("{}\n", &conf, path, err, sizeof(err)), 0);
	assert_false(conf_client_allowed(conf, &sa));
	assert_false(conf_client_allowed(NULL, &sa));
	conf_free(conf);
}

/* ---- names and freeing ---- */

static void test_conf_level_names(void **state)
{
	assert_string_equal(conf_level_name(CONF_LEVEL_NONE), "none");
	assert_string_equal(conf_level_name(CONF_LEVEL_MAY), "may");
	assert_string_equal(conf_level_name(CONF_LEVEL_ENCRYPT), "encrypt");
	assert_string_equal(conf_level_name((enum conf_level)42), "unknown");
}

static void test_conf_free_null(void **state)
{
	conf_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conf_valid_files),
		cmocka_unit_test(test_conf_path_is_kept),
		cmocka_unit_test(test_conf_hostname_defaults_to_system),
		cmocka_unit_test(test_conf_example_file_loads),
		cmocka_unit_test(test_conf_broken_files),
		cmocka_unit_test(test_conf_missing_file),
		cmocka_unit_test(test_conf_folder_is_rejected),
		cmocka_unit_test(test_conf_large_file_is_rejected),
		cmocka_unit_test(test_conf_error_fits_small_buffer),
		cmocka_unit_test(test_conf_client_allowed),
		cmocka_unit_test(test_conf_client_allowed_rejects_unix),
		cmocka_unit_test(test_conf_level_names),
		cmocka_unit_test(test_conf_free_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
