//! The certificate authority on disk: `init`, `issue`, `sign`, `revoke`, `crl`, `list`.
//!
//! ```text
//! DIR/ca.crt  ca.key              root CA (key 0600)
//! DIR/intermediate.crt .key       optional issuing CA (`init --intermediate`)
//! DIR/crl.pem  crlnumber          current CRL and the number the next one gets
//! DIR/public/                     what may be published (nothing secret): ca.crt, the
//!                                 intermediate, and the CRL as crl.pem, crl.der, crl.crl
//! DIR/index.txt                   the database (see `db`)
//! DIR/certs/NAME.crt              leaf
//! DIR/certs/NAME.chain.pem        leaf + intermediates, what a server presents
//! DIR/private/NAME.key            leaf key (0600, directory 0700)
//! DIR/issued/SERIAL.crt           every certificate ever issued, by serial
//! ```
//! A [`Ca`] holds an exclusive lock on `DIR/.lock` for its lifetime, so two `mtls pki`
//! commands never interleave their database updates.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint,
    CustomExtension, DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SanType, SerialNumber,
    SubjectPublicKeyInfo,
};
use rustls_pki_types::CertificateDer;
use serde::Serialize;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};

use crate::db::{self, Database, Entry, Profile, Reason, Revocation};
use crate::encrypted::Password;
use crate::error::{Error, Result};
use crate::fs::{self, Mode};
use crate::key::{self, KeyType};
use crate::names::{self, San, Subject};
use crate::pem;

/// Default lifetime of a root CA, in days.
pub const DEFAULT_CA_DAYS: u32 = 3650;
/// Default lifetime of a server certificate: 365 days, under the 366 that Mozilla's server
/// profiles allow (browsers accept up to 397; sslyze's `--mozilla_config` checks 366).
pub const DEFAULT_SERVER_DAYS: u32 = 365;
/// Default lifetime of a client certificate.
pub const DEFAULT_CLIENT_DAYS: u32 = 365;
/// Default time until a CRL's nextUpdate.
pub const DEFAULT_CRL_VALIDITY: Duration = Duration::from_secs(7 * 24 * 3600);

/// The file layout of a CA directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    /// The layout rooted at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Layout { dir: dir.into() }
    }
    /// The CA directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// Root certificate.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    /// Root key.
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    /// Intermediate certificate, when the CA has one.
    pub fn intermediate_cert(&self) -> PathBuf {
        self.dir.join("intermediate.crt")
    }
    /// Intermediate key.
    pub fn intermediate_key(&self) -> PathBuf {
        self.dir.join("intermediate.key")
    }
    /// The current CRL.
    pub fn crl(&self) -> PathBuf {
        self.dir.join("crl.pem")
    }
    /// The directory of files meant to be published (CRL distribution point, AIA): it
    /// holds nothing secret, so it, and never the CA directory, is what a web server serves.
    pub fn public(&self) -> PathBuf {
        self.dir.join("public")
    }
    /// The number the next CRL gets (hex, like openssl's `crlnumber`).
    pub fn crl_number(&self) -> PathBuf {
        self.dir.join("crlnumber")
    }
    /// The database.
    pub fn index(&self) -> PathBuf {
        self.dir.join("index.txt")
    }
    /// A leaf certificate.
    pub fn cert(&self, name: &str) -> PathBuf {
        self.dir.join("certs").join(format!("{name}.crt"))
    }
    /// A leaf with its intermediates.
    pub fn chain(&self, name: &str) -> PathBuf {
        self.dir.join("certs").join(format!("{name}.chain.pem"))
    }
    /// A leaf's private key.
    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.join("private").join(format!("{name}.key"))
    }
    /// A leaf's PKCS#12 bundle (default export location).
    pub fn p12(&self, name: &str) -> PathBuf {
        self.dir.join("private").join(format!("{name}.p12"))
    }
    /// Copy of an issued certificate by serial.
    pub fn issued(&self, serial: &str) -> PathBuf {
        self.dir.join("issued").join(format!("{serial}.crt"))
    }
    fn lock(&self) -> PathBuf {
        self.dir.join(".lock")
    }
}

/// Options for `mtls pki init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The root's common name.
    pub common_name: String,
    /// Key type for the root (and intermediate).
    pub key_type: KeyType,
    /// Root lifetime in days.
    pub days: u32,
    /// Also make an intermediate that signs every leaf.
    pub intermediate: bool,
    /// Replace an existing CA.
    pub force: bool,
}

/// What to put in a new leaf certificate (besides the key).
#[derive(Debug, Clone)]
pub struct LeafOptions {
    /// Server or client.
    pub profile: Profile,
    /// Lifetime in days from now; the profile's default when `None` (and no `not_after`).
    pub days: Option<u32>,
    /// notBefore; now minus five minutes (clock skew) when `None`. Any time is allowed, so
    /// tests can make certificates that are not valid yet.
    pub not_before: Option<OffsetDateTime>,
    /// notAfter, instead of `days`; may be in the past, so tests can make expired
    /// certificates. Cut to the issuing CA's notAfter like any lifetime.
    pub not_after: Option<OffsetDateTime>,
    /// CRL distribution point URLs.
    pub crl_urls: Vec<String>,
    /// OCSP responder URL (authorityInfoAccess).
    pub ocsp_url: Option<String>,
}

/// `mtls pki issue`: the CA makes the key too.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    /// Short name: file names and database key.
    pub name: String,
    /// Subject; CN defaults to the name.
    pub subject: Subject,
    /// Subject alternative names.
    pub sans: Vec<San>,
    /// Key type for the new key.
    pub key_type: KeyType,
    /// Profile, lifetime, distribution points.
    pub leaf: LeafOptions,
    /// Issue even if a valid certificate already has this name.
    pub force: bool,
    /// Write the key encrypted with this password (PKCS#8 PBES2, see
    /// [`crate::encrypted::encrypt_pkcs8`]); `None` writes it plain.
    pub key_password: Option<Password>,
}

/// `mtls pki sign`: the requester kept the key and sent a CSR.
#[derive(Debug, Clone)]
pub struct SignRequest {
    /// Short name for the database and files.
    pub name: String,
    /// SANs to add to those in the CSR.
    pub extra_sans: Vec<San>,
    /// Profile, lifetime, distribution points.
    pub leaf: LeafOptions,
    /// Where to write the certificate, besides the CA directory.
    pub out: Option<PathBuf>,
    /// Sign even if a value in the CSR's subject holds `,`, `+`, `=` or a control character
    /// (see [`Csr::odd_attribute`]).
    pub allow_odd_subject: bool,
    /// Sign even if a valid certificate already has this name.
    pub force: bool,
}

/// The result of issuing or signing.
#[derive(Debug, Clone, Serialize)]
pub struct Issued {
    /// The database entry.
    pub entry: Entry,
    /// The certificate file.
    pub cert: PathBuf,
    /// Leaf + intermediates.
    pub chain: PathBuf,
    /// The key file, when the CA generated the key.
    pub key: Option<PathBuf>,
    /// Whether that key file is encrypted.
    pub key_encrypted: bool,
    /// Subject alternative names in the certificate.
    pub sans: Vec<String>,
    /// True when the requested lifetime was cut to end with the issuing CA's.
    pub lifetime_clamped: bool,
    /// notBefore (the database entry holds notAfter).
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
}

/// The result of writing a CRL.
#[derive(Debug, Clone, Serialize)]
pub struct CrlInfo {
    /// The file written.
    pub path: PathBuf,
    /// Its CRL number.
    pub number: u64,
    /// How many serials it lists.
    pub revoked: usize,
    /// thisUpdate.
    #[serde(with = "time::serde::rfc3339")]
    pub this_update: OffsetDateTime,
    /// nextUpdate.
    #[serde(with = "time::serde::rfc3339")]
    pub next_update: OffsetDateTime,
}

/// Which certificate to revoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeTarget {
    /// By the short name (the newest valid one with it).
    Name(String),
    /// By serial, hex in any common spelling.
    Serial(String),
}

/// An open CA directory, locked for this process.
#[derive(Debug)]
pub struct Ca {
    layout: Layout,
    _lock: File,
    root: CertificateDer<'static>,
    /// Certificates between the leaf and the root (empty when the root signs leaves).
    intermediates: Vec<CertificateDer<'static>>,
    signer_not_after: OffsetDateTime,
    issuer: Issuer<'static, KeyPair>,
    /// With an intermediate: the root, which signs the CRL that covers the intermediate
    /// (a fail-closed verifier wants one CRL per CA of the chain).
    root_issuer: Option<Issuer<'static, KeyPair>>,
}

impl Ca {
    /// Create a new CA in `dir`. Refuses to replace an existing one unless `force`.
    pub fn init(dir: &Path, options: &InitOptions) -> Result<Ca> {
        let layout = Layout::new(dir);
        fs::create_dir(dir, Mode::Public)?;
        let lock = lock(&layout)?;
        if layout.ca_cert().exists() || layout.ca_key().exists() {
            if !options.force {
                return Err(Error::CaExists(dir.to_path_buf()));
            }
            // A new root invalidates everything the old one issued. Nothing is deleted: the
            // old CA, its database and every certificate and key move to replaced-TIMESTAMP/.
            retire(&layout)?;
        }
        if options.days == 0 {
            return Err(Error::InvalidInput("--days must be at least 1".into()));
        }
        let now = now();
        let root_key = options.key_type.generate()?;
        let mut root_params = ca_params(&options.common_name, now, options.days, None);
        root_params.key_identifier_method = KeyIdMethod::Sha256;
        let root = root_params
            .self_signed(&root_key)
            .map_err(Error::generate("root CA certificate"))?;

        // Write the intermediate first: if anything fails, no half-made CA is left behind
        // with a root that looks complete.
        if options.intermediate {
            let root_issuer = Issuer::new(root_params.clone(), &root_key);
            let int_key = options.key_type.generate()?;
            let int_cn = format!("{} Intermediate", options.common_name);
            let int_days = options.days.min(1825);
            let mut int_params = ca_params(&int_cn, now, int_days, Some(0));
            int_params.use_authority_key_identifier_extension = true;
            let int_cert = int_params
                .signed_by(&int_key, &root_issuer)
                .map_err(Error::generate("intermediate CA certificate"))?;
            fs::write_atomic(
                &layout.intermediate_key(),
                int_key.serialize_pem().as_bytes(),
                Mode::Secret,
            )?;
            fs::write_atomic(
                &layout.intermediate_cert(),
                int_cert.pem().as_bytes(),
                Mode::Public,
            )?;
        }
        fs::write_atomic(
            &layout.ca_key(),
            root_key.serialize_pem().as_bytes(),
            Mode::Secret,
        )?;
        fs::write_atomic(&layout.ca_cert(), root.pem().as_bytes(), Mode::Public)?;
        fs::write_atomic(
            &layout.index(),
            Database::default().render().as_bytes(),
            Mode::Public,
        )?;
        fs::write_atomic(&layout.crl_number(), b"01\n", Mode::Public)?;
        drop(lock);
        let mut ca = Ca::open(dir)?;
        ca.write_crl(DEFAULT_CRL_VALIDITY)?;
        Ok(ca)
    }

    /// Open an existing CA, checking that each key matches its certificate.
    pub fn open(dir: &Path) -> Result<Ca> {
        let layout = Layout::new(dir);
        if !layout.ca_cert().exists() {
            return Err(Error::NoCa(dir.to_path_buf()));
        }
        let lock = lock(&layout)?;
        let (root, root_key) = load_pair(&layout.ca_cert(), &layout.ca_key())?;
        let (signer, signer_key, intermediates, root_issuer) =
            if layout.intermediate_cert().exists() {
                let (int, int_key) =
                    load_pair(&layout.intermediate_cert(), &layout.intermediate_key())?;
                let root_issuer = Issuer::from_ca_cert_der(&root, root_key)
                    .map_err(|e| Error::malformed("root CA certificate", e))?;
                (int.clone(), int_key, vec![int], Some(root_issuer))
            } else {
                (root.clone(), root_key, Vec::new(), None)
            };
        let (_, parsed) = X509Certificate::from_der(&signer)
            .map_err(|e| Error::malformed("issuing CA certificate", e))?;
        let signer_not_after = parsed.validity().not_after.to_datetime();
        let issuer = Issuer::from_ca_cert_der(&signer, signer_key)
            .map_err(|e| Error::malformed("issuing CA certificate", e))?;
        Ok(Ca {
            layout,
            _lock: lock,
            root,
            intermediates,
            signer_not_after,
            issuer,
            root_issuer,
        })
    }

    /// The file layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The root certificate.
    pub fn root(&self) -> &CertificateDer<'static> {
        &self.root
    }

    /// Intermediates, leaf side first (empty when the root signs leaves).
    pub fn intermediates(&self) -> &[CertificateDer<'static>] {
        &self.intermediates
    }

    /// The database as it is on disk now.
    pub fn database(&self) -> Result<Database> {
        let path = self.layout.index();
        match std::fs::read_to_string(&path) {
            Ok(text) => Database::parse(&text, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Database::default()),
            Err(source) => Err(Error::Io {
                action: "reading",
                path,
                source,
            }),
        }
    }

    /// Generate a key and issue a certificate for it.
    pub fn issue(&mut self, request: &IssueRequest) -> Result<Issued> {
        names::check_name(&request.name)?;
        let mut db = self.database()?;
        check_name_free(&db, &request.name, request.force)?;
        let mut sans = request.sans.clone();
        if request.leaf.profile == Profile::Server && sans.is_empty() {
            // A server certificate without SANs matches no host name in any modern client.
            match request.name.parse::<San>() {
                Ok(san) => sans.push(san),
                Err(_) => {
                    return Err(Error::InvalidInput(format!(
                        "a server certificate needs at least one --san (the name {:?} is not a host name)",
                        request.name
                    )));
                }
            }
        }
        let sans = sans.iter().map(San::to_rcgen).collect::<Result<Vec<_>>>()?;
        let key = request.key_type.generate()?;
        let mut issued = self.sign_leaf(
            &mut db,
            &request.name,
            request.subject.to_rcgen(),
            sans,
            &key,
            request.key_type.is_rsa(),
            &request.leaf,
            None,
        )?;
        let key_path = self.layout.key(&request.name);
        fs::create_dir(key_path.parent().unwrap_or(self.layout.dir()), Mode::Secret)?;
        let key_pem = key::to_pem(&key, request.key_password.as_ref())?;
        fs::write_atomic(&key_path, key_pem.as_bytes(), Mode::Secret)?;
        issued.key = Some(key_path);
        issued.key_encrypted = request.key_password.is_some();
        self.save_database(&db)?;
        Ok(issued)
    }

    /// Sign a certificate signing request (PEM or DER). The CSR's own signature is checked
    /// first; only its subject, SANs and public key are used: key usage and extended key
    /// usage come from the profile, never from the request.
    pub fn sign_csr(&mut self, csr: &[u8], what: &str, request: &SignRequest) -> Result<Issued> {
        names::check_name(&request.name)?;
        let parsed = Csr::parse(csr, what)?;
        if let Some(odd) = &parsed.odd_attribute
            && !request.allow_odd_subject
        {
            return Err(Error::OddSubject {
                what: what.to_owned(),
                attribute: odd.attribute.clone(),
                value: odd.value.clone(),
                character: odd.character,
            });
        }
        let mut db = self.database()?;
        check_name_free(&db, &request.name, request.force)?;
        let mut sans = parsed.sans.clone();
        for extra in &request.extra_sans {
            let extra = extra.to_rcgen()?;
            if !sans.contains(&extra) {
                sans.push(extra);
            }
        }
        if request.leaf.profile == Profile::Server && sans.is_empty() {
            return Err(Error::InvalidInput(format!(
                "{what} asks for no subject alternative name; a server certificate needs one (add --san)"
            )));
        }
        let spki = SubjectPublicKeyInfo::from_der(&parsed.public_key_info)
            .map_err(|e| Error::malformed(what, format!("public key: {e}")))?;
        let issued = self.sign_leaf(
            &mut db,
            &request.name,
            parsed.subject,
            sans,
            &spki,
            parsed.rsa,
            &request.leaf,
            request.out.as_deref(),
        )?;
        self.save_database(&db)?;
        Ok(issued)
    }

    /// Mark a certificate revoked and publish a new CRL.
    pub fn revoke(&mut self, target: &RevokeTarget, reason: Reason) -> Result<(Entry, CrlInfo)> {
        let mut db = self.database()?;
        let serial = match target {
            RevokeTarget::Name(name) => db
                .find_name(name)
                .ok_or_else(|| Error::UnknownName(name.clone()))?
                .serial
                .clone(),
            RevokeTarget::Serial(s) => {
                let serial = names::parse_serial(s)?;
                db.find_serial(&serial)
                    .ok_or_else(|| Error::UnknownSerial(serial.clone()))?
                    .serial
                    .clone()
            }
        };
        let entry = db
            .entries
            .iter_mut()
            .find(|e| e.serial == serial)
            .ok_or_else(|| Error::UnknownSerial(serial.clone()))?;
        if entry.revoked.is_some() {
            return Err(Error::AlreadyRevoked {
                name: entry.name.clone(),
                serial,
            });
        }
        entry.revoked = Some(Revocation { at: now(), reason });
        let entry = entry.clone();
        self.save_database(&db)?;
        let crl = self.write_crl(DEFAULT_CRL_VALIDITY)?;
        Ok((entry, crl))
    }

    /// Write a fresh CRL (with the next CRL number) listing every revoked certificate.
    pub fn write_crl(&mut self, validity: Duration) -> Result<CrlInfo> {
        let db = self.database()?;
        let number_path = self.layout.crl_number();
        let number = match std::fs::read_to_string(&number_path) {
            Ok(s) => u64::from_str_radix(s.trim(), 16).map_err(|_| {
                Error::malformed(
                    number_path.display().to_string(),
                    "expected a hex CRL number",
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 1,
            Err(source) => {
                return Err(Error::Io {
                    action: "reading",
                    path: number_path,
                    source,
                });
            }
        };
        let this_update = now();
        let validity = time::Duration::try_from(validity)
            .map_err(|_| Error::InvalidInput("CRL validity is too long".into()))?;
        let next_update = this_update + validity;
        let revoked_certs = db
            .entries
            .iter()
            .filter_map(|e| {
                let r = e.revoked?;
                let serial = hex::decode(&e.serial).ok()?;
                Some(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&serial),
                    revocation_time: r.at,
                    reason_code: Some(r.reason.to_rcgen()),
                    invalidity_date: None,
                })
            })
            .collect::<Vec<_>>();
        let revoked = revoked_certs.len();
        let params = CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params
            .signed_by(&self.issuer)
            .map_err(Error::generate("CRL"))?;
        let mut pem_text = pem::encode("X509 CRL", crl.der().as_ref());
        // With an intermediate, the root's CRL (listing no intermediate: this CA revokes
        // leaves) follows in the same file, so `crl = "pki/crl.pem"` covers the whole chain.
        let root_crl = match &self.root_issuer {
            Some(root) => {
                let root_params = CertificateRevocationListParams {
                    this_update,
                    next_update,
                    crl_number: SerialNumber::from(number),
                    issuing_distribution_point: None,
                    revoked_certs: Vec::new(),
                    key_identifier_method: KeyIdMethod::Sha256,
                };
                let root_crl = root_params
                    .signed_by(root)
                    .map_err(Error::generate("root CRL"))?;
                pem_text += &pem::encode("X509 CRL", root_crl.der().as_ref());
                Some(root_crl.der().to_vec())
            }
            None => None,
        };
        fs::write_atomic(&self.layout.crl(), pem_text.as_bytes(), Mode::Public)?;
        self.publish(&pem_text, crl.der().as_ref(), root_crl.as_deref())?;
        fs::write_atomic(
            &number_path,
            format!("{:02X}\n", number + 1).as_bytes(),
            Mode::Public,
        )?;
        Ok(CrlInfo {
            path: self.layout.crl(),
            number,
            revoked,
            this_update,
            next_update,
        })
    }

    /// Refresh `public/`: the CA certificates and the CRL in PEM and in DER. DER is what a
    /// CRL distribution point serves (RFC 5280 4.2.1.13; `openssl verify -crl_download`
    /// and Windows fetch it), as `crl.crl` so that file servers send
    /// `application/pkix-crl`; `crl.der` is the same bytes under the name openssl users
    /// expect.
    fn publish(&self, crl_pem: &str, crl_der: &[u8], root_crl: Option<&[u8]>) -> Result<()> {
        let public = self.layout.public();
        fs::create_dir(&public, Mode::Public)?;
        fs::write_atomic(&public.join("crl.pem"), crl_pem.as_bytes(), Mode::Public)?;
        fs::write_atomic(&public.join("crl.der"), crl_der, Mode::Public)?;
        fs::write_atomic(&public.join("crl.crl"), crl_der, Mode::Public)?;
        if let Some(root_crl) = root_crl {
            fs::write_atomic(&public.join("root.crl"), root_crl, Mode::Public)?;
        }
        let root = pem::encode_certificates(std::slice::from_ref(&self.root));
        fs::write_atomic(&public.join("ca.crt"), root.as_bytes(), Mode::Public)?;
        if !self.intermediates.is_empty() {
            let chain = pem::encode_certificates(&self.intermediates);
            fs::write_atomic(
                &public.join("intermediate.crt"),
                chain.as_bytes(),
                Mode::Public,
            )?;
        }
        Ok(())
    }

    /// The certificate chain for `name` (leaf, intermediates) and its key, for export.
    pub fn credentials(&self, name: &str) -> Result<(Vec<CertificateDer<'static>>, Vec<u8>)> {
        let chain = self.chain(name)?;
        let key_path = self.layout.key(name);
        let key = fs::read(&key_path).map_err(|e| match e {
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Error::InvalidInput(format!(
                    "{name} was signed from a CSR: its private key is with the requester, not in \
                     {} (whoever holds it can pass it with --key FILE)",
                    key_path.display()
                ))
            }
            e => e,
        })?;
        Ok((chain, key))
    }

    /// The certificate chain for `name`: leaf, then intermediates (not the root).
    pub fn chain(&self, name: &str) -> Result<Vec<CertificateDer<'static>>> {
        names::check_name(name)?;
        let db = self.database()?;
        if db.find_name(name).is_none() {
            return Err(Error::UnknownName(name.to_owned()));
        }
        let chain_path = self.layout.chain(name);
        pem::certificates(&fs::read(&chain_path)?, &chain_path.display().to_string())
    }

    #[allow(clippy::too_many_arguments)]
    fn sign_leaf(
        &self,
        db: &mut Database,
        name: &str,
        subject: DistinguishedName,
        sans: Vec<SanType>,
        public_key: &impl rcgen::PublicKeyData,
        rsa: bool,
        leaf: &LeafOptions,
        out: Option<&Path>,
    ) -> Result<Issued> {
        let (not_before, not_after) = leaf_validity(leaf, now())?;
        let lifetime_clamped = not_after > self.signer_not_after;
        let not_after = not_after.min(self.signer_not_after);
        if not_after <= not_before {
            return Err(Error::InvalidInput(format!(
                "the certificate would end ({}) before it begins ({}): the issuing CA ends then",
                crate::db::rfc3339(not_after),
                crate::db::rfc3339(not_before)
            )));
        }
        let serial = names::random_serial();
        let mut params = CertificateParams::default();
        params.distinguished_name = subject;
        params.subject_alt_names = sans;
        params.not_before = not_before;
        params.not_after = not_after;
        params.serial_number = Some(serial.clone());
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if rsa {
            params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        params.extended_key_usages = vec![match leaf.profile {
            Profile::Server => ExtendedKeyUsagePurpose::ServerAuth,
            _ => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        for url in &leaf.crl_urls {
            check_url(url, "--crl-url")?;
        }
        if !leaf.crl_urls.is_empty() {
            params.crl_distribution_points = vec![CrlDistributionPoint {
                uris: leaf.crl_urls.clone(),
            }];
        }
        if let Some(ocsp) = &leaf.ocsp_url {
            check_url(ocsp, "--ocsp-url")?;
            params.custom_extensions.push(authority_info_access(ocsp));
        }
        let cert = params
            .signed_by(public_key, &self.issuer)
            .map_err(Error::generate("certificate"))?;
        let der = cert.der().clone();
        let (_, parsed) =
            X509Certificate::from_der(&der).map_err(|e| Error::malformed("new certificate", e))?;
        let entry = Entry {
            serial: names::serial_hex(&serial.to_bytes()),
            name: name.to_owned(),
            profile: leaf.profile,
            subject: crate::dn::display(parsed.subject()),
            not_after,
            revoked: None,
        };
        let sans = crate::show::subject_alt_names(&parsed);

        let leaf_pem = cert.pem();
        let chain_pem = leaf_pem.clone() + &pem::encode_certificates(&self.intermediates);
        let cert_path = self.layout.cert(name);
        let chain_path = self.layout.chain(name);
        fs::create_dir(&self.layout.dir().join("certs"), Mode::Public)?;
        fs::create_dir(&self.layout.dir().join("issued"), Mode::Public)?;
        fs::write_atomic(
            &self.layout.issued(&entry.serial),
            leaf_pem.as_bytes(),
            Mode::Public,
        )?;
        fs::write_atomic(&cert_path, leaf_pem.as_bytes(), Mode::Public)?;
        fs::write_atomic(&chain_path, chain_pem.as_bytes(), Mode::Public)?;
        let cert_path = match out {
            Some(out) => {
                fs::write_atomic(out, leaf_pem.as_bytes(), Mode::Public)?;
                out.to_path_buf()
            }
            None => cert_path,
        };
        db.entries.push(entry.clone());
        Ok(Issued {
            entry,
            cert: cert_path,
            chain: chain_path,
            key: None,
            key_encrypted: false,
            sans,
            lifetime_clamped,
            not_before,
        })
    }

    fn save_database(&self, db: &Database) -> Result<()> {
        fs::write_atomic(&self.layout.index(), db.render().as_bytes(), Mode::Public)
    }
}

/// A parsed, signature-checked certificate signing request.
#[derive(Debug, Clone)]
pub struct Csr {
    /// The requested subject.
    pub subject: DistinguishedName,
    /// The subject as text.
    pub subject_text: String,
    /// The first subject attribute whose value holds `,`, `+` or `=` (which make a DN read
    /// like another one: `O=Ops, OU=Payments, CN=carol` in a single O) or a control
    /// character; `sign_csr` refuses such a CSR unless told otherwise.
    pub odd_attribute: Option<OddAttribute>,
    /// Requested SANs.
    pub sans: Vec<SanType>,
    /// DER SubjectPublicKeyInfo.
    pub public_key_info: Vec<u8>,
    /// True for an RSA key.
    pub rsa: bool,
}

impl Csr {
    /// Parse a CSR (PEM or DER) with x509-parser and check its self-signature.
    pub fn parse(data: &[u8], what: &str) -> Result<Csr> {
        use x509_parser::prelude::X509CertificationRequest;
        let der = if pem::is_pem(data) {
            pem::sections(data, what)?
                .into_iter()
                .find(|s| s.label == "CERTIFICATE REQUEST")
                .ok_or_else(|| Error::malformed(what, "no CERTIFICATE REQUEST section in the PEM"))?
                .der
        } else {
            data.to_vec()
        };
        let (_, csr) = X509CertificationRequest::from_der(&der).map_err(|e| {
            Error::malformed(what, format!("not a certificate signing request: {e}"))
        })?;
        csr.verify_signature()
            .map_err(|_| Error::CsrSignature(what.to_owned()))?;
        let info = &csr.certification_request_info;
        let mut subject = DistinguishedName::new();
        let mut odd_attribute = None;
        let mut seen: Vec<&x509_parser::der_parser::asn1_rs::Oid<'_>> = Vec::new();
        for attr in info.subject.iter_attributes() {
            // The certificate holds one value per attribute type: a second CN would be
            // dropped without a word, and the certificate would not say what was asked.
            if seen.contains(&attr.attr_type()) {
                let name = x509_parser::objects::oid2abbrev(
                    attr.attr_type(),
                    x509_parser::objects::oid_registry(),
                )
                .map_or_else(|_| attr.attr_type().to_id_string(), str::to_owned);
                return Err(Error::InvalidInput(format!(
                    "{what}: the subject has {name} more than once ({}); mtls issues one value \
                     per attribute type, so ask for one",
                    crate::dn::display(&info.subject)
                )));
            }
            seen.push(attr.attr_type());
            let oid: Vec<u64> = attr
                .attr_type()
                .iter()
                .map(|arcs| arcs.collect())
                .ok_or_else(|| Error::malformed(what, "subject attribute with an oversized OID"))?;
            let value = attr
                .as_str()
                .map_err(|_| Error::malformed(what, "subject attribute is not a string"))?;
            if odd_attribute.is_none() {
                odd_attribute = OddAttribute::find(attr, value);
            }
            let value = if attr.attr_value().header.tag()
                == x509_parser::der_parser::asn1_rs::Tag::PrintableString
            {
                value
                    .to_owned()
                    .try_into()
                    .map(DnValue::PrintableString)
                    .unwrap_or_else(|_| DnValue::Utf8String(value.to_owned()))
            } else {
                DnValue::Utf8String(value.to_owned())
            };
            subject.push(DnType::from_oid(&oid), value);
        }
        let mut sans = Vec::new();
        for ext in csr.requested_extensions().into_iter().flatten() {
            if let ParsedExtension::SubjectAlternativeName(san) = ext {
                for general in &san.general_names {
                    sans.push(general_name_to_san(general, what)?);
                }
            }
        }
        let public_key_info = info.subject_pki.raw.to_vec();
        let rsa = info.subject_pki.algorithm.algorithm
            == x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION;
        Ok(Csr {
            subject,
            subject_text: crate::dn::display(&info.subject),
            odd_attribute,
            sans,
            public_key_info,
            rsa,
        })
    }
}

/// A subject attribute whose value holds a character that confuses DN readers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OddAttribute {
    /// The attribute's short name (`CN`, `O`, ...) or dotted OID.
    pub attribute: String,
    /// Its value.
    pub value: String,
    /// The first odd character in it.
    pub character: char,
}

impl OddAttribute {
    fn find(attribute: &x509_parser::x509::AttributeTypeAndValue<'_>, value: &str) -> Option<Self> {
        let character = value
            .chars()
            .find(|c| matches!(c, ',' | '+' | '=') || c.is_control())?;
        let oid = attribute.attr_type();
        let attribute = x509_parser::objects::oid2abbrev(oid, x509_parser::objects::oid_registry())
            .map_or_else(|_| oid.to_id_string(), str::to_owned);
        Some(OddAttribute {
            attribute,
            value: value.to_owned(),
            character,
        })
    }
}

/// Make a key and a CSR for it: the requester's side of the CSR flow.
pub fn make_csr(subject: &Subject, sans: &[San], key_type: KeyType) -> Result<(KeyPair, String)> {
    let mut params = CertificateParams::default();
    params.distinguished_name = subject.to_rcgen();
    params.subject_alt_names = sans.iter().map(San::to_rcgen).collect::<Result<_>>()?;
    let key = key_type.generate()?;
    let csr = params
        .serialize_request(&key)
        .map_err(Error::generate("certificate signing request"))?;
    let pem = csr
        .pem()
        .map_err(Error::generate("certificate signing request"))?;
    Ok((key, pem))
}

/// A leaf's notBefore and notAfter from its options: explicit times win, else `days` (or
/// the profile's default) from five minutes ago, which absorbs small clock skew.
fn leaf_validity(
    leaf: &LeafOptions,
    now: OffsetDateTime,
) -> Result<(OffsetDateTime, OffsetDateTime)> {
    let not_before = leaf.not_before.unwrap_or(now - time::Duration::minutes(5));
    let not_after = match (leaf.not_after, leaf.days) {
        (Some(_), Some(_)) => {
            return Err(Error::InvalidInput(
                "give --days or --not-after, not both".into(),
            ));
        }
        (Some(at), None) => at,
        (None, Some(0)) => {
            return Err(Error::InvalidInput(
                "--days must be at least 1 (for an expired certificate, give --not-after \
                 with a past time such as -1d)"
                    .into(),
            ));
        }
        (None, days) => {
            let days = days.unwrap_or(match leaf.profile {
                Profile::Server => DEFAULT_SERVER_DAYS,
                _ => DEFAULT_CLIENT_DAYS,
            });
            not_before + time::Duration::days(i64::from(days))
        }
    };
    // Compared as the certificate will hold them, in whole seconds: two parses of `now`
    // differ by microseconds and would otherwise pass as a one-second-less validity.
    if not_after.unix_timestamp() <= not_before.unix_timestamp() {
        return Err(Error::InvalidInput(format!(
            "notAfter ({}) must be later than notBefore ({})",
            crate::db::rfc3339(not_after),
            crate::db::rfc3339(not_before)
        )));
    }
    Ok((not_before, not_after))
}

fn ca_params(cn: &str, now: OffsetDateTime, days: u32, path_len: Option<u8>) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = Subject::cn(cn).to_rcgen();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(i64::from(days));
    params.serial_number = Some(names::random_serial());
    params.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn load_pair(cert_path: &Path, key_path: &Path) -> Result<(CertificateDer<'static>, KeyPair)> {
    let certs = pem::certificates(&fs::read(cert_path)?, &cert_path.display().to_string())?;
    let cert = certs
        .into_iter()
        .next()
        .ok_or_else(|| Error::malformed(cert_path.display().to_string(), "no certificate"))?;
    let what = key_path.display().to_string();
    let key = key::load(&fs::read(key_path)?, &what).map_err(|e| match e {
        Error::KeyEncrypted { .. } => Error::malformed(
            &what,
            format!(
                "this CA key is encrypted, and mtls pki reads its CA keys unencrypted, \
                 protected by their 0600 mode; decrypt it (openssl pkey -in {what} -out \
                 {what}.plain) and move {what}.plain over it"
            ),
        ),
        e => e,
    })?;
    let (_, parsed) = X509Certificate::from_der(&cert)
        .map_err(|e| Error::malformed(cert_path.display().to_string(), e))?;
    if parsed.public_key().raw != key::public_key_info(&key).as_slice() {
        return Err(Error::KeyMismatch {
            cert: cert_path.to_path_buf(),
            key: key_path.to_path_buf(),
        });
    }
    Ok((cert, key))
}

/// Move the current CA's files into `DIR/replaced-YYYYMMDDTHHMMSSZ/`.
fn retire(layout: &Layout) -> Result<PathBuf> {
    let stamp = db::rfc3339(now()).replace([':', '-'], "");
    let mut target = layout.dir().join(format!("replaced-{stamp}"));
    let mut n = 1;
    while target.exists() {
        n += 1;
        target = layout.dir().join(format!("replaced-{stamp}-{n}"));
    }
    fs::create_dir(&target, Mode::Secret)?;
    let entries = [
        layout.ca_cert(),
        layout.ca_key(),
        layout.intermediate_cert(),
        layout.intermediate_key(),
        layout.crl(),
        layout.crl_number(),
        layout.index(),
        layout.dir().join("certs"),
        layout.dir().join("private"),
        layout.dir().join("issued"),
        layout.public(),
    ];
    for path in entries.iter().filter(|p| p.exists()) {
        let Some(name) = path.file_name() else {
            continue;
        };
        std::fs::rename(path, target.join(name)).map_err(|source| Error::Io {
            action: "moving the old CA aside",
            path: path.clone(),
            source,
        })?;
    }
    Ok(target)
}

fn lock(layout: &Layout) -> Result<File> {
    let path = layout.lock();
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| Error::Io {
            action: "opening",
            path: path.clone(),
            source,
        })?;
    file.lock().map_err(|source| Error::Io {
        action: "locking",
        path,
        source,
    })?;
    Ok(file)
}

fn check_name_free(db: &Database, name: &str, force: bool) -> Result<()> {
    let now = now();
    let taken = db
        .entries
        .iter()
        .any(|e| e.name == name && e.revoked.is_none() && e.not_after > now);
    if taken && !force {
        return Err(Error::NameTaken(name.to_owned()));
    }
    Ok(())
}

fn check_url(url: &str, flag: &str) -> Result<()> {
    let ok =
        (url.starts_with("http://") || url.starts_with("https://") || url.starts_with("ldap://"))
            && url.is_ascii()
            && !url.contains(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "{flag} {url:?} is not an http(s):// or ldap:// URL"
        )))
    }
}

fn general_name_to_san(general: &GeneralName<'_>, what: &str) -> Result<SanType> {
    let ia5 = |s: &str| {
        s.to_owned()
            .try_into()
            .map_err(|_| Error::malformed(what, format!("SAN {s:?} is not ASCII")))
    };
    Ok(match general {
        GeneralName::DNSName(d) => SanType::DnsName(ia5(d)?),
        GeneralName::RFC822Name(e) => SanType::Rfc822Name(ia5(e)?),
        GeneralName::URI(u) => SanType::URI(ia5(u)?),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => SanType::IpAddress(
                <[u8; 4]>::try_from(*bytes)
                    .map_err(|_| Error::malformed(what, "bad IPv4 SAN"))?
                    .into(),
            ),
            16 => SanType::IpAddress(
                <[u8; 16]>::try_from(*bytes)
                    .map_err(|_| Error::malformed(what, "bad IPv6 SAN"))?
                    .into(),
            ),
            n => return Err(Error::malformed(what, format!("IP SAN of {n} bytes"))),
        },
        other => {
            return Err(Error::InvalidInput(format!(
                "{what} asks for a SAN of a kind we do not sign ({other:?}); only DNS, IP, email and URI"
            )));
        }
    })
}

/// authorityInfoAccess with one OCSP URL (rcgen has no builder for it), DER by hand:
/// SEQUENCE { SEQUENCE { OID id-ad-ocsp, [6] IA5String url } }.
fn authority_info_access(url: &str) -> CustomExtension {
    const ID_PE_AUTHORITY_INFO_ACCESS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
    const ID_AD_OCSP: &[u8] = &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
    let uri = crate::der::tlv(0x86, url.as_bytes());
    let access = crate::der::tlv(0x30, &[ID_AD_OCSP, &uri].concat());
    CustomExtension::from_oid_content(ID_PE_AUTHORITY_INFO_ACCESS, crate::der::tlv(0x30, &access))
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}
