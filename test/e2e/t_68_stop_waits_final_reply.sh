# SIGTERM while a message waits for the MX's reply to its final dot: the
# MX may already have it, so mxlock relays that reply before it closes
# with 421, and the MTA does not send the message twice. An idle client
# gets 421 at once.
. "$(dirname "$0")/lib.sh"

cat >"$T/slow-final.script" <<'SCRIPT'
send "220 peer18 ESMTP\r\n"
expect EHLO
send "250-peer18\r\n250 8BITMIME\r\n"
expect MAIL
send "250 2.1.0 ok\r\n"
expect RCPT
send "250 2.1.5 ok\r\n"
expect DATA
send "354 go ahead\r\n"
expect Subject
expect
expect marker
expect .
sleep 2
send "250 2.0.0 stored after a pause\r\n"
expect QUIT
send "221 bye\r\n"
SCRIPT
"$PYTHON" "$MXLOCK_TOP/test/peers/script_mx.py" --address 127.0.26.18 \
	--port 25 --script "$T/slow-final.script" --out "$T/peer18" >"$T/peer18.out" 2>&1 &
PEER_PIDS+=($!)
wait_listening "127.0.26.18:25" || fail "scripted peer on 127.0.26.18 did not start"

mxlock_config may
mxlock_start

# Sends one message and prints every reply line after the final dot.
"$PYTHON" - "$MXLOCK_ADDR" "$MXLOCK_PORT" >"$T/sender.txt" 2>&1 <<'PY' &
import socket, sys

s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
f = s.makefile("rb")
f.readline()
for cmd in ("EHLO client.test", "MAIL FROM:<a@client.test>",
            "RCPT TO:<user@peer18.plain.test>", "DATA"):
    s.sendall(cmd.encode() + b"\r\n")
    while True:
        line = f.readline()
        if line[3:4] != b"-":
            break
s.sendall(b"Subject: s\r\n\r\nmarker\r\n.\r\n")
for line in f:
    print(line.decode().rstrip())
PY
sender=$!
# An idle client, after EHLO.
exec 3<>"/dev/tcp/$MXLOCK_ADDR/$MXLOCK_PORT"
read -r greeting <&3
printf 'EHLO idle.test\r\n' >&3

sleep 1
kill -TERM "$MXLOCK_PID"
wait "$sender"
idle=$(timeout 5 cat <&3 | tr -d '\r' | grep '^421' | head -n 1)
exec 3<&-
mxlock_stop

sed -n 1p "$T/sender.txt" | grep -q '^250 2.0.0 stored after a pause' ||
	fail "the waiting client did not get the MX's reply first: $(tr '\n' '|' <"$T/sender.txt")"
sed -n 2p "$T/sender.txt" | grep -q '^421 4.3.2' ||
	fail "the waiting client got no 421 after the reply: $(tr '\n' '|' <"$T/sender.txt")"
[ -n "$idle" ] || fail "the idle client got no 421 (greeting was: $greeting)"
assert_log 'event=stop-wait clients=1 reason=final-reply'
assert_log 'event=recipient .*to="user@peer18.plain.test" .*status=sent'
# The MX saw the message end once and then a QUIT, not a dropped connection.
[ "$(grep -c ' C: \.$' "$T/peer18/commands.log")" -eq 1 ] || fail "the MX did not get the final dot once"
grep -q ' C: QUIT$' "$T/peer18/commands.log" || fail "mxlock did not end the MX session with QUIT"
echo ok
