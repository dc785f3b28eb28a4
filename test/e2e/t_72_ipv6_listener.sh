# mxlock listens on IPv6 as well as IPv4; a client on ::1 is served.
. "$(dirname "$0")/lib.sh"

ip -6 addr show dev lo 2>/dev/null | grep -q '::1/128' || skip "no IPv6 loopback address (::1) on this machine"
mxlock_config may 'clients: ["127.0.0.0/8", "::1/128"]'
sed -i "s/^listen:/listen:\n  - address: \"::1\"\n    port: $MXLOCK_PORT/" "$T/mxlock.yaml"
mxlock_start
wait_listening "[::1]:$MXLOCK_PORT" || fail "no IPv6 listener"
marker=$(new_marker)
# swaks needs a Perl module for IPv6 that Debian ships separately, so
# Python's smtplib is the client here.
"$PYTHON" - "$MXLOCK_PORT" "$marker" >"$T/client6.log" 2>&1 <<'PY' || { cat "$T/client6.log"; fail "IPv6 client failed"; }
import smtplib, sys
with smtplib.SMTP("::1", int(sys.argv[1]), timeout=60) as s:
    s.ehlo("client.test")
    msg = "Subject: %s\r\n\r\n%s\r\n" % (sys.argv[2], sys.argv[2])
    print("refused:", s.sendmail("a@client.test", ["user@signed.test"], msg))
PY
find_mail mx1 user@signed.test "$marker" >/dev/null ||
	find_mail mx2 user@signed.test "$marker" >/dev/null || fail "message sent over IPv6 not stored"
mxlock_stop
assert_log "event=connect client=::1"
echo ok
