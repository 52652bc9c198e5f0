//! Encrypted private keys, as a user meets them: keys openssl encrypted (both PKCS#8 and the
//! traditional `Proc-Type` form) are read by `pki show`, `pki pubkey`, `serve` and `get`;
//! keys `mtls pki` encrypts are read by openssl; wrong and missing passwords are one clear
//! sentence, and `mtls check` points at the config line.

use mtls_test_support::{run_peer, text};

use crate::util::{Work, gateway_config, https_get, localhost_pki};

/// `openssl ARGS` in the work directory, which must succeed; returns stdout.
fn openssl(w: &Work, args: &[&str]) -> String {
    let out = run_peer("openssl", args, w.path());
    assert!(out.status.success(), "openssl {args:?}:\n{}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// The public key's SHA-256 as `pki show --json` reports it.
fn public_sha256(w: &Work, args: &[&str]) -> String {
    let report = w.json(&[&["pki", "show"], args].concat());
    report[0]["objects"][0]["public_key_sha256"]
        .as_str()
        .unwrap_or_else(|| panic!("{report}"))
        .to_owned()
}

#[test]
fn keys_openssl_encrypted_are_read_in_every_form() {
    let w = Work::new();
    w.write("pw", "right\n");
    w.write("bad", "wrong\n");
    openssl(
        &w,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "ec.key",
        ],
    );
    openssl(&w, &["genrsa", "-out", "rsa.key", "2048"]);
    // (file, plain key it came from, openssl arguments that write it, what show says)
    let p8 = |cipher: &'static str| ["pkcs8", "-topk8", "-v2", cipher];
    let forms: Vec<(&str, &str, Vec<&str>, &str)> = vec![
        (
            "genpkey.key",
            "",
            vec![
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-aes256",
            ],
            "PKCS#8 (PBES2, AES-256-CBC, PBKDF2-SHA256, 2048 iterations)",
        ),
        (
            "p8-aes128.key",
            "ec.key",
            p8("aes-128-cbc").to_vec(),
            "PKCS#8 (PBES2, AES-128-CBC, PBKDF2-SHA256",
        ),
        (
            "p8-sha1.key",
            "ec.key",
            [&p8("aes-192-cbc")[..], &["-v2prf", "hmacWithSHA1"]].concat(),
            "PKCS#8 (PBES2, AES-192-CBC, PBKDF2-SHA1",
        ),
        (
            "p8-des3.key",
            "rsa.key",
            p8("des3").to_vec(),
            "PKCS#8 (PBES2, DES-EDE3-CBC, PBKDF2-SHA256",
        ),
        (
            "p8-scrypt.key",
            "ec.key",
            vec!["pkcs8", "-topk8", "-scrypt"],
            "PKCS#8 (PBES2, AES-256-CBC, scrypt N=16384 r=8 p=1)",
        ),
        (
            "p8.der",
            "ec.key",
            [&p8("aes-256-cbc")[..], &["-outform", "DER"]].concat(),
            "PKCS#8 (PBES2, AES-256-CBC, PBKDF2-SHA256",
        ),
        (
            "trad-ec.key",
            "ec.key",
            vec!["pkey", "-aes128", "-traditional"],
            "traditional OpenSSL PEM (AES-128-CBC, MD5 key derivation)",
        ),
        (
            "trad-rsa.key",
            "rsa.key",
            vec!["rsa", "-des3", "-traditional"],
            "traditional OpenSSL PEM (DES-EDE3-CBC, MD5 key derivation)",
        ),
        (
            "trad-rsa256.key",
            "rsa.key",
            vec!["rsa", "-aes256", "-traditional"],
            "traditional OpenSSL PEM (AES-256-CBC, MD5 key derivation)",
        ),
    ];
    for (file, plain, args, says) in &forms {
        let mut all = args.clone();
        if !plain.is_empty() {
            all.extend(["-in", plain]);
        }
        // genpkey names its password flag -pass; the others, -passout.
        let pass = if args[0] == "genpkey" {
            "-pass"
        } else {
            "-passout"
        };
        all.extend([pass, "pass:right", "-out", file]);
        openssl(&w, &all);
        let plain = if plain.is_empty() {
            openssl(
                &w,
                &[
                    "pkey",
                    "-in",
                    file,
                    "-passin",
                    "pass:right",
                    "-out",
                    "gen.plain",
                ],
            );
            "gen.plain"
        } else {
            plain
        };

        // Without a password: described, not an error.
        let shown = w.ok(&["pki", "show", file]);
        assert!(
            shown.starts_with("Encrypted private key\n"),
            "{file}: {shown}"
        );
        assert!(shown.contains(says), "{file}: {shown}");
        assert!(shown.contains("--password-file"), "{file}: {shown}");
        let json = w.json(&["pki", "show", file]);
        assert_eq!(json[0]["objects"][0]["kind"], "encrypted_key", "{file}");

        // With it: the same key as the plain one.
        assert_eq!(
            public_sha256(&w, &[file, "--password-file", "pw"]),
            public_sha256(&w, &[plain]),
            "{file}"
        );
        let theirs = openssl(&w, &["pkey", "-in", plain, "-pubout"]);
        let ours = w.ok(&["pki", "pubkey", file, "--key-password-file", "pw"]);
        assert_eq!(ours, theirs, "{file}");

        // Wrong and missing passwords: one sentence each.
        let err = w.fails(&["pki", "pubkey", file, "--key-password-file", "bad"]);
        assert_eq!(err, format!("error: wrong password for {file}\n"));
        let err = w.fails(&["pki", "show", file, "--password-file", "bad"]);
        assert_eq!(err, format!("error: wrong password for {file}\n"));
        let err = w.fails(&["pki", "pubkey", file]);
        assert_eq!(
            err,
            format!(
                "error: {file} is encrypted: give its password with --key-password-file FILE \
                 or --key-password-env VAR\n"
            )
        );
    }

    // PKCS#12-style PBE (OpenSSL 1.0's `pkcs8 -topk8` default) is named, not decrypted.
    openssl(
        &w,
        &[
            "pkcs8",
            "-topk8",
            "-v1",
            "PBE-SHA1-3DES",
            "-in",
            "ec.key",
            "-passout",
            "pass:right",
            "-out",
            "v1.key",
        ],
    );
    let shown = w.ok(&["pki", "show", "v1.key"]);
    assert!(
        shown.contains("pbeWithSHAAnd3-KeyTripleDES-CBC, which mtls cannot read"),
        "{shown}"
    );
    assert!(!shown.contains("--password-file"), "{shown}");
    let err = w.fails(&["pki", "pubkey", "v1.key", "--key-password-file", "pw"]);
    assert!(
        err.contains("openssl pkcs8 -topk8 -v2 aes-256-cbc"),
        "the way out is named: {err}"
    );
}

#[test]
fn keys_mtls_encrypts_are_read_by_openssl_and_by_mtls() {
    let w = Work::new();
    w.init_ca(false);
    w.write("pass", "s3cret passphrase\nignored second line\n");
    w.write("pass.first", "s3cret passphrase\n");

    w.ok(&[
        "pki",
        "csr",
        "web",
        "--san",
        "web.local",
        "--encrypt",
        "--key-password-file",
        "pass",
    ]);
    let key = String::from_utf8(w.read("web.key")).unwrap();
    assert!(
        key.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"),
        "{key}"
    );
    assert_eq!(crate::util::mode(&w.join("web.key")), 0o600);
    openssl(
        &w,
        &[
            "pkey",
            "-in",
            "web.key",
            "-passin",
            "file:pass.first",
            "-noout",
        ],
    );
    let out = run_peer(
        "openssl",
        &["pkey", "-in", "web.key", "-passin", "pass:wrong", "-noout"],
        w.path(),
    );
    assert!(!out.status.success(), "openssl refuses a wrong password");
    let asn1 = openssl(&w, &["asn1parse", "-in", "web.key"]);
    // A 16-byte salt, and 0x0927C0 = 600000 iterations.
    for needle in [
        ":PBES2",
        ":PBKDF2",
        "l=  16 prim: OCTET STRING",
        "INTEGER           :0927C0",
        ":hmacWithSHA256",
        ":aes-256-cbc",
    ] {
        assert!(asn1.contains(needle), "{needle}: {asn1}");
    }
    // The key's public half is the CSR's.
    let theirs = openssl(
        &w,
        &[
            "pkey",
            "-in",
            "web.key",
            "-passin",
            "file:pass.first",
            "-pubout",
        ],
    );
    let ours = w.mtls_env(
        &["pki", "pubkey", "web.key", "--key-password-env", "WEB_PASS"],
        &[("WEB_PASS", "s3cret passphrase")],
    );
    assert!(ours.status.success(), "{}", text(&ours));
    assert_eq!(String::from_utf8(ours.stdout).unwrap(), theirs);
    let csr_key = openssl(&w, &["req", "-in", "web.csr", "-pubkey", "-noout"]);
    assert_eq!(csr_key, theirs);
    let shown = w.ok(&["pki", "show", "web.key"]);
    assert!(
        shown.contains("PKCS#8 (PBES2, AES-256-CBC, PBKDF2-SHA256, 600000 iterations)"),
        "{shown}"
    );

    // issue --encrypt, then export needs the key's password (and says so without it).
    let out = w.mtls_env(
        &[
            "pki",
            "issue",
            "client",
            "bob",
            "--encrypt",
            "--key-password-env",
            "BOB_PASS",
        ],
        &[("BOB_PASS", "bob's")],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("(0600, encrypted)"));
    w.write("bob.pass", "bob's\n");
    openssl(
        &w,
        &[
            "pkey",
            "-in",
            "pki/private/bob.key",
            "-passin",
            "file:bob.pass",
            "-noout",
        ],
    );
    w.write("p12.pass", "for the p12\n");
    let err = w.fails(&[
        "pki",
        "export",
        "bob",
        "--p12",
        "--password-file",
        "p12.pass",
    ]);
    assert_eq!(
        err,
        "error: pki/private/bob.key is encrypted: give its password with --key-password-file \
         FILE or --key-password-env VAR\n"
    );
    w.ok(&[
        "pki",
        "export",
        "bob",
        "--p12",
        "--password-file",
        "p12.pass",
        "--key-password-file",
        "bob.pass",
        "--out",
        "bob.p12",
    ]);
    openssl(
        &w,
        &[
            "pkcs12",
            "-in",
            "bob.p12",
            "-passin",
            "file:p12.pass",
            "-noout",
        ],
    );
    // import --encrypt writes the key from the .p12 encrypted again.
    w.ok(&[
        "pki",
        "import",
        "bob.p12",
        "--password-file",
        "p12.pass",
        "--name",
        "bob-again",
        "--encrypt",
        "--key-password-file",
        "pass",
    ]);
    openssl(
        &w,
        &[
            "pkey",
            "-in",
            "bob-again.key",
            "-passin",
            "file:pass.first",
            "-noout",
        ],
    );

    // A password without --encrypt is a mistake, not a plain key; --encrypt needs one.
    let err = w.fails(&["pki", "csr", "x", "--key-password-file", "pass"]);
    assert!(err.contains("add --encrypt"), "{err}");
    assert!(!w.join("x.key").exists());
    let out = w.mtls(&["pki", "csr", "x", "--encrypt"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // A CA key someone encrypted by hand: the message says what to do.
    openssl(
        &w,
        &[
            "pkey",
            "-in",
            "pki/ca.key",
            "-aes256",
            "-passout",
            "pass:x",
            "-out",
            "ca.enc.key",
        ],
    );
    std::fs::rename(w.join("ca.enc.key"), w.join("pki/ca.key")).unwrap();
    let err = w.fails(&["pki", "issue", "client", "carol"]);
    assert!(
        err.contains("this CA key is encrypted") && err.contains("openssl pkey -in"),
        "{err}"
    );
}

/// `mtls serve` with an encrypted server key whose password is the second line of
/// `key_password_file` answers curl, and `mtls get` sends an encrypted client key.
#[test]
fn serve_and_get_read_encrypted_keys() {
    let w = localhost_pki();
    w.ok(&["pki", "issue", "client", "alice"]);
    openssl(
        &w,
        &[
            "pkey",
            "-in",
            "pki/private/localhost.key",
            "-aes256",
            "-passout",
            "pass:right",
            "-out",
            "server.enc.key",
        ],
    );
    openssl(
        &w,
        &[
            "pkey",
            "-in",
            "pki/private/alice.key",
            "-aes128",
            "-traditional",
            "-passout",
            "pass:alice pw",
            "-out",
            "alice.enc.key",
        ],
    );
    w.write("server.pass", "an old password\r\nright\n");
    let location = "[[server.location]]\npath = \"/\"\n\
                    return = \"200 verify=$ssl_client_verify subject=$ssl_client_s_dn\"\n";
    let config = gateway_config("", "", location).replace(
        "key = \"pki/private/localhost.key\"",
        "key = \"server.enc.key\"\nkey_password_file = \"server.pass\"",
    );
    let server = w.serve("enc", &config);
    let (status, body) = https_get(&w, &server, "/", &[]);
    assert_eq!((status, body.as_str()), (200, "verify=NONE subject="));

    let url = format!("https://localhost:{}/", server.port);
    let resolve = format!("localhost:{}:127.0.0.1", server.port);
    let get = |extra: &[&str], env: &[(&str, &str)]| {
        let args = [
            &[
                "get",
                url.as_str(),
                "--resolve",
                &resolve,
                "--ca",
                "pki/ca.crt",
                "--cert",
                "pki/certs/alice.crt",
                "--key",
                "alice.enc.key",
            ][..],
            extra,
        ]
        .concat();
        w.mtls_env(&args, env)
    };
    let out = get(
        &["--key-password-env", "ALICE_PW"],
        &[("ALICE_PW", "alice pw")],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "verify=SUCCESS subject=CN=alice"
    );
    let out = get(&[], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(
            "alice.enc.key is encrypted: give its password with --key-password-file FILE or \
             --key-password-env VAR"
        ),
        "{}",
        text(&out)
    );
    w.write("alice.bad", "not it\n");
    let out = get(&["--key-password-file", "alice.bad"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("wrong password for alice.enc.key"),
        "{}",
        text(&out)
    );
}

/// A wrong or missing password is a config error at the line to fix, for `[server.tls]`
/// and for `proxy_tls`, found by `mtls check` before anything listens.
#[test]
fn check_points_at_the_password_line() {
    let w = localhost_pki();
    openssl(
        &w,
        &[
            "pkey",
            "-in",
            "pki/private/localhost.key",
            "-aes256",
            "-passout",
            "pass:right",
            "-out",
            "enc.key",
        ],
    );
    w.write("wrong.pass", "wrong\nalso wrong\n");
    w.write("right.pass", "right\n");
    let tls = |key_lines: &str| {
        gateway_config(
            "",
            "",
            "[[server.location]]\npath = \"/\"\nreturn = \"200 ok\"\n",
        )
        .replace("key = \"pki/private/localhost.key\"", key_lines)
        .replace("{port}", "8000")
    };
    // gateway_config's [server.tls] starts on line 6: certificate, then key on line 8.
    w.write(
        "wrong.toml",
        tls("key = \"enc.key\"\nkey_password_file = \"wrong.pass\""),
    );
    let err = w.fails(&["check", "-c", "wrong.toml"]);
    assert!(
        err.contains("wrong.toml:9:21: key_password_file: ")
            && err.contains("wrong password for ")
            && err.contains("enc.key (tried 2 passwords)"),
        "{err}"
    );
    w.write("missing.toml", tls("key = \"enc.key\""));
    let err = w.fails(&["check", "-c", "missing.toml"]);
    assert!(
        err.contains("missing.toml:8:7: key: ")
            && err.contains("enc.key is encrypted: give its password with key_password_file"),
        "{err}"
    );
    w.write(
        "right.toml",
        tls("key = \"enc.key\"\nkey_password_file = \"right.pass\""),
    );
    let out = w.ok(&["check", "-c", "right.toml"]);
    assert!(out.contains("ok"), "{out}");

    // proxy_tls: the gateway's client key for its upstream.
    w.ok(&["pki", "issue", "client", "gateway"]);
    openssl(
        &w,
        &[
            "pkey",
            "-in",
            "pki/private/gateway.key",
            "-aes256",
            "-passout",
            "pass:right",
            "-out",
            "gw.enc.key",
        ],
    );
    let proxy = |password_file: &str| {
        format!(
            "[[server]]\nlisten = [\"127.0.0.1:8000\"]\n[[server.location]]\npath = \"/\"\n\
             proxy_pass = \"https://127.0.0.1:9\"\n[server.location.proxy_tls]\n\
             trusted_ca = \"pki/ca.crt\"\ncertificate = \"pki/certs/gateway.crt\"\n\
             key = \"gw.enc.key\"\nkey_password_file = \"{password_file}\"\n"
        )
    };
    w.write("proxy-wrong.toml", proxy("wrong.pass"));
    let err = w.fails(&["check", "-c", "proxy-wrong.toml"]);
    assert!(
        err.contains("proxy-wrong.toml:10:21: proxy_tls.key_password_file: ")
            && err.contains("wrong password for "),
        "{err}"
    );
    w.write("proxy-right.toml", proxy("right.pass"));
    w.ok(&["check", "-c", "proxy-right.toml"]);
}
