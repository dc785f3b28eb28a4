# Helpers for the transparent-interception tests (t_9*_transparent_*.sh).
# Source it after lib.sh. Each test creates its own network namespaces,
# puts its firewall rules (nft) inside them, runs a private test network
# on the loopback of one of them, and deletes them all on exit. Nothing
# touches the namespace the test runs in: no rule, route or interface.
#
# ns_require              skip (77) unless namespaces, nft, NAT and veth work
# ns_new NAME             create namespace NAME (prefixed per test), lo up
# ns NAME CMD...          run CMD inside namespace NAME
# ns_testnet_start NAME   start scripts/testnet.sh in NAME, source its env
# ns_mxlock_start NAME LISTEN_ADDR:PORT
#                         start mxlock from $T/mxlock.yaml inside NAME
# ns_wait_listening NAME ADDR:PORT
# ns_gateway          three namespaces for a gateway: mta (10.199.1.2,
#                     fd00:199:1::2) routes through gw (10.199.1.1 and
#                     10.199.2.1, fd00:199:1::1 and fd00:199:2::1) to mx
#                     (10.199.2.2 and .3, fd00:199:2::2 and ::3); gw forwards
# ns_gateway_mx       DNS for gw.signed.test: MX mxgw.signed.test, its A and
#                     AAAA records 10.199.2.2 and fd00:199:2::2, a DANE-EE
#                     TLSA record; an MX host on both addresses (mail folders
#                     mxgw and mxgw6) and one on 10.199.2.3 and fd00:199:2::3
#                     that is no MX of any domain (other and other6)

NS_PREFIX="mxl$$"
NS_LIST=()
NS_TESTNETS=()

ns_name() {
	echo "$NS_PREFIX-$1"
}

ns() {
	local name
	name=$(ns_name "$1")
	shift
	ip netns exec "$name" "$@"
}

ns_new() {
	local name
	name=$(ns_name "$1")
	ip netns add "$name" || fail "ip netns add $name failed"
	NS_LIST+=("$name")
	ip netns exec "$name" ip link set lo up
}

ns_cleanup() {
	local dir name pid
	for pid in "${PEER_PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	[ -n "$MXLOCK_PID" ] && mxlock_stop
	for pid in "${PEER_PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	for dir in "${NS_TESTNETS[@]}"; do
		name=${dir%%|*}
		ip netns exec "$name" "$MXLOCK_TOP/scripts/testnet.sh" stop "${dir#*|}" \
			>/dev/null 2>&1
	done
	for name in "${NS_LIST[@]}"; do
		ip netns del "$name" 2>/dev/null
	done
}
trap ns_cleanup EXIT
# test/run.sh stops a slow test with SIGTERM: exit through the EXIT trap,
# so no namespace and no daemon in it is left behind.
trap 'exit 143' TERM INT

# Skips the test with the reason when this machine cannot run it.
ns_require() {
	local probe
	[ "$(id -u)" -eq 0 ] || skip "needs root (CAP_NET_ADMIN) for network namespaces"
	command -v nft >/dev/null || skip "the nft command is missing (Debian package nftables)"
	probe="$NS_PREFIX-probe"
	ip netns add "$probe" 2>/dev/null || skip "cannot create a network namespace (ip netns add)"
	if ! ip netns exec "$probe" nft -f - 2>/dev/null <<'NFT'
table ip probe {
	chain out {
		type nat hook output priority -100;
		tcp dport 25 redirect to :2525
	}
}
NFT
	then
		ip netns del "$probe"
		skip "nftables NAT (redirect) is not available in a network namespace"
	fi
	if ! ip netns exec "$probe" ip link add p0 type veth peer name p1 2>/dev/null; then
		ip netns del "$probe"
		skip "veth interfaces are not available"
	fi
	ip netns del "$probe"
}

ns_wait_listening() {
	local name=$1 addr=$2 i
	for i in $(seq 1 100); do
		ns "$name" ss -Hltn | awk '{print $4}' | grep -qxF "$addr" && return 0
		sleep 0.05
	done
	return 1
}

# Starts a private test network on the loopback of namespace NAME and
# points the test's variables (CA_FILE, MAIL_DIR, ...) at it.
ns_testnet_start() {
	local name=$1 dir="$T/testnet-$1"
	ns "$name" "$MXLOCK_TOP/scripts/testnet.sh" start "$dir" >"$T/testnet-$name.log" 2>&1 ||
		{ tail -n 20 "$T/testnet-$name.log"; fail "the test network did not start in namespace $name"; }
	NS_TESTNETS+=("$(ns_name "$name")|$dir")
	# shellcheck disable=SC1091
	. "$dir/env"
}

ns_mxlock_start() {
	local name=$1 listen=$2
	ip netns exec "$(ns_name "$name")" "$MXLOCK_BIN" run -c "$T/mxlock.yaml" 2>>"$T/mxlock.log" &
	MXLOCK_PID=$!
	ns_wait_listening "$name" "$listen" || {
		cat "$T/mxlock.log"
		fail "mxlock did not start listening on $listen in namespace $name"
	}
}

# Links namespace $1 (interface $2, addresses $3 and $4) to $5 (interface
# $6, addresses $7 and $8) with a veth pair. IPv6 addresses skip duplicate
# address detection, so they work at once.
ns_link() {
	ns "$1" ip link add "$2" type veth peer name "$6" netns "$(ns_name "$5")" ||
		fail "creating the veth pair $2-$6 failed"
	ns "$1" ip addr add "$3" dev "$2"
	ns "$1" ip -6 addr add "$4" dev "$2" nodad
	ns "$5" ip addr add "$7" dev "$6"
	ns "$5" ip -6 addr add "$8" dev "$6" nodad
	ns "$1" ip link set "$2" up
	ns "$5" ip link set "$6" up
}

ns_gateway() {
	ns_new gw
	ns_new mta
	ns_new mx
	ns_link gw g0 10.199.1.1/24 fd00:199:1::1/64 mta m0 10.199.1.2/24 fd00:199:1::2/64
	ns_link gw g1 10.199.2.1/24 fd00:199:2::1/64 mx x0 10.199.2.2/24 fd00:199:2::2/64
	ns mx ip addr add 10.199.2.3/24 dev x0
	ns mx ip -6 addr add fd00:199:2::3/64 dev x0 nodad
	ns mta ip route add default via 10.199.1.1
	ns mta ip -6 route add default via fd00:199:1::1
	ns mx ip route add default via 10.199.2.1
	ns mx ip -6 route add default via fd00:199:2::1
	ns gw sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
}

ns_gateway_mx() {
	local tlsa
	ns gw "$PKI_SH" leaf "$PKI_DIR" mxgw.signed.test ec >"$T/pki-mxgw.log" 2>&1 ||
		{ cat "$T/pki-mxgw.log"; fail "issuing the mxgw.signed.test certificate failed"; }
	tlsa=$("$PKI_SH" tlsa "$PKI_DIR" mxgw.signed.test 1 1) || fail "computing the TLSA data failed"
	ns gw "$TESTNET_SH" dns-set "$TESTNET_DIR" gw.signed.test MX "10 mxgw.signed.test." &&
	ns gw "$TESTNET_SH" dns-set "$TESTNET_DIR" mxgw.signed.test A 10.199.2.2 &&
	ns gw "$TESTNET_SH" dns-set "$TESTNET_DIR" mxgw.signed.test AAAA fd00:199:2::2 &&
	ns gw "$TESTNET_SH" dns-set "$TESTNET_DIR" _25._tcp.mxgw.signed.test TLSA "3 1 1 $tlsa" ||
		fail "changing the test DNS failed"
	cat >"$T/mx-hosts" <<HOSTS
mxgw 10.199.2.2 25 mxgw.signed.test $PKI_DIR/mxgw.signed.test.chain.pem $PKI_DIR/mxgw.signed.test.key
mxgw6 fd00:199:2::2 25 mxgw.signed.test $PKI_DIR/mxgw.signed.test.chain.pem $PKI_DIR/mxgw.signed.test.key
other 10.199.2.3 25 other.example.test - -
other6 fd00:199:2::3 25 other.example.test - -
HOSTS
	# Not through ns: a function in the background would make $! the
	# subshell's PID, and the MX hosts would outlive the test.
	ip netns exec "$(ns_name mx)" "$PYTHON" "$MX_PY" --hosts "$T/mx-hosts" \
		--maildir "$MAIL_DIR" >"$T/mx.log" 2>&1 &
	PEER_PIDS+=($!)
	ns_wait_listening mx 10.199.2.2:25 && ns_wait_listening mx "[fd00:199:2::3]:25" ||
		{ cat "$T/mx.log"; fail "the MX hosts did not start in namespace mx"; }
}

# Sends one message from namespace mta as a client that believes it talks
# to MX address $1 on port 25; prints "rcpt: CODE TEXT" and "data: CODE
# TEXT", or "connect: CODE TEXT". $2 is the recipient, $3 the marker.
ns_send_from_mta() {
	ns mta "$PYTHON" - "$1" "$2" "$3" <<'PY'
import smtplib, sys
host, rcpt, marker = sys.argv[1:]
try:
    s = smtplib.SMTP(host, 25, timeout=30)
except smtplib.SMTPConnectError as e:
    print("connect:", e.smtp_code, e.smtp_error.decode())
    sys.exit(0)
s.ehlo("legacy.test")
s.mail("sender@legacy.test")
code, text = s.rcpt(rcpt)
print("rcpt:", code, text.decode())
if code == 250:
    code, text = s.data("Subject: %s\r\n\r\n%s\r\n" % (marker, marker))
    print("data:", code, text.decode())
s.quit()
PY
}
