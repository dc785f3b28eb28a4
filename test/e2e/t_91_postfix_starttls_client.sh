# A real Postfix, the legacy MTA, uses STARTTLS toward mxlock
# (smtp_tls_security_level = may): its log shows a TLS connection to
# mxlock, mxlock's log the client-side TLS version, and the message
# arrives at the MX.
. "$(dirname "$0")/lib.sh"

PF="$T/pf"
postfix_stop() { "$MXLOCK_TOP/scripts/testnet/postfix.sh" stop "$PF" >/dev/null 2>&1; }
trap 'postfix_stop; cleanup' EXIT

mkdir -p "$T/pki"
cp "$PKI_DIR/ca.key" "$PKI_DIR/ca.crt" "$PKI_DIR/openssl.cnf" "$T/pki/"
"$PKI_SH" leaf "$T/pki" mxlock.test rsa >"$T/pki.log" 2>&1 ||
	{ cat "$T/pki.log"; fail "issuing the mxlock.test certificate failed"; }

mxlock_config may
sed -i "s|^tls:|tls:\n  server_cert: $T/pki/mxlock.test.chain.pem\n  server_key: $T/pki/mxlock.test.key|" "$T/mxlock.yaml"
mxlock_start

"$MXLOCK_TOP/scripts/testnet/postfix.sh" start "$PF" "$MXLOCK_ADDR:$MXLOCK_PORT" >"$T/pf-start.log" 2>&1 ||
	{ cat "$T/pf-start.log"; fail "Postfix did not start"; }
# The helper sets smtp_tls_security_level = none; this test wants TLS.
postconf -c "$PF/postfix" -e smtp_tls_security_level=may smtp_tls_loglevel=1 ||
	fail "postconf failed"
postfix -c "$PF/postfix" reload >"$T/pf-reload.log" 2>&1 || { cat "$T/pf-reload.log"; fail "postfix reload failed"; }

marker=$(new_marker)
swaks --server 127.0.20.1 --port 2525 --helo client.test --from sender@client.test \
	--to user@signed.test --header "Subject: $marker" --body "$marker" >"$T/inject.log" 2>&1 ||
	{ cat "$T/inject.log"; fail "Postfix did not accept the message"; }
json=$(find_mail mx1 user@signed.test "$marker") ||
	json=$(find_mail mx2 user@signed.test "$marker") ||
	{ tail -n 20 "$PF/postfix/maillog"; fail "Postfix's message did not arrive"; }
case "$(json_field "$json" tls)" in TLSv1.2|TLSv1.3) ;; *) fail "not delivered to the MX over TLS" ;; esac

grep -Eq "(Anonymous|Untrusted) TLS connection established to $MXLOCK_ADDR\[$MXLOCK_ADDR\]:$MXLOCK_PORT: TLSv1\.[23]" "$PF/postfix/maillog" ||
	{ tail -n 20 "$PF/postfix/maillog"; fail "Postfix did not log a TLS connection to mxlock"; }
grep -q "to=<user@signed.test>, relay=$MXLOCK_ADDR\[$MXLOCK_ADDR\]:$MXLOCK_PORT, .*status=sent" "$PF/postfix/maillog" ||
	{ tail -n 20 "$PF/postfix/maillog"; fail "Postfix did not log the delivery as sent"; }

mxlock_stop
assert_log "event=client-tls client=127\.0\.20\.1 tls=TLSv1\.[23] cipher="
assert_log "event=recipient from=\"sender@client.test\" to=\"user@signed.test\" .*status=sent"
echo ok
