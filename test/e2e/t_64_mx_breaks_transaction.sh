# An MX that breaks the transaction after accepting a recipient: the client
# gets a 4xx to DATA (never a 5xx that would bounce the accepted recipient),
# a 250 where 354 belongs is a protocol error, and control bytes in an MX
# reply never reach the client.
. "$(dirname "$0")/lib.sh"

cat >"$T/close-after-rcpt.script" <<'SCRIPT'
send "220 peer15 ESMTP\r\n"
expect EHLO
send "250-peer15\r\n250 8BITMIME\r\n"
expect MAIL
send "250 2.1.0 ok\r\n"
expect RCPT
send "250 2.1.5 ok\r\n"
close
SCRIPT
cat >"$T/data-250.script" <<'SCRIPT'
send "220 peer16 ESMTP\r\n"
expect EHLO
send "250-peer16\r\n250 8BITMIME\r\n"
expect MAIL
send "250 2.1.0 ok\r\n"
expect RCPT
send "250 2.1.5 ok\r\n"
expect DATA
send "250 2.0.0 queued without data\r\n"
sleep 5
SCRIPT
cat >"$T/cr-in-reply.script" <<'SCRIPT'
send "220 peer17 ESMTP\r\n"
expect EHLO
send "250-peer17\r\n250 8BITMIME\r\n"
expect MAIL
send "250 2.1.0 ok\r\n"
expect RCPT
send "550 5.1.1 unknown\r250 2.0.0 injected\r\n"
sleep 5
SCRIPT

start_script() {
	local n=$1 script=$2
	"$PYTHON" "$MXLOCK_TOP/test/peers/script_mx.py" --address "127.0.26.$n" \
		--port 25 --script "$script" --out "$T/peer$n" >"$T/peer$n.out" 2>&1 &
	PEER_PIDS+=($!)
	wait_listening "127.0.26.$n:25" || fail "scripted peer on 127.0.26.$n did not start"
}
start_script 15 "$T/close-after-rcpt.script"
start_script 16 "$T/data-250.script"
start_script 17 "$T/cr-in-reply.script"
mxlock_config may
mxlock_start

log=$(send_mail --from a@client.test --to user@peer15.plain.test)
assert_file_has "$log" "^<- *250 2.1.5 ok"
assert_file_has "$log" "^<\*\* *451 4.4.2"
! grep -q '^<\*\* *5' "$log" || fail "a 5xx reached the client after the MX accepted the recipient"

log=$(send_mail --from a@client.test --to user@peer16.plain.test)
assert_file_has "$log" "^<\*\* *451 4.5.0 .*invalid reply to DATA"

log=$(send_mail --from a@client.test --to user@peer17.plain.test)
assert_file_has "$log" "^<\*\* *550 5.1.1 unknown 250 2.0.0 injected$"
! grep -q '^<- *250 2.0.0 injected' "$log" || fail "a CR in the MX reply split the client's reply"
mxlock_stop
assert_log 'event=recipient .*to="user@peer15.plain.test" .*dsn=4.4.2 status=deferred'
echo ok
