# Transparent interception with TPROXY on a gateway (IPv4 and IPv6): the
# nftables tproxy rule hands the MTA's port 25 connections, unchanged, to
# mxlock's transparent listener (IP_TRANSPARENT), and policy routing
# delivers the marked packets locally. The original destination is the
# accepted socket's local address.
#  - a DANE domain through its MX, IPv4 and IPv6: verified by name;
#  - under passthrough, a domain whose policy allows plaintext, sent to a
#    host that is no MX of it: relayed to that original destination.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns_lib.sh"

ns_require
ns_gateway
ns_testnet_start gw
ns_gateway_mx

cat >"$T/tproxy.nft" <<'NFT'
table inet mxlock_test {
	chain prerouting {
		type filter hook prerouting priority mangle; policy accept;
		iifname "g0" meta l4proto tcp socket transparent 1 meta mark set 1 accept
		iifname "g0" meta nfproto ipv4 tcp dport 25 tproxy ip to 10.199.1.1:10026 meta mark set 1 accept
		iifname "g0" meta nfproto ipv6 tcp dport 25 tproxy ip6 to [fd00:199:1::1]:10026 meta mark set 1 accept
	}
}
NFT
err=$(ns gw nft -f "$T/tproxy.nft" 2>&1) || skip "nftables tproxy is not available: $err"
# Marked packets are for local sockets, whatever their destination.
ns gw ip rule add fwmark 1 lookup 100 &&
ns gw ip route add local 0.0.0.0/0 dev lo table 100 &&
ns gw ip -6 rule add fwmark 1 lookup 100 &&
ns gw ip -6 route add local ::/0 dev lo table 100 ||
	fail "setting up policy routing for TPROXY failed"

mxlock_config may "transparent:
  unmatched: passthrough
clients: [10.199.1.0/24, \"fd00:199:1::/64\"]"
sed -i "s/^listen:/listen:\n  - {address: 10.199.1.1, port: 10026, mode: transparent}\n  - {address: \"fd00:199:1::1\", port: 10026, mode: transparent}/" "$T/mxlock.yaml"
ns_mxlock_start gw 10.199.1.1:10026
ns_wait_listening gw "[fd00:199:1::1]:10026" || fail "no IPv6 transparent listener"

m4=$(new_marker)
out=$(ns_send_from_mta 10.199.2.2 user@gw.signed.test "$m4")
echo "IPv4: $out"
echo "$out" | grep -q "^data: 250" || fail "IPv4 message through TPROXY not delivered: $out"
find_mail mxgw user@gw.signed.test "$m4" >/dev/null || fail "IPv4 message not stored at mxgw"

m6=$(new_marker)
out=$(ns_send_from_mta fd00:199:2::2 user@gw.signed.test "$m6")
echo "IPv6: $out"
echo "$out" | grep -q "^data: 250" || fail "IPv6 message through TPROXY not delivered: $out"
find_mail mxgw6 user@gw.signed.test "$m6" >/dev/null || fail "IPv6 message not stored at mxgw6"

mp=$(new_marker)
out=$(ns_send_from_mta 10.199.2.3 user@nostarttls.plain.test "$mp")
echo "passthrough: $out"
echo "$out" | grep -q "^data: 250" || fail "passthrough through TPROXY not delivered: $out"
find_mail other user@nostarttls.plain.test "$mp" >/dev/null ||
	fail "passthrough message not stored at the original destination"
mxlock_stop

grep -q "event=tproxy-unavailable" "$T/mxlock.log" && fail "IP_TRANSPARENT could not be set"
assert_log "event=transparent-connect client=10\.199\.1\.2 original=10\.199\.2\.2:25"
assert_log "event=recipient .*to=\"user@gw.signed.test\" relay=mxgw\.signed\.test\[10\.199\.2\.2\]:25 .*verified=yes policy=dane .*status=sent"
assert_log "event=transparent-connect client=fd00:199:1::2 original=\[fd00:199:2::2\]:25"
assert_log "event=recipient .*to=\"user@gw.signed.test\" relay=mxgw\.signed\.test\[fd00:199:2::2\]:25 .*verified=yes policy=dane .*status=sent"
assert_log "event=transparent-unmatched original=10\.199\.2\.3:25 domain=nostarttls\.plain\.test action=passthrough tls-required=no"
assert_log "event=recipient .*to=\"user@nostarttls.plain.test\" relay=10\.199\.2\.3\[10\.199\.2\.3\]:25 .*status=sent"
echo ok
