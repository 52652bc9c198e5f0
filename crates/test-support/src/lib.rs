//! Helpers shared by the tests of every mtls crate: a throw-away CA per test, and the real
//! peers (openssl, keytool, python3, ...) that interop tests run against.
//!
//! Peers are never optional: a missing one fails the test with the command that installs
//! it (`scripts/test` does), because a skipped interop test would let CI pass while
//! proving nothing.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod forge;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mtls_pki::{
    Ca, InitOptions, IssueRequest, Issued, KeyType, LeafOptions, Profile, San, Subject,
};

/// A CA in its own temporary directory, removed when dropped.
#[derive(Debug)]
pub struct TestCa {
    /// Keeps the directory alive.
    pub tmp: tempfile::TempDir,
    /// The open CA.
    pub ca: Ca,
}

impl TestCa {
    /// A fresh ECDSA P-256 root CA (no intermediate).
    pub fn new() -> TestCa {
        TestCa::with(false)
    }

    /// A fresh CA whose leaves are signed by an intermediate when `intermediate`.
    pub fn with(intermediate: bool) -> TestCa {
        let tmp = tempfile::tempdir().expect("creating a temporary directory");
        let dir = tmp.path().join("pki");
        let ca = Ca::init(
            &dir,
            &InitOptions {
                common_name: "mtls Test CA".into(),
                key_type: KeyType::P256,
                days: 30,
                intermediate,
                force: false,
            },
        )
        .expect("creating a test CA");
        TestCa { tmp, ca }
    }

    /// The CA directory (what `--dir` takes).
    pub fn dir(&self) -> &Path {
        self.ca.layout().dir()
    }

    /// Issue a server certificate for `sans` (host names or IP addresses).
    pub fn server(&mut self, name: &str, sans: &[&str]) -> Issued {
        self.issue(name, Profile::Server, sans)
    }

    /// Issue a client certificate with CN = `name`.
    pub fn client(&mut self, name: &str) -> Issued {
        self.issue(name, Profile::Client, &[])
    }

    fn issue(&mut self, name: &str, profile: Profile, sans: &[&str]) -> Issued {
        let sans = sans
            .iter()
            .map(|s| s.parse::<San>().expect("a valid SAN in a test"))
            .collect();
        self.ca
            .issue(&IssueRequest {
                name: name.into(),
                subject: Subject::cn(name),
                sans,
                key_type: KeyType::P256,
                leaf: LeafOptions {
                    profile,
                    days: Some(7),
                    not_before: None,
                    not_after: None,
                    crl_urls: Vec::new(),
                    ocsp_url: None,
                },
                force: false,
                key_password: None,
            })
            .expect("issuing a test certificate")
    }
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}

/// The path of a required external program. Panics (fails the test) when it is missing:
/// interop tests never skip.
pub fn require_peer(program: &str) -> PathBuf {
    find_in_path(program).unwrap_or_else(|| {
        panic!("{program} is required by this interop test but is not installed; run scripts/test, which installs it")
    })
}

/// Look a program up in `PATH`.
pub fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Run a peer program and return its output, failing the test with its stderr if it could
/// not be started.
pub fn run_peer(program: &str, args: &[&str], cwd: &Path) -> Output {
    let exe = require_peer(program);
    Command::new(&exe)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"))
}

/// Output text (stdout then stderr) of a finished process, for assertions and messages.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
