# workers: 2 runs two event loops that share the listening port through
# SO_REUSEPORT. Both loops accept connections, mail goes through either,
# limits.max_connections counts the connections of both loops, a second
# process cannot join the port, and SIGTERM stops both with a clean exit.
. "$(dirname "$0")/lib.sh"

mxlock_config may 'workers: 2'
sed -i 's/^  default: may/  default: may\nlimits:\n  max_connections: 3/' "$T/mxlock.yaml"
mxlock_start

# A second instance on the same port stops at start, even with workers.
cp "$T/mxlock.yaml" "$T/second.yaml"
sed -i "s|^state_dir: .*|state_dir: $T/state2|" "$T/second.yaml"
"$MXLOCK_BIN" run -c "$T/second.yaml" >"$T/second.log" 2>&1
rc=$?
[ "$rc" -eq 1 ] || fail "a second instance on the same port exited with $rc, expected 1"
grep -q 'event=listen-failed .*address already in use' "$T/second.log" ||
	fail "the second instance did not say the port is taken: $(tail -n 2 "$T/second.log")"

# Six held connections: three get 220, the others 421, whichever loop
# took them.
"$PYTHON" - "$MXLOCK_ADDR" "$MXLOCK_PORT" >"$T/limit.txt" <<'PY' || fail "the connection limit check failed"
import socket, sys

host, port = sys.argv[1], int(sys.argv[2])
open_sessions = []
for _ in range(6):
    s = socket.create_connection((host, port), timeout=10)
    f = s.makefile("rb")
    print(f.readline().decode()[:3])
    open_sessions.append((s, f))
for s, f in open_sessions:
    s.close()
PY
[ "$(grep -c '^220' "$T/limit.txt")" -eq 3 ] && [ "$(grep -c '^421' "$T/limit.txt")" -eq 3 ] ||
	fail "max_connections 3 with two loops: replies $(tr '\n' ' ' <"$T/limit.txt")"
sleep 0.5

sockets=$(ss -Hltn | awk '{print $4}' | grep -cxF "$MXLOCK_ADDR:$MXLOCK_PORT")
[ "$sockets" -eq 2 ] || fail "expected 2 listening sockets on $MXLOCK_ADDR:$MXLOCK_PORT, found $sockets"

# 24 short sessions; the kernel spreads them by their source ports.
"$PYTHON" - "$MXLOCK_ADDR" "$MXLOCK_PORT" <<'PY' || fail "a short session failed"
import socket, sys

host, port = sys.argv[1], int(sys.argv[2])
for _ in range(24):
    s = socket.create_connection((host, port), timeout=10)
    f = s.makefile("rb")
    assert f.readline().startswith(b"220")
    s.sendall(b"QUIT\r\n")
    assert f.readline().startswith(b"221")
    s.close()
PY

for n in 1 2 3 4; do
	m=$(new_marker)
	log=$(send_mail --from a@client.test --to "user$n@signed.test" --header "Subject: $m" --body "$m")
	assert_file_has "$log" "^<- *250 2.0.0"
	find_mail mx1 "user$n@signed.test" "$m" >/dev/null || fail "message $n was not stored at mx1"
done
mxlock_stop

assert_log 'event=start version=[^ ]* config=[^ ]* workers=2'
# Loop 0 numbers its connections 1, 3, 5 ...; loop 1 numbers them 2, 4, 6 ...
ids=$(grep -o 'conn=[0-9]* event=connect ' "$T/mxlock.log" | sed 's/conn=\([0-9]*\).*/\1/')
[ -n "$ids" ] || fail "no connect lines in the log"
odd=$(echo "$ids" | awk '$1 % 2 == 1' | wc -l)
even=$(echo "$ids" | awk '$1 % 2 == 0' | wc -l)
[ "$odd" -gt 0 ] && [ "$even" -gt 0 ] ||
	fail "one loop took every connection ($odd odd ids, $even even ids)"
assert_log 'event=exit status=0'

# A SIGTERM as soon as the first loop listens, while the others still
# start, stops mxlock cleanly too.
sed -i 's/^workers: 2$/workers: 4/' "$T/mxlock.yaml"
for try in 1 2 3; do
	"$MXLOCK_BIN" run -c "$T/mxlock.yaml" 2>"$T/early.$try.log" &
	pid=$!
	wait_listening "$MXLOCK_ADDR:$MXLOCK_PORT" || fail "try $try: mxlock did not listen"
	kill -TERM "$pid"
	wait "$pid"
	rc=$?
	[ "$rc" -eq 0 ] || fail "try $try: a SIGTERM during the start ended mxlock with status $rc"
	! grep -q 'Sanitizer\|runtime error:' "$T/early.$try.log" ||
		fail "try $try: sanitizer report in $T/early.$try.log"
done
echo "ok: loop 0 took $odd connections, loop 1 took $even"
