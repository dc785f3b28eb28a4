#!/bin/sh
# Creates the test PKI with the openssl command: a CA and server (leaf)
# certificates signed by it. Every leaf gets NAME.key, NAME.crt and
# NAME.chain.pem (leaf then CA), the chain an MX host sends.
#
#   pki.sh ca PKI_DIR                       new CA: ca.key, ca.crt
#   pki.sh leaf PKI_DIR NAME ec|rsa [DNS...] leaf for NAME; the DNS names go in
#                                           subjectAltName (default: NAME)
#   pki.sh selfsigned PKI_DIR NAME KEY_FILE NOT_BEFORE NOT_AFTER [DNS...]
#       self-signed leaf (CA:FALSE) for NAME over an existing key, valid
#       between the two dates (YYYYMMDDHHMMSSZ), for example an expired
#       re-issue of another leaf's key. NAME.key is a copy of KEY_FILE, and
#       NAME.chain.pem contains the certificate alone.
#   pki.sh tlsa PKI_DIR NAME SELECTOR MATCHING_TYPE
#       prints the TLSA certificate association data of NAME.crt (ca for the
#       CA) as hex: SELECTOR 0 full certificate, 1 SubjectPublicKeyInfo;
#       MATCHING_TYPE 0 the data itself, 1 SHA-256, 2 SHA-512
#
# CA and leaf certificates are valid from now for 30 days. Keys are new on
# every run, so tests must read digests from these files, never from
# constants.
set -eu

DAYS=30

usage() {
    echo "usage: pki.sh ca PKI_DIR | pki.sh leaf PKI_DIR NAME ec|rsa [DNS...]" >&2
    echo "       pki.sh selfsigned PKI_DIR NAME KEY_FILE NOT_BEFORE NOT_AFTER [DNS...]" >&2
    echo "       pki.sh tlsa PKI_DIR NAME 0|1 0|1|2" >&2
    exit 2
}

# Writes a private key of the given type (ec: P-256, rsa: 2048 bits).
new_key() {
    case "$1" in
    ec) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$2" ;;
    rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$2" ;;
    *) echo "pki.sh: invalid key type '$1' (expected ec or rsa)" >&2; exit 2 ;;
    esac 2>/dev/null
}

# A minimal openssl configuration, so the system's openssl.cnf adds nothing.
write_config() {
    cat > "$1" <<'CNF'
[req]
distinguished_name = dn
[dn]
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
CNF
}

make_ca() {
    dir=$1
    mkdir -p "$dir"
    write_config "$dir/openssl.cnf"
    new_key ec "$dir/ca.key"
    openssl req -x509 -new -config "$dir/openssl.cnf" -extensions ca_ext \
        -key "$dir/ca.key" -subj "/O=mxlock test/CN=mxlock test CA" \
        -days "$DAYS" -sha256 -out "$dir/ca.crt"
}

make_leaf() {
    dir=$1 name=$2 keytype=$3
    shift 3
    [ $# -gt 0 ] || set -- "$name"
    san=""
    for dns in "$@"; do
        san="${san:+$san,}DNS:$dns"
    done
    usage_bits=digitalSignature
    [ "$keytype" = rsa ] && usage_bits=digitalSignature,keyEncipherment

    # openssl req -x509 -CA would quietly mark the leaf CA:TRUE, so sign a
    # request with an explicit extension file instead.
    cat > "$dir/$name.ext" <<EXT
subjectAltName = $san
basicConstraints = critical,CA:FALSE
keyUsage = critical,$usage_bits
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EXT
    new_key "$keytype" "$dir/$name.key"
    openssl req -new -config "$dir/openssl.cnf" -key "$dir/$name.key" \
        -subj "/O=mxlock test/CN=$name" -out "$dir/$name.csr"
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" \
        -CAkey "$dir/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
        -days "$DAYS" -sha256 -extfile "$dir/$name.ext" \
        -out "$dir/$name.crt" 2>/dev/null
    cat "$dir/$name.crt" "$dir/ca.crt" > "$dir/$name.chain.pem"
    rm -f "$dir/$name.csr"
}

# Issues a self-signed certificate with explicit validity dates. Only
# "openssl ca" accepts dates in the past, so it runs over a throw-away
# database in a temporary folder.
make_selfsigned() {
    dir=$1 name=$2 keyfile=$3 not_before=$4 not_after=$5
    shift 5
    [ $# -gt 0 ] || set -- "$name"
    [ -r "$keyfile" ] || { echo "pki.sh: key file '$keyfile' not found" >&2; exit 2; }
    san=""
    for dns in "$@"; do
        san="${san:+$san,}DNS:$dns"
    done

    work=$(mktemp -d)
    : > "$work/index.txt"
    openssl rand -hex 8 > "$work/serial"
    cat > "$work/ca.cnf" <<CNF
[ca]
default_ca = selfsign
[selfsign]
database = $work/index.txt
new_certs_dir = $work
serial = $work/serial
default_md = sha256
policy = names
unique_subject = no
copy_extensions = none
[names]
organizationName = optional
commonName = supplied
[req]
distinguished_name = dn
[dn]
CNF
    cat > "$work/ext" <<EXT
subjectAltName = $san
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
EXT
    cp "$keyfile" "$dir/$name.key"
    openssl req -new -config "$work/ca.cnf" -key "$dir/$name.key" \
        -subj "/O=mxlock test/CN=$name" -out "$work/req.csr"
    openssl ca -batch -notext -config "$work/ca.cnf" -selfsign \
        -keyfile "$dir/$name.key" -in "$work/req.csr" \
        -startdate "$not_before" -enddate "$not_after" \
        -extfile "$work/ext" -out "$dir/$name.crt" 2>"$work/ca.log" \
        || { cat "$work/ca.log" >&2; rm -rf "$work"; exit 1; }
    cp "$dir/$name.crt" "$dir/$name.chain.pem"
    rm -rf "$work"
}

# Prints the association data of a TLSA record for NAME.crt (RFC 6698
# section 2.1): the DER certificate or SubjectPublicKeyInfo, as hex or hashed.
print_tlsa_data() {
    dir=$1 name=$2 selector=$3 matching=$4
    cert=$dir/$name.crt
    [ -r "$cert" ] || { echo "pki.sh: certificate '$cert' not found" >&2; exit 2; }
    case "$selector" in
    0) der() { openssl x509 -in "$cert" -outform DER; } ;;
    1) der() { openssl x509 -in "$cert" -noout -pubkey | openssl pkey -pubin -outform DER; } ;;
    *) echo "pki.sh: invalid selector '$selector' (expected 0 or 1)" >&2; exit 2 ;;
    esac
    case "$matching" in
    0) der | od -An -v -tx1 | tr -d ' \n' ;;
    1) der | sha256sum | cut -d' ' -f1 | tr -d '\n' ;;
    2) der | sha512sum | cut -d' ' -f1 | tr -d '\n' ;;
    *) echo "pki.sh: invalid matching type '$matching' (expected 0, 1 or 2)" >&2; exit 2 ;;
    esac
    echo
}

[ $# -ge 2 ] || usage
case "$1" in
ca) make_ca "$2" ;;
leaf) [ $# -ge 4 ] || usage; shift; make_leaf "$@" ;;
selfsigned) [ $# -ge 6 ] || usage; shift; make_selfsigned "$@" ;;
tlsa) [ $# -eq 5 ] || usage; shift; print_tlsa_data "$@" ;;
*) usage ;;
esac
