# Under `may`, an MX without STARTTLS gets the message in plaintext, and the
# log says so.
. "$(dirname "$0")/lib.sh"

mxlock_config may
mxlock_start
marker=$(new_marker)
log=$(send_mail --from a@client.test --to user@nostarttls.plain.test \
	--header "Subject: $marker" --body "$marker")
assert_file_has "$log" "^<- *250 2.0.0"
json=$(find_mail mx3 user@nostarttls.plain.test "$marker") || fail "message not stored at mx3"
[ "$(json_field "$json" tls)" = null ] || fail "expected a plaintext delivery"
mxlock_stop
assert_log "event=plaintext mx=mx3.plain.test\[127.0.25.3\]:25 reason=starttls-not-offered"
assert_log "event=recipient .*to=\"user@nostarttls.plain.test\" relay=mx3.plain.test.* tls=none .*status=sent"
echo ok
