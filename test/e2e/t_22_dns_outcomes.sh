# Routing outcomes: Null MX is refused permanently (556 5.1.10), a domain
# that does not exist gets 550 5.1.2, a lookup that fails validation (bogus)
# and an MX host without an address get a 4xx, and a domain without MX is
# delivered to its own address (implicit MX).
. "$(dirname "$0")/lib.sh"

mxlock_config may
mxlock_start
log=$(send_mail --from a@client.test --to user@nullmx.plain.test)
assert_file_has "$log" "^<\*\* *556 5.1.10"
log=$(send_mail --from a@client.test --to user@nx.plain.test)
assert_file_has "$log" "^<\*\* *550 5.1.2"
log=$(send_mail --from a@client.test --to user@bogus.test)
assert_file_has "$log" "^<\*\* *451 4.4.3"
log=$(send_mail --from a@client.test --to user@noaddr.plain.test)
assert_file_has "$log" "^<\*\* *451 4.4.4"

marker=$(new_marker)
log=$(send_mail --from a@client.test --to user@implicit.plain.test \
	--header "Subject: $marker" --body "$marker")
assert_file_has "$log" "^<- *250 2.0.0"
find_mail mx3 user@implicit.plain.test "$marker" >/dev/null || fail "implicit MX delivery not stored"
mxlock_stop
assert_log "event=recipient .*to=\"user@nullmx.plain.test\" .*dsn=5.1.10 status=bounced reason=null-mx"
assert_log "event=recipient .*to=\"user@bogus.test\" .*dsn=4.4.3 status=deferred"
echo ok
