#!/bin/bash
# The main job on the local test network: starts the network (DNS,
# validating resolver, test CA, MX hosts), starts mxlock on 127.0.10.1:10025,
# sends several messages through it with swaks, prints what happened to
# each, stops everything, and exits 0 only if every outcome was the
# expected one.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
net="$top/build/testnet"
work="$top/build/demo"
bin="$top/build/mxlock"

rm -rf "$work"
mkdir -p "$work"
[ -x "$bin" ] || { echo "demo: $bin is missing; run make" >&2; exit 1; }

"$top/scripts/testnet.sh" stop "$net" >/dev/null 2>&1
if ! "$top/scripts/testnet.sh" start "$net" >"$work/testnet.log" 2>&1; then
	cat "$work/testnet.log"
	echo "demo: the local test network did not start" >&2
	exit 1
fi
# shellcheck disable=SC1091
. "$net/env"

cat >"$work/mxlock.yaml" <<YAML
listen:
  - address: 127.0.10.1
    port: 10025
hostname: mxlock.test
state_dir: $work/state
dns:
  servers: ["$RESOLVER"]
  probe: signed.test
tls:
  ca_file: $CA_FILE
policy:
  default: may
limits:
  timeouts:
    connect: 5
YAML

"$bin" run -c "$work/mxlock.yaml" 2>"$work/mxlock.log" &
pid=$!
stop_all() {
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	"$top/scripts/testnet.sh" stop "$net" >/dev/null 2>&1
}
trap stop_all EXIT
for _ in $(seq 1 100); do
	ss -Hltn | awk '{print $4}' | grep -qxF 127.0.10.1:10025 && break
	sleep 0.05
done

# recipient, expected status, expected TLS (yes, no or -), expected
# verification (yes, no or -), what it shows
cases=(
	"alice@signed.test sent yes - - signed domain, MX hosts with STARTTLS"
	"bob@dane-ee.signed.test sent yes yes DANE: TLSA 3 1 1 matches the MX key"
	"carol@dane-ee-old.signed.test deferred - - DANE: the TLSA record matches no certificate"
	"dave@sts-enforce.plain.test sent yes yes MTA-STS enforce: certificate names the MX"
	"erin@sts-wrongcert.plain.test deferred - - MTA-STS enforce: certificate names another host"
	"frank@nostarttls.plain.test sent no - MX without STARTTLS, policy may"
	"grace@down.plain.test deferred - - every MX host down: 4xx, the sender keeps it"
	"heidi@nullmx.plain.test bounced - - null MX: refused for good"
)

field() {
	sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"
}

ok=0
bad=0
printf '%-30s %-9s %-8s %-9s %-8s %s\n' RECIPIENT STATUS TLS POLICY VERIFIED "MX HOST"
for c in "${cases[@]}"; do
	read -r rcpt want_status want_tls want_verified what <<<"$c"
	swaks --server 127.0.10.1 --port 10025 --helo demo.test --from demo@client.test \
		--to "$rcpt" --header "Subject: mxlock demo for $rcpt" >"$work/swaks-$rcpt.log" 2>&1
	sleep 0.1
	line=$(grep "event=recipient .*to=\"$rcpt\"" "$work/mxlock.log" | tail -n 1)
	status=$(field status "$line")
	tls=$(field tls "$line")
	verified=$(field verified "$line")
	policy=$(field policy "$line")
	relay=$(field relay "$line")
	reply=$(sed -n 's/.* reply="\(.*\)"$/\1/p' <<<"$line")
	got_tls=no
	[ "$tls" != none ] && [ -n "$tls" ] && got_tls=yes
	verdict=expected
	if [ "$status" != "$want_status" ] ||
		{ [ "$want_tls" != - ] && [ "$got_tls" != "$want_tls" ]; } ||
		{ [ "$want_verified" != - ] && [ "$verified" != "$want_verified" ]; }; then
		verdict="UNEXPECTED (wanted $want_status, TLS $want_tls, verified $want_verified)"
		bad=$((bad + 1))
	else
		ok=$((ok + 1))
	fi
	printf '%-30s %-9s %-8s %-9s %-8s %s\n' "$rcpt" "${status:-?}" "${tls:-?}" \
		"${policy:-?}" "${verified:-?}" "${relay:-?}"
	printf '    %s: %s\n' "$what" "$verdict"
	printf '    reply: %s\n' "${reply:0:100}"
done

echo
echo "mxlock log: $work/mxlock.log; stored messages: $MAIL_DIR"
echo "demo: $ok of ${#cases[@]} outcomes as expected"
[ "$bad" -eq 0 ]
