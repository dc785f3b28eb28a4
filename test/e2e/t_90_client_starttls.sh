# STARTTLS toward the client (RFC 3207), with tls.server_cert and
# tls.server_key set:
#  - swaks --tls through mxlock: delivered, the log names the client's TLS
#    version;
#  - a client that pipelines MAIL behind STARTTLS in one write gets no
#    reply to it inside TLS; the discard is logged;
#  - after TLS the EHLO state is gone (MAIL before EHLO gets 503), STARTTLS
#    is no longer advertised, and a second STARTTLS gets 503;
#  - without a certificate STARTTLS is not advertised and gets 502.
. "$(dirname "$0")/lib.sh"

# A certificate for mxlock.test from the test CA, in a folder of our own.
mkdir -p "$T/pki"
cp "$PKI_DIR/ca.key" "$PKI_DIR/ca.crt" "$PKI_DIR/openssl.cnf" "$T/pki/"
"$PKI_SH" leaf "$T/pki" mxlock.test ec >"$T/pki.log" 2>&1 ||
	{ cat "$T/pki.log"; fail "issuing the mxlock.test certificate failed"; }

mxlock_config may
sed -i "s|^tls:|tls:\n  server_cert: $T/pki/mxlock.test.chain.pem\n  server_key: $T/pki/mxlock.test.key|" "$T/mxlock.yaml"
mxlock_start

# 1. swaks with STARTTLS, delivered to the MX over TLS as well.
marker=$(new_marker)
log=$(send_mail --tls --from sender@client.test --to user@signed.test \
	--header "Subject: $marker" --body "$marker body")
assert_file_has "$log" "^<- *250-STARTTLS"
assert_file_has "$log" "^=== TLS started with cipher TLSv1\.[23]"
assert_file_has "$log" "^<~ *250 2.0.0"
find_mail mx1 user@signed.test "$marker" >/dev/null ||
	find_mail mx2 user@signed.test "$marker" >/dev/null ||
	fail "message sent over client TLS not stored"

# 2. Pipelined MAIL behind STARTTLS, then the state after TLS.
"$PYTHON" - "$MXLOCK_ADDR" "$MXLOCK_PORT" "$T/pki/ca.crt" >"$T/pipelined.log" 2>&1 <<'PY' ||
import socket, ssl, sys

host, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sock = socket.create_connection((host, port), timeout=10)

def read_reply(s):
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit("connection closed; got %r" % data)
        data += chunk
        lines = data.split(b"\r\n")
        if len(lines) > 1 and len(lines[-2]) >= 4 and lines[-2][3:4] == b" ":
            return data.decode()

def command(s, line):
    s.sendall(line.encode() + b"\r\n")
    reply = read_reply(s)
    print(">", line, "<", reply.replace("\r\n", " | "))
    return reply

read_reply(sock)
assert "STARTTLS" in command(sock, "EHLO client.test")
# Both commands in one write: the MAIL must never be answered.
sock.sendall(b"STARTTLS\r\nMAIL FROM:<x@client.test>\r\n")
reply = read_reply(sock)
print("< after STARTTLS:", reply)
assert reply.startswith("220 "), reply
ctx = ssl.create_default_context(cafile=ca)
tls = ctx.wrap_socket(sock, server_hostname="mxlock.test")
print("tls:", tls.version())
tls.settimeout(1.5)
try:
    extra = tls.recv(4096)
    raise SystemExit("a reply arrived inside TLS before any command: %r" % extra)
except (socket.timeout, TimeoutError):
    print("no reply to the pipelined MAIL")
tls.settimeout(10)
assert command(tls, "MAIL FROM:<a@client.test>").startswith("503 "), "MAIL before EHLO accepted"
ehlo = command(tls, "EHLO client.test")
assert ehlo.startswith("250"), ehlo
assert "STARTTLS" not in ehlo, "STARTTLS advertised inside TLS"
assert command(tls, "STARTTLS").startswith("503 "), "second STARTTLS not refused"
assert command(tls, "MAIL FROM:<a@client.test>").startswith("250 "), "MAIL after EHLO refused"
assert command(tls, "QUIT").startswith("221 ")
print("ok")
PY
	{ cat "$T/pipelined.log"; fail "the pipelining client failed"; }
cat "$T/pipelined.log"
mxlock_stop
assert_log "event=client-tls client=127\.[0-9.]+ tls=TLSv1\.[23] cipher=[A-Z0-9_]+"
assert_log "event=starttls-pipelined client=127\.[0-9.]+ bytes=27 action=discarded"
assert_log "event=recipient from=\"sender@client.test\" to=\"user@signed.test\" .*status=sent"
grep -q 'x@client.test' "$T/mxlock.log" && fail "the pipelined MAIL reached the session"

# 3. Without a certificate: no STARTTLS in EHLO, 502 to STARTTLS.
mxlock_config may
mxlock_start
"$PYTHON" - "$MXLOCK_ADDR" "$MXLOCK_PORT" >"$T/nocert.log" 2>&1 <<'PY' ||
import smtplib, sys
with smtplib.SMTP(sys.argv[1], int(sys.argv[2]), timeout=10) as s:
    code, text = s.ehlo("client.test")
    assert code == 250, (code, text)
    assert b"STARTTLS" not in text.upper(), text
    code, text = s.docmd("STARTTLS")
    print(code, text)
    assert code == 502, (code, text)
print("ok")
PY
	{ cat "$T/nocert.log"; fail "STARTTLS without a certificate"; }
mxlock_stop
echo ok
