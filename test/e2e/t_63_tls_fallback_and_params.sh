# Under `may`, a refused STARTTLS and a failed handshake are each retried in
# plaintext on a new connection and logged; under `encrypt` neither is.
# MAIL parameters follow what the MX offers: SIZE and BODY are dropped for
# an MX without them, capabilities seen before TLS are forgotten after it,
# and a message that needs SMTPUTF8 is refused with 5.6.7 for an MX without
# SMTPUTF8.
. "$(dirname "$0")/lib.sh"

peer_start 11 starttls-refused
peer_start 12 handshake-fail
peer_start 13 minimal
peer_start 14 caps-change

# Sends with smtplib so MAIL can carry parameters; prints the refusals.
send_params() {
	local rcpt=$1 marker=$2 options=$3
	"$PYTHON" - "$MXLOCK_ADDR" "$MXLOCK_PORT" "$rcpt" "$marker" "$options" <<'PY'
import smtplib, sys
host, port, rcpt, marker, options = sys.argv[1:6]
msg = "Subject: %s\r\n\r\n%s\r\n" % (marker, marker)
with smtplib.SMTP(host, int(port), timeout=60) as s:
    s.ehlo("client.test")
    try:
        s.sendmail("a@client.test", [rcpt], msg.encode(), mail_options=options.split())
        print("result: sent")
    except smtplib.SMTPRecipientsRefused as e:
        for code, text in e.recipients.values():
            print("result: refused %d %s" % (code, text.decode()))
PY
}

mxlock_config may
mxlock_start
for n in 11 12; do
	marker=$(new_marker)
	log=$(send_mail --from a@client.test --to "user@peer$n.plain.test" \
		--header "Subject: $marker" --body "$marker")
	assert_file_has "$log" "^<- *250"
	[ "$(peer_messages "$n")" -eq 1 ] || fail "peer$n did not get the message in plaintext"
	[ "$(grep -c 'C: EHLO' "$T/peer$n/commands.log")" -eq 2 ] || fail "peer$n: expected two sessions"
done
assert_log "event=mx-failed mx=peer11.plain.test\[127.0.26.11\]:25 reason=starttls-refused"
assert_log "event=tls-fallback mx=peer11.plain.test\[127.0.26.11\]:25 policy=may action=plaintext-retry"
assert_log "event=mx-failed mx=peer12.plain.test\[127.0.26.12\]:25 reason=tls-failed"
assert_log "event=tls-fallback mx=peer12.plain.test\[127.0.26.12\]:25 policy=may action=plaintext-retry"

out=$(send_params user@peer13.plain.test "$(new_marker)" "SIZE=1234 BODY=8BITMIME")
[ "$out" = "result: sent" ] || fail "minimal MX: $out"
grep -qx 'conn=[0-9]* C: MAIL FROM:<a@client.test>' "$T/peer13/commands.log" ||
	{ grep 'MAIL' "$T/peer13/commands.log"; fail "MAIL parameters not dropped for an MX without SIZE and 8BITMIME"; }
assert_log "event=8bitmime-unsupported action=sent-as-is"

out=$(send_params user@peer14.plain.test "$(new_marker)" "SIZE=1234")
[ "$out" = "result: sent" ] || fail "caps-change MX: $out"
grep -qx 'conn=[0-9]* C: MAIL FROM:<a@client.test>' "$T/peer14/commands.log" ||
	{ grep 'MAIL' "$T/peer14/commands.log"; fail "SIZE learned before TLS was used after it"; }

out=$(send_params user@peer13.plain.test "$(new_marker)" "SMTPUTF8")
case "$out" in
"result: refused 553 5.6.7"*) ;;
*) fail "SMTPUTF8 message to an MX without SMTPUTF8: $out" ;;
esac
mxlock_stop

# Under encrypt, the same peers get nothing and the client a 4xx.
: >"$T/mxlock.log"
mxlock_config encrypt
mxlock_start
before11=$(peer_messages 11)
before12=$(peer_messages 12)
log=$(send_mail --from a@client.test --to user@peer11.plain.test)
assert_file_has "$log" "^<\*\* *451 4.7.4"
log=$(send_mail --from a@client.test --to user@peer12.plain.test)
assert_file_has "$log" "^<\*\* *451 4.7.5"
[ "$(peer_messages 11)" -eq "$before11" ] || fail "peer11 got a message under encrypt"
[ "$(peer_messages 12)" -eq "$before12" ] || fail "peer12 got a message under encrypt"
mxlock_stop
if grep -q 'event=tls-fallback' "$T/mxlock.log"; then
	fail "plaintext fallback under encrypt"
fi
echo ok
