//! One verifier: for forged client chains of every kind (each defect the generator knows,
//! with and without an intermediate, fresh keys each run), the gateway's handshake and
//! `mtls pki verify` give the same verdict, with the same check name.
//!
//! The gateway trusts every forged root (one `client_ca` bundle); `pki verify` is given the
//! same bundle and the gateway's `verify_depth`. A refusal is read from the gateway's log
//! (`check=NAME`), a success from the answer.

use mtls_test_support::forge::{Defect, client_chain};

use crate::util::localhost_pki;

#[test]
fn the_gateway_and_pki_verify_agree_on_every_forged_chain() {
    let work = localhost_pki();
    std::fs::create_dir_all(work.join("site")).unwrap();
    work.write("site/index.html", "hello");
    let mut cases = Vec::new();
    let mut roots = String::new();
    for defect in Defect::ALL {
        for intermediate in [false, true] {
            let chain = client_chain(defect, intermediate);
            let n = cases.len();
            work.write(&format!("c{n}.pem"), &chain.chain);
            work.write(&format!("c{n}.key"), &chain.key);
            roots.push_str(&chain.root);
            cases.push((defect, intermediate));
        }
    }
    work.write("roots.pem", &roots);
    let config = "[[server]]\nlisten = [\"127.0.0.1:{port}\"]\nserver_name = [\"localhost\"]\n\n\
         [server.tls]\ncertificate = \"pki/certs/localhost.chain.pem\"\n\
         key = \"pki/private/localhost.key\"\nverify_client = \"on\"\n\
         client_ca = \"roots.pem\"\nverify_depth = 3\n\n\
         [[server.location]]\npath = \"/\"\nroot = \"site\"\n";
    let server = work.serve("gw", config);
    let port = server.port;
    let url = format!("https://localhost:{port}/");
    let resolve = format!("localhost:{port}:127.0.0.1");

    let mut refusals_seen = 0;
    let mut agreed = 0;
    for (n, (defect, intermediate)) in cases.iter().enumerate() {
        let chain = format!("c{n}.pem");
        let key = format!("c{n}.key");
        let verdict = work.mtls(&[
            "pki",
            "verify",
            &chain,
            "--ca",
            "roots.pem",
            "--purpose",
            "client",
            "--verify-depth",
            "2",
            "--json",
        ]);
        let report: serde_json::Value =
            serde_json::from_slice(&verdict.stdout).expect("pki verify --json");
        let cli = if report["valid"] == true {
            "ok".to_owned()
        } else {
            report["check"].as_str().expect("a check").to_owned()
        };

        let (code, body, _) = work.curl(&[
            "--cacert",
            "pki/ca.crt",
            "--resolve",
            &resolve,
            "--cert",
            &chain,
            "--key",
            &key,
            &url,
        ]);
        let gateway = if code == 0 && body == "hello" {
            "ok".to_owned()
        } else {
            refusals_seen += 1;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            let line = loop {
                let refusals: Vec<String> = server
                    .log()
                    .lines()
                    .filter(|l| l.contains("TLS handshake refused: client="))
                    .map(str::to_owned)
                    .collect();
                if refusals.len() >= refusals_seen {
                    break refusals[refusals_seen - 1].clone();
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{defect:?}/{intermediate}: curl {code}, no refusal logged:\n{}",
                    server.log()
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            };
            let from = line.find("check=").expect("check=") + "check=".len();
            line[from..]
                .split([':', ' '])
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(
            gateway, cli,
            "{defect:?} (intermediate: {intermediate}): the gateway and pki verify disagree; \
             pki verify said {report}"
        );
        if *defect == Defect::None {
            assert_eq!(gateway, "ok", "a good chain is accepted");
        } else if !(*defect == Defect::IntermediateNotCa
            || *defect == Defect::IntermediateNoCertSign
            || *defect == Defect::IntermediateServerOnly)
            || *intermediate
        {
            assert_ne!(gateway, "ok", "{defect:?} is refused");
        }
        agreed += 1;
    }
    assert_eq!(agreed, cases.len());
}

/// `mtls check` asks the same verifier what it can know at load time: a client
/// certificate given as `client_ca` and an expired CA are errors at their line; a CRL from
/// none of the configured CAs is a warning.
#[test]
fn check_refuses_cas_that_cannot_be_cas_and_warns_of_foreign_crls() {
    let work = localhost_pki();
    work.ok(&["pki", "issue", "client", "alice"]);
    let config = |client_ca: &str, crl: &str| {
        format!(
            "[[server]]\nlisten = [\"127.0.0.1:8443\"]\nserver_name = [\"localhost\"]\n\n\
             [server.tls]\ncertificate = \"pki/certs/localhost.chain.pem\"\n\
             key = \"pki/private/localhost.key\"\nverify_client = \"on\"\n\
             client_ca = \"{client_ca}\"\n{crl}\n\
             [[server.location]]\npath = \"/\"\nreturn = \"200 ok\"\n"
        )
    };
    work.write("leaf.toml", config("pki/certs/alice.crt", ""));
    let err = work.fails(&["check", "-c", "leaf.toml"]);
    assert!(
        err.contains("leaf.toml:9:")
            && err.contains("client_ca: CN=alice cannot be a trusted CA")
            && err.contains("CA:FALSE"),
        "{err}"
    );

    let (cert, _) = mtls_test_support::forge::expired_ca();
    work.write("expired.crt", cert);
    work.write("expired.toml", config("expired.crt", ""));
    let err = work.fails(&["check", "-c", "expired.toml"]);
    assert!(
        err.contains("expired.toml:9:")
            && err.contains("CN=Expired CA")
            && err.contains("expired on"),
        "{err}"
    );

    // Our CA's CRL and another CA's: the other one is a warning at the crl line.
    let other = crate::util::Work::new();
    other.ok(&["pki", "init", "--cn", "Other CA"]);
    std::fs::copy(other.join("pki/crl.pem"), work.join("other.crl")).unwrap();
    work.write(
        "foreign.toml",
        config("pki/ca.crt", "crl = [\"pki/crl.pem\", \"other.crl\"]\n"),
    );
    let out = work.mtls(&["check", "-c", "foreign.toml"]);
    let text = mtls_test_support::text(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("warning: foreign.toml:10:")
            && text.contains("is from none of the configured CAs"),
        "{text}"
    );
}
