/*
 * TLSA records: parsing of the RDATA, the usability rules of SMTP DANE and
 * the selection with digest agility. Also the digest and wolfSSL error
 * helpers the other files of tlsa/ share.
 */
#include <stdint.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/hash.h>

#include "base/err.h"
#include "internal.h"

#define SHA256_LEN 32
#define SHA512_LEN 64

int tlsa_wolfssl_err(int code)
{
	switch (code) {
	case 0:
		return 0;
	case MEMORY_E:
		return BASE_ENOMEM;
	case BUFFER_E:
		return BASE_ETOOLONG;
	case ASN_BEFORE_DATE_E:
	case ASN_AFTER_DATE_E:
	case ASN_SIG_CONFIRM_E:
	case ASN_NO_SIGNER_E:
		return BASE_EVERIFY;
	default:
		return BASE_EINVAL;
	}
}

int tlsa_hash(uint8_t mtype, const uint8_t *data, size_t len,
	      uint8_t out[TLSA_DATA_MAX])
{
	int ret;

	if (len > UINT32_MAX)
		return BASE_ETOOLONG;

	switch (mtype) {
	case TLSA_MATCH_SHA256:
		ret = wc_Sha256Hash(data, (word32)len, out);
		return ret == 0 ? SHA256_LEN : tlsa_wolfssl_err(ret);
	case TLSA_MATCH_SHA512:
		ret = wc_Sha512Hash(data, (word32)len, out);
		return ret == 0 ? SHA512_LEN : tlsa_wolfssl_err(ret);
	default:
		return BASE_EINVAL;
	}
}

int tlsa_record_parse(const uint8_t *rdata, size_t len, struct tlsa_record *rec)
{
	size_t data_len;
	int ret;

	/* RFC 6698 section 2.1: three one-octet fields, then the data. */
	if (rdata == NULL || rec == NULL || len < 4)
		return BASE_EINVAL;

	memset(rec, 0, sizeof(*rec));
	rec->usage = rdata[0];
	rec->selector = rdata[1];
	rec->mtype = rdata[2];
	data_len = len - 3;
	rec->full_len = data_len;

	if (data_len <= TLSA_DATA_MAX) {
		memcpy(rec->data, rdata + 3, data_len);
		rec->len = data_len;
		return 0;
	}

	/*
	 * Only Full(0) can be usable with data this long. Other types keep
	 * the digest too, and tlsa_record_usable rejects them.
	 */
	ret = tlsa_hash(TLSA_MATCH_SHA512, rdata + 3, data_len, rec->data);
	if (ret < 0)
		return ret;
	rec->len = (size_t)ret;
	rec->full_hashed = true;
	return 0;
}

/* Returns true when the association data has the length mtype requires. */
static bool data_length_valid(const struct tlsa_record *rec)
{
	if (rec->len > TLSA_DATA_MAX)
		return false;

	switch (rec->mtype) {
	case TLSA_MATCH_FULL:
		if (rec->full_hashed)
			return rec->len == SHA512_LEN && rec->full_len > 0;
		return rec->len > 0;
	case TLSA_MATCH_SHA256:
		return !rec->full_hashed && rec->len == SHA256_LEN;
	case TLSA_MATCH_SHA512:
		return !rec->full_hashed && rec->len == SHA512_LEN;
	default:
		return false;
	}
}

bool tlsa_record_usable(const struct tlsa_record *rec)
{
	if (rec == NULL)
		return false;

	/*
	 * RFC 7672 section 3.1.3: SMTP clients treat PKIX-TA(0) and
	 * PKIX-EE(1) as unusable. Unassigned values and the private-use
	 * value 255 of each field have no meaning mxlock could check.
	 */
	if (rec->usage != TLSA_DANE_TA && rec->usage != TLSA_DANE_EE)
		return false;
	if (rec->selector != TLSA_SEL_CERT && rec->selector != TLSA_SEL_SPKI)
		return false;
	return data_length_valid(rec);
}

/* Index of the usage and selector pair into a table of four. */
static size_t pair_index(const struct tlsa_record *rec)
{
	return (size_t)(rec->usage - TLSA_DANE_TA) * 2 + rec->selector;
}

void tlsa_select(const struct tlsa_record *recs, size_t count,
		 size_t keep[TLSA_RECORDS_MAX], size_t *kept)
{
	uint8_t strongest[4] = { 0 };
	size_t n = count < TLSA_RECORDS_MAX ? count : TLSA_RECORDS_MAX;

	if (kept == NULL)
		return;
	*kept = 0;
	if (recs == NULL || keep == NULL)
		return;

	/*
	 * RFC 7671 section 9: malformed records are dropped first, so a bad
	 * SHA2-512 record cannot hide a good SHA2-256 one. Then, for each
	 * usage and selector, only the strongest digest present counts.
	 * Full(0) is not a digest and always counts: the section's example
	 * accepts a key matching "3 1 0" or "3 1 2" but not one matching
	 * only "3 1 1".
	 */
	for (size_t i = 0; i < n; i++) {
		size_t pair;

		if (!tlsa_record_usable(&recs[i]))
			continue;
		/* SHA2-512(2) is stronger than SHA2-256(1). */
		pair = pair_index(&recs[i]);
		if (recs[i].mtype > strongest[pair])
			strongest[pair] = recs[i].mtype;
	}

	for (size_t i = 0; i < n; i++) {
		if (!tlsa_record_usable(&recs[i]))
			continue;
		if (recs[i].mtype != TLSA_MATCH_FULL &&
		    recs[i].mtype != strongest[pair_index(&recs[i])])
			continue;
		keep[(*kept)++] = i;
	}
}
