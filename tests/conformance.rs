//! `mtls pki verify` gives the library's verdict: a sample of the x509-limbo suite
//! (`crates/verify/tests/data`) through the binary, each compared with
//! [`mtls_verify::Verifier`] on the same inputs: same accept or refuse, same check name.
//!
//! The library's own conformance (every case against limbo's expectations) is
//! `crates/verify/tests/limbo.rs`; this test proves that the command line reads the files and
//! flags into the same policy, so that what `pki verify` says is what the gateway decides.
//! The sample is every limbo case of its own (208) and every 10th BetterTLS case; a case
//! whose peer name `--name` refuses as no name at all is left out and counted.

use std::path::Path;
use std::process::Command;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::util::Work;

#[path = "../crates/verify/tests/limbo/suite.rs"]
mod suite;

use suite::{Case, Run, Suite, Verdict};

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/crates/verify/tests/data/limbo.json.gz"
);

/// `pki verify --verify-depth` when the case sets no depth (the CLI has no "unlimited").
const CLI_DEFAULT_DEPTH: usize = 8;

#[test]
fn pki_verify_agrees_with_the_library_on_limbo() {
    let suite = load(Path::new(DATA));
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let sample: Vec<(&Case, Run)> = suite
        .testcases
        .iter()
        .enumerate()
        .filter(|(i, c)| !c.id.starts_with("bettertls::") || i % 10 == 0)
        .filter_map(|(_, c)| c.run().ok().map(|run| (c, run)))
        .collect();
    // `--name` is parsed by `PeerName`'s parser, which refuses what is no name (a DNS
    // label with `_`): a usage error before any verification, so not a verdict to compare.
    let (sample, unnamed): (Vec<_>, Vec<_>) = sample.into_iter().partition(|(_, run)| {
        run.names
            .iter()
            .all(|n| name_arg(n).parse::<mtls_verify::PeerName>().is_ok())
    });
    let work = Work::new();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = sample.len().div_ceil(workers).max(1);
    let mismatches: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = sample
            .chunks(chunk)
            .enumerate()
            .map(|(n, part)| {
                let dir = work.join(&format!("w{n}"));
                scope.spawn(move || {
                    std::fs::create_dir_all(&dir).unwrap();
                    part.iter()
                        .filter_map(|(case, run)| compare(case, run, &dir, now))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    eprintln!(
        "conformance: {} limbo cases through `mtls pki verify`, {} disagree with the library; \
         {} left out, their name refused by --name: {:?}",
        sample.len(),
        mismatches.len(),
        unnamed.len(),
        unnamed.iter().map(|(c, _)| &c.id).collect::<Vec<_>>()
    );
    assert!(
        mismatches.is_empty(),
        "`mtls pki verify` and the library disagree on {} of {} cases:\n{}",
        mismatches.len(),
        sample.len(),
        mismatches.join("\n")
    );
}

/// One case through the CLI and the library; the disagreement, if any.
fn compare(case: &Case, run: &Run, dir: &Path, now: OffsetDateTime) -> Option<String> {
    let depth = run.max_intermediates.unwrap_or(CLI_DEFAULT_DEPTH);
    let mut policy = run.policy();
    policy.max_intermediates = Some(depth);
    let library = run.verify_with(policy, now);
    let cli = cli_verdict(run, dir, depth, now);
    let same = match (&cli, &library) {
        (Verdict::Accepted, Verdict::Accepted) => true,
        (Verdict::Refused { check: a, .. }, Verdict::Refused { check: b, .. }) => a == b,
        _ => false,
    };
    (!same).then(|| {
        format!(
            "{}: cli {}; library {}",
            case.id,
            cli.describe(),
            library.describe()
        )
    })
}

/// `mtls pki verify --json` on the case's files; with several names, once per name (each
/// must verify, as the library side does).
fn cli_verdict(run: &Run, dir: &Path, depth: usize, now: OffsetDateTime) -> Verdict {
    let pem = |label: &str, ders: &[Vec<u8>]| -> String {
        ders.iter()
            .map(|der| mtls_pki::pem::encode(label, der))
            .collect()
    };
    std::fs::write(
        dir.join("leaf.pem"),
        pem("CERTIFICATE", std::slice::from_ref(&run.leaf)),
    )
    .unwrap();
    std::fs::write(dir.join("ca.pem"), pem("CERTIFICATE", &run.anchors)).unwrap();
    let at = run.at.unwrap_or(now).format(&Rfc3339).unwrap();
    let mut args: Vec<String> = vec![
        "pki".into(),
        "verify".into(),
        "leaf.pem".into(),
        "--json".into(),
        "--ca".into(),
        "ca.pem".into(),
        "--purpose".into(),
        match run.purpose {
            mtls_verify::Purpose::Server => "server".into(),
            mtls_verify::Purpose::Client => "client".into(),
        },
        "--at".into(),
        at,
        "--verify-depth".into(),
        depth.to_string(),
    ];
    if !run.intermediates.is_empty() {
        std::fs::write(
            dir.join("untrusted.pem"),
            pem("CERTIFICATE", &run.intermediates),
        )
        .unwrap();
        args.extend(["--untrusted".into(), "untrusted.pem".into()]);
    }
    if !run.crls.is_empty() {
        std::fs::write(dir.join("crls.pem"), pem("X509 CRL", &run.crls)).unwrap();
        args.extend([
            "--crl".into(),
            "crls.pem".into(),
            "--crl-check".into(),
            "chain".into(),
        ]);
    }
    let names: Vec<Option<String>> = if run.names.is_empty() {
        vec![None]
    } else {
        run.names.iter().map(|n| Some(name_arg(n))).collect()
    };
    for name in names {
        let mut args = args.clone();
        if let Some(name) = name {
            args.extend(["--name".into(), name]);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_mtls"))
            .current_dir(dir)
            .args(&args)
            .output()
            .unwrap();
        let report: Option<serde_json::Value> = serde_json::from_slice(&out.stdout).ok();
        match (out.status.code(), report) {
            (Some(0), Some(r)) if r["valid"] == true => continue,
            (Some(1), Some(r)) if r["valid"] == false => {
                return Verdict::Refused {
                    check: r["check"].as_str().unwrap_or("?").to_owned(),
                    sentence: r["reason"].as_str().unwrap_or("").to_owned(),
                };
            }
            (code, _) => {
                // No JSON verdict: the command failed before verifying (a file it would not
                // read), which the library would have answered with a check.
                return Verdict::Refused {
                    check: format!("no-verdict(exit {code:?})"),
                    sentence: mtls_test_support::text(&out).trim().replace('\n', " / "),
                };
            }
        }
    }
    Verdict::Accepted
}

/// The `--name` spelling of a name (an IPv6 address as is: `PeerName`'s parser takes it).
fn name_arg(name: &mtls_verify::PeerName) -> String {
    match name {
        mtls_verify::PeerName::Dns(s) | mtls_verify::PeerName::Email(s) => s.clone(),
        mtls_verify::PeerName::Ip(ip) => ip.to_string(),
    }
}

/// The suite, decompressed by `gzip -dc` (the top-level tests have no gzip library).
fn load(path: &Path) -> Suite {
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(path)
        .output()
        .expect("running gzip -dc");
    assert!(
        out.status.success(),
        "gzip -dc {}: {:?}",
        path.display(),
        out
    );
    serde_json::from_slice(&out.stdout).expect("parsing limbo.json")
}
