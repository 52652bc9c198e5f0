//! The live line on stderr while a run goes: how far, how fast, how many failed.
//!
//! A thread of its own reads the tasks' [`Live`] counters a few times a second, so the
//! tasks never wait for the terminal.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::plan::Stop;
use super::stats::Live;

/// The running progress line; [`Progress::finish`] clears it.
#[derive(Debug)]
pub(super) struct Progress {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Start drawing: `start` is when the schedule began, `record_from` when the warm-up
    /// ends.
    pub(super) fn start(
        lives: Vec<Arc<Live>>,
        stop: Stop,
        start: Instant,
        record_from: Instant,
    ) -> Progress {
        let done = Arc::new(AtomicBool::new(false));
        let warmup = record_from.saturating_duration_since(start);
        let (length, template) = match stop {
            Stop::Count(count) => (count, "{bar:30} {pos}/{len} {msg}"),
            Stop::After(span) => (
                u64::try_from((warmup + span).as_millis()).unwrap_or(u64::MAX),
                "{bar:30} {msg}",
            ),
        };
        let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        let flag = done.clone();
        let thread = std::thread::Builder::new()
            .name("bench-progress".into())
            .spawn(move || draw(&bar, &lives, stop, start, record_from, &flag))
            .ok();
        Progress { done, thread }
    }

    /// Stop drawing and clear the line.
    pub(super) fn finish(mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn draw(
    bar: &ProgressBar,
    lives: &[Arc<Live>],
    stop: Stop,
    start: Instant,
    record_from: Instant,
    done: &AtomicBool,
) {
    let tick = Duration::from_millis(250);
    let (mut last_count, mut last_at) = (0, Instant::now());
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(tick);
        let now = Instant::now();
        let count: u64 = lives.iter().map(|l| l.done.load(Ordering::Relaxed)).sum();
        let failed: u64 = lives.iter().map(|l| l.failed.load(Ordering::Relaxed)).sum();
        let rate = (count - last_count.min(count)) as f64
            / now.duration_since(last_at).as_secs_f64().max(1e-3);
        (last_count, last_at) = (count, now);
        let phase = if now < record_from {
            "warming up, "
        } else {
            ""
        };
        bar.set_message(format!("{phase}{rate:.0} req/s, {failed} failed"));
        match stop {
            Stop::Count(_) if now >= record_from => {
                // Measured requests only: the warm-up's do not count towards -n.
                let measured: u64 = lives
                    .iter()
                    .map(|l| l.measured.load(Ordering::Relaxed))
                    .sum();
                bar.set_position(measured);
            }
            Stop::Count(_) => {}
            Stop::After(_) => bar.set_position(
                u64::try_from(now.saturating_duration_since(start).as_millis()).unwrap_or(0),
            ),
        }
    }
    bar.finish_and_clear();
}
