#!/usr/bin/env python3
"""Open COUNT mutual-TLS connections to 127.0.0.1:PORT, complete each handshake, then hold
them idle until terminated; prints "ready N" once they are all up.

    bench/idle_connections.py PORT COUNT ca.crt client.crt client.key

For bench/compare's "memory per idle TLS connection": the server's RSS is read before and
after, while these connections sit idle.
"""
import asyncio
import ssl
import sys


async def main():
    port, count, ca, cert, key = int(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:6]
    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(cert, key)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols(["http/1.1"])
    held = []
    gate = asyncio.Semaphore(64)

    async def one():
        async with gate:
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", port, ssl=ctx, server_hostname="localhost")
                # TLS 1.3: the server checks our certificate after our Finished; one
                # round trip makes sure it accepted it (and sent its tickets).
                writer.write(b"HEAD /small.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
                await writer.drain()
                await reader.readuntil(b"\r\n\r\n")
                held.append((reader, writer))
            except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
                pass

    await asyncio.gather(*(one() for _ in range(count)))
    print(f"ready {len(held)}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
