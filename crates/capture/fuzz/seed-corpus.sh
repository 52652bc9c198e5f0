#!/usr/bin/env bash
# Seeds the fuzz corpora from the committed capture ../tests/data/mtls-handshakes.pcap (six
# mTLS handshakes with `mtls serve`; its key log is built into the `trace` target):
#   reader      the capture as pcap, gzip-compressed, and (when editcap is installed) as
#               pcapng, with the key log injected, and as nanosecond pcap
#   trace       the selector byte for Ethernet and the pcap records: the whole capture and
#               each connection alone
#   reassembly  each connection in the target's own segment format, payloads cut into
#               pieces of at most 255 bytes and sequence numbers rebased near the base
set -euo pipefail
cd "$(dirname "$0")"
data=../tests/data
mkdir -p corpus/reader corpus/trace corpus/reassembly
cp "$data/mtls-handshakes.pcap" corpus/reader/pcap
gzip -c "$data/mtls-handshakes.pcap" >corpus/reader/pcap.gz
if command -v editcap >/dev/null; then
  editcap -F pcapng --inject-secrets "tls,$data/mtls-handshakes.keys" \
    "$data/mtls-handshakes.pcap" corpus/reader/pcapng-keylog
  editcap -F nsecpcap "$data/mtls-handshakes.pcap" corpus/reader/nsecpcap
fi
python3 - "$data/mtls-handshakes.pcap" <<'PY'
import struct, sys

raw = open(sys.argv[1], "rb").read()
assert raw[:4] == b"\xd4\xc3\xb2\xa1" and struct.unpack("<I", raw[20:24])[0] == 1, \
    "expected a little-endian Ethernet pcap"
records, at = [], 24
while at + 16 <= len(raw):
    caplen = struct.unpack("<I", raw[at + 8:at + 12])[0]
    records.append(raw[at:at + 16 + caplen])
    at += 16 + caplen

def tcp(record):
    """(src, dst, seq, flags, ack, payload) of an Ethernet/IPv4/TCP frame."""
    frame = record[16:]
    ip = frame[14:]
    ihl = (ip[0] & 15) * 4
    total = struct.unpack(">H", ip[2:4])[0]
    seg = ip[ihl:total]
    sport, dport, seq, ack = struct.unpack(">HHII", seg[:12])
    return sport, dport, seq, seg[13], ack, seg[(seg[12] >> 4) * 4:]

SERVER_PORT = 18443
connections = {}
for record in records:
    sport, dport, *_ = tcp(record)
    connections.setdefault(sport if dport == SERVER_PORT else dport, []).append(record)

# trace: selector 0 picks Ethernet.
open("corpus/trace/all", "wb").write(b"\0" + b"".join(records))
for n, (port, recs) in enumerate(sorted(connections.items())):
    open(f"corpus/trace/connection-{n}", "wb").write(b"\0" + b"".join(recs))

# reassembly: header = max_buffered/8, limits, base, mode 0 (payload bytes in the input).
base = 0xFFFF_F000  # near the wrap
for n, (port, recs) in enumerate(sorted(connections.items())):
    out = bytearray([64, 0x0B]) + struct.pack(">I", base) + b"\0\0"
    # Each side's sequence space starts at a different distance from the base; the SYNs
    # come first, so both initial sequence numbers are known before any acknowledgment.
    isn = {dport == SERVER_PORT: seq for sport, dport, seq, flags, _, _ in map(tcp, recs)
           if flags & 0x02}
    def rel(client, seq):
        return (seq - isn[client] + (0x100 if client else 0x8000)) & 0xFFFF
    for record in recs:
        sport, dport, seq, flags, ack, payload = tcp(record)
        client = dport == SERVER_PORT
        # endpoint 0 is the client, 1 the server
        who = 0 | (1 << 2) if client else 1 | (0 << 2)
        at = rel(client, seq)
        acked = rel(not client, ack) if flags & 0x10 else 0
        pieces = [payload[i:i + 255] for i in range(0, len(payload), 255)] or [b""]
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            f = flags & 0x16 if not last else flags & 0x17  # FIN only on the last piece
            out += bytes([who, f]) + struct.pack(">HH", at, acked) + bytes([len(piece)]) + piece
            at += len(piece) + (1 if flags & 0x02 else 0)
    open(f"corpus/reassembly/connection-{n}", "wb").write(out)
PY
ls corpus/* | head -20
