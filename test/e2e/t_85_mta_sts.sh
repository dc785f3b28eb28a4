# MTA-STS (RFC 8461) against the sts-* domains of the test network and its
# policy host. The cases are enforce, testing, no policy, and an MX host
# outside the policy. Fetches fail on a 404, a redirect, a wrong
# Content-Type, a body over 64 KiB and a certificate for another name.
# A new policy id brings a new policy, a cached policy survives a restart
# while the policy host is down, and `mxlock sts show|forget` work while
# the daemon runs. Changes to the shared test network (DNS records,
# policy files, the policy host) are undone on exit, also when a check
# fails.
. "$(dirname "$0")/lib.sh"

ENFORCE=sts-enforce.plain.test
FORGED=sts-forged.plain.test
ACCESS_LOG="$STS_DIR/access.log"
CHANGED_MX1=0
CHANGED_ENFORCE_TXT=0
CHANGED_FORGED=0
STOPPED_POLICY_HOST=0
cp "$STS_DIR/$FORGED.txt" "$T/forged-original.txt"

# Puts back every record, policy and service that this test changed.
restore_testnet() {
	[ "$CHANGED_MX1" = 0 ] ||
		"$TESTNET_SH" dns-set "$TESTNET_DIR" "mx1.$ENFORCE" A 127.0.28.1
	[ "$CHANGED_ENFORCE_TXT" = 0 ] ||
		"$TESTNET_SH" dns-set "$TESTNET_DIR" "_mta-sts.$ENFORCE" TXT \
			'"v=STSv1; id=20261204a;"'
	[ "$CHANGED_FORGED" = 0 ] ||
		"$TESTNET_SH" sts-set "$TESTNET_DIR" "$FORGED" 20261204c \
			"$T/forged-original.txt"
	[ "$STOPPED_POLICY_HOST" = 0 ] ||
		"$TESTNET_SH" policy-host start "$TESTNET_DIR"
	CHANGED_MX1=0 CHANGED_ENFORCE_TXT=0 CHANGED_FORGED=0 STOPPED_POLICY_HOST=0
}
trap 'restore_testnet >"$T/restore.log" 2>&1; cleanup' EXIT

# lib.sh puts the policy cache in $T/state.
mxlock_config may 'limits:
  timeouts:
    connect: 5'

# Restarts mxlock, which also empties its DNS cache, so that records
# changed with dns-set are seen at once. The policy cache in state_dir
# stays. Connection ids start again at 1, so the log so far moves to
# $T/mxlock.earlier.log.
mxlock_restart() {
	mxlock_stop
	cat "$T/mxlock.log" >>"$T/mxlock.earlier.log"
	: >"$T/mxlock.log"
	mxlock_start
}

# Prints the number of policy requests the policy host got for domain.
policy_requests() {
	local n
	n=$(grep -c "host=mta-sts.$1 " "$ACCESS_LOG" 2>/dev/null)
	echo "${n:-0}"
}

LAST_LINE=""
LAST_CONN=""
LAST_SWAKS=""
LAST_MARKER=""

# expect DOMAIN STATUS DETAIL_REGEX [MX_NAME]
# Sends one message to a new recipient at DOMAIN and checks its summary
# line: the status and DETAIL_REGEX. With MX_NAME the message must have
# reached that MX host; with status deferred it must be stored nowhere.
# Leaves the summary line in LAST_LINE, its connection id in LAST_CONN,
# the swaks transcript in LAST_SWAKS and the body text in LAST_MARKER.
expect() {
	local domain=$1 status=$2 detail=$3 mx=${4:-} marker rcpt
	marker=$(new_marker)
	LAST_MARKER=$marker
	rcpt="u$RANDOM$RANDOM@$domain"
	LAST_SWAKS=$(send_mail --from a@client.test --to "$rcpt" \
		--header "Subject: $marker" --body "$marker")
	LAST_LINE=""
	for _ in $(seq 1 50); do
		LAST_LINE=$(grep -F "event=recipient " "$T/mxlock.log" |
			grep -F "to=\"$rcpt\"" | tail -n 1)
		[ -n "$LAST_LINE" ] && break
		sleep 0.1
	done
	[ -n "$LAST_LINE" ] || fail "$domain: no summary line for $rcpt"
	LAST_CONN=$(sed -n 's/.* \(conn=[0-9]*\) .*/\1/p' <<<"$LAST_LINE")

	case "$LAST_LINE" in
	*" status=$status "*) ;;
	*) echo "$LAST_LINE"; fail "$domain: expected status=$status" ;;
	esac
	grep -qE -- "$detail" <<<"$LAST_LINE" ||
		{ echo "$LAST_LINE"; fail "$domain: summary line does not match: $detail"; }
	if [ -n "$mx" ]; then
		find_mail "$mx" "$rcpt" "$marker" >/dev/null ||
			fail "$domain: message not stored by MX host $mx"
	fi
	if [ "$status" = deferred ]; then
		no_mail "$marker" || fail "$domain: message stored although deferred"
	fi
	echo "ok: $domain $status ($detail)"
}

# Checks that the session of the last message logged a line matching $1.
assert_conn_log() {
	grep -F "$LAST_CONN " "$T/mxlock.log" | grep -qE -- "$1" ||
		fail "$LAST_CONN logged no line matching: $1"
}

# Checks that the session of the last message logged an MTA-STS policy
# that applies, with this mode, id and source.
assert_sts_policy() {
	local domain=$1 mode=$2 id=$3 source=$4
	assert_conn_log "event=sts-policy domain=$domain applies=yes mode=$mode id=$id source=$source "
}

# Checks that the MX host name was skipped as outside the policy id and
# that mxlock never connected to it.
assert_skipped() {
	local name=$1 id=$2
	assert_conn_log "event=mx-skipped mx=$name policy=mta-sts reason=\"MX host $name does not match the MTA-STS policy \\(id $id\\)\""
	! grep -qF "mx=${name}[" "$T/mxlock.log" || fail "mxlock connected to $name"
}

# Checks that the fetch for domain failed, with a reason matching $2.
assert_fetch_failed() {
	local domain=$1 why=$2
	assert_conn_log "event=sts-fetch-failed domain=$domain id=[^ ]+ reason=\"policy fetch failed: [^\"]*($why)"
}

mxlock_start

echo "--- no policy, enforce, testing, an MX host outside the policy"
expect tls.plain.test sent 'policy=may ' mx1
assert_conn_log 'event=sts-policy domain=tls.plain.test applies=no mode=none id=none source=none '

before=$(policy_requests "$ENFORCE")
expect "$ENFORCE" sent 'relay=mx1.sts-enforce.plain.test\[127.0.28.1\]:25 .*verified=yes policy=mta-sts sts_mode=enforce sts_id=[0-9a-z]+ ' sts-enforce
assert_sts_policy "$ENFORCE" enforce 20261204a fetched
[ "$(policy_requests "$ENFORCE")" -eq $((before + 1)) ] ||
	fail "$ENFORCE: expected one policy request"
grep "host=mta-sts.$ENFORCE " "$ACCESS_LOG" | tail -n 1 |
	grep -qF "sni=mta-sts.$ENFORCE " || fail "$ENFORCE: the policy request had no SNI for the policy host"

expect "$ENFORCE" sent 'verified=yes policy=mta-sts ' sts-enforce
assert_sts_policy "$ENFORCE" enforce 20261204a cached
[ "$(policy_requests "$ENFORCE")" -eq $((before + 1)) ] ||
	fail "$ENFORCE: the cached policy was fetched again"

expect sts-wrongcert.plain.test deferred 'dsn=4\.7\.5 '
assert_sts_policy sts-wrongcert.plain.test enforce 20261204b fetched
grep -qE '451 4\.7\.5' "$LAST_SWAKS" || fail "sts-wrongcert: the client did not get 451 4.7.5"

expect "$FORGED" sent 'relay=mx.sts-forged.plain.test\[127.0.28.5\]:25 .*verified=yes policy=mta-sts ' sts-forged
assert_skipped forged.other.plain.test 20261204c
! grep -rqlF "$LAST_MARKER" "$MAIL_DIR/sts-forged-mx5" 2>/dev/null ||
	fail "the MX host outside the policy stored the message"

expect sts-testing.plain.test sent 'relay=mx.sts-testing.plain.test\[127.0.28.6\]:25 .*policy=mta-sts ' sts-testing
assert_sts_policy sts-testing.plain.test testing 20261204d fetched
assert_conn_log 'event=sts-testing-failure mx=mx.sts-testing.plain.test'

echo "--- failed fetches: no policy, so the default level (may) applies"
expect sts-404.plain.test sent 'policy=may ' sts-misc
assert_fetch_failed sts-404.plain.test '404'
expect sts-redirect.plain.test sent 'policy=may ' sts-misc
assert_fetch_failed sts-redirect.plain.test 'redirect'
expect sts-ctype.plain.test sent 'policy=may ' sts-misc
assert_fetch_failed sts-ctype.plain.test 'Content-Type'
expect sts-big.plain.test sent 'policy=may ' sts-misc
assert_fetch_failed sts-big.plain.test '65536'
expect sts-badcert.plain.test sent 'policy=may ' sts-misc
assert_fetch_failed sts-badcert.plain.test 'certificate'
# The certificate check comes before the request, so none was sent.
[ "$(policy_requests sts-badcert.plain.test)" -eq 0 ] ||
	fail "sts-badcert: a request was sent over TLS with a certificate for another name"

echo "--- mxlock sts show and forget while the daemon runs"
"$MXLOCK_BIN" sts show -c "$T/mxlock.yaml" "$ENFORCE" >"$T/show.out" 2>&1 ||
	{ cat "$T/show.out"; fail "sts show $ENFORCE failed"; }
assert_file_has "$T/show.out" '^id: 20261204a$'
assert_file_has "$T/show.out" '^mode: enforce$'
assert_file_has "$T/show.out" '^mx: mx1\.sts-enforce\.plain\.test$'
assert_file_has "$T/show.out" '^mx: \*\.relay\.sts-enforce\.plain\.test$'
"$MXLOCK_BIN" sts forget -c "$T/mxlock.yaml" "$ENFORCE" >"$T/forget.out" 2>&1 ||
	{ cat "$T/forget.out"; fail "sts forget $ENFORCE failed"; }
rc=0
"$MXLOCK_BIN" sts show -c "$T/mxlock.yaml" "$ENFORCE" >"$T/show2.out" 2>&1 || rc=$?
[ "$rc" -eq 3 ] || { cat "$T/show2.out"; fail "sts show after forget: exit $rc, expected 3"; }
before=$(policy_requests "$ENFORCE")
expect "$ENFORCE" sent 'verified=yes policy=mta-sts ' sts-enforce
assert_sts_policy "$ENFORCE" enforce 20261204a fetched
[ "$(policy_requests "$ENFORCE")" -eq $((before + 1)) ] ||
	fail "$ENFORCE: the forgotten policy was not fetched again"

echo "--- enforce: the only listed MX host is down, the backup is never dialled"
CHANGED_MX1=1
"$TESTNET_SH" dns-set "$TESTNET_DIR" "mx1.$ENFORCE" A 127.0.28.99
mxlock_restart
expect "$ENFORCE" deferred 'dsn=4\.7\.5 '
grep -qE '451 4\.7\.5' "$LAST_SWAKS" || fail "$ENFORCE with mx1 down: the client did not get 451 4.7.5"
assert_sts_policy "$ENFORCE" enforce 20261204a cached
assert_skipped backup.other.plain.test 20261204a
"$TESTNET_SH" dns-set "$TESTNET_DIR" "mx1.$ENFORCE" A 127.0.28.1
CHANGED_MX1=0

echo "--- a cached policy survives a restart while the policy host is down"
STOPPED_POLICY_HOST=1
"$TESTNET_SH" policy-host stop "$TESTNET_DIR"
mxlock_restart
expect "$ENFORCE" sent 'relay=mx1.sts-enforce.plain.test\[127.0.28.1\]:25 .*verified=yes policy=mta-sts ' sts-enforce
assert_sts_policy "$ENFORCE" enforce 20261204a cached
# A new id cannot be fetched now: the cached policy still applies.
CHANGED_ENFORCE_TXT=1
"$TESTNET_SH" dns-set "$TESTNET_DIR" "_mta-sts.$ENFORCE" TXT '"v=STSv1; id=20261205a;"'
mxlock_restart
expect "$ENFORCE" sent 'verified=yes policy=mta-sts ' sts-enforce
assert_sts_policy "$ENFORCE" enforce 20261204a cached-refetch-failed
assert_fetch_failed "$ENFORCE" 'connection refused'
"$TESTNET_SH" dns-set "$TESTNET_DIR" "_mta-sts.$ENFORCE" TXT '"v=STSv1; id=20261204a;"'
CHANGED_ENFORCE_TXT=0
"$TESTNET_SH" policy-host start "$TESTNET_DIR"
STOPPED_POLICY_HOST=0

echo "--- a new policy id: the new policy is fetched and used"
printf 'version: STSv1\r\nmode: enforce\r\nmx: forged.other.plain.test\r\nmx: mx.sts-forged.plain.test\r\nmax_age: 86400\r\n' \
	>"$T/forged-new.txt"
CHANGED_FORGED=1
"$TESTNET_SH" sts-set "$TESTNET_DIR" "$FORGED" 20261205c "$T/forged-new.txt"
mxlock_restart
expect "$FORGED" sent 'relay=forged.other.plain.test\[127.0.28.4\]:25 .*verified=yes policy=mta-sts ' sts-forged-mx5
assert_sts_policy "$FORGED" enforce 20261205c fetched
"$MXLOCK_BIN" sts show -c "$T/mxlock.yaml" "$FORGED" >"$T/show3.out" 2>&1 ||
	{ cat "$T/show3.out"; fail "sts show $FORGED failed"; }
assert_file_has "$T/show3.out" '^id: 20261205c$'
restore_testnet >"$T/restore.log" 2>&1 || { cat "$T/restore.log"; fail "restoring the test network failed"; }

mxlock_stop
echo ok
