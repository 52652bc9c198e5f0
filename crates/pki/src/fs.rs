//! Files the CA writes: atomically, and private keys readable by the owner only.
//!
//! A crash or a full disk in the middle of `issue` must never leave a truncated key or a
//! half-written database behind, so every write goes to a temporary file in the same
//! directory, is flushed to disk, and is renamed over the target.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
#[cfg(unix)]
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Who may read a file we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Certificates, CRLs, the database: 0644.
    Public,
    /// Private keys and PKCS#12 files: 0600 from the moment the file exists.
    Secret,
}

/// Write `data` to `path` atomically (temporary file, fsync, rename).
pub fn write_atomic(path: &Path, data: &[u8], mode: Mode) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let tmp = dir.join(format!(".{file_name}.tmp{}", std::process::id()));
    let io = |action| {
        move |source| Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    };

    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(match mode {
        Mode::Public => 0o644,
        Mode::Secret => 0o600,
    });
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(source) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io("writing")(source));
    }
    // Make the rename itself durable.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The largest file [`read`] reads: far above any certificate, CRL or key store, far below
/// what would exhaust memory.
pub const MAX_READ: u64 = 64 * 1024 * 1024;

/// Read a whole regular file of at most [`MAX_READ`] bytes, naming it in the error.
///
/// A device (`/dev/zero` never ends) or a FIFO (opening it waits for a writer) given where
/// a certificate is expected would hang or exhaust memory, so only regular files are
/// opened; a file that grows while it is read stops at the cap all the same.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let io = |source| Error::Io {
        action: "reading",
        path: path.to_path_buf(),
        source,
    };
    let refused = |why: String| Error::Refused {
        path: path.to_path_buf(),
        why,
    };
    // Asked before opening: opening a FIFO blocks until someone writes to it.
    let meta = fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(refused(
            "is not a regular file (a directory, a device or a FIFO)".into(),
        ));
    }
    let too_big = |size: String| {
        refused(format!(
            "is {size} bytes; mtls reads certificate files up to 64 MiB"
        ))
    };
    if meta.len() > MAX_READ {
        return Err(too_big(meta.len().to_string()));
    }
    let file = File::open(path).map_err(io)?;
    let mut data = Vec::new();
    file.take(MAX_READ + 1).read_to_end(&mut data).map_err(io)?;
    if data.len() as u64 > MAX_READ {
        return Err(too_big(format!("more than {MAX_READ}")));
    }
    Ok(data)
}

/// Read a small file that may be a pipe (`--password-file <(pass show ca)`), at most
/// `cap` bytes; more is refused rather than read without bound.
pub fn read_small(path: &Path, cap: u64) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let io = |source| Error::Io {
        action: "reading",
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let mut data = Vec::new();
    file.take(cap + 1).read_to_end(&mut data).map_err(io)?;
    if data.len() as u64 > cap {
        return Err(Error::Refused {
            path: path.to_path_buf(),
            why: format!("is more than {cap} bytes, too long for a password file"),
        });
    }
    Ok(data)
}

/// Create a directory and its parents; `Secret` directories are 0700.
pub fn create_dir(path: &Path, mode: Mode) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(match mode {
            Mode::Public => 0o755,
            Mode::Secret => 0o700,
        });
    }
    builder.create(path).map_err(|source| Error::Io {
        action: "creating directory",
        path: path.to_path_buf(),
        source,
    })
}
