"""A real mutual-TLS handshake between Python's ssl server and client (OpenSSL underneath),
using certificates made by `mtls pki`. Usage:
    python_mtls.py CA SERVER_CHAIN SERVER_KEY CLIENT_CHAIN CLIENT_KEY
Prints what each side saw of the other; exits non-zero on any failure."""
import socket
import ssl
import sys
import threading

ca, server_chain, server_key, client_chain, client_key = sys.argv[1:6]

server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca)
server_ctx.verify_mode = ssl.CERT_REQUIRED
server_ctx.load_cert_chain(server_chain, server_key)

client_ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
client_ctx.load_cert_chain(client_chain, client_key)

listener = socket.create_server(("127.0.0.1", 0))
port = listener.getsockname()[1]
errors = []


def name(cert):
    parts = [f"{k}={v}" for rdn in cert["subject"] for (k, v) in rdn]
    short = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU"}
    return ", ".join(short.get(p.split("=")[0], p.split("=")[0]) + "=" + p.split("=", 1)[1] for p in parts)


def serve():
    try:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            peer = tls.getpeercert()
            # CN first, as the test expects, whatever order the subject holds.
            fields = dict(n.split("=", 1) for n in name(peer).split(", "))
            print(f"server saw client: CN={fields['CN']}, O={fields.get('O')}, OU={fields.get('OU')}", flush=True)
            data = tls.recv(100)
            tls.sendall(b"hello over mutual TLS" if data == b"ping" else b"bad request")
    except Exception as e:  # reported by the main thread
        errors.append(e)


thread = threading.Thread(target=serve)
thread.start()
with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
    with client_ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        print(f"client saw server: {name(tls.getpeercert())} ({tls.version()}, {tls.cipher()[0]})", flush=True)
        tls.sendall(b"ping")
        print(f"reply: {tls.recv(100).decode()}", flush=True)
thread.join(10)
if errors:
    print(f"server error: {errors[0]}", file=sys.stderr)
    sys.exit(1)
