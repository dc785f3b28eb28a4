#!/bin/bash
# Runs a private Postfix instance as the legacy MTA in front of mxlock. It
# accepts mail from 127.0.0.0/8 on 127.0.20.1:2525 and relays all of it to
# RELAY_HOSTPORT (mxlock) in plaintext, retrying deferred mail every 5-10 s.
#
#   scripts/testnet/postfix.sh start DIR RELAY_HOSTPORT   e.g. 127.0.0.1:10025
#   scripts/testnet/postfix.sh stop DIR
#
# Configuration goes to DIR/postfix, the queue to DIR/postfix-queue and the log
# to DIR/postfix/maillog. Every command takes -c DIR/postfix, so /etc/postfix
# is never read or written; inspect the queue with
# `postqueue -c DIR/postfix -p` and retry at once with `postqueue -c DIR/postfix -f`.
set -euo pipefail

LISTEN=127.0.20.1:2525

log() { echo "postfix.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# shellcheck source=scripts/testnet/postfix-common.sh
. "$(dirname "$0")/postfix-common.sh"

usage() {
    echo "usage: scripts/testnet/postfix.sh start DIR RELAY_HOST:PORT | stop DIR" >&2
    exit 2
}


write_main_cf() {
    local relay_host=${1%:*} relay_port=${1##*:}

    cat > "$CONF/main.cf" <<EOF
# Private Postfix instance made by scripts/testnet/postfix.sh.
compatibility_level = 3.6
queue_directory = $STATE/postfix-queue
data_directory = $STATE/postfix-data
mail_owner = postfix
setgid_group = postdrop
maillog_file = $CONF/maillog
maillog_file_prefixes = $CONF

myhostname = legacy.test
mydomain = legacy.test
myorigin = \$myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
biff = no

inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
# No reverse lookups of clients: nothing may reach the system resolver.
smtpd_peername_lookup = no

# Everything goes to mxlock as the relay host, in plaintext.
relayhost = [$relay_host]:$relay_port
smtp_bind_address = ${LISTEN%:*}
smtp_dns_support_level = disabled
smtp_tls_security_level = none

# Retry deferred mail within seconds instead of Postfix's 300 s default.
minimal_backoff_time = 5s
maximal_backoff_time = 10s
queue_run_delay = 5s

# No size limit, so large-message tests are limited by mxlock alone.
message_size_limit = 0
mailbox_size_limit = 0
EOF
}

stop_instance() {
    local pid

    pid=$(master_pid || true)
    if [ -n "$pid" ] && pid_alive "$pid"; then
        run_postfix stop || kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do
            pid_alive "$pid" || break
            sleep 0.1
        done
        if pid_alive "$pid"; then
            log "Postfix master $pid did not stop; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    for _ in $(seq 50); do
        listening "$LISTEN" || return 0
        sleep 0.1
    done
    die "$LISTEN still in use after stop:"$'\n'"$(ss -Hltnp | grep -F "$LISTEN")"
}

start_instance() {
    local relay=$1

    [[ "$relay" =~ ^[0-9.]+:[0-9]+$ ]] \
        || die "invalid relay '$relay' (expected IPv4ADDRESS:PORT, e.g. 127.0.0.1:10025)"
    stop_instance
    if listening "$LISTEN"; then
        die "$LISTEN is already in use:"$'\n'"$(ss -Hltnp | grep -F "$LISTEN")"
    fi

    mkdir -p "$CONF" "$STATE/postfix-queue" "$STATE/postfix-data"
    chown postfix:postfix "$STATE/postfix-data"
    write_main_cf "$relay"
    write_master_cf "$LISTEN"
    : > "$CONF/maillog"

    run_postfix check || exit 1
    run_postfix start || exit 1
    for _ in $(seq 100); do
        listening "$LISTEN" && { log "started, listening on $LISTEN, relay [$relay]"; return 0; }
        sleep 0.1
    done
    die "Postfix is not listening on $LISTEN after 10 s; end of $CONF/maillog:"$'\n'"$(tail -n 20 "$CONF/maillog")"
}

[ $# -ge 2 ] || usage
mkdir -p "$2"
STATE=$(cd "$2" && pwd)
CONF=$STATE/postfix

case "$1" in
start) [ $# -eq 3 ] || usage; start_instance "$3" ;;
stop) [ $# -eq 2 ] || usage; stop_instance; log "stopped" ;;
*) usage ;;
esac
