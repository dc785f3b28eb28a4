# Transparent interception with an nftables REDIRECT in the OUTPUT chain,
# on the host where the legacy MTA runs (IPv4). The test runs in a network
# namespace of its own, with a private test network on its loopback; the
# client connects to an MX address on port 25 and the rule sends it to
# mxlock's transparent listener. mxlock's own connections carry
# transparent.mark, which the rule exempts, so they do not loop.
#  - a DANE domain through its real MX: verified by the MX host's name;
#  - an original destination that is no MX of the domain: deferred under
#    defer, and under passthrough when DANE requires TLS; passed through
#    under passthrough when the policy allows plaintext; rerouted to the
#    domain's MX under reroute;
#  - an original destination that does not answer: 421 before any greeting.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns_lib.sh"

ns_require
ns_new mta
ns_testnet_start mta
MARK=28024	# 0x6d78

ns mta nft -f - <<NFT || fail "loading the nft rules failed"
table ip mxlock_test {
	chain output {
		type nat hook output priority -100;
		meta mark $MARK return
		tcp dport 25 redirect to :10026
	}
}
NFT

# Writes the configuration for transparent.unmatched $1.
config() {
	mxlock_config may "transparent:
  unmatched: $1
  mark: $MARK"
	sed -i "s/^listen:/listen:\n  - address: 127.0.0.1\n    port: 10026\n    mode: transparent/" "$T/mxlock.yaml"
}

# --- reroute (the default), with the DANE case and connect-first ---
config reroute
ns_mxlock_start mta 127.0.0.1:10026

m1=$(new_marker)
out=$(ns_send_from_mta 127.0.27.1 user@dane-ee.signed.test "$m1")
echo "dane: $out"
echo "$out" | grep -q "^data: 250" || fail "DANE domain through its MX not delivered: $out"
find_mail ee user@dane-ee.signed.test "$m1" >/dev/null || fail "message not stored at ee.signed.test"

m2=$(new_marker)
out=$(ns_send_from_mta 127.0.25.1 user@nostarttls.plain.test "$m2")
echo "reroute: $out"
echo "$out" | grep -q "^data: 250" || fail "rerouted message not delivered: $out"
find_mail mx3 user@nostarttls.plain.test "$m2" >/dev/null || fail "rerouted message not stored at mx3"

out=$(ns_send_from_mta 127.0.25.9 user@down.plain.test "$(new_marker)")
echo "down: $out"
echo "$out" | grep -q "^connect: 421 4.4.1 127.0.25.9:25 did not accept the connection" ||
	fail "no 421 for an original destination that does not answer: $out"
mxlock_stop

assert_log "event=transparent-connect client=127\.0\.0\.1 original=127\.0\.27\.1:25"
assert_log "event=transparent-match original=127\.0\.27\.1:25 domain=dane-ee\.signed\.test mx=ee\.signed\.test"
assert_log "event=recipient .*to=\"user@dane-ee.signed.test\" relay=ee\.signed\.test\[127\.0\.27\.1\]:25 .*verified=yes policy=dane .*status=sent"
assert_log "event=transparent-unmatched original=127\.0\.25\.1:25 domain=nostarttls\.plain\.test action=reroute tls-required=no"
assert_log "event=recipient .*to=\"user@nostarttls.plain.test\" relay=mx3\.plain\.test\[127\.0\.25\.3\]:25 .*status=sent"
assert_log "event=transparent-connect-failed client=127\.0\.0\.1 original=127\.0\.25\.9:25"
# Loop check: every connection mxlock accepted came from the client,
# none from mxlock's own marked connections (3 clients, 3 connections).
[ "$(grep -c 'event=connect ' "$T/mxlock.log")" -eq 3 ] ||
	{ grep 'event=connect ' "$T/mxlock.log"; fail "mxlock accepted connections other than the client's"; }

# --- defer ---
config defer
ns_mxlock_start mta 127.0.0.1:10026
m3=$(new_marker)
out=$(ns_send_from_mta 127.0.25.1 user@nostarttls.plain.test "$m3")
echo "defer: $out"
echo "$out" | grep -q "^rcpt: 451 4.7.5 .*original destination 127.0.25.1:25 is no MX host of nostarttls.plain.test" ||
	fail "unmatched destination not deferred: $out"
mxlock_stop
assert_log "event=transparent-unmatched original=127\.0\.25\.1:25 domain=nostarttls\.plain\.test action=defer"
no_mail "$m3" || fail "a deferred message was delivered"

# --- passthrough ---
config passthrough
ns_mxlock_start mta 127.0.0.1:10026
m4=$(new_marker)
out=$(ns_send_from_mta 127.0.25.1 user@nostarttls.plain.test "$m4")
echo "passthrough: $out"
echo "$out" | grep -q "^data: 250" || fail "passthrough not delivered: $out"
find_mail mx1 user@nostarttls.plain.test "$m4" >/dev/null || fail "passthrough message not stored at the original destination mx1"

m5=$(new_marker)
out=$(ns_send_from_mta 127.0.25.1 user@dane-ee.signed.test "$m5")
echo "passthrough under DANE: $out"
echo "$out" | grep -q "^rcpt: 451 4.7.5" || fail "passthrough allowed where DANE requires TLS: $out"
mxlock_stop
assert_log "event=transparent-unmatched original=127\.0\.25\.1:25 domain=nostarttls\.plain\.test action=passthrough tls-required=no"
assert_log "event=recipient .*to=\"user@nostarttls.plain.test\" relay=127\.0\.25\.1\[127\.0\.25\.1\]:25 .*status=sent"
assert_log "event=transparent-unmatched original=127\.0\.25\.1:25 domain=dane-ee\.signed\.test action=defer tls-required=yes"
no_mail "$m5" || fail "a message under DANE was passed through"
echo ok
