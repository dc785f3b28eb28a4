# A real Postfix as the legacy MTA behind transparent interception: no
# relay host, MX lookups through the test resolver, opportunistic TLS
# (smtp_tls_security_level = may). An nftables REDIRECT in the OUTPUT
# chain of its namespace sends its port 25 connections to mxlock, which
# exempts its own marked connections. Postfix believes it talks to the DANE
# MX host ee.signed.test over TLS, which mxlock terminates with its own
# certificate. mxlock verifies the real MX host with DANE and delivers.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns_lib.sh"

ns_require
command -v postfix >/dev/null || skip "Postfix is not installed"
ns_new mta
ns_testnet_start mta
MARK=28024

PF="$T/pf"
postfix_stop() { ns mta "$MXLOCK_TOP/scripts/testnet/postfix.sh" stop "$PF" >/dev/null 2>&1; }
trap 'postfix_stop; ns_cleanup' EXIT

ns mta nft -f - <<NFT || fail "loading the nft rules failed"
table ip mxlock_test {
	chain output {
		type nat hook output priority -100;
		meta mark $MARK return
		tcp dport 25 redirect to :10026
	}
}
NFT

mkdir -p "$T/pki"
cp "$PKI_DIR/ca.key" "$PKI_DIR/ca.crt" "$PKI_DIR/openssl.cnf" "$T/pki/"
"$PKI_SH" leaf "$T/pki" mxlock.test ec >"$T/pki.log" 2>&1 ||
	{ cat "$T/pki.log"; fail "issuing the mxlock.test certificate failed"; }
mxlock_config may "transparent:
  mark: $MARK"
sed -i "s/^listen:/listen:\n  - {address: 127.0.0.1, port: 10026, mode: transparent}/" "$T/mxlock.yaml"
sed -i "s|^tls:|tls:\n  server_cert: $T/pki/mxlock.test.chain.pem\n  server_key: $T/pki/mxlock.test.key|" "$T/mxlock.yaml"
ns_mxlock_start mta 127.0.0.1:10026

# Postfix reads the resolver from /etc/resolv.conf: give it the test
# resolver in a mount namespace of its own, which its processes inherit.
echo "nameserver ${RESOLVER%:*}" >"$T/resolv.conf"
ns mta unshare -m bash -c 'mount --bind "$1" /etc/resolv.conf && exec "$2" start "$3" 127.0.0.1:1' \
	_ "$T/resolv.conf" "$MXLOCK_TOP/scripts/testnet/postfix.sh" "$PF" >"$T/pf-start.log" 2>&1 ||
	{ cat "$T/pf-start.log"; fail "Postfix did not start"; }
postconf -c "$PF/postfix" -e "relayhost =" smtp_dns_support_level=enabled \
	smtp_tls_security_level=may smtp_tls_loglevel=1 || fail "postconf failed"
postfix -c "$PF/postfix" reload >"$T/pf-reload.log" 2>&1 || { cat "$T/pf-reload.log"; fail "postfix reload failed"; }

marker=$(new_marker)
ns mta swaks --server 127.0.20.1 --port 2525 --helo client.test --from sender@client.test \
	--to user@dane-ee.signed.test --header "Subject: $marker" --body "$marker" >"$T/inject.log" 2>&1 ||
	{ cat "$T/inject.log"; fail "Postfix did not accept the message"; }
find_mail ee user@dane-ee.signed.test "$marker" >/dev/null ||
	{ tail -n 20 "$PF/postfix/maillog"; fail "Postfix's message did not arrive at ee.signed.test"; }

grep -q "Untrusted TLS connection established to ee.signed.test\[127.0.27.1\]:25" "$PF/postfix/maillog" ||
	{ tail -n 20 "$PF/postfix/maillog"; fail "Postfix did not use TLS toward the intercepted MX"; }
grep -q "to=<user@dane-ee.signed.test>, relay=ee.signed.test\[127.0.27.1\]:25, .*status=sent" "$PF/postfix/maillog" ||
	{ tail -n 20 "$PF/postfix/maillog"; fail "Postfix did not log the delivery as sent"; }

postfix_stop
mxlock_stop
assert_log "event=transparent-connect client=127\.0\.20\.1 original=127\.0\.27\.1:25"
assert_log "event=client-tls client=127\.0\.20\.1 tls=TLSv1\.[23]"
assert_log "event=transparent-match original=127\.0\.27\.1:25 domain=dane-ee\.signed\.test mx=ee\.signed\.test"
assert_log "event=recipient from=\"sender@client.test\" to=\"user@dane-ee.signed.test\" relay=ee\.signed\.test\[127\.0\.27\.1\]:25 .*verified=yes policy=dane .*status=sent"
echo ok
