//! A socket wrapper that notes when bytes moved and, for `--trace`, keeps them.
//!
//! It sits between TCP and TLS, so it sees the records exactly as they crossed the wire:
//! the dissector reads them afterwards (with the key log rustls gave us) the way Wireshark
//! reads a capture. The time of the last write tells when the request left, which hyper
//! does not report: "request sent" ends at the last byte written before the response.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use mtls_inspect::Direction;

/// The IO `inner`, with every read and write noted in a [`Tape`].
#[derive(Debug)]
pub struct Recording<IO> {
    inner: IO,
    tape: Tape,
}

/// What a [`Recording`] saw; clones share it, so it can be read after the connection is
/// gone (a failed handshake's bytes are what a trace most needs).
#[derive(Debug, Clone)]
pub struct Tape {
    shared: Arc<Mutex<TapeData>>,
}

/// Bytes that crossed the socket in one read or write.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// When.
    pub at: Instant,
    /// Which way.
    pub direction: Direction,
    /// The bytes.
    pub bytes: Vec<u8>,
}

#[derive(Debug, Default)]
struct TapeData {
    keep_bytes: bool,
    chunks: Vec<Chunk>,
    last_write: Option<Instant>,
}

impl<IO> Recording<IO> {
    /// Wrap `inner`, noting its traffic in `tape`.
    pub fn new(inner: IO, tape: Tape) -> Recording<IO> {
        Recording { inner, tape }
    }
}

impl Tape {
    /// A tape that keeps the bytes themselves only when `keep_bytes` (they cost memory:
    /// the whole response).
    pub fn new(keep_bytes: bool) -> Tape {
        Tape {
            shared: Arc::new(Mutex::new(TapeData {
                keep_bytes,
                ..TapeData::default()
            })),
        }
    }

    /// When the last write completed.
    pub fn last_write(&self) -> Option<Instant> {
        self.lock().last_write
    }

    /// The chunks so far, in the order they happened (empty unless `keep_bytes`).
    pub fn chunks(&self) -> Vec<Chunk> {
        self.lock().chunks.clone()
    }

    fn note(&self, direction: Direction, bytes: &[u8]) {
        let now = Instant::now();
        let mut data = self.lock();
        if direction == Direction::ClientToServer {
            data.last_write = Some(now);
        }
        if data.keep_bytes && !bytes.is_empty() {
            data.chunks.push(Chunk {
                at: now,
                direction,
                bytes: bytes.to_vec(),
            });
        }
    }

    fn lock(&self) -> MutexGuard<'_, TapeData> {
        // Poisoned only if a thread panicked while pushing; what is there is whole.
        self.shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Recording<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll {
            let read = &buf.filled()[before..];
            if !read.is_empty() {
                self.tape.note(Direction::ServerToClient, read);
            }
        }
        poll
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Recording<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = poll
            && written > 0
        {
            self.tape
                .note(Direction::ClientToServer, &buf[..written.min(buf.len())]);
        }
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(written)) = poll {
            // The first `written` bytes across the slices, in order.
            let mut left = written;
            let mut bytes = Vec::with_capacity(written);
            for slice in bufs {
                if left == 0 {
                    break;
                }
                let take = left.min(slice.len());
                bytes.extend_from_slice(&slice[..take]);
                left -= take;
            }
            if !bytes.is_empty() {
                self.tape.note(Direction::ClientToServer, &bytes);
            }
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn both_directions_in_order() {
        let (near, mut far) = tokio::io::duplex(64);
        let tape = Tape::new(true);
        let mut recording = Recording::new(near, tape.clone());
        recording.write_all(b"hello").await.expect("write");
        far.write_all(b"world!").await.expect("write");
        let mut buf = [0u8; 6];
        recording.read_exact(&mut buf).await.expect("read");
        let chunks = tape.chunks();
        let seen: Vec<(Direction, &[u8])> = chunks
            .iter()
            .map(|c| (c.direction, c.bytes.as_slice()))
            .collect();
        assert_eq!(
            seen,
            vec![
                (Direction::ClientToServer, &b"hello"[..]),
                (Direction::ServerToClient, &b"world!"[..])
            ]
        );
        assert!(tape.last_write().is_some());
    }

    #[tokio::test]
    async fn without_keep_bytes_only_times() {
        let (near, _far) = tokio::io::duplex(64);
        let tape = Tape::new(false);
        let mut recording = Recording::new(near, tape.clone());
        recording.write_all(b"x").await.expect("write");
        assert!(tape.chunks().is_empty());
        assert!(tape.last_write().is_some());
    }
}
