#!/usr/bin/env python3
"""Full mutual-TLS handshakes at a fixed rate, with Python's ssl (OpenSSL): an independent
client for bench/compare's partial-load curve (`--only curve`).

    paced_handshakes.py PORT RATE SECONDS PROCS CA CERT KEY [PATH]

PROCS processes share RATE connections per second, each keeping its own schedule (slot i
of a process is due at start + i * PROCS / RATE). A connection: TCP connect, TLS 1.3
handshake with the client certificate, no session resumption, `GET PATH` with
`Connection: close`, read to the end, close. A process that falls behind its schedule does
not burst to catch up: late slots are counted and the next one starts at once, so the rate
reached is printed, not assumed. Prints one line: `done N failed F late L seconds S`.
"""

import multiprocessing
import socket
import ssl
import sys
import time


def worker(port, rate, seconds, ca, cert, key, path, start, out):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(ca)
    ctx.load_cert_chain(cert, key)
    request = f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode()
    interval = 1.0 / rate
    done = failed = late = 0
    slot = 0
    end = start + seconds
    while True:
        due = start + slot * interval
        if due >= end:
            break
        now = time.monotonic()
        if now < due:
            time.sleep(due - now)
        elif now - due > interval:
            late += 1
        slot += 1
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                # A fresh session every time: nothing is stored to resume.
                with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                    tls.sendall(request)
                    while tls.recv(65536):
                        pass
            done += 1
        except (OSError, ssl.SSLError):
            failed += 1
    out.put((done, failed, late))


def main():
    port, rate, seconds, procs = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    ca, cert, key = sys.argv[5:8]
    path = sys.argv[8] if len(sys.argv) > 8 else "/small.txt"
    out = multiprocessing.Queue()
    start = time.monotonic() + 0.2
    running = [
        multiprocessing.Process(target=worker, args=(port, rate / procs, seconds, ca, cert, key, path,
                                                     start + i / rate, out))
        for i in range(procs)
    ]
    for p in running:
        p.start()
    totals = [0, 0, 0]
    for _ in running:
        for i, v in enumerate(out.get()):
            totals[i] += v
    for p in running:
        p.join()
    elapsed = time.monotonic() - start
    print(f"done {totals[0]} failed {totals[1]} late {totals[2]} seconds {elapsed:.2f}", flush=True)


if __name__ == "__main__":
    main()
