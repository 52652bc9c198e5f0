#!/usr/bin/env bash
# mtls trace against tshark on the same capture: about 6,000 full mutual-TLS handshakes
# (TLS 1.3, client certificate, GET, close) against nginx, captured with tcpdump on
# loopback. Prints the capture's size and, for each reader, the median of 5 runs: wall and
# CPU time, MB/s and connections/s.
#
#   bench/trace_speed.sh [HANDSHAKES]      (default 6000; needs nginx, tcpdump, tshark)
#   CAPTURE=cap.pcap bench/trace_speed.sh  (time the readers on a capture made before;
#                                            KEEP=1 keeps this run's capture)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n=${1:-6000}
cargo build --release --quiet
mtls=$PWD/target/release/mtls
work=$(mktemp -d /tmp/mtls-trace-speed.XXXX)
# nginx's worker runs as an unprivileged user and must read www/.
chmod 755 "$work"
cd "$work"
if [ -n "${CAPTURE:-}" ]; then
  cp "$CAPTURE" cap.pcap
else
  "$mtls" pki init --cn "Speed CA" >/dev/null
  "$mtls" pki issue server localhost --san localhost --san 127.0.0.1 >/dev/null
  "$mtls" pki issue client alice >/dev/null
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p logs www && echo hello > www/index.html
  cat > nginx.conf <<CONF
daemon off; worker_processes 1; pid $work/nginx.pid; error_log $work/logs/error.log;
events {}
http { access_log off;
  server { listen 127.0.0.1:$port ssl; ssl_protocols TLSv1.3;
    ssl_certificate $work/pki/certs/localhost.chain.pem; ssl_certificate_key $work/pki/private/localhost.key;
    ssl_client_certificate $work/pki/ca.crt; ssl_verify_client on; root $work/www; } }
CONF
  nginx -c "$work/nginx.conf" -p "$work" > logs/nginx.out 2>&1 < /dev/null &
  nginx_pid=$!
  tcpdump -i lo --immediate-mode -U -n -B 65536 -w cap.pcap "tcp port $port" 2> tcpdump.log < /dev/null &
  dump_pid=$!
  until grep -q "listening on" tcpdump.log; do sleep 0.1; done
  sleep 0.5
  "$mtls" bench --mode handshakes -n "$n" -c 8 --ca pki/ca.crt --cert pki/certs/alice.crt \
    --key pki/private/alice.key --resolve "localhost:$port:127.0.0.1" "https://localhost:$port/index.html" >/dev/null
  sleep 1
  kill -TERM "$dump_pid" 2>/dev/null || true; wait "$dump_pid" || true
  kill -QUIT "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" || true
fi
mb=$(python3 -c "import os; print(os.path.getsize('cap.pcap')/1e6)")
packets=$(tshark -r cap.pcap -T fields -e frame.number 2>/dev/null | wc -l)
echo "capture: $n handshakes, $packets packets, ${mb} MB"
run() {  # name, command...: the median of 5 runs, by wall time, with its CPU time
  local name=$1; shift
  local lines=()
  for _ in 1 2 3 4 5; do
    local TIMEFORMAT='%R %U %S'
    lines+=("$( { time "$@" > /dev/null 2>&1; } 2>&1 )")
  done
  local median
  median=$(printf '%s\n' "${lines[@]}" | sort -n | sed -n 3p)
  read -r wall user sys <<< "$median"
  python3 - "$name" "$wall" "$user" "$sys" "$mb" "$n" <<'PY'
import sys
name, wall, user, sys_, mb, n = sys.argv[1], *map(float, sys.argv[2:])
cpu = user + sys_
print(f"{name:<52} {wall:6.3f} s wall {cpu:6.3f} s CPU  {mb / wall:6.1f} MB/s  "
      f"{mb / cpu:6.1f} MB/CPU-s  {n / wall:9.0f} conn/s")
PY
}
run "mtls trace (summary of every connection)" "$mtls" trace cap.pcap
run "mtls trace -V (every record and message)" "$mtls" trace -V cap.pcap
run "tshark -Y tls.handshake.type==1 -e sni -e ja3" tshark -r cap.pcap -Y 'tls.handshake.type==1' -T fields -e tls.handshake.extensions_server_name -e tls.handshake.ja3
run "tshark -Y tls -V" tshark -r cap.pcap -Y tls -V
[ -n "${KEEP:-}" ] && echo "kept: $work" || rm -rf "$work"
