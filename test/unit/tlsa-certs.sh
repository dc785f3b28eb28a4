#!/bin/bash
# Generates the test PKI that test_tlsa.c checks DANE matching against.
# Usage: tlsa-certs.sh OUTDIR
#
# For every certificate NAME it writes NAME.key (PEM private key), NAME.pem,
# NAME.der (the certificate as DER) and NAME.spki (its SubjectPublicKeyInfo
# as DER, the input of TLSA selector 1). Keys and digests differ at every
# run, so the tests read them from these files and never hold constants.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
mkdir -p "$1"
cd "$1"

ec_key() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out "$1.key" 2>/dev/null
}

rsa_key() {
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
		-out "$1.key" 2>/dev/null
}

# ca_ext NAME [PATHLEN]
ca_ext() {
	{
		if [ $# -gt 1 ]; then
			echo "basicConstraints=critical,CA:TRUE,pathlen:$2"
		else
			echo "basicConstraints=critical,CA:TRUE"
		fi
		echo "keyUsage=critical,keyCertSign,cRLSign"
		echo "subjectKeyIdentifier=hash"
	} >"$1.ext"
}

# leaf_ext NAME [SAN]: a server certificate; without SAN it has none.
leaf_ext() {
	{
		echo "basicConstraints=critical,CA:FALSE"
		echo "keyUsage=critical,digitalSignature,keyEncipherment"
		echo "extendedKeyUsage=serverAuth"
		if [ $# -gt 1 ]; then
			echo "subjectAltName=$2"
		fi
	} >"$1.ext"
}

# Writes NAME.der and NAME.spki from NAME.pem.
export_der() {
	openssl x509 -in "$1.pem" -outform DER -out "$1.der"
	openssl x509 -in "$1.pem" -noout -pubkey |
		openssl pkey -pubin -outform DER -out "$1.spki"
}

# issue NAME CN ISSUER: signs NAME.key with ISSUER's key ("self" for a
# self-signed certificate), extensions from NAME.ext, valid for 30 days.
issue() {
	openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
	if [ "$3" = self ]; then
		openssl x509 -req -in "$1.csr" -signkey "$1.key" -days 30 \
			-extfile "$1.ext" -out "$1.pem" 2>/dev/null
	else
		openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" \
			-set_serial "0x$(openssl rand -hex 8)" -days 30 \
			-extfile "$1.ext" -out "$1.pem" 2>/dev/null
	fi
	export_der "$1"
}

# issue_dated NAME CN ISSUER START END: like issue, with fixed validity
# dates (YYYYMMDDHHMMSSZ). "openssl x509" cannot set dates in the past, so
# this goes through "openssl ca" with a throwaway database.
issue_dated() {
	local sign
	mkdir -p ca-db
	: >ca-db/index.txt
	cat >ca-db/ca.cnf <<-EOF
	[ca]
	default_ca = dated
	[dated]
	database = ca-db/index.txt
	new_certs_dir = ca-db
	rand_serial = yes
	default_md = sha256
	policy = any_name
	unique_subject = no
	[any_name]
	commonName = supplied
	EOF
	openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
	if [ "$3" = self ]; then
		sign=(-selfsign -keyfile "$1.key")
	else
		sign=(-cert "$3.pem" -keyfile "$3.key")
	fi
	openssl ca -batch -notext -config ca-db/ca.cnf "${sign[@]}" \
		-in "$1.csr" -startdate "$4" -enddate "$5" \
		-extfile "$1.ext" -out "$1.pem" 2>/dev/null
	export_der "$1"
}

# The CA that signs most leaves; TLSA 2 x x records point at it.
ec_key ca
ca_ext ca
issue ca "mxlock test CA" self

# The MX host's certificate, and a self-signed certificate re-issued with
# the same key for an unrelated name, expired since 2021: a DANE-EE 3 1 x
# record still matches it, a 3 0 x record of the original does not.
ec_key leaf
leaf_ext leaf "DNS:mx.example.test"
issue leaf mx.example.test ca
cp leaf.key reissued.key
leaf_ext reissued "DNS:unrelated.example.org"
issue_dated reissued unrelated.example.org self \
	20200101000000Z 20210101000000Z

# An RSA leaf: its SPKI DER differs from the PKCS#1 key encoding.
rsa_key rsa
leaf_ext rsa "DNS:mx.example.test"
issue rsa mx.example.test ca

# Leaves for the name checks of DANE-TA.
ec_key other
leaf_ext other "DNS:other.example.org"
issue other other.example.org ca

ec_key wild
leaf_ext wild "DNS:*.example.test"
issue wild "*.example.test" ca

ec_key cnonly
leaf_ext cnonly
issue cnonly mx.example.test ca

ec_key partial
leaf_ext partial "DNS:f*.example.test"
issue partial "f*.example.test" ca

ec_key tldwild
leaf_ext tldwild "DNS:*.test"
issue tldwild "*.test" ca

ec_key multi
# DNS-IDs after other kinds of names, one of them in upper case with a
# final dot.
multi_san="IP:192.0.2.1,email:postmaster@example.test"
multi_san="$multi_san,DNS:mail.example.org,DNS:MX2.Example.TEST."
leaf_ext multi "$multi_san"
issue multi mail.example.org ca

# A leaf for mx.example.test whose validity ended in 2021.
ec_key expired
leaf_ext expired "DNS:mx.example.test"
issue_dated expired mx.example.test ca 20200101000000Z 20210101000000Z

# root -> intermediate -> leaf.
ec_key root
ca_ext root
issue root "mxlock test root" self
ec_key int
ca_ext int
issue int "mxlock test intermediate" root
ec_key intleaf
leaf_ext intleaf "DNS:mx.example.test"
issue intleaf mx.example.test int

# root -> a certificate without CA:TRUE -> leaf: the middle one must not
# be accepted as an issuer.
ec_key notca
leaf_ext notca "DNS:notca.example.test"
issue notca notca.example.test root
ec_key notcaleaf
leaf_ext notcaleaf "DNS:mx.example.test"
issue notcaleaf mx.example.test notca

# A root with path length 0 -> an intermediate -> leaf: the intermediate
# is one CA too many.
ec_key short
ca_ext short 0
issue short "mxlock test root with path length 0" self
ec_key shortint
ca_ext shortint
issue shortint "mxlock test intermediate under path length 0" short
ec_key shortleaf
leaf_ext shortleaf "DNS:mx.example.test"
issue shortleaf mx.example.test shortint
