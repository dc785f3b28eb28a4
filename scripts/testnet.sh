#!/bin/bash
# Starts and stops the local test network: NSD (authoritative, 127.0.53.1:53),
# Unbound (validating resolver, 127.0.53.2:53), a fresh test PKI and three
# receiving MX hosts (127.0.25.1-3:25). Everything lives under the state
# folder DIR and listens on loopback only; addresses and names are listed in
# scripts/testnet/README.md.
#
#   scripts/testnet.sh start DIR   (re)build and start; writes DIR/env
#   scripts/testnet.sh stop DIR    stop by the PIDs recorded in DIR/pids
#
# Zones are signed and keys made anew at every start, so signatures never
# expire and tests must read keys and digests from DIR, not from constants.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TEMPLATES=$ROOT/scripts/testnet
PYTHON=/usr/bin/python3
NSD_ADDR=127.0.53.1
RESOLVER_ADDR=127.0.53.2
# name address certificate-key-type (none: no STARTTLS)
MX_HOSTS="mx1:127.0.25.1:mx1.signed.test:ec mx2:127.0.25.2:mx2.signed.test:rsa mx3:127.0.25.3:mx3.plain.test:none"
START_TIMEOUT_TENTHS=100

log() { echo "testnet: $*" >&2; }
die() { log "$*"; exit 1; }

usage() {
    echo "usage: scripts/testnet.sh start|stop DIR" >&2
    exit 2
}

# True if the process exists and is not a zombie. With no init process to reap
# them, stopped daemons can stay zombies for a while.
pid_alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# True if the process was started for this state folder, so a reused PID of
# an unrelated process is never signalled.
pid_ours() {
    tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -qF "$STATE/"
}

listening() {
    local proto=$1 addr=$2
    ss -Hln"$proto" | awk '{print $4}' | grep -qxF "$addr"
}

service_addresses() {
    local entry
    echo "$NSD_ADDR:53" "$RESOLVER_ADDR:53"
    for entry in $MX_HOSTS; do
        IFS=: read -r _ addr _ _ <<< "$entry"
        echo "$addr:25"
    done
}

# Sends SIGTERM to every recorded process, waits for all of them (SIGKILL after
# 5 s), then waits until their ports are free. A port held by a process that
# this state folder did not start is reported by check_ports_free instead.
stop_all() {
    local file pid pids="" addr busy

    for file in "$STATE"/pids/*.pid; do
        [ -e "$file" ] || continue
        pid=$(cat "$file")
        if pid_alive "$pid" && pid_ours "$pid"; then
            kill -TERM "$pid" 2>/dev/null || true
            pids="$pids $pid"
        fi
        rm -f "$file"
    done

    for _ in $(seq 50); do
        busy=""
        for pid in $pids; do
            pid_alive "$pid" && busy="$busy $pid"
        done
        [ -z "$busy" ] && break
        sleep 0.1
    done
    for pid in $busy; do
        log "process $pid did not stop after SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    done
    [ -n "$pids" ] || return 0

    for _ in $(seq 50); do
        busy=""
        for addr in $(service_addresses); do
            listening t "$addr" && busy="$busy $addr"
        done
        [ -z "$busy" ] && return 0
        sleep 0.1
    done
    die "ports still in use after stop:$busy"$'\n'"$(ss -Hltnup)"
}

running_pids() {
    local file pid
    for file in "$STATE"/pids/*.pid; do
        [ -e "$file" ] || continue
        pid=$(cat "$file")
        pid_alive "$pid" && pid_ours "$pid" && echo "$pid"
    done
    return 0
}

check_ports_free() {
    local addr
    for addr in $(service_addresses); do
        if listening t "$addr" || listening u "$addr"; then
            die "$addr is already in use by another process:"$'\n'"$(ss -Hltunp | grep -F "$addr")"
        fi
    done
}

# Starts a foreground daemon in the background and records its PID.
launch() {
    local name=$1 logfile=$2
    shift 2
    "$@" >> "$logfile" 2>&1 < /dev/null &
    echo $! > "$STATE/pids/$name.pid"
}

# Waits until the service listens on ADDR:PORT with every protocol given
# (t, u). Fails with the end of its log if it exits or times out first.
wait_ready() {
    local name=$1 logfile=$2 addr=$3 protos=$4 pid proto ready

    pid=$(cat "$STATE/pids/$name.pid")
    for _ in $(seq "$START_TIMEOUT_TENTHS"); do
        if ! pid_alive "$pid"; then
            die "$name exited during start-up; end of $logfile:"$'\n'"$(tail -n 20 "$logfile")"
        fi
        ready=yes
        for proto in $protos; do
            listening "$proto" "$addr" || ready=no
        done
        [ "$ready" = yes ] && return 0
        sleep 0.1
    done
    die "$name is not listening on $addr after 10 s; end of $logfile:"$'\n'"$(tail -n 20 "$logfile")"
}

make_pki() {
    local entry name fqdn keytype

    "$TEMPLATES/pki.sh" ca "$STATE/pki"
    for entry in $MX_HOSTS; do
        IFS=: read -r name _ fqdn keytype <<< "$entry"
        [ "$keytype" = none ] && keytype=ec
        "$TEMPLATES/pki.sh" leaf "$STATE/pki" "$fqdn" "$keytype"
    done
}

# Copies one zone template to DIR/nsd and signs it as its first line specifies
# ("; testnet: signed|expired|unsigned"). Prints the file name NSD serves.
prepare_zone() {
    local template=$1 zone mode keybase served edit
    zone=$(basename "$template" .zone)
    mode=$(sed -n '1s/^; testnet: \([a-z]*\).*/\1/p' "$template")
    cp "$template" "$STATE/nsd/$zone.zone"

    case "$mode" in
    unsigned)
        echo "$zone.zone"
        return 0
        ;;
    signed|expired) ;;
    *) die "$template: first line must be '; testnet: signed|expired|unsigned'" ;;
    esac

    keybase=$(cd "$STATE/nsd/keys" && ldns-keygen -a ECDSAP256SHA256 -k "$zone")
    cat "$STATE/nsd/keys/$keybase.ds" >> "$STATE/unbound/trust-anchors.ds"
    served=$STATE/nsd/$zone.zone.signed
    if [ "$mode" = expired ]; then
        ldns-signzone -i 20200101000000 -e 20200201000000 -f "$served" \
            "$STATE/nsd/$zone.zone" "$STATE/nsd/keys/$keybase"
    else
        ldns-signzone -f "$served" "$STATE/nsd/$zone.zone" "$STATE/nsd/keys/$keybase"
    fi

    edit=$TEMPLATES/zones/$zone.after-signing.sed
    if [ -e "$edit" ]; then
        cp "$served" "$served.orig"
        sed -E -i -f "$edit" "$served"
        cmp -s "$served" "$served.orig" && die "$edit changed nothing in $served"
    fi
    basename "$served"
}

write_dns_configs() {
    local template zone served

    sed "s|@STATE@|$STATE|g" "$TEMPLATES/nsd.conf.in" > "$STATE/nsd/nsd.conf"
    sed "s|@STATE@|$STATE|g" "$TEMPLATES/unbound.conf.in" > "$STATE/unbound/unbound.conf"
    : > "$STATE/unbound/trust-anchors.ds"

    for template in "$TEMPLATES"/zones/*.zone; do
        zone=$(basename "$template" .zone)
        served=$(prepare_zone "$template")
        printf '\nzone:\n    name: "%s"\n    zonefile: "%s"\n' \
            "$zone" "$served" >> "$STATE/nsd/nsd.conf"
        printf '\nstub-zone:\n    name: "%s"\n    stub-addr: %s\n' \
            "$zone" "$NSD_ADDR" >> "$STATE/unbound/unbound.conf"
    done

    nsd-checkconf "$STATE/nsd/nsd.conf" || die "invalid $STATE/nsd/nsd.conf"
    unbound-checkconf "$STATE/unbound/unbound.conf" > /dev/null \
        || die "invalid $STATE/unbound/unbound.conf"
}

start_dns() {
    launch nsd "$STATE/nsd/nsd.log" nsd -d -c "$STATE/nsd/nsd.conf"
    wait_ready nsd "$STATE/nsd/nsd.log" "$NSD_ADDR:53" "t u"

    launch unbound "$STATE/unbound/unbound.log" unbound -d -c "$STATE/unbound/unbound.conf"
    wait_ready unbound "$STATE/unbound/unbound.log" "$RESOLVER_ADDR:53" "t u"
}

start_mx_hosts() {
    local entry name addr fqdn keytype tls

    for entry in $MX_HOSTS; do
        IFS=: read -r name addr fqdn keytype <<< "$entry"
        tls=()
        if [ "$keytype" != none ]; then
            tls=(--tls-chain "$STATE/pki/$fqdn.chain.pem" --tls-key "$STATE/pki/$fqdn.key")
        fi
        launch "$name" "$STATE/mx/$name.log" "$PYTHON" "$ROOT/test/peers/mx.py" \
            --address "$addr" --port 25 --name "$name" --hostname "$fqdn" \
            --maildir "$STATE/mail" "${tls[@]}"
    done
    for entry in $MX_HOSTS; do
        IFS=: read -r name addr _ _ <<< "$entry"
        wait_ready "$name" "$STATE/mx/$name.log" "$addr:25" t
    done
}

# One query that needs the whole chain: NSD, the stub zones and validation.
check_validation() {
    local answer
    answer=$(dig @"$RESOLVER_ADDR" +time=2 +tries=1 signed.test MX) \
        || die "no response from Unbound at $RESOLVER_ADDR; see $STATE/unbound/unbound.log"
    if ! grep -q '^;; flags:.* ad[ ;]' <<< "$answer"; then
        die "signed.test MX is not validated (no AD flag); end of unbound.log:"$'\n'"$(tail -n 20 "$STATE/unbound/unbound.log")"
    fi
}

write_env() {
    cat > "$STATE/env" <<EOF
# Written by scripts/testnet.sh start; source it in a shell.
TESTNET_DIR='$STATE'
RESOLVER='$RESOLVER_ADDR:53'
RESOLVER_ADDR='$RESOLVER_ADDR'
AUTH_DNS='$NSD_ADDR:53'
CA_FILE='$STATE/pki/ca.crt'
PKI_DIR='$STATE/pki'
MAIL_DIR='$STATE/mail'
PYTHON='$PYTHON'
MX_PY='$ROOT/test/peers/mx.py'
SCRIPT_MX_PY='$ROOT/test/peers/script_mx.py'
UNBOUND_CONTROL_CONF='$STATE/unbound/unbound.conf'
EOF
}

stop_on_failure() {
    local status=$?
    [ "$status" -eq 0 ] || stop_all
    exit "$status"
}

start() {
    if [ -n "$(running_pids)" ]; then
        log "a test network is running from $STATE; stopping it first"
    fi
    stop_all
    check_ports_free

    rm -rf "$STATE"/{nsd,unbound,pki,mail,mx,pids,env}
    mkdir -p "$STATE"/{nsd/keys,unbound,pki,mail,mx,pids}

    make_pki
    write_dns_configs
    start_dns
    start_mx_hosts
    check_validation
    write_env
    log "started from $STATE (source $STATE/env)"
}

[ $# -eq 2 ] || usage
mkdir -p "$2"
STATE=$(cd "$2" && pwd)

case "$1" in
start)
    # Any failure after this point leaves nothing running.
    trap stop_on_failure EXIT
    start
    ;;
stop)
    stop_all
    log "stopped"
    ;;
*) usage ;;
esac
