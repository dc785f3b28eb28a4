#!/bin/bash
# Runs a private Postfix instance as a DANE reference client (RFC 7672): it
# accepts mail from 127.0.0.0/8 on 127.0.20.2:2525 and delivers it straight
# to the recipient domain's MX hosts with smtp_tls_security_level = dane and
# smtp_dns_support_level = dnssec, asking the test network's resolver. Its
# verdict for each recipient is what mxlock's should be compared against.
#
#   scripts/testnet/postfix-dane.sh start DIR
#   scripts/testnet/postfix-dane.sh stop DIR
#   scripts/testnet/postfix-dane.sh send DIR RCPT     prints the queue ID
#   scripts/testnet/postfix-dane.sh verdict DIR RCPT [SECONDS]
#
# verdict waits (default 30 s) for the latest delivery attempt to RCPT. It
# prints verified, trusted, untrusted or anonymous when Postfix delivered
# over TLS that it logged with that word. Otherwise it prints sent-plain
# (delivered without TLS), deferred or bounced, or "none" with exit status 1
# on timeout.
#
# Postfix's resolver reads /etc/resolv.conf, so the instance runs in a mount
# namespace of its own (unshare -m) where DIR/resolv.conf, naming
# RESOLVER_ADDR (default 127.0.53.2) with "options trust-ad", is bind-mounted
# over /etc/resolv.conf; the machine's own file is never changed or read.
# Without permission for unshare -m, start exits 77 and says why.
#
# Environment: RESOLVER_ADDR (default 127.0.53.2); POSTFIX_DANE_CA_FILE, a CA
# bundle for smtp_tls_CAfile (default none, so TLS that DANE does not
# authenticate is logged as Untrusted rather than Trusted).
#
# Configuration goes to DIR/postfix, the queue to DIR/postfix-queue and the
# log to DIR/postfix/maillog. Deferred mail is retried every 5-10 s; retry at
# once with `postqueue -c DIR/postfix -f`. Use a new recipient address for
# every message: verdict reads the latest attempt for the address.
set -euo pipefail

LISTEN=127.0.20.2:2525
RESOLVER_ADDR=${RESOLVER_ADDR:-127.0.53.2}
SYSLOG_NAME=postfix-dane

log() { echo "postfix-dane.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# shellcheck source=scripts/testnet/postfix-common.sh
. "$(dirname "$0")/postfix-common.sh"

usage() {
    cat >&2 <<'USAGE'
usage: scripts/testnet/postfix-dane.sh start DIR | stop DIR
       scripts/testnet/postfix-dane.sh send DIR RCPT
       scripts/testnet/postfix-dane.sh verdict DIR RCPT [SECONDS]
USAGE
    exit 2
}


write_main_cf() {
    local ca_line="# smtp_tls_CAfile: none (set POSTFIX_DANE_CA_FILE)"
    if [ -n "${POSTFIX_DANE_CA_FILE:-}" ]; then
        [ -r "$POSTFIX_DANE_CA_FILE" ] || die "POSTFIX_DANE_CA_FILE '$POSTFIX_DANE_CA_FILE' is not readable"
        ca_line="smtp_tls_CAfile = $POSTFIX_DANE_CA_FILE"
    fi

    cat > "$CONF/main.cf" <<EOF
# Private Postfix instance made by scripts/testnet/postfix-dane.sh.
compatibility_level = 3.6
queue_directory = $STATE/postfix-queue
data_directory = $STATE/postfix-data
mail_owner = postfix
setgid_group = postdrop
syslog_name = $SYSLOG_NAME
maillog_file = $CONF/maillog
maillog_file_prefixes = $CONF

myhostname = dane-ref.test
mydomain = dane-ref.test
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
# No reverse lookups of clients.
smtpd_peername_lookup = no

# Direct delivery to the MX hosts, DANE where the TLSA records are secure.
relayhost =
smtp_bind_address = ${LISTEN%:*}
smtp_host_lookup = dns
smtp_dns_support_level = dnssec
smtp_tls_security_level = dane
smtp_tls_loglevel = 1
$ca_line
# One connection per delivery, so each "TLS connection established" line
# belongs to exactly one delivery attempt.
smtp_connection_cache_on_demand = no

# Retry deferred mail within seconds instead of Postfix's 300 s default.
minimal_backoff_time = 5s
maximal_backoff_time = 10s
queue_run_delay = 5s

message_size_limit = 0
mailbox_size_limit = 0
EOF
}

# Exits 77 unless this process may create a mount namespace and bind-mount
# over /etc/resolv.conf inside it.
check_namespace_allowed() {
    local output
    [ -e /etc/resolv.conf ] || { log "skipped: /etc/resolv.conf does not exist, so there is nothing to bind-mount over"; exit 77; }
    if ! output=$(unshare -m sh -c "mount --bind '$STATE/resolv.conf' /etc/resolv.conf" 2>&1); then
        log "skipped: cannot bind-mount a resolv.conf in a new mount namespace (unshare -m): $output"
        exit 77
    fi
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
    mkdir -p "$CONF" "$STATE/postfix-queue" "$STATE/postfix-data"
    printf 'nameserver %s\noptions edns0 trust-ad\n' "$RESOLVER_ADDR" > "$STATE/resolv.conf"
    check_namespace_allowed

    stop_instance
    if listening "$LISTEN"; then
        die "$LISTEN is already in use:"$'\n'"$(ss -Hltnp | grep -F "$LISTEN")"
    fi

    chown postfix:postfix "$STATE/postfix-data"
    write_main_cf
    # Each smtp process serves one delivery (max_use=1), so its PID ties the
    # TLS log line to the recipient's status line.
    write_master_cf "$LISTEN" "-o max_use=1"
    : > "$CONF/maillog"

    run_postfix check || exit 1
    # The master process and every daemon it starts stay in the new mount
    # namespace, so all of them see DIR/resolv.conf as /etc/resolv.conf.
    local output
    # shellcheck disable=SC2016 # $1 and $2 expand in the inner shell
    if ! output=$(unshare -m bash -c '
            mount --bind "$1" /etc/resolv.conf || exit 1
            script -qec "$(printf "%q " postfix -c "$2" start)" /dev/null
        ' unshare-postfix "$STATE/resolv.conf" "$CONF" 2>&1); then
        log "postfix start failed: $output"
        [ -s "$CONF/maillog" ] && log "end of $CONF/maillog:"$'\n'"$(tail -n 20 "$CONF/maillog")"
        exit 1
    fi
    for _ in $(seq 100); do
        if listening "$LISTEN"; then
            log "started, listening on $LISTEN, resolver $RESOLVER_ADDR"
            return 0
        fi
        sleep 0.1
    done
    die "Postfix is not listening on $LISTEN after 10 s; end of $CONF/maillog:"$'\n'"$(tail -n 20 "$CONF/maillog")"
}

send_message() {
    local rcpt=$1 output queue_id
    listening "$LISTEN" || die "no instance listening on $LISTEN; run start first"
    output=$(swaks --server "$LISTEN" --from "dane-ref@dane-ref.test" --to "$rcpt" \
        --header "Subject: DANE reference test for $rcpt" \
        --body "Sent by scripts/testnet/postfix-dane.sh to $rcpt." 2>&1) \
        || die "swaks failed:"$'\n'"$output"
    queue_id=$(sed -n 's/.*queued as \([0-9A-Za-z]*\).*/\1/p' <<< "$output" | tail -n 1)
    [ -n "$queue_id" ] || die "no queue ID in the reply to DATA:"$'\n'"$output"
    echo "$queue_id"
}

# Prints the verdict of the latest delivery attempt to RCPT in the maillog,
# or nothing if there is none yet. A TLS line counts for a status line when
# both come from the same smtp process and name the same host and address.
latest_verdict() {
    local rcpt=$1
    awk -v rcpt="<$rcpt>," -v prefix="$SYSLOG_NAME/smtp[" '
        function process_id(    start, rest) {
            start = index($0, prefix)
            if (start == 0) return ""
            rest = substr($0, start + length(prefix))
            return substr(rest, 1, index(rest, "]") - 1)
        }
        / TLS connection established to / {
            pid = process_id()
            if (pid == "") next
            for (i = 1; i <= NF; i++) {
                if ($i == "TLS" && $(i + 1) == "connection" && $(i + 2) == "established") {
                    kind = tolower($(i - 1))
                    peer = $(i + 4)
                    sub(/:$/, "", peer)
                    tls_kind[pid] = kind
                    tls_peer[pid] = peer
                    break
                }
            }
            next
        }
        index($0, " to=" rcpt) && / status=/ {
            pid = process_id()
            status = $0
            sub(/.* status=/, "", status)
            sub(/ .*/, "", status)
            relay = $0
            sub(/.* relay=/, "", relay)
            sub(/,.*/, "", relay)
            if (status == "sent") {
                if (pid != "" && (pid in tls_kind) && tls_peer[pid] == relay)
                    verdict = tls_kind[pid]
                else
                    verdict = "sent-plain"
            } else {
                verdict = status
            }
        }
        END { if (verdict != "") print verdict }
    ' "$CONF/maillog"
}

print_verdict() {
    local rcpt=$1 seconds=${2:-30} verdict
    [ -e "$CONF/maillog" ] || die "no maillog in $CONF; run start first"
    for _ in $(seq $((seconds * 10))); do
        verdict=$(latest_verdict "$rcpt")
        if [ -n "$verdict" ]; then
            echo "$verdict"
            return 0
        fi
        sleep 0.1
    done
    echo none
    log "no delivery attempt to $rcpt in $CONF/maillog after $seconds s"
    return 1
}

[ $# -ge 2 ] || usage
mkdir -p "$2"
STATE=$(cd "$2" && pwd)
CONF=$STATE/postfix

case "$1" in
start) [ $# -eq 2 ] || usage; start_instance ;;
stop) [ $# -eq 2 ] || usage; stop_instance; log "stopped" ;;
send) [ $# -eq 3 ] || usage; send_message "$3" ;;
verdict)
    if [ $# -lt 3 ] || [ $# -gt 4 ]; then
        usage
    fi
    print_verdict "$3" "${4:-30}"
    ;;
*) usage ;;
esac
