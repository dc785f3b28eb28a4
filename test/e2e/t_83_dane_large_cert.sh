# DANE against an MX whose certificate is larger than 2 KiB. wolfSSL's own
# copy of the peer chain leaves such certificates out, so this checks that
# mxlock matches a TLSA 3 0 1 record (a digest of the whole certificate)
# against the certificate the MX really sent.
. "$(dirname "$0")/lib.sh"

pki="$T/pki"
names=""
for i in $(seq 1 60); do
	names="$names alternative-name-number-$i.bigmx.signed.test"
done
"$MXLOCK_TOP/scripts/testnet/pki.sh" ca "$pki" || fail "pki.sh ca failed"
# shellcheck disable=SC2086
"$MXLOCK_TOP/scripts/testnet/pki.sh" leaf "$pki" bigmx.signed.test ec bigmx.signed.test $names ||
	fail "pki.sh leaf failed"
size=$(openssl x509 -in "$pki/bigmx.signed.test.crt" -outform der | wc -c)
[ "$size" -gt 2048 ] || fail "the test certificate has only $size bytes; it must exceed 2048"
digest=$("$MXLOCK_TOP/scripts/testnet/pki.sh" tlsa "$pki" bigmx.signed.test 0 1)

"$TESTNET_SH" dns-set "$TESTNET_DIR" bigcert.signed.test MX "10 bigmx.signed.test." &&
	"$TESTNET_SH" dns-set "$TESTNET_DIR" bigmx.signed.test A 127.0.26.40 &&
	"$TESTNET_SH" dns-set "$TESTNET_DIR" _25._tcp.bigmx.signed.test TLSA "3 0 1 $digest" ||
	fail "dns-set failed"

peer_start 40 starttls --hostname bigmx.signed.test \
	--tls-chain "$pki/bigmx.signed.test.chain.pem" --tls-key "$pki/bigmx.signed.test.key"
mxlock_config dane
mxlock_start

m=$(new_marker)
log=$(send_mail --from a@client.test --to user@bigcert.signed.test --header "Subject: $m" --body "$m")
assert_file_has "$log" "^<- *250 2.0.0"
mxlock_stop
assert_log "event=tls mx=bigmx.signed.test\[127.0.26.40\]:25 policy=dane .*verified=yes detail=\"TLSA 3 0 1 matched depth 0\""
[ "$(peer_messages 40)" -eq 1 ] || fail "the MX stored $(peer_messages 40) messages, expected 1"
echo "ok: a $size-byte certificate matched TLSA 3 0 1"
