//! The scanners people point at a TLS server before trusting it: testssl.sh and sslyze, run
//! against `mtls serve` with certificates from our own pki, their JSON output read back.
//!
//! Both are interop peers like openssl or curl: installed by scripts/test, and a missing
//! one fails the test rather than skipping it.

use std::path::Path;
use std::process::Command;

use crate::util::{Server, Work, gateway_config, localhost_pki};

/// A gateway serving a small file from `www/`, with `verify_client` as given.
fn scanned_gateway(verify_client: &str) -> (Work, Server) {
    let work = localhost_pki();
    std::fs::create_dir_all(work.join("www")).unwrap();
    work.write("www/index.html", "scanned\n");
    let config = gateway_config(
        "",
        "",
        "[[server.location]]\npath = \"/\"\nroot = \"www\"\n",
    )
    .replace(
        "verify_client = \"optional\"",
        &format!("verify_client = \"{verify_client}\""),
    );
    let server = work.serve("scanned", &config);
    (work, server)
}

/// testssl.sh 3.0 (Debian's) has no client-certificate option, so it scans a listener with
/// `verify_client = "optional"`: the same TLS stack, suites and order as an `on` one.
///
/// The checks are protocols (`-p`), cipher categories (`-s`), forward secrecy (`-f`), the
/// server's order (`-P`), server defaults and the certificate (`-S`) and every vulnerability
/// (`-U`): what decides a HIGH or CRITICAL. Left out: the client simulations (`-c`, about a
/// minute, informational), HTTP headers (`-h`, about the application) and the per-cipher
/// listing (`-e`). About 30 s here.
///
/// Our CA is given with `--add-ca`, so the chain of trust is judged as a client that trusts
/// it would judge it. What remains allowed are `cert_*` findings that any certificate from
/// a private CA gets: no CRL or OCSP URI in it (`cert_revocation`), and the like.
#[test]
fn testssl_finds_nothing_high_or_critical_but_private_ca_certificate_facts() {
    let testssl = mtls_test_support::find_in_path("testssl.sh")
        .unwrap_or_else(|| mtls_test_support::require_peer("testssl"));
    let (work, server) = scanned_gateway("optional");
    let target = format!("localhost:{}", server.port);
    let out = Command::new(&testssl)
        .current_dir(work.path())
        .args([
            "--quiet",
            "--color",
            "0",
            "--warnings",
            "off",
            "--nodns",
            "none",
            "--ip",
            "127.0.0.1",
            "--add-ca",
            "pki/ca.crt",
            "--jsonfile",
            "testssl.json",
            "-p",
            "-s",
            "-f",
            "-P",
            "-S",
            "-U",
            &target,
        ])
        .output()
        .unwrap();
    let text = mtls_test_support::text(&out);
    let findings = read_json(&work.join("testssl.json"), &text);
    let findings = findings
        .as_array()
        .expect("testssl's flat JSON is an array");
    let by_id = |id: &str| {
        findings
            .iter()
            .find(|f| f["id"] == id)
            .unwrap_or_else(|| panic!("testssl reported no {id}:\n{text}"))
    };
    // The scan ran to its end and did the checks that matter.
    by_id("scanTime");
    for (id, severity) in [
        ("SSLv3", "OK"),
        ("TLS1", "INFO"),
        ("TLS1_1", "INFO"),
        ("TLS1_2", "OK"),
        ("TLS1_3", "OK"),
        ("cipher_order", "OK"),
        ("heartbleed", "OK"),
        ("secure_renego", "OK"),
        ("cert_chain_of_trust", "OK"),
    ] {
        assert_eq!(
            by_id(id)["severity"],
            severity,
            "{id}: {}\n{text}",
            by_id(id)
        );
    }
    assert!(
        by_id("TLS1")["finding"]
            .as_str()
            .unwrap()
            .contains("not offered")
    );
    let serious: Vec<String> = findings
        .iter()
        .filter(|f| f["severity"] == "HIGH" || f["severity"] == "CRITICAL")
        .filter(|f| !f["id"].as_str().unwrap_or("").starts_with("cert_"))
        .map(|f| format!("{} {}: {}", f["severity"], f["id"], f["finding"]))
        .collect();
    assert!(serious.is_empty(), "{serious:#?}\n{text}");
}

/// sslyze against Mozilla's "intermediate" profile, with a client certificate on a listener
/// that requires one; our CA is sslyze's trust store for the certificate checks. Compliant
/// on every rule, the certificate's lifetime (at most 366 days) included. About 2 s.
#[test]
fn sslyze_finds_mozilla_intermediate_compliance_with_a_client_certificate() {
    let ok = Command::new(mtls_test_support::require_peer("python3"))
        .args(["-c", "import sslyze"])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "sslyze is required by this interop test but is not installed; run scripts/test, \
         which installs it:\n{}",
        mtls_test_support::text(&ok)
    );
    let (work, server) = scanned_gateway("on");
    work.ok(&["pki", "issue", "client", "scanner"]);
    let target = format!("localhost:{}{{127.0.0.1}}", server.port);
    let out = Command::new("python3")
        .current_dir(work.path())
        .args([
            "-m",
            "sslyze",
            "--mozilla_config",
            "intermediate",
            "--certinfo_ca_file",
            "pki/ca.crt",
            "--cert",
            "pki/certs/scanner.crt",
            "--key",
            "pki/private/scanner.key",
            "--json_out",
            "sslyze.json",
            &target,
        ])
        .output()
        .unwrap();
    let text = mtls_test_support::text(&out);
    // The compliance verdict is printed, not written to the JSON.
    assert!(
        out.status.success() && text.contains("OK - Compliant"),
        "not compliant:\n{text}"
    );

    let json = read_json(&work.join("sslyze.json"), &text);
    let result = &json["server_scan_results"][0];
    assert_eq!(result["connectivity_status"], "COMPLETED", "{text}");
    let scans = result["scan_result"].as_object().unwrap();
    for (name, scan) in scans {
        assert!(
            scan["status"] == "COMPLETED" || scan["status"] == "NOT_SCHEDULED",
            "{name}: {}",
            scan["status"]
        );
    }
    let accepted = |scan: &str| -> Vec<String> {
        scans[scan]["result"]["accepted_cipher_suites"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["cipher_suite"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    for old in [
        "ssl_2_0_cipher_suites",
        "ssl_3_0_cipher_suites",
        "tls_1_0_cipher_suites",
        "tls_1_1_cipher_suites",
    ] {
        assert!(accepted(old).is_empty(), "{old}: {:?}", accepted(old));
    }
    assert_eq!(accepted("tls_1_3_cipher_suites").len(), 3);
    assert_eq!(
        accepted("tls_1_2_cipher_suites").len(),
        3,
        "the ECDSA suites"
    );
    assert_eq!(
        scans["heartbleed"]["result"]["is_vulnerable_to_heartbleed"],
        false
    );
    let leaf = &scans["certificate_info"]["result"]["certificate_deployments"][0]["received_certificate_chain"]
        [0];
    let days = days_since_epoch(leaf["not_valid_after"].as_str().unwrap())
        - days_since_epoch(leaf["not_valid_before"].as_str().unwrap());
    assert!(
        (1..=366).contains(&days),
        "server certificate lives {days} days"
    );
}

fn read_json(path: &Path, output: &str) -> serde_json::Value {
    let data = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}; the scanner said:\n{output}", path.display()));
    serde_json::from_str(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Days from 1970-01-01 to the date of an RFC 3339 time ("2027-11-30T06:57:16Z").
fn days_since_epoch(when: &str) -> i64 {
    let date: Vec<i64> = when[..10].split('-').map(|p| p.parse().unwrap()).collect();
    let (y, m, d) = (date[0], date[1], date[2]);
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
