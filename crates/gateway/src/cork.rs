//! What a connection's task writes in one turn leaves in one system call.
//!
//! Why: a full TLS 1.3 handshake and one HTTP/1.1 request made four writes on the socket:
//! the server's flight, the two session tickets, the response, and close_notify, each
//! flushed on its own (tokio-rustls flushes the tickets when the handshake ends, hyper the
//! response, then close_notify comes with the shutdown). On loopback, and on a VM's
//! virtual NIC, a write to a peer that waits in `read()` wakes it, and the writer pays for
//! that wake-up (an inter-processor interrupt, a VM exit on this kind of machine): about
//! 15 µs of *our* CPU per write when the client is asleep, i.e. at ordinary load, where
//! a perf profile put 9–11 % of the server's CPU there. A busy client is awake and costs
//! nothing, which is why this showed as the partial-load cost (docs/BENCHMARKS.md).
//!
//! How: the socket is written through [`CorkedIo`], whose writes and flushes made while the
//! connection's task is being polled go to a buffer; the task is polled through
//! [`Corked`], which writes that buffer out, in one `writev`, as soon as the task has done
//! all it can (returned `Pending`) or ended. Nothing is held while the task waits, so the
//! peer has every byte exactly when it would have had it before; only the number of
//! system calls (and of wake-ups of the peer) changes. The tickets, the response and
//! close_notify of a client whose request came with its Finished now leave together.
//!
//! Bounds: the buffer holds at most [`HOLD`] bytes (a bigger write goes straight out after
//! what is held, so a download is not copied) and is freed once written; when the peer
//! does not read (the end of a turn could not write everything), nothing more is taken
//! until it has: the writer waits, as it would on the socket, so a slow reader costs at
//! most one held buffer. Writes made outside the task's turn (an upgraded connection,
//! which hyper hands to a task of its own) go straight out; shutdown writes what is held
//! first.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// At most this much is held for the end of a turn: a small response with the tickets
/// before it and close_notify after. A full 16 KiB record goes straight out: coalescing
/// saves a wake-up of the peer per write, which only counts for small writes, and a slow
/// reader's connection then holds no more than this.
const HOLD: usize = 8 * 1024;

/// The write side, shared by the connection's [`CorkedIo`] and its task's [`Corked`].
#[derive(Debug)]
struct Out {
    /// `None` only while dropping (see `Drop`).
    socket: Option<OwnedWriteHalf>,
    held: Vec<u8>,
    /// The task is being polled: writes may wait for the end of the turn.
    in_turn: bool,
    /// The end of a turn could not write everything held (the peer is not reading):
    /// take nothing more until it has.
    backlog: bool,
    /// Writing what was held failed at the end of a turn; the next write reports it.
    failed: Option<io::Error>,
    /// Writes that reached the socket, for the tests.
    #[cfg(test)]
    system_writes: usize,
}

impl Drop for Out {
    fn drop(&mut self) {
        // As a TcpStream would: the socket closes when both halves are gone, with no
        // shutdown(SHUT_WR) of its own first (a dropped connection ends as it did before).
        if let Some(socket) = self.socket.take() {
            socket.forget();
        }
    }
}

impl Out {
    fn socket(&mut self) -> io::Result<Pin<&mut OwnedWriteHalf>> {
        match &mut self.socket {
            Some(socket) => Ok(Pin::new(socket)),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Write everything held. `Pending` registers `cx` for writability.
    fn write_held(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.held.is_empty() {
            let Out { socket, held, .. } = self;
            let Some(socket) = socket else {
                return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
            };
            let n = ready!(Pin::new(socket).poll_write(cx, held))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            #[cfg(test)]
            {
                self.system_writes += 1;
            }
            self.held.drain(..n);
        }
        // Written: free it (an idle or hibernating connection keeps no buffer).
        self.held = Vec::new();
        self.backlog = false;
        Poll::Ready(Ok(()))
    }

    /// Hold `bufs` for the end of the turn, if they fit.
    fn hold(&mut self, bufs: &[IoSlice<'_>], len: usize) -> bool {
        if !self.in_turn || self.backlog || self.held.len() + len > HOLD {
            return false;
        }
        let needed = self.held.len() + len;
        if needed > self.held.capacity() {
            // Never more than HOLD allocated.
            let room = if self.held.is_empty() {
                len.max(4096)
            } else {
                HOLD
            };
            self.held.reserve_exact(room - self.held.len());
        }
        for b in bufs {
            self.held.extend_from_slice(b);
        }
        true
    }

    fn check(&mut self) -> io::Result<()> {
        match self.failed.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

type Shared = Arc<Mutex<Out>>;

fn lock(out: &Shared) -> MutexGuard<'_, Out> {
    // A poisoned lock means a panic while writing; the buffer is still bytes.
    out.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A connection's socket: reads go straight to it, writes of a turn are held for its end.
#[derive(Debug)]
pub(crate) struct CorkedIo {
    read: OwnedReadHalf,
    out: Shared,
}

pin_project_lite::pin_project! {
    /// A connection task's future, polled so that what it wrote in a turn leaves at its
    /// end.
    #[derive(Debug)]
    pub(crate) struct Corked<F> {
        #[pin]
        task: F,
        out: Shared,
    }
}

/// Split `tcp` into the connection's socket and the means to poll its task: pass the
/// socket to the task, and poll the task with [`cork`].
pub(crate) fn split(tcp: TcpStream) -> (CorkedIo, Cork) {
    let (read, socket) = tcp.into_split();
    let out = Arc::new(Mutex::new(Out {
        socket: Some(socket),
        held: Vec::new(),
        in_turn: false,
        backlog: false,
        failed: None,
        #[cfg(test)]
        system_writes: 0,
    }));
    (
        CorkedIo {
            read,
            out: out.clone(),
        },
        Cork(out),
    )
}

/// The task side of [`split`].
#[derive(Debug)]
pub(crate) struct Cork(Shared);

impl Cork {
    /// Poll `task` (the one that owns the [`CorkedIo`]) so that its writes of a turn leave
    /// together.
    pub(crate) fn cork<F: Future>(self, task: F) -> Corked<F> {
        Corked { task, out: self.0 }
    }
}

impl<F: Future> Future for Corked<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        lock(this.out).in_turn = true;
        let done = this.task.poll(cx);
        let mut out = lock(this.out);
        out.in_turn = false;
        match out.write_held(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => {
                out.held = Vec::new();
                out.failed = Some(e);
            }
            // Woken when the socket can take more.
            Poll::Pending => out.backlog = true,
        }
        done
    }
}

impl AsyncRead for CorkedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl AsyncWrite for CorkedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut out = lock(&self.out);
        out.check()?;
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        if out.hold(bufs, len) {
            return Poll::Ready(Ok(len));
        }
        ready!(out.write_held(cx))?;
        let written = ready!(out.socket()?.poll_write_vectored(cx, bufs));
        #[cfg(test)]
        {
            out.system_writes += 1;
        }
        Poll::Ready(written)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut out = lock(&self.out);
        out.check()?;
        if out.in_turn {
            // The end of the turn writes it.
            return Poll::Ready(Ok(()));
        }
        ready!(out.write_held(cx))?;
        out.socket()?.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut out = lock(&self.out);
        out.check()?;
        ready!(out.write_held(cx))?;
        out.socket()?.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// A connected pair: the server side split for corking, and the client's stream.
    async fn pair() -> (CorkedIo, Cork, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let (io, cork) = split(accepted.expect("accept").0);
        (io, cork, client.expect("connect"))
    }

    fn system_writes(out: &Shared) -> usize {
        lock(out).system_writes
    }

    async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), f)
            .await
            .unwrap_or_else(|_| panic!("{what}: timed out"))
    }

    #[tokio::test]
    async fn the_writes_and_flushes_of_a_turn_leave_in_one_system_call() {
        let (mut io, cork, mut client) = pair().await;
        let out = cork.0.clone();
        let task = cork.cork(async move {
            for part in [&b"tickets "[..], b"response ", b"close_notify"] {
                io.write_all(part).await?;
                io.flush().await?;
            }
            io.shutdown().await
        });
        within("serving", task).await.expect("served");
        let mut got = String::new();
        within("reading", client.read_to_string(&mut got))
            .await
            .expect("read");
        assert_eq!(got, "tickets response close_notify");
        assert_eq!(system_writes(&out), 1);
    }

    #[tokio::test]
    async fn nothing_is_held_while_the_task_waits_for_the_peer() {
        let (mut io, cork, mut client) = pair().await;
        let out = cork.0.clone();
        let server = tokio::spawn(cork.cork(async move {
            io.write_all(b"ping").await?;
            io.flush().await?;
            // The peer answers only what it has received: a held "ping" would wait forever.
            let mut answer = [0u8; 4];
            io.read_exact(&mut answer).await?;
            assert_eq!(&answer, b"pong");
            io.write_all(b"done").await?;
            io.shutdown().await
        }));
        let mut ping = [0u8; 4];
        within("ping", client.read_exact(&mut ping))
            .await
            .expect("ping");
        assert_eq!(&ping, b"ping");
        client.write_all(b"pong").await.expect("pong");
        let mut rest = Vec::new();
        within("done", client.read_to_end(&mut rest))
            .await
            .expect("done");
        assert_eq!(rest, b"done");
        within("server", server)
            .await
            .expect("task")
            .expect("served");
        assert_eq!(system_writes(&out), 2);
    }

    #[tokio::test]
    async fn writes_from_another_task_are_not_held() {
        // hyper hands an upgraded connection to a task of its own: nothing ends its turns.
        let (io, cork, mut client) = pair().await;
        let (give, take) = tokio::sync::oneshot::channel();
        within(
            "handing over",
            cork.cork(async move { give.send(io).expect("send") }),
        )
        .await;
        let mut io = take.await.expect("io");
        let writer = tokio::spawn(async move {
            io.write_all(b"upgraded").await.expect("write");
            io.flush().await.expect("flush");
            // Stay open: the bytes must arrive before any shutdown.
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(io);
        });
        let mut got = [0u8; 8];
        within("upgraded bytes", client.read_exact(&mut got))
            .await
            .expect("read");
        assert_eq!(&got, b"upgraded");
        writer.abort();
    }

    #[tokio::test]
    async fn a_big_write_goes_out_after_what_is_held_and_in_order() {
        let (mut io, cork, mut client) = pair().await;
        let body: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let sent = body.clone();
        let server = tokio::spawn(cork.cork(async move {
            io.write_all(b"head").await?;
            io.write_all(&sent).await?;
            io.write_all(b"tail").await?;
            io.shutdown().await
        }));
        let mut got = Vec::new();
        within("reading", client.read_to_end(&mut got))
            .await
            .expect("read");
        within("server", server)
            .await
            .expect("task")
            .expect("served");
        assert_eq!(got.len(), body.len() + 8);
        assert_eq!(&got[..4], b"head");
        assert!(
            got[4..got.len() - 4] == body[..],
            "the body arrived changed"
        );
        assert_eq!(&got[got.len() - 4..], b"tail");
    }

    #[tokio::test]
    async fn a_peer_that_does_not_read_costs_at_most_one_held_buffer() {
        let (mut io, cork, client) = pair().await;
        let out = cork.0.clone();
        let chunk = vec![b'x'; 1000];
        let writer = tokio::spawn(cork.cork(async move {
            loop {
                io.write_all(&chunk).await?;
                io.flush().await?;
            }
            #[allow(unreachable_code)]
            Ok::<(), io::Error>(())
        }));
        // The socket's buffers fill, then the writer must wait instead of holding more.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (held, capacity, backlog) = {
            let out = lock(&out);
            (out.held.len(), out.held.capacity(), out.backlog)
        };
        assert!(
            backlog,
            "the end of the turn should have found the socket full"
        );
        assert!(held <= HOLD, "{held} bytes held");
        assert!(capacity <= HOLD, "{capacity} bytes allocated");
        assert!(!writer.is_finished(), "the writer should be waiting");
        writer.abort();
        drop(client);
    }

    #[tokio::test]
    async fn a_dropped_connection_is_closed_like_a_tcp_stream() {
        let (mut io, cork, mut client) = pair().await;
        within(
            "serving",
            cork.cork(async move {
                io.write_all(b"bye").await.expect("write");
                io.flush().await.expect("flush");
            }),
        )
        .await;
        let mut got = Vec::new();
        within("reading", client.read_to_end(&mut got))
            .await
            .expect("read");
        assert_eq!(got, b"bye");
    }
}
