/*
 * DANE TLSA records for SMTP (RFC 7672, RFC 7671, RFC 6698): usable-record
 * selection with digest agility, matching against the certificate chain an
 * MX host presented, and the name checks of DANE-TA. Pure functions, no
 * I/O; the chain comes in as DER certificates in the order the server sent
 * them (leaf first).
 */
#ifndef TLSA_H
#define TLSA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLSA_DATA_MAX 64		/* SHA2-512, the longest digest */
#define TLSA_RECORDS_MAX 32
#define TLSA_CHAIN_MAX 10

enum tlsa_usage {
	TLSA_PKIX_TA = 0,
	TLSA_PKIX_EE = 1,
	TLSA_DANE_TA = 2,
	TLSA_DANE_EE = 3,
};

enum tlsa_selector {
	TLSA_SEL_CERT = 0,		/* the whole certificate (DER) */
	TLSA_SEL_SPKI = 1,		/* SubjectPublicKeyInfo (DER) */
};

enum tlsa_mtype {
	TLSA_MATCH_FULL = 0,
	TLSA_MATCH_SHA256 = 1,
	TLSA_MATCH_SHA512 = 2,
};

/* One TLSA record. Full-content records (type 0) longer than
   TLSA_DATA_MAX are kept only as their SHA-512 in data, with full_len set. */
struct tlsa_record {
	uint8_t usage;
	uint8_t selector;
	uint8_t mtype;
	uint8_t data[TLSA_DATA_MAX];
	size_t len;			/* bytes of data used */
	size_t full_len;		/* type 0: length of the original data */
	bool full_hashed;		/* type 0 stored as SHA-512 of the data */
};

/* A DER certificate the server sent. */
struct tlsa_cert {
	const uint8_t *der;
	size_t len;
};

/*
 * Parses one TLSA RDATA (RFC 6698 section 2.1) into rec. Returns 0, or
 * BASE_EINVAL when it is shorter than 3 bytes or has no association data.
 */
int tlsa_record_parse(const uint8_t *rdata, size_t len, struct tlsa_record *rec);

/* Returns true when rec can authenticate an SMTP server: usage 2 or 3,
   selector 0 or 1, matching type 0, 1 or 2 with the right digest length
   (RFC 7672 section 3.1 and RFC 6698 section 2.1). */
bool tlsa_record_usable(const struct tlsa_record *rec);

/*
 * Selects the records that count (RFC 7671 section 9, digest agility):
 * unusable records are dropped, then for each usage and selector only the
 * records with the strongest matching type present are kept (SHA2-512 over
 * SHA2-256 over full). Writes the indexes of kept records into keep and
 * their number into *kept. Returns nothing: every input yields a result,
 * possibly empty.
 */
void tlsa_select(const struct tlsa_record *recs, size_t count,
		 size_t keep[TLSA_RECORDS_MAX], size_t *kept);

/* What tlsa_verify found. */
struct tlsa_result {
	bool matched;
	struct tlsa_record record;	/* the record that matched */
	size_t depth;			/* chain position it matched (0 leaf) */
	char reason[160];		/* why nothing matched, for the log */
};

/*
 * Verifies a chain against the usable records (after tlsa_select).
 * DANE-EE(3) matches the leaf only, with no name, expiry or chain checks
 * (RFC 7672 section 3.1.1). DANE-TA(2) matches a certificate the server
 * sent; the chain from it down to the leaf must verify (signatures and
 * validity dates), and the leaf must carry one of names (the TLSA base
 * domain and the next-hop domain) as a DNS subject alternative name, a
 * wildcard covering exactly one left-most label (RFC 7672 section 3.2.3).
 * now is the Unix time for date checks. Returns 0 with *result filled
 * (matched or not), or a negative base_err code for an internal failure.
 */
int tlsa_verify(const struct tlsa_record *recs, size_t count,
		const struct tlsa_cert *chain, size_t chain_len,
		const char *const *names, size_t name_count, int64_t now,
		struct tlsa_result *result);

/*
 * Checks host against the DNS subject alternative names of a DER
 * certificate: exact names, or a wildcard that is the whole left-most
 * label and covers exactly one label; case and a trailing dot ignored; no
 * CN fallback. Returns true on a match.
 */
bool tlsa_cert_names_match(const uint8_t *der, size_t len, const char *host);

#endif
