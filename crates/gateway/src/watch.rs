//! Reload when a certificate, key, CA file, CRL or ticket key file changes, without a
//! signal: a renewed certificate, a CRL published by `mtls pki revoke` or a cron job, a
//! Kubernetes secret rotated.
//!
//! Files change in three ways, and watching the files themselves misses two of them:
//! written in place (the inode stays), written beside and renamed over (a new inode), and
//! a Kubernetes secret mount, where `tls.crt` is a symlink through `..data`, and `..data`
//! is swapped atomically for a new directory (the path never changes). So the watcher
//! watches the *directories* that hold the files (inotify through the `notify` crate),
//! and an event on a watched name or on a `..`-name (Kubernetes' `..data`,
//! `..2026_11_30_...`) starts a short quiet period. After it, the files are read again,
//! symlinks followed, and compared with what was read last: only a real change of content
//! asks for a reload, naming the files. A half-written change (a certificate without its
//! new key, a truncated PEM) fails to build: the reload logs why and the old site serves
//! on; the next write is another change, and another try.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::live::{Live, ReloadCause};

/// How long the files must be quiet before they are read: a tool that writes a
/// certificate and then its key is seen as one change.
const QUIET: Duration = Duration::from_millis(200);

/// Watch the files of the current site; ask `reloads` for a reload when one changes.
/// Runs until the runtime drains; logs and gives up if inotify is not available.
pub(crate) async fn run(live: Arc<Live>, reloads: mpsc::Sender<ReloadCause>) {
    let (events, mut changed) = mpsc::unbounded_channel::<PathBuf>();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Reading a file is an event too (inotify's IN_OPEN, IN_ACCESS, IN_CLOSE_NOWRITE):
        // our own reads of the files must not look like changes.
        if let Ok(event) = event
            && !matches!(
                event.kind,
                notify::EventKind::Access(
                    notify::event::AccessKind::Read
                        | notify::event::AccessKind::Open(_)
                        | notify::event::AccessKind::Close(notify::event::AccessMode::Read)
                        | notify::event::AccessKind::Any
                        | notify::event::AccessKind::Other
                )
            )
        {
            for path in event.paths {
                let _ = events.send(path);
            }
        }
    });
    let mut watcher = match watcher {
        Ok(watcher) => watcher,
        Err(e) => {
            tracing::warn!("cannot watch the certificate files ({e}): reload with SIGHUP");
            return;
        }
    };
    let mut replacements = live.replacements();
    let mut files = live.site().watched_files().to_vec();
    let mut watching = BTreeSet::new();
    watch_dirs(&mut watcher, &files, &mut watching);
    let mut seen = fingerprints(&files);
    loop {
        let path = tokio::select! {
            path = changed.recv() => match path {
                Some(path) => path,
                None => return,
            },
            replaced = replacements.changed() => {
                if replaced.is_err() {
                    return;
                }
                // A reload (by signal too) may name other files: follow the new site's,
                // and compare from what it read.
                let current = live.site().watched_files().to_vec();
                tracing::debug!("site replaced; watching {} files", current.len());
                if current != files {
                    files = current;
                    watch_dirs(&mut watcher, &files, &mut watching);
                    // Files already known keep the print last compared (a change the
                    // reload did not see is still a change); new ones start from now.
                    let mut now = fingerprints(&files);
                    for (file, print) in &mut now {
                        if let Some(before) = seen.get(file) {
                            *print = *before;
                        }
                    }
                    seen = now;
                }
                continue;
            }
        };
        if !relevant(&path, &files) {
            continue;
        }
        tracing::debug!("watched file event: {}", path.display());
        // Let the writer finish, and take every event of the burst with this one.
        tokio::time::sleep(QUIET).await;
        while changed.try_recv().is_ok() {}
        let now = fingerprints(&files);
        let differ: Vec<PathBuf> = files
            .iter()
            .filter(|f| now.get(*f) != seen.get(*f))
            .cloned()
            .collect();
        seen = now;
        if differ.is_empty() {
            continue;
        }
        // A full queue already holds a reload, which reads every file anew.
        let _ = reloads.try_send(ReloadCause::Files(differ));
    }
}

/// Watch the directory of every file (not the files: see the module documentation).
fn watch_dirs(
    watcher: &mut notify::RecommendedWatcher,
    files: &[PathBuf],
    watching: &mut BTreeSet<PathBuf>,
) {
    let dirs: BTreeSet<PathBuf> = files
        .iter()
        .map(|f| f.parent().unwrap_or(Path::new(".")).to_path_buf())
        .map(|d| {
            if d.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                d
            }
        })
        .collect();
    for gone in watching.difference(&dirs) {
        let _ = watcher.unwatch(gone);
    }
    for dir in dirs.difference(watching) {
        if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            tracing::warn!(
                "cannot watch {} ({e}): changes there need SIGHUP",
                dir.display()
            );
        }
    }
    *watching = dirs;
}

/// An event on one of the files, or on a Kubernetes `..data`-style name beside them.
fn relevant(path: &Path, files: &[PathBuf]) -> bool {
    let Some(name) = path.file_name() else {
        return false;
    };
    if name.to_string_lossy().starts_with("..") {
        return true;
    }
    files.iter().any(|f| f.file_name() == Some(name))
}

/// What each file holds now (a hash of its content, symlinks followed; `None` when it
/// cannot be read, which is a change too).
fn fingerprints(files: &[PathBuf]) -> BTreeMap<PathBuf, Option<u64>> {
    files
        .iter()
        .map(|f| {
            let print = std::fs::read(f).ok().map(|bytes| {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                bytes.hash(&mut hasher);
                hasher.finish()
            });
            (f.clone(), print)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_count_on_the_files_and_kubernetes_names_only() {
        let files = vec![
            PathBuf::from("/etc/tls/tls.crt"),
            PathBuf::from("/etc/tls/crl.pem"),
        ];
        assert!(relevant(Path::new("/etc/tls/tls.crt"), &files));
        assert!(relevant(Path::new("/etc/tls/..data"), &files));
        assert!(relevant(
            Path::new("/etc/tls/..2026_11_30_09_00_00.123"),
            &files
        ));
        assert!(!relevant(Path::new("/etc/tls/access.log"), &files));
        assert!(!relevant(Path::new("/etc/tls/crl.pem.tmp"), &files));
    }

    #[test]
    fn fingerprints_follow_content_not_names() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("crl.pem");
        std::fs::write(&file, "one").unwrap();
        let files = vec![file.clone()];
        let before = fingerprints(&files);
        std::fs::write(&file, "one").unwrap();
        assert_eq!(
            before,
            fingerprints(&files),
            "rewritten, same bytes: no change"
        );
        std::fs::write(&file, "two").unwrap();
        assert_ne!(before, fingerprints(&files));
        std::fs::remove_file(&file).unwrap();
        assert_eq!(fingerprints(&files)[&file], None);
    }
}
