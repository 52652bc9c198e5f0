"""A TCP server that reads what a client sends first (a TLS ClientHello) and answers with a
reset (SO_LINGER 0, then close): what a firewall, a load balancer refusing the name, or a
server crashing on the ClientHello looks like on the wire. Usage: reset_after_hello.py PORT
(on 127.0.0.1; one connection at a time, forever)."""
import socket
import struct
import sys

listener = socket.create_server(("127.0.0.1", int(sys.argv[1])))
while True:
    connection, _ = listener.accept()
    connection.settimeout(30)
    try:
        connection.recv(65536)
    except OSError:
        pass
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()
