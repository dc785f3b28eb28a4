# A client outside `clients` is refused with 554 5.7.1 before any command;
# an open mxlock would be an open relay.
. "$(dirname "$0")/lib.sh"

mxlock_config may 'clients: ["10.0.0.0/8", "::1/128"]'
mxlock_start
log=$(send_mail --from a@client.test --to user@signed.test)
assert_file_has "$log" "^<\*\* *554 5.7.1 Access denied"
mxlock_stop
assert_log "event=reject client=127.0.0.1 reason=client-not-allowed"
echo ok
