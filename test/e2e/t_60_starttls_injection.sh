# An MX that sends extra bytes in the same segment as its 220 reply to
# STARTTLS (response injection): mxlock drops that connection, answers 4xx
# and relays nothing, not even in plaintext.
. "$(dirname "$0")/lib.sh"

peer_start 1 inject
mxlock_config may
mxlock_start
marker=$(new_marker)
log=$(send_mail --from a@client.test --to user@peer1.plain.test \
	--header "Subject: $marker" --body "$marker")
assert_file_has "$log" "^<\*\* *451 4.7.0 MX host sent data between STARTTLS and the TLS handshake"
mxlock_stop

[ "$(peer_messages 1)" -eq 0 ] || fail "the injecting peer received a message"
if grep -E 'C: (MAIL|RCPT|DATA)' "$T/peer1/commands.log"; then
	fail "mxlock sent envelope commands to the injecting peer"
fi
assert_log "event=mx-failed mx=peer1.plain.test\[127.0.26.1\]:25 reason=tls-injection"
echo ok
