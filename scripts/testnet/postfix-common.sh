# Helpers shared by the scripts that run private Postfix instances
# (scripts/testnet/postfix.sh, postfix-dane.sh, scripts/bench/postfix-sink.sh
# and postfix-relay.sh).
# The caller defines log, CONF (the instance's config folder) and STATE
# (its state folder) before calling them.

# True if the process exists and is not a zombie.
pid_alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# True if something listens on TCP address:port $1.
listening() {
    ss -Hlnt | awk '{print $4}' | grep -qxF "$1"
}

# Runs a postfix command under a pseudo-terminal, because Postfix prints its
# fatal errors only to a terminal; on failure the output goes to stderr.
run_postfix() {
    local output
    if ! output=$(script -qec "$(printf '%q ' postfix -c "$CONF" "$@")" /dev/null 2>&1); then
        log "postfix $* failed: $output"
        [ -s "$CONF/maillog" ] && log "end of $CONF/maillog:"$'\n'"$(tail -n 20 "$CONF/maillog")"
        return 1
    fi
}

# Prints the PID of the instance's master process, if it wrote one.
master_pid() {
    local file=$STATE/postfix-queue/pid/master.pid
    [ -e "$file" ] && tr -d ' \n' < "$file"
}

# Writes $CONF/master.cf: an smtpd on $1 (address:port) and the services a
# private instance uses, none of them chrooted, with Postfix's default
# process limits. $2 (optional) is added to the smtp and relay clients'
# command, for example "-o max_use=1".
write_master_cf() {
    local listen=$1 client_args=${2:-}
    cat > "$CONF/master.cf" <<EOF
# service     type      private unpriv chroot wakeup maxproc command
$listen       inet      n       -      n      -      -       smtpd
pickup        unix      n       -      n      60     1       pickup
cleanup       unix      n       -      n      -      0       cleanup
qmgr          unix      n       -      n      300    1       qmgr
tlsmgr        unix      -       -      n      1000?  1       tlsmgr
rewrite       unix      -       -      n      -      -       trivial-rewrite
bounce        unix      -       -      n      -      0       bounce
defer         unix      -       -      n      -      0       bounce
trace         unix      -       -      n      -      0       bounce
verify        unix      -       -      n      -      1       verify
flush         unix      n       -      n      1000?  0       flush
proxymap      unix      -       -      n      -      -       proxymap
proxywrite    unix      -       -      n      -      1       proxymap
smtp          unix      -       -      n      -      -       smtp $client_args
relay         unix      -       -      n      -      -       smtp $client_args
showq         unix      n       -      n      -      -       showq
error         unix      -       -      n      -      -       error
retry         unix      -       -      n      -      -       error
discard       unix      -       -      n      -      -       discard
anvil         unix      -       -      n      -      1       anvil
scache        unix      -       -      n      -      1       scache
postlog       unix-dgram n      -      n      -      1       postlogd
EOF
}
