//! Bounds on the work of one verification.
//!
//! A client chooses the intermediates it sends, so a client can choose the worst case:
//! dozens of certificates with the same name (path building tries every order), or a
//! name-constrained CA above a leaf with thousands of names (every name against every
//! subtree). Every signature check and every constraint comparison is counted, and a
//! verification that runs out fails with [`Check::TooComplex`](crate::Check::TooComplex).
//! The limits are far above any real chain (a real chain needs one signature per
//! certificate and a few comparisons per name) and far below what would show in a
//! handshake's cost.

/// The limits of one verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Signature verifications (certificates and CRLs).
    pub signatures: u32,
    /// Name-constraint comparisons (one name against one subtree).
    pub name_comparisons: u32,
    /// Candidate issuers looked at while building paths.
    pub candidates: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        // webpki allows 100 signatures and 250,000 comparisons; ours match.
        Limits {
            signatures: 100,
            name_comparisons: 250_000,
            candidates: 1_000,
        }
    }
}

/// What is left of the [`Limits`] during one verification.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    left: Limits,
}

/// Which limit ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exhausted {
    Signatures,
    NameComparisons,
    Candidates,
}

impl Exhausted {
    pub(crate) fn sentence(self, limits: &Limits) -> String {
        match self {
            Exhausted::Signatures => format!(
                "gave up after {} signature checks: the certificates sent cannot be built into a chain within the limit (a pathological bundle of intermediates)",
                limits.signatures
            ),
            Exhausted::NameComparisons => format!(
                "gave up after {} name-constraint comparisons: too many names against too many constraints",
                limits.name_comparisons
            ),
            Exhausted::Candidates => format!(
                "gave up after looking at {} candidate issuers: too many certificates with the same name",
                limits.candidates
            ),
        }
    }
}

impl Budget {
    pub(crate) fn new(limits: Limits) -> Budget {
        Budget { left: limits }
    }

    /// Spend one signature check.
    pub(crate) fn signature(&mut self) -> Result<(), Exhausted> {
        take(&mut self.left.signatures, 1, Exhausted::Signatures)
    }

    /// Spend `n` name comparisons.
    pub(crate) fn name_comparisons(&mut self, n: u32) -> Result<(), Exhausted> {
        take(
            &mut self.left.name_comparisons,
            n,
            Exhausted::NameComparisons,
        )
    }

    /// Spend one candidate issuer.
    pub(crate) fn candidate(&mut self) -> Result<(), Exhausted> {
        take(&mut self.left.candidates, 1, Exhausted::Candidates)
    }
}

fn take(left: &mut u32, n: u32, which: Exhausted) -> Result<(), Exhausted> {
    *left = left.checked_sub(n).ok_or(which)?;
    Ok(())
}
