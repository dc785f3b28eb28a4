# DANE for SMTP (RFC 7672) against the signed test zones: which TLSA
# records authenticate an MX host, which do not, and what happens when
# the TLSA lookup fails. Each case asserts the reply, where the message
# landed and the summary line.
. "$(dirname "$0")/lib.sh"

mxlock_config may 'limits:
  timeouts:
    connect: 5'
sed -i 's/^dns:/dns:\n  probe: signed.test/' "$T/mxlock.yaml"
mxlock_start

# expect RCPT_DOMAIN STATUS VERIFIED DETAIL_REGEX
# Sends one message and checks the summary line for it.
expect() {
	local domain=$1 status=$2 verified=$3 detail=$4 marker log line
	marker=$(new_marker)
	log=$(send_mail --from a@client.test --to "user@$domain" \
		--header "Subject: $marker" --body "$marker")
	sleep 0.2
	line=$(grep "event=recipient .*to=\"user@$domain\"" "$T/mxlock.log" | tail -n 1)
	[ -n "$line" ] || fail "$domain: no summary line"
	case "$line" in
	*" status=$status "*) ;;
	*) echo "$line"; fail "$domain: expected status=$status" ;;
	esac
	case "$line" in
	*" verified=$verified "*) ;;
	*) echo "$line"; fail "$domain: expected verified=$verified" ;;
	esac
	if [ -n "$detail" ] && ! grep -E "$detail" <<<"$line" >/dev/null; then
		echo "$line"
		fail "$domain: summary line does not match: $detail"
	fi
	if [ "$status" = sent ]; then
		grep -rqlF "$marker" "$MAIL_DIR" || fail "$domain: message not stored"
	else
		! grep -rqlF "$marker" "$MAIL_DIR" || fail "$domain: message stored although $status"
	fi
	echo "ok: $domain $status verified=$verified"
}

expect dane-ee.signed.test sent yes 'policy=dane check="TLSA 3 1 1 matched depth 0" '
expect dane-ee-expired.signed.test sent yes 'policy=dane '
expect dane-ee-old.signed.test deferred no 'policy=dane check="no TLSA record matched.*dsn=4.7.5 .*reason=dane-failed'
expect dane-nonleaf.signed.test deferred no 'dsn=4.7.5 .*reason=dane-failed'
expect dane-ta.signed.test sent yes 'policy=dane '
expect dane-ta-nochain.signed.test deferred no 'dsn=4.7.5'
expect dane-ta-wrongname.signed.test deferred no 'dsn=4.7.5'
expect dane-unusable.signed.test sent no 'tls=TLSv1.* policy=dane '
expect dane-unusable-plain.signed.test deferred no 'dsn=4.7.4'
expect dane-unusable-plus.signed.test sent yes 'policy=dane '
expect dane-nostarttls.signed.test deferred no 'dsn=4.7.4'
expect dane-two.signed.test sent yes 'relay=good.signed.test'
expect dane-cname.signed.test sent yes 'relay=alias.signed.test'
expect dane-bogus.test deferred no 'dsn=4.7.5 .*reason=policy-excluded'
expect timeout.dane-lame.test deferred no 'dsn=4.7.5 .*reason=policy-excluded'
expect refused.dane-lame.test deferred no 'dsn=4.7.5 .*reason=policy-excluded'
expect expired.test deferred no 'dsn=4.4.3'
expect insecure-mx.plain.test sent no 'policy=may '
expect nostarttls.plain.test sent no 'policy=may '

mxlock_stop
assert_log 'event=tls mx=ee.signed.test\[127.0.27.1\]:25 policy=dane tls=TLSv1.[23] resumed=no verified=yes detail="TLSA 3 1 1 matched depth 0"'
assert_log 'event=tls mx=ta.signed.test\[127.0.27.5\]:25 policy=dane .*verified=yes detail="TLSA 2 1 1 matched depth 1"'
assert_log 'event=mx-failed mx=bad.signed.test\[127.0.27.12\]:25 reason=dane-failed'
assert_log 'event=dns-probe name=signed.test secure=yes'
! grep -q 'event=plaintext mx=.*127.0.27.11' "$T/mxlock.log" || fail "plaintext to a host with TLSA"
echo ok
