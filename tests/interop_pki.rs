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
