#!/bin/bash
# Benchmark: what mxlock costs beside the relays operators would use instead.
#
# Runs in a network namespace of its own (loopback only), so it never
# collides with a test network in the main namespace. It starts the local
# test network for DNS and the test CA, a TLS SMTP sink (scripts/bench/sink.c)
# as the MX host, and these paths to the sink, each relay pinned to CPU 0 and
# everything else to CPU 1:
#
#   direct             smtp-source -> sink, plaintext
#   haproxy            HAProxy, plain TCP relay
#   stunnel            stunnel client, protocol = smtp, session resumption on
#   stunnel-noresume   the same with sessionResume = no
#   postfix-dane       Postfix, smtp_tls_security_level = dane, MTA-STS from
#                      postfix-mta-sts-resolver; queues every message to disk
#   mxlock             mxlock, policy encrypt (insecure MX: no DANE applies)
#   mxlock-dane        mxlock, MX with secure TLSA 3 1 1 (DANE where built)
#   mxlock-tuned       build/tuned/mxlock (tuned wolfSSL), as mxlock
#   mxlock-dane-tuned  build/tuned/mxlock, as mxlock-dane
#
# The tuned paths run when build/tuned/mxlock exists (make WOLFSSL=tuned);
# otherwise results.md states why they are missing.
#
# A private Postfix with STARTTLS is a second MX host for the latency check
# (direct-postfix, stunnel-postfix, mxlock-postfix, mxlock-tuned-postfix).
# Paths run in turn for BENCH_ROUNDS interleaved rounds. Relay CPU comes
# from /proc/PID/stat (from a cpuacct cgroup for Postfix, which is many
# processes) and RSS from /proc/PID/status (summed PSS for Postfix). Raw
# samples, results.csv and results.md go to build/bench/, and
# docs/BENCHMARK.md explains the figures.
#
# Environment (defaults in brackets): BENCH_ROUNDS [3], BENCH_MSGS_1K [3000],
# BENCH_SESSIONS [100], BENCH_MIB [400], BENCH_LATENCY_MSGS [300],
# BENCH_IDLE_SESSIONS [1000], BENCH_HANDSHAKES [1000]; for the Postfix
# path, which is much slower: BENCH_MSGS_POSTFIX [1000], BENCH_MIB_POSTFIX
# [100], BENCH_LATENCY_MSGS_POSTFIX [100].
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/build/bench
BIN=$OUT/bin
NET=$OUT/testnet
PYTHON=/usr/bin/python3
CLIENT=$ROOT/scripts/bench/smtpclient.py

ROUNDS=${BENCH_ROUNDS:-3}
MSGS_1K=${BENCH_MSGS_1K:-3000}
SESSIONS=${BENCH_SESSIONS:-100}
MIB=${BENCH_MIB:-400}
LATENCY_MSGS=${BENCH_LATENCY_MSGS:-300}
IDLE_SESSIONS=${BENCH_IDLE_SESSIONS:-1000}
HANDSHAKES=${BENCH_HANDSHAKES:-1000}
MSGS_POSTFIX=${BENCH_MSGS_POSTFIX:-1000}
MIB_POSTFIX=${BENCH_MIB_POSTFIX:-100}
LATENCY_MSGS_POSTFIX=${BENCH_LATENCY_MSGS_POSTFIX:-100}
# Postfix serves each session with its own smtpd process, at most
# default_process_limit (100) of them; further sessions wait unanswered.
IDLE_SESSIONS_POSTFIX=90
# Sessions for the 1 MiB runs: enough to keep the relay busy, few enough
# that the run measures streaming, not connection set-up.
SESSIONS_1M=4
# Upper bound for any one load run, in seconds, including the wait for a
# queueing relay to deliver everything.
RUN_TIMEOUT=180

MXLOCK=$ROOT/build/mxlock
MXLOCK_TUNED=$ROOT/build/tuned/mxlock
TUNED_PREFIX=$ROOT/build/wolfssl-tuned/prefix
POSTFIX_RELAY=$ROOT/scripts/bench/postfix-relay.sh

SINK_ADDR=127.0.29.1
POSTFIX_SINK_ADDR=127.0.29.2
MXLOCK_ADDR=127.0.29.10
HAPROXY_ADDR=127.0.29.11
STUNNEL_ADDR=127.0.29.12
STUNNEL_NORESUME_ADDR=127.0.29.13
STUNNEL_POSTFIX_ADDR=127.0.29.14
MXLOCK_TUNED_ADDR=127.0.29.16
MXLOCK_W1_ADDR=127.0.29.18
MXLOCK_W2_ADDR=127.0.29.19
POSTFIX_RELAY_ADDR=127.0.29.17
# mta-sts-daemon's socketmap, on the Postfix relay's address.
STS_PORT=8461
PROBE_ADDR=127.0.29.20
PROBE_TUNED_ADDR=127.0.29.21
# Set in main: the paths and relays of this run (the tuned ones only when
# build/tuned/mxlock exists).
PATHS=""
RELAYS=""

log() { echo "bench: $*" >&2; }
die() { log "$*"; exit 1; }

# Re-run inside a new network namespace: its loopback is private, so the
# fixed 127.x addresses of the test network cannot collide with another run.
if [ -z "${BENCH_IN_NETNS:-}" ]; then
    [ "$(id -u)" -eq 0 ] || die "must run as root (it creates a network namespace)"
    exec unshare -n env BENCH_IN_NETNS=1 "$0" "$@"
fi
ip link set lo up

CPUS=$(nproc)
if [ "$CPUS" -ge 2 ]; then
    RELAY_CPU=0
    LOAD_CPU=1
else
    log "only one CPU: relays and load share it, so CPU figures include contention"
    RELAY_CPU=0
    LOAD_CPU=0
fi
taskset -pc "$LOAD_CPU" $$ > /dev/null
# 1,000 idle sessions need about 2,000 descriptors in the relay.
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge 2200 ] || IDLE_SESSIONS=$(( ($(ulimit -n) - 200) / 2 ))
CLK_TCK=$(getconf CLK_TCK)

declare -A RELAY_PID=()
SINK_PID=""

# --- processes -------------------------------------------------------------

# CPU time (user plus system, all threads) of PID in microseconds, with
# the kernel's clock-tick resolution.
cpu_us() {
    local stat
    stat=$(< "/proc/$1/stat")
    # Fields after the command name: state is field 3, utime 14, stime 15.
    set -- ${stat##*) }
    echo $(( (${12} + ${13}) * 1000000 / CLK_TCK ))
}

# CPU time of the whole Postfix relay (every Postfix process and
# mta-sts-daemon) in microseconds. From its cpuacct cgroup when there is
# one; otherwise the master's own and reaped children's time (cutime and
# cstime) plus that of the live processes.
postfix_cpu_us() {
    local dir=$OUT/postfix-relay pid stat total=0
    if [ -e "$dir/cgroup" ]; then
        echo $(( $(< "$(< "$dir/cgroup")/cpuacct.usage") / 1000 ))
        return
    fi
    for pid in $("$POSTFIX_RELAY" pids "$dir"); do
        stat=$(< "/proc/$pid/stat") || continue
        set -- ${stat##*) }
        total=$(( total + ${12} + ${13} + ${14} + ${15} ))
    done
    echo $(( total * 1000000 / CLK_TCK ))
}

rss_kib() {
    awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}

# Proportional set size summed over every process of the Postfix relay, in
# KiB. RSS would count the shared pages of its many processes many times.
postfix_pss_kib() {
    local pid total=0 pss
    for pid in $("$POSTFIX_RELAY" pids "$OUT/postfix-relay"); do
        pss=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2> /dev/null) || continue
        total=$(( total + ${pss:-0} ))
    done
    echo "$total"
}

# CPU time of a path's relay in microseconds.
relay_cpu_us() {
    if [ "$1" = postfix-dane ]; then
        postfix_cpu_us
    else
        cpu_us "${RELAY_PID[$1]}"
    fi
}

# Memory of a path's relay in KiB: VmRSS, or summed PSS for Postfix.
relay_mem_kib() {
    if [ "$1" = postfix-dane ]; then
        postfix_pss_kib
    else
        rss_kib "${RELAY_PID[$1]}"
    fi
}

wait_listening() {
    local addr=$1 pid=$2 name=$3
    for _ in $(seq 100); do
        kill -0 "$pid" 2> /dev/null || die "$name exited at start; see $OUT/$name.log"
        ss -Hltn | awk '{print $4}' | grep -qxF "$addr" && return 0
        sleep 0.05
    done
    die "$name is not listening on $addr; see $OUT/$name.log"
}

stop_pid() {
    local pid=$1
    kill -TERM "$pid" 2> /dev/null || return 0
    for _ in $(seq 50); do
        kill -0 "$pid" 2> /dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
}

cleanup() {
    local name
    for name in "${!RELAY_PID[@]}"; do
        stop_pid "${RELAY_PID[$name]}"
    done
    [ -z "$SINK_PID" ] || stop_pid "$SINK_PID"
    "$POSTFIX_RELAY" stop "$OUT/postfix-relay" > /dev/null 2>&1 || true
    "$ROOT/scripts/bench/postfix-sink.sh" stop "$OUT/postfix-sink" > /dev/null 2>&1 || true
    "$ROOT/scripts/testnet.sh" stop "$NET" > /dev/null 2>&1 || true
}

build_helpers() {
    mkdir -p "$BIN"
    cc -std=c11 -O2 -g -Wall -Wextra -pthread -o "$BIN/sink" \
        "$ROOT/scripts/bench/sink.c" -lssl -lcrypto
    # shellcheck disable=SC2046
    cc -std=c11 -O2 -g -Wall -Wextra -o "$BIN/tlsloop" \
        "$ROOT/scripts/bench/tlsloop.c" $(pkg-config --cflags --libs wolfssl)
}

# Builds tlsloop against the tuned wolfSSL, a static library, when its
# prefix exists; otherwise notes why the tuned floors are missing.
build_tlsloop_tuned() {
    local pc_dir=$TUNED_PREFIX/lib/pkgconfig
    rm -f "$BIN/tlsloop-tuned"
    if [ ! -e "$pc_dir/wolfssl.pc" ]; then
        echo "floors of the tuned wolfSSL: not measured, $pc_dir/wolfssl.pc is missing (run scripts/wolfssl-tuned.sh)" \
            >> "$OUT/skipped.txt"
        return 0
    fi
    # shellcheck disable=SC2046
    cc -std=c11 -O2 -g -Wall -Wextra -o "$BIN/tlsloop-tuned" "$ROOT/scripts/bench/tlsloop.c" \
        $(PKG_CONFIG_PATH=$pc_dir pkg-config --static --cflags --libs wolfssl) -lm -pthread \
        -Wl,-rpath,"$TUNED_PREFIX/lib"
}

# Starts the test network and publishes the sink under two names:
# bench.signed.test (secure MX, TLSA 3 1 1 on the sink's key: DANE) and
# bench.plain.test (unsigned zone, same MX host: no DANE, policy default).
# bench-pf.plain.test has the Postfix sink as its MX.
start_network() {
    local tlsa
    "$ROOT/scripts/testnet.sh" start "$NET" > "$OUT/testnet.log" 2>&1 \
        || die "the test network did not start; see $OUT/testnet.log"
    # shellcheck disable=SC1091
    . "$NET/env"
    "$ROOT/scripts/testnet/pki.sh" leaf "$PKI_DIR" sink.signed.test ec
    tlsa=$("$ROOT/scripts/testnet/pki.sh" tlsa "$PKI_DIR" sink.signed.test 1 1)
    "$ROOT/scripts/testnet.sh" dns-set "$NET" sink.signed.test A "$SINK_ADDR"
    "$ROOT/scripts/testnet.sh" dns-set "$NET" _25._tcp.sink.signed.test TLSA "3 1 1 $tlsa"
    "$ROOT/scripts/testnet.sh" dns-set "$NET" bench.signed.test MX "10 sink.signed.test."
    "$ROOT/scripts/testnet.sh" dns-set "$NET" bench.plain.test MX "10 sink.signed.test."
    "$ROOT/scripts/testnet/pki.sh" leaf "$PKI_DIR" pfsink.signed.test ec
    "$ROOT/scripts/testnet.sh" dns-set "$NET" pfsink.signed.test A "$POSTFIX_SINK_ADDR"
    "$ROOT/scripts/testnet.sh" dns-set "$NET" bench-pf.plain.test MX "10 pfsink.signed.test."
}

start_postfix_sink() {
    "$ROOT/scripts/bench/postfix-sink.sh" start "$OUT/postfix-sink" "$POSTFIX_SINK_ADDR" \
        "$PKI_DIR/pfsink.signed.test.chain.pem" "$PKI_DIR/pfsink.signed.test.key" \
        > "$OUT/postfix-sink.log" 2>&1 || die "the Postfix sink did not start; see $OUT/postfix-sink.log"
}

start_sink() {
    "$BIN/sink" -n sink.signed.test -s "$OUT/sink.stats" \
        -c "$PKI_DIR/sink.signed.test.chain.pem" -k "$PKI_DIR/sink.signed.test.key" \
        -l "$SINK_ADDR:25" -t "$SINK_ADDR:465" > "$OUT/sink.log" 2>&1 &
    SINK_PID=$!
    wait_listening "$SINK_ADDR:25" "$SINK_PID" sink
}

# Prints the sink's counters as "connections handshakes resumed messages bytes".
sink_counters() {
    rm -f "$OUT/sink.stats"
    kill -USR1 "$SINK_PID"
    for _ in $(seq 50); do
        [ -s "$OUT/sink.stats" ] && break
        sleep 0.02
    done
    sed 's/[a-z]*=//g' "$OUT/sink.stats"
}

write_haproxy_conf() {
    # HAProxy needs two descriptors per connection plus a few of its own.
    local maxconn=$(( ($(ulimit -n) - 100) / 2 ))
    cat > "$OUT/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn $maxconn
defaults
    mode tcp
    timeout connect 5s
    timeout client 120s
    timeout server 120s
listen smtp
    bind $HAPROXY_ADDR:25
    server sink $SINK_ADDR:25
EOF
}

# stunnel as the usual STARTTLS wrapper: no certificate check, no policy.
# A second service relays to the Postfix sink for the latency check.
write_stunnel_conf() {
    local name=$1 addr=$2 resume=$3 postfix_addr=$4
    cat > "$OUT/$name.conf" <<EOF
foreground = yes
pid =
debug = 3
output = $OUT/$name.log
[smtp]
client = yes
accept = $addr:25
connect = $SINK_ADDR:25
protocol = smtp
sni = sink.signed.test
sessionResume = $resume
[smtp-postfix]
client = yes
accept = $postfix_addr:25
connect = $POSTFIX_SINK_ADDR:25
protocol = smtp
sni = pfsink.signed.test
sessionResume = $resume
EOF
}

write_mxlock_conf() {
    local file=$1 addr=$2 level=$3 state=$4 workers=${5:-1}
    cat > "$file" <<EOF
listen:
  - address: $addr
    port: 25
clients:
  - 127.0.0.0/8
hostname: relay.bench.test
dns:
  servers:
    - $RESOLVER
  probe: signed.test
tls:
  ca_file: $CA_FILE
policy:
  default: encrypt
limits:
  max_connections: 4000
log:
  level: $level
state_dir: $state
workers: $workers
EOF
}

# Starts the relay process for NAME, pinned to the relay CPU.
start_relay() {
    local name=$1 addr
    case $name in
    haproxy)
        addr=$HAPROXY_ADDR
        taskset -c "$RELAY_CPU" haproxy -f "$OUT/haproxy.cfg" -db > "$OUT/haproxy.log" 2>&1 &
        ;;
    stunnel)
        addr=$STUNNEL_ADDR
        taskset -c "$RELAY_CPU" stunnel "$OUT/stunnel.conf" > /dev/null 2>&1 &
        ;;
    stunnel-noresume)
        addr=$STUNNEL_NORESUME_ADDR
        taskset -c "$RELAY_CPU" stunnel "$OUT/stunnel-noresume.conf" > /dev/null 2>&1 &
        ;;
    mxlock)
        addr=$MXLOCK_ADDR
        taskset -c "$RELAY_CPU" "$MXLOCK" run -c "$OUT/mxlock.yaml" \
            > "$OUT/mxlock.log" 2>&1 &
        ;;
    mxlock-tuned)
        addr=$MXLOCK_TUNED_ADDR
        taskset -c "$RELAY_CPU" "$MXLOCK_TUNED" run -c "$OUT/mxlock-tuned.yaml" \
            > "$OUT/mxlock-tuned.log" 2>&1 &
        ;;
    postfix-dane)
        start_postfix_relay
        return
        ;;
    mxlock-w1 | mxlock-w2)
        # The scaling check: not pinned, so each loop may take a core.
        addr=$(path_addr "$name")
        "$SCALE_MXLOCK" run -c "$OUT/$name.yaml" > "$OUT/$name.log" 2>&1 &
        ;;
    *) die "unknown relay $name" ;;
    esac
    RELAY_PID[$name]=$!
    wait_listening "$addr:25" "${RELAY_PID[$name]}" "$name"
}

# Starts the Postfix relay and mta-sts-daemon, both pinned to the relay CPU.
# RELAY_PID contains the master's PID, so the relay counts as running.
start_postfix_relay() {
    RELAY_CPU=$RELAY_CPU "$POSTFIX_RELAY" start "$OUT/postfix-relay" "$POSTFIX_RELAY_ADDR" \
        "$STS_PORT" "$RESOLVER_ADDR" "$CA_FILE" >> "$OUT/postfix-relay.log" 2>&1 \
        || die "the Postfix relay did not start; see $OUT/postfix-relay.log"
    RELAY_PID[postfix-dane]=$(tr -d ' \n' < "$OUT/postfix-relay/queue/pid/master.pid")
}

stop_relay() {
    if [ "$1" = postfix-dane ]; then
        "$POSTFIX_RELAY" stop "$OUT/postfix-relay" >> "$OUT/postfix-relay.log" 2>&1 || true
    else
        stop_pid "${RELAY_PID[$1]}"
    fi
    unset "RELAY_PID[$1]"
}

# --- paths -------------------------------------------------------------------

# The relay process a path runs through (empty for direct).
path_relay() {
    case $1 in
    direct) echo "" ;;
    mxlock-dane | mxlock-postfix) echo mxlock ;;
    mxlock-dane-tuned | mxlock-tuned-postfix) echo mxlock-tuned ;;
    stunnel-postfix) echo stunnel ;;
    *) echo "$1" ;;
    esac
}

path_addr() {
    case $1 in
    direct) echo "$SINK_ADDR" ;;
    direct-postfix) echo "$POSTFIX_SINK_ADDR" ;;
    haproxy) echo "$HAPROXY_ADDR" ;;
    stunnel) echo "$STUNNEL_ADDR" ;;
    stunnel-noresume) echo "$STUNNEL_NORESUME_ADDR" ;;
    stunnel-postfix) echo "$STUNNEL_POSTFIX_ADDR" ;;
    mxlock | mxlock-dane | mxlock-postfix) echo "$MXLOCK_ADDR" ;;
    mxlock-tuned | mxlock-dane-tuned | mxlock-tuned-postfix) echo "$MXLOCK_TUNED_ADDR" ;;
    postfix-dane) echo "$POSTFIX_RELAY_ADDR" ;;
    mxlock-w1) echo "$MXLOCK_W1_ADDR" ;;
    mxlock-w2) echo "$MXLOCK_W2_ADDR" ;;
    esac
}

# mxlock routes by the recipient domain; the other paths ignore it.
path_rcpt() {
    case $1 in
    mxlock-dane | mxlock-dane-tuned | postfix-dane) echo "user@bench.signed.test" ;;
    mxlock-postfix | mxlock-tuned-postfix) echo "user@bench-pf.plain.test" ;;
    *) echo "user@bench.plain.test" ;;
    esac
}

# --- measurements ------------------------------------------------------------

record() {
    echo "$1,$2,$3,$4" >> "$OUT/raw.csv"
}

# Waits until the sink has counted EXPECTED messages in all, for at most
# SECONDS; a relay that queues delivers after smtp-source has finished.
# Prints the counters last read.
wait_for_sink() {
    local expected=$1 seconds=$2 deadline counters
    local -a c
    deadline=$(( $(date +%s) + seconds ))
    while :; do
        counters=$(sink_counters)
        read -r -a c <<< "$counters"
        if [ "${c[3]}" -ge "$expected" ] || [ "$(date +%s)" -ge "$deadline" ]; then
            echo "$counters"
            return 0
        fi
        sleep 0.05
    done
}

# Runs smtp-source against PATH and records relay and sink CPU per message
# and per GB. The run ends when the sink has all the messages, so a relay
# that queues is measured until it has delivered them. Arguments: round,
# path, test name, messages, sessions, body bytes, extra smtp-source options.
run_load() {
    local round=$1 path=$2 test=$3 msgs=$4 sessions=$5 size=$6 extra=$7
    local relay r0=0 r1=0 s0 s1 c0 c1 t0 t1 wall started
    relay=$(path_relay "$path")

    read -r -a c0 <<< "$(sink_counters)"
    s0=$(cpu_us "$SINK_PID")
    [ -z "$relay" ] || r0=$(relay_cpu_us "$relay")
    started=$(date +%s)
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    timeout "$RUN_TIMEOUT" smtp-source $extra -s "$sessions" -m "$msgs" -l "$size" \
        -M client.bench.test -f bench@client.bench.test -t "$(path_rcpt "$path")" \
        "$(path_addr "$path"):25" > "$OUT/smtp-source.log" 2>&1 \
        || die "smtp-source via $path ($test) failed: $(tail -n 3 "$OUT/smtp-source.log")"
    read -r -a c1 <<< "$(wait_for_sink $(( c0[3] + msgs )) $(( RUN_TIMEOUT - ($(date +%s) - started) )))"
    t1=$(date +%s.%N)
    [ -z "$relay" ] || r1=$(relay_cpu_us "$relay")
    s1=$(cpu_us "$SINK_PID")

    local delivered=$(( c1[3] - c0[3] )) bytes=$(( c1[4] - c0[4] ))
    local handshakes=$(( c1[1] - c0[1] )) resumed=$(( c1[2] - c0[2] ))
    [ "$delivered" -eq "$msgs" ] || die "$path ($test): the sink got $delivered of $msgs messages within $RUN_TIMEOUT s"
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')
    awk -v round="$round" -v path="$path" -v test="$test" -v n="$msgs" \
        -v bytes="$bytes" -v wall="$wall" -v relay=$(( r1 - r0 )) \
        -v sink=$(( s1 - s0 )) -v hs="$handshakes" -v res="$resumed" -v has_relay="${relay:+1}" '
        BEGIN {
            p = round "," path "," test "_"
            if (has_relay) {
                printf "%srelay_us_per_msg,%.1f\n", p, relay / n
                printf "%srelay_ms_per_gb,%.1f\n", p, relay / 1e3 / (bytes / 1e9)
            }
            printf "%ssink_us_per_msg,%.1f\n", p, sink / n
            printf "%ssink_ms_per_gb,%.1f\n", p, sink / 1e3 / (bytes / 1e9)
            printf "%smsgs_per_s,%.1f\n", p, n / wall
            printf "%shandshakes,%d\n", p, hs
            # Without new handshakes (every message on a pooled MX
            # session) there is no share to report.
            if (hs)
                printf "%sresumed_pct,%.1f\n", p, 100 * res / hs
        }' >> "$OUT/raw.csv"
}

# Records p50 and p99 latency through PATH. For the Postfix relay, whose
# 250 after DATA only means the message is queued, the client also waits
# for the sink to count each message and records that time as delivered_*.
run_latency() {
    local round=$1 path=$2 line count=$LATENCY_MSGS metric
    local -a wait_sink=()
    if [ "$path" = postfix-dane ]; then
        count=$LATENCY_MSGS_POSTFIX
        wait_sink=(--sink-pid "$SINK_PID" --sink-stats "$OUT/sink.stats")
    fi
    line=$(timeout "$RUN_TIMEOUT" taskset -c "$LOAD_CPU" "$PYTHON" "$CLIENT" latency \
        --host "$(path_addr "$path")" --rcpt "$(path_rcpt "$path")" \
        --count "$count" --size 1024 "${wait_sink[@]}") || die "latency client via $path failed"
    for metric in p50_us p99_us delivered_p50_us delivered_p99_us; do
        grep -q " $metric=" <<< " $line" || continue
        record "$round" "$path" "latency_$metric" "$(sed "s/.* $metric=\([0-9]*\).*/\1/" <<< " $line")"
    done
}

# Opens idle sessions through a freshly started relay and records the
# memory each one adds. A fresh process keeps memory freed by earlier runs
# from hiding the growth. hold is ehlo (no upstream yet for mxlock) or rcpt
# (mxlock holds an upstream TLS session).
run_idle() {
    local round=$1 path=$2 hold=$3 relay before after line sessions=$IDLE_SESSIONS
    local -a wait_sink=()
    if [ "$path" = postfix-dane ]; then
        sessions=$IDLE_SESSIONS_POSTFIX
        # Postfix delivers the warm-up messages after accepting them; its
        # delivery processes must be up before the first reading.
        wait_sink=(--sink-pid "$SINK_PID" --sink-stats "$OUT/sink.stats")
    fi
    relay=$(path_relay "$path")
    start_relay "$relay"
    # A few messages first, so start-up allocations are not counted per session.
    timeout 60 "$PYTHON" "$CLIENT" latency --host "$(path_addr "$path")" \
        --rcpt "$(path_rcpt "$path")" --count 5 "${wait_sink[@]}" > /dev/null \
        || die "warm-up via $path failed"
    before=$(relay_mem_kib "$relay")

    coproc IDLE { timeout "$RUN_TIMEOUT" "$PYTHON" "$CLIENT" idle --host "$(path_addr "$path")" \
        --rcpt "$(path_rcpt "$path")" --count "$sessions" --hold "$hold"; }
    local idle_pid=$IDLE_PID
    read -r line <&"${IDLE[0]}" || line=""
    [ "${line%% *}" = ready ] || die "idle sessions via $path ($hold) failed"
    sleep 0.5
    after=$(relay_mem_kib "$relay")
    echo done >&"${IDLE[1]}"
    wait "$idle_pid" || true
    stop_relay "$relay"
    record "$round" "$path" "rss_kib_per_session_$hold" \
        "$(awk -v a="$before" -v b="$after" -v n="$sessions" 'BEGIN {printf "%.2f", (b - a) / n}')"
}

# Records the bare wolfSSL costs of one build: FLOOR is floor (Debian's
# libwolfssl) or floor-tuned, measured with the tlsloop binary TLSLOOP.
run_floors() {
    local round=$1 floor=$2 tlsloop=$3 line
    line=$(taskset -c "$RELAY_CPU" "$tlsloop" aesgcm 128)
    record "$round" "$floor" aesgcm_ms_per_gb "$(sed 's/.*aesgcm_ms_per_gb=\([0-9.]*\).*/\1/' <<< "$line")"
    line=$(taskset -c "$RELAY_CPU" "$tlsloop" handshake "$SINK_ADDR:465" "$HANDSHAKES" full)
    record "$round" "$floor" handshake_full_us "$(sed 's/.*us_per_handshake=\([0-9.]*\).*/\1/' <<< "$line")"
    line=$(taskset -c "$RELAY_CPU" "$tlsloop" handshake "$SINK_ADDR:465" "$HANDSHAKES" resumed)
    record "$round" "$floor" handshake_resumed_us "$(sed 's/.*us_per_handshake=\([0-9.]*\).*/\1/' <<< "$line")"
    line=$(taskset -c "$RELAY_CPU" "$tlsloop" hold "$SINK_ADDR:465" "$IDLE_SESSIONS")
    record "$round" "$floor" rss_kib_per_tls_session "$(sed 's/.*kib_per_session=\([0-9.]*\).*/\1/' <<< "$line")"
}

# Sends one message per mxlock path through an instance of BINARY that
# logs at info level and records the policy and verification mxlock
# reported. NAME is mxlock or mxlock-tuned.
probe_mxlock_policy() {
    local name=$1 binary=$2 addr=$3 path rcpt summary pid label
    write_mxlock_conf "$OUT/$name-probe.yaml" "$addr" info "$OUT/state-probe-$name"
    "$binary" run -c "$OUT/$name-probe.yaml" > "$OUT/$name-probe.log" 2>&1 &
    pid=$!
    wait_listening "$addr:25" "$pid" "$name-probe"
    for path in mxlock mxlock-dane; do
        rcpt=$(path_rcpt "$path")
        "$PYTHON" "$CLIENT" latency --host "$addr" --rcpt "$rcpt" --count 1 > /dev/null \
            || die "probe message to $rcpt failed; see $OUT/$name-probe.log"
        summary=$(grep "event=recipient" "$OUT/$name-probe.log" | grep -F "to=\"$rcpt\"" | tail -n 1)
        label=$path
        [ "$name" = mxlock ] || label=$path-${name#mxlock-}
        echo "$label $(grep -o 'policy=[^ ]*' <<< "$summary") $(grep -o 'verified=[^ ]*' <<< "$summary") $(grep -o 'tls=[^ ]*' <<< "$summary")" \
            >> "$OUT/mxlock-policy.txt"
    done
    stop_pid "$pid"
}

# Checks the running Postfix relay's log: every TLS connection it opened
# must be DANE-verified ("Verified TLS connection established") and every
# message sent. Records the counts in mxlock-policy.txt.
check_postfix_deliveries() {
    local label=$1 maillog=$OUT/postfix-relay/postfix/maillog verified other sent failed
    verified=$(grep -c ' Verified TLS connection established to sink.signed.test' "$maillog" || true)
    other=$(grep -Ec ' (Untrusted|Anonymous|Trusted) TLS connection established' "$maillog" || true)
    sent=$(grep -c ' status=sent ' "$maillog" || true)
    failed=$(grep -Ec ' status=(deferred|bounced) ' "$maillog" || true)
    echo "postfix-dane ($label): $sent messages sent, $verified TLS connections Verified (DANE), $other not verified, $failed deferred or bounced" \
        >> "$OUT/mxlock-policy.txt"
    [ "$verified" -gt 0 ] && [ "$other" -eq 0 ] && [ "$failed" -eq 0 ] \
        || die "the Postfix relay did not deliver every message over DANE-verified TLS; see $maillog"
}

# Sends one message through the Postfix relay and checks that it reached
# the sink over DANE-verified TLS.
probe_postfix_relay() {
    local before
    start_relay postfix-dane
    read -r -a before <<< "$(sink_counters)"
    "$PYTHON" "$CLIENT" latency --host "$POSTFIX_RELAY_ADDR" --rcpt "$(path_rcpt postfix-dane)" \
        --count 1 --sink-pid "$SINK_PID" --sink-stats "$OUT/sink.stats" > /dev/null \
        || die "probe message through the Postfix relay failed; see $OUT/postfix-relay/postfix/maillog"
    check_postfix_deliveries probe
    stop_relay postfix-dane
}

# Paths in round-robin order, starting one further along each round, so no
# path always runs first or right after the same neighbour.
round_paths() {
    local round=$1 n i
    local -a list
    read -r -a list <<< "$PATHS"
    n=${#list[@]}
    for (( i = 0; i < n; i++ )); do
        echo "${list[$(( (i + round - 1) % n ))]}"
    done
}

describe_machine() {
    {
        echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
        echo "cpus=$CPUS"
        echo "load_average_at_start=$(cut -d' ' -f1-3 /proc/loadavg)"
        echo "kernel=$(uname -r)"
        echo "mxlock=$(cd "$ROOT" && git describe --always --dirty 2> /dev/null || echo unknown)"
        echo "wolfssl=$(dpkg-query -W -f='${Version}' libwolfssl35 2> /dev/null || pkg-config --modversion wolfssl)"
        if [ -e "$TUNED_PREFIX/.mxlock-tuned-stamp" ]; then
            echo "wolfssl_tuned=$(paste -sd ' ' "$TUNED_PREFIX/.mxlock-tuned-stamp" | sed 's/ *$//')"
        fi
        echo "stunnel=$(stunnel -version 2>&1 | awk '/^stunnel/ {print $2; exit}')"
        echo "haproxy=$(haproxy -v | awk 'NR == 1 {print $3}')"
        echo "postfix=$(postconf -d -h mail_version 2> /dev/null || echo unknown)"
        echo "postfix_mta_sts_resolver=$(dpkg-query -W -f='${Version}' postfix-mta-sts-resolver 2> /dev/null || echo unknown)"
        echo "rounds=$ROUNDS msgs_1k=$MSGS_1K sessions=$SESSIONS mib=$MIB latency_msgs=$LATENCY_MSGS idle_sessions=$IDLE_SESSIONS"
        echo "postfix_path: msgs_1k=$MSGS_POSTFIX mib=$MIB_POSTFIX latency_msgs=$LATENCY_MSGS_POSTFIX idle_sessions=$IDLE_SESSIONS_POSTFIX"
    } > "$OUT/machine.txt"
}

# Sets PATHS and RELAYS: the tuned mxlock paths only when its binary
# exists, with the reason in skipped.txt when it does not.
choose_paths() {
    local tuned_paths="" tuned_relay=""
    if [ -x "$MXLOCK_TUNED" ]; then
        tuned_paths="mxlock-tuned mxlock-dane-tuned"
        tuned_relay=mxlock-tuned
    else
        echo "mxlock with the tuned wolfSSL: not measured, $MXLOCK_TUNED is missing (make WOLFSSL=tuned)" \
            >> "$OUT/skipped.txt"
        log "skipping the tuned mxlock paths: $MXLOCK_TUNED is missing"
    fi
    PATHS="direct haproxy stunnel stunnel-noresume postfix-dane mxlock mxlock-dane $tuned_paths"
    RELAYS="haproxy stunnel stunnel-noresume postfix-dane mxlock $tuned_relay"
}

# Runs the load and latency tests of one path.
run_path_load() {
    local round=$1 path=$2 msgs=$MSGS_1K mib=$MIB warmup=200
    if [ "$path" = postfix-dane ]; then
        msgs=$MSGS_POSTFIX
        mib=$MIB_POSTFIX
    fi
    # A short unmeasured run first: DNS caches, session caches.
    run_load "$round" "$path" warmup "$warmup" "$SESSIONS" 1024 ""
    run_load "$round" "$path" msg1k "$msgs" "$SESSIONS" 1024 ""
    run_load "$round" "$path" keep1k "$msgs" "$SESSIONS" 1024 "-d"
    run_load "$round" "$path" mib "$mib" "$SESSIONS_1M" 1048576 ""
    run_latency "$round" "$path"
}

# The workers setting: the same load through mxlock with one event loop and
# with two, neither pinned to a CPU. The sink and smtp-source run on the
# same CPUs, so on a small machine this shows what the relay gains while
# the rest competes with it, not what a larger machine would gain.
run_scaling() {
    local round=$1 name
    for name in mxlock-w1 mxlock-w2; do
        start_relay "$name"
        run_load "$round" "$name" warmup 200 "$SESSIONS" 1024 ""
        run_load "$round" "$name" msg1k "$MSGS_1K" "$SESSIONS" 1024 ""
        stop_relay "$name"
    done
}

# Runs the idle-session tests of one path.
run_path_idle() {
    local round=$1 path=$2
    case $path in
    direct) ;;
    mxlock | mxlock-tuned)
        run_idle "$round" "$path" ehlo
        run_idle "$round" "$path" rcpt
        ;;
    mxlock-dane | mxlock-dane-tuned) run_idle "$round" "$path" rcpt ;;
    *) run_idle "$round" "$path" ehlo ;;
    esac
}

main() {
    local round path relay started
    [ -x "$MXLOCK" ] || die "build/mxlock is missing; run make all"
    started=$(date +%s)
    rm -rf "$OUT/state" "$OUT"/state-* "$OUT/postfix-sink" "$OUT/postfix-relay" \
        "$OUT"/*.csv "$OUT"/*.md "$OUT"/*.txt "$OUT"/*.log
    mkdir -p "$OUT/state" "$OUT/state-tuned"
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    echo "round,path,metric,value" > "$OUT/raw.csv"
    : > "$OUT/skipped.txt"

    build_helpers
    build_tlsloop_tuned
    choose_paths
    describe_machine
    log "starting the test network"
    start_network
    start_sink
    start_postfix_sink
    write_haproxy_conf
    write_stunnel_conf stunnel "$STUNNEL_ADDR" yes "$STUNNEL_POSTFIX_ADDR"
    write_stunnel_conf stunnel-noresume "$STUNNEL_NORESUME_ADDR" no 127.0.29.15
    write_mxlock_conf "$OUT/mxlock.yaml" "$MXLOCK_ADDR" warn "$OUT/state"
    write_mxlock_conf "$OUT/mxlock-tuned.yaml" "$MXLOCK_TUNED_ADDR" warn "$OUT/state-tuned"
    # The scaling check runs the tuned build when there is one.
    SCALE_MXLOCK=$MXLOCK
    [ ! -x "$MXLOCK_TUNED" ] || SCALE_MXLOCK=$MXLOCK_TUNED
    echo "workers_check=$SCALE_MXLOCK" >> "$OUT/machine.txt"
    write_mxlock_conf "$OUT/mxlock-w1.yaml" "$MXLOCK_W1_ADDR" warn "$OUT/state-w1" 1
    write_mxlock_conf "$OUT/mxlock-w2.yaml" "$MXLOCK_W2_ADDR" warn "$OUT/state-w2" 2
    probe_mxlock_policy mxlock "$MXLOCK" "$PROBE_ADDR"
    [ ! -x "$MXLOCK_TUNED" ] || probe_mxlock_policy mxlock-tuned "$MXLOCK_TUNED" "$PROBE_TUNED_ADDR"
    probe_postfix_relay
    log "policies: $(tr '\n' ';' < "$OUT/mxlock-policy.txt")"

    for round in $(seq "$ROUNDS"); do
        log "round $round of $ROUNDS: load and latency ($(( $(date +%s) - started )) s so far)"
        for relay in $RELAYS; do
            start_relay "$relay"
        done
        for path in $(round_paths "$round"); do
            run_path_load "$round" "$path"
        done
        # Latency against Postfix, which can hold a reply back until the
        # client's delayed ACK arrives (about 40 ms).
        run_latency "$round" direct-postfix
        run_latency "$round" stunnel-postfix
        run_latency "$round" mxlock-postfix
        [ -z "${RELAY_PID[mxlock-tuned]:-}" ] || run_latency "$round" mxlock-tuned-postfix
        check_postfix_deliveries "round $round"
        for relay in $RELAYS; do
            stop_relay "$relay"
        done
        log "round $round of $ROUNDS: idle sessions and floors"
        for path in $(round_paths "$round"); do
            run_path_idle "$round" "$path"
        done
        run_scaling "$round"
        run_floors "$round" floor "$BIN/tlsloop"
        [ ! -x "$BIN/tlsloop-tuned" ] || run_floors "$round" floor-tuned "$BIN/tlsloop-tuned"
    done

    echo "load_average_at_end=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.txt"
    echo "run_time_s=$(( $(date +%s) - started ))" >> "$OUT/machine.txt"
    "$PYTHON" "$ROOT/scripts/bench/report.py" "$OUT"
    log "done in $(( $(date +%s) - started )) s; results in $OUT/results.md and $OUT/results.csv"
}

main "$@"
