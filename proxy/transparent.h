/*
 * Transparent interception: a connection that the firewall redirected to
 * mxlock (iptables or nftables REDIRECT, or TPROXY) carries its original
 * destination, the MX host the legacy MTA chose. This module finds that
 * address, opens the connection to it before mxlock greets the client (the
 * probe), and maps the address to an MX host of the recipient domain so
 * that DANE and MTA-STS verify that host's name. The session logic that
 * uses it lives in client_txn.c; docs/TRANSPARENT.md has the firewall
 * rules.
 */
#ifndef TRANSPARENT_H
#define TRANSPARENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "policy.h"
#include "route.h"

struct server;
struct stream;
struct transparent_probe;

/*
 * Finds the original destination of an accepted connection: the address
 * SO_ORIGINAL_DST (IPv4) or IP6T_SO_ORIGINAL_DST (IPv6) reports after a
 * REDIRECT, or else the local address, which TPROXY leaves unchanged.
 * Returns 0 or a negative base_err code.
 */
int transparent_original_dst(const struct stream *s,
			     struct sockaddr_storage *out);

/*
 * Sets IP_TRANSPARENT (IPV6_TRANSPARENT) on a listening socket before its
 * bind, so TPROXY can hand it connections for foreign addresses. tcp must
 * come from uv_tcp_init_ex with family. Returns 0 or a negative base_err
 * code (BASE_ESYS without CAP_NET_ADMIN).
 */
int transparent_listener_setup(uv_tcp_t *tcp, int family);

/*
 * Checks once at start that the process may set SO_MARK to mark (it needs
 * CAP_NET_ADMIN). Returns 0, or a negative base_err code with a message
 * in err.
 */
int transparent_mark_check(uint32_t mark, char *err, size_t errlen);

/* Writes "192.0.2.7:25" or "[2001:db8::7]:25" into out. */
void transparent_addr_text(const struct sockaddr *sa, char *out,
			   size_t outlen);

/* Returns true when a and b hold the same address and port. */
bool transparent_addr_equal(const struct sockaddr *a,
			    const struct sockaddr *b);

/*
 * Called once: status 0 when the original destination sent a 220
 * greeting, else a negative base_err code with detail (the refused
 * greeting or the error) for the log and the 421 reply.
 */
typedef void (*transparent_probe_cb)(void *arg, int status,
				     const char *detail);

/*
 * Connects to dst (with the SO_MARK of conf transparent.mark) and reads
 * its greeting within the connect and greeting timeouts. cb runs once,
 * later, unless transparent_probe_free comes first. Returns 0 and stores
 * the probe in *out, or a negative base_err code (cb never runs).
 */
int transparent_probe_start(struct server *srv, const struct sockaddr *dst,
			    transparent_probe_cb cb, void *arg,
			    struct transparent_probe **out);

/*
 * Takes the greeted connection out of the probe and frees the probe. The
 * caller owns the returned stream, whose reading is stopped and whose
 * next reply responds to the caller's first command. Returns NULL
 * when the connection broke meanwhile.
 */
struct stream *transparent_probe_take(struct transparent_probe *p);

/* Sends QUIT when greeted, closes and frees; NULL does nothing. */
void transparent_probe_free(struct transparent_probe *p);

/*
 * Looks for dst among the addresses of route's MX hosts (all of them
 * validated by mxlock's own lookups). Returns true and stores the host and
 * address indexes when one matches in address and port.
 */
bool transparent_match(const struct route *route, const struct sockaddr *dst,
		       size_t *host, size_t *addr);

/*
 * Moves host h of route to the front and its address a to the front of
 * its list, so delivery starts where the client was going. With
 * keep_others false every other host is dropped.
 */
void transparent_route_focus(struct route *route, size_t h, size_t a,
			     bool keep_others);

/*
 * Builds a one-host route for domain whose only host is dst itself, named
 * by its address, for transparent.unmatched passthrough. Returns 0 or a
 * negative base_err code.
 */
int transparent_route_passthrough(const char *domain,
				  const struct sockaddr *dst,
				  struct route **out);

/*
 * Returns true when delivery for route under p needs TLS: an enforced
 * MTA-STS policy, or a host that must not be reached in plaintext (DANE
 * TLSA records, levels encrypt and above). Passthrough is refused then.
 */
bool transparent_requires_tls(const struct policy *p,
			      const struct route *route);

#endif
