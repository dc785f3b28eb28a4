# MX reply framing (RFC 5321 section 4.2): a greeting whose last line comes
# 3 s later (EHLO must wait for it), replies split into single bytes, and
# bare LF line ends are all delivered; a line over the limit and a code that
# changes inside one reply are protocol errors that give a 4xx.
. "$(dirname "$0")/lib.sh"

peer_start 2 slow-greeting
peer_start 3 split
peer_start 4 bare-lf
peer_start 5 long-line
peer_start 6 code-change
mxlock_config may
mxlock_start

for n in 2 3 4; do
	marker=$(new_marker)
	log=$(send_mail --from a@client.test --to "user@peer$n.plain.test" \
		--header "Subject: $marker" --body "$marker")
	assert_file_has "$log" "^<- *250"
	[ "$(peer_messages "$n")" -eq 1 ] || fail "peer$n stored $(peer_messages "$n") messages, expected 1"
done
if grep -q 'event=early-data result=yes' "$T/peer2/events.log"; then
	grep 'event=early-data' "$T/peer2/events.log"
	fail "mxlock sent a command before the greeting's last line"
fi

for n in 5 6; do
	log=$(send_mail --from a@client.test --to "user@peer$n.plain.test")
	assert_file_has "$log" "^<\*\* *451 4.5.0 MX host sent an invalid reply"
	[ "$(peer_messages "$n")" -eq 0 ] || fail "peer$n got a message"
done
mxlock_stop
assert_log "event=mx-failed mx=peer5.plain.test\[127.0.26.5\]:25 reason=protocol-error"
assert_log "event=mx-failed mx=peer6.plain.test\[127.0.26.6\]:25 reason=protocol-error"
echo ok
