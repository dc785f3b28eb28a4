#!/bin/bash
# Starts and stops the local test network: NSD (authoritative, 127.0.53.1:53),
# Unbound (validating resolver, 127.0.53.2:53), a fresh test PKI and the
# receiving MX hosts (127.0.25.1-3:25). For DANE and MTA-STS it adds MX hosts
# on 127.0.27.N:25 and 127.0.28.N:25, two broken name servers
# (127.0.53.9-10:53) and the MTA-STS policy host (127.0.44.1:443).
# Everything lives under the state folder DIR and listens on loopback only.
# scripts/testnet/README.md lists the addresses and names.
#
#   scripts/testnet.sh start DIR   (re)build and start; writes DIR/env
#   scripts/testnet.sh stop DIR    stop by the PIDs recorded in DIR/pids
#   scripts/testnet.sh policy-host stop|start DIR
#                                  stop or start the policy host alone
#   scripts/testnet.sh dns-set DIR NAME TYPE [RDATA...]
#                                  replace the NAME TYPE records with one per
#                                  RDATA (none given: delete them), re-sign a
#                                  signed zone, reload NSD and flush the zone
#                                  from Unbound's cache
#   scripts/testnet.sh sts-set DIR DOMAIN ID|- POLICYFILE|-
#                                  publish "v=STSv1; id=ID;" at _mta-sts.DOMAIN
#                                  and serve POLICYFILE for DOMAIN; "-" removes
#                                  the record or the policy
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

# MX hosts for the DANE and MTA-STS names, one per line: mail folder name,
# address (port 25), host name, and the certificate sent after STARTTLS as a
# PKI base name. BASE sends BASE.chain.pem (leaf then CA, or the certificate
# alone when it is self-signed), BASE/leaf sends BASE.crt alone, and "-"
# offers no STARTTLS.
TLS_MX_HOSTS="
ee              127.0.27.1   ee.signed.test              ee.signed.test
eexp            127.0.27.2   eexp.signed.test            unrelated.example.test
eold            127.0.27.3   eold.signed.test            unrelated.example.test
nonleaf         127.0.27.4   nonleaf.signed.test         nonleaf.signed.test
ta              127.0.27.5   ta.signed.test              ta.signed.test
ta-nochain      127.0.27.6   ta-nochain.signed.test      ta-nochain.signed.test/leaf
ta-wrongname    127.0.27.7   ta-wrongname.signed.test    wrong.example.test
unusable        127.0.27.8   unusable.signed.test        unusable.signed.test
unusable-plain  127.0.27.9   unusable-plain.signed.test  -
unusable-plus   127.0.27.10  unusable-plus.signed.test   unusable-plus.signed.test
nostarttls      127.0.27.11  nostarttls.signed.test      -
bad             127.0.27.12  bad.signed.test             bad.signed.test
good            127.0.27.13  good.signed.test            good.signed.test
realhost        127.0.27.14  realhost.signed.test        realhost.signed.test
dane-bogus      127.0.27.15  mx.dane-bogus.test          mx.dane-bogus.test
lame-timeout    127.0.27.16  mx-timeout.dane-lame.test   mx-timeout.dane-lame.test
lame-refused    127.0.27.17  mx-refused.dane-lame.test   mx-refused.dane-lame.test
sts-enforce     127.0.28.1   mx1.sts-enforce.plain.test  mx1.sts-enforce.plain.test
sts-backup      127.0.28.2   backup.other.plain.test     backup.other.plain.test
sts-wrongcert   127.0.28.3   mx.sts-wrongcert.plain.test out7.relay.sts-wrongcert.plain.test
sts-forged-mx5  127.0.28.4   forged.other.plain.test     forged.other.plain.test
sts-forged      127.0.28.5   mx.sts-forged.plain.test    mx.sts-forged.plain.test
sts-testing     127.0.28.6   mx.sts-testing.plain.test   wrong.sts-testing.plain.test
sts-misc        127.0.28.7   mx.sts-misc.plain.test      mx.sts-misc.plain.test
sts-relay       127.0.28.8   out1.relay.sts-enforce.plain.test out1.relay.sts-enforce.plain.test
"

# Leaves that no MX host above sends but a TLSA record or the policy host uses.
EXTRA_LEAVES="unusable-plain.signed.test nostarttls.signed.test unused.signed.test mta-sts.wrong.example.test"
# An expired self-signed re-issue of the ee.signed.test key for another name.
REISSUE_NAME=unrelated.example.test
REISSUE_KEY_OF=ee.signed.test

# Name servers that make TLSA lookups under dane-lame.test fail: name,
# address (port 53, UDP and TCP), mode of test/peers/dns_peer.py.
DNS_PEERS="ns-drop:127.0.53.9:drop ns-refuse:127.0.53.10:refuse"

# The MTA-STS policy host and the policy domains it serves. They are all in
# plain.test, which has no TLSA records, so DANE never applies to them.
POLICY_HOST_ADDR=127.0.44.1
STS_DOMAINS="sts-enforce sts-wrongcert sts-forged sts-testing sts-404 sts-redirect sts-ctype sts-big sts-badcert sts-none"

START_TIMEOUT_TENTHS=100

log() { echo "testnet: $*" >&2; }
die() { log "$*"; exit 1; }

usage() {
    cat >&2 <<'USAGE'
usage: scripts/testnet.sh start|stop DIR
       scripts/testnet.sh policy-host stop|start DIR
       scripts/testnet.sh dns-set DIR NAME TYPE [RDATA...]
       scripts/testnet.sh sts-set DIR DOMAIN ID|- POLICYFILE|-
USAGE
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

# Prints the TLS_MX_HOSTS table without blank lines.
tls_mx_hosts() {
    grep -v '^[[:space:]]*$' <<< "$TLS_MX_HOSTS"
}

service_addresses() {
    local entry addr
    echo "$NSD_ADDR:53" "$RESOLVER_ADDR:53" "$POLICY_HOST_ADDR:443"
    for entry in $MX_HOSTS; do
        IFS=: read -r _ addr _ _ <<< "$entry"
        echo "$addr:25"
    done
    while read -r _ addr _ _; do
        echo "$addr:25"
    done < <(tls_mx_hosts)
    for entry in $DNS_PEERS; do
        IFS=: read -r _ addr _ <<< "$entry"
        echo "$addr:53"
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

# The names in the policy host's default certificate: mta-sts.DOMAIN for
# every policy domain except sts-badcert, whose name gets a certificate for
# mta-sts.wrong.example.test instead.
policy_host_names() {
    local domain
    for domain in $STS_DOMAINS; do
        [ "$domain" = sts-badcert ] || echo "mta-sts.$domain.plain.test"
    done
}

# Issues every certificate, the leaves in parallel to keep start fast.
make_pki() {
    local entry fqdn keytype base job failed=0
    local -a jobs=()
    local -A leaves=()

    "$TEMPLATES/pki.sh" ca "$STATE/pki"
    for entry in $MX_HOSTS; do
        IFS=: read -r _ _ fqdn keytype <<< "$entry"
        [ "$keytype" = none ] && keytype=ec
        "$TEMPLATES/pki.sh" leaf "$STATE/pki" "$fqdn" "$keytype" &
        jobs+=($!)
    done

    while read -r _ _ _ base; do
        base=${base%/leaf}
        if [ "$base" != - ] && [ "$base" != "$REISSUE_NAME" ]; then
            leaves[$base]=1
        fi
    done < <(tls_mx_hosts)
    for base in $EXTRA_LEAVES; do
        leaves[$base]=1
    done
    for base in "${!leaves[@]}"; do
        "$TEMPLATES/pki.sh" leaf "$STATE/pki" "$base" ec &
        jobs+=($!)
    done
    # shellcheck disable=SC2046 # one argument per name
    "$TEMPLATES/pki.sh" leaf "$STATE/pki" policy-host ec $(policy_host_names) &
    jobs+=($!)

    for job in "${jobs[@]}"; do
        wait "$job" || failed=1
    done
    [ "$failed" -eq 0 ] || die "issuing the test certificates failed"

    "$TEMPLATES/pki.sh" selfsigned "$STATE/pki" "$REISSUE_NAME" \
        "$STATE/pki/$REISSUE_KEY_OF.key" 20200101000000Z 20200201000000Z
}

# Replaces every @TLSA(CERT,SELECTOR,MATCHING[,BYTES])@ outside comments in
# FILE with the association data of DIR/pki/CERT.crt, cut to BYTES bytes if
# given.
substitute_tlsa() {
    local file=$1 content token spec cert selector matching bytes data
    content=$(< "$file")
    while read -r token; do
        [ -n "$token" ] || continue
        spec=${token#@TLSA(}
        spec=${spec%)@}
        IFS=, read -r cert selector matching bytes <<< "$spec"
        data=$("$TEMPLATES/pki.sh" tlsa "$STATE/pki" "$cert" "$selector" "$matching") \
            || die "$file: cannot compute $token"
        [ -n "$bytes" ] && data=${data:0:$((bytes * 2))}
        content=${content//"$token"/"$data"}
    done < <(grep -v '^[[:space:]]*;' "$file" | grep -o '@TLSA([^)]*)@' | sort -u)
    printf '%s\n' "$content" > "$file"
}

# Prints how ZONE is served: signed, expired or unsigned.
zone_mode() {
    cat "$STATE/nsd/$1.mode"
}

# Signs DIR/nsd/ZONE.zone into ZONE.zone.signed with the zone's key, then
# applies zones/ZONE.after-signing.sed if there is one.
sign_zone() {
    local zone=$1 keybase served edit
    keybase=$(cat "$STATE/nsd/keys/$zone.keybase")
    served=$STATE/nsd/$zone.zone.signed
    if [ "$(zone_mode "$zone")" = expired ]; then
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
    return 0
}

# Copies one zone template to DIR/nsd, fills in its TLSA data and signs it as
# its first line specifies ("; testnet: signed|expired|unsigned"). Prints the
# file name NSD serves.
prepare_zone() {
    local template=$1 zone mode keybase
    zone=$(basename "$template" .zone)
    mode=$(sed -n '1s/^; testnet: \([a-z]*\).*/\1/p' "$template")
    cp "$template" "$STATE/nsd/$zone.zone"
    substitute_tlsa "$STATE/nsd/$zone.zone"

    case "$mode" in
    unsigned)
        echo unsigned > "$STATE/nsd/$zone.mode"
        echo "$zone.zone"
        return 0
        ;;
    signed|expired) echo "$mode" > "$STATE/nsd/$zone.mode" ;;
    *) die "$template: first line must be '; testnet: signed|expired|unsigned'" ;;
    esac

    keybase=$(cd "$STATE/nsd/keys" && ldns-keygen -a ECDSAP256SHA256 -k "$zone")
    echo "$keybase" > "$STATE/nsd/keys/$zone.keybase"
    cat "$STATE/nsd/keys/$keybase.ds" >> "$STATE/unbound/trust-anchors.ds"
    sign_zone "$zone"
    echo "$zone.zone.signed"
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

start_dns_peers() {
    local entry name addr mode
    for entry in $DNS_PEERS; do
        IFS=: read -r name addr mode <<< "$entry"
        launch "$name" "$STATE/dns-peers/$name.log" "$PYTHON" "$ROOT/test/peers/dns_peer.py" \
            --address "$addr" --port 53 --mode "$mode" \
            --query-log "$STATE/dns-peers/$name.queries"
    done
    for entry in $DNS_PEERS; do
        IFS=: read -r name addr _ <<< "$entry"
        wait_ready "$name" "$STATE/dns-peers/$name.log" "$addr:53" "t u"
    done
}

# Writes the --hosts file of test/peers/mx.py for the TLS_MX_HOSTS table.
write_tls_hosts_file() {
    local name addr fqdn base chain key
    echo "# NAME ADDRESS PORT HOSTNAME CHAIN KEY, written by scripts/testnet.sh"
    while read -r name addr fqdn base; do
        case "$base" in
        -) chain=- key=- ;;
        */leaf) chain=$STATE/pki/${base%/leaf}.crt key=$STATE/pki/${base%/leaf}.key ;;
        *) chain=$STATE/pki/$base.chain.pem key=$STATE/pki/$base.key ;;
        esac
        echo "$name $addr 25 $fqdn $chain $key"
    done < <(tls_mx_hosts)
}

# Starts one mx.py process per MX_HOSTS entry and one mx.py process for all
# of TLS_MX_HOSTS (one Python process per host would make start about 1.5 s
# slower on two cores).
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
    write_tls_hosts_file > "$STATE/mx/tls-hosts.txt"
    launch tls-mx "$STATE/mx/tls-mx.log" "$PYTHON" "$ROOT/test/peers/mx.py" \
        --hosts "$STATE/mx/tls-hosts.txt" --maildir "$STATE/mail"

    for entry in $MX_HOSTS; do
        IFS=: read -r name addr _ _ <<< "$entry"
        wait_ready "$name" "$STATE/mx/$name.log" "$addr:25" t
    done
    while read -r _ addr _ _; do
        wait_ready tls-mx "$STATE/mx/tls-mx.log" "$addr:25" t
    done < <(tls_mx_hosts)
}

# Writes an MTA-STS policy (RFC 8461 section 3.2) to FILE with CRLF line
# ends, as the RFC specifies, or LF ends (EOL lf), which clients accept too.
write_policy() {
    local file=$1 eol=$2 mode=$3 max_age=$4 mx end=$'\r\n'
    shift 4
    [ "$eol" = lf ] && end=$'\n'
    {
        printf 'version: STSv1%s' "$end"
        printf 'mode: %s%s' "$mode" "$end"
        for mx in "$@"; do
            printf 'mx: %s%s' "$mx" "$end"
        done
        printf 'max_age: %s%s' "$max_age" "$end"
    } > "$file"
}

# Writes the files the policy host serves. The header of
# test/peers/sts_host.py describes what each kind of file does.
write_policies() {
    local dir=$STATE/sts misc=mx.sts-misc.plain.test padding
    : > "$dir/access.log"
    write_policy "$dir/sts-enforce.plain.test.txt" crlf enforce 86400 \
        mx1.sts-enforce.plain.test '*.relay.sts-enforce.plain.test'
    write_policy "$dir/sts-wrongcert.plain.test.txt" crlf enforce 86400 \
        mx.sts-wrongcert.plain.test '*.relay.sts-wrongcert.plain.test'
    write_policy "$dir/sts-forged.plain.test.txt" crlf enforce 86400 mx.sts-forged.plain.test
    write_policy "$dir/sts-testing.plain.test.txt" lf testing 86400 mx.sts-testing.plain.test
    # sts-404 has no policy file. sts-redirect has a valid one, but the
    # server replies 301 before reading it.
    echo "https://mta-sts.sts-enforce.plain.test/.well-known/mta-sts.txt" \
        > "$dir/sts-redirect.plain.test.redirect"
    write_policy "$dir/sts-redirect.plain.test.txt" crlf enforce 86400 "$misc"
    write_policy "$dir/sts-ctype.plain.test.txt" crlf enforce 86400 "$misc"
    echo "text/html" > "$dir/sts-ctype.plain.test.content-type"
    # A valid policy followed by 70 extension lines of 1013 bytes: the body
    # is longer than the 64 KiB a client reads, and its first 64 KiB parse.
    write_policy "$dir/sts-big.plain.test.txt" crlf enforce 86400 "$misc"
    padding=$(head -c 1000 /dev/zero | tr '\0' a)
    for _ in $(seq 70); do
        printf 'x-padding: %s\r\n' "$padding"
    done >> "$dir/sts-big.plain.test.txt"
    write_policy "$dir/sts-badcert.plain.test.txt" crlf enforce 86400 "$misc"
    write_policy "$dir/sts-none.plain.test.txt" crlf none 86400 "$misc"
}

start_policy_host() {
    launch policy-host "$STATE/sts/policy-host.log" "$PYTHON" "$ROOT/test/peers/sts_host.py" \
        --address "$POLICY_HOST_ADDR" --port 443 --policy-dir "$STATE/sts" \
        --cert "$STATE/pki/policy-host.chain.pem" "$STATE/pki/policy-host.key" \
        --sni-cert mta-sts.sts-badcert.plain.test \
        "$STATE/pki/mta-sts.wrong.example.test.chain.pem" \
        "$STATE/pki/mta-sts.wrong.example.test.key" \
        --cert-dir "$STATE/pki" --access-log "$STATE/sts/access.log"
    wait_ready policy-host "$STATE/sts/policy-host.log" "$POLICY_HOST_ADDR:443" t
}

stop_policy_host() {
    local file=$STATE/pids/policy-host.pid pid
    if [ -e "$file" ]; then
        pid=$(cat "$file")
        if pid_alive "$pid" && pid_ours "$pid"; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 50); do
                pid_alive "$pid" || break
                sleep 0.1
            done
            if pid_alive "$pid"; then
                log "policy host $pid did not stop after SIGTERM; sending SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
            fi
        fi
        rm -f "$file"
    fi
    for _ in $(seq 50); do
        listening t "$POLICY_HOST_ADDR:443" || return 0
        sleep 0.1
    done
    die "$POLICY_HOST_ADDR:443 still in use:"$'\n'"$(ss -Hltnp | grep -F "$POLICY_HOST_ADDR:443")"
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
NSD_CONTROL_CONF='$STATE/nsd/nsd.conf'
POLICY_HOST_ADDR='$POLICY_HOST_ADDR'
STS_DIR='$STATE/sts'
TESTNET_SH='$ROOT/scripts/testnet.sh'
PKI_SH='$TEMPLATES/pki.sh'
POSTFIX_DANE_SH='$TEMPLATES/postfix-dane.sh'
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

    rm -rf "$STATE"/{nsd,unbound,pki,mail,mx,dns-peers,sts,pids,env}
    mkdir -p "$STATE"/{nsd/keys,unbound,pki,mail,mx,dns-peers,sts,pids}

    make_pki
    write_dns_configs
    write_policies
    start_dns
    start_dns_peers
    start_mx_hosts
    start_policy_host
    check_validation
    write_env
    log "started from $STATE (source $STATE/env)"
}

# Prints the served zone that NAME belongs to: the longest zone name that
# NAME ends with.
zone_of() {
    local name=${1%.} best="" file zone
    for file in "$STATE"/nsd/*.mode; do
        [ -e "$file" ] || continue
        zone=$(basename "$file" .mode)
        if [ "$name" = "$zone" ] || [[ "$name" == *".$zone" ]]; then
            [ ${#zone} -gt ${#best} ] && best=$zone
        fi
    done
    echo "$best"
}

# Reloads ZONE in NSD and drops everything cached at or below it in Unbound.
reload_zone() {
    local zone=$1
    nsd-control -c "$STATE/nsd/nsd.conf" reload "$zone" > /dev/null \
        || die "nsd-control reload $zone failed; see $STATE/nsd/nsd.log"
    unbound-control -c "$STATE/unbound/unbound.conf" flush_zone "$zone" > /dev/null \
        || die "unbound-control flush_zone $zone failed; see $STATE/unbound/unbound.log"
}

# Replaces every NAME TYPE record in the zone file that NSD serves with one
# record per RDATA (none: only deletes), re-signs a signed zone and reloads.
dns_set() {
    local name=${1%.} type=${2^^} zone file rdata
    shift 2
    [ -e "$STATE/nsd/nsd.conf" ] || die "no test network in $STATE"
    zone=$(zone_of "$name")
    [ -n "$zone" ] || die "$name is in none of the zones in $STATE/nsd"
    file=$STATE/nsd/$zone.zone

    # Owners in the templates are relative to the zone, "@" or absolute. The
    # type is the first field after the owner that is neither a TTL nor IN.
    # Continuation lines are copied unchanged, so only one-line records can
    # be replaced.
    awk -v name="$name." -v type="$type" -v origin="$zone." '
        /^[^[:space:];$]/ {
            owner = $1
            if (owner == "@") owner = origin
            else if (owner !~ /\.$/) owner = owner "." origin
            field = 2
            while (field < NF && ($field ~ /^[0-9]+$/ || toupper($field) == "IN")) field++
            if (tolower(owner) == tolower(name) && toupper($field) == type) next
        }
        { print }' "$file" > "$file.new"
    for rdata in "$@"; do
        printf '%s. 60 IN %s %s\n' "$name" "$type" "$rdata" >> "$file.new"
    done
    mv "$file.new" "$file"

    [ "$(zone_mode "$zone")" = unsigned ] || sign_zone "$zone"
    reload_zone "$zone"
}

# Publishes the TXT record and the policy file of one MTA-STS domain. Adds
# mta-sts.DOMAIN A POLICY_HOST_ADDR if that name has no address, and issues
# a certificate for it if the policy host has none.
sts_set() {
    local domain=${1%.} id=$2 policy=$3 host
    host=mta-sts.$domain
    [ -d "$STATE/sts" ] || die "no test network in $STATE"

    if [ "$policy" = - ]; then
        rm -f "$STATE/sts/$domain.txt"
    else
        [ -r "$policy" ] || die "policy file '$policy' not found"
        cp "$policy" "$STATE/sts/$domain.txt.new"
        mv "$STATE/sts/$domain.txt.new" "$STATE/sts/$domain.txt"
    fi

    if [ -z "$(dig @"$NSD_ADDR" +short +norecurse "$host" A)" ]; then
        dns_set "$host" A "$POLICY_HOST_ADDR"
    fi
    if ! openssl x509 -in "$STATE/pki/policy-host.crt" -noout -checkhost "$host" \
            | grep -q ' does match ' \
        && [ ! -e "$STATE/pki/$host.chain.pem" ]; then
        "$TEMPLATES/pki.sh" leaf "$STATE/pki" "$host" ec
    fi

    if [ "$id" = - ]; then
        dns_set "_mta-sts.$domain" TXT
    else
        dns_set "_mta-sts.$domain" TXT "\"v=STSv1; id=$id;\""
    fi
}

set_state() {
    mkdir -p "$1"
    STATE=$(cd "$1" && pwd)
}

[ $# -ge 2 ] || usage
case "$1" in
start)
    [ $# -eq 2 ] || usage
    set_state "$2"
    # Any failure after this point leaves nothing running.
    trap stop_on_failure EXIT
    start
    ;;
stop)
    [ $# -eq 2 ] || usage
    set_state "$2"
    stop_all
    log "stopped"
    ;;
policy-host)
    [ $# -eq 3 ] || usage
    set_state "$3"
    case "$2" in
    stop)
        stop_policy_host
        log "policy host stopped"
        ;;
    start)
        stop_policy_host
        start_policy_host
        log "policy host started on $POLICY_HOST_ADDR:443"
        ;;
    *) usage ;;
    esac
    ;;
dns-set)
    [ $# -ge 4 ] || usage
    set_state "$2"
    shift 2
    dns_set "$@"
    ;;
sts-set)
    [ $# -eq 5 ] || usage
    set_state "$2"
    sts_set "$3" "$4" "$5"
    ;;
*) usage ;;
esac
