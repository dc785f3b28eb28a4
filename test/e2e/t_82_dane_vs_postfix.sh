# mxlock's DANE verdicts against Postfix's, the reference client (RFC 7672).
# One message per domain goes through a private Postfix with
# smtp_tls_security_level = dane (scripts/testnet/postfix-dane.sh) and one
# through mxlock with policy default dane, over the same zones and MX hosts.
# For each domain both outcomes are reduced to one class and compared:
#
#   class     Postfix verdict                  mxlock summary line
#   verified  verified                         status=sent tls=TLSv1.x verified=yes
#   tls       untrusted, trusted, anonymous    status=sent tls=TLSv1.x verified=no
#   (trusted  trusted only                     status=sent tls=TLSv1.x verified=trusted)
#   plain     sent-plain                       status=sent tls=none verified=no
#   deferred  deferred                         status=deferred
#   bounced   bounced                          status=bounced
#
# Postfix has three words for TLS that is not verified for the recipient
# domain. "Trusted" means a CA file or a TLSA record vouches for the
# certificate, "Untrusted" means neither does, and "Anonymous" means the
# server sent no certificate. mxlock's verified=no under the levels
# may and dane means the same: TLS, but the host is not authenticated for
# the domain. No CA file is given to Postfix, so its "Trusted" can only come
# from TLSA. That happens for insecure-mx.plain.test: its MX RRset is not
# signed, yet Postfix 3.7 matches ee.signed.test's secure TLSA record (RFC
# 7672 section 2.2.1 allows this) and logs "Trusted", not "Verified".
# mxlock ignores that record while dane_insecure_mx is false, as here, and
# reports verified=no. With dane_insecure_mx: true it would report
# verified=trusted, so that value agrees with Postfix's "trusted" and with
# nothing else.
#
# For a delivered message the relay (MX host name, address and port) must
# agree too, so dane-two must reach good.signed.test on both sides.
. "$(dirname "$0")/lib.sh"

PFD="$T/pfdane"
DANE_REF="$MXLOCK_TOP/scripts/testnet/postfix-dane.sh"
pfdane_stop() { "$DANE_REF" stop "$PFD" >/dev/null 2>&1; }
trap 'pfdane_stop; cleanup' EXIT

DOMAINS="
dane-ee.signed.test
dane-ee-expired.signed.test
dane-ee-old.signed.test
dane-nonleaf.signed.test
dane-ta.signed.test
dane-ta-nochain.signed.test
dane-ta-wrongname.signed.test
dane-unusable.signed.test
dane-unusable-plain.signed.test
dane-unusable-plus.signed.test
dane-nostarttls.signed.test
dane-two.signed.test
dane-cname.signed.test
dane-bogus.test
timeout.dane-lame.test
refused.dane-lame.test
expired.test
insecure-mx.plain.test
nostarttls.plain.test
signed.test
"

# Postfix runs in a mount namespace of its own. Without permission for that
# the comparison cannot run at all.
"$DANE_REF" start "$PFD" >"$T/pfdane-start.log" 2>&1
rc=$?
if [ "$rc" -eq 77 ]; then
	skip "Postfix DANE reference: $(sed -n 's/.*skipped: //p' "$T/pfdane-start.log" | head -n 1)"
fi
[ "$rc" -eq 0 ] || { cat "$T/pfdane-start.log"; fail "Postfix DANE reference did not start (exit $rc)"; }

mxlock_config dane 'limits:
  timeouts:
    connect: 5'
sed -i 's/^dns:/dns:\n  probe: signed.test/' "$T/mxlock.yaml"
mxlock_start

# Local parts are new for each run, because postfix-dane.sh's verdict reads
# the latest delivery attempt to an address and mx_summary greps for one.
run="$$-$RANDOM"
pf_rcpt() { echo "pf-$run@$1"; }
mx_rcpt() { echo "mx-$run@$1"; }

# Postfix gets every message first and delivers them while mxlock works.
for domain in $DOMAINS; do
	"$DANE_REF" send "$PFD" "$(pf_rcpt "$domain")" >>"$T/pfdane-send.log" 2>&1 ||
		{ cat "$T/pfdane-send.log"; fail "Postfix did not accept the message for $domain"; }
done

# Then one swaks session per domain through mxlock, all at once, so a slow
# DNS failure delays only its own domain.
swaks_pids=()
for domain in $DOMAINS; do
	swaks --server "$MXLOCK_ADDR" --port "$MXLOCK_PORT" --helo client.test \
		--timeout 60 --from a@client.test --to "$(mx_rcpt "$domain")" \
		--header "Subject: DANE comparison for $domain" \
		--body "DANE comparison for $domain" >"$T/swaks.$domain.log" 2>&1 &
	swaks_pids+=($!)
done
for pid in "${swaks_pids[@]}"; do
	wait "$pid"
done

# Prints mxlock's last summary line for rcpt, waiting up to 5 s.
mx_summary() {
	local rcpt=$1 line
	for _ in $(seq 1 50); do
		line=$(grep -F "to=\"$rcpt\"" "$T/mxlock.log" | grep 'event=recipient ' | tail -n 1)
		[ -n "$line" ] && { echo "$line"; return 0; }
		sleep 0.1
	done
	return 1
}

# Prints the value of key $2 in summary line $1.
line_field() {
	sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"
}

# Map each side's outcome to a class of the table at the top.
postfix_class() {
	case "$1" in
	verified) echo verified ;;
	trusted | untrusted | anonymous) echo tls ;;
	sent-plain) echo plain ;;
	deferred | bounced) echo "$1" ;;
	*) echo "postfix:$1" ;;
	esac
}

mxlock_class() {
	local status=$1 tls=$2 verified=$3
	case "$status" in
	deferred | bounced) echo "$status"; return ;;
	sent) ;;
	*) echo "mxlock:status=$status"; return ;;
	esac
	case "$tls,$verified" in
	none,no) echo plain ;;
	TLSv1.*,yes) echo verified ;;
	TLSv1.*,no) echo tls ;;
	TLSv1.*,trusted) echo tls-trusted ;;
	*) echo "mxlock:tls=$tls,verified=$verified" ;;
	esac
}

# Prints the relay of Postfix's last delivery to rcpt, as host[address]:port.
postfix_relay() {
	grep -F "to=<$1>," "$PFD/postfix/maillog" | grep ' status=sent ' | tail -n 1 |
		sed -n 's/.* relay=\([^,]*\),.*/\1/p'
}

# One row per domain. The relay column shows the relay of a delivered
# message, or both relays when they differ.
print_row() {
	printf '%-32s %-10s %-36s %-6s %s\n' "$@"
}
print_row domain postfix mxlock agree relay
disagreements=()
# Postfix got every message before mxlock's sessions began, so one shared
# deadline bounds the wait for all of its verdicts.
verdict_deadline=$((SECONDS + 90))
for domain in $DOMAINS; do
	wait_seconds=$((verdict_deadline - SECONDS))
	[ "$wait_seconds" -ge 1 ] || wait_seconds=1
	pf=$("$DANE_REF" verdict "$PFD" "$(pf_rcpt "$domain")" "$wait_seconds" 2>>"$T/pfdane-verdict.log")
	pf_class=$(postfix_class "$pf")
	pf_relay=""
	case "$pf_class" in
	verified | tls | plain) pf_relay=$(postfix_relay "$(pf_rcpt "$domain")") ;;
	esac

	mx_relay=""
	if line=$(mx_summary "$(mx_rcpt "$domain")"); then
		status=$(line_field "$line" status)
		tls=$(line_field "$line" tls)
		verified=$(line_field "$line" verified)
		[ "$status" = sent ] && mx_relay=$(line_field "$line" relay)
		mx="$status tls=$tls verified=$verified"
		mx_class=$(mxlock_class "$status" "$tls" "$verified")
	else
		line=""
		mx="no summary line"
		mx_class="mxlock:none"
	fi

	agree=yes
	if [ "$pf_class" != "$mx_class" ] &&
		! { [ "$pf" = trusted ] && [ "$mx_class" = tls-trusted ]; }; then
		agree=no
	fi
	relay=$pf_relay
	if [ "$pf_relay" != "$mx_relay" ]; then
		agree=no
		relay="Postfix ${pf_relay:-none}, mxlock ${mx_relay:-none}"
	fi
	print_row "$domain" "$pf" "$mx" "$agree" "$relay"

	if [ "$agree" = no ]; then
		disagreements+=("$domain: Postfix $pf${pf_relay:+ via $pf_relay}, mxlock $mx${mx_relay:+ via $mx_relay}")
		{
			echo "== $domain"
			echo "mxlock: ${line:-no summary line}"
			echo "Postfix: $(grep -F "to=<$(pf_rcpt "$domain")>," "$PFD/postfix/maillog" | grep ' status=' | tail -n 1)"
		} >>"$T/disagreements.log"
	fi
done

mxlock_stop
assert_log 'event=dns-probe name=signed.test secure=yes'
if [ "${#disagreements[@]}" -gt 0 ]; then
	echo "mxlock and Postfix disagree on ${#disagreements[@]} domain(s):"
	printf '  %s\n' "${disagreements[@]}"
	cat "$T/disagreements.log"
	fail "verdicts differ from the Postfix DANE reference"
fi
echo ok
