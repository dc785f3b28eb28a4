/*
 * Name checks of DANE-TA (RFC 7672 section 3.2.3): the DNS-IDs of the
 * server certificate against a reference name. This is mxlock's own
 * matcher because wolfSSL_X509_check_host (wolfSSL 5.5.4) falls back to
 * the common name and accepts partial wildcards such as "f*.example.org".
 */
#include <limits.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/openssl/x509v3.h>

#include "base/dname.h"
#include "internal.h"

/* A DNS-ID as text: the longest name, a trailing dot and the NUL. */
#define DNS_ID_MAX (BASE_DNAME_MAX + 2)

/* Matches "*.<parent>" against host: host is one label, a dot, parent. */
static bool wildcard_matches(const char *parent, const char *host)
{
	const char *dot = strchr(host, '.');
	char norm[DNS_ID_MAX];

	if (dot == NULL || dot == host)
		return false;
	if (base_dname_normalize(parent, norm, sizeof(norm)) != 0)
		return false;

	/*
	 * A wildcard right below a top-level domain ("*.test") would cover
	 * names of unrelated owners, so it matches nothing.
	 */
	if (strchr(norm, '.') == NULL)
		return false;
	return base_dname_equal(norm, dot + 1);
}

/*
 * Matches one DNS-ID against host. The wildcard "*" is accepted only as
 * the whole left-most label, where it covers exactly one label. Any other
 * "*" fails base_dname_valid, so partial wildcards match nothing.
 */
static bool dns_id_matches(const char *id, const char *host)
{
	if (strncmp(id, "*.", 2) == 0)
		return wildcard_matches(id + 2, host);
	if (!base_dname_valid(id))
		return false;
	return base_dname_equal(id, host);
}

/* Copies a dNSName into out as a C string; false when it cannot be one. */
static bool dns_id_text(WOLFSSL_ASN1_STRING *name, char out[DNS_ID_MAX])
{
	const unsigned char *data = wolfSSL_ASN1_STRING_data(name);
	int len = wolfSSL_ASN1_STRING_length(name);

	if (data == NULL || len <= 0 || len >= DNS_ID_MAX)
		return false;
	/* An embedded NUL would hide the rest of the name from strcmp. */
	if (memchr(data, '\0', (size_t)len) != NULL)
		return false;

	memcpy(out, data, (size_t)len);
	out[len] = '\0';
	return true;
}

/*
 * Matches a DNS-ID against a reference that may itself be a wildcard, as
 * in a `secure` rule's match list: "*.mail.example.com" accepts a
 * certificate that names one host directly below mail.example.com, or the
 * same wildcard.
 */
static bool reference_matches(const char *id, const char *ref)
{
	if (strncmp(ref, "*.", 2) != 0)
		return dns_id_matches(id, ref);
	if (strncmp(id, "*.", 2) == 0)
		return base_dname_equal(id + 2, ref + 2);
	return base_dname_valid(id) && wildcard_matches(ref + 2, id);
}

static bool reference_valid(const char *ref)
{
	if (strncmp(ref, "*.", 2) == 0)
		ref += 2;
	return base_dname_valid(ref);
}

bool tlsa_x509_names_match(WOLFSSL_X509 *x509, const char *host)
{
	WOLF_STACK_OF(WOLFSSL_GENERAL_NAME) *names;
	char id[DNS_ID_MAX];
	bool matched = false;
	int count;

	if (x509 == NULL || host == NULL || !reference_valid(host))
		return false;

	/*
	 * RFC 7672 section 3.2.3 matches only the DNS-IDs when the
	 * certificate has at least one. mxlock ignores the common name even
	 * when it has none, so such a certificate matches no name.
	 */
	names = wolfSSL_X509_get_ext_d2i(x509, NID_subject_alt_name, NULL,
					 NULL);
	if (names == NULL)
		return false;

	count = wolfSSL_sk_GENERAL_NAME_num(names);
	for (int i = 0; i < count && !matched; i++) {
		WOLFSSL_GENERAL_NAME *name =
			wolfSSL_sk_GENERAL_NAME_value(names, i);

		if (name == NULL || name->type != GEN_DNS)
			continue;
		if (dns_id_text(name->d.dNSName, id))
			matched = reference_matches(id, host);
	}

	wolfSSL_sk_GENERAL_NAME_pop_free(names, wolfSSL_GENERAL_NAME_free);
	return matched;
}

bool tlsa_cert_names_match(const uint8_t *der, size_t len, const char *host)
{
	const unsigned char *p = der;
	WOLFSSL_X509 *x509;
	bool matched;

	if (der == NULL || len == 0 || len > INT_MAX)
		return false;

	x509 = wolfSSL_d2i_X509(NULL, &p, (int)len);
	if (x509 == NULL)
		return false;
	matched = tlsa_x509_names_match(x509, host);
	wolfSSL_X509_free(x509);
	return matched;
}
