//! Running the binary in a scratch directory.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

/// A scratch directory where `mtls pki` commands run with `--dir pki` by default.
pub struct Work {
    pub tmp: tempfile::TempDir,
}

impl Work {
    pub fn new() -> Work {
        Work {
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.tmp.path().join(p)
    }

    /// `mtls pki init`, with an intermediate CA when asked.
    pub fn init_ca(&self, intermediate: bool) {
        let mut args = vec!["pki", "init"];
        if intermediate {
            args.push("--intermediate");
        }
        self.ok(&args);
    }

    /// `mtls ARGS...` in this directory.
    pub fn mtls(&self, args: &[&str]) -> Output {
        Command::cargo_bin("mtls")
            .unwrap()
            .current_dir(self.path())
            .args(args)
            .output()
            .unwrap()
    }

    /// `mtls ARGS...`, which must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.mtls(args);
        assert!(
            out.status.success(),
            "mtls {args:?} failed:\n{}",
            mtls_test_support::text(&out)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `mtls ARGS...`, which must fail with exit code 1; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.mtls(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "mtls {args:?} should fail with 1:\n{}",
            mtls_test_support::text(&out)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// `mtls ARGS... --json`, parsed.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&self.ok(&args)).unwrap()
    }

    pub fn read(&self, p: &str) -> Vec<u8> {
        std::fs::read(self.join(p)).unwrap()
    }

    pub fn write(&self, p: &str, data: impl AsRef<[u8]>) {
        std::fs::write(self.join(p), data).unwrap()
    }

    /// Every file under the directory with its contents, to prove a failed command
    /// changed nothing.
    pub fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![self.path().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    out.push((path.clone(), std::fs::read(&path).unwrap()));
                }
            }
        }
        out.sort();
        out
    }
}

/// Unix permission bits of a file.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}
