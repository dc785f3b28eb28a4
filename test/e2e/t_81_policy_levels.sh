# Security levels beyond the default: local rules (verify, secure, an
# expired rule, a rule weaker than the domain's DANE), dane-only as the
# default, and the setting that uses a host's secure TLSA below an insecure
# MX RRset ("trusted", never "verified"). SNI carries the TLSA base domain.
. "$(dirname "$0")/lib.sh"

summary() {
	grep "event=recipient .*to=\"user@$1\"" "$T/mxlock.log" | tail -n 1
}

send_one() {
	send_mail --from a@client.test --to "user@$1" --header "Subject: $2" --body "$2" >/dev/null
	sleep 0.2
}

mxlock_config may 'policy_rules_placeholder: 1'
# The rules go under policy:, so write that section by hand.
sed -i '/^policy_rules_placeholder/d' "$T/mxlock.yaml"
sed -i 's/^  default: may/  default: may\n  rules:\n    - domain: signed.test\n      level: verify\n    - domain: tls.plain.test\n      level: secure\n      match: ["mx9.elsewhere.test"]\n    - domain: nostarttls.plain.test\n      level: encrypt\n      until: "2001-01-01"\n    - domain: dane-ee.signed.test\n      level: may\n    - domain: sts-wrongcert.plain.test\n      level: secure\n      match: ["*.relay.sts-wrongcert.plain.test"]/' "$T/mxlock.yaml"
mxlock_start

m=$(new_marker); send_one signed.test "$m"
summary signed.test | grep -q 'verified=yes policy=verify .*status=sent' ||
	{ summary signed.test; fail "verify rule: expected a verified delivery"; }
m=$(new_marker); send_one tls.plain.test "$m"
summary tls.plain.test | grep -q 'dsn=4.7.5 status=deferred reason=certificate-failed' ||
	{ summary tls.plain.test; fail "secure rule with a foreign match list: expected 4.7.5"; }
# The encrypt rule lapsed in 2001, so the default (may) delivers in plaintext.
m=$(new_marker); send_one nostarttls.plain.test "$m"
summary nostarttls.plain.test | grep -q 'policy=may .*status=sent' ||
	{ summary nostarttls.plain.test; fail "expired rule still applied"; }
m=$(new_marker); send_one dane-ee.signed.test "$m"
summary dane-ee.signed.test | grep -q 'policy=may .*status=sent' ||
	{ summary dane-ee.signed.test; fail "rule may should win over DANE"; }
# A wildcard in the match list accepts a certificate for one host below it.
m=$(new_marker); send_one sts-wrongcert.plain.test "$m"
summary sts-wrongcert.plain.test | grep -q 'verified=yes policy=secure .*status=sent' ||
	{ summary sts-wrongcert.plain.test; fail "secure rule with a wildcard match entry: expected a verified delivery"; }
mxlock_stop
assert_log 'event=policy-rule domain=signed.test level=verify until=never'
assert_log 'event=policy-rule-lapsed domain=nostarttls.plain.test level=encrypt'
assert_log 'event=policy-rule-weaker domain=dane-ee.signed.test level=may set-aside=dane'

# dane-only as the default, and TLSA below an insecure MX RRset.
: >"$T/mxlock.log"
mxlock_config dane-only
sed -i 's/^  default: dane-only/  default: dane-only\n  dane_insecure_mx: true/' "$T/mxlock.yaml"
mxlock_start
m=$(new_marker); send_one nostarttls.plain.test "$m"
summary nostarttls.plain.test | grep -q 'dsn=4.7.5 status=deferred reason=policy-excluded' ||
	{ summary nostarttls.plain.test; fail "dane-only delivered without DANE"; }
m=$(new_marker); send_one insecure-mx.plain.test "$m"
summary insecure-mx.plain.test | grep -q 'verified=trusted policy=dane .*status=sent' ||
	{ summary insecure-mx.plain.test; fail "insecure MX RRset with secure TLSA: expected trusted"; }
m=$(new_marker); send_one dane-cname.signed.test "$m"
json=$(grep -rlF "$m" "$MAIL_DIR" | head -n 1)
[ -n "$json" ] || fail "dane-cname message not stored"
[ "$(json_field "${json%.eml}.json" sni)" = realhost.signed.test ] ||
	fail "SNI was $(json_field "${json%.eml}.json" sni), expected the TLSA base domain realhost.signed.test"
mxlock_stop
echo ok
