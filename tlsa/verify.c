/*
 * DANE authentication of an MX host: the selected TLSA records against the
 * chain the server sent, DANE-EE first, then DANE-TA with its chain and
 * name checks. When nothing matched, result->reason explains why in words
 * an operator can act on.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "base/dname.h"
#include "base/err.h"
#include "internal.h"

/* Room for a SubjectPublicKeyInfo. A 16384-bit RSA key takes about 2.1 kB. */
#define SPKI_MAX 4096

/* The inputs of one tlsa_verify call and its result. */
struct verify_job {
	const struct tlsa_record *recs;
	const size_t *keep;		/* indexes of the selected records */
	size_t kept;
	const struct tlsa_chain_cert *certs;
	size_t cert_count;
	const char *const *names;
	size_t name_count;
	int64_t now;
	struct tlsa_result *result;
};

/* Sets result->reason unless an earlier reason is already there. */
static void __attribute__((format(printf, 2, 3)))
note_reason(struct tlsa_result *result, const char *fmt, ...)
{
	va_list ap;

	if (result->reason[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(result->reason, sizeof(result->reason), fmt, ap);
	va_end(ap);
}

static void set_match(struct verify_job *job, const struct tlsa_record *rec,
		      size_t depth)
{
	job->result->matched = true;
	job->result->record = *rec;
	job->result->depth = depth;
	job->result->reason[0] = '\0';
}

/*
 * Points *data at the bytes the selector takes from cert (RFC 6698
 * section 2.1.2), using spki as room for the key. Returns false when cert
 * has no such bytes.
 */
static bool selected_data(const struct tlsa_chain_cert *cert, uint8_t selector,
			  uint8_t spki[SPKI_MAX], const uint8_t **data,
			  size_t *len)
{
	int spki_len = SPKI_MAX;

	if (cert->der == NULL || cert->len == 0)
		return false;
	if (selector == TLSA_SEL_CERT) {
		*data = cert->der;
		*len = cert->len;
		return true;
	}

	/*
	 * In wolfSSL 5.5.4 wolfSSL_X509_get_pubkey_buffer returns the whole
	 * SubjectPublicKeyInfo DER. i2d_PUBKEY and wolfSSL_X509_pubkey_digest
	 * use the PKCS#1 form for RSA keys and give other bytes.
	 */
	if (cert->x509 == NULL)
		return false;
	if (wolfSSL_X509_get_pubkey_buffer(cert->x509, spki, &spki_len) !=
	    WOLFSSL_SUCCESS || spki_len <= 0 || spki_len > SPKI_MAX)
		return false;
	*data = spki;
	*len = (size_t)spki_len;
	return true;
}

/*
 * Compares rec with cert. Returns 1 on a match, 0 without one, or a
 * negative base_err code when a digest could not be computed.
 */
static int record_matches(const struct tlsa_record *rec,
			  const struct tlsa_chain_cert *cert)
{
	uint8_t spki[SPKI_MAX];
	uint8_t digest[TLSA_DATA_MAX];
	const uint8_t *data;
	size_t len;
	int ret;

	if (!selected_data(cert, rec->selector, spki, &data, &len))
		return 0;
	if (rec->mtype == TLSA_MATCH_FULL && !rec->full_hashed)
		return len == rec->len && memcmp(data, rec->data, len) == 0;

	/* A Full(0) record too long to keep contains the SHA2-512 of it. */
	if (rec->mtype == TLSA_MATCH_FULL) {
		if (len != rec->full_len)
			return 0;
		ret = tlsa_hash(TLSA_MATCH_SHA512, data, len, digest);
	} else {
		ret = tlsa_hash(rec->mtype, data, len, digest);
	}
	if (ret < 0)
		return ret;
	return (size_t)ret == rec->len &&
	       memcmp(digest, rec->data, rec->len) == 0;
}

/* RFC 7672 section 3.1.1: DANE-EE matches the leaf alone, no more checks. */
static int match_ee(struct verify_job *job)
{
	for (size_t i = 0; i < job->kept; i++) {
		const struct tlsa_record *rec = &job->recs[job->keep[i]];
		int ret;

		if (rec->usage != TLSA_DANE_EE)
			continue;
		ret = record_matches(rec, &job->certs[0]);
		if (ret > 0)
			set_match(job, rec, 0);
		if (ret != 0)
			return ret;
	}
	return 0;
}

static bool leaf_names_match(const struct verify_job *job)
{
	for (size_t i = 0; i < job->name_count; i++) {
		if (tlsa_x509_names_match(job->certs[0].x509, job->names[i]))
			return true;
	}
	return false;
}

/* Writes "names neither a nor b" and the like into out. */
static void describe_missing_names(const struct verify_job *job, char *out,
				   size_t len)
{
	const char *const *names = job->names;
	size_t used;

	if (job->name_count == 0) {
		snprintf(out, len, "has no reference name to match");
		return;
	}
	/* The TLSA base domain is often the next-hop domain itself. */
	if (job->name_count == 1 ||
	    (job->name_count == 2 && base_dname_equal(names[0], names[1]))) {
		snprintf(out, len, "does not name %s", names[0]);
		return;
	}
	if (job->name_count == 2) {
		snprintf(out, len, "names neither %s nor %s", names[0],
			 names[1]);
		return;
	}

	used = (size_t)snprintf(out, len, "names none of %s", names[0]);
	for (size_t i = 1; i < job->name_count && used < len; i++)
		used += (size_t)snprintf(out + used, len - used, ", %s",
					 names[i]);
}

/*
 * Checks what a DANE-TA match at depth needs beyond the match itself
 * (RFC 7672 sections 3.1.2 and 3.2.2). Returns 1 when the chain is
 * authenticated, 0 when not (with a reason), or a negative base_err code.
 */
static int accept_trust_anchor(struct verify_job *job,
			       const struct tlsa_record *rec, size_t depth)
{
	char detail[100];
	bool verified;
	int ret;

	/*
	 * A DANE-TA record that matches the leaf would let the leaf vouch
	 * for itself. mxlock rejects that as the conservative reading,
	 * because a DANE-EE record is the way to pin a leaf.
	 */
	if (depth == 0) {
		note_reason(job->result, "a DANE-TA record matched the leaf "
			    "certificate itself, which is not accepted as a "
			    "trust anchor");
		return 0;
	}

	ret = tlsa_chain_verify(job->certs, depth, job->now, &verified,
				detail, sizeof(detail));
	if (ret < 0)
		return ret;
	if (!verified) {
		note_reason(job->result, "DANE-TA matched depth %zu but the "
			    "chain did not verify: %s", depth, detail);
		return 0;
	}

	if (!leaf_names_match(job)) {
		describe_missing_names(job, detail, sizeof(detail));
		note_reason(job->result, "DANE-TA matched depth %zu but the "
			    "leaf %s", depth, detail);
		return 0;
	}

	set_match(job, rec, depth);
	return 1;
}

/*
 * RFC 7672 section 3.1.2: the trust anchor must be one of the certificates
 * the server sent, whatever its position.
 */
static int match_ta(struct verify_job *job)
{
	for (size_t i = 0; i < job->kept; i++) {
		const struct tlsa_record *rec = &job->recs[job->keep[i]];

		if (rec->usage != TLSA_DANE_TA)
			continue;
		for (size_t depth = 0; depth < job->cert_count; depth++) {
			int ret = record_matches(rec, &job->certs[depth]);

			if (ret > 0)
				ret = accept_trust_anchor(job, rec, depth);
			if (ret != 0)
				return ret;
		}
	}
	return 0;
}

static bool names_present(const char *const *names, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		if (names[i] == NULL)
			return false;
	}
	return true;
}

static void parse_chain(const struct tlsa_cert *chain, size_t count,
			struct tlsa_chain_cert *certs)
{
	for (size_t i = 0; i < count; i++) {
		const unsigned char *p = chain[i].der;

		certs[i].der = chain[i].der;
		certs[i].len = chain[i].der != NULL ? chain[i].len : 0;
		certs[i].x509 = NULL;
		if (certs[i].len > 0 && certs[i].len <= INT_MAX)
			certs[i].x509 = wolfSSL_d2i_X509(NULL, &p,
							 (int)certs[i].len);
	}
}

static void free_chain(struct tlsa_chain_cert *certs, size_t count)
{
	for (size_t i = 0; i < count; i++)
		wolfSSL_X509_free(certs[i].x509);
}

int tlsa_verify(const struct tlsa_record *recs, size_t count,
		const struct tlsa_cert *chain, size_t chain_len,
		const char *const *names, size_t name_count, int64_t now,
		struct tlsa_result *result)
{
	struct tlsa_chain_cert certs[TLSA_CHAIN_MAX];
	size_t keep[TLSA_RECORDS_MAX];
	struct verify_job job = {
		.recs = recs, .keep = keep, .certs = certs,
		.names = names, .name_count = name_count, .now = now,
		.result = result,
	};
	int ret;

	if (result == NULL || (recs == NULL && count > 0) ||
	    (chain == NULL && chain_len > 0) ||
	    (names == NULL && name_count > 0) ||
	    !names_present(names, name_count))
		return BASE_EINVAL;
	memset(result, 0, sizeof(*result));

	tlsa_select(recs, count, keep, &job.kept);
	if (job.kept == 0) {
		note_reason(result, "no usable TLSA record");
		return 0;
	}
	if (chain_len == 0) {
		note_reason(result, "the server sent no certificate");
		return 0;
	}

	/* Certificates past TLSA_CHAIN_MAX are ignored. */
	job.cert_count = chain_len;
	if (job.cert_count > TLSA_CHAIN_MAX)
		job.cert_count = TLSA_CHAIN_MAX;
	parse_chain(chain, job.cert_count, certs);
	ret = match_ee(&job);
	if (ret == 0)
		ret = match_ta(&job);
	free_chain(certs, job.cert_count);

	if (ret < 0) {
		memset(result, 0, sizeof(*result));
		return ret;
	}
	if (!result->matched)
		note_reason(result, "no TLSA record matched the certificate "
			    "chain");
	return 0;
}
