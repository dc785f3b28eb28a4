/* Failure classification: the one table of kinds. See outcome.h. */
#include <stdio.h>
#include <string.h>

#include "outcome.h"

struct kind_info {
	enum outcome_scope scope;
	int code;
	const char *enhanced;
	const char *reason;
	const char *text;
};

/* Indexed by enum outcome_kind. */
static const struct kind_info kinds[] = {
	[OUTCOME_NULL_MX] = { OUTCOME_SCOPE_RECIPIENT, 556, "5.1.10", "null-mx",
		"Recipient domain does not accept mail (null MX)" },
	[OUTCOME_NO_DOMAIN] = { OUTCOME_SCOPE_RECIPIENT, 550, "5.1.2", "no-domain",
		"Recipient domain not found" },
	[OUTCOME_DNS_TEMPFAIL] = { OUTCOME_SCOPE_RECIPIENT, 451, "4.4.3", "dns-failed",
		"DNS lookup failed, try again later" },
	[OUTCOME_NO_ADDRESS] = { OUTCOME_SCOPE_RECIPIENT, 451, "4.4.4", "no-address",
		"No MX host of the recipient domain has an address" },
	[OUTCOME_CONNECT_FAILED] = { OUTCOME_SCOPE_HOST, 451, "4.4.1", "connect-failed",
		"Could not connect to any MX host" },
	[OUTCOME_GREETING_REFUSED] = { OUTCOME_SCOPE_HOST, 451, "4.4.2", "greeting-refused",
		"MX host refused the session" },
	[OUTCOME_EHLO_REFUSED] = { OUTCOME_SCOPE_HOST, 451, "4.4.2", "ehlo-refused",
		"MX host refused EHLO and HELO" },
	[OUTCOME_STARTTLS_MISSING] = { OUTCOME_SCOPE_HOST, 451, "4.7.4", "starttls-missing",
		"TLS is required but the MX host does not offer STARTTLS" },
	[OUTCOME_STARTTLS_REFUSED] = { OUTCOME_SCOPE_HOST, 451, "4.7.4", "starttls-refused",
		"TLS is required but the MX host refused STARTTLS" },
	[OUTCOME_TLS_FAILED] = { OUTCOME_SCOPE_HOST, 451, "4.7.5", "tls-failed",
		"TLS handshake with the MX host failed" },
	[OUTCOME_TLS_INJECTION] = { OUTCOME_SCOPE_HOST, 451, "4.7.0", "tls-injection",
		"MX host sent data between STARTTLS and the TLS handshake" },
	[OUTCOME_DANE_FAILED] = { OUTCOME_SCOPE_HOST, 451, "4.7.5", "dane-failed",
		"DANE verification failed" },
	[OUTCOME_CERT_FAILED] = { OUTCOME_SCOPE_HOST, 451, "4.7.5", "certificate-failed",
		"Certificate verification failed" },
	[OUTCOME_POLICY_SKIP] = { OUTCOME_SCOPE_HOST, 451, "4.7.5", "policy-excluded",
		"No MX host is usable under the domain's security policy" },
	[OUTCOME_PROTOCOL] = { OUTCOME_SCOPE_HOST, 451, "4.5.0", "protocol-error",
		"MX host sent an invalid reply" },
	[OUTCOME_TIMEOUT] = { OUTCOME_SCOPE_HOST, 451, "4.4.2", "timeout",
		"MX host timed out" },
	[OUTCOME_LOST] = { OUTCOME_SCOPE_HOST, 451, "4.4.2", "connection-lost",
		"Connection to the MX host was lost" },
	[OUTCOME_SMTPUTF8_UNSUPPORTED] = { OUTCOME_SCOPE_MESSAGE, 553, "5.6.7", "smtputf8-unsupported",
		"Message needs SMTPUTF8 but the MX host does not support it" },
	[OUTCOME_TOO_BIG] = { OUTCOME_SCOPE_MESSAGE, 552, "5.3.4", "too-big",
		"Message exceeds the size limit" },
	[OUTCOME_OTHER_DOMAIN] = { OUTCOME_SCOPE_RECIPIENT, 452, "4.5.3", "other-domain",
		"Recipient is for another domain; send it in a separate transaction" },
	[OUTCOME_TOO_MANY_RCPTS] = { OUTCOME_SCOPE_RECIPIENT, 452, "4.5.3", "too-many-recipients",
		"Too many recipients" },
	[OUTCOME_LOCAL_ERROR] = { OUTCOME_SCOPE_MESSAGE, 451, "4.3.0", "local-error",
		"Local error in mxlock, try again later" },
	[OUTCOME_REMOTE_REPLY] = { OUTCOME_SCOPE_RECIPIENT, 451, "4.0.0", "remote-reply",
		"" },
};

void outcome_set(struct outcome *o, enum outcome_kind kind, const char *detail)
{
	const struct kind_info *k = &kinds[kind];

	o->kind = kind;
	o->scope = k->scope;
	o->code = k->code;
	o->permanent = k->code >= 500;
	snprintf(o->enhanced, sizeof(o->enhanced), "%s", k->enhanced);
	snprintf(o->reason, sizeof(o->reason), "%s", k->reason);
	if (detail != NULL && detail[0] != '\0')
		snprintf(o->text, sizeof(o->text), "%s: %s", k->text, detail);
	else
		snprintf(o->text, sizeof(o->text), "%s", k->text);
}

void outcome_from_reply(struct outcome *o, const struct smtp_reply *r)
{
	const char *text = r->line_count > 0 ? r->lines[0] : "";
	char enhanced[16] = "";

	outcome_set(o, OUTCOME_REMOTE_REPLY, NULL);
	o->code = r->code;
	o->permanent = r->code >= 500;
	if (smtp_reply_enhanced(r, enhanced, sizeof(enhanced))) {
		text += strlen(enhanced);
		while (*text == ' ')
			text++;
	}
	/* RFC 3463 section 3: the class must agree with the reply code. */
	if (enhanced[0] - '0' == r->code / 100 && enhanced[1] == '.')
		snprintf(o->enhanced, sizeof(o->enhanced), "%s", enhanced);
	else
		snprintf(o->enhanced, sizeof(o->enhanced), "%d.0.0", r->code / 100);
	snprintf(o->text, sizeof(o->text), "%s", text);

	/* The text goes back to the client inside one reply line: a CR or
	   another control byte from the MX must not split or bend it. */
	for (char *p = o->text; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	}
}

size_t outcome_format(const struct outcome *o, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%d %s %s\r\n", o->code, o->enhanced, o->text);

	if (n < 0)
		return 0;
	if ((size_t)n >= outlen) {
		/* Keep the line end even when the text was cut. */
		out[outlen - 3] = '\r';
		out[outlen - 2] = '\n';
		return outlen - 1;
	}
	return (size_t)n;
}

const char *outcome_status(const struct outcome *o)
{
	if (o->code >= 500)
		return "bounced";
	if (o->code >= 400)
		return "deferred";
	return "sent";
}
