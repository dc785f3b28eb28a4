/*
 * DANE-TA chain verification: from the certificate a DANE-TA record
 * matched down to the leaf, with a wolfSSL certificate manager that trusts
 * that certificate alone and then each verified intermediate in turn.
 * Revocation is not checked.
 */
#include <stdio.h>
#include <time.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "base/err.h"
#include "internal.h"

/* Describes why wolfSSL rejected the certificate at depth. */
static void describe_failure(int code, size_t depth, char *reason, size_t len)
{
	switch (code) {
	case ASN_NO_SIGNER_E:
		snprintf(reason, len, "certificate at depth %zu is not signed "
			 "by the certificates above it", depth);
		break;
	case ASN_SIG_CONFIRM_E:
		snprintf(reason, len, "certificate at depth %zu has an invalid "
			 "signature", depth);
		break;
	default:
		snprintf(reason, len, "certificate at depth %zu: %s (wolfSSL "
			 "error %d)", depth,
			 wolfSSL_ERR_reason_error_string((unsigned long)code),
			 code);
		break;
	}
}

/* Checks the validity dates of one certificate against now. */
static bool dates_valid(const struct tlsa_chain_cert *cert, size_t depth,
			int64_t now, char *reason, size_t len)
{
	time_t t = (time_t)now;
	WOLFSSL_ASN1_TIME *not_before = wolfSSL_X509_get_notBefore(cert->x509);
	WOLFSSL_ASN1_TIME *not_after = wolfSSL_X509_get_notAfter(cert->x509);
	int before;
	int after;

	if (not_before == NULL || not_after == NULL) {
		snprintf(reason, len, "certificate at depth %zu has no "
			 "validity dates", depth);
		return false;
	}

	/* wolfSSL_X509_cmp_time returns -1 (earlier), 1 (later), 0 (error). */
	before = wolfSSL_X509_cmp_time(not_before, &t);
	after = wolfSSL_X509_cmp_time(not_after, &t);
	if (before == 0 || after == 0) {
		snprintf(reason, len, "certificate at depth %zu has unreadable "
			 "validity dates", depth);
		return false;
	}
	if (before > 0) {
		snprintf(reason, len, "certificate at depth %zu is not valid "
			 "yet", depth);
		return false;
	}
	if (after < 0) {
		snprintf(reason, len, "certificate at depth %zu has expired",
			 depth);
		return false;
	}
	return true;
}

/*
 * Checks that the certificate at depth may issue the ones below it: a CA
 * (wolfSSL trusts any certificate loaded with
 * wolfSSL_CertManagerLoadCABuffer, CA or not) whose path length allows
 * the depth - 1 intermediates under it. wolfSSL does not check path
 * lengths across certificates loaded one by one either.
 */
static bool issuer_valid(const struct tlsa_chain_cert *cert, size_t depth,
			 char *reason, size_t len)
{
	if (!wolfSSL_X509_get_isCA(cert->x509)) {
		snprintf(reason, len, "certificate at depth %zu is not a CA",
			 depth);
		return false;
	}
	if (wolfSSL_X509_get_isSet_pathLength(cert->x509) &&
	    depth - 1 > wolfSSL_X509_get_pathLength(cert->x509)) {
		snprintf(reason, len, "certificate at depth %zu allows only %u "
			 "intermediate CAs below it", depth,
			 wolfSSL_X509_get_pathLength(cert->x509));
		return false;
	}
	return true;
}

/* Checks one certificate without wolfSSL's signature check. */
static bool cert_valid(const struct tlsa_chain_cert *cert, size_t depth,
		       int64_t now, char *reason, size_t len)
{
	if (cert->x509 == NULL) {
		snprintf(reason, len, "certificate at depth %zu could not be "
			 "parsed", depth);
		return false;
	}
	if (depth > 0 && !issuer_valid(cert, depth, reason, len))
		return false;
	return dates_valid(cert, depth, now, reason, len);
}

/*
 * Verifies the signature of the certificate at depth with the CAs loaded
 * so far. Returns 1 when it verified, 0 when it did not (reason filled), or
 * a negative base_err code.
 */
static int signature_valid(WOLFSSL_CERT_MANAGER *cm,
			   const struct tlsa_chain_cert *cert, size_t depth,
			   char *reason, size_t len)
{
	int ret = wolfSSL_CertManagerVerifyBuffer(cm, cert->der,
						  (long)cert->len,
						  WOLFSSL_FILETYPE_ASN1);

	/*
	 * wolfSSL checks dates against the system clock and reports a date
	 * error only when nothing else is wrong, so the signature is good
	 * then. dates_valid decides the dates, against the caller's now.
	 */
	if (ret == WOLFSSL_SUCCESS || ret == ASN_BEFORE_DATE_E ||
	    ret == ASN_AFTER_DATE_E)
		return 1;
	if (ret == MEMORY_E)
		return tlsa_wolfssl_err(ret);
	describe_failure(ret, depth, reason, len);
	return 0;
}

/* Trusts the certificate at depth as an issuer of the ones below it. */
static int load_issuer(WOLFSSL_CERT_MANAGER *cm,
		       const struct tlsa_chain_cert *cert, size_t depth,
		       char *reason, size_t len)
{
	int ret = wolfSSL_CertManagerLoadCABuffer(cm, cert->der,
						  (long)cert->len,
						  WOLFSSL_FILETYPE_ASN1);

	if (ret == WOLFSSL_SUCCESS)
		return 1;
	if (ret == MEMORY_E)
		return tlsa_wolfssl_err(ret);
	describe_failure(ret, depth, reason, len);
	return 0;
}

/* Verifies certs[ta - 1] down to certs[0] with certs[ta] loaded in cm. */
static int verify_below(WOLFSSL_CERT_MANAGER *cm,
			const struct tlsa_chain_cert *certs, size_t ta,
			int64_t now, char *reason, size_t len)
{
	int ret;

	for (size_t depth = ta; depth-- > 0;) {
		if (!cert_valid(&certs[depth], depth, now, reason, len))
			return 0;
		ret = signature_valid(cm, &certs[depth], depth, reason, len);
		if (ret <= 0)
			return ret;
		if (depth == 0)
			break;
		ret = load_issuer(cm, &certs[depth], depth, reason, len);
		if (ret <= 0)
			return ret;
	}
	return 1;
}

int tlsa_chain_verify(const struct tlsa_chain_cert *certs, size_t ta,
		      int64_t now, bool *verified, char *reason,
		      size_t reason_len)
{
	WOLFSSL_CERT_MANAGER *cm;
	int ret;

	*verified = false;
	if (ta == 0 || ta >= TLSA_CHAIN_MAX)
		return BASE_EINVAL;

	/*
	 * The trust anchor's own dates are checked too. That is the strict
	 * choice: an expired trust anchor fails even when the TLSA record
	 * names only its key.
	 */
	if (!cert_valid(&certs[ta], ta, now, reason, reason_len))
		return 0;

	cm = wolfSSL_CertManagerNew();
	if (cm == NULL)
		return BASE_ENOMEM;
	ret = load_issuer(cm, &certs[ta], ta, reason, reason_len);
	if (ret > 0)
		ret = verify_below(cm, certs, ta, now, reason, reason_len);
	wolfSSL_CertManagerFree(cm);

	if (ret < 0)
		return ret;
	*verified = ret == 1;
	return 0;
}
