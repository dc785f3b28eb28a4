# Under `encrypt`, an MX without STARTTLS gets nothing: the client gets a
# 4xx with 4.7.4, so the message stays queued at the sender.
. "$(dirname "$0")/lib.sh"

mxlock_config encrypt
mxlock_start
marker=$(new_marker)
log=$(send_mail --from a@client.test --to user@nostarttls.plain.test \
	--header "Subject: $marker" --body "$marker")
assert_file_has "$log" "^<\*\* *451 4.7.4 TLS is required but the MX host does not offer STARTTLS"
sleep 0.5
no_mail "$marker" || fail "the message reached an MX in plaintext"

# The same level delivers over TLS where STARTTLS is offered.
log=$(send_mail --from a@client.test --to user@signed.test \
	--header "Subject: $marker-tls" --body "$marker-tls")
assert_file_has "$log" "^<- *250 2.0.0"
mxlock_stop
assert_log "event=mx-failed mx=mx3.plain.test\[127.0.25.3\]:25 reason=starttls-missing"
assert_log "event=recipient .*to=\"user@nostarttls.plain.test\" .*policy=encrypt .*dsn=4.7.4 status=deferred"
echo ok
