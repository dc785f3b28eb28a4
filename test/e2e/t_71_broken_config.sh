# A broken configuration file stops mxlock before it starts: the error
# names file, line and column, and the exit status is not zero.
. "$(dirname "$0")/lib.sh"

cat >"$T/broken.yaml" <<'YAML'
listen:
  - address: 127.0.10.1
    port: 10025
policy:
  default: sometimes
YAML
"$MXLOCK_BIN" config-test -c "$T/broken.yaml" >"$T/out" 2>&1 && fail "config-test accepted a broken file"
assert_file_has "$T/out" "broken.yaml:5:12: .*sometimes"

cat >"$T/typo.yaml" <<'YAML'
lisen:
  - address: 127.0.10.1
YAML
"$MXLOCK_BIN" run -c "$T/typo.yaml" >"$T/out2" 2>&1 && fail "run started with a broken file"
assert_file_has "$T/out2" "typo.yaml:1:1: unknown key 'lisen'"
ss -Hltn | grep -q "127.0.10.1:10025" && fail "something listens although the config was broken"

# A policy cache that cannot be opened stops mxlock: running without it
# would ignore the enforce policies stored there.
mxlock_config may
: >"$T/not-a-folder"
sed -i "s|^state_dir: .*|state_dir: $T/not-a-folder|" "$T/mxlock.yaml"
"$MXLOCK_BIN" run -c "$T/mxlock.yaml" >"$T/out4" 2>&1 && fail "run started without its MTA-STS cache"
assert_file_has "$T/out4" "event=sts-cache-failed state_dir=$T/not-a-folder"
ss -Hltn | grep -q "127.0.10.1:10025" && fail "something listens although the cache could not be opened"

"$MXLOCK_BIN" config-test -c "$MXLOCK_TOP/conf/mxlock.yaml" >"$T/out3" 2>&1 ||
	fail "the documented example conf/mxlock.yaml does not load: $(cat "$T/out3")"
echo ok
