#!/usr/bin/env bash
# Seeds the `pem` corpus with real files made by `mtls pki` in a temporary directory: CA,
# intermediate and leaf certificates and chains for every key type, keys, a CSR, a CRL with
# an entry, PKCS#12 bundles (modern and --legacy) and a JKS keystore (password "changeit" as
# in the target), each PEM file also split into its sections as raw DER. With openssl on the
# PATH, PKCS#1 and SEC1 keys and PKCS#7 bundles (PEM and DER) too.
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../../.. && pwd)
out=$PWD/corpus/pem
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --quiet --manifest-path "$root/Cargo.toml" --bin mtls
mtls() { cargo run --quiet --manifest-path "$root/Cargo.toml" --bin mtls -- "$@" >/dev/null; }
export MTLS_P12_PASSWORD=changeit

cd "$work"
mtls pki --dir ec init --cn "Seed CA" --intermediate
mtls pki --dir ec issue server localhost --san localhost --san 127.0.0.1 --san ::1 \
  --san uri:spiffe://seed.test/svc --san email:ops@seed.test --crl-url http://seed.test/ca.crl \
  --ocsp-url http://seed.test/ocsp
mtls pki --dir ec issue client alice --org Example --ou Payments --key-type p384
mtls pki --dir ec issue client bob --key-type ed25519
mtls pki --dir ec revoke bob --reason keyCompromise
mtls pki --dir ec export localhost --p12 --password-env MTLS_P12_PASSWORD
mtls pki --dir ec export alice --p12 --legacy --password-env MTLS_P12_PASSWORD
mtls pki --dir ec export alice --jks --trust ec/ca.crt --password-env MTLS_P12_PASSWORD
mtls pki --dir rsa init --cn "RSA Seed CA" --key-type rsa2048
mtls pki --dir rsa issue client carol --key-type rsa2048
mtls pki --dir rsa export carol --p12 --password-env MTLS_P12_PASSWORD
mtls pki --dir csr csr dave --san dave.test --out-dir csr
if command -v openssl >/dev/null; then
  openssl pkey -in rsa/private/carol.key -traditional -out carol.pkcs1.key
  openssl pkey -in ec/private/localhost.key -traditional -out localhost.sec1.key
  openssl crl2pkcs7 -in ec/crl.pem -certfile ec/certs/localhost.chain.pem -out chain.p7b
  openssl crl2pkcs7 -nocrl -certfile ec/certs/alice.chain.pem -outform DER -out alice.p7c
fi

python3 - "$out" <<'PY'
import base64, hashlib, os, re, sys

out = sys.argv[1]
def save(data):
    open(f"{out}/{hashlib.sha1(data).hexdigest()}", "wb").write(data)

for top, _, files in os.walk("."):
    for name in files:
        if name.endswith((".json", ".txt")):
            continue
        data = open(os.path.join(top, name), "rb").read()
        save(data)
        for body in re.findall(rb"-----BEGIN [^-]+-----(.*?)-----END", data, re.S):
            save(base64.b64decode(b"".join(body.split())))
PY
echo "corpus/pem: $(ls "$out" | wc -l) files"
