//! `mtls pki` through the binary: files, permissions, exit codes and error messages.

use crate::util::{Work, mode};

#[test]
fn init_issue_list_revoke_crl() {
    let w = Work::new();
    let init = w.json(&["pki", "init", "--intermediate", "--cn", "Acme CA"]);
    assert_eq!(init["key_type"], "p256");
    for f in [
        "pki/ca.crt",
        "pki/intermediate.crt",
        "pki/crl.pem",
        "pki/index.txt",
    ] {
        assert!(w.join(f).is_file(), "{f} missing");
    }
    assert_eq!(mode(&w.join("pki/ca.key")), 0o600);
    assert_eq!(mode(&w.join("pki/intermediate.key")), 0o600);

    let server = w.json(&[
        "pki",
        "issue",
        "server",
        "api",
        "--san",
        "api.local",
        "--san",
        "10.0.0.5",
    ]);
    assert_eq!(
        server["sans"],
        serde_json::json!(["DNS:api.local", "IP:10.0.0.5"])
    );
    assert_eq!(mode(&w.join("pki/private/api.key")), 0o600);
    assert_eq!(mode(&w.join("pki/private")), 0o700);
    let chain = String::from_utf8(w.read("pki/certs/api.chain.pem")).unwrap();
    assert_eq!(
        chain.matches("BEGIN CERTIFICATE").count(),
        2,
        "leaf + intermediate"
    );

    let alice = w.json(&[
        "pki",
        "issue",
        "client",
        "alice",
        "--san",
        "email:alice@example.com",
    ]);
    let serial = alice["entry"]["serial"].as_str().unwrap().to_owned();
    assert_eq!(serial.len(), 32, "128-bit serial: {serial}");

    let list = w.json(&["pki", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[1]["status"], "valid");
    assert!(list[1]["days_left"].as_i64().unwrap() >= 364);
    // Servers too: within the 366 days that Mozilla's TLS profiles (and sslyze) allow.
    let server_days = list[0]["days_left"].as_i64().unwrap();
    assert!((364..=365).contains(&server_days), "{server_days}");

    // The same name cannot be issued twice while the first is valid.
    let err = w.fails(&["pki", "issue", "client", "alice"]);
    assert!(err.contains("already exists"), "{err}");

    let revoked = w.json(&["pki", "revoke", "alice", "--reason", "keyCompromise"]);
    assert_eq!(revoked["revoked"]["revoked"]["reason"], "keyCompromise");
    assert_eq!(revoked["crl"]["revoked"], 1);
    let first = revoked["crl"]["number"].as_u64().unwrap();
    let crl = w.json(&["pki", "crl", "--next-update", "2d"]);
    assert_eq!(
        crl["number"].as_u64().unwrap(),
        first + 1,
        "CRL number increases"
    );

    let list = w.json(&["pki", "list"]);
    assert_eq!(list[1]["status"], "revoked");
    let text = w.ok(&["pki", "list"]);
    assert!(
        text.contains("revoked") && text.contains("keyCompromise"),
        "{text}"
    );
    let index = String::from_utf8(w.read("pki/index.txt")).unwrap();
    assert!(
        index.contains(&format!("keyCompromise\t{serial}\tclient\talice")),
        "{index}"
    );

    // Revoked names can be issued again; revoking twice is refused.
    w.ok(&["pki", "issue", "client", "alice"]);
    let err = w.fails(&["pki", "revoke", "--serial", &serial]);
    assert!(err.contains("already revoked"), "{err}");
}

#[test]
fn init_refuses_to_replace_a_ca_without_force() {
    let w = Work::new();
    w.ok(&["pki", "init"]);
    let before = w.read("pki/ca.crt");
    let err = w.fails(&["pki", "init"]);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(w.read("pki/ca.crt"), before, "the old CA is untouched");
    w.ok(&["pki", "issue", "client", "alice"]);
    w.ok(&["pki", "init", "--force", "--key-type", "p384"]);
    assert_ne!(w.read("pki/ca.crt"), before);
    // Nothing is lost: the old CA and what it issued moved aside; the new database is empty.
    let replaced: Vec<_> = std::fs::read_dir(w.join("pki"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("replaced-")
        })
        .collect();
    assert_eq!(replaced.len(), 1, "{replaced:?}");
    assert_eq!(std::fs::read(replaced[0].join("ca.crt")).unwrap(), before);
    assert!(replaced[0].join("private/alice.key").is_file());
    assert_eq!(w.json(&["pki", "list"]).as_array().unwrap().len(), 0);
    w.ok(&["pki", "issue", "client", "alice"]);
}

#[test]
fn every_key_type_makes_a_working_ca() {
    for key_type in ["p384", "ed25519", "rsa2048"] {
        let w = Work::new();
        w.ok(&["pki", "init", "--key-type", key_type]);
        w.ok(&[
            "pki",
            "issue",
            "server",
            "localhost",
            "--key-type",
            key_type,
        ]);
        let list = w.json(&["pki", "list"]);
        assert_eq!(list[0]["subject"], "CN=localhost", "{key_type}");
    }
}

#[test]
fn csr_then_sign() {
    let w = Work::new();
    w.ok(&["pki", "init"]);
    let out = w.json(&[
        "pki",
        "csr",
        "web",
        "--cn",
        "web.internal",
        "--san",
        "web.internal",
        "--out-dir",
        "req",
    ]);
    assert_eq!(out["csr"], "req/web.csr");
    assert_eq!(mode(&w.join("req/web.key")), 0o600);
    // A second csr would overwrite the key: refused.
    let err = w.fails(&["pki", "csr", "web", "--out-dir", "req"]);
    assert!(err.contains("--force"), "{err}");

    let signed = w.json(&[
        "pki",
        "sign",
        "req/web.csr",
        "--profile",
        "server",
        "--out",
        "req/web.crt",
        "--days",
        "30",
    ]);
    assert_eq!(signed["entry"]["name"], "web");
    assert_eq!(signed["entry"]["subject"], "CN=web.internal");
    assert_eq!(signed["sans"], serde_json::json!(["DNS:web.internal"]));
    assert!(w.join("req/web.crt").is_file());
    assert!(signed["key"].is_null(), "the CA never had this key");
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let w = Work::new();
    w.ok(&["pki", "init"]);
    w.ok(&["pki", "issue", "client", "alice"]);
    let before = w.snapshot();

    // Garbage and truncated CSRs.
    w.write("garbage.csr", b"this is not a CSR");
    let err = w.fails(&["pki", "sign", "garbage.csr", "--profile", "client"]);
    assert!(err.contains("garbage.csr"), "{err}");
    let csr = w.ok(&["pki", "csr", "bob", "--out-dir", "req"]);
    assert!(csr.contains("bob.csr"));
    let text = String::from_utf8(w.read("req/bob.csr")).unwrap();
    w.write("truncated.csr", &text[..text.len() / 2]);
    let err = w.fails(&["pki", "sign", "truncated.csr", "--profile", "client"]);
    assert!(err.contains("truncated"), "{err}");

    // Unknown names and serials.
    let err = w.fails(&["pki", "revoke", "nobody"]);
    assert!(err.contains("no certificate named nobody"), "{err}");
    let err = w.fails(&["pki", "revoke", "--serial", "0BADC0DE"]);
    assert!(err.contains("0BADC0DE"), "{err}");

    // Names that are paths, SANs that are not names.
    let err = w.fails(&["pki", "issue", "client", "../escape"]);
    assert!(err.contains("invalid name"), "{err}");
    let bad_san = w.mtls(&["pki", "issue", "server", "x", "--san", "ip:999.1.1.1"]);
    assert_eq!(
        bad_san.status.code(),
        Some(2),
        "bad flag values are usage errors"
    );

    let after: Vec<_> = w
        .snapshot()
        .into_iter()
        .filter(|(p, _)| {
            !p.starts_with(w.join("req"))
                && !p.ends_with("garbage.csr")
                && !p.ends_with("truncated.csr")
        })
        .collect();
    assert_eq!(
        before, after,
        "failed commands left the CA directory as it was"
    );
}

#[test]
fn a_ca_key_that_does_not_match_is_refused() {
    let w = Work::new();
    w.ok(&["pki", "init"]);
    w.ok(&["pki", "csr", "other", "--out-dir", "."]);
    std::fs::copy(w.join("other.key"), w.join("pki/ca.key")).unwrap();
    let err = w.fails(&["pki", "issue", "client", "alice"]);
    assert!(err.contains("does not match"), "{err}");
    assert!(!w.join("pki/certs/alice.crt").exists());
}

#[test]
fn missing_ca_says_how_to_make_one() {
    let w = Work::new();
    let err = w.fails(&["pki", "list", "--dir", "nowhere"]);
    assert!(err.contains("mtls pki init"), "{err}");
}

#[test]
fn export_import_show_round_trip() {
    let w = Work::new();
    w.ok(&["pki", "init", "--intermediate"]);
    w.ok(&["pki", "issue", "client", "alice"]);
    // No password given: one is generated and kept beside the file, both 0600.
    let export = w.json(&["pki", "export", "alice", "--p12"]);
    assert_eq!(export["file"], "pki/private/alice.p12");
    assert_eq!(export["certificates"], 3, "leaf, intermediate, root");
    assert_eq!(mode(&w.join("pki/private/alice.p12")), 0o600);
    assert_eq!(mode(&w.join("pki/private/alice.p12.password")), 0o600);

    w.write("pass.txt", "s3cret\n");
    w.ok(&[
        "pki",
        "export",
        "alice",
        "--p12",
        "--password-file",
        "pass.txt",
        "--out",
        "alice.p12",
    ]);
    let imported = w.json(&[
        "pki",
        "import",
        "alice.p12",
        "--password-file",
        "pass.txt",
        "--out-dir",
        "back",
    ]);
    assert_eq!(imported["subject"], "CN=alice");
    assert_eq!(imported["key"], "back/alice.key");
    assert_eq!(
        w.read("back/alice.key").len(),
        w.read("pki/private/alice.key").len()
    );
    assert_eq!(w.read("back/alice.crt"), w.read("pki/certs/alice.crt"));
    assert_eq!(mode(&w.join("back/alice.key")), 0o600);
    // Importing again would overwrite: refused.
    let err = w.fails(&[
        "pki",
        "import",
        "alice.p12",
        "--password-file",
        "pass.txt",
        "--out-dir",
        "back",
    ]);
    assert!(err.contains("--force"), "{err}");

    w.write("wrong.txt", "nope\n");
    let err = w.fails(&[
        "pki",
        "import",
        "alice.p12",
        "--password-file",
        "wrong.txt",
        "--out-dir",
        "x",
    ]);
    assert!(err.contains("wrong password"), "{err}");
    assert!(!w.join("x").exists(), "nothing written on a wrong password");

    let shown = w.ok(&[
        "pki",
        "show",
        "pki/certs/alice.chain.pem",
        "pki/crl.pem",
        "back/alice.key",
    ]);
    for needle in [
        "Subject:      CN=alice",
        "CN=mtls CA Intermediate",
        "Certificate revocation list",
        "Private key",
        "expires in",
    ] {
        assert!(shown.contains(needle), "{needle} missing from:\n{shown}");
    }
    let shown = w.json(&["pki", "show", "alice.p12", "--password-file", "pass.txt"]);
    assert_eq!(shown[0]["objects"][0]["kind"], "pkcs12");
    assert_eq!(
        shown[0]["objects"][0]["certificates"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let err = w.fails(&["pki", "show", "alice.p12"]);
    assert!(err.contains("--password-env"), "{err}");
    w.write(
        "junk.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    );
    let err = w.fails(&["pki", "show", "junk.pem"]);
    assert!(err.contains("junk.pem"), "{err}");
}

#[test]
fn a_key_from_a_csr_cannot_be_exported_by_the_ca() {
    let w = Work::new();
    w.ok(&["pki", "init"]);
    w.ok(&["pki", "csr", "remote", "--out-dir", "req"]);
    w.ok(&["pki", "sign", "req/remote.csr", "--profile", "client"]);
    let err = w.fails(&["pki", "export", "remote", "--p12"]);
    assert!(err.contains("private key is with the requester"), "{err}");
}

#[test]
fn verify_gives_the_precise_reason_and_exit_code() {
    let w = Work::new();
    w.ok(&["pki", "init", "--intermediate"]);
    w.ok(&[
        "pki",
        "issue",
        "server",
        "api",
        "--san",
        "api.local",
        "--san",
        "10.0.0.5",
    ]);
    w.ok(&["pki", "issue", "client", "alice"]);

    // The chain file carries the intermediate; --ca defaults to the CA directory's root.
    let ok = w.ok(&[
        "pki",
        "verify",
        "pki/certs/api.chain.pem",
        "--purpose",
        "server",
        "--name",
        "api.local",
    ]);
    assert!(
        ok.contains("OK: CN=api <- CN=mtls CA Intermediate <- CN=mtls CA"),
        "{ok}"
    );
    let ok = w.json(&[
        "pki",
        "verify",
        "pki/certs/api.crt",
        "--untrusted",
        "pki/intermediate.crt",
        "--name",
        "10.0.0.5",
    ]);
    assert_eq!(ok["valid"], true);

    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["pki/certs/api.chain.pem", "--name", "other.local"],
            "name_mismatch",
            "name mismatch: asked for other.local, the certificate has [DNS:api.local, IP:10.0.0.5]",
        ),
        (
            &["pki/certs/api.chain.pem", "--purpose", "client"],
            "wrong_purpose",
            "wrong purpose: CN=api (end-entity certificate) is not valid for TLS client authentication; its extended key usage is [serverAuth]",
        ),
        (
            &["pki/certs/api.crt"],
            "unknown_issuer",
            "unknown issuer: the chain ends at CN=api (issued by CN=mtls CA Intermediate)",
        ),
        (
            &["pki/certs/api.chain.pem", "--at", "2030-01-01T00:00:00Z"],
            "expired",
            "expired on",
        ),
        (
            &["pki/certs/api.chain.pem", "--at", "2020-01-01T00:00:00Z"],
            "not_yet_valid",
            "is not valid until",
        ),
        (
            &["pki/certs/api.chain.pem", "--verify-depth", "0"],
            "chain_too_deep",
            "chain too deep",
        ),
    ];
    for (args, check, words) in cases {
        let mut full = vec!["pki", "verify"];
        full.extend_from_slice(args);
        let err = w.fails(&full);
        assert!(err.contains(words), "{args:?}: {err}");
        full.push("--json");
        let out = w.mtls(&full);
        assert_eq!(out.status.code(), Some(1));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["check"], *check, "{args:?}");
    }

    w.ok(&["pki", "revoke", "alice", "--reason", "superseded"]);
    let err = w.fails(&[
        "pki",
        "verify",
        "pki/certs/alice.chain.pem",
        "--crl",
        "pki/crl.pem",
    ]);
    assert!(
        err.contains("was revoked on") && err.contains("for reason superseded"),
        "{err}"
    );
    let ok = w.ok(&[
        "pki",
        "verify",
        "pki/certs/api.chain.pem",
        "--crl",
        "pki/crl.pem",
    ]);
    assert!(ok.contains("CRL(s) checked"), "{ok}");
    let out = w.mtls(&[
        "pki",
        "verify",
        "pki/certs/api.chain.pem",
        "--at",
        "yesterday",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a bad --at is a usage error, not a verification failure"
    );
    assert!(mtls_test_support::text(&out).contains("RFC 3339"));
}

#[test]
fn not_before_and_not_after_make_expired_and_future_certificates_for_tests() {
    let w = Work::new();
    w.init_ca(false);
    let out = w.mtls(&[
        "pki",
        "issue",
        "client",
        "gone",
        "--not-before",
        "-10d",
        "--not-after",
        "-1d",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: CN=gone has already expired"),
        "{err}"
    );
    let verdict = w.fails(&["pki", "verify", "pki/certs/gone.crt", "--purpose", "client"]);
    assert!(
        verdict.contains("CN=gone") && verdict.contains("expired on"),
        "{verdict}"
    );

    let out = w.mtls(&["pki", "issue", "client", "later", "--not-before", "+2d"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("warning: CN=later is not valid yet"), "{err}");
    let verdict = w.fails(&["pki", "verify", "pki/certs/later.crt"]);
    assert!(verdict.contains("is not valid until"), "{verdict}");

    // RFC 3339 works too, and the certificate says exactly what was asked.
    w.ok(&[
        "pki",
        "issue",
        "client",
        "fixed",
        "--not-before",
        "2025-01-01T00:00:00Z",
        "--not-after",
        "2025-02-01T00:00:00Z",
    ]);
    let shown = w.json(&["pki", "show", "pki/certs/fixed.crt"]);
    let text = shown.to_string();
    assert!(
        text.contains("2025-01-01") && text.contains("2025-02-01"),
        "{text}"
    );

    // sign takes them too.
    w.ok(&["pki", "csr", "web", "--san", "web.local"]);
    let out = w.mtls(&[
        "pki",
        "sign",
        "web.csr",
        "--profile",
        "server",
        "--not-after",
        "-1h",
        "--not-before",
        "-2h",
    ]);
    assert!(out.status.success(), "{}", mtls_test_support::text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has already expired"));

    // What cannot be: said in one sentence each.
    let err = w.fails(&["pki", "issue", "client", "zero", "--days", "0"]);
    assert!(err.contains("--not-after"), "{err}");
    let err = w.fails(&[
        "pki",
        "issue",
        "client",
        "backwards",
        "--not-before",
        "-1d",
        "--not-after",
        "-2d",
    ]);
    assert!(err.contains("must be later than notBefore"), "{err}");
    let out = w.mtls(&[
        "pki",
        "issue",
        "client",
        "both",
        "--days",
        "3",
        "--not-after",
        "+1d",
    ]);
    assert_eq!(out.status.code(), Some(2), "clap refuses the pair");
    let out = w.mtls(&["pki", "issue", "client", "typo", "--not-after", "yesterday"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("RFC 3339") && err.contains("-2d"), "{err}");
}

#[test]
fn jks_export_import_round_trip_and_usage() {
    let w = Work::new();
    w.ok(&["pki", "init", "--intermediate"]);
    w.ok(&["pki", "issue", "client", "alice"]);
    // No password given: one is generated and kept beside the keystore, both 0600.
    let export = w.json(&["pki", "export", "alice", "--jks"]);
    assert_eq!(export["file"], "pki/private/alice.jks");
    assert_eq!(export["password_file"], "pki/private/alice.jks.password");
    assert_eq!(export["certificates"], 3, "leaf, intermediate, root");
    assert_eq!(mode(&w.join("pki/private/alice.jks")), 0o600);
    assert_eq!(mode(&w.join("pki/private/alice.jks.password")), 0o600);

    let shown = w.ok(&["pki", "show", "pki/private/alice.jks"]);
    assert!(shown.contains("Integrity:    NOT checked"), "{shown}");
    assert!(shown.contains("Private key:  encrypted"), "{shown}");
    let imported = w.json(&[
        "pki",
        "import",
        "pki/private/alice.jks",
        "--password-file",
        "pki/private/alice.jks.password",
        "--out-dir",
        "back",
    ]);
    assert_eq!(imported["alias"], "alice");
    assert_eq!(w.read("back/alice.key"), w.read("pki/private/alice.key"));
    assert_eq!(w.read("back/alice.crt"), w.read("pki/certs/alice.crt"));
    assert_eq!(mode(&w.join("back/alice.key")), 0o600);

    // One format, named: both or neither is a usage error (exit 2).
    for args in [
        &["pki", "export", "alice", "--p12", "--jks"][..],
        &["pki", "export", "alice"],
        &["pki", "export", "alice", "--jks", "--legacy"],
        &["pki", "export", "alice", "--p12", "--trust", "pki/ca.crt"],
        &["pki", "export", "--cert", "pki/certs/alice.crt", "--p12"],
    ] {
        let out = w.mtls(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    w.write("pass.txt", "changeit\n");
    w.ok(&[
        "pki",
        "export",
        "alice",
        "--p12",
        "--password-file",
        "pass.txt",
        "--out",
        "a.p12",
    ]);
    let err = w.fails(&[
        "pki",
        "import",
        "a.p12",
        "--alias",
        "alice",
        "--password-file",
        "pass.txt",
    ]);
    assert!(
        err.contains("--alias picks a key entry of a JKS keystore"),
        "{err}"
    );
    let err = w.fails(&["pki", "import", "pki/certs/alice.crt", "--out-dir", "x"]);
    assert!(
        err.contains("pki/certs/alice.crt is not a PKCS#12 (.p12, .pfx), JKS or PKCS#7"),
        "{err}"
    );
    assert!(!w.join("x").exists());
}

#[test]
fn show_refuses_devices_fifos_and_huge_files_without_reading_them() {
    let w = Work::new();
    let fifo = w.join("pipe.pem");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // A huge file costs nothing on disk (sparse) and is refused by its size.
    std::fs::File::create(w.join("huge.pem"))
        .unwrap()
        .set_len(64 * 1024 * 1024 + 1)
        .unwrap();
    for (file, says) in [
        ("/dev/zero", "/dev/zero is not a regular file"),
        ("pipe.pem", "pipe.pem is not a regular file"),
        (
            "huge.pem",
            "huge.pem is 67108865 bytes; mtls reads certificate files up to 64 MiB",
        ),
    ] {
        // Without the check, /dev/zero grows without bound and the FIFO waits forever:
        // the timeout turns either into a failure instead of a hung test.
        let out = assert_cmd::Command::cargo_bin("mtls")
            .unwrap()
            .current_dir(w.path())
            .args(["pki", "show", file])
            .timeout(std::time::Duration::from_secs(3))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{file}: {err}");
        assert!(err.contains(says), "{file}: {err}");
    }
}

#[test]
fn export_refuses_an_empty_password_unless_allowed() {
    let w = Work::new();
    w.init_ca(false);
    w.ok(&["pki", "issue", "client", "alice"]);
    w.write("empty.txt", "");
    for format in ["--p12", "--jks"] {
        let err = w.fails(&[
            "pki",
            "export",
            "alice",
            format,
            "--password-file",
            "empty.txt",
        ]);
        assert!(
            err.contains("--password-file empty.txt: its first line is empty")
                && err.contains("--allow-empty-password"),
            "{format}: {err}"
        );
        let out = w.mtls_env(
            &["pki", "export", "alice", format, "--password-env", "EMPTY"],
            &[("EMPTY", "")],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{format}: {err}");
        assert!(
            err.contains("--password-env EMPTY: the variable is empty"),
            "{format}: {err}"
        );
        // Nothing was written; asked for, the empty password is used.
        let extension = &format[2..];
        assert!(!w.join(&format!("pki/private/alice.{extension}")).exists());
        w.ok(&[
            "pki",
            "export",
            "alice",
            format,
            "--password-file",
            "empty.txt",
            "--allow-empty-password",
        ]);
        assert!(w.join(&format!("pki/private/alice.{extension}")).exists());
    }
}

#[test]
fn issue_refuses_not_after_equal_to_not_before() {
    let w = Work::new();
    w.init_ca(false);
    let err = w.fails(&[
        "pki",
        "issue",
        "server",
        "now",
        "--san",
        "localhost",
        "--not-before",
        "now",
        "--not-after",
        "now",
    ]);
    assert!(err.contains("must be later than notBefore"), "{err}");
    assert!(!w.join("pki/certs/now.crt").exists());
}

#[test]
fn an_empty_certificate_and_a_web_page_for_a_crl_are_named_for_what_they_are() {
    let w = Work::new();
    w.init_ca(false);
    w.ok(&["pki", "issue", "client", "alice"]);
    w.write("empty.crt", "");
    let err = w.fails(&["pki", "verify", "empty.crt"]);
    assert!(err.contains("empty.crt: the file is empty"), "{err}");
    w.write("page.crl", "<html><body>Not Found</body></html>");
    let err = w.fails(&["pki", "verify", "pki/certs/alice.crt", "--crl", "page.crl"]);
    assert!(
        err.contains("page.crl is not a CRL") && err.contains("starts with \"<html>"),
        "{err}"
    );
}
