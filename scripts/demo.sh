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
dns:
  servers: ["$RESOLVER"]
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

# recipient, expected status, expected TLS (yes, no or -), what it shows
cases=(
	"alice@signed.test sent yes signed domain, MX hosts with STARTTLS"
	"bob@tls.plain.test sent yes unsigned domain, MX with STARTTLS"
	"carol@nostarttls.plain.test sent no MX without STARTTLS, policy may"
	"dave@implicit.plain.test sent no no MX record: the domain's own address"
	"erin@down.plain.test deferred - every MX host down: 4xx, the sender keeps it"
	"frank@nullmx.plain.test bounced - null MX: refused for good"
)

ok=0
bad=0
printf '%-28s %-9s %-4s %-32s %s\n' RECIPIENT STATUS TLS "MX HOST" REPLY
for c in "${cases[@]}"; do
	read -r rcpt want_status want_tls what <<<"$c"
	swaks --server 127.0.10.1 --port 10025 --helo demo.test --from demo@client.test \
		--to "$rcpt" --header "Subject: mxlock demo for $rcpt" >"$work/swaks-$rcpt.log" 2>&1
	sleep 0.1
	line=$(grep "event=recipient .*to=\"$rcpt\"" "$work/mxlock.log" | tail -n 1)
	status=$(sed -n 's/.* status=\([a-z]*\).*/\1/p' <<<"$line")
	tls=$(sed -n 's/.* tls=\([^ ]*\).*/\1/p' <<<"$line")
	relay=$(sed -n 's/.* relay=\([^ ]*\).*/\1/p' <<<"$line")
	reply=$(sed -n 's/.* reply="\(.*\)"$/\1/p' <<<"$line")
	got_tls=no
	[ "$tls" != none ] && [ -n "$tls" ] && got_tls=yes
	verdict=expected
	if [ "$status" != "$want_status" ] || { [ "$want_tls" != - ] && [ "$got_tls" != "$want_tls" ]; }; then
		verdict="UNEXPECTED (wanted $want_status, TLS $want_tls)"
		bad=$((bad + 1))
	else
		ok=$((ok + 1))
	fi
	printf '%-28s %-9s %-4s %-32s %s\n' "$rcpt" "${status:-?}" "${tls:-?}" "${relay:-?}" "${reply:0:60}"
	printf '    %s: %s\n' "$what" "$verdict"
done

echo
echo "mxlock log: $work/mxlock.log; stored messages: $MAIL_DIR"
echo "demo: $ok of ${#cases[@]} outcomes as expected"
[ "$bad" -eq 0 ]
