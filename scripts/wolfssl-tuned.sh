#!/bin/bash
# Builds wolfSSL from Debian's own source package, at exactly the installed
# libwolfssl35 version (security fixes included), with the x86-64 assembly
# that Debian's build leaves out and only the features mxlock uses. Installs
# a static library into build/wolfssl-tuned/prefix, which `make
# WOLFSSL=tuned` links into build/tuned/mxlock.
#
# apt reads a private source list (deb-src for bookworm, bookworm-updates
# and bookworm-security on deb.debian.org) with private lists and cache
# folders, so the system's apt configuration and state stay untouched.
# Needs dpkg-dev, autoconf, automake and libtool
# (scripts/install-deps.sh --bench). Does nothing when the prefix already
# contains a build of the same version with the same flags.
#
#   scripts/wolfssl-tuned.sh           fetch, build and install if needed
#   scripts/wolfssl-tuned.sh --flags   print the configure flags and exit
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$ROOT/build/wolfssl-tuned
PREFIX=$WORK/prefix
STAMP=$PREFIX/.mxlock-tuned-stamp
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# Assembly: AES-NI with PCLMULQDQ for GCM, and the single-precision math in
# x86-64 assembly for P-256, P-384, P-521 and RSA/DH 2048 to 4096 bits.
ASM_FLAGS=(--enable-intelasm --enable-aesni --enable-sp --enable-sp-asm)

# What mxlock calls, and nothing else:
#  - TLS 1.2 and 1.3, without TLS 1.0 and 1.1, because tls.min_version is
#    1.2 at least.
#  - SNI, session tickets and the client session cache, for resumption with
#    wolfSSL_get1_session and wolfSSL_set_session.
#  - No sessioncerts: mxlock copies the chain the MX host sent in its verify
#    callback, which WOLFSSL_ALWAYS_VERIFY_CB and WOLFSSL_VERIFY_CB_ALL_CERTS
#    (set below, as Debian's build sets them) call for every certificate.
#  - opensslextra: wolfSSL_X509_get_ext_d2i and the GENERAL_NAME stack
#    (subject alternative names), wolfSSL_X509_cmp_time,
#    wolfSSL_get_verify_result and the X509_STORE_CTX fields the verify
#    callback reads.
#  - ECC (NIST curves and X25519) and RSA, AES-GCM, ChaCha20-Poly1305.
# Per held client session (tlsloop hold, wolfSSL 5.5.4): sessioncerts would
# cost about 18 KiB, because every session embeds room for 9 certificates
# of 2 KiB, and opensslextra costs about 6 KiB, mostly the decoded peer
# certificate.
FEATURE_FLAGS=(
	--disable-oldtls --enable-tls13
	--enable-sni --enable-session-ticket
	--enable-opensslextra
	--enable-ecc --enable-curve25519 --enable-rsa
	--enable-aesgcm --enable-chacha --enable-poly1305
	--disable-examples --disable-crypttests --disable-benchmark
)

# A static library, position-independent because Debian's gcc links PIE
# executables. Static linking also keeps the binary away from the system's
# libwolfssl.so.35, which has the same soname.
BUILD_FLAGS=(--enable-static --disable-shared --with-pic)

# The verify callback runs for every certificate of the peer's chain, even
# when it verifies; mxlock's verify callback copies the chain there.
DEFINES=(-DWOLFSSL_ALWAYS_VERIFY_CB -DWOLFSSL_VERIFY_CB_ALL_CERTS)

log() { echo "wolfssl-tuned: $*" >&2; }
die() { log "$*"; exit 1; }

configure_flags() {
	printf '%s\n' "${ASM_FLAGS[@]}" "${FEATURE_FLAGS[@]}" "${BUILD_FLAGS[@]}"
}

installed_version() {
	dpkg-query -W -f='${Version}' libwolfssl35 2>/dev/null ||
		die "libwolfssl35 is not installed; run scripts/install-deps.sh first"
}

# Writes the private source list: the same archives and key as
# /etc/apt/sources.list.d/debian.sources, source packages only.
write_source_list() {
	local list=$WORK/apt/sources.list
	mkdir -p "$WORK/apt/lists/partial" "$WORK/apt/cache/archives/partial"
	{
		echo "deb-src [signed-by=$KEYRING] http://deb.debian.org/debian bookworm main"
		echo "deb-src [signed-by=$KEYRING] http://deb.debian.org/debian bookworm-updates main"
		echo "deb-src [signed-by=$KEYRING] http://deb.debian.org/debian-security bookworm-security main"
	} > "$list"
}

private_apt() {
	apt-get -q \
		-o Dir::Etc::SourceList="$WORK/apt/sources.list" \
		-o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State::Lists="$WORK/apt/lists" \
		-o Dir::Cache="$WORK/apt/cache" \
		"$@"
}

# Downloads wolfssl=$1 and unpacks it with Debian's patches applied; prints
# the source folder.
fetch_source() {
	local version=$1 upstream dir
	upstream=${version%%-*}
	upstream=${upstream#*:}
	dir=$WORK/src/wolfssl-$upstream

	write_source_list
	private_apt update >&2 || die "apt-get update with $WORK/apt/sources.list failed"
	rm -rf "$WORK/src"
	mkdir -p "$WORK/src"
	# apt downloads as the _apt user when it can write the folder.
	if [ "$(id -u)" -eq 0 ] && id _apt > /dev/null 2>&1; then
		chown _apt "$WORK/src"
	fi
	(cd "$WORK/src" && private_apt source --download-only "wolfssl=$version" >&2) ||
		die "cannot download the source package wolfssl=$version, the installed" \
			"libwolfssl35 version; check that the Debian archive still carries it"
	(cd "$WORK/src" && dpkg-source -x "wolfssl_${version#*:}.dsc" "$dir" >&2) ||
		die "dpkg-source could not unpack wolfssl_${version#*:}.dsc"
	echo "$dir"
}

build_install() {
	local dir=$1
	local -a flags
	mapfile -t flags < <(configure_flags)
	# Debian's own compiler and linker flags, hardening included, as
	# debian/rules sets them.
	eval "$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --export=sh)"
	export CPPFLAGS="${CPPFLAGS:-} ${DEFINES[*]}"

	cd "$dir"
	# The source package ships configure.ac only.
	if [ ! -x configure ]; then
		./autogen.sh > "$WORK/autogen.log" 2>&1 || die "autogen.sh failed; see $WORK/autogen.log"
	fi
	rm -rf "$PREFIX"
	./configure --prefix="$PREFIX" "${flags[@]}" > "$WORK/configure.log" 2>&1 ||
		die "configure failed; see $WORK/configure.log"
	make -j2 > "$WORK/make.log" 2>&1 || die "make failed; see $WORK/make.log"
	make install > "$WORK/install.log" 2>&1 || die "make install failed; see $WORK/install.log"
}

main() {
	local version stamp dir tool

	if [ "${1:-}" = "--flags" ]; then
		configure_flags
		exit 0
	fi
	[ $# -eq 0 ] || die "usage: scripts/wolfssl-tuned.sh [--flags]"

	version=$(installed_version)
	stamp="version=$version flags=$(configure_flags | tr '\n' ' ') defines=${DEFINES[*]}"
	if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$stamp" ]; then
		exit 0
	fi
	for tool in dpkg-source autoreconf automake libtoolize dpkg-buildflags; do
		command -v "$tool" > /dev/null ||
			die "$tool is missing; run scripts/install-deps.sh --bench"
	done

	log "building wolfSSL $version from Debian's source package in $WORK"
	dir=$(fetch_source "$version")
	build_install "$dir"
	echo "$stamp" > "$STAMP"
	log "installed into $PREFIX"
}

main "$@"
