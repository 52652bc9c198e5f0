//! What `mtls pki` makes must be accepted by the real tools: openssl, keytool, Python.

use mtls_test_support::{run_peer, text};

use crate::util::Work;

fn openssl_verify(w: &Work, args: &[&str]) -> (bool, String) {
    let out = run_peer("openssl", &[&["verify"], args].concat(), w.path());
    (out.status.success(), text(&out))
}

#[test]
fn openssl_verify_accepts_our_chains_with_the_right_purpose() {
    for intermediate in [false, true] {
        let w = Work::new();
        w.init_ca(intermediate);
        w.ok(&[
            "pki",
            "issue",
            "server",
            "api",
            "--san",
            "api.local",
            "--san",
            "127.0.0.1",
        ]);
        w.ok(&["pki", "issue", "client", "alice"]);
        let untrusted: Vec<&str> = if intermediate {
            vec!["-untrusted", "pki/intermediate.crt"]
        } else {
            vec![]
        };
        let v = |purpose: &str, cert: &str| {
            openssl_verify(
                &w,
                &[
                    &["-CAfile", "pki/ca.crt", "-purpose", purpose],
                    &untrusted[..],
                    &[cert],
                ]
                .concat(),
            )
        };
        let (ok, out) = v("sslserver", "pki/certs/api.crt");
        assert!(ok, "intermediate={intermediate}: {out}");
        let (ok, out) = v("sslclient", "pki/certs/alice.crt");
        assert!(ok, "intermediate={intermediate}: {out}");
        // And the wrong purpose is refused by openssl too: our EKUs are right.
        let (ok, out) = v("sslclient", "pki/certs/api.crt");
        assert!(
            !ok && out.contains("unsuitable certificate purpose"),
            "{out}"
        );
        // The chain file verifies against the root alone.
        if intermediate {
            let (ok, out) = openssl_verify(
                &w,
                &[
                    "-CAfile",
                    "pki/ca.crt",
                    "-untrusted",
                    "pki/certs/api.chain.pem",
                    "pki/certs/api.crt",
                ],
            );
            assert!(ok, "{out}");
        }
    }
}

#[test]
fn openssl_sees_revocation_in_our_crl() {
    for intermediate in [false, true] {
        let w = Work::new();
        w.init_ca(intermediate);
        w.ok(&["pki", "issue", "client", "alice"]);
        w.ok(&["pki", "issue", "client", "bob"]);
        w.ok(&["pki", "revoke", "alice", "--reason", "keyCompromise"]);
        let untrusted: Vec<&str> = if intermediate {
            vec!["-untrusted", "pki/intermediate.crt"]
        } else {
            vec![]
        };
        let v = |cert: &str| {
            openssl_verify(
                &w,
                &[
                    &[
                        "-crl_check",
                        "-CAfile",
                        "pki/ca.crt",
                        "-CRLfile",
                        "pki/crl.pem",
                    ],
                    &untrusted[..],
                    &[cert],
                ]
                .concat(),
            )
        };
        let (ok, out) = v("pki/certs/alice.crt");
        assert!(!ok && out.contains("certificate revoked"), "{out}");
        let (ok, out) = v("pki/certs/bob.crt");
        assert!(ok, "{out}");
        let crl = run_peer(
            "openssl",
            &["crl", "-in", "pki/crl.pem", "-noout", "-text"],
            w.path(),
        );
        let crl = text(&crl);
        assert!(
            crl.contains("Key Compromise") && crl.contains("X509v3 CRL Number"),
            "{crl}"
        );
    }
}

#[test]
fn openssl_req_csrs_are_signed() {
    let w = Work::new();
    w.ok(&["pki", "init"]);
    // An EC and an RSA request, with the extension requests openssl adds (SAN, SKI).
    for (name, newkey) in [
        (
            "ec-web",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"][..],
        ),
        ("rsa-web", &["-newkey", "rsa:2048"][..]),
    ] {
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let args = [
            &["req", "-new", "-nodes"][..],
            newkey,
            &[
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                "/C=CN/ST=Zhejiang/O=Example Ltd/OU=Ops/CN=web.example.com",
                "-addext",
                "subjectAltName=DNS:web.example.com,DNS:*.web.example.com,IP:10.1.2.3",
                "-addext",
                "subjectKeyIdentifier=hash",
                "-addext",
                "keyUsage=critical,digitalSignature,keyEncipherment",
            ],
        ]
        .concat();
        let out = run_peer("openssl", &args, w.path());
        assert!(out.status.success(), "{}", text(&out));
        let signed = w.json(&["pki", "sign", &csr, "--profile", "server"]);
        assert_eq!(
            signed["sans"],
            serde_json::json!([
                "DNS:web.example.com",
                "DNS:*.web.example.com",
                "IP:10.1.2.3"
            ])
        );
        let crt = format!("pki/certs/{name}.crt");
        let (ok, out) = openssl_verify(
            &w,
            &["-CAfile", "pki/ca.crt", "-purpose", "sslserver", &crt],
        );
        assert!(ok, "{out}");
        let shown = text(&run_peer(
            "openssl",
            &[
                "x509",
                "-in",
                &crt,
                "-noout",
                "-subject",
                "-ext",
                "extendedKeyUsage",
            ],
            w.path(),
        ));
        assert!(
            shown.contains("O = Example Ltd") && shown.contains("CN = web.example.com"),
            "{shown}"
        );
        assert!(shown.contains("TLS Web Server Authentication"), "{shown}");
        // The certificate carries the requester's public key.
        let pub_cert = run_peer(
            "openssl",
            &["x509", "-in", &crt, "-noout", "-pubkey"],
            w.path(),
        );
        let pub_key = run_peer("openssl", &["pkey", "-in", &key, "-pubout"], w.path());
        assert_eq!(pub_cert.stdout, pub_key.stdout);
    }
}

/// Seed 003's Tomcat: keytool makes the key pair and the request
/// (`-----BEGIN NEW CERTIFICATE REQUEST-----`); we sign it, and keytool takes the answer
/// back into its keystore.
#[test]
fn keytool_certreq_csrs_are_signed_and_imported_back() {
    let w = Work::new();
    w.ok(&["pki", "init"]);
    let keytool = |args: &[&str]| {
        let all = [
            args,
            &[
                "-keystore",
                "tomcat.p12",
                "-storetype",
                "PKCS12",
                "-storepass",
                "changeit",
            ],
        ]
        .concat();
        let out = run_peer("keytool", &all, w.path());
        assert!(out.status.success(), "keytool {args:?}: {}", text(&out));
        text(&out)
    };
    keytool(&[
        "-genkeypair",
        "-alias",
        "tomcat",
        "-keyalg",
        "EC",
        "-groupname",
        "secp256r1",
        "-dname",
        "CN=tomcat.example.com, OU=Ops, O=Example Ltd, C=CN",
        "-ext",
        "SAN=dns:tomcat.example.com",
    ]);
    keytool(&[
        "-certreq",
        "-alias",
        "tomcat",
        "-file",
        "tomcat.csr",
        "-ext",
        "SAN=dns:tomcat.example.com",
    ]);
    let csr = String::from_utf8(w.read("tomcat.csr")).unwrap();
    assert!(
        csr.contains("-----BEGIN NEW CERTIFICATE REQUEST-----"),
        "{csr}"
    );
    let shown = w.ok(&["pki", "show", "tomcat.csr"]);
    assert!(shown.contains("tomcat.example.com"), "{shown}");
    let signed = w.json(&["pki", "sign", "tomcat.csr", "--profile", "server"]);
    assert_eq!(
        signed["sans"],
        serde_json::json!(["DNS:tomcat.example.com"]),
        "{signed}"
    );
    // keytool imports the CA, then our answer onto its key pair.
    keytool(&[
        "-importcert",
        "-noprompt",
        "-alias",
        "ca",
        "-file",
        "pki/ca.crt",
    ]);
    let reply = keytool(&[
        "-importcert",
        "-alias",
        "tomcat",
        "-file",
        "pki/certs/tomcat.crt",
    ]);
    assert!(reply.contains("Certificate reply was installed"), "{reply}");
}

/// Seed 001 keeps the public key beside the private one (`openssl rsa -pubout`): ours is
/// the same SubjectPublicKeyInfo, byte for byte, for EC and RSA keys.
#[test]
fn pubkey_writes_what_openssl_pkey_pubout_writes() {
    let w = Work::new();
    w.ok(&["pki", "init"]);
    w.ok(&["pki", "issue", "client", "ec"]);
    w.ok(&["pki", "issue", "client", "rsa", "--key-type", "rsa2048"]);
    for name in ["ec", "rsa"] {
        let key = format!("pki/private/{name}.key");
        let out = run_peer("openssl", &["pkey", "-in", &key, "-pubout"], w.path());
        assert!(out.status.success(), "{}", text(&out));
        let theirs = String::from_utf8(out.stdout).unwrap();
        let ours = w.ok(&["pki", "pubkey", &key]);
        assert_eq!(ours, theirs, "{name}");
        w.ok(&["pki", "pubkey", &key, "--out", &format!("{name}.pub")]);
        assert_eq!(
            String::from_utf8(w.read(&format!("{name}.pub"))).unwrap(),
            theirs
        );
    }
    let err = w.fails(&["pki", "pubkey", "pki/ca.crt"]);
    assert!(err.contains("pki/ca.crt"), "{err}");
}

#[test]
fn a_csr_with_a_bad_signature_is_refused() {
    let w = Work::new();
    w.ok(&["pki", "init"]);
    let out = run_peer(
        "openssl",
        &[
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-keyout",
            "k.pem",
            "-out",
            "good.der",
            "-outform",
            "DER",
            "-subj",
            "/CN=honest-client",
        ],
        w.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    // Change the subject after signing: still a well-formed CSR, but the signature is wrong.
    let mut der = w.read("good.der");
    let at = der.windows(6).position(|x| x == b"honest").unwrap();
    der[at..at + 6].copy_from_slice(b"forged");
    w.write("forged.der", &der);
    let err = w.fails(&["pki", "sign", "forged.der", "--profile", "client"]);
    assert!(err.contains("bad signature"), "{err}");
    assert!(!w.join("pki/certs/forged.crt").exists());
    // The untouched DER request is fine.
    w.ok(&["pki", "sign", "good.der", "--profile", "client"]);
}

#[test]
fn python_ssl_completes_a_mutual_tls_handshake_with_our_certificates() {
    for intermediate in [false, true] {
        let w = Work::new();
        w.init_ca(intermediate);
        w.ok(&[
            "pki",
            "issue",
            "server",
            "localhost",
            "--san",
            "localhost",
            "--san",
            "127.0.0.1",
        ]);
        w.ok(&[
            "pki", "issue", "client", "alice", "--org", "Example", "--ou", "Payments",
        ]);
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/python_mtls.py");
        let out = run_peer(
            "python3",
            &[
                script,
                "pki/ca.crt",
                "pki/certs/localhost.chain.pem",
                "pki/private/localhost.key",
                "pki/certs/alice.chain.pem",
                "pki/private/alice.key",
            ],
            w.path(),
        );
        let out = text(&out);
        assert!(
            out.contains("server saw client: CN=alice, O=Example, OU=Payments"),
            "{out}"
        );
        assert!(out.contains("client saw server: CN=localhost"), "{out}");
        assert!(out.contains("reply: hello over mutual TLS"), "{out}");
    }
}

#[test]
fn keytool_and_openssl_read_our_pkcs12_files() {
    let w = Work::new();
    w.ok(&["pki", "init", "--intermediate"]);
    w.ok(&["pki", "issue", "client", "alice"]);
    w.write("pass.txt", "changeit\n");
    w.ok(&[
        "pki",
        "export",
        "alice",
        "--p12",
        "--password-file",
        "pass.txt",
        "--out",
        "modern.p12",
    ]);
    w.ok(&[
        "pki",
        "export",
        "alice",
        "--p12",
        "--legacy",
        "--password-file",
        "pass.txt",
        "--out",
        "legacy.p12",
    ]);
    for (file, cipher) in [
        ("modern.p12", "AES-256-CBC"),
        ("legacy.p12", "3-KeyTripleDES"),
    ] {
        let out = run_peer(
            "openssl",
            &[
                "pkcs12",
                "-info",
                "-in",
                file,
                "-passin",
                "pass:changeit",
                "-noenc",
            ],
            w.path(),
        );
        let info = text(&out);
        assert!(out.status.success(), "{file}: {info}");
        assert!(info.contains(cipher), "{file}: {info}");
        assert!(
            info.contains("subject=CN = alice")
                && info.contains("subject=CN = mtls CA Intermediate"),
            "{info}"
        );
        assert!(info.contains("BEGIN PRIVATE KEY"), "the key is in {file}");
        let out = run_peer(
            "keytool",
            &[
                "-list",
                "-v",
                "-storetype",
                "PKCS12",
                "-keystore",
                file,
                "-storepass",
                "changeit",
            ],
            w.path(),
        );
        let list = text(&out);
        assert!(out.status.success(), "{file}: {list}");
        assert!(
            list.contains("Alias name: alice") && list.contains("PrivateKeyEntry"),
            "{list}"
        );
        assert!(list.contains("Certificate chain length: 3"), "{list}");
        // keytool refuses a wrong password, as it should.
        let out = run_peer(
            "keytool",
            &[
                "-list",
                "-storetype",
                "PKCS12",
                "-keystore",
                file,
                "-storepass",
                "wrong-pass",
            ],
            w.path(),
        );
        assert!(!out.status.success(), "{}", text(&out));
    }
    // And what openssl makes, we read.
    let out = run_peer(
        "openssl",
        &[
            "pkcs12",
            "-export",
            "-inkey",
            "pki/private/alice.key",
            "-in",
            "pki/certs/alice.chain.pem",
            "-name",
            "from-openssl",
            "-passout",
            "pass:changeit",
            "-out",
            "openssl.p12",
        ],
        w.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let imported = w.json(&[
        "pki",
        "import",
        "openssl.p12",
        "--password-file",
        "pass.txt",
        "--out-dir",
        "in",
    ]);
    assert_eq!(imported["alias"], "from-openssl");
    assert_eq!(imported["subject"], "CN=alice");
}

/// Seed 001's CRL step done the way CAs publish: `mtls serve` serves the CA's `public/`
/// directory over plain HTTP as the distribution point named in the certificates, and
/// `openssl verify -crl_download` (which wants DER) and `mtls pki verify --crl URL` fetch it.
#[test]
fn the_public_directory_is_a_crl_distribution_point_openssl_downloads_from() {
    let w = Work::new();
    w.init_ca(false);
    let port = crate::util::free_port();
    let url = format!("http://127.0.0.1:{port}/crl.crl");
    w.ok(&["pki", "issue", "client", "alice", "--crl-url", &url]);
    w.ok(&["pki", "issue", "client", "bob", "--crl-url", &url]);
    w.ok(&["pki", "revoke", "alice", "--reason", "keyCompromise"]);
    for f in ["crl.pem", "crl.der", "crl.crl", "ca.crt"] {
        assert!(w.join("pki/public").join(f).is_file(), "public/{f}");
    }
    assert_eq!(w.read("pki/public/crl.der"), w.read("pki/public/crl.crl"));
    let public: Vec<String> = std::fs::read_dir(w.join("pki/public"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        public.iter().all(|f| !f.ends_with(".key")),
        "nothing secret: {public:?}"
    );
    w.write(
        "cdp.toml",
        format!(
            "[[server]]\nlisten = [\"127.0.0.1:{port}\"]\n\n[[server.location]]\npath = \"/\"\nroot = \"pki/public\"\n"
        ),
    );
    let server = w.serve_args("cdp", port, &["serve", "-c", "cdp.toml"]);

    let (code, head, err) = w.curl(&["-sI", &url]);
    assert_eq!(code, 0, "{err}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/pkix-crl"),
        "{head}"
    );

    let (ok, out) = openssl_verify(
        &w,
        &[
            "-crl_download",
            "-crl_check",
            "-CAfile",
            "pki/ca.crt",
            "pki/certs/alice.crt",
        ],
    );
    assert!(!ok && out.contains("certificate revoked"), "{out}");
    let (ok, out) = openssl_verify(
        &w,
        &[
            "-crl_download",
            "-crl_check",
            "-CAfile",
            "pki/ca.crt",
            "pki/certs/bob.crt",
        ],
    );
    assert!(ok, "{out}");

    let verdict = w.fails(&["pki", "verify", "pki/certs/alice.crt", "--crl", &url]);
    assert!(
        verdict.contains("revoked") && verdict.contains("keyCompromise"),
        "{verdict}"
    );
    w.ok(&["pki", "verify", "pki/certs/bob.crt", "--crl", &url]);
    let missing = format!("http://127.0.0.1:{port}/nothing.crl");
    let err = w.fails(&["pki", "verify", "pki/certs/bob.crt", "--crl", &missing]);
    assert!(err.contains("answered 404"), "{err}");
    drop(server);

    // A file that is not there: the reason once, not twice.
    let err = w.fails(&["pki", "verify", "pki/certs/bob.crt", "--crl", "gone.pem"]);
    let reason = "No such file or directory";
    assert_eq!(err.matches(reason).count(), 1, "{err}");
    // Nobody listening: the URL and the reason.
    let err = w.fails(&["pki", "verify", "pki/certs/bob.crt", "--crl", &url]);
    assert!(
        err.contains(&url) && err.contains("cannot connect"),
        "{err}"
    );
}

/// `openssl pkey -pubout` of a key equals `openssl x509 -pubkey` of a certificate: they
/// belong together.
fn assert_key_matches_cert(w: &Work, key: &str, cert: &str) {
    let from_key = run_peer("openssl", &["pkey", "-in", key, "-pubout"], w.path());
    assert!(from_key.status.success(), "{key}: {}", text(&from_key));
    let from_cert = run_peer(
        "openssl",
        &["x509", "-in", cert, "-noout", "-pubkey"],
        w.path(),
    );
    assert!(from_cert.status.success(), "{cert}: {}", text(&from_cert));
    assert_eq!(
        from_key.stdout, from_cert.stdout,
        "{key} does not belong to {cert}"
    );
}

/// keytool on a JKS file with the password `changeit`; must succeed. Returns its output.
fn keytool_jks(w: &Work, store: &str, args: &[&str]) -> String {
    let all = [
        args,
        &[
            "-keystore",
            store,
            "-storetype",
            "JKS",
            "-storepass",
            "changeit",
        ],
    ]
    .concat();
    let out = run_peer("keytool", &all, w.path());
    assert!(out.status.success(), "keytool {all:?}: {}", text(&out));
    text(&out)
}

/// The base64 body of the first PEM certificate in `text`, whatever its line breaks.
fn pem_body(text: &str) -> String {
    text.split("-----BEGIN CERTIFICATE-----")
        .nth(1)
        .and_then(|rest| rest.split("-----END CERTIFICATE-----").next())
        .unwrap_or_else(|| panic!("no certificate in {text}"))
        .split_whitespace()
        .collect()
}

/// Seed 001's CSR flow ends with the requester holding the key and the CA's answer: they
/// bundle the two for Java with `--key`, from the CA directory or from bare files.
#[test]
fn a_csr_signed_certificate_exports_with_the_requesters_key() {
    let w = Work::new();
    w.init_ca(true);
    w.ok(&[
        "pki",
        "csr",
        "web",
        "--san",
        "web.local",
        "--out-dir",
        "req",
    ]);
    w.ok(&["pki", "sign", "req/web.csr", "--profile", "server"]);
    w.write("pass.txt", "changeit\n");
    // The CA alone cannot: the key is with the requester.
    let err = w.fails(&["pki", "export", "web", "--p12"]);
    assert!(err.contains("--key FILE"), "{err}");
    let from_ca = w.json(&[
        "pki",
        "export",
        "web",
        "--p12",
        "--key",
        "req/web.key",
        "--password-file",
        "pass.txt",
        "--out",
        "web.p12",
    ]);
    assert_eq!(from_ca["certificates"], 3, "{from_ca}");
    // Without a CA directory, like openssl pkcs12 -export -in -inkey -certfile; the root is
    // given before the intermediate and still lands last.
    std::fs::create_dir(w.join("elsewhere")).unwrap();
    for file in ["certs/web.crt", "ca.crt", "intermediate.crt"] {
        let name = file.rsplit('/').next().unwrap();
        w.write(&format!("elsewhere/{name}"), w.read(&format!("pki/{file}")));
    }
    std::fs::copy(w.join("req/web.key"), w.join("elsewhere/web.key")).unwrap();
    let bare = w.mtls(&[
        "pki",
        "--dir",
        "no-such-ca",
        "export",
        "--cert",
        "elsewhere/web.crt",
        "--chain",
        "elsewhere/ca.crt",
        "--chain",
        "elsewhere/intermediate.crt",
        "--key",
        "elsewhere/web.key",
        "--p12",
        "--password-file",
        "pass.txt",
    ]);
    assert!(bare.status.success(), "{}", text(&bare));
    assert!(!w.join("no-such-ca").exists());
    for file in ["web.p12", "elsewhere/web.p12"] {
        let out = run_peer(
            "openssl",
            &[
                "pkcs12",
                "-in",
                file,
                "-passin",
                "pass:changeit",
                "-noenc",
                "-out",
                "all.pem",
            ],
            w.path(),
        );
        assert!(out.status.success(), "{file}: {}", text(&out));
        let all = String::from_utf8(w.read("all.pem")).unwrap();
        assert!(all.contains("BEGIN PRIVATE KEY"), "{file}: {all}");
        let subjects: Vec<&str> = all.lines().filter(|l| l.starts_with("subject=")).collect();
        assert_eq!(
            subjects,
            [
                "subject=CN = web",
                "subject=CN = mtls CA Intermediate",
                "subject=CN = mtls CA"
            ],
            "{file}"
        );
        // The key in the bundle is the requester's, and it is the certificate's.
        run_peer(
            "openssl",
            &[
                "pkcs12",
                "-in",
                file,
                "-passin",
                "pass:changeit",
                "-noenc",
                "-nocerts",
                "-out",
                "k.pem",
            ],
            w.path(),
        );
        assert_key_matches_cert(&w, "k.pem", "pki/certs/web.crt");
        let list = text(&run_peer(
            "keytool",
            &[
                "-list",
                "-v",
                "-storetype",
                "PKCS12",
                "-keystore",
                file,
                "-storepass",
                "changeit",
            ],
            w.path(),
        ));
        assert!(
            list.contains("Alias name: web") && list.contains("PrivateKeyEntry"),
            "{file}: {list}"
        );
        assert!(
            list.contains("Certificate chain length: 3"),
            "{file}: {list}"
        );
    }
    // Another key is refused, naming both files.
    w.ok(&["pki", "csr", "other", "--out-dir", "req"]);
    let err = w.fails(&[
        "pki",
        "export",
        "--cert",
        "elsewhere/web.crt",
        "--key",
        "req/other.key",
        "--p12",
        "--password-file",
        "pass.txt",
        "--out",
        "bad.p12",
    ]);
    assert!(
        err.contains("the key req/other.key does not match the certificate elsewhere/web.crt"),
        "{err}"
    );
    assert!(!w.join("bad.p12").exists());
}

/// The entry of a `pki show --json` keystore with this alias.
fn jks_entry<'a>(shown: &'a serde_json::Value, alias: &str) -> &'a serde_json::Value {
    let entries = shown[0]["objects"][0]["entries"].as_array().unwrap();
    entries
        .iter()
        .find(|e| e["alias"] == alias)
        .unwrap_or_else(|| panic!("no entry {alias} in {shown}"))
}

/// Seed 003's Tomcat keystore as keytool makes it: a key pair whose CSR we signed (the
/// reply installed on top, chain of 3), a self-signed RSA key beside it, the root as a
/// trusted entry; and a truststore of trusted entries only. `pki show` lists them (without
/// the password too), `pki import` gets keys that match their certificates.
#[test]
fn keytool_jks_keystores_are_shown_and_imported() {
    let w = Work::new();
    w.init_ca(true);
    w.write("pass.txt", "changeit\n");
    w.write("wrong.txt", "changeme\n");
    keytool_jks(
        &w,
        "server.jks",
        &[
            "-genkeypair",
            "-alias",
            "server",
            "-keyalg",
            "EC",
            "-groupname",
            "secp256r1",
            "-keypass",
            "changeit",
            "-dname",
            "CN=server.example, O=Example",
        ],
    );
    keytool_jks(
        &w,
        "server.jks",
        &[
            "-certreq",
            "-alias",
            "server",
            "-file",
            "server.csr",
            "-ext",
            "SAN=dns:server.example",
        ],
    );
    w.ok(&["pki", "sign", "server.csr", "--profile", "server"]);
    keytool_jks(
        &w,
        "server.jks",
        &[
            "-importcert",
            "-noprompt",
            "-alias",
            "ca",
            "-file",
            "pki/ca.crt",
        ],
    );
    let reply = keytool_jks(
        &w,
        "server.jks",
        &[
            "-importcert",
            "-alias",
            "server",
            "-file",
            "pki/certs/server.chain.pem",
        ],
    );
    assert!(reply.contains("Certificate reply was installed"), "{reply}");
    keytool_jks(
        &w,
        "server.jks",
        &[
            "-genkeypair",
            "-alias",
            "Web",
            "-keyalg",
            "RSA",
            "-keysize",
            "2048",
            "-keypass",
            "changeit",
            "-dname",
            "CN=web",
        ],
    );

    // Without the password: certificates listed, integrity not checked, keys not shown.
    let text_out = w.ok(&["pki", "show", "server.jks"]);
    assert!(
        text_out.contains("Java keystore (JKS), 3 entries"),
        "{text_out}"
    );
    assert!(text_out.contains("Integrity:    NOT checked"), "{text_out}");
    assert!(
        text_out.contains("Entry \"server\": private key"),
        "{text_out}"
    );
    assert!(
        text_out.contains("Entry \"ca\": trusted certificate"),
        "{text_out}"
    );
    let shown = w.json(&["pki", "show", "server.jks"]);
    assert_eq!(shown[0]["objects"][0]["integrity"], "not_checked");
    let server = jks_entry(&shown, "server");
    assert!(server["key"].is_null(), "{server}");
    let subjects: Vec<&str> = server["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        subjects,
        // keytool writes the -dname's last attribute first; shown in the order stored.
        [
            "O=Example, CN=server.example",
            "CN=mtls CA Intermediate",
            "CN=mtls CA"
        ]
    );

    // With it: verified, and both keys described.
    let shown = w.json(&["pki", "show", "server.jks", "--password-file", "pass.txt"]);
    assert_eq!(shown[0]["objects"][0]["integrity"], "verified");
    assert_eq!(
        jks_entry(&shown, "server")["key"]["algorithm"],
        "ECDSA P-256"
    );
    assert_eq!(jks_entry(&shown, "web")["key"]["algorithm"], "RSA 2048");
    assert_eq!(jks_entry(&shown, "ca")["entry_type"], "trusted_certificate");
    let err = w.fails(&["pki", "show", "server.jks", "--password-file", "wrong.txt"]);
    assert!(
        err.contains("wrong password for server.jks (the keystore's integrity check failed)"),
        "{err}"
    );

    // Two keys: import asks which.
    let err = w.fails(&["pki", "import", "server.jks", "--password-file", "pass.txt"]);
    assert!(err.contains("--alias") && err.contains("\"web\""), "{err}");
    let imported = w.json(&[
        "pki",
        "import",
        "server.jks",
        "--alias",
        "server",
        "--password-file",
        "pass.txt",
        "--out-dir",
        "in",
    ]);
    assert_eq!(imported["format"], "JKS");
    assert_eq!(imported["certificates"], 3, "{imported}");
    assert_eq!(
        imported["other_certificates"], 1,
        "the trusted root: {imported}"
    );
    assert_key_matches_cert(&w, "in/server.key", "in/server.crt");
    assert_eq!(w.read("in/server.crt"), w.read("pki/certs/server.crt"));
    let verified = run_peer(
        "openssl",
        &[
            "verify",
            "-CAfile",
            "in/server.trusted.pem",
            "-untrusted",
            "in/server.chain.pem",
            "in/server.crt",
        ],
        w.path(),
    );
    assert!(verified.status.success(), "{}", text(&verified));
    w.ok(&[
        "pki",
        "import",
        "server.jks",
        "--alias",
        "WEB",
        "--password-file",
        "pass.txt",
        "--out-dir",
        "in",
    ]);
    assert_key_matches_cert(&w, "in/web.key", "in/web.crt");

    // A truststore (trusted entries only) imports as the CA certificates it trusts, and only
    // with the password: trust anchors are not taken unchecked.
    for (alias, file) in [("root", "pki/ca.crt"), ("inter", "pki/intermediate.crt")] {
        keytool_jks(
            &w,
            "trust.jks",
            &["-importcert", "-noprompt", "-alias", alias, "-file", file],
        );
    }
    let err = w.fails(&["pki", "import", "trust.jks", "--out-dir", "t"]);
    assert!(err.contains("--password-file"), "{err}");
    let imported = w.json(&[
        "pki",
        "import",
        "trust.jks",
        "--password-file",
        "pass.txt",
        "--out-dir",
        "t",
    ]);
    assert_eq!(imported["trusted"], "t/trust.trusted.pem", "{imported}");
    assert!(imported["key"].is_null(), "{imported}");
    let trusted = String::from_utf8(w.read("t/trust.trusted.pem")).unwrap();
    for file in ["pki/ca.crt", "pki/intermediate.crt"] {
        let body = pem_body(&String::from_utf8(w.read(file)).unwrap());
        assert!(
            trusted
                .split_whitespace()
                .collect::<String>()
                .contains(&body),
            "{file} missing from {trusted}"
        );
    }
}

/// keytool lets a key have its own password (-keypass); JCEKS is its other format. Both are
/// named for what they are.
#[test]
fn a_jks_key_with_its_own_password_and_jceks_are_named() {
    let w = Work::new();
    w.write("pass.txt", "changeit\n");
    keytool_jks(
        &w,
        "odd.jks",
        &[
            "-genkeypair",
            "-alias",
            "odd",
            "-keyalg",
            "EC",
            "-groupname",
            "secp256r1",
            "-keypass",
            "keypass1",
            "-dname",
            "CN=odd",
        ],
    );
    let shown = w.json(&["pki", "show", "odd.jks", "--password-file", "pass.txt"]);
    assert_eq!(shown[0]["objects"][0]["integrity"], "verified");
    let odd = jks_entry(&shown, "odd");
    assert!(odd["key"].is_null(), "{odd}");
    assert_eq!(
        odd["key_note"],
        "protected by a password other than the keystore's"
    );
    let err = w.fails(&["pki", "import", "odd.jks", "--password-file", "pass.txt"]);
    assert!(
        err.contains("the key entry \"odd\" in odd.jks has a password other than the keystore's"),
        "{err}"
    );

    let out = run_peer(
        "keytool",
        &[
            "-genkeypair",
            "-alias",
            "k",
            "-keyalg",
            "EC",
            "-groupname",
            "secp256r1",
            "-dname",
            "CN=k",
            "-keystore",
            "old.jceks",
            "-storetype",
            "JCEKS",
            "-storepass",
            "changeit",
            "-keypass",
            "changeit",
        ],
        w.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    for args in [
        &["pki", "show", "old.jceks"][..],
        &["pki", "import", "old.jceks", "--password-file", "pass.txt"],
    ] {
        let err = w.fails(args);
        assert!(
            err.contains("old.jceks is a JCEKS keystore, which mtls does not read")
                && err.contains("-srcstoretype JCEKS"),
            "{args:?}: {err}"
        );
    }
}

/// What `pki export --jks` writes, keytool lists with the key and the whole chain, exports
/// the same certificate from, and converts to PKCS#12 (which needs the key decrypted).
#[test]
fn keytool_reads_our_jks_keystores() {
    let w = Work::new();
    w.init_ca(true);
    w.ok(&["pki", "issue", "client", "alice"]);
    w.ok(&["pki", "issue", "client", "bob", "--key-type", "rsa2048"]);
    w.write("pass.txt", "changeit\n");
    for name in ["alice", "bob"] {
        let store = format!("{name}.jks");
        let exported = w.json(&[
            "pki",
            "export",
            name,
            "--jks",
            "--trust",
            "pki/ca.crt",
            "--password-file",
            "pass.txt",
            "--out",
            &store,
        ]);
        assert_eq!(exported["format"], "JKS");
        assert_eq!(crate::util::mode(&w.join(&store)), 0o600);
        let list = keytool_jks(&w, &store, &["-list", "-v"]);
        assert!(list.contains("Keystore type: JKS"), "{list}");
        assert!(list.contains("Your keystore contains 2 entries"), "{list}");
        assert!(
            list.contains(&format!("Alias name: {name}")) && list.contains("PrivateKeyEntry"),
            "{list}"
        );
        assert!(list.contains("Certificate chain length: 3"), "{list}");
        assert!(
            list.contains("Alias name: ca") && list.contains("trustedCertEntry"),
            "{list}"
        );
        let exported = keytool_jks(&w, &store, &["-exportcert", "-rfc", "-alias", name]);
        let ours = String::from_utf8(w.read(&format!("pki/certs/{name}.crt"))).unwrap();
        assert_eq!(pem_body(&exported), pem_body(&ours));
        // keytool must decrypt the key to move it into a PKCS#12 file.
        let p12 = format!("{name}-converted.p12");
        let converted = run_peer(
            "keytool",
            &[
                "-importkeystore",
                "-srckeystore",
                &store,
                "-srcstoretype",
                "JKS",
                "-srcstorepass",
                "changeit",
                "-srcalias",
                name,
                "-destkeystore",
                &p12,
                "-deststoretype",
                "PKCS12",
                "-deststorepass",
                "changeit",
            ],
            w.path(),
        );
        assert!(converted.status.success(), "{}", text(&converted));
        let out = run_peer(
            "openssl",
            &[
                "pkcs12",
                "-in",
                &p12,
                "-passin",
                "pass:changeit",
                "-noenc",
                "-nocerts",
                "-out",
                "k.pem",
            ],
            w.path(),
        );
        assert!(out.status.success(), "{}", text(&out));
        assert_key_matches_cert(&w, "k.pem", &format!("pki/certs/{name}.crt"));
        // And the wrong password is refused by keytool too.
        let out = run_peer(
            "keytool",
            &[
                "-list",
                "-keystore",
                &store,
                "-storetype",
                "JKS",
                "-storepass",
                "changeme",
            ],
            w.path(),
        );
        assert!(!out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains("password was incorrect"),
            "{}",
            text(&out)
        );
    }
}

/// Windows and many CAs hand out .p7b bundles; openssl crl2pkcs7 writes the same, PEM and
/// DER. `pki show` lists what is inside; `pki import` writes the chain, leaf first, however
/// the bundle ordered it.
#[test]
fn pkcs7_bundles_from_openssl_are_shown_and_imported() {
    let w = Work::new();
    w.init_ca(true);
    w.ok(&["pki", "issue", "server", "api", "--san", "api.local"]);
    w.ok(&["pki", "revoke", "api", "--reason", "superseded"]);
    // The root first: a SET has no order, and the chain file must still be leaf first.
    for (file, form) in [("b.p7b", "PEM"), ("b.p7c", "DER")] {
        let out = run_peer(
            "openssl",
            &[
                "crl2pkcs7",
                "-nocrl",
                "-certfile",
                "pki/ca.crt",
                "-certfile",
                "pki/certs/api.chain.pem",
                "-outform",
                form,
                "-out",
                file,
            ],
            w.path(),
        );
        assert!(out.status.success(), "{}", text(&out));
        let shown = w.json(&["pki", "show", file]);
        let object = &shown[0]["objects"][0];
        assert_eq!(object["kind"], "pkcs7", "{form}: {shown}");
        let subjects: Vec<&str> = object["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["subject"].as_str().unwrap())
            .collect();
        assert_eq!(
            subjects,
            ["CN=mtls CA", "CN=api", "CN=mtls CA Intermediate"],
            "{form}"
        );
        let out_dir = format!("in-{form}");
        let imported = w.json(&["pki", "import", file, "--out-dir", &out_dir]);
        assert_eq!(imported["format"], "PKCS#7");
        assert!(imported["key"].is_null(), "{imported}");
        let chain = String::from_utf8(w.read(&format!("{out_dir}/b.chain.pem"))).unwrap();
        let expected = format!(
            "{}{}",
            String::from_utf8(w.read("pki/certs/api.chain.pem")).unwrap(),
            String::from_utf8(w.read("pki/ca.crt")).unwrap()
        );
        assert_eq!(chain, expected, "{form}");
        let verified = run_peer(
            "openssl",
            &[
                "verify",
                "-CAfile",
                "pki/ca.crt",
                "-untrusted",
                &format!("{out_dir}/b.chain.pem"),
                "pki/certs/api.crt",
            ],
            w.path(),
        );
        assert!(verified.status.success(), "{}", text(&verified));
    }
    // With a CRL inside, as crl2pkcs7 makes by default.
    let out = run_peer(
        "openssl",
        &[
            "crl2pkcs7",
            "-in",
            "pki/crl.pem",
            "-certfile",
            "pki/intermediate.crt",
            "-out",
            "c.p7b",
        ],
        w.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let shown = w.ok(&["pki", "show", "c.p7b"]);
    assert!(
        shown.contains("PKCS#7 bundle: 1 certificates, 1 CRLs"),
        "{shown}"
    );
    assert!(shown.contains("superseded"), "{shown}");
    // What is not a bundle says so.
    w.write("data.p7", pem_data_message());
    let err = w.fails(&["pki", "show", "data.p7"]);
    assert!(
        err.contains("PKCS#7 data message, not a certificate bundle"),
        "{err}"
    );
}

/// A PKCS#7 `data` ContentInfo (OID 1.2.840.113549.1.7.1 holding "hi"), PEM.
fn pem_data_message() -> &'static str {
    "-----BEGIN PKCS7-----\nMBEGCSqGSIb3DQEHAaAEBAJoaQ==\n-----END PKCS7-----\n"
}
