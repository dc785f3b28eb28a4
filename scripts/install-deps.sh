#!/bin/sh
# Installs the Debian packages that building, testing and the demo need.
# Packages come from the configured Debian archive only. Daemons that the
# packages ship (NSD, Unbound, nginx, Postfix) must not start: the test network
# starts its own private instances on 127.x addresses.
#
#   scripts/install-deps.sh           build, test and demo packages
#   scripts/install-deps.sh --bench   those plus the benchmark's (make bench)
set -eu

BUILD_PKGS="build-essential pkg-config clang-14 libclang-rt-14-dev libuv1-dev libwolfssl-dev libc-ares-dev libyaml-dev libsqlite3-dev libhttp-parser-dev libcmocka-dev"
NET_PKGS="nftables iptables nsd unbound ldnsutils bind9-dnsutils postfix swaks libnet-ssleay-perl python3-aiosmtpd openssl iproute2 procps curl util-linux"
# The benchmark's rival relays (HAProxy, stunnel, Postfix with the MTA-STS
# resolver), the OpenSSL headers of its TLS sink, and the tools that build
# the tuned wolfSSL from Debian's source package.
BENCH_PKGS="haproxy stunnel4 libssl-dev postfix-mta-sts-resolver dpkg-dev autoconf automake libtool"

case "${1:-}" in
"") BENCH_PKGS="" ;;
--bench) ;;
*) echo "usage: scripts/install-deps.sh [--bench]" >&2; exit 2 ;;
esac

missing=""
for pkg in $BUILD_PKGS $NET_PKGS $BENCH_PKGS; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $pkg"
    fi
done
if [ -z "$missing" ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages:$missing; run as root to install them" >&2
    exit 1
fi

# Postfix asks configuration questions unless told there is nothing to set up.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections

# On a systemd host, apt would start the packaged daemons, which then take
# ports 53, 25 and 443 on every address. policy-rc.d forbids that for this run.
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q || echo "install-deps: apt-get update failed; trying the cached package lists" >&2
status=0
apt-get install -y -q --no-install-recommends $missing || status=$?

if [ "$created_policy" -eq 1 ]; then
    rm -f /usr/sbin/policy-rc.d
fi
exit $status
