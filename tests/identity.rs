//! Identity that cannot be forged: subjects with the characters that confuse DN parsers
//! (`,` `+` `"` `\` `=`), control characters and non-ASCII text, as a black box.
//!
//! - `$ssl_client_s_dn` / `$ssl_client_i_dn` are compared byte for byte with real nginx
//!   (OpenSSL's RFC 2253 printing) for the same client certificates;
//! - our own identity header (`X-Client-Subject`) of a certificate whose single O holds
//!   `Ops, OU=Payments, CN=carol` must not read as the real carol's;
//! - a newline in a refused certificate's CN must not start a new log line;
//! - `mtls pki sign` refuses such subjects unless told `--allow-odd-subject`.

use mtls_test_support::forge::{
    self, BmpString, DnType, DnValue, Ia5String, PrintableString, TeletexString, UniversalString,
};
use serde_json::Value;

use crate::util::{Server, Work, free_port, localhost_pki};

/// A CA with a server certificate for localhost/127.0.0.1.
fn pki() -> Work {
    localhost_pki()
}

fn utf8(s: &str) -> DnValue {
    DnValue::Utf8String(s.to_owned())
}

fn printable(s: &str) -> DnValue {
    DnValue::PrintableString(PrintableString::try_from(s).unwrap())
}

fn ia5(s: &str) -> DnValue {
    DnValue::Ia5String(Ia5String::try_from(s).unwrap())
}

fn oid(arcs: &[u64]) -> DnType {
    DnType::CustomDnType(arcs.to_vec())
}

/// The odd subjects, each with a name for its files and for failure messages.
fn odd_subjects() -> Vec<(&'static str, Vec<(DnType, DnValue)>)> {
    vec![
        (
            "specials",
            vec![
                (DnType::OrganizationName, utf8("a,b+c\"d\\e<f>g;h=i")),
                (DnType::CommonName, utf8("x=y, z")),
            ],
        ),
        (
            "hash",
            vec![
                (DnType::OrganizationName, utf8("#")),
                (DnType::OrganizationalUnitName, utf8("#not hex")),
                (DnType::CommonName, utf8("a#b")),
            ],
        ),
        (
            "spaces",
            vec![
                (DnType::OrganizationName, utf8(" ")),
                (DnType::OrganizationalUnitName, utf8("  two  ")),
                (DnType::CommonName, utf8(" lead and trail ")),
            ],
        ),
        (
            "controls",
            vec![
                (DnType::OrganizationName, utf8("tab\there\x7fdel")),
                (
                    DnType::CommonName,
                    utf8("line1\nline2\r\x00\x01\x1b[31mred\x1b[0m"),
                ),
            ],
        ),
        (
            "unicode",
            vec![
                (DnType::LocalityName, utf8("Zürich")),
                (DnType::OrganizationName, utf8("日本")),
                (DnType::CommonName, utf8("é\u{85}\u{2028}x")),
            ],
        ),
        (
            "string_types",
            vec![
                (DnType::CountryName, printable("DE")),
                (
                    DnType::StateOrProvinceName,
                    DnValue::BmpString(BmpString::try_from("Île, 日本").unwrap()),
                ),
                (
                    DnType::LocalityName,
                    DnValue::TeletexString(TeletexString::try_from("K+oeln").unwrap()),
                ),
                (DnType::OrganizationName, ia5("Acme; Inc")),
                (
                    DnType::OrganizationalUnitName,
                    DnValue::UniversalString(UniversalString::try_from("𝄞 music").unwrap()),
                ),
                (DnType::CommonName, printable("bob")),
            ],
        ),
        (
            "attributes",
            vec![
                (oid(&[0, 9, 2342, 19200300, 100, 1, 25]), ia5("example")),
                (DnType::CountryName, printable("FR")),
                (DnType::StateOrProvinceName, utf8("Île-de-France")),
                (DnType::LocalityName, utf8("Paris")),
                (DnType::OrganizationName, utf8("Acme")),
                (DnType::OrganizationalUnitName, utf8("Payments")),
                (DnType::CommonName, utf8("carol")),
                (oid(&[2, 5, 4, 5]), printable("0042")),
                (oid(&[1, 2, 840, 113549, 1, 9, 1]), ia5("carol@example.com")),
            ],
        ),
        (
            "unknown_oid",
            vec![
                (oid(&[1, 3, 6, 1, 4, 1, 55555, 7]), utf8("x,y")),
                (DnType::CommonName, utf8("z")),
            ],
        ),
        (
            "forged_carol",
            vec![(DnType::OrganizationName, utf8("Ops, OU=Payments, CN=carol"))],
        ),
    ]
}

/// nginx's `return` of the two DN variables, for any client certificate.
fn nginx_dn(work: &Work) -> Server {
    let port = free_port();
    work.nginx(
        port,
        &format!(
            r#"
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {{dir}}/pki/certs/localhost.chain.pem;
        ssl_certificate_key {{dir}}/pki/private/localhost.key;
        ssl_client_certificate {{dir}}/pki/ca.crt;
        ssl_verify_client optional_no_ca;
        location / {{
            default_type text/plain;
            return 200 "$ssl_client_s_dn|$ssl_client_i_dn";
        }}
    }}
"#
        ),
    )
}

/// `mtls serve` doing what `nginx_dn` does.
fn mtls_dn(work: &Work) -> Server {
    work.serve(
        "dn",
        r#"
[[server]]
listen = ["127.0.0.1:{port}"]
server_name = ["localhost"]
[server.tls]
certificate = "pki/certs/localhost.chain.pem"
key = "pki/private/localhost.key"
client_ca = "pki/ca.crt"
verify_client = "optional_no_ca"

[[server.location]]
path = "/"
return = "200 $ssl_client_s_dn|$ssl_client_i_dn"
"#,
    )
}

/// GET https://localhost:PORT/ with the certificate `name` (`NAME.crt` / `NAME.key` in the
/// work directory); the body.
fn body_with(work: &Work, port: u16, name: &str) -> String {
    let url = format!("https://localhost:{port}/");
    let resolve = format!("localhost:{port}:127.0.0.1");
    let (cert, key) = (format!("{name}.crt"), format!("{name}.key"));
    let (code, out, err) = work.curl(&[
        "--cacert",
        "pki/ca.crt",
        "--resolve",
        &resolve,
        "--cert",
        &cert,
        "--key",
        &key,
        &url,
    ]);
    assert_eq!(code, 0, "curl {url} with {name}: {err}");
    out
}

#[test]
fn dn_variables_are_nginx_byte_for_byte() {
    let work = pki();
    let (ca_cert, ca_key) = (work.join("pki/ca.crt"), work.join("pki/ca.key"));
    let mut names = Vec::new();
    for (name, subject) in odd_subjects() {
        let (cert, key) = forge::client_with_subject(&ca_cert, &ca_key, &subject);
        work.write(&format!("{name}.crt"), cert);
        work.write(&format!("{name}.key"), key);
        names.push(name.to_owned());
        // Self-signed: the issuer DN is just as odd.
        let (cert, key) = forge::self_signed_with_subject(&subject);
        work.write(&format!("{name}-self.crt"), cert);
        work.write(&format!("{name}-self.key"), key);
        names.push(format!("{name}-self"));
    }
    // rcgen writes one attribute per RDN and each type once: a multi-valued RDN and a
    // repeated type come from openssl.
    let openssl = |args: &[&str]| {
        let out = mtls_test_support::run_peer("openssl", args, work.path());
        assert!(out.status.success(), "{}", mtls_test_support::text(&out));
    };
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "multi.key",
        "-out",
        "multi.csr",
        "-multivalue-rdn",
        "-subj",
        "/DC=org/DC=example/O=Acme, Inc+OU=Pay\\+ments/CN=dave+UID=d1+title=boss",
    ]);
    // Extensions make it X.509 v3, which rustls insists on.
    work.write("multi.ext", "extendedKeyUsage = clientAuth\n");
    openssl(&[
        "x509",
        "-req",
        "-extfile",
        "multi.ext",
        "-in",
        "multi.csr",
        "-CA",
        "pki/ca.crt",
        "-CAkey",
        "pki/ca.key",
        "-set_serial",
        "7",
        "-days",
        "1",
        "-out",
        "multi.crt",
    ]);
    names.push("multi".to_owned());

    let nginx = nginx_dn(&work);
    let ours = mtls_dn(&work);
    for name in &names {
        let expected = body_with(&work, nginx.port, name);
        let got = body_with(&work, ours.port, name);
        assert_eq!(
            got, expected,
            "{name}: mtls serve (left) and nginx (right) disagree"
        );
    }
    // And the plain case still reads as it always did.
    assert_eq!(
        body_with(&work, ours.port, "attributes"),
        "emailAddress=carol@example.com,serialNumber=0042,CN=carol,OU=Payments,O=Acme,\
         L=Paris,ST=\\C3\\8Ele-de-France,C=FR,DC=example|CN=mtls CA"
    );
}

/// `mtls echo-server` (plain HTTP) behind `mtls serve` with `optional_no_ca`.
fn echo_behind_gateway(work: &Work) -> (Server, Server) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let echo = work.serve_args("echo", port, &["echo-server", "--listen", &addr]);
    let gw = work.serve(
        "gw",
        &format!(
            r#"
[[server]]
listen = ["127.0.0.1:{{port}}"]
server_name = ["localhost"]
[server.tls]
certificate = "pki/certs/localhost.chain.pem"
key = "pki/private/localhost.key"
client_ca = "pki/ca.crt"
verify_client = "optional"

[[server.location]]
path = "/"
proxy_pass = "http://{addr}"
"#
        ),
    );
    (echo, gw)
}

/// The X-Client-Subject the upstream saw for a request with certificate `name`.
fn subject_header(work: &Work, gw: &Server, name: &str) -> String {
    let body = body_with(work, gw.port, name);
    let echoed: Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    let values: Vec<&str> = echoed["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|pair| pair[0].as_str() == Some("x-client-subject"))
        .map(|pair| pair[1].as_str().unwrap())
        .collect();
    assert_eq!(values.len(), 1, "one X-Client-Subject: {body}");
    values[0].to_owned()
}

#[test]
fn a_forged_subject_does_not_read_as_the_real_one() {
    let work = pki();
    work.ok(&[
        "pki", "issue", "client", "carol", "--org", "Ops", "--ou", "Payments",
    ]);
    std::fs::copy(work.join("pki/certs/carol.crt"), work.join("carol.crt")).unwrap();
    std::fs::copy(work.join("pki/private/carol.key"), work.join("carol.key")).unwrap();
    let (cert, key) = forge::client_with_subject(
        &work.join("pki/ca.crt"),
        &work.join("pki/ca.key"),
        &[(DnType::OrganizationName, utf8("Ops, OU=Payments, CN=carol"))],
    );
    work.write("forged.crt", cert);
    work.write("forged.key", key);
    let (_echo, gw) = echo_behind_gateway(&work);

    let real = subject_header(&work, &gw, "carol");
    let forged = subject_header(&work, &gw, "forged");
    assert_eq!(
        real, "O=Ops, OU=Payments, CN=carol",
        "today's format is kept"
    );
    assert_eq!(forged, "O=Ops\\, OU=Payments\\, CN=carol");
    assert_ne!(real, forged);
}

#[test]
fn a_subject_cannot_forge_a_refusal_log_line() {
    let work = pki();
    let fake = "2031-01-01T00:00:00Z  INFO forged line from the certificate";
    let (cert, key) = forge::self_signed_with_subject(&[(
        DnType::CommonName,
        utf8(&format!("mallory\n{fake}\r\x1b[2K")),
    )]);
    work.write("mallory.crt", cert);
    work.write("mallory.key", key);
    let server = work.serve(
        "s",
        r#"
[[server]]
listen = ["127.0.0.1:{port}"]
server_name = ["localhost"]
[server.tls]
certificate = "pki/certs/localhost.chain.pem"
key = "pki/private/localhost.key"
client_ca = "pki/ca.crt"
verify_client = "on"

[[server.location]]
path = "/"
return = "200 ok"
"#,
    );
    let url = format!("https://localhost:{}/", server.port);
    let resolve = format!("localhost:{}:127.0.0.1", server.port);
    let (code, _, _) = work.curl(&[
        "--cacert",
        "pki/ca.crt",
        "--resolve",
        &resolve,
        "--cert",
        "mallory.crt",
        "--key",
        "mallory.key",
        &url,
    ]);
    assert_ne!(code, 0, "a self-signed certificate is refused");
    let log = server.wait_log("TLS handshake refused");
    for line in log.lines() {
        assert!(
            !line.starts_with(fake) && !line.contains('\r') && !line.contains('\x1b'),
            "a log line was forged or holds control characters: {line:?}\n{log}"
        );
    }
    let refusal = log
        .lines()
        .find(|l| l.contains("TLS handshake refused"))
        .unwrap();
    assert!(
        refusal.contains("CN=mallory\\0A2031-01-01T00:00:00Z  INFO forged line"),
        "the subject is escaped on the refusal's own line: {refusal}"
    );
}

#[test]
fn pki_sign_refuses_odd_subjects_unless_allowed() {
    let work = Work::new();
    work.init_ca(false);
    let openssl = |subject: &str, name: &str| {
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let out = mtls_test_support::run_peer(
            "openssl",
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                subject,
            ],
            work.path(),
        );
        assert!(out.status.success(), "{}", mtls_test_support::text(&out));
    };
    openssl("/O=Ops, OU=Payments, CN=carol", "forged");
    openssl("/CN=alice\\+x", "plus");
    openssl("/O=Ops/OU=Payments/CN=carol", "carol");
    openssl("/CN=bob/CN=eve", "twice");
    // Two CNs cannot both go into the certificate: refused, never silently cut to one.
    let err = work.fails(&["pki", "sign", "twice.csr", "--profile", "client"]);
    assert!(err.contains("CN more than once"), "{err}");
    let err = work.fails(&[
        "pki",
        "sign",
        "twice.csr",
        "--profile",
        "client",
        "--allow-odd-subject",
    ]);
    assert!(err.contains("CN more than once"), "{err}");

    let err = work.fails(&["pki", "sign", "forged.csr", "--profile", "client"]);
    assert!(
        err.contains("O") && err.contains("','") && err.contains("--allow-odd-subject"),
        "names the attribute, the character and the way out: {err}"
    );
    let err = work.fails(&["pki", "sign", "plus.csr", "--profile", "client"]);
    assert!(
        err.contains("CN") && err.contains("'+'"),
        "names the attribute: {err}"
    );
    assert!(
        !work.join("pki/certs/forged.crt").exists(),
        "nothing was signed"
    );

    work.ok(&["pki", "sign", "carol.csr", "--profile", "client"]);
    let signed = work.json(&[
        "pki",
        "sign",
        "forged.csr",
        "--profile",
        "client",
        "--allow-odd-subject",
    ]);
    assert_eq!(
        signed["entry"]["subject"], "O=Ops\\, OU=Payments\\, CN=carol",
        "the database shows the subject escaped"
    );
}
