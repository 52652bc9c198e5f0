"""A TLS client on Python's ssl (OpenSSL underneath):

    python_client.py PORT VERSION CA [--cert CHAIN KEY] [--keylog FILE] [--half-close]

connects to 127.0.0.1:PORT with the server name localhost, TLS VERSION only (1.2 or 1.3),
trusting CA, sends one HTTP/1.1 request and prints the answer's status line. --keylog
writes the session keys (ssl's keylog_filename, the SSLKEYLOGFILE format). On a TLS error
it prints it and exits 1.

Without --half-close it is written as an application would (wrap_socket). With it, the
request leaves in the same write as the client's last handshake flight and the sending
side is shut down (FIN) straight after, before anything is read: a client with nothing
more to say, whose FIN always reaches the server before the server's answer to its
certificate. That needs ssl's memory BIOs, so the bytes on the wire are ours to order."""
import argparse
import socket
import ssl
import sys

REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("version", choices=["1.2", "1.3"])
    parser.add_argument("ca")
    parser.add_argument("--cert", nargs=2, metavar=("CHAIN", "KEY"))
    parser.add_argument("--keylog")
    parser.add_argument("--half-close", action="store_true")
    args = parser.parse_args()

    context = ssl.create_default_context(cafile=args.ca)
    version = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[args.version]
    context.minimum_version = context.maximum_version = version
    if args.cert:
        context.load_cert_chain(*args.cert)
    if args.keylog:
        context.keylog_filename = args.keylog
    try:
        with socket.create_connection(("127.0.0.1", args.port), timeout=30) as raw:
            if args.half_close:
                answer = half_close(context, raw)
            else:
                answer = plain(context, raw)
    except (ssl.SSLError, OSError) as e:
        print(f"TLS error: {e}", flush=True)
        sys.exit(1)
    print(answer.split(b"\r\n", 1)[0].decode())


def plain(context, raw):
    with context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(REQUEST)
        answer = b""
        while data := tls.recv(4096):
            answer += data
        return answer


def half_close(context, raw):
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            raw.sendall(outgoing.read())
            data = raw.recv(65536)
            if not data:
                raise OSError("the server closed the connection during the handshake")
            incoming.write(data)
    tls.write(REQUEST)
    # Corked, the flight, the request and the FIN leave in one segment.
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
    raw.sendall(outgoing.read())
    raw.shutdown(socket.SHUT_WR)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
    answer = b""
    while True:
        try:
            data = tls.read(4096)
            if not data:
                # ssl's SSLObject reads b"" once the server's close_notify has come.
                return answer
            answer += data
            continue
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            return answer
        data = raw.recv(65536)
        if not data:
            return answer
        incoming.write(data)


main()
