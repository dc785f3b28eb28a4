# A real Postfix instance, the legacy MTA, relays through mxlock:
#  - a message to a domain with STARTTLS MX hosts is delivered over TLS;
#  - a message to a domain whose MX hosts are all down gets a 4xx from
#    mxlock and stays in Postfix's queue; once an MX is back, Postfix
#    retries and the message arrives (nothing lost).
. "$(dirname "$0")/lib.sh"

PF="$T/pf"
postfix_stop() { "$MXLOCK_TOP/scripts/testnet/postfix.sh" stop "$PF" >/dev/null 2>&1; }
trap 'postfix_stop; cleanup' EXIT

mxlock_config may
mxlock_start
"$MXLOCK_TOP/scripts/testnet/postfix.sh" start "$PF" "$MXLOCK_ADDR:$MXLOCK_PORT" >"$T/pf-start.log" 2>&1 ||
	{ cat "$T/pf-start.log"; fail "Postfix did not start"; }

inject() {
	swaks --server 127.0.20.1 --port 2525 --helo client.test --from sender@client.test \
		--to "$1" --header "Subject: $2" --body "$2" >"$T/inject.$RANDOM.log" 2>&1 ||
		fail "Postfix did not accept the message for $1"
}

marker=$(new_marker)
inject user@signed.test "$marker"
json=$(find_mail mx1 user@signed.test "$marker") ||
	json=$(find_mail mx2 user@signed.test "$marker") ||
	{ tail -n 20 "$PF/postfix/maillog"; fail "Postfix's message did not arrive"; }
case "$(json_field "$json" tls)" in TLSv1.2|TLSv1.3) ;; *) fail "not delivered over TLS" ;; esac

down=$(new_marker)
inject user@down.plain.test "$down"
for i in $(seq 1 100); do
	grep -q 'user@down.plain.test.*status=deferred.*451 4.4.1' "$PF/postfix/maillog" && break
	sleep 0.2
done
grep -q 'user@down.plain.test.*status=deferred' "$PF/postfix/maillog" ||
	{ tail -n 20 "$PF/postfix/maillog"; fail "Postfix did not record a deferral"; }
postqueue -c "$PF/postfix" -p | grep -q 'user@down.plain.test' || fail "message left Postfix's queue while every MX was down"

# Bring one MX of the domain back; Postfix's next retry delivers.
"$PYTHON" "$MXLOCK_TOP/test/peers/mx.py" --address 127.0.25.8 --port 25 --name down1 \
	--maildir "$T/mail" >"$T/down1.log" 2>&1 &
PEER_PIDS+=($!)
wait_listening 127.0.25.8:25 || fail "replacement MX did not start"
postqueue -c "$PF/postfix" -f
for i in $(seq 1 150); do
	grep -rqlF "$down" "$T/mail/down1" 2>/dev/null && break
	sleep 0.2
done
grep -rqlF "$down" "$T/mail/down1" 2>/dev/null || { tail -n 20 "$PF/postfix/maillog"; fail "queued message not delivered once the MX was back"; }

mxlock_stop
assert_log "event=recipient .*to=\"user@down.plain.test\" .*dsn=4.4.1 status=deferred reason=connect-failed"
assert_log "event=recipient .*to=\"user@down.plain.test\" relay=down1.plain.test\[127.0.25.8\]:25 .*status=sent"
echo ok
