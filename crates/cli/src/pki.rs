//! `mtls pki ...`: flags in, validated requests to `mtls-pki` out, results printed as text
//! or `--json`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde::Serialize;
use time::OffsetDateTime;

use mtls_pki::ca::{self, Ca, InitOptions, IssueRequest, LeafOptions, RevokeTarget, SignRequest};
use mtls_pki::db::{Entry, Profile, Reason, Status};
use mtls_pki::fs::{self as pkifs, Mode};
use mtls_pki::{Credentials, KeyType, Password, San, Subject};

/// Flags shared by every `mtls pki` command.
#[derive(Debug, Args)]
pub struct PkiArgs {
    /// The CA directory.
    #[arg(long, global = true, default_value = "pki", value_name = "DIR")]
    dir: PathBuf,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: PkiCommand,
}

#[derive(Debug, Subcommand)]
enum PkiCommand {
    /// Create a root CA (and optionally an intermediate that signs every leaf).
    Init {
        /// The CA's common name.
        #[arg(long, default_value = "mtls CA")]
        cn: String,
        /// Key type: p256, p384, ed25519, rsa2048, rsa3072, rsa4096.
        #[arg(long, default_value = "p256")]
        key_type: KeyType,
        /// Lifetime of the root, in days.
        #[arg(long, default_value_t = ca::DEFAULT_CA_DAYS)]
        days: u32,
        /// Also create an intermediate CA that signs all leaves (chains then include it).
        #[arg(long)]
        intermediate: bool,
        /// Replace an existing CA (everything it issued stops verifying).
        #[arg(long)]
        force: bool,
    },
    /// Issue a key and certificate: `issue server NAME --san ...` or `issue client NAME`.
    Issue {
        /// server (serverAuth) or client (clientAuth).
        profile: ProfileArg,
        /// Short name: files are certs/NAME.crt and private/NAME.key.
        name: String,
        #[command(flatten)]
        subject: SubjectArgs,
        /// Subject alternative name: host, IP, dns:X, ip:X, email:X, uri:X (repeatable).
        #[arg(long = "san", value_name = "SAN")]
        sans: Vec<San>,
        /// Key type: p256, p384, ed25519, rsa2048, rsa3072, rsa4096.
        #[arg(long, default_value = "p256")]
        key_type: KeyType,
        #[command(flatten)]
        leaf: LeafArgs,
        /// Issue even if a valid certificate already has this name.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        encrypt: EncryptArgs,
    },
    /// Make a private key and a certificate signing request (the requester's side).
    Csr {
        /// Writes NAME.key and NAME.csr.
        name: String,
        #[command(flatten)]
        subject: SubjectArgs,
        /// Subject alternative name to request (repeatable).
        #[arg(long = "san", value_name = "SAN")]
        sans: Vec<San>,
        /// Key type.
        #[arg(long, default_value = "p256")]
        key_type: KeyType,
        /// Directory to write NAME.key and NAME.csr into.
        #[arg(long, default_value = ".")]
        out_dir: PathBuf,
        /// Overwrite an existing NAME.key.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        encrypt: EncryptArgs,
    },
    /// Sign a certificate signing request (from `mtls pki csr`, `openssl req`, keytool...).
    Sign {
        /// The CSR file (PEM or DER).
        csr: PathBuf,
        /// server or client.
        #[arg(long)]
        profile: ProfileArg,
        /// Name in the CA database (default: the CSR file name without extension).
        #[arg(long)]
        name: Option<String>,
        /// Extra subject alternative names to add to the requested ones.
        #[arg(long = "san", value_name = "SAN")]
        sans: Vec<San>,
        #[command(flatten)]
        leaf: LeafArgs,
        /// Also write the certificate here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Sign even if a subject value holds `,`, `+`, `=` or a control character, which
        /// can make the name read like another one (`O=Ops, OU=Payments, CN=carol` in a
        /// single O).
        #[arg(long)]
        allow_odd_subject: bool,
        /// Sign even if a valid certificate already has this name.
        #[arg(long)]
        force: bool,
    },
    /// Revoke a certificate by name or serial and publish a new CRL.
    Revoke {
        /// The certificate's name.
        #[arg(required_unless_present = "serial", conflicts_with = "serial")]
        name: Option<String>,
        /// The certificate's serial number (hex).
        #[arg(long)]
        serial: Option<String>,
        /// keyCompromise, CACompromise, affiliationChanged, superseded, cessationOfOperation,
        /// certificateHold, privilegeWithdrawn, unspecified.
        #[arg(long, default_value = "unspecified")]
        reason: Reason,
    },
    /// Publish a new CRL (its CRL number goes up by one each time).
    Crl {
        /// Time until nextUpdate, e.g. 7d, 12h, 30d.
        #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
        next_update: std::time::Duration,
    },
    /// List every certificate the CA issued, with status and time to expiry.
    List,
    /// Describe certificates, chains, CSRs, CRLs, keys, .p12, .jks and .p7b files (PEM or DER).
    ///
    /// A JKS keystore is listed without its password too (its certificates are not
    /// encrypted), but then its integrity is not checked and its keys are not shown.
    Show {
        /// Files to describe.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Write a private key's public key as PEM SubjectPublicKeyInfo (`openssl pkey -pubout`).
    Pubkey {
        /// The private key (PEM or DER: PKCS#8, SEC1 or PKCS#1).
        key: PathBuf,
        /// Write it here (atomically) instead of to standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        key_password: KeyPasswordArgs,
    },
    /// Check a certificate like `openssl verify`; exit 1 with the precise reason if invalid.
    Verify {
        /// The certificate (PEM or DER); extra certificates after the first are intermediates.
        cert: PathBuf,
        /// Trusted CA certificates (default: DIR/ca.crt).
        #[arg(long)]
        ca: Vec<PathBuf>,
        /// Intermediate certificates that are not trusted by themselves.
        #[arg(long)]
        untrusted: Vec<PathBuf>,
        /// CRLs to check revocation against: files (PEM or DER) or http(s):// URLs, fetched
        /// with a 10 s deadline and a 10 MiB cap.
        #[arg(long, value_name = "FILE|URL")]
        crl: Vec<PathBuf>,
        /// Which certificates need a CRL from their issuer: `chain` (every one, fail closed,
        /// as the gateway's `crl` does; openssl's -crl_check_all) or `leaf` (the leaf's
        /// issuer must have one, the others are checked when present; -crl_check).
        #[arg(long, value_name = "chain|leaf", default_value = "chain", value_parser = parse_crl_check)]
        crl_check: mtls_verify::CrlScope,
        /// Match a host name against the subject CN of a certificate without any
        /// subjectAltName, as nginx (OpenSSL) does (the gateway's `common_name_fallback`).
        #[arg(long)]
        common_name_fallback: bool,
        /// What the certificate must be good for: server or client.
        #[arg(long)]
        purpose: Option<ProfileArg>,
        /// Host name, IP address or email address the certificate must match.
        #[arg(long, value_parser = parse_peer_name)]
        name: Option<mtls_verify::PeerName>,
        /// Verify as of this time (RFC 3339, e.g. 2027-01-01T00:00:00Z) instead of now.
        #[arg(long, value_parser = parse_rfc3339)]
        at: Option<OffsetDateTime>,
        /// Most intermediates allowed between the leaf and the trusted CA.
        #[arg(long, default_value_t = 8)]
        verify_depth: usize,
    },
    /// Export a key with its certificate chain as PKCS#12 (.p12 / .pfx) or JKS.
    ///
    /// From the CA: `export NAME --p12` (the key from DIR/private/NAME.key, or --key). From
    /// files, without a CA, like `openssl pkcs12 -export -in -inkey -certfile`:
    /// `export --cert web.crt --key web.key --chain ca.crt --p12`. The key must belong to the
    /// certificate, and the chain is put in order (leaf, intermediates, root).
    Export(ExportArgs),
    /// Read a .p12 / .pfx, a JKS keystore or a .p7b bundle back into PEM files.
    ///
    /// A key entry becomes NAME.key, NAME.crt and NAME.chain.pem; trusted certificates
    /// (CA entries of a keystore) NAME.trusted.pem; a PKCS#7 bundle NAME.chain.pem. The
    /// format is read from the content, not the file name.
    Import(ImportArgs),
}

/// `pki export`'s flags.
#[derive(Debug, Args)]
struct ExportArgs {
    /// The certificate's name in the CA (or give --cert FILE instead).
    #[arg(required_unless_present = "cert", conflicts_with = "cert")]
    name: Option<String>,
    #[command(flatten)]
    format: ExportFormat,
    /// The certificate (PEM or DER), with any intermediates after it; no CA needed.
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// More certificates for the chain: intermediates, the root (repeatable, any order).
    #[arg(long, value_name = "FILE", requires = "cert")]
    chain: Vec<PathBuf>,
    /// The private key (PEM or DER) when it is not DIR/private/NAME.key: the one kept by
    /// whoever made the CSR that `pki sign` signed.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// The alias (keytool) or friendly name (default: NAME, or the --cert file's name).
    #[arg(long)]
    alias: Option<String>,
    /// JKS: also store these CA certificates as trusted entries (aliases ca, ca-2, ...),
    /// so the one file serves Java as keystore and truststore (repeatable).
    #[arg(long, value_name = "FILE", conflicts_with = "p12")]
    trust: Vec<PathBuf>,
    /// Output file (default: DIR/private/NAME.p12 or .jks; with --cert, beside it).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    password: PasswordArgs,
    /// Accept an empty password from --password-env or --password-file (an empty
    /// variable or file is otherwise refused: it is usually a mistake, and anyone who
    /// copies the file then holds the key).
    #[arg(long)]
    allow_empty_password: bool,
    /// 3DES and SHA-1 instead of AES-256 and SHA-256, for Java 8 and old Windows.
    #[arg(long, conflicts_with = "jks")]
    legacy: bool,
    /// The password of the private key, when it is encrypted (`issue --encrypt`).
    #[command(flatten)]
    key_password: KeyPasswordArgs,
}

/// `pki import`'s flags.
#[derive(Debug, Args)]
struct ImportArgs {
    /// The file to read.
    file: PathBuf,
    #[command(flatten)]
    password: PasswordArgs,
    /// JKS: the key entry to import, when the keystore holds several.
    #[arg(long)]
    alias: Option<String>,
    /// Base name of the files written (default: the alias, or the file name without
    /// extension).
    #[arg(long)]
    name: Option<String>,
    /// Directory to write into.
    #[arg(long, default_value = ".")]
    out_dir: PathBuf,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    encrypt: EncryptArgs,
}

/// The format `pki export` writes: one of them, named, so scripts say what they get.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct ExportFormat {
    /// Write PKCS#12: Java 9+ (keytool's default), Windows, browsers, openssl.
    #[arg(long)]
    p12: bool,
    /// Write a Java KeyStore (JKS) for applications that still insist on one; its key
    /// protection is SHA-1 based and weak, prefer --p12 where the reader allows.
    #[arg(long)]
    jks: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ProfileArg {
    Server,
    Client,
}

impl From<ProfileArg> for Profile {
    fn from(p: ProfileArg) -> Profile {
        match p {
            ProfileArg::Server => Profile::Server,
            ProfileArg::Client => Profile::Client,
        }
    }
}

#[derive(Debug, Args)]
struct SubjectArgs {
    /// Common name (default: the NAME).
    #[arg(long)]
    cn: Option<String>,
    /// Organization (O).
    #[arg(long)]
    org: Option<String>,
    /// Organizational unit (OU).
    #[arg(long)]
    ou: Option<String>,
}

impl SubjectArgs {
    fn subject(&self, name: &str) -> Subject {
        Subject {
            common_name: self.cn.clone().unwrap_or_else(|| name.to_owned()),
            organization: self.org.clone(),
            organizational_unit: self.ou.clone(),
        }
    }
}

/// Where a PKCS#12 or keystore password comes from; never from a flag value, which `ps`
/// would show.
#[derive(Debug, Args)]
struct PasswordArgs {
    /// Read the password from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with = "password_file")]
    password_env: Option<String>,
    /// Read the password from the first line of this file.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
}

impl PasswordArgs {
    fn read(&self) -> Result<Option<String>> {
        if let Some(var) = &self.password_env {
            let value = std::env::var(var)
                .with_context(|| format!("--password-env {var}: the variable is not set"))?;
            return Ok(Some(value));
        }
        if let Some(file) = &self.password_file {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading --password-file {}", file.display()))?;
            let line = text.lines().next().unwrap_or_default();
            return Ok(Some(line.to_owned()));
        }
        Ok(None)
    }
}

/// Where an encrypted private key's password comes from; like `PasswordArgs`, never a
/// flag value.
#[derive(Debug, Args)]
#[group(id = "key_password", multiple = false)]
struct KeyPasswordArgs {
    /// Read the key's password from this file. To read a key, each line is a password,
    /// tried in order (nginx's ssl_password_file); to write one, the first line.
    #[arg(long, value_name = "FILE")]
    key_password_file: Option<PathBuf>,
    /// Read the key's password from this environment variable.
    #[arg(long, value_name = "VAR")]
    key_password_env: Option<String>,
}

/// How to give an encrypted key's password, for error messages.
const KEY_PASSWORD_HINT: &str = "--key-password-file FILE or --key-password-env VAR";

impl KeyPasswordArgs {
    /// The passwords to try on a key being read; none for a plain key.
    fn passwords(&self) -> Result<Vec<Password>> {
        if let Some(file) = &self.key_password_file {
            return Password::read_file(file)
                .with_context(|| format!("--key-password-file {}", file.display()));
        }
        if let Some(var) = &self.key_password_env {
            return Ok(vec![Password::from_env(var).context("--key-password-env")?]);
        }
        Ok(Vec::new())
    }

    fn given(&self) -> bool {
        self.key_password_file.is_some() || self.key_password_env.is_some()
    }

    /// The key at `path` (`data`), decrypted with these passwords if it is encrypted.
    fn read_key(
        &self,
        data: &[u8],
        path: &Path,
    ) -> Result<rustls_pki_types::PrivateKeyDer<'static>> {
        let what = path.display().to_string();
        Ok(
            mtls_pki::key::private_key_with(data, &what, &self.passwords()?)
                .map_err(|e| e.with_password_hint(KEY_PASSWORD_HINT))?,
        )
    }
}

/// `--encrypt` for the commands that write a private key.
#[derive(Debug, Args)]
struct EncryptArgs {
    /// Write the private key encrypted (PKCS#8, PBES2 with AES-256-CBC and
    /// PBKDF2-HMAC-SHA256), with the password from --key-password-file or
    /// --key-password-env.
    #[arg(long, requires = "key_password")]
    encrypt: bool,
    #[command(flatten)]
    password: KeyPasswordArgs,
}

impl EncryptArgs {
    /// The password to encrypt the key with, or `None` for a plain key.
    fn password(&self) -> Result<Option<Password>> {
        if !self.encrypt {
            if self.password.given() {
                bail!(
                    "--key-password-file and --key-password-env give the password of an \
                     encrypted key: add --encrypt to write one"
                );
            }
            return Ok(None);
        }
        // To write, only the first line counts.
        let first = self.password.passwords()?.into_iter().next();
        Ok(Some(first.context("--encrypt needs a password")?))
    }
}

#[derive(Debug, Args)]
struct LeafArgs {
    /// Lifetime in days (default 365 for servers and clients).
    #[arg(long, conflicts_with = "not_after")]
    days: Option<u32>,
    /// notBefore: RFC 3339 (2027-01-01T00:00:00Z) or relative to now (-2d, +1h, now);
    /// default five minutes ago. A future time makes a not-yet-valid certificate.
    #[arg(long, value_name = "WHEN", value_parser = parse_when, allow_hyphen_values = true)]
    not_before: Option<OffsetDateTime>,
    /// notAfter, instead of --days: RFC 3339 or relative (-1d makes an expired certificate).
    #[arg(long, value_name = "WHEN", value_parser = parse_when, allow_hyphen_values = true)]
    not_after: Option<OffsetDateTime>,
    /// CRL distribution point URL to put in the certificate (repeatable).
    #[arg(long = "crl-url", value_name = "URL")]
    crl_urls: Vec<String>,
    /// OCSP responder URL to put in the certificate.
    #[arg(long = "ocsp-url", value_name = "URL")]
    ocsp_url: Option<String>,
}

impl LeafArgs {
    fn options(&self, profile: ProfileArg) -> LeafOptions {
        LeafOptions {
            profile: profile.into(),
            days: self.days,
            not_before: self.not_before,
            not_after: self.not_after,
            crl_urls: self.crl_urls.clone(),
            ocsp_url: self.ocsp_url.clone(),
        }
    }
}

/// Run one `mtls pki` command.
pub fn run(args: PkiArgs) -> Result<ExitCode> {
    let dir = args.dir.as_path();
    let json = args.json;
    match args.command {
        PkiCommand::Init {
            cn,
            key_type,
            days,
            intermediate,
            force,
        } => {
            let options = InitOptions {
                common_name: cn,
                key_type,
                days,
                intermediate,
                force,
            };
            let ca = Ca::init(dir, &options)
                .with_context(|| format!("creating a CA in {}", dir.display()))?;
            let layout = ca.layout();
            let report = InitReport {
                dir: dir.to_path_buf(),
                ca_cert: layout.ca_cert(),
                ca_key: layout.ca_key(),
                intermediate: intermediate.then(|| layout.intermediate_cert()),
                crl: layout.crl(),
                key_type,
                days,
            };
            emit(json, &report, || {
                let mut s = format!(
                    "Created CA {:?} ({}, {} days) in {}\n  certificate:  {}\n  key:          {} (0600)\n",
                    options.common_name,
                    key_type,
                    days,
                    dir.display(),
                    report.ca_cert.display(),
                    report.ca_key.display()
                );
                if let Some(i) = &report.intermediate {
                    s += &format!("  intermediate: {} (signs every leaf)\n", i.display());
                }
                s += &format!(
                    "  CRL:          {}\nNext: mtls pki issue server localhost --san 127.0.0.1 --dir {}\n",
                    report.crl.display(),
                    dir.display()
                );
                s
            })
        }
        PkiCommand::Issue {
            profile,
            name,
            subject,
            sans,
            key_type,
            leaf,
            force,
            encrypt,
        } => {
            let key_password = encrypt.password()?;
            let mut ca = open(dir)?;
            let request = IssueRequest {
                subject: subject.subject(&name),
                name,
                sans,
                key_type,
                leaf: leaf.options(profile),
                force,
                key_password,
            };
            let issued = ca.issue(&request).with_context(|| {
                format!(
                    "issuing {} certificate {}",
                    profile_word(profile),
                    request.name
                )
            })?;
            warn_if_not_valid_now(&issued);
            emit(json, &issued, || issued_text(&issued))
        }
        PkiCommand::Csr {
            name,
            subject,
            sans,
            key_type,
            out_dir,
            force,
            encrypt,
        } => {
            let key_password = encrypt.password()?;
            mtls_pki::names::check_name(&name)?;
            let key_path = out_dir.join(format!("{name}.key"));
            let csr_path = out_dir.join(format!("{name}.csr"));
            if key_path.exists() && !force {
                bail!(
                    "{} already exists; it may be the only copy of a key in use (use --force to replace it)",
                    key_path.display()
                );
            }
            let subject = subject.subject(&name);
            let (key, csr) = ca::make_csr(&subject, &sans, key_type)?;
            pkifs::create_dir(&out_dir, Mode::Public)?;
            let key_pem = mtls_pki::key::to_pem(&key, key_password.as_ref())?;
            pkifs::write_atomic(&key_path, key_pem.as_bytes(), Mode::Secret)?;
            pkifs::write_atomic(&csr_path, csr.as_bytes(), Mode::Public)?;
            let report = CsrReport {
                key: key_path,
                key_encrypted: key_password.is_some(),
                csr: csr_path,
                subject: format!("CN={}", subject.common_name),
                sans: sans.iter().map(ToString::to_string).collect(),
                key_type,
            };
            emit(json, &report, || {
                format!(
                    "Wrote {} (0600{}) and {}\nSend the CSR to the CA: mtls pki sign {} --profile server|client\n",
                    report.key.display(),
                    if report.key_encrypted {
                        ", encrypted"
                    } else {
                        ""
                    },
                    report.csr.display(),
                    report.csr.display()
                )
            })
        }
        PkiCommand::Sign {
            csr,
            profile,
            name,
            sans,
            leaf,
            out,
            allow_odd_subject,
            force,
        } => {
            let name = match name {
                Some(n) => n,
                None => csr
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .context("the CSR path has no file name; pass --name")?,
            };
            let data = pkifs::read(&csr)?;
            let mut ca = open(dir)?;
            let request = SignRequest {
                name,
                extra_sans: sans,
                leaf: leaf.options(profile),
                out,
                allow_odd_subject,
                force,
            };
            let issued = ca
                .sign_csr(&data, &csr.display().to_string(), &request)
                .with_context(|| format!("signing {}", csr.display()))?;
            warn_if_not_valid_now(&issued);
            emit(json, &issued, || issued_text(&issued))
        }
        PkiCommand::Revoke {
            name,
            serial,
            reason,
        } => {
            let target = match (name, serial) {
                (_, Some(s)) => RevokeTarget::Serial(s),
                (Some(n), None) => RevokeTarget::Name(n),
                (None, None) => bail!("name the certificate to revoke, or pass --serial"),
            };
            let mut ca = open(dir)?;
            let (entry, crl) = ca.revoke(&target, reason)?;
            #[derive(Serialize)]
            struct Report<'a> {
                revoked: &'a Entry,
                crl: &'a ca::CrlInfo,
            }
            emit(
                json,
                &Report {
                    revoked: &entry,
                    crl: &crl,
                },
                || {
                    format!(
                        "Revoked {} (serial {}, {}) for {}\nPublished {} (CRL number {}, {} revoked)\n",
                        entry.name,
                        entry.serial,
                        entry.subject,
                        reason,
                        crl.path.display(),
                        crl.number,
                        crl.revoked
                    )
                },
            )
        }
        PkiCommand::Crl { next_update } => {
            let mut ca = open(dir)?;
            let crl = ca.write_crl(next_update)?;
            emit(json, &crl, || {
                format!(
                    "Published {} (CRL number {}, {} revoked, next update {})\n",
                    crl.path.display(),
                    crl.number,
                    crl.revoked,
                    mtls_pki::db::rfc3339(crl.next_update)
                )
            })
        }
        PkiCommand::List => {
            let ca = open(dir)?;
            let now = OffsetDateTime::now_utc();
            let rows: Vec<ListRow> = ca
                .database()?
                .entries
                .into_iter()
                .map(|entry| ListRow {
                    status: entry.status(now),
                    days_left: (entry.not_after - now).whole_days(),
                    entry,
                })
                .collect();
            emit(json, &rows, || list_text(&rows, now))
        }
        PkiCommand::Pubkey {
            key,
            out,
            key_password,
        } => {
            let data = pkifs::read(&key)?;
            let der = key_password.read_key(&data, &key)?;
            let pair = mtls_pki::key::from_der(&der, &key.display().to_string())?;
            let pem = mtls_pki::pem::encode("PUBLIC KEY", &mtls_pki::key::public_key_info(&pair));
            match out {
                Some(path) => {
                    pkifs::write_atomic(&path, pem.as_bytes(), Mode::Public)?;
                    eprintln!(
                        "wrote {} ({})",
                        path.display(),
                        mtls_pki::key::describe(&pair)
                    );
                }
                None => print!("{pem}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        PkiCommand::Show { files, password } => {
            let password = password.read()?;
            let mut all = Vec::new();
            for file in &files {
                let data = pkifs::read(file)?;
                let what = file.display().to_string();
                let objects = mtls_pki::show::describe(&data, &what, password.as_deref())?;
                all.push(ShowReport {
                    file: file.clone(),
                    objects,
                });
            }
            emit(json, &all, || {
                all.iter()
                    .map(|r| {
                        let body: String = r.objects.iter().map(ToString::to_string).collect();
                        if files.len() > 1 {
                            format!("== {}\n{body}", r.file.display())
                        } else {
                            body
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        PkiCommand::Verify {
            cert,
            ca,
            untrusted,
            crl,
            purpose,
            name,
            at,
            verify_depth,
            crl_check,
            common_name_fallback,
        } => {
            let certs = read_certs(&cert)?;
            let (leaf, rest) = certs
                .split_first()
                .with_context(|| format!("{} holds no certificate", cert.display()))?;
            let ca_files = if ca.is_empty() {
                let default = mtls_pki::ca::Layout::new(dir).ca_cert();
                if !default.exists() {
                    bail!("no trusted CA: pass --ca FILE (or --dir of a CA made by mtls pki init)");
                }
                vec![default]
            } else {
                ca
            };
            let mut roots = Vec::new();
            for f in &ca_files {
                roots.extend(read_certs(f)?);
            }
            let mut intermediates = rest.to_vec();
            for f in &untrusted {
                intermediates.extend(read_certs(f)?);
            }
            let mut crls = Vec::new();
            for f in &crl {
                crls.extend(read_crls(f, &ca_files)?);
            }
            let policy = mtls_verify::Policy {
                crls,
                crl_scope: crl_check,
                max_intermediates: Some(verify_depth),
                cn_fallback: common_name_fallback,
                ..mtls_verify::Policy::new(
                    roots,
                    purpose.map(|p| match p {
                        ProfileArg::Server => mtls_verify::Purpose::Server,
                        ProfileArg::Client => mtls_verify::Purpose::Client,
                    }),
                )
            };
            let at = at.unwrap_or_else(OffsetDateTime::now_utc);
            // A CA or CRL the verifier cannot use is a verdict too (`malformed`,
            // `crl_unsupported`), in the same report.
            let verdict = mtls_verify::Verifier::new(policy)
                .and_then(|verifier| verifier.verify(leaf, &intermediates, name.as_ref(), at));
            match verdict {
                Ok(verified) => emit(
                    json,
                    &VerifyReport {
                        valid: true,
                        check: None,
                        reason: None,
                        about: None,
                        chain: &verified.chain,
                        checked_crls: verified.checked_crls,
                    },
                    || format!("{}: {verified}\n", cert.display()),
                ),
                Err(failure) => {
                    if json {
                        emit(
                            true,
                            &VerifyReport {
                                valid: false,
                                check: Some(failure.check.name()),
                                reason: Some(failure.sentence.clone()),
                                about: failure.about.as_ref(),
                                chain: &failure.chain,
                                checked_crls: 0,
                            },
                            String::new,
                        )?;
                    } else {
                        eprintln!(
                            "{}: FAILED ({}): {}",
                            cert.display(),
                            failure.check,
                            failure.sentence
                        );
                    }
                    Ok(ExitCode::from(1))
                }
            }
        }
        PkiCommand::Export(args) => export(dir, json, args),
        PkiCommand::Import(args) => import(json, args),
    }
}

fn export(dir: &Path, json: bool, args: ExportArgs) -> Result<ExitCode> {
    let extension = if args.format.jks { "jks" } else { "p12" };
    let (credentials, default_alias, default_out) = match (&args.name, &args.cert) {
        (Some(name), _) => {
            let ca = open(dir)?;
            let chain_file = ca.layout().chain(name).display().to_string();
            let (mut certs, key_data, key_file) = match &args.key {
                Some(key) => (ca.chain(name)?, pkifs::read(key)?, key.clone()),
                None => {
                    let (certs, key_data) = ca.credentials(name)?;
                    (certs, key_data, ca.layout().key(name))
                }
            };
            // Java truststores and browsers want the root too, so the bundle is complete.
            certs.push(ca.root().clone());
            // Credentials take the key plain; an encrypted one is opened here.
            let key_der = args.key_password.read_key(&key_data, &key_file)?;
            let credentials = Credentials::new(
                key_der.secret_der(),
                &key_file.display().to_string(),
                certs,
                &chain_file,
            )?;
            let out = ca.layout().p12(name).with_extension(extension);
            (credentials, name.clone(), out)
        }
        (None, Some(cert)) => {
            // clap makes --cert require --key; this keeps the promise without a panic.
            let key = args.key.as_ref().context("--cert needs --key FILE")?;
            let mut certs = read_certs(cert)?;
            for file in &args.chain {
                certs.extend(read_certs(file)?);
            }
            let key_der = args.key_password.read_key(&pkifs::read(key)?, key)?;
            let credentials = Credentials::new(
                key_der.secret_der(),
                &key.display().to_string(),
                certs,
                &cert.display().to_string(),
            )?;
            // web.crt and web.chain.pem both make web.p12 (alias web).
            let stem = cert
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .context("--cert has no file name")?;
            let stem = stem.strip_suffix(".chain").unwrap_or(&stem).to_owned();
            let out = cert.with_file_name(format!("{stem}.{extension}"));
            (credentials, stem, out)
        }
        (None, None) => bail!("name the certificate (NAME) or pass --cert FILE --key FILE"),
    };
    let out = args.out.unwrap_or(default_out);
    let mut alias = args.alias.unwrap_or(default_alias);
    let (password, generated) = match args.password.read()? {
        Some(p) if p.is_empty() && !args.allow_empty_password => {
            let from = match (&args.password.password_env, &args.password.password_file) {
                (Some(var), _) => format!("--password-env {var}: the variable is empty"),
                (None, Some(file)) => format!(
                    "--password-file {}: its first line is empty",
                    file.display()
                ),
                (None, None) => "the password is empty".to_owned(),
            };
            bail!(
                "{from}, and {} would be protected by an empty password; give a \
                 password, leave out --password-env/--password-file to have one generated, \
                 or pass --allow-empty-password if an empty one is what you want",
                out.display()
            );
        }
        Some(p) => (p, None),
        None => {
            let p = mtls_pki::names::random_password();
            let mut file = out.clone().into_os_string();
            file.push(".password");
            let file = PathBuf::from(file);
            pkifs::write_atomic(&file, format!("{p}\n").as_bytes(), Mode::Secret)?;
            (p, Some(file))
        }
    };
    let mut trusted = Vec::new();
    for file in &args.trust {
        for cert in read_certs(file)? {
            let alias = match trusted.len() {
                0 => "ca".to_owned(),
                n => format!("ca-{}", n + 1),
            };
            trusted.push((alias, cert));
        }
    }
    let trusted_count = trusted.len();
    let (bundle, format, encryption) = if args.format.jks {
        alias = mtls_pki::jks::normal_alias(&alias);
        let options = mtls_pki::jks::JksOptions {
            alias: alias.clone(),
            trusted,
        };
        (
            mtls_pki::jks::export(&credentials, &password, &options)?,
            "JKS",
            "JKS key protector + SHA-1 (weak; prefer --p12 where the reader allows)",
        )
    } else {
        let options = mtls_pki::p12::Pkcs12Options {
            legacy: args.legacy,
            alias: alias.clone(),
        };
        let encryption = if args.legacy {
            "3DES + HMAC-SHA1 (legacy)"
        } else {
            "AES-256-CBC + HMAC-SHA256"
        };
        (
            mtls_pki::p12::export(&credentials, &password, &options)?,
            "PKCS#12",
            encryption,
        )
    };
    pkifs::write_atomic(&out, &bundle, Mode::Secret)?;
    let report = ExportReport {
        file: out,
        format,
        alias,
        subject: mtls_pki::show::describe_certificate(
            credentials.leaf(),
            OffsetDateTime::now_utc(),
        )?
        .subject,
        certificates: credentials.chain().len(),
        trusted_certificates: trusted_count,
        encryption,
        password_file: generated,
    };
    emit(json, &report, || {
        let mut s = format!(
            "Wrote {} (0600, {}): key + {} certificates of {}, alias {:?}, {}\n",
            report.file.display(),
            report.format,
            report.certificates,
            report.subject,
            report.alias,
            report.encryption
        );
        if report.trusted_certificates > 0 {
            s += &format!(
                "  plus {} trusted CA certificates (keytool's trustedCertEntry)\n",
                report.trusted_certificates
            );
        }
        if let Some(p) = &report.password_file {
            s += &format!("  password: generated, saved in {} (0600)\n", p.display());
        }
        s
    })
}

/// What an imported file held, whatever its format.
struct Imported {
    format: &'static str,
    alias: Option<String>,
    /// The key (PKCS#8 DER) with its chain, leaf first.
    credentials: Option<(Vec<u8>, Vec<rustls_pki_types::CertificateDer<'static>>)>,
    /// Certificates without a key: a bundle's, or a keystore's trusted entries.
    chain_only: Vec<rustls_pki_types::CertificateDer<'static>>,
    trusted: Vec<rustls_pki_types::CertificateDer<'static>>,
}

fn read_container(data: &[u8], what: &str, args: &ImportArgs) -> Result<Imported> {
    use mtls_pki::{jks, p12, pkcs7};
    let keystore = jks::looks_like_jks(data) || jks::looks_like_jceks(data);
    if args.alias.is_some() && !keystore {
        bail!("--alias picks a key entry of a JKS keystore, and {what} is not one");
    }
    if keystore {
        // Read once without the password, so a JCEKS or damaged file is named as such
        // before a password is asked for.
        jks::read(data, None, what)?;
        let password = args.password.read()?.with_context(|| {
            format!(
                "{what} is a Java keystore: pass --password-env VAR or --password-file FILE \
                 (its integrity is checked before anything is written)"
            )
        })?;
        let store = jks::read(data, Some(&password), what)?;
        let trusted = |skip: Option<&str>| {
            store
                .entries
                .iter()
                .filter(|e| !e.is_key() && Some(e.alias.as_str()) != skip)
                .flat_map(|e| e.certificates.clone())
                .collect::<Vec<_>>()
        };
        if args.alias.is_none() && store.entries.iter().all(|e| !e.is_key()) {
            // A truststore: its CA certificates are what there is to import.
            let trusted = trusted(None);
            if trusted.is_empty() {
                bail!("{what} is an empty keystore");
            }
            return Ok(Imported {
                format: "JKS",
                alias: None,
                credentials: None,
                chain_only: Vec::new(),
                trusted,
            });
        }
        let entry = store.key_entry(args.alias.as_deref(), what)?;
        return Ok(Imported {
            format: "JKS",
            alias: Some(entry.alias.clone()),
            credentials: Some((entry.key(&password, what)?, entry.certificates.clone())),
            chain_only: Vec::new(),
            trusted: trusted(Some(&entry.alias)),
        });
    }
    if pkcs7::looks_like_pkcs7(data) {
        let bundle = pkcs7::read(data, what)?;
        if bundle.certificates.is_empty() {
            bail!("{what} is a PKCS#7 bundle with no certificates");
        }
        // Leaf first when they make one chain; else as the file has them (a CA bundle).
        let chain = mtls_pki::credentials::as_one_chain(&bundle.certificates)
            .unwrap_or(bundle.certificates);
        return Ok(Imported {
            format: "PKCS#7",
            alias: None,
            credentials: None,
            chain_only: chain,
            trusted: Vec::new(),
        });
    }
    if !p12::looks_like_pkcs12(data) {
        bail!(
            "{what} is not a PKCS#12 (.p12, .pfx), JKS or PKCS#7 (.p7b) file; \
             `mtls pki show {what}` says what it holds"
        );
    }
    let password = args.password.read()?.unwrap_or_default();
    let contents = p12::import(data, &password, what)?;
    Ok(Imported {
        format: "PKCS#12",
        alias: contents.alias,
        credentials: contents.key_pkcs8.map(|key| (key, contents.chain)),
        chain_only: Vec::new(),
        trusted: contents.other_certs,
    })
}

fn import(json: bool, args: ImportArgs) -> Result<ExitCode> {
    let key_password = args.encrypt.password()?;
    let file = &args.file;
    let data = pkifs::read(file)?;
    let what = file.display().to_string();
    let imported = read_container(&data, &what, &args)?;
    // The alias names the files when it can be a file name; else the file's own name.
    let alias = imported
        .alias
        .clone()
        .filter(|a| mtls_pki::names::check_name(a).is_ok());
    let name = match args.name.clone().or(alias) {
        Some(n) => n,
        None => file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .context("the file has no name; pass --name")?,
    };
    mtls_pki::names::check_name(&name)?;
    let path = |suffix: &str| args.out_dir.join(format!("{name}{suffix}"));
    // Checked before anything is written: the files written work together.
    let credentials = match &imported.credentials {
        Some((key, chain)) => {
            let key_what = format!("the key in {what}");
            Some(Credentials::new(key, &key_what, chain.clone(), &what)?)
        }
        None => None,
    };
    let mut files: Vec<(PathBuf, String, Mode)> = Vec::new();
    if let Some(c) = &credentials {
        let key_pem = match &key_password {
            Some(password) => mtls_pki::encrypted::encrypt_pkcs8(&c.pkcs8(), password)?,
            None => mtls_pki::pem::encode("PRIVATE KEY", &c.pkcs8()),
        };
        files.push((path(".key"), key_pem, Mode::Secret));
        files.push((
            path(".crt"),
            mtls_pki::pem::encode("CERTIFICATE", c.leaf()),
            Mode::Public,
        ));
        files.push((
            path(".chain.pem"),
            mtls_pki::pem::encode_certificates(c.chain()),
            Mode::Public,
        ));
    }
    if !imported.chain_only.is_empty() {
        files.push((
            path(".chain.pem"),
            mtls_pki::pem::encode_certificates(&imported.chain_only),
            Mode::Public,
        ));
    }
    if !imported.trusted.is_empty() {
        files.push((
            path(".trusted.pem"),
            mtls_pki::pem::encode_certificates(&imported.trusted),
            Mode::Public,
        ));
    }
    if files.is_empty() {
        bail!("{what} holds no private key and no certificate");
    }
    for (p, _, _) in &files {
        if p.exists() && !args.force {
            bail!("{} already exists (use --force to replace it)", p.display());
        }
    }
    pkifs::create_dir(&args.out_dir, Mode::Public)?;
    for (p, text, mode) in &files {
        pkifs::write_atomic(p, text.as_bytes(), *mode)?;
    }
    let leaf = credentials
        .as_ref()
        .map(|c| c.leaf())
        .or(imported.chain_only.first());
    let subject = match leaf {
        Some(leaf) => {
            Some(mtls_pki::show::describe_certificate(leaf, OffsetDateTime::now_utc())?.subject)
        }
        None => None,
    };
    let written = |suffix: &str| {
        let p = path(suffix);
        files.iter().any(|(f, _, _)| *f == p).then_some(p)
    };
    let report = ImportReport {
        format: imported.format,
        alias: imported.alias,
        subject,
        key: written(".key"),
        cert: written(".crt"),
        chain: written(".chain.pem"),
        trusted: written(".trusted.pem"),
        certificates: credentials
            .as_ref()
            .map_or(imported.chain_only.len(), |c| c.chain().len()),
        other_certificates: imported.trusted.len(),
    };
    emit(json, &report, || {
        let mut s = format!("Read {what} ({})", report.format);
        if let Some(subject) = &report.subject {
            s += &format!(": {subject}");
        }
        if let Some(alias) = &report.alias {
            s += &format!(" (alias {alias:?})");
        }
        if report.chain.is_some() {
            s += &format!(", {} certificates in its chain", report.certificates);
        }
        if report.trusted.is_some() {
            s += &format!(", {} trusted CA certificates", report.other_certificates);
        }
        s += "\n";
        for (label, file) in [
            ("key:    ", &report.key),
            ("cert:   ", &report.cert),
            ("chain:  ", &report.chain),
            ("trusted:", &report.trusted),
        ] {
            if let Some(file) = file {
                let note = if label.starts_with("key") {
                    " (0600)"
                } else {
                    ""
                };
                s += &format!("  {label} {}{note}\n", file.display());
            }
        }
        s
    })
}

/// `pki verify --json`: the verdict, the check that failed, the certificate it is about,
/// and the chain that was built (the whole chain when valid; as far as it got when not).
#[derive(Serialize)]
struct VerifyReport<'a> {
    valid: bool,
    check: Option<&'static str>,
    reason: Option<String>,
    about: Option<&'a mtls_verify::Link>,
    chain: &'a [mtls_verify::Link],
    checked_crls: usize,
}

fn parse_crl_check(s: &str) -> std::result::Result<mtls_verify::CrlScope, String> {
    match s {
        "chain" => Ok(mtls_verify::CrlScope::Chain),
        "leaf" => Ok(mtls_verify::CrlScope::EndEntity),
        _ => Err(format!("expected chain or leaf, not {s:?}")),
    }
}

fn parse_peer_name(s: &str) -> std::result::Result<mtls_verify::PeerName, String> {
    s.parse()
}

fn read_certs(path: &Path) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>> {
    let data = pkifs::read(path)?;
    Ok(mtls_pki::pem::certificates(
        &data,
        &path.display().to_string(),
    )?)
}

/// The CRLs in a file, or at an http(s) URL (a CRL distribution point: DER, or PEM);
/// https servers are verified against `trusted_ca`.
fn read_crls(path: &Path, trusted_ca: &[PathBuf]) -> Result<Vec<Vec<u8>>> {
    let what = path.display().to_string();
    let data = match path.to_str().filter(|s| mtls_client::fetch::is_url(s)) {
        Some(url) => {
            let options = mtls_client::fetch::Fetch {
                trusted_ca: trusted_ca.to_vec(),
                ..Default::default()
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the runtime")?;
            runtime
                .block_on(mtls_client::fetch::fetch(url, &options))?
                .to_vec()
        }
        None => pkifs::read(path)?,
    };
    if !mtls_pki::pem::is_pem(&data) {
        // A DER CRL is a SEQUENCE: an HTML error page or a redirect notice is named as
        // what it is, not as a parse error deep in the DER.
        if data.first() != Some(&0x30) {
            let start: String = String::from_utf8_lossy(&data[..data.len().min(40)])
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            bail!(
                "{what} is not a CRL (neither PEM nor DER; it {})",
                if data.is_empty() {
                    "is empty".to_owned()
                } else {
                    format!("starts with {:?}", start.trim())
                }
            );
        }
        return Ok(vec![data]);
    }
    let crls: Vec<Vec<u8>> = mtls_pki::pem::sections(&data, &what)?
        .into_iter()
        .filter(|s| s.label == "X509 CRL")
        .map(|s| s.der)
        .collect();
    if crls.is_empty() {
        bail!("{what}: no X509 CRL section");
    }
    Ok(crls)
}

/// `--not-before`/`--not-after`: RFC 3339, `now`, or a signed offset from now that
/// humantime reads (`-2d`, `+12h`, `-1h30m`).
fn parse_when(s: &str) -> Result<OffsetDateTime, String> {
    when(s, OffsetDateTime::now_utc())
}

fn when(s: &str, now: OffsetDateTime) -> Result<OffsetDateTime, String> {
    let offset = |text: &str| {
        humantime::parse_duration(text)
            .map_err(|e| format!("{s:?}: {e}"))
            .and_then(|d| time::Duration::try_from(d).map_err(|e| format!("{s:?}: {e}")))
    };
    let at = if s == "now" {
        Some(now)
    } else if let Some(rest) = s.strip_prefix('-') {
        now.checked_sub(offset(rest)?)
    } else if let Some(rest) = s.strip_prefix('+') {
        now.checked_add(offset(rest)?)
    } else {
        return parse_rfc3339(s)
            .map_err(|e| format!("{e}; or a time relative to now such as -2d, +12h or now"));
    };
    at.ok_or_else(|| format!("{s:?} is out of range"))
}

fn parse_rfc3339(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("expected RFC 3339 like 2027-01-01T00:00:00Z: {e}"))
}

#[derive(Serialize)]
struct ShowReport {
    file: PathBuf,
    objects: Vec<mtls_pki::show::Object>,
}

#[derive(Serialize)]
struct ExportReport {
    file: PathBuf,
    format: &'static str,
    alias: String,
    subject: String,
    certificates: usize,
    trusted_certificates: usize,
    encryption: &'static str,
    password_file: Option<PathBuf>,
}

#[derive(Serialize)]
struct ImportReport {
    format: &'static str,
    alias: Option<String>,
    subject: Option<String>,
    key: Option<PathBuf>,
    cert: Option<PathBuf>,
    chain: Option<PathBuf>,
    trusted: Option<PathBuf>,
    certificates: usize,
    other_certificates: usize,
}

#[derive(Serialize)]
struct InitReport {
    dir: PathBuf,
    ca_cert: PathBuf,
    ca_key: PathBuf,
    intermediate: Option<PathBuf>,
    crl: PathBuf,
    key_type: KeyType,
    days: u32,
}

#[derive(Serialize)]
struct CsrReport {
    key: PathBuf,
    key_encrypted: bool,
    csr: PathBuf,
    subject: String,
    sans: Vec<String>,
    key_type: KeyType,
}

#[derive(Serialize)]
struct ListRow {
    #[serde(flatten)]
    entry: Entry,
    status: Status,
    days_left: i64,
}

fn open(dir: &Path) -> Result<Ca> {
    Ok(Ca::open(dir)?)
}

fn profile_word(p: ProfileArg) -> &'static str {
    match p {
        ProfileArg::Server => "server",
        ProfileArg::Client => "client",
    }
}

/// A certificate made outside its validity (on purpose, for tests) says so, on stderr so
/// that scripts reading stdout or `--json` are not disturbed.
fn warn_if_not_valid_now(issued: &ca::Issued) {
    let now = OffsetDateTime::now_utc();
    let subject = &issued.entry.subject;
    if issued.not_before > now {
        eprintln!(
            "warning: {subject} is not valid yet: it becomes valid on {}",
            mtls_pki::db::rfc3339(issued.not_before)
        );
    } else if issued.entry.not_after < now {
        eprintln!(
            "warning: {subject} has already expired (notAfter {})",
            mtls_pki::db::rfc3339(issued.entry.not_after)
        );
    }
}

fn issued_text(issued: &ca::Issued) -> String {
    let e = &issued.entry;
    let mut s = format!(
        "Issued {} certificate {}\n  subject:  {}\n  serial:   {}\n  expires:  {}\n",
        e.profile,
        e.name,
        e.subject,
        e.serial,
        mtls_pki::db::rfc3339(e.not_after)
    );
    if issued.lifetime_clamped {
        s += "            (cut short to end with the issuing CA)\n";
    }
    if !issued.sans.is_empty() {
        s += &format!("  SANs:     {}\n", issued.sans.join(", "));
    }
    s += &format!(
        "  cert:     {}\n  chain:    {}\n",
        issued.cert.display(),
        issued.chain.display()
    );
    if let Some(key) = &issued.key {
        let encrypted = if issued.key_encrypted {
            ", encrypted"
        } else {
            ""
        };
        s += &format!("  key:      {} (0600{encrypted})\n", key.display());
    }
    s
}

fn list_text(rows: &[ListRow], now: OffsetDateTime) -> String {
    if rows.is_empty() {
        return "No certificates issued yet (mtls pki issue server|client NAME).\n".into();
    }
    let width = rows
        .iter()
        .map(|r| r.entry.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut s = format!(
        "{:<width$}  {:<7}  {:<8}  {:<32}  {}\n",
        "NAME", "PROFILE", "STATUS", "SERIAL", "EXPIRY"
    );
    for r in rows {
        let expiry = match r.status {
            Status::Revoked => r
                .entry
                .revoked
                .map(|rv| format!("revoked {} ({})", mtls_pki::db::rfc3339(rv.at), rv.reason))
                .unwrap_or_default(),
            Status::Expired => format!(
                "expired {} days ago",
                (now - r.entry.not_after).whole_days()
            ),
            Status::Valid => format!("expires in {} days", r.days_left),
        };
        let status = match r.status {
            Status::Valid => "valid",
            Status::Expired => "expired",
            Status::Revoked => "revoked",
        };
        s += &format!(
            "{:<width$}  {:<7}  {:<8}  {:<32}  {}\n",
            r.entry.name, r.entry.profile, status, r.entry.serial, expiry
        );
    }
    s
}

fn emit<T: Serialize + ?Sized>(
    json: bool,
    value: &T,
    text: impl FnOnce() -> String,
) -> Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{}", text());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_reads_rfc3339_relative_offsets_and_now() {
        let now = time::macros::datetime!(2026-11-30 12:00 UTC);
        assert_eq!(when("now", now), Ok(now));
        assert_eq!(
            when("-2d", now),
            Ok(time::macros::datetime!(2026-11-28 12:00 UTC))
        );
        assert_eq!(
            when("+1h30m", now),
            Ok(time::macros::datetime!(2026-11-30 13:30 UTC))
        );
        assert_eq!(
            when("2027-01-01T00:00:00Z", now),
            Ok(time::macros::datetime!(2027-01-01 0:00 UTC))
        );
        let err = when("yesterday", now).unwrap_err();
        assert!(err.contains("RFC 3339") && err.contains("-2d"), "{err}");
        assert!(when("-2 fortnights", now).is_err());
    }
}
