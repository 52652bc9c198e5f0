//! The site being served now, and how it is replaced without dropping anything.
//!
//! Each connection takes the current [`Site`] once, when it is accepted, and keeps that
//! `Arc` to its end: requests in flight finish on the site they started with, and a new
//! site is only seen by new connections (nginx's old and new workers, without the
//! processes).
//!
//! ```text
//!   SIGHUP, `mtls serve -s reload`, a watched file changed ─► Reload (a channel)
//!   ─► rebuild off the serving path (a blocking thread: files read, keys parsed), with
//!      the running site at hand so session caches, ticket keys and upstream pools carry
//!      over ─► errors: logged like `mtls check`, counted, the old site stays
//!   ─► listeners: new addresses bound, removed ones stop accepting ─► swap
//! ```

use std::sync::{Arc, RwLock};

use crate::site::Site;

/// The current site; see the module documentation.
#[derive(Debug)]
pub(crate) struct Live {
    current: RwLock<Arc<Site>>,
    /// Bumped by every replacement, for those that follow the site (the file watcher).
    generation: tokio::sync::watch::Sender<u64>,
}

impl Live {
    pub(crate) fn new(site: Arc<Site>) -> Live {
        Live {
            current: RwLock::new(site),
            generation: tokio::sync::watch::Sender::new(0),
        }
    }

    /// The site new connections get.
    pub(crate) fn site(&self) -> Arc<Site> {
        match self.current.read() {
            Ok(site) => site.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// From now on, new connections get `site`.
    pub(crate) fn replace(&self, site: Arc<Site>) {
        match self.current.write() {
            Ok(mut current) => *current = site,
            Err(poisoned) => *poisoned.into_inner() = site,
        }
        self.generation.send_modify(|g| *g += 1);
    }

    /// Changes whenever the site is replaced.
    pub(crate) fn replacements(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
    }
}

/// Why a reload was asked for, for the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadCause {
    /// SIGHUP (also what `mtls serve -s reload` sends).
    Signal,
    /// A file the config names changed on disk.
    Files(Vec<std::path::PathBuf>),
}

impl std::fmt::Display for ReloadCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReloadCause::Signal => f.write_str("SIGHUP"),
            ReloadCause::Files(files) => {
                let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
                write!(f, "changed: {}", names.join(", "))
            }
        }
    }
}

/// Builds the next site from the config file, with the running one at hand (the CLI's:
/// it knows the file and the command-line overrides).
pub type Rebuild =
    Box<dyn Fn(&Site) -> Result<Site, crate::config::ConfigErrors> + Send + Sync + 'static>;

/// What [`crate::serve::run`] needs to reload: where requests come from, how to rebuild.
pub struct Reloads {
    /// Reload requests; the sender side is the CLI's (signals) and the file watcher's.
    pub requests: tokio::sync::mpsc::Receiver<ReloadCause>,
    /// A sender for the file watcher to use.
    pub sender: tokio::sync::mpsc::Sender<ReloadCause>,
    /// How to build the next site.
    pub rebuild: Rebuild,
}

impl std::fmt::Debug for Reloads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloads").finish_non_exhaustive()
    }
}
