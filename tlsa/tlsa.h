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

/* One TLSA record. Association data longer than TLSA_DATA_MAX is kept
   only as its SHA-512 in data, with full_hashed set; only a Full(0) record
   stays usable that way. */
struct tlsa_record {
	uint8_t usage;
	uint8_t selector;
	uint8_t mtype;
	uint8_t data[TLSA_DATA_MAX];
	size_t len;			/* bytes of data used */
	size_t full_len;		/* length of the original data */
	bool full_hashed;		/* data is the original's SHA-512 */
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
 * Selects the records that count (RFC 7671 section 9, digest agility).
 * Unusable records are dropped first. Then, for each usage and selector,
 * only the records with the strongest digest present are kept (SHA2-512
 * over SHA2-256), and every Full(0) record stays because it is no digest.
 * Records past the first TLSA_RECORDS_MAX are ignored. Writes the indexes
 * of kept records into keep and their number into *kept. Returns nothing:
 * every input yields a result, possibly empty.
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
 * Verifies a chain against the records, which may be the whole RRset
 * because tlsa_verify applies tlsa_select itself.
 * DANE-EE(3) matches the leaf only, with no name, expiry or chain checks
 * (RFC 7672 section 3.1.1).
 * DANE-TA(2) matches a certificate the server sent above the leaf, and a
 * match on the leaf itself is not accepted. The chain from that
 * certificate down to the leaf must verify: signatures, CA flags, path
 * lengths, and the validity dates of every certificate, the trust
 * anchor's included. The leaf must also carry one of names (the TLSA base
 * domain and the next-hop domain) as a DNS subject alternative name, where
 * a wildcard covers exactly one left-most label (RFC 7672 section 3.2.3).
 * The common name never counts.
 * Certificates past the first TLSA_CHAIN_MAX are ignored. now is the Unix
 * time for date checks. Returns 0 with *result filled (matched or not), or
 * a negative base_err code for an internal failure.
 */
int tlsa_verify(const struct tlsa_record *recs, size_t count,
		const struct tlsa_cert *chain, size_t chain_len,
		const char *const *names, size_t name_count, int64_t now,
		struct tlsa_result *result);

/*
 * Checks host against the DNS subject alternative names of a DER
 * certificate: exact names, or a wildcard that is the whole left-most
 * label and covers exactly one label; case and a trailing dot ignored; no
 * CN fallback. A wildcard right below a top-level domain ("*.test")
 * matches nothing. host may itself be a wildcard reference "*.parent" (a
 * `secure` match list entry): it then accepts a name of one label below
 * parent, or the same wildcard. Returns true on a match.
 */
bool tlsa_cert_names_match(const uint8_t *der, size_t len, const char *host);

#endif
