/*
 * Configuration: one YAML file loaded with libyaml into an immutable
 * snapshot. Every error names the file, line and column (counted from 1).
 * The snapshot is read-only after conf_load returns; a reload would build a
 * new one and swap it for new connections.
 */
#ifndef CONF_H
#define CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CONF_ERR_MAX 512

/* Security levels, named and meant as in Postfix's smtp_tls_security_level. */
enum conf_level {
	CONF_LEVEL_NONE,	/* plaintext, STARTTLS never attempted */
	CONF_LEVEL_MAY,		/* STARTTLS when offered, plaintext otherwise */
	CONF_LEVEL_ENCRYPT,	/* TLS required, certificate not checked */
	CONF_LEVEL_DANE,	/* DANE where published, otherwise may */
	CONF_LEVEL_DANE_ONLY,	/* defer unless DANE verifies */
	CONF_LEVEL_VERIFY,	/* PKIX, certificate names the MX host */
	CONF_LEVEL_SECURE,	/* PKIX, certificate names one of rule.match */
};

/*
 * A local rule: the operator's explicit exception for one recipient
 * domain. It wins over DANE and MTA-STS until it lapses.
 */
struct conf_rule {
	char domain[256];		/* lower case, no trailing dot */
	enum conf_level level;
	char **match;			/* secure: accepted certificate names */
	size_t match_count;
	int64_t until;			/* Unix time the rule lapses; 0: never */
	unsigned line;			/* position in the file, for logs */
};

enum conf_log_level {
	CONF_LOG_ERROR,
	CONF_LOG_WARN,
	CONF_LOG_INFO,
	CONF_LOG_DEBUG,
};

/* Listener mode: how the client's connection reached mxlock. */
enum conf_listen_mode {
	CONF_LISTEN_RELAY,		/* the client uses mxlock as relay host */
	CONF_LISTEN_TRANSPARENT,	/* the firewall redirected the client's
					   port 25 connection (REDIRECT or
					   TPROXY) to mxlock */
};

/* Action of a transparent session whose original destination is no MX
   host of the recipient domain. */
enum conf_unmatched {
	CONF_UNMATCHED_REROUTE,		/* deliver to the domain's MX hosts */
	CONF_UNMATCHED_DEFER,		/* answer 451 */
	CONF_UNMATCHED_PASSTHROUGH,	/* deliver to the original destination
					   when the policy does not require TLS */
};

struct conf_listen {
	char address[64];	/* IPv4 or IPv6 literal, no brackets */
	uint16_t port;
	enum conf_listen_mode mode;
};

/* One allowed client network in CIDR form. */
struct conf_network {
	int family;		/* AF_INET or AF_INET6 */
	uint8_t addr[16];	/* network address, 4 or 16 bytes used */
	unsigned prefix;	/* prefix length in bits */
};

/* A DNS server address: "ip:port" or "[ipv6]:port" in the file. */
struct conf_dns_server {
	char address[64];	/* IP literal, no brackets */
	uint16_t port;
};

/* Timeouts per phase, in milliseconds (seconds in the file). */
struct conf_timeouts {
	uint64_t command;	/* client: waiting for the next command */
	uint64_t data;		/* client: waiting for the next DATA bytes */
	uint64_t dns;		/* one DNS lookup */
	uint64_t connect;	/* upstream TCP connect */
	uint64_t greeting;	/* upstream greeting */
	uint64_t tls;		/* upstream TLS handshake */
	uint64_t reply;		/* upstream reply to a command */
	uint64_t final;		/* upstream reply to the end of DATA */
};

struct conf_limits {
	unsigned max_connections;	/* concurrent client connections */
	uint64_t max_message_size;	/* bytes, advertised as SIZE */
	unsigned max_recipients;	/* per transaction */
	unsigned max_mx_hosts;		/* MX hosts tried per delivery */
	unsigned max_addresses;		/* addresses tried per delivery */
	struct conf_timeouts timeouts;
};

struct conf {
	char *path;				/* file the snapshot came from */

	struct conf_listen *listen;
	size_t listen_count;

	struct conf_network *clients;
	size_t client_count;

	char hostname[256];			/* greeting and EHLO name */

	struct conf_dns_server *dns_servers;
	size_t dns_server_count;
	bool dns_trust_ad;			/* trust AD from non-loopback servers */
	char dns_probe[256];			/* name whose answer must be secure;
						   "" means the root's DNSKEY (".") */

	char *tls_ca_file;			/* NULL: none configured */
	int tls_min_version;			/* 12 (TLS 1.2) or 13 */
	char *tls_server_cert;			/* PEM chain for STARTTLS toward
						   clients; NULL: no STARTTLS */
	char *tls_server_key;			/* its PEM private key; set
						   exactly when the chain is */

	enum conf_unmatched transparent_unmatched;
	uint32_t transparent_mark;		/* SO_MARK of outbound sockets;
						   0: none */

	enum conf_level policy_default;	/* none, may, encrypt, dane,
					   dane-only, verify or secure */
	bool policy_dane;		/* DANE for every domain that publishes it */
	bool policy_dane_insecure_mx;	/* use a host's secure TLSA even when
					   the MX RRset is insecure ("trusted") */
	bool policy_mta_sts;		/* MTA-STS for every domain without DANE */
	struct conf_rule *rules;
	size_t rule_count;

	char *state_dir;		/* persistent state (MTA-STS cache) */
	unsigned workers;		/* event loops, one thread each, sharing
					   the listening ports (SO_REUSEPORT) */

	struct conf_limits limits;

	enum conf_log_level log_level;
};

/*
 * Loads the YAML file at path into a new snapshot stored in *out. On error
 * returns a negative base_err code, leaves *out NULL, and writes a message
 * of the form "FILE:LINE:COLUMN: what is wrong" into err (size errlen).
 */
int conf_load(const char *path, struct conf **out, char *err, size_t errlen);

/* Releases a snapshot; conf_free(NULL) does nothing. */
void conf_free(struct conf *conf);

/* Returns true when the client address falls inside an allowed network. */
bool conf_client_allowed(const struct conf *conf, const struct sockaddr *addr);

/* Returns the name as written in the file ("reroute", "passthrough"). */
const char *conf_unmatched_name(enum conf_unmatched unmatched);

/* Returns true when at least one listener has mode transparent. */
bool conf_has_transparent(const struct conf *conf);

/* Returns the level's name as written in the file ("may", "dane-only"). */
const char *conf_level_name(enum conf_level level);

/*
 * Finds the rule for domain (lower case, no trailing dot) that is in force
 * at time now. Returns NULL when there is none or it lapsed.
 */
const struct conf_rule *conf_rule_find(const struct conf *conf,
				       const char *domain, int64_t now);

#endif
