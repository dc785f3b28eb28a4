# A 50 MB message is relayed byte for byte, and mxlock's peak memory stays
# bounded: the plain build (sanitizers inflate memory) must stay under
# 32 MiB of peak RSS while it streams the whole message.
. "$(dirname "$0")/lib.sh"

MXLOCK_BIN="$MXLOCK_TOP/build/mxlock"
[ -x "$MXLOCK_BIN" ] || fail "build/mxlock is missing; run make"
mxlock_config may
mxlock_start

"$PYTHON" - "$T/msg.eml" <<'PY'
import os, sys
# 50 MB of CRLF lines, some starting with a dot, so dot-stuffing is used.
lines = []
size = 0
n = 0
while size < 50 * 1000 * 1000:
    line = (b"." if n % 97 == 0 else b"") + os.urandom(36).hex().encode() + b"\r\n"
    lines.append(line)
    size += len(line)
    n += 1
body = b"Subject: large\r\n\r\n" + b"".join(lines)
open(sys.argv[1], "wb").write(body)
PY

"$PYTHON" - "$T/msg.eml" "$MXLOCK_ADDR" "$MXLOCK_PORT" <<'PY' >"$T/client.log" 2>&1 || { cat "$T/client.log"; fail "client failed"; }
import smtplib, sys
data = open(sys.argv[1], "rb").read()
with smtplib.SMTP(sys.argv[2], int(sys.argv[3]), timeout=120) as s:
    s.ehlo("client.test")
    refused = s.sendmail("big@client.test", ["big@signed.test"], data)
    print("refused:", refused)
PY

json=$(find_mail mx1 big@signed.test "Subject: large") ||
	json=$(find_mail mx2 big@signed.test "Subject: large") || fail "large message not stored"
cmp -s "$T/msg.eml" "${json%.json}.eml" || fail "stored message differs from the one sent"

hwm=$(awk '/VmHWM/ {print $2}' "/proc/$MXLOCK_PID/status")
echo "peak RSS: $hwm KiB"
[ "$hwm" -lt 32768 ] || fail "peak RSS $hwm KiB exceeds 32 MiB"
mxlock_stop
echo ok
