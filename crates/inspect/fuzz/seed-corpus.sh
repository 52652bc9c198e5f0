#!/usr/bin/env bash
# Seeds fuzz corpora from the recorded handshakes in ../tests/fixtures: whole conversations
# for `dissector`, single records for `record`, and handshake messages for `handshake`.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/dissector corpus/record corpus/handshake
python3 - <<'PY'
import glob, os, struct
for path in glob.glob("../tests/fixtures/*.hex"):
    name = os.path.basename(path)[:-4]
    chunks = []
    for line in open(path):
        if line[0] not in "cs":
            continue
        tag, data = line.split()
        chunks.append((0 if tag == "c" else 1, bytes.fromhex(data)))
    out = b"".join(bytes([d]) + struct.pack(">H", len(b)) + b for d, b in chunks)
    open(f"corpus/dissector/{name}", "wb").write(out)
    n = 0
    for d, b in chunks:
        while len(b) >= 5:
            length = struct.unpack(">H", b[3:5])[0]
            record, b = b[:5 + length], b[5 + length:]
            open(f"corpus/record/{name}-{n}", "wb").write(record)
            if record[0] == 22:
                open(f"corpus/handshake/{name}-{n}", "wb").write(bytes([1]) + record[5:])
            n += 1
PY
ls corpus/* | head -3
