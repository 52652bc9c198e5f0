// A Java TLS server that needs a client certificate (SSLEngine.setNeedClientAuth) and,
// when a client sends none, closes the connection without sending its alert: what some
// Java servers do (a reset, or a close before the alert is flushed). SSLEngine is used,
// not SSLServerSocket, because the socket flavour always writes the alert first.
//
//   java NeedClientAuth.java P12 P12_PASSWORD CA_PEM PORT/PROTOCOL/close|reset ...
//
// One listener on 127.0.0.1 for each PORT/... (all bound before any is served, so one
// that accepts means all do; one JVM, as each takes seconds to start). PROTOCOL is
// TLSv1.2 or TLSv1.3. A client with a certificate from CA_PEM gets "HTTP/1.1 200 OK ...
// hello" and a close_notify. Each listener serves one connection at a time, forever.

import java.io.EOFException;
import java.io.FileInputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.util.ArrayList;
import java.util.List;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLException;
import javax.net.ssl.TrustManagerFactory;

public class NeedClientAuth {
    public static void main(String[] args) throws Exception {
        char[] password = args[1].toCharArray();
        KeyStore keys = KeyStore.getInstance("PKCS12");
        try (InputStream in = new FileInputStream(args[0])) {
            keys.load(in, password);
        }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(keys, password);
        KeyStore trust = KeyStore.getInstance("PKCS12");
        trust.load(null, null);
        try (InputStream in = new FileInputStream(args[2])) {
            trust.setCertificateEntry("ca", CertificateFactory.getInstance("X.509").generateCertificate(in));
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);

        List<Thread> threads = new ArrayList<>();
        for (int i = 3; i < args.length; i++) {
            String[] spec = args[i].split("/");
            ServerSocket server = new ServerSocket(
                    Integer.parseInt(spec[0]), 50, InetAddress.getByName("127.0.0.1"));
            threads.add(new Thread(() -> listen(server, context, spec[1], spec[2].equals("reset"))));
        }
        for (Thread thread : threads) {
            thread.start();
        }
        for (Thread thread : threads) {
            thread.join();
        }
    }

    static void listen(ServerSocket server, SSLContext context, String protocol, boolean reset) {
        while (true) {
            try (Socket socket = server.accept()) {
                SSLEngine engine = context.createSSLEngine();
                engine.setUseClientMode(false);
                engine.setNeedClientAuth(true);
                engine.setEnabledProtocols(new String[] {protocol});
                try {
                    serve(engine, socket);
                } catch (SSLException e) {
                    // The alert the engine has ready is never wrapped: the client hears
                    // nothing but the close (or, with SO_LINGER 0, the reset).
                    System.out.println(protocol + ": refused without an alert: " + e.getMessage());
                    if (reset) {
                        socket.setSoLinger(true, 0);
                    } else {
                        // A clean close: FIN, then read what the client still sends (its
                        // request), so that closing with unread data sends no reset.
                        socket.shutdownOutput();
                        socket.setSoTimeout(2000);
                        InputStream in = socket.getInputStream();
                        byte[] sink = new byte[4096];
                        while (in.read(sink) >= 0) {
                        }
                    }
                } catch (EOFException e) {
                    System.out.println(protocol + ": the client left");
                }
            } catch (Exception e) {
                System.out.println(protocol + ": " + e);
            }
        }
    }

    /** The handshake, then one answer to whatever the client sends, then close_notify. */
    static void serve(SSLEngine engine, Socket socket) throws Exception {
        Pipe pipe = new Pipe(engine, socket);
        engine.beginHandshake();
        while (engine.getHandshakeStatus() != SSLEngineResult.HandshakeStatus.FINISHED
                && engine.getHandshakeStatus() != SSLEngineResult.HandshakeStatus.NOT_HANDSHAKING) {
            pipe.step();
        }
        System.out.println("handshake done: " + engine.getSession().getPeerPrincipal());
        // The request: any application data (a TLS 1.3 engine first sends its tickets).
        while (pipe.plain.position() == 0) {
            pipe.step();
        }
        byte[] answer = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
                .getBytes(StandardCharsets.US_ASCII);
        pipe.send(ByteBuffer.wrap(answer));
        engine.closeOutbound();
        while (!engine.isOutboundDone()) {
            pipe.send(ByteBuffer.allocate(0));
        }
    }

    /** An engine over a blocking socket. */
    static final class Pipe {
        final SSLEngine engine;
        final InputStream in;
        final OutputStream out;
        final ByteBuffer netIn;
        final ByteBuffer netOut;
        final ByteBuffer plain;

        Pipe(SSLEngine engine, Socket socket) throws Exception {
            this.engine = engine;
            this.in = socket.getInputStream();
            this.out = socket.getOutputStream();
            int packet = engine.getSession().getPacketBufferSize();
            this.netIn = ByteBuffer.allocate(packet);
            this.netOut = ByteBuffer.allocate(packet);
            this.plain = ByteBuffer.allocate(engine.getSession().getApplicationBufferSize());
        }

        /** Whatever the engine needs next: to send, to run a task, or to receive. */
        void step() throws Exception {
            switch (engine.getHandshakeStatus()) {
                case NEED_WRAP:
                    send(ByteBuffer.allocate(0));
                    return;
                case NEED_TASK:
                    Runnable task;
                    while ((task = engine.getDelegatedTask()) != null) {
                        task.run();
                    }
                    return;
                default:
                    receive();
            }
        }

        void send(ByteBuffer data) throws Exception {
            netOut.clear();
            engine.wrap(data, netOut);
            out.write(netOut.array(), 0, netOut.position());
            out.flush();
        }

        /** One unwrap, reading from the socket first when the engine needs more bytes. */
        void receive() throws Exception {
            netIn.flip();
            SSLEngineResult result = engine.unwrap(netIn, plain);
            netIn.compact();
            if (result.getStatus() == SSLEngineResult.Status.BUFFER_UNDERFLOW
                    || (result.bytesConsumed() == 0 && result.bytesProduced() == 0)) {
                int n = in.read(netIn.array(), netIn.position(), netIn.remaining());
                if (n < 0) {
                    throw new EOFException();
                }
                netIn.position(netIn.position() + n);
            }
        }
    }
}
