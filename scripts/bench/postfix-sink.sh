#!/bin/bash
# Runs a private Postfix instance as a receiving MX for the benchmark's
# latency check: smtpd with STARTTLS on ADDR:25 accepts mail for any domain
# from 127.0.0.0/8, queues it and discards it. Against Postfix, a client can
# see a reply held back by about 40 ms until it sends an ACK (a delayed ACK
# meeting Nagle's algorithm). The benchmark's own sink sets TCP_NODELAY and
# does not show this.
#
#   scripts/bench/postfix-sink.sh start DIR ADDR CHAIN.pem KEY.pem
#   scripts/bench/postfix-sink.sh stop DIR
#
# Configuration goes to DIR/postfix, the queue to DIR/queue and the log to
# DIR/postfix/maillog; /etc/postfix is never read or written.
set -euo pipefail

log() { echo "postfix-sink: $*" >&2; }
die() { log "$*"; exit 1; }

# shellcheck source=scripts/testnet/postfix-common.sh
. "$(dirname "$0")/../testnet/postfix-common.sh"

usage() {
    echo "usage: postfix-sink.sh start DIR ADDR CHAIN.pem KEY.pem | stop DIR" >&2
    exit 2
}


write_main_cf() {
    local chain=$1 key=$2
    cat > "$CONF/main.cf" <<EOF
# Private Postfix instance made by scripts/bench/postfix-sink.sh.
compatibility_level = 3.6
queue_directory = $STATE/queue
data_directory = $STATE/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = $CONF/maillog
maillog_file_prefixes = $CONF

myhostname = pfsink.signed.test
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
biff = no
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_peername_lookup = no
smtpd_tls_security_level = may
smtpd_tls_chain_files = $key, $chain
# Accepted mail is discarded: the check measures the SMTP dialogue only.
default_transport = discard:bench
relay_transport = discard:bench
message_size_limit = 0
EOF
}

start_instance() {
    local addr=$1 chain=$2 key=$3
    listening "$addr:25" && die "$addr:25 is already in use"
    mkdir -p "$CONF" "$STATE/queue" "$STATE/data"
    chown postfix:postfix "$STATE/data"
    write_main_cf "$chain" "$key"
    write_master_cf "$addr:25"
    : > "$CONF/maillog"
    run_postfix check || exit 1
    run_postfix start || exit 1
    for _ in $(seq 100); do
        listening "$addr:25" && return 0
        sleep 0.1
    done
    die "Postfix is not listening on $addr:25 after 10 s; see $CONF/maillog"
}

stop_instance() {
    local file=$STATE/queue/pid/master.pid pid
    [ -e "$file" ] || return 0
    pid=$(tr -d ' \n' < "$file")
    run_postfix stop || kill -TERM "$pid" 2> /dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2> /dev/null || return 0
        sleep 0.1
    done
    log "Postfix master $pid did not stop; sending SIGKILL"
    kill -KILL "$pid" 2> /dev/null || true
}

[ $# -ge 2 ] || usage
mkdir -p "$2"
STATE=$(cd "$2" && pwd)
CONF=$STATE/postfix

case "$1" in
start) [ $# -eq 5 ] || usage; start_instance "$3" "$4" "$5" ;;
stop) [ $# -eq 2 ] || usage; stop_instance ;;
*) usage ;;
esac
