//! The progress line of `mtls trace FILE` on a terminal: how much of the file is read, how
//! fast, and how many TLS connections so far, redrawn at most ten times a second and erased
//! before the final count.
//!
//! Only for a regular file larger than [`LARGE`] (a smaller one is read before the line
//! would be worth drawing; a pipe has no size to measure against), and only when stderr is a
//! terminal. Otherwise nothing here runs: the file is read unwrapped.

use std::cell::Cell;
use std::fmt;
use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// The size from which a file gets a progress line.
const LARGE: u64 = 8 << 20;
/// The shortest time between two draws.
const EVERY: Duration = Duration::from_millis(100);

/// The progress line while a file is read; dropping it erases the line.
pub(super) struct Progress {
    bar: ProgressBar,
    /// Bytes of the file read so far, counted by [`Counted`].
    read: Rc<Cell<u64>>,
    /// TLS connections reported so far, shown by the style's `{connections}` (a key rather
    /// than the message: setting the message draws, and so would the position after it).
    connections: Arc<AtomicUsize>,
    /// `read` when last looked at, so the clock is read once per read of the file, not once
    /// per packet.
    seen: u64,
    /// When the line was last drawn; the first update draws at once.
    drawn: Option<Instant>,
}

/// The capture file, counting the bytes read from it. They are counted on disk, before any
/// gzip decompression, so they compare with the file's size.
struct Counted {
    file: File,
    read: Rc<Cell<u64>>,
}

/// Standard output when it shares the terminal with the progress line: whole lines, written
/// while the line is lifted out of the way, so that none lands after it.
pub(super) struct AroundProgress<W: Write> {
    out: W,
    bar: ProgressBar,
    pending: Vec<u8>,
}

/// `file` to read, and its progress line when it gets one.
pub(super) fn watch(file: File) -> (Box<dyn Read>, Option<Progress>) {
    let size = match file.metadata() {
        Ok(meta) if meta.is_file() && meta.len() > LARGE => meta.len(),
        _ => return (Box::new(file), None),
    };
    if !io::stderr().is_terminal() {
        return (Box::new(file), None);
    }
    let bar = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr_with_hz(10));
    let connections = Arc::new(AtomicUsize::new(0));
    let shown = Arc::clone(&connections);
    if let Ok(style) = ProgressStyle::with_template(
        // Under 80 columns: a longer line wraps, and the redraw no longer covers it.
        "{bar:16} {decimal_bytes}/{decimal_total_bytes}, {rate}, {connections} TLS connections",
    ) {
        bar.set_style(style.progress_chars("=> ").with_key("rate", rate).with_key(
            "connections",
            move |_: &ProgressState, w: &mut dyn fmt::Write| {
                let _ = write!(w, "{}", shown.load(Ordering::Relaxed));
            },
        ));
    }
    let read = Rc::new(Cell::new(0));
    let counted = Counted {
        file,
        read: Rc::clone(&read),
    };
    let progress = Progress {
        bar,
        read,
        connections,
        seen: 0,
        drawn: None,
    };
    (Box::new(counted), Some(progress))
}

impl Progress {
    /// Redraws the line if the file was read further and the last draw is old enough.
    pub(super) fn update(&mut self, connections: usize) {
        let read = self.read.get();
        if read == self.seen {
            return;
        }
        self.seen = read;
        let now = Instant::now();
        if self
            .drawn
            .is_some_and(|drawn| now.duration_since(drawn) < EVERY)
        {
            return;
        }
        self.drawn = Some(now);
        self.connections.store(connections, Ordering::Relaxed);
        self.bar.set_position(read);
    }

    /// `out` (standard output, on the same terminal) written around the line.
    pub(super) fn around<W: Write>(&self, out: W) -> AroundProgress<W> {
        AroundProgress {
            out,
            bar: self.bar.clone(),
            pending: Vec::with_capacity(1 << 16),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

impl<W: Write> AroundProgress<W> {
    /// Writes `pending` up to `end` with the progress line lifted.
    fn write_out(&mut self, end: usize) -> io::Result<()> {
        let (bar, out) = (&self.bar, &mut self.out);
        let lines = self.pending.get(..end).unwrap_or_default();
        bar.suspend(|| out.write_all(lines).and_then(|()| out.flush()))?;
        self.pending.drain(..end);
        Ok(())
    }
}

impl<W: Write> Write for AroundProgress<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        // In blocks, as without the line, but each ending with a whole line.
        if self.pending.len() >= 1 << 16
            && let Some(last) = self.pending.iter().rposition(|&b| b == b'\n')
        {
            self.write_out(last + 1)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.write_out(self.pending.len())?;
        }
        self.out.flush()
    }
}

impl<W: Write> Drop for AroundProgress<W> {
    /// What an error left unwritten is written, as `BufWriter` does.
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// `{rate}`: MB/s since the start, once there is enough of it to tell. Not indicatif's
/// estimate, which weighs the first reads most: the reader fills its 1 MiB window from the
/// page cache at once, far faster than the capture is dissected.
fn rate(state: &ProgressState, w: &mut dyn fmt::Write) {
    let secs = state.elapsed().as_secs_f64();
    let _ = if secs < EVERY.as_secs_f64() {
        write!(w, "- MB/s")
    } else {
        write!(w, "{:.1} MB/s", state.pos() as f64 / 1e6 / secs)
    };
}
