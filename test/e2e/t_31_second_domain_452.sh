# A second recipient domain in one transaction gets 452 4.5.3; the first
# recipient's message is delivered, and the second arrives when the client
# sends it again in its own transaction.
. "$(dirname "$0")/lib.sh"

mxlock_config may
mxlock_start
marker=$(new_marker)
log=$(send_mail --from a@client.test --to user@signed.test,other@nostarttls.plain.test \
	--header "Subject: $marker" --body "$marker")
assert_file_has "$log" "^<\*\* *452 4.5.3 Recipient is for another domain"
assert_file_has "$log" "^<- *250 2.0.0"
find_mail mx1 user@signed.test "$marker" >/dev/null ||
	find_mail mx2 user@signed.test "$marker" >/dev/null || fail "first recipient not delivered"
no_mail "$marker" 2>/dev/null
[ -z "$(grep -rlF "$marker" "$MAIL_DIR/mx3" 2>/dev/null)" ] || fail "second domain got the first transaction"

log=$(send_mail --from a@client.test --to other@nostarttls.plain.test \
	--header "Subject: $marker" --body "$marker")
assert_file_has "$log" "^<- *250 2.0.0"
find_mail mx3 other@nostarttls.plain.test "$marker" >/dev/null || fail "second recipient not delivered later"
mxlock_stop
assert_log "event=recipient .*to=\"other@nostarttls.plain.test\" .*dsn=4.5.3 status=deferred reason=other-domain"
echo ok
