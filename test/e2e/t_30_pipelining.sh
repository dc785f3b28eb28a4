# A pipelining client sends MAIL, RCPT, RCPT and DATA in one write; every
# reply comes back in order and both recipients get the message in one
# transaction.
. "$(dirname "$0")/lib.sh"

mxlock_config may
mxlock_start
marker=$(new_marker)
log=$(send_mail --pipeline --from a@client.test --to one@signed.test,two@signed.test \
	--header "Subject: $marker" --body "$marker")
assert_file_has "$log" "^<- *250 2.0.0"
json=$(find_mail mx1 one@signed.test "$marker") ||
	json=$(find_mail mx2 one@signed.test "$marker") || fail "message not stored"
grep -qF '"two@signed.test"' "$json" || fail "second recipient missing from the stored envelope"

# swaks shows the pipelined group as one block of commands, then the replies.
assert_file_has "$log" "^ -> MAIL FROM"
mxlock_stop
assert_log "event=recipient .*to=\"one@signed.test\" .*status=sent"
assert_log "event=recipient .*to=\"two@signed.test\" .*status=sent"
echo ok
