# mxlock listens on IPv6 as well as IPv4; a client on ::1 is served.
. "$(dirname "$0")/lib.sh"

ip -6 addr show dev lo 2>/dev/null | grep -q '::1/128' || skip "no IPv6 loopback address (::1) on this machine"
mxlock_config may 'clients: ["127.0.0.0/8", "::1/128"]'
sed -i "s/^listen:/listen:\n  - address: \"::1\"\n    port: $MXLOCK_PORT/" "$T/mxlock.yaml"
mxlock_start
wait_listening "[::1]:$MXLOCK_PORT" || fail "no IPv6 listener"
marker=$(new_marker)
swaks --server ::1 --port "$MXLOCK_PORT" --from a@client.test --to user@signed.test \
	--header "Subject: $marker" --body "$marker" >"$T/swaks6.log" 2>&1
assert_file_has "$T/swaks6.log" "^<- *250 2.0.0"
mxlock_stop
assert_log "event=connect client=::1"
echo ok
