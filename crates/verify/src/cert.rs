//! One certificate, parsed once per verification, with what path validation asks of it.
//!
//! Structural defects are found here, at parse time, and kept: they refuse a path only if
//! the certificate ends up in it (a malformed extra intermediate a client sends along must
//! not refuse a chain that does not need it).

use x509_parser::extensions::{ExtendedKeyUsage, KeyUsage, ParsedExtension};
use x509_parser::oid_registry::{
    OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER, OID_X509_EXT_BASIC_CONSTRAINTS,
    OID_X509_EXT_CERTIFICATE_POLICIES, OID_X509_EXT_EXTENDED_KEY_USAGE, OID_X509_EXT_KEY_USAGE,
    OID_X509_EXT_NAME_CONSTRAINTS, OID_X509_EXT_SUBJECT_ALT_NAME,
    OID_X509_EXT_SUBJECT_KEY_IDENTIFIER,
};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::Check;
use crate::signature::{self, KeyKind};

/// A certificate of one verification: the leaf, an intermediate the peer sent, or a trust
/// anchor.
#[derive(Debug)]
pub(crate) struct Cert<'a> {
    pub(crate) x509: X509Certificate<'a>,
    pub(crate) trusted: bool,
    /// basicConstraints: `Some((ca, pathLenConstraint))`.
    pub(crate) basic: Option<(bool, Option<u32>)>,
    pub(crate) key_usage: Option<KeyUsage>,
    pub(crate) eku: Option<Eku>,
    pub(crate) ski: Option<&'a [u8]>,
    pub(crate) aki: Option<&'a [u8]>,
    /// Subject and issuer are the same name (RFC 5280 "self-issued").
    pub(crate) self_issued: bool,
    /// The first structural defect found, if any: refuses any path through this
    /// certificate.
    pub(crate) defect: Option<(Check, String)>,
    pub(crate) key: Option<KeyKind>,
}

/// Extended key usage, reduced to what TLS asks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Eku {
    pub(crate) server: bool,
    pub(crate) client: bool,
    pub(crate) any: bool,
}

impl Eku {
    fn of(eku: &ExtendedKeyUsage<'_>) -> Eku {
        Eku {
            server: eku.server_auth,
            client: eku.client_auth,
            any: eku.any,
        }
    }
}

impl<'a> Cert<'a> {
    /// Parse `der`. An error only when the bytes are not a certificate at all.
    pub(crate) fn parse(der: &'a [u8], trusted: bool) -> Result<Cert<'a>, String> {
        let (rest, x509) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
        let mut cert = Cert {
            self_issued: x509.subject().as_raw() == x509.issuer().as_raw(),
            x509,
            trusted,
            basic: None,
            key_usage: None,
            eku: None,
            ski: None,
            aki: None,
            defect: None,
            key: None,
        };
        if !rest.is_empty() {
            cert.defect(
                Check::Malformed,
                "has data after the end of the certificate",
            );
        }
        cert.read_extensions();
        if cert.x509.signature_algorithm != cert.x509.tbs_certificate.signature {
            cert.defect(
                Check::Malformed,
                "names two different signature algorithms (RFC 5280 4.1.1.2: they must be the same)",
            );
        }
        // RFC 5280 4.2.1.3 and 4.1.2.6: only a CA signs certificates, and a CA has a name.
        let ca = cert.is_ca();
        if !ca && cert.key_usage.is_some_and(|ku| ku.key_cert_sign()) {
            cert.defect(
                Check::Malformed,
                "asserts keyCertSign in its keyUsage without basicConstraints CA:TRUE (RFC 5280 4.2.1.3)",
            );
        }
        if ca && cert.x509.subject().iter().next().is_none() {
            cert.defect(
                Check::Malformed,
                "is a CA certificate with an empty subject (RFC 5280 4.1.2.6: a CA must have a name)",
            );
        }
        let validity = cert.x509.validity();
        if validity.not_before > validity.not_after {
            cert.defect(Check::Malformed, "has a notBefore after its notAfter");
        }
        match signature::key_kind(cert.x509.public_key()) {
            Ok(kind) => cert.key = Some(kind),
            Err((check, what)) => cert.defect(check, &format!("has {what}")),
        }
        Ok(cert)
    }

    fn defect(&mut self, check: Check, what: &str) {
        defect(&mut self.defect, check, what);
    }

    fn read_extensions(&mut self) {
        let extensions = self.x509.extensions();
        if !extensions.is_empty() && self.x509.version().0 != 2 {
            defect(
                &mut self.defect,
                Check::Malformed,
                "has extensions but is not an X.509 v3 certificate",
            );
        }
        for (i, ext) in extensions.iter().enumerate() {
            if extensions[..i].iter().any(|e| e.oid == ext.oid) {
                defect(
                    &mut self.defect,
                    Check::DuplicateExtension,
                    &format!(
                        "has the extension {} twice (RFC 5280 4.2: at most once)",
                        extension_name(&ext.oid)
                    ),
                );
            }
            match ext.parsed_extension() {
                ParsedExtension::ParseError { error } => defect(
                    &mut self.defect,
                    Check::Malformed,
                    &format!(
                        "has a {} extension that does not parse ({error})",
                        extension_name(&ext.oid)
                    ),
                ),
                ParsedExtension::BasicConstraints(bc) => {
                    self.basic = Some((bc.ca, bc.path_len_constraint));
                    if bc.path_len_constraint.is_some() && !bc.ca {
                        defect(
                            &mut self.defect,
                            Check::Malformed,
                            "has a pathLenConstraint without CA:TRUE (RFC 5280 4.2.1.9)",
                        );
                    }
                }
                ParsedExtension::KeyUsage(ku) => {
                    if ku.flags == 0 {
                        defect(
                            &mut self.defect,
                            Check::Malformed,
                            "has a keyUsage extension with no bit set (RFC 5280 4.2.1.3)",
                        );
                    }
                    self.key_usage = Some(*ku);
                }
                ParsedExtension::ExtendedKeyUsage(eku) => self.eku = Some(Eku::of(eku)),
                ParsedExtension::SubjectKeyIdentifier(ski) => {
                    self.ski = Some(ski.0);
                    if ext.critical {
                        defect(
                            &mut self.defect,
                            Check::Malformed,
                            "marks its subjectKeyIdentifier critical (RFC 5280 4.2.1.2: it must not be)",
                        );
                    }
                }
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    self.aki = aki.key_identifier.as_ref().map(|k| k.0);
                    if ext.critical {
                        defect(
                            &mut self.defect,
                            Check::Malformed,
                            "marks its authorityKeyIdentifier critical (RFC 5280 4.2.1.1: it must not be)",
                        );
                    }
                }
                ParsedExtension::SubjectAlternativeName(san) => {
                    if !ext.critical && self.x509.subject().iter().next().is_none() {
                        defect(
                            &mut self.defect,
                            Check::Malformed,
                            "has an empty subject and a non-critical subjectAltName (RFC 5280 4.2.1.6: with an empty subject it must be critical)",
                        );
                    }
                    if san.general_names.is_empty() {
                        defect(
                            &mut self.defect,
                            Check::Malformed,
                            "has an empty subjectAltName extension (RFC 5280 4.2.1.6)",
                        );
                    }
                }
                ParsedExtension::PolicyConstraints(_)
                | ParsedExtension::PolicyMappings(_)
                | ParsedExtension::InhibitAnyPolicy(_)
                    if ext.critical =>
                {
                    defect(
                        &mut self.defect,
                        Check::UnsupportedPolicy,
                        &format!(
                            "has a critical {} extension; certificate policy processing is not supported",
                            extension_name(&ext.oid)
                        ),
                    );
                }
                _ => {
                    if ext.critical && !understood(&ext.oid) {
                        defect(
                            &mut self.defect,
                            Check::CriticalExtension,
                            &format!(
                                "has a critical extension this verifier does not understand ({})",
                                extension_name(&ext.oid)
                            ),
                        );
                    }
                }
            }
        }
    }

    /// Whether this certificate may issue certificates: basicConstraints CA:TRUE (or an
    /// X.509 v1 trust anchor), and keyCertSign if it has a keyUsage.
    pub(crate) fn ca_problem(&self) -> Option<String> {
        match self.basic {
            Some((true, _)) => {}
            None if self.trusted && self.x509.version().0 == 0 => {}
            Some((false, _)) => return Some("its basicConstraints say CA:FALSE".into()),
            None => return Some("it has no basicConstraints CA:TRUE".into()),
        }
        if let Some(ku) = self.key_usage
            && !ku.key_cert_sign()
        {
            return Some("its keyUsage lacks keyCertSign".into());
        }
        None
    }

    pub(crate) fn is_ca(&self) -> bool {
        matches!(self.basic, Some((true, _)))
    }

    /// Subject and SPKI: two certificates with both equal are the same CA for loop
    /// detection (RFC 4158).
    pub(crate) fn same_entity(&self, other: &Cert<'_>) -> bool {
        self.x509.subject().as_raw() == other.x509.subject().as_raw()
            && self.x509.public_key().raw == other.x509.public_key().raw
    }
}

/// Keep the first defect found.
fn defect(slot: &mut Option<(Check, String)>, check: Check, what: &str) {
    if slot.is_none() {
        *slot = Some((check, what.to_owned()));
    }
}

/// Extensions whose criticality we honour: we process them, or they carry no constraint
/// (key identifiers, certificate policies without policy processing, distribution points).
fn understood(oid: &x509_parser::oid_registry::Oid<'_>) -> bool {
    [
        &OID_X509_EXT_BASIC_CONSTRAINTS,
        &OID_X509_EXT_KEY_USAGE,
        &OID_X509_EXT_EXTENDED_KEY_USAGE,
        &OID_X509_EXT_SUBJECT_ALT_NAME,
        &OID_X509_EXT_NAME_CONSTRAINTS,
        &OID_X509_EXT_SUBJECT_KEY_IDENTIFIER,
        &OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER,
        &OID_X509_EXT_CERTIFICATE_POLICIES,
    ]
    .contains(&oid)
}

/// An extension's name for sentences.
pub(crate) fn extension_name(oid: &x509_parser::oid_registry::Oid<'_>) -> String {
    let name = match oid.to_id_string().as_str() {
        "2.5.29.19" => "basicConstraints",
        "2.5.29.15" => "keyUsage",
        "2.5.29.37" => "extendedKeyUsage",
        "2.5.29.17" => "subjectAltName",
        "2.5.29.18" => "issuerAltName",
        "2.5.29.30" => "nameConstraints",
        "2.5.29.14" => "subjectKeyIdentifier",
        "2.5.29.35" => "authorityKeyIdentifier",
        "2.5.29.32" => "certificatePolicies",
        "2.5.29.33" => "policyMappings",
        "2.5.29.36" => "policyConstraints",
        "2.5.29.54" => "inhibitAnyPolicy",
        "2.5.29.31" => "cRLDistributionPoints",
        "1.3.6.1.5.5.7.1.1" => "authorityInfoAccess",
        other => return other.to_owned(),
    };
    name.to_owned()
}
