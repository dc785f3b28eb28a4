# TLS session resumption toward MX hosts. A second connection to the same
# MX under the same policy resumes the first one's session and keeps its
# verdict. A connection to that MX under a stricter policy never resumes a
# session that a weaker policy made. It runs the full handshake and its
# own certificate check, which here fails.
. "$(dirname "$0")/lib.sh"

# verify.resume.plain.test shares the MX host of sts-wrongcert.plain.test,
# whose certificate names another host.
"$TESTNET_SH" dns-set "$TESTNET_DIR" verify.resume.plain.test MX \
	"10 mx.sts-wrongcert.plain.test." || fail "dns-set failed"

mxlock_config may
sed -i 's/^  default: may/  default: may\n  rules:\n    - domain: sts-wrongcert.plain.test\n      level: may\n    - domain: verify.resume.plain.test\n      level: verify/' "$T/mxlock.yaml"
mxlock_start

# Holds open SMTP sessions, one per argument, each after its RCPT, so
# that every one needs its own MX connection. Prints each RCPT reply
# code, then ends the sessions with QUIT.
hold_sessions() {
	"$PYTHON" - "$MXLOCK_ADDR" "$MXLOCK_PORT" "$@" <<'PY'
import socket, sys

host, port, rcpts = sys.argv[1], int(sys.argv[2]), sys.argv[3:]


def reply(f):
    while True:
        line = f.readline()
        if not line:
            return "eof"
        if line[3:4] != b"-":
            return line[:3].decode()


sessions = []
for rcpt in rcpts:
    s = socket.create_connection((host, port), timeout=30)
    f = s.makefile("rb")
    reply(f)
    for cmd in ("EHLO client.test", "MAIL FROM:<a@client.test>", f"RCPT TO:<{rcpt}>"):
        s.sendall(cmd.encode() + b"\r\n")
        code = reply(f)
    print(rcpt, code, flush=True)
    sessions.append((s, f))
for s, f in sessions:
    s.sendall(b"QUIT\r\n")
    reply(f)
    s.close()
PY
}

out=$(hold_sessions a@sts-wrongcert.plain.test b@verify.resume.plain.test \
	c@sts-wrongcert.plain.test one@dane-ee.signed.test two@dane-ee.signed.test)
echo "$out" >"$T/replies.txt"
grep -qx 'a@sts-wrongcert.plain.test 250' "$T/replies.txt" || fail "may: first RCPT not accepted: $out"
grep -qxE 'b@verify.resume.plain.test 4[0-9][0-9]' "$T/replies.txt" ||
	fail "verify: RCPT should get a 4xx reply (the certificate names another host): $out"
grep -qx 'c@sts-wrongcert.plain.test 250' "$T/replies.txt" || fail "may: second RCPT not accepted: $out"
grep -qx 'two@dane-ee.signed.test 250' "$T/replies.txt" || fail "dane: second RCPT not accepted: $out"
mxlock_stop

wrong='mx=mx.sts-wrongcert.plain.test\[127.0.28.3\]:25'
grep "event=tls $wrong" "$T/mxlock.log" >"$T/tls-wrongcert.log"
[ "$(sed -n 1p "$T/tls-wrongcert.log" | grep -c 'policy=may .*resumed=no')" -eq 1 ] ||
	fail "the first may connection should run a full handshake"
[ "$(sed -n 2p "$T/tls-wrongcert.log" | grep -c 'policy=may .*resumed=yes verified=no')" -eq 1 ] ||
	fail "the second may connection should resume the first one's session"
# Under verify the check failed, so there is no event=tls line for it;
# the failure line must show a full handshake was made and judged.
grep "event=mx-failed $wrong" "$T/mxlock.log" | grep -q 'reason=certificate-failed' ||
	fail "verify: no certificate failure logged for the shared MX"
grep -q "event=tls $wrong .*policy=verify" "$T/mxlock.log" &&
	fail "verify: a connection passed the certificate check"
grep "event=tls mx=ee.signed.test" "$T/mxlock.log" | sed -n 2p |
	grep -q 'policy=dane .*resumed=yes verified=yes detail="TLSA 3 1 1 matched depth 0"' ||
	fail "dane: the second connection should resume and keep the TLSA verdict"
echo ok
