# Shared helpers for the end-to-end tests. Each test sources this file,
# gets a private folder $T, starts mxlock (the sanitizer build) with a
# configuration it writes, talks to it with real clients, and asserts on
# SMTP replies, stored messages and log lines. The local test network is
# already running (test/run.sh starts it); its settings are in
# $TESTNET_DIR/env.
set -u
: "${MXLOCK_TOP:?run through test/run.sh}"
# shellcheck disable=SC1091
. "$TESTNET_DIR/env"

T="$TEST_OUT/$(basename "$0" .sh)"
rm -rf "$T"
mkdir -p "$T"
MXLOCK_ADDR=127.0.10.1
MXLOCK_PORT=10025
MXLOCK_PID=""
PEER_PIDS=()
PYTHON=/usr/bin/python3
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=66"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

fail() {
	echo "FAIL: $*"
	exit 1
}

skip() {
	echo "skipped: $*"
	exit 77
}

cleanup() {
	local pid
	for pid in "${PEER_PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	[ -n "$MXLOCK_PID" ] && mxlock_stop
	for pid in "${PEER_PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
}
trap cleanup EXIT

# Writes $T/mxlock.yaml for policy level $1; $2 (optional) holds extra
# top-level YAML keys not already written here.
mxlock_config() {
	local level=${1:-may} extra=${2:-}
	{
		cat <<YAML
listen:
  - address: $MXLOCK_ADDR
    port: $MXLOCK_PORT
hostname: mxlock.test
state_dir: $T/state
dns:
  servers: ["$RESOLVER"]
tls:
  ca_file: $CA_FILE
policy:
  default: $level
log:
  level: debug
YAML
		[ -z "$extra" ] || printf '%s\n' "$extra"
	} >"$T/mxlock.yaml"
}

wait_listening() {
	local addr=$1 i
	for i in $(seq 1 100); do
		ss -Hltn | awk '{print $4}' | grep -qxF "$addr" && return 0
		sleep 0.05
	done
	return 1
}

mxlock_start() {
	"$MXLOCK_BIN" run -c "$T/mxlock.yaml" 2>>"$T/mxlock.log" &
	MXLOCK_PID=$!
	wait_listening "$MXLOCK_ADDR:$MXLOCK_PORT" || {
		cat "$T/mxlock.log"
		fail "mxlock did not start listening on $MXLOCK_ADDR:$MXLOCK_PORT"
	}
}

# Stops mxlock with SIGTERM and fails the test on a sanitizer report or a
# non-zero exit.
mxlock_stop() {
	local pid=$MXLOCK_PID rc
	MXLOCK_PID=""
	kill -TERM "$pid" 2>/dev/null
	wait "$pid"
	rc=$?
	if grep -q 'AddressSanitizer\|LeakSanitizer\|runtime error:' "$T/mxlock.log"; then
		grep -A30 'Sanitizer\|runtime error:' "$T/mxlock.log" | head -n 60
		fail "sanitizer report in mxlock.log"
	fi
	[ "$rc" -eq 0 ] || fail "mxlock exited with status $rc"
}

# Sends one message with swaks through mxlock; extra swaks options follow.
# The transcript goes to a new $T/swaks.*.log and its path to standard
# output. Callers run this in $(...), so the file name comes from mktemp
# rather than a counter that the subshell would forget.
send_mail() {
	local log
	log=$(mktemp "$T/swaks.XXXXXX.log")
	swaks --server "$MXLOCK_ADDR" --port "$MXLOCK_PORT" --helo client.test \
		--timeout 60 "$@" >"$log" 2>&1
	echo "$log"
}

# Prints the path of the JSON record of the message that MX host name got
# for recipient rcpt with marker text in its body, waiting up to 10 s.
find_mail() {
	local name=$1 rcpt=$2 marker=$3 i f
	for i in $(seq 1 100); do
		for f in "$MAIL_DIR/$name"/*.json; do
			[ -e "$f" ] || continue
			grep -qF "\"$rcpt\"" "$f" || continue
			grep -qF "$marker" "${f%.json}.eml" && { echo "$f"; return 0; }
		done
		sleep 0.1
	done
	return 1
}

# Succeeds when no MX stored a message containing marker.
no_mail() {
	! grep -rqlF "$1" "$MAIL_DIR" 2>/dev/null
}

assert_log() {
	grep -qE "$1" "$T/mxlock.log" || fail "no log line matches: $1"
}

assert_file_has() {
	grep -qE "$2" "$1" || fail "$1 has no line matching: $2"
}

new_marker() {
	echo "marker-$(basename "$0" .sh)-$$-$RANDOM$RANDOM"
}

json_field() {
	"$PYTHON" -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print("null" if v is None else v)' "$1" "$2"
}

# Starts the scripted peer test/peers/script_mx.py with scenario $2 on
# 127.0.26.$1:25 (the implicit MX of peer$1.plain.test), recording into
# $T/peer$1.
peer_start() {
	local n=$1 scenario=$2
	shift 2
	"$PYTHON" "$MXLOCK_TOP/test/peers/script_mx.py" --address "127.0.26.$n" \
		--port 25 --scenario "$scenario" --out "$T/peer$n" \
		--hostname "peer$n.plain.test" \
		--tls-chain "$TESTNET_DIR/pki/mx1.signed.test.chain.pem" \
		--tls-key "$TESTNET_DIR/pki/mx1.signed.test.key" \
		"$@" >"$T/peer$n.out" 2>&1 &
	PEER_PIDS+=($!)
	wait_listening "127.0.26.$n:25" || {
		cat "$T/peer$n.out"
		fail "scripted peer $scenario did not start on 127.0.26.$n:25"
	}
}

# Prints the number of messages a scripted peer stored.
peer_messages() {
	find "$T/peer$1" -name '*.json' 2>/dev/null | wc -l
}
