# Transparent interception on a gateway: the legacy MTA's namespace routes
# through the gateway namespace, where an nftables PREROUTING REDIRECT
# sends its port 25 connections to mxlock. The MX hosts sit in a third
# namespace behind the gateway (veth pairs, IPv4 and IPv6). mxlock's own
# connections leave through OUTPUT, which the rule does not touch.
#  - a DANE domain through its MX (IPv4, then IPv6): DANE-EE verified for
#    the MX host name that the original address belongs to;
#  - an original destination that is no MX of the domain under defer
#    (IPv4 and IPv6): 451, nothing delivered.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns_lib.sh"

ns_require
ns_gateway
ns_testnet_start gw
ns_gateway_mx

ns gw nft -f - <<'NFT' || fail "loading the nft rules failed"
table inet mxlock_test {
	chain prerouting {
		type nat hook prerouting priority -100;
		iifname "g0" tcp dport 25 redirect to :10026
	}
}
NFT

mxlock_config may "transparent:
  unmatched: defer
clients: [10.199.1.0/24, \"fd00:199:1::/64\"]"
sed -i "s/^listen:/listen:\n  - {address: 10.199.1.1, port: 10026, mode: transparent}\n  - {address: \"fd00:199:1::1\", port: 10026, mode: transparent}/" "$T/mxlock.yaml"
ns_mxlock_start gw 10.199.1.1:10026
ns_wait_listening gw "[fd00:199:1::1]:10026" || fail "no IPv6 transparent listener"

m4=$(new_marker)
out=$(ns_send_from_mta 10.199.2.2 user@gw.signed.test "$m4")
echo "IPv4: $out"
echo "$out" | grep -q "^data: 250" || fail "IPv4 message through the gateway not delivered: $out"
find_mail mxgw user@gw.signed.test "$m4" >/dev/null || fail "IPv4 message not stored at mxgw"

m6=$(new_marker)
out=$(ns_send_from_mta fd00:199:2::2 user@gw.signed.test "$m6")
echo "IPv6: $out"
echo "$out" | grep -q "^data: 250" || fail "IPv6 message through the gateway not delivered: $out"
find_mail mxgw6 user@gw.signed.test "$m6" >/dev/null || fail "IPv6 message not stored at mxgw6"

for other in 10.199.2.3 fd00:199:2::3; do
	m=$(new_marker)
	out=$(ns_send_from_mta "$other" user@gw.signed.test "$m")
	echo "unmatched $other: $out"
	echo "$out" | grep -q "^rcpt: 451 4.7.5 .*is no MX host of gw.signed.test" ||
		fail "unmatched destination $other not deferred: $out"
	no_mail "$m" || fail "a message to unmatched $other was delivered"
done
mxlock_stop

assert_log "event=transparent-connect client=10\.199\.1\.2 original=10\.199\.2\.2:25"
assert_log "event=transparent-match original=10\.199\.2\.2:25 domain=gw\.signed\.test mx=mxgw\.signed\.test"
assert_log "event=recipient .*to=\"user@gw.signed.test\" relay=mxgw\.signed\.test\[10\.199\.2\.2\]:25 .*verified=yes policy=dane .*status=sent"
assert_log "event=transparent-connect client=fd00:199:1::2 original=\[fd00:199:2::2\]:25"
assert_log "event=transparent-match original=\[fd00:199:2::2\]:25 domain=gw\.signed\.test mx=mxgw\.signed\.test"
assert_log "event=recipient .*to=\"user@gw.signed.test\" relay=mxgw\.signed\.test\[fd00:199:2::2\]:25 .*verified=yes policy=dane .*status=sent"
assert_log "event=transparent-unmatched original=10\.199\.2\.3:25 domain=gw\.signed\.test action=defer"
assert_log "event=transparent-unmatched original=\[fd00:199:2::3\]:25 domain=gw\.signed\.test action=defer"
echo ok
