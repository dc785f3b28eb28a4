# STARTTLS counts only as a keyword line of the EHLO reply: in lower case
# or with a parameter it is used; in the greeting text or in the first
# line's server-name slot it is not, and the message goes in plaintext.
. "$(dirname "$0")/lib.sh"

peer_start 7 ehlo-lower
peer_start 8 ehlo-param
peer_start 9 ehlo-greeting-only
peer_start 10 ehlo-domain-slot
mxlock_config may
mxlock_start

check() {
	local n=$1 expect_tls=$2 marker log
	marker=$(new_marker)
	log=$(send_mail --from a@client.test --to "user@peer$n.plain.test" \
		--header "Subject: $marker" --body "$marker")
	assert_file_has "$log" "^<- *250"
	if [ "$expect_tls" = yes ]; then
		grep -q 'C: STARTTLS' "$T/peer$n/commands.log" || fail "peer$n: no STARTTLS sent"
	else
		! grep -q 'C: STARTTLS' "$T/peer$n/commands.log" || fail "peer$n: STARTTLS sent"
	fi
}
check 7 yes
check 8 yes
check 9 no
check 10 no
mxlock_stop
assert_log "event=mx-ready mx=peer7.plain.test\[127.0.26.7\]:25 tls=TLSv1"
assert_log "event=mx-ready mx=peer9.plain.test\[127.0.26.9\]:25 tls=none"
echo ok
