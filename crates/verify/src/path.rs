//! Path building and RFC 5280 section 6 validation.
//!
//! Building is a depth-first search from the end entity towards the trust anchors: for
//! each certificate, every candidate issuer (same name; the one whose subjectKeyIdentifier
//! matches the authorityKeyIdentifier first; trust anchors before intermediates) is tried
//! in turn, and a candidate whose signature does not verify, or whose path fails a later
//! check, gives way to the next. A certificate already on the path (same subject and key)
//! is never added twice, so loops end; every candidate and signature is charged to the
//! [`Budget`](crate::budget), so pathological bundles end fast.
//!
//! Each complete path (end entity to trust anchor) is then validated as a whole, in the
//! order of the sentences a person needs: the certificates themselves (structure, keys,
//! validity), the issuers (CA, keyCertSign, pathLenConstraint), purpose, name constraints,
//! the peer's name, revocation. The first path that passes wins; if none does, the
//! failure of the path that got furthest is the verdict.
//!
//! Trust anchors are certificates here, not bare names and keys: their validity,
//! basicConstraints, pathLenConstraint and name constraints apply (as in OpenSSL), which is
//! what an operator who put a constrained CA in `client_ca` means.

use std::fmt;

use rustls_pki_types::CertificateDer;
use serde::Serialize;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::budget::{Budget, Exhausted, Limits};
use crate::cert::Cert;
use crate::crl::Crls;
use crate::failure::{Check, Failure, Link};
use crate::hostname::{self, PeerName};
use crate::names::{self, NameError};
use crate::signature;

/// What the end-entity certificate must be good for (its extended key usage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    /// TLS server authentication (id-kp-serverAuth).
    Server,
    /// TLS client authentication (id-kp-clientAuth).
    Client,
}

impl Purpose {
    fn word(self) -> &'static str {
        match self {
            Purpose::Server => "TLS server",
            Purpose::Client => "TLS client",
        }
    }
}

impl std::str::FromStr for Purpose {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "server" => Ok(Purpose::Server),
            "client" => Ok(Purpose::Client),
            _ => Err(format!("unknown purpose {s:?}; expected server or client")),
        }
    }
}

/// Which certificates must have a CRL from their issuer, when CRLs are given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlScope {
    /// Every certificate of the chain; a missing CRL refuses (fail closed, OpenSSL's
    /// `X509_V_FLAG_CRL_CHECK_ALL`, what nginx's `ssl_crl` does).
    Chain,
    /// The end entity's issuer must have one; the others are checked when their issuer's
    /// CRL is present (`openssl verify -crl_check`).
    EndEntity,
}

/// What a [`Verifier`] trusts and requires. Built once, from configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The trust anchors.
    pub anchors: Vec<CertificateDer<'static>>,
    /// DER CRLs; empty for no revocation checking.
    pub crls: Vec<Vec<u8>>,
    /// Which certificates need a CRL.
    pub crl_scope: CrlScope,
    /// The extended key usage the end entity needs, if any.
    pub purpose: Option<Purpose>,
    /// Most intermediates between the end entity and the trust anchor (`verify_depth` - 1
    /// in nginx's terms); `None` for the budget's limit only.
    pub max_intermediates: Option<usize>,
    /// Match a DNS name against the subject CN of a certificate without any
    /// subjectAltName extension (nginx and OpenSSL do; RFC 6125 and browsers do not).
    pub cn_fallback: bool,
    /// Bounds on the work of one verification.
    pub limits: Limits,
}

impl Policy {
    /// A policy trusting `anchors` for `purpose`, with no CRLs and default limits.
    pub fn new(anchors: Vec<CertificateDer<'static>>, purpose: Option<Purpose>) -> Policy {
        Policy {
            anchors,
            crls: Vec::new(),
            crl_scope: CrlScope::Chain,
            purpose,
            max_intermediates: None,
            cn_fallback: false,
            limits: Limits::default(),
        }
    }
}

/// A trust anchor, kept as DER with the name used to find it.
#[derive(Debug)]
struct Anchor {
    der: CertificateDer<'static>,
    subject: Vec<u8>,
}

/// The one verifier: a [`Policy`] with its anchors and CRLs read.
#[derive(Debug)]
pub struct Verifier {
    anchors: Vec<Anchor>,
    crls: Crls,
    policy: Policy,
    /// Signatures of CA certificates already verified.
    ca_signatures: SignatureCache,
}

/// Signatures of intermediate CA certificates that verified, remembered by the SHA-256
/// of the certificate and its issuer's key.
///
/// Every client of an intermediate CA sends the same intermediate, so its signature would
/// be checked again in every full handshake: one ECDSA verification of the two a
/// three-certificate chain costs. Remembering it halves the chain's cost. Only CA
/// certificates are remembered (a client's own certificate is checked every time), only
/// successes, keyed by the whole certificate (signature included) and the whole key, so an
/// entry can only ever stand for the same bytes verified by the same key. Bounded: cleared
/// when full.
#[derive(Debug, Default)]
struct SignatureCache {
    seen: std::sync::Mutex<std::collections::HashSet<[u8; 32]>>,
}

impl SignatureCache {
    const CAPACITY: usize = 4096;

    fn key(child: &Cert<'_>, issuer: &Cert<'_>) -> [u8; 32] {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        ctx.update(child.x509.as_raw());
        ctx.update(issuer.x509.public_key().raw);
        let mut key = [0u8; 32];
        key.copy_from_slice(ctx.finish().as_ref());
        key
    }

    fn contains(&self, key: &[u8; 32]) -> bool {
        self.seen.lock().is_ok_and(|seen| seen.contains(key))
    }

    fn insert(&self, key: [u8; 32]) {
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() >= Self::CAPACITY {
                seen.clear();
            }
            seen.insert(key);
        }
    }
}

/// A certificate that verified: the chain that was built, end entity first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// End entity first, trust anchor last.
    pub chain: Vec<Link>,
    /// CRLs consulted.
    pub checked_crls: usize,
}

impl fmt::Display for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.chain.iter().map(|l| l.subject.as_str()).collect();
        write!(f, "OK: {}", names.join(" <- "))?;
        if self.checked_crls > 0 {
            write!(f, " (not revoked: {} CRL(s) checked)", self.checked_crls)?;
        }
        Ok(())
    }
}

impl Verifier {
    /// Read the policy's anchors and CRLs. An error names the input that does not parse.
    pub fn new(policy: Policy) -> Result<Verifier, Box<Failure>> {
        let crls =
            Crls::load(&policy.crls).map_err(|(check, e)| Box::new(Failure::new(check, e)))?;
        Verifier::with_crls(policy, crls)
    }

    /// [`Verifier::new`] with CRLs already read (the gateway reads each `crl` file on its
    /// own, to name the file that is wrong); `policy.crls` is not read.
    pub fn with_crls(policy: Policy, crls: Crls) -> Result<Verifier, Box<Failure>> {
        let mut anchors = Vec::with_capacity(policy.anchors.len());
        for (i, der) in policy.anchors.iter().enumerate() {
            let (_, cert) = X509Certificate::from_der(der.as_ref()).map_err(|e| {
                Box::new(Failure::new(
                    Check::Malformed,
                    format!("trusted CA #{} does not parse: {e}", i + 1),
                ))
            })?;
            if anchors
                .iter()
                .any(|a: &Anchor| a.der.as_ref() == der.as_ref())
            {
                continue;
            }
            anchors.push(Anchor {
                subject: cert.subject().as_raw().to_vec(),
                der: der.clone(),
            });
        }
        Ok(Verifier {
            anchors,
            crls,
            policy,
            ca_signatures: SignatureCache::default(),
        })
    }

    /// The policy this verifier applies.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The CRLs it checks against.
    pub fn crls(&self) -> &Crls {
        &self.crls
    }

    /// Verify `leaf` with the `intermediates` the peer sent, for `name` if given, at `at`:
    /// the chain built, or the refusal.
    pub fn verify<I: AsRef<[u8]>>(
        &self,
        leaf: &[u8],
        intermediates: &[I],
        name: Option<&PeerName>,
        at: OffsetDateTime,
    ) -> Result<Verified, Box<Failure>> {
        self.run(leaf, intermediates, name, at, true)
    }

    /// [`Verifier::verify`] for a handshake, which needs only the verdict: the same
    /// decision, without describing the chain when it holds.
    pub fn check<I: AsRef<[u8]>>(
        &self,
        leaf: &[u8],
        intermediates: &[I],
        name: Option<&PeerName>,
        at: OffsetDateTime,
    ) -> Result<(), Box<Failure>> {
        self.run(leaf, intermediates, name, at, false).map(|_| ())
    }

    fn run<I: AsRef<[u8]>>(
        &self,
        leaf: &[u8],
        intermediates: &[I],
        name: Option<&PeerName>,
        at: OffsetDateTime,
        describe: bool,
    ) -> Result<Verified, Box<Failure>> {
        let leaf = Cert::parse(leaf, false).map_err(|e| {
            Box::new(Failure::new(
                Check::Malformed,
                format!("the certificate does not parse: {e}"),
            ))
        })?;
        // A trusted CA certificate presented as the end entity: the self-signed certificate
        // of a test server given as its own CA, most often. Said as such, not as an unknown
        // issuer (the anchor it would chain to is itself).
        if self
            .anchors
            .iter()
            .any(|a| a.der.as_ref() == leaf.x509.as_raw())
        {
            let name = subject(&leaf);
            return Err(Box::new(
                Failure::new(
                    Check::CaAsLeaf,
                    format!(
                        "{name} is itself one of the trusted CAs, presented as the end-entity certificate: a CA certificate is never accepted as a server's or client's own (a self-signed certificate given as its own CA); make a CA (mtls pki init) and issue the certificate from it (mtls pki issue)"
                    ),
                )
                .about(Link::of(&leaf.x509, 0, true)),
            ));
        }
        // Intermediates that do not parse are left out: the path may not need them.
        let mut pool: Vec<Cert<'_>> = intermediates
            .iter()
            .filter_map(|der| Cert::parse(der.as_ref(), false).ok())
            .collect();
        let first_anchor = pool.len();
        // Anchors are parsed per verification, and only those that can issue something
        // here: a name no certificate of this chain names is never looked at.
        for anchor in &self.anchors {
            let wanted = std::iter::once(&leaf)
                .chain(pool[..first_anchor].iter())
                .any(|c| c.x509.issuer().as_raw() == anchor.subject.as_slice());
            if wanted && let Ok(cert) = Cert::parse(anchor.der.as_ref(), true) {
                pool.push(cert);
            }
        }
        let mut search = Search {
            verifier: self,
            pool: &pool,
            leaf: &leaf,
            name,
            at,
            budget: Budget::new(self.policy.limits),
            best: None,
            describe,
        };
        let mut path = Vec::new();
        match search.extend(&mut path) {
            Some(verified) => Ok(verified),
            None => Err(Box::new(search.verdict())),
        }
    }

    /// Whether the CRLs now list `leaf`, a certificate that verified earlier (a resumed
    /// session's, a connection open across a reload): the failure if they do. Only the
    /// CRL from the leaf's issuer is looked at; expiry and missing CRLs were the full
    /// verification's job.
    pub fn revoked<I: AsRef<[u8]>>(&self, leaf: &[u8], intermediates: &[I]) -> Option<Failure> {
        let leaf = Cert::parse(leaf, false).ok()?;
        let issuer_name = leaf.x509.issuer().as_raw();
        let issuer_der = intermediates
            .iter()
            .map(AsRef::as_ref)
            .chain(self.anchors.iter().map(|a| a.der.as_ref()))
            .find(|der| {
                X509Certificate::from_der(der)
                    .is_ok_and(|(_, c)| c.subject().as_raw() == issuer_name)
            })?;
        let issuer = Cert::parse(issuer_der, true).ok()?;
        let (check, sentence) = self.crls.revoked_only(&leaf, &issuer)?;
        Some(Failure::new(check, sentence).about(Link::of(&leaf.x509, 0, false)))
    }
}

/// Whether `der` can be a trust anchor at `now`: it parses, it is a CA (CA:TRUE, or an
/// X.509 v1 root), its keyUsage allows keyCertSign, its key is not weak, and it is valid
/// now. `Ok` is its subject name (DER), for CertificateRequest hints.
pub fn anchor_problem(der: &[u8], now: OffsetDateTime) -> Result<Vec<u8>, String> {
    let cert =
        Cert::parse(der, true).map_err(|e| format!("a CA certificate does not parse: {e}"))?;
    let name = subject(&cert);
    if let Some((_, what)) = &cert.defect {
        return Err(format!("the CA certificate {name} {what}"));
    }
    if let Some(why) = cert.ca_problem() {
        let hint = if cert.basic.is_some_and(|(ca, _)| !ca) {
            " (is this a client or server certificate rather than its CA?)"
        } else {
            ""
        };
        return Err(format!("{name} cannot be a trusted CA: {why}{hint}"));
    }
    validity(&cert, now).map_err(|(_, why)| format!("the CA certificate {name} {why}"))?;
    Ok(cert.x509.subject().as_raw().to_vec())
}

/// Ranks of failures: a later path check beats an earlier building problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Reach {
    NoIssuer,
    Building,
    CompletePath,
}

struct Search<'v, 'p, 'a> {
    verifier: &'v Verifier,
    pool: &'p [Cert<'a>],
    leaf: &'p Cert<'a>,
    name: Option<&'p PeerName>,
    at: OffsetDateTime,
    budget: Budget,
    best: Option<(Reach, usize, Failure)>,
    /// Whether a success describes its chain ([`Verified::chain`]).
    describe: bool,
}

impl<'p, 'a> Search<'_, 'p, 'a> {
    /// The certificate at `path` position `i` (0 = leaf).
    fn at_path(&self, path: &[usize], i: usize) -> &'p Cert<'a> {
        match i {
            0 => self.leaf,
            i => &self.pool[path[i - 1]],
        }
    }

    /// Extend `path` (indexes into the pool, leaf implied first) until a trust anchor;
    /// `Some` when a complete path validated.
    fn extend(&mut self, path: &mut Vec<usize>) -> Option<Verified> {
        let child = self.at_path(path, path.len());
        let mut candidates: Vec<usize> = (0..self.pool.len())
            .filter(|&i| {
                let c = &self.pool[i];
                issued_by(child, c)
                    && !path.contains(&i)
                    && !c.same_entity(self.leaf)
                    && !path.iter().any(|&p| self.pool[p].same_entity(c))
            })
            .collect();
        // Trust anchors first, then a key identifier match, then the order given.
        candidates.sort_by_key(|&i| {
            let c = &self.pool[i];
            let key_match = matches!((child.aki, c.ski), (Some(a), Some(s)) if a == s);
            let key_mismatch = matches!((child.aki, c.ski), (Some(a), Some(s)) if a != s);
            (!c.trusted, key_mismatch, !key_match)
        });
        if candidates.is_empty() {
            self.no_issuer(path, child);
            return None;
        }
        for i in candidates {
            if let Err(e) = self.budget.candidate() {
                self.exhausted(path, e);
                return None;
            }
            let issuer = &self.pool[i];
            let intermediates = path.len() + usize::from(!issuer.trusted);
            if let Some(max) = self.verifier.policy.max_intermediates
                && intermediates > max
            {
                let failure = Failure::new(
                    Check::ChainTooDeep,
                    format!(
                        "chain too deep: {intermediates} intermediate certificate(s) between the end-entity certificate and a trusted CA, more than the {max} allowed (nginx's verify_depth {}, openssl verify's -verify_depth {max})",
                        max + 1
                    ),
                );
                self.record(Reach::Building, path.len(), failure, path);
                continue;
            }
            // An intermediate (never the end entity) whose signature by this key verified
            // before; see `SignatureCache`.
            let cache_key = (!path.is_empty()).then(|| SignatureCache::key(child, issuer));
            let known = cache_key
                .as_ref()
                .is_some_and(|k| self.verifier.ca_signatures.contains(k));
            if !known && let Err(e) = self.budget.signature() {
                self.exhausted(path, e);
                return None;
            }
            let verdict = if known {
                Ok(())
            } else {
                signature::verify(
                    issuer.x509.public_key(),
                    &child.x509.signature_algorithm,
                    &child.x509.signature_value.data,
                    child.x509.tbs_certificate.as_ref(),
                )
            };
            if let (Ok(()), Some(key), false) = (&verdict, cache_key, known) {
                self.verifier.ca_signatures.insert(key);
            }
            if let Err((check, why)) = verdict {
                let sentence = match check {
                    // The issuer's own key is the problem, not the signature.
                    Check::WeakKey | Check::UnsupportedAlgorithm
                        if issuer.defect.as_ref().is_some_and(|(c, _)| *c == check) =>
                    {
                        format!(
                            "{} ({}), the issuer of {}, has {why}",
                            subject(issuer),
                            role(path.len() + 1, issuer),
                            subject(child)
                        )
                    }
                    _ => format!(
                        "{} ({}) is not signed by {}: {why}",
                        subject(child),
                        role(path.len(), child),
                        subject(issuer)
                    ),
                };
                let failure = Failure::new(check, sentence).about(self.link(path, path.len()));
                self.record(Reach::Building, path.len(), failure, path);
                continue;
            }
            path.push(i);
            if issuer.trusted {
                match self.validate(path) {
                    Ok(verified) => return Some(verified),
                    Err(failure) => self.record(Reach::CompletePath, path.len(), failure, path),
                }
            } else if let Some(verified) = self.extend(path) {
                return Some(verified);
            }
            path.pop();
            if matches!(self.best, Some((_, _, ref f)) if f.check == Check::TooComplex) {
                return None;
            }
        }
        None
    }

    fn no_issuer(&mut self, path: &[usize], child: &Cert<'_>) {
        let trusted: Vec<String> = self
            .verifier
            .anchors
            .iter()
            .filter_map(|a| X509Certificate::from_der(a.der.as_ref()).ok())
            .map(|(_, c)| mtls_pki::dn::display(c.subject()))
            .collect();
        let sentence = format!(
            "unknown issuer: the chain ends at {} (issued by {}), which is not among the trusted CAs [{}]",
            subject(child),
            mtls_pki::dn::display(child.x509.issuer()),
            trusted.join(", ")
        );
        let failure =
            Failure::new(Check::UnknownIssuer, sentence).about(self.link(path, path.len()));
        self.record(Reach::NoIssuer, path.len(), failure, path);
    }

    fn exhausted(&mut self, path: &[usize], e: Exhausted) {
        let failure = Failure::new(Check::TooComplex, e.sentence(&self.verifier.policy.limits));
        // Always the verdict: the search stopped.
        self.best = Some((Reach::CompletePath, usize::MAX, failure));
        let _ = path;
    }

    fn record(&mut self, reach: Reach, depth: usize, mut failure: Failure, path: &[usize]) {
        let better = match &self.best {
            None => true,
            Some((r, d, _)) => (reach, depth) > (*r, *d),
        };
        if better {
            failure.chain = (0..=path.len()).map(|i| self.link(path, i)).collect();
            self.best = Some((reach, depth, failure));
        }
    }

    fn verdict(self) -> Failure {
        match self.best {
            Some((_, _, failure)) => failure,
            None => Failure::new(Check::UnknownIssuer, "unknown issuer: no path was found"),
        }
    }

    fn link(&self, path: &[usize], i: usize) -> Link {
        let cert = self.at_path(path, i);
        Link::of(&cert.x509, i, cert.trusted)
    }

    /// RFC 5280 section 6 over one complete path (the last certificate is trusted).
    #[allow(clippy::result_large_err)] // Once per complete path, never stored.
    fn validate(&mut self, path: &[usize]) -> Result<Verified, Failure> {
        let certs: Vec<&Cert<'a>> = (0..=path.len()).map(|i| self.at_path(path, i)).collect();
        let n = certs.len();
        let fail = |check: Check, i: usize, sentence: String| {
            Failure::new(check, sentence).about(Link::of(&certs[i].x509, i, certs[i].trusted))
        };

        // The certificates themselves.
        for (i, cert) in certs.iter().enumerate() {
            if let Some((check, what)) = &cert.defect {
                let sentence = format!("{} ({}) {what}", subject(cert), role(i, cert));
                return Err(fail(*check, i, sentence));
            }
        }
        for (i, cert) in certs.iter().enumerate() {
            validity(cert, self.at).map_err(|(check, why)| {
                let who = match i {
                    0 => format!("{} (serial {})", subject(cert), serial(cert)),
                    _ => format!(
                        "{} ({}, serial {})",
                        subject(cert),
                        role(i, cert),
                        serial(cert)
                    ),
                };
                fail(check, i, format!("{who} {why}"))
            })?;
        }

        // The end entity is an end entity.
        let leaf = certs[0];
        if leaf.is_ca() {
            return Err(fail(
                Check::CaAsLeaf,
                0,
                format!(
                    "{} is a CA certificate (basicConstraints CA:TRUE), presented as an end-entity certificate",
                    subject(leaf)
                ),
            ));
        }

        // The issuers, from the trust anchor down (RFC 5280 6.1.4 (k) to (n)).
        let mut max_path: Option<u32> = None;
        for i in (1..n).rev() {
            let cert = certs[i];
            if let Some(why) = cert.ca_problem() {
                let check = if why.contains("keyCertSign") {
                    Check::KeyUsage
                } else {
                    Check::NotCa
                };
                return Err(fail(
                    check,
                    i,
                    format!(
                        "{} ({}) cannot issue certificates: {why}",
                        subject(cert),
                        role(i, cert)
                    ),
                ));
            }
            if i < n - 1 && !cert.self_issued {
                if max_path == Some(0) {
                    return Err(fail(
                        Check::PathLength,
                        i,
                        format!(
                            "{} ({}) sits below a CA whose pathLenConstraint allows no more intermediate CAs",
                            subject(cert),
                            role(i, cert)
                        ),
                    ));
                }
                max_path = max_path.map(|m| m - 1);
            }
            if let Some((_, Some(limit))) = cert.basic {
                max_path = Some(max_path.map_or(limit, |m| m.min(limit)));
            }
        }

        // Purpose: the end entity, and every intermediate that restricts it.
        if let Some(purpose) = self.verifier.policy.purpose {
            for (i, cert) in certs.iter().enumerate().take(n - 1) {
                let Some(eku) = cert.eku else { continue };
                let fits = match purpose {
                    Purpose::Server => eku.server,
                    Purpose::Client => eku.client,
                };
                // anyExtendedKeyUsage alone does not make a TLS end entity (OpenSSL's
                // sslserver/sslclient purposes and webpki refuse it); an intermediate
                // with it passes.
                if !(fits || i > 0 && eku.any) {
                    let has = mtls_pki::show::describe_certificate(cert.x509.as_raw(), self.at)
                        .map(|d| d.extended_key_usage.join(", "))
                        .unwrap_or_default();
                    return Err(fail(
                        Check::WrongPurpose,
                        i,
                        format!(
                            "wrong purpose: {} ({}) is not valid for {} authentication; its extended key usage is [{has}]",
                            subject(cert),
                            role(i, cert),
                            purpose.word()
                        ),
                    ));
                }
            }
            if let Some(ku) = leaf.key_usage
                && !(ku.digital_signature() || ku.key_encipherment() || ku.key_agreement())
            {
                return Err(fail(
                    Check::KeyUsage,
                    0,
                    format!(
                        "{}'s keyUsage has none of digitalSignature, keyEncipherment, keyAgreement: it cannot be used for {} authentication",
                        subject(leaf),
                        purpose.word()
                    ),
                ));
            }
        }

        // Name constraints.
        if let Err(e) = names::check_path(
            &certs.iter().map(|c| &c.x509).collect::<Vec<_>>(),
            self.verifier.policy.cn_fallback,
            &mut self.budget,
        ) {
            return Err(match e {
                NameError::Violation(v) => {
                    fail(Check::NameConstraints, v.position.min(n - 1), v.sentence)
                }
                NameError::Exhausted(e) => {
                    Failure::new(Check::TooComplex, e.sentence(&self.verifier.policy.limits))
                }
            });
        }

        // The name the peer was asked for.
        if let Some(name) = self.name {
            hostname::check(&leaf.x509, name, self.verifier.policy.cn_fallback)
                .map_err(|sentence| fail(Check::NameMismatch, 0, sentence))?;
        }

        // Revocation: each certificate but the anchor, against its issuer's CRL.
        let mut checked = 0;
        if !self.verifier.crls.is_empty() {
            for i in 0..n - 1 {
                let required = match self.verifier.policy.crl_scope {
                    CrlScope::Chain => true,
                    CrlScope::EndEntity => i == 0,
                };
                match self.verifier.crls.check(
                    certs[i],
                    certs[i + 1],
                    self.at,
                    required,
                    &mut self.budget,
                ) {
                    Ok(true) => checked += 1,
                    Ok(false) => {}
                    Err((check, sentence)) => return Err(fail(check, i, sentence)),
                }
            }
        }

        Ok(Verified {
            chain: if self.describe {
                certs
                    .iter()
                    .enumerate()
                    .map(|(i, c)| Link::of(&c.x509, i, c.trusted))
                    .collect()
            } else {
                Vec::new()
            },
            checked_crls: checked,
        })
    }
}

/// Whether `issuer`'s subject is `child`'s issuer name (RFC 5280 7.1): byte-equal, or the
/// same attributes in the same order with text values equal after folding case and
/// spacing (one side may use another string type for the same name).
fn issued_by(child: &Cert<'_>, issuer: &Cert<'_>) -> bool {
    let (a, b) = (child.x509.issuer(), issuer.x509.subject());
    if a.as_raw() == b.as_raw() {
        return true;
    }
    let (mut left, mut right) = (a.iter_attributes(), b.iter_attributes());
    loop {
        match (left.next(), right.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) => {
                if x.attr_type() != y.attr_type() {
                    return false;
                }
                if x.attr_value().data == y.attr_value().data {
                    continue;
                }
                match (x.as_str(), y.as_str()) {
                    (Ok(p), Ok(q)) if folded_eq(p, q) => {}
                    _ => return false,
                }
            }
            _ => return false,
        }
    }
}

/// RFC 5280 7.1 / RFC 4518 in short: case-insensitive, leading and trailing spaces
/// dropped, inner runs of spaces as one.
fn folded_eq(a: &str, b: &str) -> bool {
    let fold = |s: &str| {
        s.split_whitespace()
            .flat_map(|word| std::iter::once(' ').chain(word.chars().flat_map(char::to_lowercase)))
            .skip(1)
            .collect::<String>()
    };
    fold(a) == fold(b)
}

fn validity(cert: &Cert<'_>, at: OffsetDateTime) -> Result<(), (Check, String)> {
    let not_before = cert.x509.validity().not_before.to_datetime();
    let not_after = cert.x509.validity().not_after.to_datetime();
    if at < not_before {
        return Err((
            Check::NotYetValid,
            format!(
                "is not valid until {} ({})",
                mtls_pki::db::human_time(not_before),
                mtls_pki::show::relative(not_before, at)
            ),
        ));
    }
    if at > not_after {
        return Err((
            Check::Expired,
            format!(
                "expired on {} ({})",
                mtls_pki::db::human_time(not_after),
                mtls_pki::show::relative(not_after, at)
            ),
        ));
    }
    Ok(())
}

fn subject(cert: &Cert<'_>) -> String {
    let s = mtls_pki::dn::display(cert.x509.subject());
    if s.is_empty() {
        "(empty subject)".to_owned()
    } else {
        s
    }
}

fn serial(cert: &Cert<'_>) -> String {
    crate::failure::serial_hex(cert.x509.raw_serial())
}

fn role(i: usize, cert: &Cert<'_>) -> String {
    match (i, cert.trusted) {
        (_, true) => "trusted CA".to_owned(),
        (0, _) => "end-entity certificate".to_owned(),
        (n, _) => format!("intermediate #{n}"),
    }
}
