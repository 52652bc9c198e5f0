//! Name constraints (RFC 5280 section 4.2.1.10 and 6.1.3 (b), (c), 6.1.4 (g)).
//!
//! STUB: being written (helper). The signatures below are the contract with `path`.

use x509_parser::prelude::X509Certificate;

use crate::budget::{Budget, Exhausted};

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

/// Check the name constraints of a whole path: `path[0]` is the end entity, the last is
/// the trust anchor. The constraints of the CA at position `j` apply to every certificate
/// below it (positions `< j`), except self-issued intermediates; the end entity is always
/// checked.
pub(crate) fn check_path(
    path: &[&X509Certificate<'_>],
    budget: &mut Budget,
) -> Result<(), NameError> {
    let _ = (path, budget);
    Ok(())
}
