//! Name constraints (RFC 5280 section 4.2.1.10 and 6.1.3 (b), (c), 6.1.4 (g)).
//!
//! A CA with a nameConstraints extension vouches only for names inside its permitted
//! subtrees and outside its excluded ones, for every certificate below it in the path:
//!
//! ```text
//!   anchor  (its constraints apply too)   ─┐
//!   CA j    permitted / excluded subtrees  ├─▶ every certificate at positions < j:
//!   ...                                   ─┘      SANs of every form, the subject DN,
//!   end entity (position 0)                       subject emailAddress attributes, and
//!                                                 (end entity only) host-name CNs
//! ```
//!
//! Self-issued intermediates (subject = issuer) are not checked, so a constrained CA can
//! roll its key over (RFC 5280 6.1.3 (b)); the end entity always is. For each name form a
//! CA has permitted subtrees for, every name of that form must be inside one; no name may be
//! in an excluded subtree. The forms and how they compare:
//!
//! - dNSName: `example.com` is that name and every name under it, `.example.com` only the
//!   names under it (OpenSSL's, Go's and webpki's reading; x509-limbo calls the leading dot
//!   malformed), the empty string every name; labels compare case-insensitively. A wildcard
//!   SAN `*.example.com` is inside a permitted subtree only if every name it can stand for
//!   is, and in an excluded subtree if any name it can stand for is (CVE-2025-61727).
//! - iPAddress: address and contiguous mask, 8 bytes for IPv4, 32 for IPv6; an IPv4 range
//!   never holds an IPv6 address or the other way round.
//! - rfc822Name: a whole mailbox (local part exact, host case-insensitive), a host (every
//!   mailbox at exactly that host) or `.host` (every mailbox at a host under it).
//! - uniformResourceIdentifier: the host of the URI; `host` is exactly that host, `.host`
//!   any host under it. A URI without a host name (a URN, an IP literal) cannot be checked
//!   and is refused when URIs are constrained.
//! - directoryName: the constraint's RDNs must begin the name; values compare after RFC
//!   4518-style folding (case, surrounding and repeated white space) whatever their string
//!   type, other values byte for byte.
//!
//! The end entity's subject CNs that are host names (`hostname::cn_is_host_name`) are
//! checked as DNS names when it has no subjectAltName extension: those are the CNs the CN
//! fallback of `hostname` can match, so the fallback cannot reach outside a CA's DNS
//! constraints (a person's CN such as `alice` under a DNS-constrained CA is refused too,
//! without a SAN: better than a hole). With a SAN extension but no DNS or IP SAN in it, only
//! CNs of two labels or more are checked (as browsers do; `alice` stays a person there).
//!
//! Refused rather than guessed: a name of a form we do not process (otherName, x400Address,
//! ediPartyName, registeredID) in a certificate whose CA constrains that form (RFC 5280:
//! "process the constraint or reject the certificate"); a malformed name of a constrained
//! form; a malformed constraint; minimum other than 0 or a maximum (the RFC profile forbids
//! them); a nameConstraints extension with no subtrees, or on an end entity that is not a
//! CA. Criticality is not looked at: RFC 5280 says the extension MUST be critical, the
//! CA/Browser Forum allows non-critical, and either way enforcing it is the safe reading
//! (x509-limbo's `webpki::nc::permitted-dns-match-noncritical`, not its RFC twin).
//!
//! Every comparison of one name with one subtree of its form is paid from the `Budget`, so
//! a leaf with thousands of names under a CA with thousands of subtrees fails fast instead
//! of burning a handshake's CPU.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use x509_parser::der_parser::asn1_rs::{Any, Class, FromDer};
use x509_parser::extensions::{GeneralName, GeneralSubtree, NameConstraints};
use x509_parser::oid_registry::OID_X509_EXT_NAME_CONSTRAINTS;
use x509_parser::prelude::X509Certificate;
use x509_parser::x509::X509Name;

use crate::budget::{Budget, Exhausted};
use crate::hostname::{Strictness, attribute_text, cn_is_host_name, host_name_problem};

/// A name outside a CA's constraints, or a constraint that cannot be processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    /// Position (0 = end entity) of the certificate whose name broke the constraint.
    pub(crate) position: usize,
    /// Position of the CA whose nameConstraints it broke.
    pub(crate) constrained_by: usize,
    /// One sentence: the name, the subtree, permitted or excluded.
    pub(crate) sentence: String,
}

/// Why the name constraints of a path do not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NameError {
    Violation(Violation),
    Exhausted(Exhausted),
}

impl From<Exhausted> for NameError {
    fn from(e: Exhausted) -> NameError {
        NameError::Exhausted(e)
    }
}

/// Check the name constraints of a whole path: `path[0]` is the end entity, the last is
/// the trust anchor. The constraints of the CA at position `j` apply to every certificate
/// below it (positions `< j`), except self-issued intermediates; the end entity is always
/// checked. `single_label_cn`: a single-label CN of an end entity without any
/// subjectAltName (`backend`) is a host name too, because the CN fallback can match it.
pub(crate) fn check_path(
    path: &[&X509Certificate<'_>],
    single_label_cn: bool,
    budget: &mut Budget,
) -> Result<(), NameError> {
    if let Some(leaf) = path.first()
        && path.len() > 1
        && !is_ca(leaf)
        && leaf
            .get_extension_unique(&OID_X509_EXT_NAME_CONSTRAINTS)
            .map_or(true, |ext| ext.is_some())
    {
        return Err(violation(
            0,
            0,
            format!(
                "{} has a nameConstraints extension but is not a CA (RFC 5280 4.2.1.10: only CA certificates carry name constraints)",
                who(leaf, 0)
            ),
        ));
    }
    // The names of each certificate, read when a constraint first applies to it.
    let mut names: Vec<Option<Result<Vec<Named<'_>>, String>>> =
        std::iter::repeat_with(|| None).take(path.len()).collect();
    for j in (1..path.len()).rev() {
        let Some(constraints) = Constraints::of(path[j], j)? else {
            continue;
        };
        for i in (0..j).rev() {
            let cert = path[i];
            if i > 0 && is_self_issued(cert) {
                continue;
            }
            let of_cert = names[i].get_or_insert_with(|| names_of(cert, i == 0, single_label_cn));
            let list = match of_cert {
                Ok(list) => list,
                Err(problem) => {
                    return Err(violation(
                        i,
                        j,
                        format!(
                            "{} {problem}, so its names cannot be checked against the name constraints of {}",
                            who(cert, i),
                            constraints.who
                        ),
                    ));
                }
            };
            let subject = who(cert, i);
            for name in list.iter() {
                constraints.check(name, i, &subject, budget)?;
            }
        }
    }
    Ok(())
}

/// The name forms of GeneralName.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Other,
    Email,
    Dns,
    X400,
    Directory,
    Edi,
    Uri,
    Ip,
    RegisteredId,
    /// An undecodable entry whose tag is not one of GeneralName's.
    Unknown,
}

impl Form {
    fn of(name: &GeneralName<'_>) -> Form {
        match name {
            GeneralName::OtherName(..) => Form::Other,
            GeneralName::RFC822Name(_) => Form::Email,
            GeneralName::DNSName(_) => Form::Dns,
            GeneralName::X400Address(_) => Form::X400,
            GeneralName::DirectoryName(_) => Form::Directory,
            GeneralName::EDIPartyName(_) => Form::Edi,
            GeneralName::URI(_) => Form::Uri,
            GeneralName::IPAddress(_) => Form::Ip,
            GeneralName::RegisteredID(_) => Form::RegisteredId,
            GeneralName::Invalid(tag, _) => match tag.0 {
                0 => Form::Other,
                1 => Form::Email,
                2 => Form::Dns,
                3 => Form::X400,
                4 => Form::Directory,
                5 => Form::Edi,
                6 => Form::Uri,
                7 => Form::Ip,
                8 => Form::RegisteredId,
                _ => Form::Unknown,
            },
        }
    }

    /// The plural noun of sentences: "the permitted DNS names [...]".
    fn plural(self) -> &'static str {
        match self {
            Form::Other => "otherNames",
            Form::Email => "email addresses",
            Form::Dns => "DNS names",
            Form::X400 => "x400Addresses",
            Form::Directory => "directory names",
            Form::Edi => "ediPartyNames",
            Form::Uri => "URI hosts",
            Form::Ip => "IP ranges",
            Form::RegisteredId => "registeredIDs",
            Form::Unknown => "names of an unknown form",
        }
    }

    /// "the DNS name constraints of CN=CA".
    fn adjective(self) -> &'static str {
        match self {
            Form::Email => "email address",
            Form::Dns => "DNS name",
            Form::Directory => "directory name",
            Form::Uri => "URI",
            Form::Ip => "IP address",
            other => other.noun(),
        }
    }

    /// The ASN.1 name of the form.
    fn noun(self) -> &'static str {
        match self {
            Form::Other => "otherName",
            Form::Email => "rfc822Name",
            Form::Dns => "dNSName",
            Form::X400 => "x400Address",
            Form::Directory => "directoryName",
            Form::Edi => "ediPartyName",
            Form::Uri => "uniformResourceIdentifier",
            Form::Ip => "iPAddress",
            Form::RegisteredId => "registeredID",
            Form::Unknown => "unknown",
        }
    }

    /// The singular of the form itself: "an otherName".
    fn singular(self) -> &'static str {
        match self {
            Form::Other => "an otherName",
            Form::Email => "an email address",
            Form::Dns => "a DNS name",
            Form::X400 => "an x400Address",
            Form::Directory => "a directory name",
            Form::Edi => "an ediPartyName",
            Form::Uri => "a URI",
            Form::Ip => "an IP address",
            Form::RegisteredId => "a registeredID",
            Form::Unknown => "a name of an unknown form",
        }
    }
}

/// One subtree: its base as written (for sentences) and as compared.
#[derive(Debug)]
struct Subtree<B> {
    text: String,
    base: B,
}

/// The subtrees of one kind (permitted or excluded) of one CA, by form.
#[derive(Debug, Default)]
struct Subtrees<'c> {
    dns: Vec<Subtree<DnsBase>>,
    ip: Vec<Subtree<IpRange>>,
    email: Vec<Subtree<EmailBase>>,
    uri: Vec<Subtree<UriBase>>,
    directory: Vec<Subtree<&'c X509Name<'c>>>,
    /// Forms with subtrees we do not process.
    unsupported: Vec<Form>,
}

/// The nameConstraints of the CA at one position.
#[derive(Debug)]
struct Constraints<'c> {
    position: usize,
    who: String,
    permitted: Subtrees<'c>,
    excluded: Subtrees<'c>,
}

/// A name of a certificate, with how sentences call it.
#[derive(Debug)]
struct Named<'c> {
    /// "the name DNS:example.com", "the subject", "the subject CN example.com".
    label: String,
    kind: Kind<'c>,
}

/// A name as compared; `Err` holds why it cannot be (", so it cannot be checked ...").
#[derive(Debug)]
enum Kind<'c> {
    Dns(Result<DnsName, &'static str>),
    Ip(Result<IpAddr, &'static str>),
    Email(Result<Mailbox, &'static str>),
    Uri(Result<String, &'static str>),
    Directory(&'c X509Name<'c>),
    Unsupported(Form),
}

/// A dNSName constraint.
#[derive(Debug)]
enum DnsBase {
    /// The empty constraint: every name.
    Any,
    /// The name and every name under it.
    Tree(String),
    /// Only the names under it (`.example.com`).
    Below(String),
}

/// A DNS name of a certificate, lower-cased.
#[derive(Debug)]
enum DnsName {
    Host(String),
    /// `*.parent`: any one label, then `parent`.
    Wildcard(String),
}

/// An iPAddress constraint, `len` 4 or 16.
#[derive(Debug)]
struct IpRange {
    addr: [u8; 16],
    mask: [u8; 16],
    len: usize,
}

/// An rfc822Name constraint.
#[derive(Debug)]
enum EmailBase {
    Any,
    Mailbox(Mailbox),
    Host(String),
    Below(String),
}

/// A mailbox; the host lower-cased.
#[derive(Debug)]
struct Mailbox {
    local: String,
    host: String,
}

/// A uniformResourceIdentifier constraint (its host).
#[derive(Debug)]
enum UriBase {
    Any,
    Host(String),
    Below(String),
}

impl<'c> Constraints<'c> {
    /// The constraints of the CA at `position`; `None` without a nameConstraints extension.
    fn of(cert: &'c X509Certificate<'c>, position: usize) -> Result<Option<Self>, NameError> {
        let who_ca = who(cert, position);
        let refuse = |what: String| violation(position, position, format!("{who_ca} {what}"));
        let ext = match cert.get_extension_unique(&OID_X509_EXT_NAME_CONSTRAINTS) {
            Ok(Some(ext)) => ext,
            Ok(None) => return Ok(None),
            Err(_) => return Err(refuse("has the nameConstraints extension twice".into())),
        };
        let nc: &NameConstraints<'_> = match cert.name_constraints() {
            Ok(Some(nc)) => nc.value,
            _ => {
                return Err(refuse(
                    "has a nameConstraints extension that does not parse (an empty list of subtrees?)"
                        .into(),
                ));
            }
        };
        if let Err(problem) = bounds_problem(ext.value) {
            return Err(refuse(format!(
                "has a nameConstraints subtree with {problem}; RFC 5280 requires minimum 0 and no maximum, and they are not supported"
            )));
        }
        let permitted = nc.permitted_subtrees.as_deref().unwrap_or_default();
        let excluded = nc.excluded_subtrees.as_deref().unwrap_or_default();
        if permitted.is_empty() && excluded.is_empty() {
            return Err(refuse(
                "has a nameConstraints extension with neither permitted nor excluded subtrees (RFC 5280 4.2.1.10)"
                    .into(),
            ));
        }
        let subtrees = |list: &'c [GeneralSubtree<'c>]| {
            Subtrees::parse(list).map_err(|problem| {
                refuse(format!(
                    "has a malformed nameConstraints subtree: {problem}"
                ))
            })
        };
        Ok(Some(Constraints {
            position,
            permitted: subtrees(permitted)?,
            excluded: subtrees(excluded)?,
            who: who_ca.clone(),
        }))
    }

    /// Check one name of the certificate at `position`, called `subject` in sentences.
    fn check(
        &self,
        name: &Named<'_>,
        position: usize,
        subject: &str,
        budget: &mut Budget,
    ) -> Result<(), NameError> {
        let (p, e) = (&self.permitted, &self.excluded);
        let at = Place {
            constraints: self,
            name,
            position,
            subject,
        };
        match &name.kind {
            Kind::Dns(dns) => at.apply(
                Form::Dns,
                dns,
                &p.dns,
                &e.dns,
                budget,
                |d, b| dns_within(d, b, false),
                |d, b| dns_within(d, b, true),
            ),
            Kind::Ip(ip) => at.apply(Form::Ip, ip, &p.ip, &e.ip, budget, ip_within, ip_within),
            Kind::Email(mailbox) => at.apply(
                Form::Email,
                mailbox,
                &p.email,
                &e.email,
                budget,
                email_within,
                email_within,
            ),
            Kind::Uri(host) => at.apply(
                Form::Uri,
                host,
                &p.uri,
                &e.uri,
                budget,
                uri_within,
                uri_within,
            ),
            Kind::Directory(dn) => at.apply(
                Form::Directory,
                &Ok(*dn),
                &p.directory,
                &e.directory,
                budget,
                dn_within,
                dn_within,
            ),
            Kind::Unsupported(form) => {
                let constrained = |s: &Subtrees<'_>| {
                    (*form == Form::Unknown && !s.is_empty()) || s.unsupported.contains(form)
                };
                if constrained(p) || constrained(e) {
                    return Err(at.refuse(format!(
                        "is {}, and {} constrains {}, which this verifier does not process (RFC 5280 4.2.1.10: process the constraint or reject the certificate)",
                        form.singular(),
                        self.who,
                        form.plural()
                    )));
                }
                Ok(())
            }
        }
    }
}

/// One name of one certificate against one CA's constraints.
struct Place<'a, 'c> {
    constraints: &'a Constraints<'c>,
    name: &'a Named<'a>,
    position: usize,
    subject: &'a str,
}

impl Place<'_, '_> {
    /// Permitted, then excluded, for a name of `form`. `within` says whether every name the
    /// presented one stands for is inside the base; `meets` whether any is (they differ only
    /// for wildcards).
    // One generic body for the five forms reads better than five copies or a trait with
    // one implementation each, so the arguments stay many.
    #[allow(clippy::too_many_arguments)]
    fn apply<N, B>(
        &self,
        form: Form,
        name: &Result<N, &'static str>,
        permitted: &[Subtree<B>],
        excluded: &[Subtree<B>],
        budget: &mut Budget,
        within: impl Fn(&N, &B) -> bool,
        meets: impl Fn(&N, &B) -> bool,
    ) -> Result<(), NameError> {
        if permitted.is_empty() && excluded.is_empty() {
            return Ok(());
        }
        let name = match name {
            Ok(name) => name,
            Err(problem) => {
                return Err(self.refuse(format!(
                    "{problem}, so it cannot be checked against the {} constraints of {}",
                    form.adjective(),
                    self.constraints.who
                )));
            }
        };
        if !permitted.is_empty() {
            budget.name_comparisons(count(permitted.len()))?;
            if !permitted.iter().any(|s| within(name, &s.base)) {
                return Err(self.refuse(format!(
                    "is outside the permitted {} [{}] of {}",
                    form.plural(),
                    listed(permitted),
                    self.constraints.who
                )));
            }
        }
        if !excluded.is_empty() {
            budget.name_comparisons(count(excluded.len()))?;
            if let Some(hit) = excluded.iter().find(|s| meets(name, &s.base)) {
                return Err(self.refuse(format!(
                    "is in the excluded subtree {} of {}",
                    hit.text, self.constraints.who
                )));
            }
        }
        Ok(())
    }

    /// "the name DNS:x of CN=leaf {what}".
    fn refuse(&self, what: String) -> NameError {
        violation(
            self.position,
            self.constraints.position,
            format!("{} of {} {what}", self.name.label, self.subject),
        )
    }
}

impl<'c> Subtrees<'c> {
    fn parse(list: &'c [GeneralSubtree<'c>]) -> Result<Subtrees<'c>, String> {
        let mut out = Subtrees::default();
        for subtree in list {
            let text = constraint_text(&subtree.base);
            match &subtree.base {
                GeneralName::DNSName(s) => {
                    let base = parse_dns_base(s)
                        .ok_or_else(|| format!("DNS:{s} is not a DNS name or .domain"))?;
                    out.dns.push(Subtree { text, base });
                }
                GeneralName::IPAddress(bytes) => {
                    let base = parse_ip_range(bytes).ok_or_else(|| {
                        format!(
                            "the iPAddress {} is not an address and a contiguous mask (8 bytes for IPv4, 32 for IPv6)",
                            hex(bytes)
                        )
                    })?;
                    out.ip.push(Subtree {
                        text: base.to_string(),
                        base,
                    });
                }
                GeneralName::RFC822Name(s) => {
                    let base = parse_email_base(s).ok_or_else(|| {
                        format!("email:{s} is not a mailbox, a host or a .domain")
                    })?;
                    out.email.push(Subtree { text, base });
                }
                GeneralName::URI(s) => {
                    let base = parse_uri_base(s)
                        .ok_or_else(|| format!("URI:{s} is not a host or a .domain"))?;
                    out.uri.push(Subtree { text, base });
                }
                GeneralName::DirectoryName(dn) => out.directory.push(Subtree { text, base: dn }),
                GeneralName::Invalid(tag, _) => {
                    return Err(format!("an entry with tag [{}] does not parse", tag.0));
                }
                other => {
                    let form = Form::of(other);
                    if !out.unsupported.contains(&form) {
                        out.unsupported.push(form);
                    }
                }
            }
        }
        Ok(out)
    }

    fn is_empty(&self) -> bool {
        self.dns.is_empty()
            && self.ip.is_empty()
            && self.email.is_empty()
            && self.uri.is_empty()
            && self.directory.is_empty()
            && self.unsupported.is_empty()
    }
}

/// The names a constraint applies to: every subjectAltName entry, the subject DN when not
/// empty, the subject emailAddress attributes, and for the end entity without a DNS or IP
/// SAN its host-name CNs. `Err` when the subjectAltName extension cannot be read.
fn names_of<'c>(
    cert: &'c X509Certificate<'c>,
    end_entity: bool,
    single_label_cn: bool,
) -> Result<Vec<Named<'c>>, String> {
    let (sans, has_san): (&[GeneralName<'_>], bool) = match cert.subject_alternative_name() {
        Ok(Some(san)) => (&san.value.general_names, true),
        Ok(None) => (&[], false),
        Err(_) => return Err("has a subjectAltName extension that does not parse".into()),
    };
    let mut names = Vec::with_capacity(sans.len() + 2);
    for san in sans {
        names.push(san_name(san));
    }
    let subject = cert.subject();
    if subject.iter_rdn().next().is_some() {
        names.push(Named {
            label: "the subject".into(),
            kind: Kind::Directory(subject),
        });
    }
    for attr in subject.iter_email() {
        let text = attribute_text(attr.attr_value());
        names.push(Named {
            label: format!(
                "the subject emailAddress {}",
                text.as_deref()
                    .map_or("(not text)".into(), mtls_pki::dn::escape_value)
            ),
            kind: Kind::Email(text.ok_or("is not text").and_then(|t| parse_mailbox(&t))),
        });
    }
    let dns_or_ip = sans
        .iter()
        .any(|san| matches!(Form::of(san), Form::Dns | Form::Ip));
    if end_entity && !dns_or_ip {
        for attr in subject.iter_common_name() {
            if let Some(cn) = attribute_text(attr.attr_value())
                && cn_is_host_name(&cn)
                && (cn.contains('.') || (!has_san && single_label_cn))
            {
                names.push(Named {
                    label: format!("the subject CN {cn}"),
                    kind: Kind::Dns(parse_dns_name(&cn)),
                });
            }
        }
    }
    Ok(names)
}

fn san_name<'c>(san: &'c GeneralName<'c>) -> Named<'c> {
    let (label, kind) = match san {
        GeneralName::DNSName(s) => (format!("DNS:{s}"), Kind::Dns(parse_dns_name(s))),
        GeneralName::IPAddress(bytes) => {
            let ip = match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                _ => None,
            };
            let label = ip.map_or_else(|| format!("IP:{}", hex(bytes)), |ip| format!("IP:{ip}"));
            (
                label,
                Kind::Ip(ip.ok_or("is not a 4- or 16-byte IP address")),
            )
        }
        GeneralName::RFC822Name(s) => (format!("email:{s}"), Kind::Email(parse_mailbox(s))),
        GeneralName::URI(s) => (format!("URI:{s}"), Kind::Uri(uri_host(s))),
        GeneralName::DirectoryName(dn) => (
            format!("DirName:{}", mtls_pki::dn::display(dn)),
            Kind::Directory(dn),
        ),
        GeneralName::OtherName(oid, _) => {
            (format!("otherName:{oid}"), Kind::Unsupported(Form::Other))
        }
        GeneralName::RegisteredID(oid) => (
            format!("registeredID:{oid}"),
            Kind::Unsupported(Form::RegisteredId),
        ),
        GeneralName::Invalid(..) => {
            let form = Form::of(san);
            let reason = "does not parse";
            let kind = match form {
                Form::Dns => Kind::Dns(Err(reason)),
                Form::Ip => Kind::Ip(Err(reason)),
                Form::Email => Kind::Email(Err(reason)),
                Form::Uri => Kind::Uri(Err(reason)),
                other => Kind::Unsupported(other),
            };
            return Named {
                label: format!("a subjectAltName entry of type {}", form.noun()),
                kind,
            };
        }
        other => {
            let form = Form::of(other);
            (form.noun().to_owned(), Kind::Unsupported(form))
        }
    };
    Named {
        label: format!("the name {label}"),
        kind,
    }
}

/// Whether `name` is inside `base`: all the names it stands for (`any` false), or at least
/// one of them (`any` true, for excluded subtrees).
fn dns_within(name: &DnsName, base: &DnsBase, any: bool) -> bool {
    match (name, base) {
        (_, DnsBase::Any) => true,
        (DnsName::Host(host), DnsBase::Tree(base)) => in_tree(host, base),
        (DnsName::Host(host), DnsBase::Below(base)) => strictly_below(host, base),
        // Every `x.parent` is under `base` (or is it) when `parent` is in the tree of base.
        (DnsName::Wildcard(parent), DnsBase::Tree(base) | DnsBase::Below(base))
            if in_tree(parent, base) =>
        {
            true
        }
        // And one of them is `base` itself when base is one label below parent.
        (DnsName::Wildcard(parent), DnsBase::Tree(base)) => {
            any && base.split_once('.').is_some_and(|(_, up)| up == parent)
        }
        (DnsName::Wildcard(_), DnsBase::Below(_)) => false,
    }
}

/// `name` is `base` or under it (both lower-case, valid).
fn in_tree(name: &str, base: &str) -> bool {
    name == base || strictly_below(name, base)
}

fn strictly_below(name: &str, base: &str) -> bool {
    name.strip_suffix(base)
        .is_some_and(|head| head.len() > 1 && head.ends_with('.'))
}

fn ip_within(ip: &IpAddr, range: &IpRange) -> bool {
    let (octets, len) = match ip {
        IpAddr::V4(v4) => (v4.to_ipv6_compatible().octets(), 4),
        IpAddr::V6(v6) => (v6.octets(), 16),
    };
    // An IPv4 address sits in the last four bytes of its IPv4-compatible form.
    let octets = &octets[16 - len..];
    len == range.len
        && octets
            .iter()
            .zip(range.addr.iter().zip(range.mask.iter()))
            .all(|(a, (b, m))| a & m == b & m)
}

fn email_within(mailbox: &Mailbox, base: &EmailBase) -> bool {
    match base {
        EmailBase::Any => true,
        EmailBase::Mailbox(m) => m.local == mailbox.local && m.host == mailbox.host,
        EmailBase::Host(host) => mailbox.host == *host,
        EmailBase::Below(domain) => strictly_below(&mailbox.host, domain),
    }
}

fn uri_within(host: &String, base: &UriBase) -> bool {
    match base {
        UriBase::Any => true,
        UriBase::Host(h) => host == h,
        UriBase::Below(domain) => strictly_below(host, domain),
    }
}

/// The RDNs of `base` begin `name`.
fn dn_within(name: &&X509Name<'_>, base: &&X509Name<'_>) -> bool {
    let mut rdns = name.iter_rdn();
    base.iter_rdn().all(|want| {
        rdns.next().is_some_and(|have| {
            let want: Vec<_> = want.iter().collect();
            let have: Vec<_> = have.iter().collect();
            want.len() == have.len()
                && want.iter().all(|w| {
                    have.iter().any(|h| {
                        w.attr_type() == h.attr_type()
                            && values_equal(w.attr_value(), h.attr_value())
                    })
                })
        })
    })
}

/// Equal bytes, or equal text after folding case and white space (RFC 5280 7.1, RFC 4518).
fn values_equal(a: &Any<'_>, b: &Any<'_>) -> bool {
    if a.header.class() == b.header.class() && a.header.tag() == b.header.tag() && a.data == b.data
    {
        return true;
    }
    match (attribute_text(a), attribute_text(b)) {
        (Some(a), Some(b)) => fold(&a) == fold(&b),
        _ => false,
    }
}

fn fold(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn parse_dns_base(s: &str) -> Option<DnsBase> {
    if s.is_empty() {
        return Some(DnsBase::Any);
    }
    let lower = s.to_ascii_lowercase();
    match lower.strip_prefix('.') {
        Some(domain) => host_ok(domain).then(|| DnsBase::Below(domain.to_owned())),
        None => host_ok(&lower).then_some(DnsBase::Tree(lower)),
    }
}

fn parse_dns_name(s: &str) -> Result<DnsName, &'static str> {
    let lower = s.to_ascii_lowercase();
    match lower.strip_prefix("*.") {
        Some(parent) if host_ok(parent) => Ok(DnsName::Wildcard(parent.to_owned())),
        None if host_ok(&lower) => Ok(DnsName::Host(lower)),
        _ => Err("is not a valid DNS name"),
    }
}

fn parse_ip_range(bytes: &[u8]) -> Option<IpRange> {
    let len = match bytes.len() {
        8 => 4,
        32 => 16,
        _ => return None,
    };
    let (addr_bytes, mask_bytes) = bytes.split_at(len);
    // Contiguous: the mask's bits are ones, then zeros.
    let bits = mask_bytes
        .iter()
        .fold(0u128, |acc, b| (acc << 8) | u128::from(*b))
        << (128 - 8 * len);
    if bits.leading_ones() + bits.trailing_zeros() < 128 && bits != 0 {
        return None;
    }
    let mut addr = [0u8; 16];
    let mut mask = [0u8; 16];
    addr[..len].copy_from_slice(addr_bytes);
    mask[..len].copy_from_slice(mask_bytes);
    Some(IpRange { addr, mask, len })
}

impl std::fmt::Display for IpRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let prefix: u32 = self.mask[..self.len].iter().map(|b| b.count_ones()).sum();
        match self.len {
            4 => {
                let a = Ipv4Addr::new(self.addr[0], self.addr[1], self.addr[2], self.addr[3]);
                write!(f, "{a}/{prefix}")
            }
            _ => write!(f, "{}/{prefix}", Ipv6Addr::from(self.addr)),
        }
    }
}

fn parse_email_base(s: &str) -> Option<EmailBase> {
    if s.is_empty() {
        return Some(EmailBase::Any);
    }
    if s.contains('@') {
        return parse_mailbox(s).ok().map(EmailBase::Mailbox);
    }
    let lower = s.to_ascii_lowercase();
    match lower.strip_prefix('.') {
        Some(domain) => host_ok(domain).then(|| EmailBase::Below(domain.to_owned())),
        None => host_ok(&lower).then_some(EmailBase::Host(lower)),
    }
}

/// `local@host` with exactly one `@` (a quoted local part holding one is not supported and
/// is refused when email addresses are constrained).
fn parse_mailbox(s: &str) -> Result<Mailbox, &'static str> {
    match s.split_once('@') {
        Some((local, host)) if !local.is_empty() && !host.contains('@') && host_ok(host) => {
            Ok(Mailbox {
                local: local.to_owned(),
                host: host.to_ascii_lowercase(),
            })
        }
        _ => Err("is not a valid email address"),
    }
}

fn parse_uri_base(s: &str) -> Option<UriBase> {
    if s.is_empty() {
        return Some(UriBase::Any);
    }
    let lower = s.to_ascii_lowercase();
    match lower.strip_prefix('.') {
        Some(domain) => host_ok(domain).then(|| UriBase::Below(domain.to_owned())),
        None => host_ok(&lower).then_some(UriBase::Host(lower)),
    }
}

/// The host name of a URI (RFC 3986 `scheme://[userinfo@]host[:port]...`), lower-cased.
fn uri_host(uri: &str) -> Result<String, &'static str> {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Err("is not a URI");
    };
    let scheme_ok = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !scheme_ok {
        return Err("is not a URI");
    }
    let Some(rest) = rest.strip_prefix("//") else {
        return Err("has no host");
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.starts_with('[') {
        return Err("has an IP address as its host");
    }
    let host = match host_port.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        Some(_) => return Err("has a malformed host"),
        None => host_port,
    };
    if host.is_empty() {
        return Err("has no host");
    }
    if host.parse::<Ipv4Addr>().is_ok() {
        return Err("has an IP address as its host");
    }
    if !host_ok(host) {
        return Err("has a host that is not a valid DNS name");
    }
    Ok(host.to_ascii_lowercase())
}

fn host_ok(host: &str) -> bool {
    host_name_problem(host, Strictness::Presented).is_none()
}

/// The minimum and maximum fields x509-parser skips: `Err` names the one present.
fn bounds_problem(value: &[u8]) -> Result<(), &'static str> {
    const MALFORMED: &str = "an encoding that does not parse";
    let (_, outer) = Any::from_der(value).map_err(|_| MALFORMED)?;
    let mut lists = outer.data;
    while !lists.is_empty() {
        let (rest, list) = Any::from_der(lists).map_err(|_| MALFORMED)?;
        lists = rest;
        let mut items = list.data;
        while !items.is_empty() {
            let (rest, subtree) = Any::from_der(items).map_err(|_| MALFORMED)?;
            items = rest;
            let (mut fields, _base) = Any::from_der(subtree.data).map_err(|_| MALFORMED)?;
            while !fields.is_empty() {
                let (rest, field) = Any::from_der(fields).map_err(|_| MALFORMED)?;
                fields = rest;
                match (field.header.class(), field.header.tag().0) {
                    // An encoded default is not DER, but it means what the RFC asks.
                    (Class::ContextSpecific, 0) if field.data.iter().all(|b| *b == 0) => {}
                    (Class::ContextSpecific, 0) => return Err("a minimum other than 0"),
                    (Class::ContextSpecific, 1) => return Err("a maximum"),
                    _ => return Err(MALFORMED),
                }
            }
        }
    }
    Ok(())
}

/// A constraint's base as sentences show it.
fn constraint_text(base: &GeneralName<'_>) -> String {
    match base {
        GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
            if s.is_empty() {
                "\"\" (all)".to_owned()
            } else {
                (*s).to_owned()
            }
        }
        GeneralName::DirectoryName(dn) => mtls_pki::dn::display(dn),
        other => Form::of(other).singular().to_owned(),
    }
}

/// At most five subtrees, then how many more.
fn listed<B>(subtrees: &[Subtree<B>]) -> String {
    const SHOWN: usize = 5;
    let shown: Vec<&str> = subtrees
        .iter()
        .take(SHOWN)
        .map(|s| s.text.as_str())
        .collect();
    match subtrees.len().checked_sub(SHOWN) {
        Some(more) if more > 0 => format!("{} and {more} more", shown.join(", ")),
        _ => shown.join(", "),
    }
}

/// A certificate in sentences: its subject, or its place in the path when it has none.
fn who(cert: &X509Certificate<'_>, position: usize) -> String {
    if cert.subject().iter_rdn().next().is_some() {
        mtls_pki::dn::display(cert.subject())
    } else if position == 0 {
        "the end-entity certificate (empty subject)".to_owned()
    } else {
        format!("the certificate at position {position} (empty subject)")
    }
}

fn is_self_issued(cert: &X509Certificate<'_>) -> bool {
    cert.subject().as_raw() == cert.issuer().as_raw()
}

fn is_ca(cert: &X509Certificate<'_>) -> bool {
    matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca)
}

fn violation(position: usize, constrained_by: usize, sentence: String) -> NameError {
    NameError::Violation(Violation {
        position,
        constrained_by,
        sentence,
    })
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use rcgen::{
        BasicConstraints, CertificateParams, CidrSubnet, CustomExtension, DistinguishedName,
        DnType, DnValue, GeneralSubtree as Sub, IsCa, KeyPair, NameConstraints as Nc,
        OtherNameValue, SanType,
    };
    use x509_parser::prelude::FromDer;

    use super::*;
    use crate::budget::Limits;

    /// A CA of a test chain: what signs, and its certificate.
    struct Ca {
        params: CertificateParams,
        key: KeyPair,
        der: Vec<u8>,
    }

    fn dn(cn: &str) -> DistinguishedName {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        dn
    }

    fn dns(s: &str) -> SanType {
        SanType::DnsName(s.try_into().expect("ia5"))
    }

    fn email(s: &str) -> SanType {
        SanType::Rfc822Name(s.try_into().expect("ia5"))
    }

    fn uri(s: &str) -> SanType {
        SanType::URI(s.try_into().expect("ia5"))
    }

    fn ip(s: &str) -> SanType {
        SanType::IpAddress(s.parse::<IpAddr>().expect("ip"))
    }

    fn permit(subtrees: Vec<Sub>) -> Option<Nc> {
        Some(Nc {
            permitted_subtrees: subtrees,
            excluded_subtrees: Vec::new(),
        })
    }

    fn exclude(subtrees: Vec<Sub>) -> Option<Nc> {
        Some(Nc {
            permitted_subtrees: Vec::new(),
            excluded_subtrees: subtrees,
        })
    }

    fn sub_dns(s: &str) -> Sub {
        Sub::DnsName(s.into())
    }

    fn sub_ip(cidr: &str) -> Sub {
        let (addr, prefix) = cidr.split_once('/').expect("cidr");
        Sub::IpAddress(CidrSubnet::from_addr_prefix(
            addr.parse().expect("addr"),
            prefix.parse().expect("prefix"),
        ))
    }

    fn ca_params(
        subject: DistinguishedName,
        sans: Vec<SanType>,
        nc: Option<Nc>,
    ) -> CertificateParams {
        let mut params = CertificateParams::default();
        params.distinguished_name = subject;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.subject_alt_names = sans;
        params.name_constraints = nc;
        params
    }

    /// A CA from `params`, signed by `issuer` (self-signed without one).
    fn sign_ca(params: CertificateParams, issuer: Option<&Ca>) -> Ca {
        let key = KeyPair::generate().expect("key");
        let der = sign(&params, &key, issuer);
        Ca { params, key, der }
    }

    fn sign(params: &CertificateParams, key: &KeyPair, issuer: Option<&Ca>) -> Vec<u8> {
        let cert = match issuer {
            Some(ca) => params
                .signed_by(key, &rcgen::Issuer::from_params(&ca.params, &ca.key))
                .expect("sign"),
            None => params.self_signed(key).expect("self-sign"),
        };
        cert.der().to_vec()
    }

    fn root_ca(cn: &str, nc: Option<Nc>) -> Ca {
        sign_ca(ca_params(dn(cn), Vec::new(), nc), None)
    }

    fn ca(cn: &str, nc: Option<Nc>, issuer: &Ca) -> Ca {
        sign_ca(ca_params(dn(cn), Vec::new(), nc), Some(issuer))
    }

    fn leaf_with(subject: DistinguishedName, sans: Vec<SanType>, issuer: &Ca) -> Vec<u8> {
        let mut params = CertificateParams::default();
        params.distinguished_name = subject;
        params.subject_alt_names = sans;
        sign(&params, &KeyPair::generate().expect("key"), Some(issuer))
    }

    fn leaf(sans: Vec<SanType>, issuer: &Ca) -> Vec<u8> {
        leaf_with(dn("leaf"), sans, issuer)
    }

    /// A leaf whose subjectAltName extension is these raw GeneralNames.
    fn leaf_raw_san(general_names: &[Vec<u8>], issuer: &Ca) -> Vec<u8> {
        let mut params = CertificateParams::default();
        params.distinguished_name = dn("leaf");
        params.custom_extensions = vec![CustomExtension::from_oid_content(
            &[2, 5, 29, 17],
            tlv(0x30, &general_names.concat()),
        )];
        sign(&params, &KeyPair::generate().expect("key"), Some(issuer))
    }

    /// A root whose nameConstraints extension is `value`.
    fn root_raw_nc(value: Vec<u8>, critical: bool) -> Ca {
        let mut params = ca_params(dn("Root"), Vec::new(), None);
        let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 30], value);
        ext.set_criticality(critical);
        params.custom_extensions = vec![ext];
        sign_ca(params, None)
    }

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(content);
        out
    }

    /// NameConstraints from raw GeneralSubtree contents (a base, maybe minimum/maximum).
    fn raw_nc(permitted: &[Vec<u8>], excluded: &[Vec<u8>]) -> Vec<u8> {
        let list = |tag: u8, subtrees: &[Vec<u8>]| {
            if subtrees.is_empty() {
                Vec::new()
            } else {
                let items: Vec<u8> = subtrees.iter().flat_map(|s| tlv(0x30, s)).collect();
                tlv(tag, &items)
            }
        };
        tlv(
            0x30,
            &[list(0xa0, permitted), list(0xa1, excluded)].concat(),
        )
    }

    /// An otherName of a private type holding NULL.
    fn other_name() -> Vec<u8> {
        let oid = tlv(
            0x06,
            &[
                0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xb3, 0x3a, 0x85, 0x1a, 0x03,
            ],
        );
        tlv(0xa0, &[oid, tlv(0xa0, &[0x05, 0x00])].concat())
    }

    fn verdict_with(chain: &[&[u8]], limits: Limits) -> Result<(), NameError> {
        let parsed: Vec<X509Certificate<'_>> = chain
            .iter()
            .map(|der| X509Certificate::from_der(der).expect("parse").1)
            .collect();
        let path: Vec<&X509Certificate<'_>> = parsed.iter().collect();
        check_path(&path, true, &mut Budget::new(limits))
    }

    fn verdict(chain: &[&[u8]]) -> Result<(), NameError> {
        verdict_with(chain, Limits::default())
    }

    fn refusal(chain: &[&[u8]]) -> Violation {
        match verdict(chain) {
            Err(NameError::Violation(v)) => v,
            other => panic!("expected a violation, got {other:?}"),
        }
    }

    #[test]
    fn dns_permitted_covers_the_name_and_below() {
        let root = root_ca("Constrained CA", permit(vec![sub_dns("example.com")]));
        for good in ["example.com", "foo.bar.example.com", "EXAMPLE.com"] {
            let leaf = leaf(vec![dns(good)], &root);
            assert_eq!(verdict(&[&leaf, &root.der]), Ok(()), "{good}");
        }
        for bad in ["not-example.com", "xexample.com", "example.com.evil"] {
            let leaf = leaf(vec![dns(bad)], &root);
            assert!(verdict(&[&leaf, &root.der]).is_err(), "{bad}");
        }
        let leaf = leaf(vec![dns("evil.com")], &root);
        let v = refusal(&[&leaf, &root.der]);
        assert_eq!(
            v.sentence,
            "the name DNS:evil.com of CN=leaf is outside the permitted DNS names [example.com] of CN=Constrained CA"
        );
        assert_eq!((v.position, v.constrained_by), (0, 1));
    }

    #[test]
    fn dns_leading_dot_is_only_below() {
        let root = root_ca("Root", permit(vec![sub_dns(".example.com")]));
        let below = leaf(vec![dns("www.example.com")], &root);
        assert_eq!(verdict(&[&below, &root.der]), Ok(()));
        let apex = leaf(vec![dns("example.com")], &root);
        assert!(verdict(&[&apex, &root.der]).is_err());
    }

    #[test]
    fn dns_excluded_any_name() {
        let root = root_ca("Root", None);
        let ica = ca(
            "ICA",
            exclude(vec![sub_dns("not-allowed.example.com")]),
            &root,
        );
        let leaf = leaf(
            vec![dns("example.com"), dns("x.Not-Allowed.example.com")],
            &ica,
        );
        let v = refusal(&[&leaf, &ica.der, &root.der]);
        assert_eq!(
            v.sentence,
            "the name DNS:x.Not-Allowed.example.com of CN=leaf is in the excluded subtree not-allowed.example.com of CN=ICA"
        );
        assert_eq!((v.position, v.constrained_by), (0, 1));
    }

    #[test]
    fn excluded_wins_over_permitted() {
        let root = root_ca(
            "Root",
            Some(Nc {
                permitted_subtrees: vec![sub_dns("example.com")],
                excluded_subtrees: vec![sub_dns("example.com")],
            }),
        );
        let leaf = leaf(vec![dns("example.com")], &root);
        assert!(verdict(&[&leaf, &root.der]).is_err());
    }

    #[test]
    fn dns_empty_constraint_is_everything() {
        let permits_all = root_ca("Root", permit(vec![sub_dns("")]));
        let leaf1 = leaf(vec![dns("anything.test")], &permits_all);
        assert_eq!(verdict(&[&leaf1, &permits_all.der]), Ok(()));
        let excludes_all = root_ca("Root", exclude(vec![sub_dns("")]));
        let leaf2 = leaf(vec![dns("anything.test")], &excludes_all);
        assert!(verdict(&[&leaf2, &excludes_all.der]).is_err());
        // But only DNS names: an IP address is not a DNS name.
        let leaf3 = leaf(vec![ip("10.0.0.1")], &excludes_all);
        assert_eq!(verdict(&[&leaf3, &excludes_all.der]), Ok(()));
    }

    #[test]
    fn dns_wildcard_sans() {
        // Inside: every x.example.com is under example.com.
        let root1 = root_ca("Root", permit(vec![sub_dns("example.com")]));
        let leaf1 = leaf(vec![dns("*.example.com")], &root1);
        assert_eq!(verdict(&[&leaf1, &root1.der]), Ok(()));
        // Not inside: *.example.com can stand for evil.example.com (limbo cve-2025-61727
        // nc-permits variant).
        let root2 = root_ca("Root", permit(vec![sub_dns("foo.example.com")]));
        let leaf2 = leaf(vec![dns("*.example.com")], &root2);
        assert!(verdict(&[&leaf2, &root2.der]).is_err());
        // Excluded when it can stand for an excluded name (CVE-2025-61727).
        let root3 = root_ca(
            "Root",
            Some(Nc {
                permitted_subtrees: vec![sub_dns("example.com")],
                excluded_subtrees: vec![sub_dns("bar.example.com")],
            }),
        );
        let leaf3 = leaf(vec![dns("*.example.com")], &root3);
        assert!(verdict(&[&leaf3, &root3.der]).is_err());
        // Not excluded when no name it stands for is: one label cannot reach a.b.
        let root4 = root_ca("Root", exclude(vec![sub_dns("a.b.example.com")]));
        let leaf4 = leaf(vec![dns("*.example.com")], &root4);
        assert_eq!(verdict(&[&leaf4, &root4.der]), Ok(()));
        let root5 = root_ca("Root", exclude(vec![sub_dns(".example.com")]));
        let leaf5 = leaf(vec![dns("*.example.com")], &root5);
        assert!(verdict(&[&leaf5, &root5.der]).is_err());
    }

    #[test]
    fn malformed_dns_constraint_or_name_is_refused() {
        let root1 = root_ca("Root", permit(vec![sub_dns("*.example.com")]));
        let leaf1 = leaf(vec![dns("foo.example.com")], &root1);
        let v = refusal(&[&leaf1, &root1.der]);
        assert!(
            v.sentence.contains("malformed nameConstraints subtree"),
            "{}",
            v.sentence
        );
        assert_eq!((v.position, v.constrained_by), (1, 1));

        let root2 = root_ca("Root", permit(vec![sub_dns("example.com")]));
        let leaf2 = leaf(vec![dns(".example.com"), dns("foo.example.com")], &root2);
        assert_eq!(
            refusal(&[&leaf2, &root2.der]).sentence,
            "the name DNS:.example.com of CN=leaf is not a valid DNS name, so it cannot be checked against the DNS name constraints of CN=Root"
        );
        // Without DNS constraints, a malformed DNS name is not this module's business.
        let root3 = root_ca("Root", permit(vec![sub_ip("10.0.0.0/8")]));
        let leaf3 = leaf(vec![dns(".example.com")], &root3);
        assert_eq!(verdict(&[&leaf3, &root3.der]), Ok(()));
    }

    #[test]
    fn other_forms_are_not_constrained() {
        let root1 = root_ca("Root", permit(vec![sub_ip("192.0.2.0/24")]));
        let leaf1 = leaf(vec![dns("example.com")], &root1);
        assert_eq!(verdict(&[&leaf1, &root1.der]), Ok(()));
        let root2 = root_ca("Root", exclude(vec![sub_ip("192.0.2.0/24")]));
        let leaf2 = leaf(vec![dns("example.com")], &root2);
        assert_eq!(verdict(&[&leaf2, &root2.der]), Ok(()));
    }

    #[test]
    fn ip_ranges() {
        let root1 = root_ca("Root", permit(vec![sub_ip("192.0.2.0/24")]));
        let inside = leaf(vec![ip("192.0.2.1")], &root1);
        assert_eq!(verdict(&[&inside, &root1.der]), Ok(()));
        let outside = leaf(vec![ip("192.0.3.1")], &root1);
        assert_eq!(
            refusal(&[&outside, &root1.der]).sentence,
            "the name IP:192.0.3.1 of CN=leaf is outside the permitted IP ranges [192.0.2.0/24] of CN=Root"
        );
        // An IPv4 range never holds an IPv6 address, not even the mapped one.
        let v6 = leaf(vec![ip("::ffff:192.0.2.1")], &root1);
        assert!(verdict(&[&v6, &root1.der]).is_err());

        let root2 = root_ca("Root", exclude(vec![sub_ip("10.0.0.0/8")]));
        let excluded = leaf(vec![ip("10.0.0.1")], &root2);
        assert_eq!(
            refusal(&[&excluded, &root2.der]).sentence,
            "the name IP:10.0.0.1 of CN=leaf is in the excluded subtree 10.0.0.0/8 of CN=Root"
        );
        // ...and an IPv6 address is not in an IPv4 excluded range.
        let other = leaf(vec![ip("::a00:1")], &root2);
        assert_eq!(verdict(&[&other, &root2.der]), Ok(()));

        let root3 = root_ca(
            "Root",
            Some(Nc {
                permitted_subtrees: vec![sub_ip("2001:db8::/32")],
                excluded_subtrees: vec![sub_ip("::1/128")],
            }),
        );
        let good = leaf(vec![ip("2001:db8::5")], &root3);
        assert_eq!(verdict(&[&good, &root3.der]), Ok(()));
        let loopback = leaf(vec![ip("::1")], &root3);
        assert!(verdict(&[&loopback, &root3.der]).is_err());
        let v4 = leaf(vec![ip("192.0.2.1")], &root3);
        assert!(verdict(&[&v4, &root3.der]).is_err());
    }

    #[test]
    fn malformed_ip_constraints_and_names() {
        let ip_base = |bytes: &[u8]| tlv(0x87, bytes);
        // 4 bytes: an address, not a range.
        let root1 = root_raw_nc(raw_nc(&[ip_base(&[127, 0, 0, 1])], &[]), true);
        let leaf1 = leaf(vec![ip("127.0.0.1")], &root1);
        let v = refusal(&[&leaf1, &root1.der]);
        assert!(v.sentence.contains("8 bytes for IPv4"), "{}", v.sentence);
        // A mask with a hole.
        let root2 = root_raw_nc(
            raw_nc(&[ip_base(&[10, 0, 0, 0, 255, 0, 255, 0])], &[]),
            true,
        );
        let leaf2 = leaf(vec![ip("10.0.0.1")], &root2);
        assert!(verdict(&[&leaf2, &root2.der]).is_err());
        // An 8-byte IP SAN is not an address.
        let root3 = root_ca("Root", permit(vec![sub_ip("192.0.2.0/24")]));
        let leaf3 = leaf_raw_san(
            &[
                tlv(0x87, &[192, 0, 2, 0, 255, 255, 255, 0]),
                tlv(0x87, &[192, 0, 2, 1]),
            ],
            &root3,
        );
        assert_eq!(
            refusal(&[&leaf3, &root3.der]).sentence,
            "the name IP:c0000200ffffff00 of CN=leaf is not a 4- or 16-byte IP address, so it cannot be checked against the IP address constraints of CN=Root"
        );
        // Host bits under the mask are ignored: 10.0.0.1/8 is 10.0.0.0/8.
        let root4 = root_raw_nc(raw_nc(&[ip_base(&[10, 0, 0, 1, 255, 0, 0, 0])], &[]), true);
        let leaf4 = leaf(vec![ip("10.9.9.9")], &root4);
        assert_eq!(verdict(&[&leaf4, &root4.der]), Ok(()));
        // 0.0.0.0/0 holds every IPv4 address.
        let root5 = root_ca("Root", permit(vec![sub_ip("0.0.0.0/0")]));
        let leaf5 = leaf(vec![ip("203.0.113.9")], &root5);
        assert_eq!(verdict(&[&leaf5, &root5.der]), Ok(()));
    }

    #[test]
    fn email_constraints() {
        let sub = |s: &str| Sub::Rfc822Name(s.into());
        let cases: &[(&str, &str, bool)] = &[
            ("foo@example.com", "foo@example.com", true),
            ("foo@example.com", "foo@EXAMPLE.com", true),
            ("foo@example.com", "Foo@example.com", false),
            ("example.com", "foo@example.com", true),
            ("example.com", "foo@sub.example.com", false),
            (".example.com", "foo@sub.example.com", true),
            (".example.com", "foo@example.com", false),
            ("*@example.com", "*@example.com", true),
            ("*@example.com", "user@example.com", false),
            ("**@example.com", "*@example.com", false),
            ("user*@example.com", "user*@example.com", true),
        ];
        for (constraint, name, ok) in cases {
            let root = root_ca("Root", permit(vec![sub(constraint)]));
            let leaf = leaf(vec![email(name)], &root);
            assert_eq!(
                verdict(&[&leaf, &root.der]).is_ok(),
                *ok,
                "{name} under {constraint}"
            );
        }
        // A malformed constraint or name is refused.
        let root1 = root_ca("Root", permit(vec![sub("invalid@invalid@example.com")]));
        let leaf1 = leaf(vec![email("example@example.com")], &root1);
        assert!(verdict(&[&leaf1, &root1.der]).is_err());
        let root2 = root_ca("Root", permit(vec![sub("example.com")]));
        let leaf2 = leaf(
            vec![
                email("good@example.com"),
                email("invalid@address@example.com"),
            ],
            &root2,
        );
        assert!(verdict(&[&leaf2, &root2.der]).is_err());
        // Subject emailAddress attributes are email names too.
        let mut subject = dn("alice");
        subject.push(
            DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
            DnValue::Ia5String("alice@evil.com".try_into().expect("ia5")),
        );
        let leaf3 = leaf_with(subject, vec![email("alice@example.com")], &root2);
        assert_eq!(
            refusal(&[&leaf3, &root2.der]).sentence,
            "the subject emailAddress alice@evil.com of CN=alice, Email=alice@evil.com is outside the permitted email addresses [example.com] of CN=Root"
        );
        // Excluded.
        let root3 = root_ca("Root", exclude(vec![sub(".example.com")]));
        let leaf4 = leaf(vec![email("a@b.example.com")], &root3);
        assert!(verdict(&[&leaf4, &root3.der]).is_err());
    }

    #[test]
    fn uri_constraints() {
        let uri_base = |s: &str| tlv(0x86, s.as_bytes());
        let cases: &[(&str, &str, bool)] = &[
            ("example.com", "https://example.com/path", true),
            ("example.com", "https://user@EXAMPLE.com:8443/x?q#f", true),
            ("example.com", "https://www.example.com/", false),
            (".example.com", "https://www.example.com/", true),
            (".example.com", "spiffe://a.b.example.com/workload", true),
            (".example.com", "https://example.com/", false),
            (
                "example.com",
                "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
                false,
            ),
            ("example.com", "https://192.0.2.1/", false),
            ("example.com", "https://[::1]/", false),
            ("example.com", "file:///etc/passwd", false),
        ];
        for (constraint, name, ok) in cases {
            let root = root_raw_nc(raw_nc(&[uri_base(constraint)], &[]), true);
            let leaf = leaf(vec![uri(name)], &root);
            assert_eq!(
                verdict(&[&leaf, &root.der]).is_ok(),
                *ok,
                "{name} under {constraint}"
            );
        }
        // A URI without a host is refused under excluded URI constraints too.
        let root = root_raw_nc(raw_nc(&[], &[uri_base("evil.com")]), true);
        let urn = leaf(vec![uri("urn:example:a")], &root);
        assert_eq!(
            refusal(&[&urn, &root.der]).sentence,
            "the name URI:urn:example:a of CN=leaf has no host, so it cannot be checked against the URI constraints of CN=Root"
        );
        let fine = leaf(vec![uri("https://good.com/")], &root);
        assert_eq!(verdict(&[&fine, &root.der]), Ok(()));
    }

    fn dn_of(pairs: &[(DnType, &str)]) -> DistinguishedName {
        let mut dn = DistinguishedName::new();
        for (ty, value) in pairs {
            dn.push(ty.clone(), *value);
        }
        dn
    }

    #[test]
    fn directory_names() {
        let acme = dn_of(&[
            (DnType::CountryName, "US"),
            (DnType::OrganizationName, "Acme"),
        ]);
        let root = root_ca("Root", permit(vec![Sub::DirectoryName(acme)]));
        let inside = leaf_with(
            dn_of(&[
                (DnType::CountryName, "US"),
                (DnType::OrganizationName, "  ACME "),
                (DnType::CommonName, "leaf"),
            ]),
            Vec::new(),
            &root,
        );
        assert_eq!(verdict(&[&inside, &root.der]), Ok(()));
        let outside = leaf_with(
            dn_of(&[
                (DnType::CountryName, "US"),
                (DnType::OrganizationName, "Evil"),
                (DnType::CommonName, "leaf"),
            ]),
            Vec::new(),
            &root,
        );
        assert_eq!(
            refusal(&[&outside, &root.der]).sentence,
            "the subject of C=US, O=Evil, CN=leaf is outside the permitted directory names [C=US, O=Acme] of CN=Root"
        );
        // Order matters: the constraint must begin the name.
        let reordered = leaf_with(
            dn_of(&[
                (DnType::OrganizationName, "Acme"),
                (DnType::CountryName, "US"),
            ]),
            Vec::new(),
            &root,
        );
        assert!(verdict(&[&reordered, &root.der]).is_err());
    }

    #[test]
    fn directory_names_san_and_subject_both_count() {
        let foo = || Sub::DirectoryName(dn("foo"));
        let dirname = |cn: &str| {
            let name = tlv(
                0x30,
                &tlv(
                    0x31,
                    &tlv(
                        0x30,
                        &[tlv(0x06, &[0x55, 0x04, 0x03]), tlv(0x0c, cn.as_bytes())].concat(),
                    ),
                ),
            );
            tlv(0xa4, &name)
        };
        // Permitted CN=foo: SAN DirName CN=foo but subject CN=not-foo.
        let root1 = root_ca("Root", permit(vec![foo()]));
        let mut params = CertificateParams::default();
        params.distinguished_name = dn("not-foo");
        params.custom_extensions = vec![CustomExtension::from_oid_content(
            &[2, 5, 29, 17],
            tlv(0x30, &dirname("foo")),
        )];
        let leaf1 = sign(&params, &KeyPair::generate().expect("key"), Some(&root1));
        assert!(verdict(&[&leaf1, &root1.der]).is_err());
        // Excluded CN=foo: subject CN=foo, SAN DirName CN=not-foo.
        let root2 = root_ca("Root", exclude(vec![foo()]));
        let mut params = CertificateParams::default();
        params.distinguished_name = dn("foo");
        params.custom_extensions = vec![CustomExtension::from_oid_content(
            &[2, 5, 29, 17],
            tlv(0x30, &dirname("not-foo")),
        )];
        let leaf2 = sign(&params, &KeyPair::generate().expect("key"), Some(&root2));
        assert!(verdict(&[&leaf2, &root2.der]).is_err());
        // Both match: fine.
        let mut params = CertificateParams::default();
        params.distinguished_name = dn("foo");
        params.custom_extensions = vec![CustomExtension::from_oid_content(
            &[2, 5, 29, 17],
            tlv(0x30, &dirname("FOO")),
        )];
        let leaf3 = sign(&params, &KeyPair::generate().expect("key"), Some(&root1));
        assert_eq!(verdict(&[&leaf3, &root1.der]), Ok(()));
    }

    #[test]
    fn self_issued_intermediates_are_exempt_but_not_the_leaf() {
        // Root and intermediate are both CN=not-example.com: the intermediate is
        // self-issued, its SAN is not checked.
        let root = sign_ca(
            ca_params(
                dn("not-example.com"),
                vec![dns("not-example.com")],
                permit(vec![sub_dns("example.com")]),
            ),
            None,
        );
        let ica = sign_ca(
            ca_params(dn("not-example.com"), vec![dns("not-example.com")], None),
            Some(&root),
        );
        let good = leaf(vec![dns("example.com")], &ica);
        assert_eq!(verdict(&[&good, &ica.der, &root.der]), Ok(()));
        let bad = leaf(vec![dns("www.not-example.com")], &ica);
        assert!(verdict(&[&bad, &ica.der, &root.der]).is_err());

        // A self-issued end entity is checked.
        let root2 = root_ca("Root", permit(vec![sub_dns("example.com")]));
        let ica2 = sign_ca(
            ca_params(dn("not-example.com"), vec![dns("ca.example.com")], None),
            Some(&root2),
        );
        let self_issued_leaf =
            leaf_with(dn("not-example.com"), vec![dns("not-example.com")], &ica2);
        let v = refusal(&[&self_issued_leaf, &ica2.der, &root2.der]);
        assert_eq!((v.position, v.constrained_by), (0, 2));
    }

    #[test]
    fn constraints_apply_to_intermediates_and_narrow() {
        // The anchor's constraints reach an intermediate two below it.
        let root = root_ca(
            "Root",
            Some(Nc {
                permitted_subtrees: vec![sub_dns("permitted.example.com")],
                excluded_subtrees: vec![sub_dns("forbidden.example.com")],
            }),
        );
        let ica1 = ca("ICA1", None, &root);
        let ica2 = sign_ca(
            ca_params(dn("ICA2"), vec![dns("forbidden.example.com")], None),
            Some(&ica1),
        );
        let leaf1 = leaf(vec![dns("permitted.example.com")], &ica2);
        let v = refusal(&[&leaf1, &ica2.der, &ica1.der, &root.der]);
        assert_eq!((v.position, v.constrained_by), (1, 3));

        // Permitted subtrees of two CAs both hold: a lower CA cannot widen.
        let root2 = root_ca("Root", None);
        let wide = ca("Wide", permit(vec![sub_dns("bar.example.com")]), &root2);
        let widening = ca(
            "Widening",
            permit(vec![sub_dns("foo.example.com"), sub_dns("bar.example.com")]),
            &wide,
        );
        let leaf2 = leaf(vec![dns("foo.example.com")], &widening);
        let v = refusal(&[&leaf2, &widening.der, &wide.der, &root2.der]);
        assert_eq!((v.position, v.constrained_by), (0, 2));
    }

    #[test]
    fn unsupported_forms() {
        let other = other_name();
        let nc = raw_nc(&[tlv(0x82, b"example.com")], std::slice::from_ref(&other));
        let root = root_raw_nc(nc, true);
        let with_other = leaf_raw_san(&[tlv(0x82, b"example.com"), other], &root);
        let v = refusal(&[&with_other, &root.der]);
        assert!(
            v.sentence.starts_with(
                "the name otherName:1.3.6.1.4.1.55738.666.3 of CN=leaf is an otherName, and CN=Root constrains otherNames"
            ),
            "{}",
            v.sentence
        );
        let without = leaf(vec![dns("example.com")], &root);
        assert_eq!(verdict(&[&without, &root.der]), Ok(()));
        // An otherName SAN under a CA that does not constrain otherNames is fine.
        let root2 = root_ca("Root", permit(vec![sub_dns("example.com")]));
        let mut params = CertificateParams::default();
        params.distinguished_name = dn("leaf");
        params.subject_alt_names = vec![
            dns("example.com"),
            SanType::OtherName((
                vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 3],
                OtherNameValue::Utf8String("upn@example.com".into()),
            )),
        ];
        let upn = sign(&params, &KeyPair::generate().expect("key"), Some(&root2));
        assert_eq!(verdict(&[&upn, &root2.der]), Ok(()));
    }

    #[test]
    fn malformed_extensions_are_refused() {
        // Neither permitted nor excluded (an empty SEQUENCE).
        let root1 = root_raw_nc(tlv(0x30, &[]), true);
        let leaf1 = leaf(vec![dns("example.com")], &root1);
        let v = refusal(&[&leaf1, &root1.der]);
        assert!(
            v.sentence.contains("neither permitted nor excluded"),
            "{}",
            v.sentence
        );
        // Empty lists do not parse.
        let root2 = root_raw_nc(tlv(0x30, &[tlv(0xa0, &[]), tlv(0xa1, &[])].concat()), true);
        let leaf2 = leaf(vec![dns("example.com")], &root2);
        assert!(verdict(&[&leaf2, &root2.der]).is_err());
        // A minimum or a maximum.
        let base = tlv(0x82, b"example.com");
        for bounds in [tlv(0x80, &[1]), tlv(0x81, &[3])] {
            let root3 = root_raw_nc(raw_nc(&[[base.clone(), bounds].concat()], &[]), true);
            let leaf3 = leaf(vec![dns("example.com")], &root3);
            let v = refusal(&[&leaf3, &root3.der]);
            assert!(v.sentence.contains("not supported"), "{}", v.sentence);
        }
        // An explicit minimum of 0 is what the RFC means, if not DER.
        let root4 = root_raw_nc(raw_nc(&[[base, tlv(0x80, &[0])].concat()], &[]), true);
        let leaf4 = leaf(vec![dns("example.com")], &root4);
        assert_eq!(verdict(&[&leaf4, &root4.der]), Ok(()));
    }

    #[test]
    fn non_critical_constraints_are_enforced() {
        let nc = raw_nc(&[tlv(0x82, b"example.com")], &[]);
        let root = root_raw_nc(nc, false);
        let good = leaf(vec![dns("example.com")], &root);
        assert_eq!(verdict(&[&good, &root.der]), Ok(()));
        let bad = leaf(vec![dns("evil.com")], &root);
        assert!(verdict(&[&bad, &root.der]).is_err());
    }

    #[test]
    fn name_constraints_on_an_end_entity_are_refused() {
        let root = root_ca("Root", None);
        let mut params = CertificateParams::default();
        params.distinguished_name = dn("leaf");
        params.subject_alt_names = vec![dns("example.com")];
        params.name_constraints = permit(vec![sub_dns("example.com")]);
        let leaf = sign(&params, &KeyPair::generate().expect("key"), Some(&root));
        let v = refusal(&[&leaf, &root.der]);
        assert!(
            v.sentence
                .starts_with("CN=leaf has a nameConstraints extension but is not a CA")
        );
    }

    #[test]
    fn end_entity_cn_is_a_dns_name_without_dns_or_ip_sans() {
        let root = root_ca("Root", permit(vec![sub_dns("example.com")]));
        let no_san = leaf_with(dn("evil.com"), Vec::new(), &root);
        assert_eq!(
            refusal(&[&no_san, &root.der]).sentence,
            "the subject CN evil.com of CN=evil.com is outside the permitted DNS names [example.com] of CN=Root"
        );
        let email_only = leaf_with(dn("evil.com"), vec![email("a@evil.com")], &root);
        assert!(verdict(&[&email_only, &root.der]).is_err());
        let inside = leaf_with(dn("www.example.com"), Vec::new(), &root);
        assert_eq!(verdict(&[&inside, &root.der]), Ok(()));
        let wildcard = leaf_with(dn("*.evil.com"), Vec::new(), &root);
        assert!(verdict(&[&wildcard, &root.der]).is_err());
        // With a DNS SAN the CN is not a name (the SAN is).
        let with_dns = leaf_with(dn("evil.com"), vec![dns("www.example.com")], &root);
        assert_eq!(verdict(&[&with_dns, &root.der]), Ok(()));
        // A CN that is no host name is not a DNS name.
        for cn in ["Alice Smith", "10.0.0.1"] {
            let person = leaf_with(dn(cn), Vec::new(), &root);
            assert_eq!(verdict(&[&person, &root.der]), Ok(()), "{cn}");
        }
        // Without a SAN extension, a single label is a host name the fallback can match...
        let single = leaf_with(dn("backend"), Vec::new(), &root);
        assert!(verdict(&[&single, &root.der]).is_err());
        // ...but only when the fallback is on: a client certificate CN=alice is a person.
        let parsed: Vec<X509Certificate<'_>> = [&single[..], &root.der[..]]
            .iter()
            .map(|der| X509Certificate::from_der(der).expect("parse").1)
            .collect();
        let path: Vec<&X509Certificate<'_>> = parsed.iter().collect();
        assert_eq!(
            check_path(&path, false, &mut Budget::new(Limits::default())),
            Ok(())
        );
        // With a SAN extension, the CN is never matched, and a single label is left alone.
        let person = leaf_with(dn("alice"), vec![email("alice@example.com")], &root);
        assert_eq!(verdict(&[&person, &root.der]), Ok(()));
        // Only the end entity's CN: an intermediate's CN is a CA's name.
        let ica = ca("ca.evil.com", None, &root);
        let leaf = leaf(vec![dns("example.com")], &ica);
        assert_eq!(verdict(&[&leaf, &ica.der, &root.der]), Ok(()));
    }

    #[test]
    fn budget_runs_out_with_many_names_and_subtrees() {
        let subtrees: Vec<Sub> = (0..1000).map(|i| sub_dns(&format!("t{i}.test"))).collect();
        let root = root_ca("Root", permit(subtrees));
        let sans: Vec<SanType> = (0..300).map(|i| dns(&format!("x{i}.t999.test"))).collect();
        let leaf = leaf(sans, &root);
        assert_eq!(
            verdict(&[&leaf, &root.der]),
            Err(NameError::Exhausted(Exhausted::NameComparisons))
        );
        // The same path within a larger budget holds.
        let roomy = Limits {
            name_comparisons: 400_000,
            ..Limits::default()
        };
        assert_eq!(verdict_with(&[&leaf, &root.der], roomy), Ok(()));
    }

    #[test]
    fn budget_counts_names_times_subtrees_of_their_form() {
        let root = root_ca(
            "Root",
            Some(Nc {
                permitted_subtrees: (0..10).map(|i| sub_dns(&format!("d{i}.test"))).collect(),
                excluded_subtrees: vec![sub_ip("10.0.0.0/8")],
            }),
        );
        let sans: Vec<SanType> = (0..10).map(|i| dns(&format!("d{i}.test"))).collect();
        let leaf = leaf(sans, &root);
        let limits = |n| Limits {
            name_comparisons: n,
            ..Limits::default()
        };
        assert_eq!(verdict_with(&[&leaf, &root.der], limits(100)), Ok(()));
        assert_eq!(
            verdict_with(&[&leaf, &root.der], limits(99)),
            Err(NameError::Exhausted(Exhausted::NameComparisons))
        );
    }

    #[test]
    fn unconstrained_paths_cost_nothing() {
        let root = root_ca("Root", None);
        let ica = ca("ICA", None, &root);
        let leaf = leaf(vec![dns("anything.test")], &ica);
        let none = Limits {
            name_comparisons: 0,
            ..Limits::default()
        };
        assert_eq!(verdict_with(&[&leaf, &ica.der, &root.der], none), Ok(()));
    }
}
