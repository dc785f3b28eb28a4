#!/bin/bash
# Runs the benchmark's Postfix rival: what operators run today for the job
# mxlock does. A private Postfix 3.7 instance accepts mail from 127.0.0.0/8
# on ADDR:25, queues it to disk and delivers it to the recipient domain's MX
# hosts with smtp_tls_security_level = dane and smtp_dns_support_level =
# dnssec. Debian's postfix-mta-sts-resolver (mta-sts-daemon) serves its
# smtp_tls_policy_maps lookups on ADDR:STS_PORT. The connection cache and
# the TLS session cache are on, as an operator would run it.
#
#   scripts/bench/postfix-relay.sh start DIR ADDR STS_PORT RESOLVER_ADDR CA_FILE
#   scripts/bench/postfix-relay.sh stop DIR
#   scripts/bench/postfix-relay.sh pids DIR     every process of the instance
#
# Both Postfix and mta-sts-daemon resolve names through /etc/resolv.conf
# (Postfix through the C library, mta-sts-daemon through pycares), so each
# runs in a mount namespace of its own (unshare -m) where DIR/resolv.conf,
# naming RESOLVER_ADDR with "options trust-ad", is bind-mounted over
# /etc/resolv.conf. The machine's own file is never read or changed.
#
# Environment: RELAY_CPU, the CPU list both are pinned to (taskset; default
# 0). When the cgroup v1 cpuacct hierarchy is writable, start creates a
# cgroup for the instance and the daemon and writes its path to DIR/cgroup,
# where the caller reads cpuacct.usage. stop removes the cgroup.
#
# Configuration goes to DIR/postfix, the queue to DIR/queue, the Postfix log
# to DIR/postfix/maillog and the daemon's to DIR/mta-sts-daemon.log.
set -euo pipefail

CPUACCT_ROOT=/sys/fs/cgroup/cpuacct
RELAY_CPU=${RELAY_CPU:-0}

log() { echo "postfix-relay: $*" >&2; }
die() { log "$*"; exit 1; }

# shellcheck source=scripts/testnet/postfix-common.sh
. "$(dirname "$0")/../testnet/postfix-common.sh"

usage() {
    cat >&2 <<'USAGE'
usage: postfix-relay.sh start DIR ADDR STS_PORT RESOLVER_ADDR CA_FILE
       postfix-relay.sh stop DIR | pids DIR
USAGE
    exit 2
}

write_main_cf() {
    local addr=$1 sts_port=$2 ca_file=$3
    cat > "$CONF/main.cf" <<EOF
# Private Postfix instance made by scripts/bench/postfix-relay.sh.
compatibility_level = 3.6
queue_directory = $STATE/queue
data_directory = $STATE/data
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-relay
maillog_file = $CONF/maillog
maillog_file_prefixes = $CONF

myhostname = relay-pf.bench.test
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
message_size_limit = 0

# Delivery straight to the MX hosts: DANE where the TLSA records are
# secure, MTA-STS from mta-sts-daemon for the other domains.
relayhost =
smtp_bind_address = $addr
smtp_dns_support_level = dnssec
smtp_tls_security_level = dane
smtp_tls_policy_maps = socketmap:inet:$addr:$sts_port:postfix
smtp_tls_CAfile = $ca_file
smtp_tls_loglevel = 1
smtp_tls_session_cache_database = btree:\$data_directory/smtp_scache
smtp_connection_cache_on_demand = yes
EOF
}

write_daemon_conf() {
    local addr=$1 sts_port=$2
    cat > "$STATE/mta-sts-daemon.yml" <<EOF
# Made by scripts/bench/postfix-relay.sh.
host: $addr
port: $sts_port
reuse_port: true
cache:
  type: sqlite
  options:
    filename: "$STATE/mta-sts-cache.db"
default_zone:
  strict_testing: false
  timeout: 4
EOF
}

# Creates the instance's cpuacct cgroup, if the hierarchy is writable, and
# records its path in DIR/cgroup.
make_cgroup() {
    local group=$CPUACCT_ROOT/mxlock-bench-postfix-relay-$$
    rm -f "$STATE/cgroup"
    [ -w "$CPUACCT_ROOT" ] || { log "no writable $CPUACCT_ROOT: the caller must sum process CPU"; return 0; }
    mkdir "$group" 2> /dev/null || { log "cannot create $group: the caller must sum process CPU"; return 0; }
    echo "$group" > "$STATE/cgroup"
}

# Runs COMMAND... pinned to RELAY_CPU, in the instance's cgroup (if any),
# in a new mount namespace where DIR/resolv.conf is mounted over
# /etc/resolv.conf.
# COMMAND keeps the PID written to PID_FILE, when that is not empty.
# shellcheck disable=SC2016 # $1 to $3 expand in the inner shell
in_namespace() {
    local pid_file=$1 group=""
    shift
    [ -e "$STATE/cgroup" ] && group=$(< "$STATE/cgroup")
    exec taskset -c "$RELAY_CPU" unshare -m bash -c '
        [ -z "$1" ] || echo $$ > "$1/cgroup.procs" || exit 1
        [ -z "$2" ] || echo $$ > "$2" || exit 1
        mount --bind "$3" /etc/resolv.conf || exit 1
        shift 3
        exec "$@"
    ' in-namespace "$group" "$pid_file" "$STATE/resolv.conf" "$@"
}

start_daemon() {
    local addr=$1 sts_port=$2 ca_file=$3 pid_file=$STATE/mta-sts-daemon.pid
    write_daemon_conf "$addr" "$sts_port"
    rm -f "$pid_file"
    # The daemon fetches MTA-STS policies over HTTPS with Python's default
    # trust store, which SSL_CERT_FILE replaces with the test CA.
    (export SSL_CERT_FILE=$ca_file; in_namespace "$pid_file" mta-sts-daemon -v warn \
        -c "$STATE/mta-sts-daemon.yml" -l "$STATE/mta-sts-daemon.log" \
        < /dev/null > "$STATE/mta-sts-daemon.out" 2>&1) &
    for _ in $(seq 100); do
        if [ -s "$pid_file" ]; then
            pid_alive "$(< "$pid_file")" || die "mta-sts-daemon exited at start; see $STATE/mta-sts-daemon.out"
            listening "$addr:$sts_port" && return 0
        fi
        sleep 0.1
    done
    die "mta-sts-daemon is not listening on $addr:$sts_port after 10 s"
}

start_postfix() {
    local output
    run_postfix check || exit 1
    # The master process and every daemon it starts stay in the new mount
    # namespace, the cgroup and the CPU set.
    if ! output=$(in_namespace "" script -qec "$(printf '%q ' postfix -c "$CONF" start)" /dev/null 2>&1); then
        log "postfix start failed: $output"
        [ -s "$CONF/maillog" ] && log "end of $CONF/maillog:"$'\n'"$(tail -n 20 "$CONF/maillog")"
        exit 1
    fi
}

start_instance() {
    local addr=$1 sts_port=$2 resolver=$3 ca_file=$4
    [ -r "$ca_file" ] || die "CA file $ca_file is not readable"
    listening "$addr:25" && die "$addr:25 is already in use"
    mkdir -p "$CONF" "$STATE/queue" "$STATE/data"
    chown postfix:postfix "$STATE/data"
    printf 'nameserver %s\noptions edns0 trust-ad\n' "$resolver" > "$STATE/resolv.conf"
    write_main_cf "$addr" "$sts_port" "$ca_file"
    write_master_cf "$addr:25"
    : > "$CONF/maillog"
    make_cgroup

    start_daemon "$addr" "$sts_port" "$ca_file"
    start_postfix
    for _ in $(seq 100); do
        listening "$addr:25" && return 0
        sleep 0.1
    done
    die "Postfix is not listening on $addr:25 after 10 s; see $CONF/maillog"
}

# Prints the PIDs of the master process and all its children, and of the
# daemon.
instance_pids() {
    local master daemon_pid
    master=$(tr -d ' \n' < "$STATE/queue/pid/master.pid" 2> /dev/null) || master=""
    daemon_pid=$(cat "$STATE/mta-sts-daemon.pid" 2> /dev/null) || daemon_pid=""
    if [ -n "$master" ] && pid_alive "$master"; then
        echo "$master"
        # Postfix's daemons are children of the master; none forks further.
        ps -o pid= --ppid "$master" || true
    fi
    if [ -n "$daemon_pid" ] && pid_alive "$daemon_pid"; then
        echo "$daemon_pid"
    fi
}

stop_instance() {
    local master="" pid group
    [ -e "$STATE/queue/pid/master.pid" ] && master=$(tr -d ' \n' < "$STATE/queue/pid/master.pid")
    if [ -n "$master" ] && pid_alive "$master"; then
        run_postfix stop || kill -TERM "$master" 2> /dev/null || true
        for _ in $(seq 100); do
            pid_alive "$master" || break
            sleep 0.1
        done
        if pid_alive "$master"; then
            log "Postfix master $master did not stop; sending SIGKILL"
            kill -KILL "$master" 2> /dev/null || true
        fi
    fi

    if [ -e "$STATE/mta-sts-daemon.pid" ]; then
        pid=$(< "$STATE/mta-sts-daemon.pid")
        kill -TERM "$pid" 2> /dev/null || true
        for _ in $(seq 50); do
            pid_alive "$pid" || break
            sleep 0.1
        done
        kill -KILL "$pid" 2> /dev/null || true
        rm -f "$STATE/mta-sts-daemon.pid"
    fi

    if [ -e "$STATE/cgroup" ]; then
        group=$(< "$STATE/cgroup")
        # Postfix's daemons leave within a second or so of the master.
        for _ in $(seq 50); do
            rmdir "$group" 2> /dev/null && break
            sleep 0.1
        done
        [ -d "$group" ] && log "cgroup $group still has processes: $(tr '\n' ' ' < "$group/cgroup.procs")"
        rm -f "$STATE/cgroup"
    fi
    return 0
}

[ $# -ge 2 ] || usage
mkdir -p "$2"
STATE=$(cd "$2" && pwd)
CONF=$STATE/postfix

case "$1" in
start) [ $# -eq 6 ] || usage; start_instance "$3" "$4" "$5" "$6" ;;
stop) [ $# -eq 2 ] || usage; stop_instance ;;
pids) [ $# -eq 2 ] || usage; instance_pids ;;
*) usage ;;
esac
