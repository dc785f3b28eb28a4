# A swaks client sends through mxlock to a domain whose MX offers STARTTLS:
# the message arrives over TLS 1.2 or later, byte for byte, and the summary
# line reports the relay, TLS version and status.
. "$(dirname "$0")/lib.sh"

mxlock_config may
mxlock_start
marker=$(new_marker)
log=$(send_mail --from sender@client.test --to user@signed.test \
	--header "Subject: $marker" --body "$marker body")
assert_file_has "$log" "^<- *250 2.0.0"

json=$(find_mail mx1 user@signed.test "$marker") ||
	json=$(find_mail mx2 user@signed.test "$marker") ||
	fail "message not stored at mx1 or mx2"
tls=$(json_field "$json" tls)
case "$tls" in
TLSv1.2|TLSv1.3) ;;
*) fail "message arrived with tls=$tls, expected TLSv1.2 or TLSv1.3" ;;
esac
[ "$(json_field "$json" sni)" != null ] || fail "no SNI sent to the MX"

mxlock_stop
assert_log "event=recipient from=\"sender@client.test\" to=\"user@signed.test\" relay=mx[12].signed.test\[127.0.25.[12]\]:25 .*tls=TLSv1.[23] .*status=sent"
echo ok
