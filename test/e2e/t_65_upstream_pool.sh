# A later client connection to the same domain reuses the idle MX session
# that an earlier one left (no new TCP connection, no new handshake), and
# the reused session keeps its policy verdict.
. "$(dirname "$0")/lib.sh"

mxlock_config may
mxlock_start

sent_port() {
	local json
	json=$(find_mail "$1" "$2" "$3") || fail "message $3 not stored at $1"
	json_field "$json" peer_port
}

m1=$(new_marker)
log=$(send_mail --from a@client.test --to one@dane-ee.signed.test --header "Subject: $m1" --body "$m1")
assert_file_has "$log" "^<- *250 2.0.0"
m2=$(new_marker)
log=$(send_mail --from a@client.test --to two@dane-ee.signed.test --header "Subject: $m2" --body "$m2")
assert_file_has "$log" "^<- *250 2.0.0"

p1=$(sent_port ee one@dane-ee.signed.test "$m1")
p2=$(sent_port ee two@dane-ee.signed.test "$m2")
[ "$p1" = "$p2" ] || fail "second message came over a new connection (ports $p1 and $p2)"

mxlock_stop
assert_log 'event=mx-reuse mx=ee.signed.test\[127.0.27.1\]:25'
[ "$(grep -c 'event=tls mx=ee.signed.test' "$T/mxlock.log")" -eq 1 ] || fail "the reused session ran a second handshake"
assert_log 'event=recipient .*to="two@dane-ee.signed.test" .*verified=yes policy=dane .*status=sent'
echo ok
