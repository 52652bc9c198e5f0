#!/usr/bin/env bash
# Regenerates mtls-handshakes.pcap and mtls-handshakes.keys: `mtls serve` (verify_client =
# "on", key log on) on 127.0.0.1, tcpdump on lo, and six clients, one after the other:
#
#   1. curl, TLS 1.3, client certificate alice          completes, GET / -> 200
#   2. curl, TLS 1.2, client certificate alice          completes, GET / -> 200
#   3. curl, TLS 1.3, no client certificate             refused (certificate_required)
#   4. curl, TLS 1.2, no client certificate             refused (certificate_required)
#   5. curl, TLS 1.3, a certificate from another CA     refused (unknown_ca)
#   6. mtls get (rustls), client certificate alice      completes, GET / -> 200, then RST
#
# Usage: crates/capture/tests/data/make-capture.sh [PATH/TO/mtls]   (default target/debug/mtls)
# Needs root (or CAP_NET_RAW) for tcpdump, curl built with OpenSSL, and a free port 18443.
# Every run makes new keys, so the bytes differ; the tests read only what any run shows.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
mtls=$(realpath "${1:-$root/target/debug/mtls}")
port=18443
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

"$mtls" pki init --cn "Capture CA" >/dev/null
"$mtls" pki issue server localhost --san localhost --san 127.0.0.1 >/dev/null
"$mtls" pki issue client alice --org Example >/dev/null
"$mtls" pki --dir other init --cn "Other CA" >/dev/null
"$mtls" pki --dir other issue client mallory >/dev/null

cat >mtls.toml <<EOF
access_log = "off"

[[server]]
listen = "127.0.0.1:$port"
server_name = "localhost"

[server.tls]
certificate = "pki/certs/localhost.crt"
key = "pki/private/localhost.key"
client_ca = "pki/ca.crt"
verify_client = "on"
keylog = "keys.log"

[[server.location]]
path = "/"
return = "200 hello from the capture"
EOF

"$mtls" serve -c mtls.toml --workers 1 2>serve.log &
pids+=($!)
for _ in $(seq 100); do [[ -f mtls.pid ]] && break; sleep 0.1; done
[[ -f mtls.pid ]] || { cat serve.log; exit 1; }

# Started after the gateway is listening, so no readiness probe is in the capture.
: >tcpdump.log
tcpdump -i lo --immediate-mode -U -n -w capture.pcap "tcp port $port" 2>tcpdump.log &
pids+=($!)
for _ in $(seq 100); do grep -q "listening on" tcpdump.log && break; sleep 0.1; done

url="https://localhost:$port/"
curl_=(curl -sS --resolve "localhost:$port:127.0.0.1" --cacert pki/ca.crt -o /dev/null
  -w '%{http_code}\n')
"${curl_[@]}" --tlsv1.3 --cert pki/certs/alice.crt --key pki/private/alice.key "$url"
"${curl_[@]}" --tlsv1.2 --tls-max 1.2 --cert pki/certs/alice.crt --key pki/private/alice.key "$url"
"${curl_[@]}" --tlsv1.3 "$url" || true
"${curl_[@]}" --tlsv1.2 --tls-max 1.2 "$url" || true
"${curl_[@]}" --tlsv1.3 --cert other/certs/mallory.crt --key other/private/mallory.key "$url" || true
"$mtls" get --resolve "localhost:$port:127.0.0.1" --ca pki/ca.crt \
  --cert pki/certs/alice.crt --key pki/private/alice.key -o /dev/null "$url"

sleep 1 # the last FINs
kill -TERM "${pids[1]}"
wait "${pids[1]}" || true
cp capture.pcap "$here/mtls-handshakes.pcap"
cp keys.log "$here/mtls-handshakes.keys"
ls -l "$here"/mtls-handshakes.*
