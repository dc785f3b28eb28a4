#!/bin/sh
# Creates the test PKI with the openssl command: a CA and server (leaf)
# certificates signed by it. Every leaf gets NAME.key, NAME.crt and
# NAME.chain.pem (leaf then CA), the chain an MX host sends.
#
#   pki.sh ca PKI_DIR                       new CA: ca.key, ca.crt
#   pki.sh leaf PKI_DIR NAME ec|rsa [DNS...] leaf for NAME; the DNS names go in
#                                           subjectAltName (default: NAME)
#
# Certificates are valid from now for 30 days. Keys are new on every run, so
# tests must read digests from these files, never from constants.
set -eu

DAYS=30

usage() {
    echo "usage: pki.sh ca PKI_DIR | pki.sh leaf PKI_DIR NAME ec|rsa [DNS...]" >&2
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

[ $# -ge 2 ] || usage
case "$1" in
ca) make_ca "$2" ;;
leaf) [ $# -ge 4 ] || usage; shift; make_leaf "$@" ;;
*) usage ;;
esac
