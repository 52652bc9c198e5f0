//! The process's file-descriptor budget, and log lines that cannot flood.
//!
//! Every client connection costs a descriptor, a proxied one a second (the upstream socket)
//! and a static file a third while it is sent. When the process runs out, `accept` fails
//! with EMFILE and nothing can be served, not even the connections that would free slots
//! by finishing. nginx's answer is two settings: `worker_rlimit_nofile` raises the limit at
//! start and `worker_connections` caps connections below it, so the cap is reached (and
//! accepting pauses, leaving new clients in the kernel's backlog) before the descriptors
//! run out. Both are here under nginx's names (`max_connections` for the cap), with the
//! limit raised to the hard limit and the cap derived from it by default.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Descriptors kept aside from the connection budget: listeners, the log file, the
/// runtime's epoll and eventfds, CA and CRL files read at start.
const RESERVED: u64 = 64;

/// The most descriptors we ask for when the hard limit is unlimited.
const CEILING: u64 = 1 << 20;

/// Set the soft RLIMIT_NOFILE to `wanted` (`worker_rlimit_nofile`), or to the hard limit;
/// returns the limit in force afterwards. A limit that cannot be set is logged, not fatal:
/// the gateway then sizes itself to what it has.
pub(crate) fn raise_nofile(wanted: Option<u64>) -> u64 {
    let limit = getrlimit(Resource::Nofile);
    let soft = limit.current.unwrap_or(CEILING);
    let hard = limit.maximum.unwrap_or(CEILING).min(CEILING);
    let target = wanted.unwrap_or(hard);
    if target == soft {
        return soft;
    }
    let new = Rlimit {
        current: Some(target),
        maximum: Some(target.max(hard)),
    };
    match setrlimit(Resource::Nofile, new) {
        Ok(()) => target,
        Err(e) => {
            tracing::warn!(
                "cannot set the file-descriptor limit to {target} (soft {soft}, hard {hard}): \
                 {e}; keeping {soft}"
            );
            soft
        }
    }
}

/// `max_connections` when the config does not set it: half of what is left after the
/// reserve, so that every client connection can also hold an upstream socket or a file.
pub(crate) fn default_max_connections(nofile: u64) -> usize {
    let budget = nofile.saturating_sub(RESERVED) / 2;
    usize::try_from(budget.max(16)).unwrap_or(usize::MAX)
}

/// Lets a repeated warning through at most once per second, and counts what it held back
/// so the line that does go out can say how often it happened.
#[derive(Debug)]
pub(crate) struct Throttle {
    start: Instant,
    /// Milliseconds since `start` of the last line let through, plus one (0: never).
    last: AtomicU64,
    held_back: AtomicU64,
}

impl Default for Throttle {
    fn default() -> Throttle {
        Throttle {
            start: Instant::now(),
            last: AtomicU64::new(0),
            held_back: AtomicU64::new(0),
        }
    }
}

impl Throttle {
    /// `Some(n)` when a line may go out now, `n` being how many were held back since the
    /// previous one; `None` when it must be held back.
    pub(crate) fn allow(&self) -> Option<u64> {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX) + 1;
        let last = self.last.load(Ordering::Relaxed);
        if last != 0 && now < last + 1000 {
            self.held_back.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if self
            .last
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            self.held_back.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(self.held_back.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_leaves_room_for_upstreams_and_files() {
        assert_eq!(default_max_connections(1024), 480);
        assert_eq!(default_max_connections(128), 32);
        assert_eq!(default_max_connections(10), 16);
    }

    #[test]
    fn a_throttle_lets_one_line_a_second_through_and_counts_the_rest() {
        let throttle = Throttle::default();
        assert_eq!(throttle.allow(), Some(0));
        assert_eq!(throttle.allow(), None);
        // As if the last line went out a few seconds ago, with two held back since.
        let long_ago = Throttle {
            start: Instant::now() - std::time::Duration::from_secs(5),
            last: AtomicU64::new(1),
            held_back: AtomicU64::new(2),
        };
        assert_eq!(long_ago.allow(), Some(2));
        assert_eq!(long_ago.allow(), None);
    }

    #[test]
    fn the_limit_in_force_is_reported() {
        let limit = getrlimit(Resource::Nofile);
        let now = raise_nofile(limit.current);
        assert_eq!(Some(now), limit.current);
    }
}
