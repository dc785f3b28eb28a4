/*
 * Helpers shared by the files of tlsa/ and used nowhere else: digests, the
 * translation of wolfSSL error codes, the parsed form of the chain a server
 * sent, DANE-TA chain verification and the DNS-ID name check.
 */
#ifndef TLSA_INTERNAL_H
#define TLSA_INTERNAL_H

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "tlsa.h"

/* One certificate of the server's chain, with its parsed form. */
struct tlsa_chain_cert {
	const uint8_t *der;
	size_t len;
	WOLFSSL_X509 *x509;		/* NULL when the DER did not parse */
};

/*
 * Writes the SHA2-256 (mtype TLSA_MATCH_SHA256) or SHA2-512 digest of data
 * into out. Returns the digest length, or a negative base_err code.
 */
int tlsa_hash(uint8_t mtype, const uint8_t *data, size_t len,
	      uint8_t out[TLSA_DATA_MAX]);

/* Translates a wolfSSL or wolfCrypt error code into a base_err code. */
int tlsa_wolfssl_err(int code);

/*
 * Verifies certs[ta] down to certs[0]: every certificate is signed by one
 * above it, every issuer is a CA within its path length, and every
 * certificate, the trust anchor included, is valid at now. Returns 0 with
 * *verified set and, when it is false, reason filled. Returns a negative
 * base_err code when wolfSSL could not run the check.
 */
int tlsa_chain_verify(const struct tlsa_chain_cert *certs, size_t ta,
		      int64_t now, bool *verified, char *reason,
		      size_t reason_len);

/* tlsa_cert_names_match for a certificate wolfSSL has parsed. */
bool tlsa_x509_names_match(WOLFSSL_X509 *x509, const char *host);

#endif
