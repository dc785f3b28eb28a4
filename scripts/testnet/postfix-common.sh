# Helpers shared by the scripts that run private Postfix instances
# (scripts/testnet/postfix.sh, postfix-dane.sh, scripts/bench/postfix-sink.sh).
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
