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

#define SUMMARY_MAX 2048
#define EXPECT_MAX 8
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

static const char *bool_text(bool value)
{
	return value ? "true" : "false";
}

/*
 * Appends each rule as "domain/level/match|match/until/line," with "-" for
 * an empty match list.
 */
static void append_rules(char *buf, size_t size, const struct conf *c)
{
	append(buf, size, " rules=");
	for (size_t i = 0; i < c->rule_count; i++) {
		const struct conf_rule *r = &c->rules[i];

		append(buf, size, "%s/%s/", r->domain,
		       conf_level_name(r->level));
		if (r->match_count == 0)
			append(buf, size, "-");
		for (size_t m = 0; m < r->match_count; m++)
			append(buf, size, "%s%s", m ? "|" : "", r->match[m]);
		append(buf, size, "/%lld/%u,", (long long)r->until, r->line);
	}
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
		append(buf, size, "%s:%u%s,", c->listen[i].address,
		       c->listen[i].port,
		       c->listen[i].mode == CONF_LISTEN_TRANSPARENT ?
		       "/transparent" : "");
	append(buf, size, " clients=");
	for (size_t i = 0; i < c->client_count; i++)
		append_network(buf, size, &c->clients[i]);
	append(buf, size, " hostname=%s dns=", c->hostname);
	for (size_t i = 0; i < c->dns_server_count; i++)
		append(buf, size, "%s:%u,", c->dns_servers[i].address,
		       c->dns_servers[i].port);
	append(buf, size, " trust_ad=%s probe=%s",
	       bool_text(c->dns_trust_ad),
	       c->dns_probe[0] ? c->dns_probe : "(root)");
	append(buf, size, " ca_file=%s tls=%d policy=%s",
	       c->tls_ca_file ? c->tls_ca_file : "(none)", c->tls_min_version,
	       conf_level_name(c->policy_default));
	append(buf, size, " dane=%s insecure_mx=%s mta_sts=%s",
	       bool_text(c->policy_dane), bool_text(c->policy_dane_insecure_mx),
	       bool_text(c->policy_mta_sts));
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
	append(buf, size, " server_cert=%s server_key=%s",
	       c->tls_server_cert ? c->tls_server_cert : "(none)",
	       c->tls_server_key ? c->tls_server_key : "(none)");
	append(buf, size, " unmatched=%s mark=%u",
	       conf_unmatched_name(c->transparent_unmatched),
	       (unsigned)c->transparent_mark);
	append(buf, size, " state_dir=%s", c->state_dir);
	append_rules(buf, size, c);
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
		"dns=127.0.0.1:53, ",
		" ca_file=(none) tls=12 policy=may ",
		"connections=1000 size=104857600 recipients=1000 mx=5 addresses=10 ",
		"timeouts=300000,180000,10000,30000,300000,60000,300000,600000 ",
		" trust_ad=false probe=(root) ",
		" dane=true insecure_mx=false mta_sts=true ",
		" state_dir=/var/lib/mxlock rules= log=info ",
	} },
	{ "empty mapping gives TLS server and transparent defaults", "{}\n", {
		" server_cert=(none) server_key=(none) unmatched=reroute mark=0 ",
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
	{ "dns trust_ad true", "dns:\n  trust_ad: true\n", { " trust_ad=true " } },
	{ "dns trust_ad false", "dns: {trust_ad: false}\n", { " trust_ad=false " } },
	{ "dns probe is lowercased", "dns: {probe: Signed.Example.}\n", {
		" probe=signed.example ",
	} },
	{ "dns probe root plain", "dns:\n  probe: .\n", { " probe=(root) " } },
	{ "dns probe root quoted", "dns: {probe: '.'}\n", { " probe=(root) " } },
	{ "dns probe with underscore", "dns: {probe: _probe.example.org}\n", {
		" probe=_probe.example.org ",
	} },
	{ "tls settings", "tls:\n  ca_file: /etc/ssl/certs/ca-certificates.crt\n"
	  "  min_version: 1.3\n", {
		"ca_file=/etc/ssl/certs/ca-certificates.crt tls=13 ",
	} },
	{ "min_version may be quoted", "tls: {min_version: '1.2'}\n", {
		"tls=12 ",
	} },
	{ "tls server certificate and key", "tls:\n  server_cert: /etc/hostname\n"
	  "  server_key: /etc/hosts\n", {
		" server_cert=/etc/hostname server_key=/etc/hosts ",
	} },
	{ "listen mode relay and transparent", "listen:\n"
	  "  - {address: 127.0.0.1, port: 10025, mode: relay}\n"
	  "  - {address: '::', port: 10026, mode: transparent}\n", {
		"listen=127.0.0.1:10025,:::10026/transparent, ",
	} },
	{ "transparent settings", "transparent:\n  unmatched: passthrough\n"
	  "  mark: 4294967295\n", {
		" unmatched=passthrough mark=4294967295 ",
	} },
	{ "transparent unmatched defer", "transparent: {unmatched: defer, mark: 0}\n", {
		" unmatched=defer mark=0 ",
	} },
	{ "policy none", "policy:\n  default: none\n", { "policy=none " } },
	{ "policy encrypt", "policy:\n  default: 'encrypt'\n", {
		"policy=encrypt ",
	} },
	{ "policy dane", "policy: {default: dane}\n", { "policy=dane " } },
	{ "policy dane-only", "policy: {default: dane-only}\n", {
		"policy=dane-only ",
	} },
	{ "policy verify", "policy: {default: verify}\n", { "policy=verify " } },
	{ "policy switches", "policy:\n  dane: false\n  dane_insecure_mx: true\n"
	  "  mta_sts: false\n", {
		" dane=false insecure_mx=true mta_sts=false ",
	} },
	{ "policy switches explicit defaults", "policy: {dane: true, "
	  "dane_insecure_mx: false, mta_sts: true}\n", {
		" dane=true insecure_mx=false mta_sts=true ",
	} },
	{ "rules are normalized", "policy:\n  rules:\n"
	  "    - domain: Legacy.Example.NET.\n      level: none\n"
	  "      until: 2030-01-31\n"
	  "    - {domain: example.com, level: secure,\n"
	  "       match: [MX.example.com., '*.Mail.Example.COM']}\n", {
		" rules=legacy.example.net/none/-/1896048000/3,"
		"example.com/secure/mx.example.com|*.mail.example.com/0/6, ",
	} },
	{ "rules empty list", "policy: {rules: []}\n", { " rules= log=" } },
	{ "rules take every level", "policy:\n  rules:\n"
	  "    - {domain: a.example, level: none}\n"
	  "    - {domain: b.example, level: may}\n"
	  "    - {domain: c.example, level: encrypt}\n"
	  "    - {domain: d.example, level: dane}\n"
	  "    - {domain: e.example, level: dane-only}\n"
	  "    - {domain: f.example, level: verify}\n", {
		" rules=a.example/none/-/0/3,b.example/may/-/0/4,",
		"c.example/encrypt/-/0/5,d.example/dane/-/0/6,",
		"e.example/dane-only/-/0/7,f.example/verify/-/0/8, ",
	} },
	{ "rule until is midnight UTC", "policy:\n  rules:\n"
	  "    - {domain: a.example, level: may, until: '2028-02-29'}\n"
	  "    - {domain: b.example, level: may, until: 2000-01-01}\n"
	  "    - {domain: c.example, level: may, until: 2000-03-01}\n"
	  "    - {domain: d.example, level: may, until: 2100-03-01}\n"
	  "    - {domain: e.example, level: may, until: 9999-12-31}\n", {
		"a.example/may/-/1835395200/3,",
		"b.example/may/-/946684800/4,",
		"c.example/may/-/951868800/5,",
		"d.example/may/-/4107542400/6,",
		"e.example/may/-/253402214400/7,",
	} },
	{ "rule until in the past", "policy:\n  rules:\n"
	  "    - {domain: a.example, level: may, until: 2001-01-01}\n", {
		" rules=a.example/may/-/978307200/3, ",
	} },
	{ "state_dir absolute", "state_dir: /srv/mxlock/state\n", {
		" state_dir=/srv/mxlock/state ",
	} },
	{ "state_dir relative", "state_dir: 'state'\n", { " state_dir=state " } },
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
	assert_false(conf->dns_trust_ad);
	assert_string_equal(conf->dns_probe, "");
	assert_int_equal(conf->policy_default, CONF_LEVEL_MAY);
	assert_true(conf->policy_dane);
	assert_false(conf->policy_dane_insecure_mx);
	assert_true(conf->policy_mta_sts);
	assert_int_equal(conf->rule_count, 0);
	assert_string_equal(conf->state_dir, "/var/lib/mxlock");
	assert_null(conf->tls_server_cert);
	assert_null(conf->tls_server_key);
	assert_int_equal(conf->listen[0].mode, CONF_LISTEN_RELAY);
	assert_false(conf_has_transparent(conf));
	assert_int_equal(conf->transparent_unmatched, CONF_UNMATCHED_REROUTE);
	assert_int_equal(conf->transparent_mark, 0);
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
	  "hostname, dns, tls, policy, limits, log, state_dir, transparent" },
	{ "unknown nested key", "limits:\n  timeouts:\n    datta: 5\n", "3:5",
	  "unknown key 'datta' in 'limits.timeouts'; expected one of: command, data," },
	{ "unknown listen entry key", "listen:\n  - address: 127.0.0.1\n    prot: 25\n",
	  "3:5", "unknown key 'prot' in a 'listen' entry; expected one of: address, port, mode" },
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
	{ "dns unknown key", "dns:\n  trust-ad: true\n", "2:3",
	  "unknown key 'trust-ad' in 'dns'; expected one of: servers, trust_ad, probe" },
	{ "dns trust_ad yes", "dns: {trust_ad: yes}\n", "1:17",
	  "'dns.trust_ad' must be true or false without quotes, found 'yes'" },
	{ "dns trust_ad quoted", "dns: {trust_ad: 'true'}\n", "1:17",
	  "'dns.trust_ad' must be true or false without quotes, found 'true'" },
	{ "dns trust_ad capitalized", "dns: {trust_ad: True}\n", "1:17",
	  "must be true or false without quotes, found 'True'" },
	{ "dns trust_ad number", "dns: {trust_ad: 1}\n", "1:17",
	  "must be true or false without quotes, found '1'" },
	{ "dns trust_ad empty", "dns:\n  trust_ad:\n", "2:12",
	  "'dns.trust_ad' must be true or false without quotes, found an empty value" },
	{ "dns trust_ad is a list", "dns: {trust_ad: [true]}\n", "1:17",
	  "'dns.trust_ad' must be true or false, found a list" },
	{ "dns trust_ad twice", "dns:\n  trust_ad: true\n  trust_ad: false\n", "3:3",
	  "duplicate key 'trust_ad' in 'dns' (first at line 2, column 3)" },
	{ "dns probe with space", "dns: {probe: 'bad name'}\n", "1:14",
	  "'dns.probe' must be a DNS name such as 'example.org', or '.' for the root, "
	  "found 'bad name'" },
	{ "dns probe empty", "dns: {probe: ''}\n", "1:14",
	  "'dns.probe' must be a DNS name such as 'example.org', or '.' for the root, "
	  "found ''" },
	{ "dns probe no value", "dns:\n  probe:\n", "2:9", "found an empty value" },
	{ "dns probe two dots", "dns: {probe: '..'}\n", "1:14",
	  "'dns.probe' must be a DNS name" },
	{ "dns probe empty label", "dns: {probe: a..example}\n", "1:14",
	  "'dns.probe' must be a DNS name" },
	{ "dns probe is a list", "dns: {probe: [a.example]}\n", "1:14",
	  "'dns.probe' must be a DNS name, found a list" },

	/* tls */
	{ "ca_file missing", "tls:\n  ca_file: /nonexistent/ca.pem\n", "2:12",
	  "'tls.ca_file' '/nonexistent/ca.pem' cannot be read: No such file or directory" },
	{ "ca_file is a folder", "tls: {ca_file: /tmp}\n", "1:16",
	  "'tls.ca_file' '/tmp' is not a regular file" },
	{ "ca_file empty", "tls: {ca_file: ''}\n", "1:16", "'tls.ca_file' is empty" },
	{ "min_version 1.1", "tls: {min_version: 1.1}\n", "1:20",
	  "'tls.min_version' must be 1.2 or 1.3, found '1.1'" },
	{ "min_version 1.20", "tls: {min_version: 1.20}\n", "1:20", "must be 1.2 or 1.3" },
	{ "server_cert without server_key", "tls:\n  min_version: 1.2\n"
	  "  server_cert: /etc/hostname\n", "3:3",
	  "'tls.server_cert' is set but 'tls.server_key' is not; give both, or neither" },
	{ "server_key without server_cert", "tls: {server_key: /etc/hostname}\n", "1:7",
	  "'tls.server_key' is set but 'tls.server_cert' is not; give both, or neither" },
	{ "server_cert missing", "tls:\n  server_cert: /nonexistent/cert.pem\n"
	  "  server_key: /etc/hostname\n", "2:16",
	  "'tls.server_cert' '/nonexistent/cert.pem' cannot be read: No such file or directory" },
	{ "server_key is a folder", "tls: {server_cert: /etc/hostname, server_key: /tmp}\n",
	  "1:47", "'tls.server_key' '/tmp' is not a regular file" },
	{ "server_cert empty", "tls: {server_cert: '', server_key: /etc/hostname}\n",
	  "1:20", "'tls.server_cert' is empty; remove it or give the path of a PEM certificate chain" },

	/* listen mode and transparent */
	{ "listen mode unknown", "listen:\n  - {address: 127.0.0.1, port: 25, mode: redirect}\n",
	  "2:42", "'listen.mode' must be relay or transparent, found 'redirect'" },
	{ "listen mode without port", "listen:\n  - {address: 127.0.0.1, mode: transparent}\n",
	  "2:5", "this 'listen' entry has no 'port'" },
	{ "transparent unmatched unknown", "transparent:\n  unmatched: drop\n", "2:14",
	  "'transparent.unmatched' must be reroute, defer or passthrough, found 'drop'" },
	{ "transparent mark too large", "transparent: {mark: 4294967296}\n", "1:21",
	  "'transparent.mark' must be from 0 to 4294967295" },
	{ "transparent mark negative", "transparent: {mark: -1}\n", "1:21",
	  "'transparent.mark' must not be negative" },
	{ "transparent unknown key", "transparent: {user: mxlock}\n", "1:15",
	  "unknown key 'user' in 'transparent'; expected one of: unmatched, mark" },
	{ "transparent is a list", "transparent: [reroute]\n", "1:14",
	  "'transparent' must be a mapping of settings, found a list" },

	/* policy */
	{ "policy default secure", "policy: {default: secure}\n", "1:19",
	  "'policy.default' cannot be secure, because secure needs a 'match' list" },
	{ "policy unknown level", "policy:\n  default: maybe\n", "2:12",
	  "'policy.default' must be none, may, encrypt, dane, dane-only or verify, "
	  "found 'maybe'" },
	{ "policy level is case sensitive", "policy: {default: MAY}\n", "1:19",
	  "must be none, may, encrypt, dane, dane-only or verify" },
	{ "policy level with underscore", "policy: {default: dane_only}\n", "1:19",
	  "found 'dane_only'" },
	{ "policy unknown key", "policy: {dane_only: true}\n", "1:10",
	  "unknown key 'dane_only' in 'policy'; expected one of: default, dane, "
	  "dane_insecure_mx, mta_sts, rules" },
	{ "policy dane on", "policy: {dane: on}\n", "1:16",
	  "'policy.dane' must be true or false without quotes, found 'on'" },
	{ "policy dane_insecure_mx no", "policy:\n  dane_insecure_mx: no\n", "2:21",
	  "'policy.dane_insecure_mx' must be true or false without quotes, found 'no'" },
	{ "policy mta_sts off", "policy: {mta_sts: off}\n", "1:19",
	  "'policy.mta_sts' must be true or false without quotes, found 'off'" },
	{ "policy mta_sts is a mapping", "policy: {mta_sts: {a: b}}\n", "1:19",
	  "'policy.mta_sts' must be true or false, found a mapping" },

	/* policy.rules */
	{ "rules is a mapping", "policy: {rules: {domain: a.example}}\n", "1:17",
	  "'policy.rules' must be a list of rules, found a mapping" },
	{ "rules has no value", "policy:\n  rules:\n", "2:9",
	  "'policy.rules' must be a list of rules, found an empty value" },
	{ "rule is a scalar", "policy: {rules: [example.org]}\n", "1:18",
	  "each 'policy.rules' entry must be a mapping with 'domain' and 'level', "
	  "found 'example.org'" },
	{ "rule without domain", "policy:\n  rules:\n    - level: none\n", "3:7",
	  "this 'policy.rules' entry has no 'domain'" },
	{ "rule without level", "policy:\n  rules:\n    - domain: a.example\n", "3:7",
	  "this 'policy.rules' entry has no 'level'" },
	{ "rule unknown key", "policy:\n  rules:\n    - domain: a.example\n"
	  "      levle: none\n", "4:7",
	  "unknown key 'levle' in a 'policy.rules' entry; expected one of: domain, "
	  "level, match, until" },
	{ "rule key twice", "policy:\n  rules:\n    - domain: a.example\n"
	  "      level: none\n      level: may\n", "5:7",
	  "duplicate key 'level' in a 'policy.rules' entry (first at line 4, column 7)" },
	{ "rule domain underscore", "policy:\n  rules:\n"
	  "    - {domain: bad_name.example, level: none}\n", "3:16",
	  "'policy.rules.domain' must be a domain name such as 'example.org', "
	  "found 'bad_name.example'" },
	{ "rule domain is an address", "policy:\n  rules:\n"
	  "    - {domain: 192.0.2.1, level: none}\n", "3:16",
	  "'policy.rules.domain' must be a domain name" },
	{ "rule domain empty", "policy:\n  rules:\n"
	  "    - {domain: '', level: none}\n", "3:16",
	  "'policy.rules.domain' must be a domain name such as 'example.org', found ''" },
	{ "rule domain root", "policy:\n  rules:\n"
	  "    - {domain: ., level: none}\n", "3:16",
	  "'policy.rules.domain' must be a domain name" },
	{ "rule domain wildcard", "policy:\n  rules:\n"
	  "    - {domain: '*.example.org', level: none}\n", "3:16",
	  "'policy.rules.domain' must be one domain, found the wildcard '*.example.org'" },
	{ "rule domain is a list", "policy:\n  rules:\n"
	  "    - {domain: [a.example], level: none}\n", "3:16",
	  "'policy.rules.domain' must be a domain name, found a list" },
	{ "rule level unknown", "policy:\n  rules:\n"
	  "    - {domain: a.example, level: maybe}\n", "3:34",
	  "'policy.rules.level' must be none, may, encrypt, dane, dane-only, verify "
	  "or secure, found 'maybe'" },
	{ "rule secure without match", "policy:\n  rules:\n"
	  "    - domain: a.example\n      level: secure\n", "3:7",
	  "this 'policy.rules' entry has level secure but no 'match'" },
	{ "rule match without secure", "policy:\n  rules:\n"
	  "    - domain: a.example\n      level: verify\n"
	  "      match: [mx.a.example]\n", "5:7",
	  "'policy.rules.match' is allowed only with level secure, but this rule "
	  "has level verify" },
	{ "rule match before level none", "policy:\n  rules:\n"
	  "    - {domain: a.example, match: [mx.a.example], level: none}\n", "3:27",
	  "but this rule has level none" },
	{ "rule match empty", "policy:\n  rules:\n"
	  "    - {domain: a.example, level: secure, match: []}\n", "3:49",
	  "'policy.rules.match' is an empty list; give at least one entry" },
	{ "rule match is a scalar", "policy:\n  rules:\n"
	  "    - {domain: a.example, level: secure, match: mx.a.example}\n", "3:49",
	  "'policy.rules.match' must be a list of certificate names, found 'mx.a.example'" },
	{ "rule match double wildcard", "policy:\n  rules:\n"
	  "    - domain: a.example\n      level: secure\n"
	  "      match:\n        - mx.a.example\n        - '*.*.a.example'\n", "7:11",
	  "'policy.rules.match' entry '*.*.a.example' must be a host name such as "
	  "'mx.example.org' or a wildcard with one leading label such as '*.example.org'" },
	{ "rule match inner wildcard", "policy:\n  rules:\n"
	  "    - {domain: a.example, level: secure, match: ['mx.*.a.example']}\n",
	  "3:50", "entry 'mx.*.a.example' must be a host name" },
	{ "rule match bare star", "policy:\n  rules:\n"
	  "    - {domain: a.example, level: secure, match: ['*']}\n",
	  "3:50", "entry '*' must be a host name" },
	{ "rule match partial wildcard", "policy:\n  rules:\n"
	  "    - {domain: a.example, level: secure, match: ['*mx.a.example']}\n",
	  "3:50", "entry '*mx.a.example' must be a host name" },
	{ "rule match star dot only", "policy:\n  rules:\n"
	  "    - {domain: a.example, level: secure, match: ['*.']}\n",
	  "3:50", "entry '*.' must be a host name" },
	{ "rule match underscore", "policy:\n  rules:\n"
	  "    - {domain: a.example, level: secure, match: [mx_1.a.example]}\n",
	  "3:50", "entry 'mx_1.a.example' must be a host name" },
	{ "rule match is a mapping", "policy:\n  rules:\n"
	  "    - {domain: a.example, level: secure, match: [{a: b}]}\n", "3:50",
	  "'policy.rules.match' must be a host name or a wildcard such as "
	  "'*.example.org', found a mapping" },
	{ "rule match unquoted wildcard", "policy:\n  rules:\n"
	  "    - {domain: a.example, level: secure, match: [*.a.example]}\n", "3:51",
	  "(quote a value that starts with '*', such as '*.example.org')" },
	{ "rule until without zeros", "policy:\n  rules:\n"
	  "    - {domain: a.example, level: may, until: 2030-1-31}\n", "3:46",
	  "'policy.rules.until' must be a date in the form YYYY-MM-DD, such as "
	  "'2030-01-31', found '2030-1-31'" },
	{ "rule until with slashes", "policy:\n  rules:\n"
	  "    - {domain: a.example, level: may, until: 2030/01/31}\n", "3:46",
	  "must be a date in the form YYYY-MM-DD" },
	{ "rule until with time", "policy:\n  rules:\n"
	  "    - {domain: a.example, level: may, until: '2030-01-31T00:00:00Z'}\n",
	  "3:46", "must be a date in the form YYYY-MM-DD" },
	{ "rule until digits only", "policy:\n  rules:\n"
	  "    - {domain: a.example, level: may, until: 20300131}\n", "3:46",
	  "must be a date in the form YYYY-MM-DD" },
	{ "rule until empty", "policy:\n  rules:\n"
	  "    - domain: a.example\n      level: may\n      until:\n", "5:13",
	  "must be a date in the form YYYY-MM-DD, such as '2030-01-31', found an empty value" },
	{ "rule until month 13", "policy:\n  rules:\n"
	  "    - {domain: a.example, level: may, until: 2030-13-01}\n", "3:46",
	  "'policy.rules.until' '2030-13-01' is not a valid calendar date" },
	{ "rule until month 0", "policy:\n  rules:\n"
	  "    - {domain: a.example, level: may, until: 2030-00-10}\n", "3:46",
	  "'2030-00-10' is not a valid calendar date" },
	{ "rule until day 0", "policy:\n  rules:\n"
	  "    - {domain: a.example, level: may, until: 2030-01-00}\n", "3:46",
	  "'2030-01-00' is not a valid calendar date" },
	{ "rule until April 31", "policy:\n  rules:\n"
	  "    - {domain: a.example, level: may, until: 2030-04-31}\n", "3:46",
	  "'2030-04-31' is not a valid calendar date" },
	{ "rule until February 29 common year", "policy:\n  rules:\n"
	  "    - {domain: a.example, level: may, until: 2030-02-29}\n", "3:46",
	  "'2030-02-29' is not a valid calendar date" },
	{ "rule until February 29 of 2100", "policy:\n  rules:\n"
	  "    - {domain: a.example, level: may, until: 2100-02-29}\n", "3:46",
	  "'2100-02-29' is not a valid calendar date" },
	{ "rule until before 2000", "policy:\n  rules:\n"
	  "    - {domain: a.example, level: may, until: 1999-12-31}\n", "3:46",
	  "'policy.rules.until' must be a date from the year 2000 on, found '1999-12-31'" },
	{ "rule until epoch", "policy:\n  rules:\n"
	  "    - {domain: a.example, level: may, until: 1970-01-01}\n", "3:46",
	  "must be a date from the year 2000 on" },
	{ "rule domain twice", "policy:\n  rules:\n"
	  "    - {domain: a.example, level: none}\n"
	  "    - {domain: b.example, level: may}\n"
	  "    - {domain: A.Example., level: verify}\n", "5:7",
	  "'policy.rules' has two rules for the domain 'a.example', at lines 3 and 5; "
	  "merge them into one" },
	{ "rule fails after match list", "policy:\n  rules:\n"
	  "    - {domain: a.example, level: secure, match: [mx.a.example]}\n"
	  "    - {domain: b.example, match: ['*.b.example'], level: bogus}\n", "4:58",
	  "'policy.rules.level' must be none" },
	{ "rule fails inside match list", "policy:\n  rules:\n"
	  "    - {domain: a.example, level: secure, match: [mx.a.example, 'bad name']}\n",
	  "3:64", "entry 'bad name' must be a host name" },

	/* state_dir */
	{ "state_dir empty", "state_dir: ''\n", "1:12",
	  "'state_dir' is empty; remove it to use /var/lib/mxlock or give the path of a folder" },
	{ "state_dir no value", "state_dir:\n", "1:11", "'state_dir' is empty" },
	{ "state_dir is a list", "state_dir: [/var/lib/mxlock]\n", "1:12",
	  "'state_dir' must be the path of a folder, found a list" },
	{ "state_dir with NUL", "state_dir: \"/var/lib\\0x\"\n", "1:12",
	  "'state_dir' contains a NUL character" },

	/* log */
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

/* ---- rule lookup ---- */

/* The second rule lapses at 2030-01-31 00:00:00 UTC. */
#define RULES_YAML "policy:\n  rules:\n" \
	"    - {domain: forever.example, level: verify}\n" \
	"    - {domain: lapsing.example, level: none, until: 2030-01-31}\n" \
	"    - {domain: sub.forever.example, level: secure, match: [mx.example]}\n"
#define LAPSE_TIME INT64_C(1896048000)

struct rule_find_case {
	const char *name;
	const char *domain;
	int64_t now;
	const char *expected;		/* domain of the rule found, or NULL */
};

static const struct rule_find_case rule_find_cases[] = {
	{ "exact domain", "forever.example", 0, "forever.example" },
	{ "upper case domain", "FOREVER.Example", 0, "forever.example" },
	{ "trailing dot", "forever.example.", 0, "forever.example" },
	{ "far future without until", "forever.example", INT64_MAX,
	  "forever.example" },
	{ "subdomain has its own rule", "sub.forever.example", 0,
	  "sub.forever.example" },
	{ "other subdomain has none", "mx.forever.example", 0, NULL },
	{ "parent domain has none", "example", 0, NULL },
	{ "suffix is not a match", "rever.example", 0, NULL },
	{ "unknown domain", "other.example", 0, NULL },
	{ "before lapse", "lapsing.example", LAPSE_TIME - 1, "lapsing.example" },
	{ "at lapse", "lapsing.example", LAPSE_TIME, NULL },
	{ "after lapse", "lapsing.example", LAPSE_TIME + 86400, NULL },
};

static void test_conf_rule_find(void **state)
{
	char err[CONF_ERR_MAX];
	struct conf *conf;
	char path[64];

	if (load_text(RULES_YAML, &conf, path, err, sizeof(err)) != 0)
		fail_msg("load failed: %s", err);
	for (size_t i = 0; i < ARRAY_LEN(rule_find_cases); i++) {
		const struct rule_find_case *c = &rule_find_cases[i];
		const struct conf_rule *rule;

		rule = conf_rule_find(conf, c->domain, c->now);
		if (c->expected == NULL && rule != NULL)
			fail_msg("%s: %s found rule %s", c->name, c->domain,
				 rule->domain);
		if (c->expected != NULL && rule == NULL)
			fail_msg("%s: %s found no rule", c->name, c->domain);
		if (c->expected != NULL &&
		    strcmp(rule->domain, c->expected) != 0)
			fail_msg("%s: %s found rule %s, expected %s", c->name,
				 c->domain, rule->domain, c->expected);
	}
	conf_free(conf);
}

static void test_conf_rule_find_returns_fields(void **state)
{
	const struct conf_rule *rule;
	char err[CONF_ERR_MAX];
	struct conf *conf;
	char path[64];

	if (load_text(RULES_YAML, &conf, path, err, sizeof(err)) != 0)
		fail_msg("load failed: %s", err);
	rule = conf_rule_find(conf, "sub.forever.example", 0);
	assert_non_null(rule);
	assert_int_equal(rule->level, CONF_LEVEL_SECURE);
	assert_int_equal(rule->match_count, 1);
	assert_string_equal(rule->match[0], "mx.example");
	assert_int_equal(rule->until, 0);
	assert_int_equal(rule->line, 5);

	rule = conf_rule_find(conf, "lapsing.example", 0);
	assert_non_null(rule);
	assert_int_equal(rule->level, CONF_LEVEL_NONE);
	assert_int_equal(rule->until, LAPSE_TIME);
	assert_int_equal(rule->line, 4);
	conf_free(conf);
}

static void test_conf_rule_find_without_rules(void **state)
{
	char err[CONF_ERR_MAX];
	struct conf *conf;
	char path[64];

	assert_int_equal(load_text("{}\n", &conf, path, err, sizeof(err)), 0);
	assert_null(conf_rule_find(conf, "example.org", 0));
	assert_null(conf_rule_find(NULL, "example.org", 0));
	assert_null(conf_rule_find(conf, NULL, 0));
	conf_free(conf);
}

/* ---- names and freeing ---- */

static void test_conf_level_names(void **state)
{
	assert_string_equal(conf_level_name(CONF_LEVEL_NONE), "none");
	assert_string_equal(conf_level_name(CONF_LEVEL_MAY), "may");
	assert_string_equal(conf_level_name(CONF_LEVEL_ENCRYPT), "encrypt");
	assert_string_equal(conf_level_name(CONF_LEVEL_DANE), "dane");
	assert_string_equal(conf_level_name(CONF_LEVEL_DANE_ONLY), "dane-only");
	assert_string_equal(conf_level_name(CONF_LEVEL_VERIFY), "verify");
	assert_string_equal(conf_level_name(CONF_LEVEL_SECURE), "secure");
	assert_string_equal(conf_level_name((enum conf_level)7), "unknown");
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
		cmocka_unit_test(test_conf_rule_find),
		cmocka_unit_test(test_conf_rule_find_returns_fields),
		cmocka_unit_test(test_conf_rule_find_without_rules),
		cmocka_unit_test(test_conf_level_names),
		cmocka_unit_test(test_conf_free_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
