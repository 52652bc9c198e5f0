//! A private key together with the certificate chain it belongs to, checked once.
//!
//! Every bundle format (PKCS#12, JKS) holds a key and its chain, and every one of them is
//! useless when the two do not match: Java fails at the first handshake, far from the
//! export. The key is held to the leaf's public key here, when the pair is made, so the
//! writers take a `Credentials` and need not check again. The chain is put in issuing order
//! too (leaf, its issuer, that one's issuer...), because keytool and TLS stacks read it that
//! way while users hand over certificates in whatever order their files have them.

use rcgen::KeyPair;
use rustls_pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::{Error, Result};
use crate::key;

/// A private key and its certificate chain, leaf first, in issuing order.
#[derive(Debug)]
pub struct Credentials {
    key: KeyPair,
    chain: Vec<CertificateDer<'static>>,
}

impl Credentials {
    /// Pair `key_data` (PEM or DER: PKCS#8, SEC1 or PKCS#1) with `certs`, whose first
    /// certificate is the leaf; the others (intermediates, a root, in any order, duplicates
    /// allowed) must make up its chain. `key_what` and `certs_what` name the inputs in errors.
    pub fn new(
        key_data: &[u8],
        key_what: &str,
        certs: Vec<CertificateDer<'static>>,
        certs_what: &str,
    ) -> Result<Credentials> {
        let key = key::load(key_data, key_what)?;
        let mut certs = certs.into_iter();
        let leaf = certs.next().ok_or_else(|| {
            Error::InvalidInput(format!(
                "{certs_what} holds no certificate to go with the key"
            ))
        })?;
        let (_, parsed) = X509Certificate::from_der(&leaf)
            .map_err(|e| Error::malformed(certs_what, format!("the certificate: {e}")))?;
        if parsed.public_key().raw != key::public_key_info(&key).as_slice() {
            return Err(Error::KeyMismatch {
                cert: certs_what.into(),
                key: key_what.into(),
            });
        }
        let chain = order(leaf, certs.collect(), certs_what)?;
        Ok(Credentials { key, chain })
    }

    /// The private key.
    pub fn key(&self) -> &KeyPair {
        &self.key
    }

    /// The private key as PKCS#8 DER.
    pub fn pkcs8(&self) -> Vec<u8> {
        self.key.serialize_der()
    }

    /// The chain, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The leaf certificate.
    pub fn leaf(&self) -> &CertificateDer<'static> {
        // `new` refuses an empty chain, and nothing removes from it afterwards.
        &self.chain[0]
    }
}

/// `leaf` followed by its issuers from `others`, nearest first. Duplicates are dropped; a
/// certificate that is not on the leaf's path up is refused, naming it, rather than
/// carried along where Java would take it for part of the chain.
pub fn order(
    leaf: CertificateDer<'static>,
    others: Vec<CertificateDer<'static>>,
    what: &str,
) -> Result<Vec<CertificateDer<'static>>> {
    let names = |der: &CertificateDer<'_>, i: usize| -> Result<(Vec<u8>, Vec<u8>, String)> {
        let (_, c) = X509Certificate::from_der(der)
            .map_err(|e| Error::malformed(what, format!("certificate #{}: {e}", i + 1)))?;
        Ok((
            c.subject().as_raw().to_vec(),
            c.issuer().as_raw().to_vec(),
            crate::dn::display(c.subject()),
        ))
    };
    let mut pool = Vec::new();
    for (i, der) in others.into_iter().enumerate() {
        if der != leaf && !pool.iter().any(|(d, _)| *d == der) {
            let n = names(&der, i + 1)?;
            pool.push((der, n));
        }
    }
    let (_, mut issuer, _) = names(&leaf, 0)?;
    let mut last_subject = names(&leaf, 0)?.0;
    let mut chain = vec![leaf];
    // Each step moves one certificate from the pool, so this ends.
    while issuer != last_subject {
        let Some(at) = pool
            .iter()
            .position(|(_, (subject, _, _))| *subject == issuer)
        else {
            break;
        };
        let (der, (subject, next_issuer, _)) = pool.remove(at);
        chain.push(der);
        last_subject = subject;
        issuer = next_issuer;
    }
    if let Some((_, (_, _, stray))) = pool.first() {
        let leaf = names(&chain[0], 0)?.2;
        return Err(Error::InvalidInput(format!(
            "{what}: {stray} is not in the chain of {leaf} (it issued none of its \
             certificates); leave it out"
        )));
    }
    Ok(chain)
}

/// `certs` leaf first when they make up one chain (each issued by the next, in any order
/// given); `None` when they do not (a bundle of unrelated CA certificates, say).
pub fn as_one_chain(certs: &[CertificateDer<'static>]) -> Option<Vec<CertificateDer<'static>>> {
    let parsed: Vec<X509Certificate<'_>> = certs
        .iter()
        .map(|c| X509Certificate::from_der(c).ok().map(|(_, c)| c))
        .collect::<Option<_>>()?;
    // The leaf issued nothing in the set (a self-signed certificate issues itself).
    let leaves: Vec<usize> = (0..parsed.len())
        .filter(|&i| {
            !parsed
                .iter()
                .enumerate()
                .any(|(j, other)| j != i && other.issuer().as_raw() == parsed[i].subject().as_raw())
        })
        .collect();
    let [leaf] = leaves[..] else {
        return None;
    };
    let others = certs
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != leaf)
        .map(|(_, c)| c.clone())
        .collect();
    order(certs[leaf].clone(), others, "").ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Fixture;
    use crate::{KeyType, Profile};

    #[test]
    fn a_key_is_held_to_its_leaf_and_the_chain_is_put_in_order() {
        let mut f = Fixture::new("Order CA", true);
        f.issue("alice", Profile::Client, &[]);
        let (chain, key) = f.ca.credentials("alice").unwrap();
        let root = f.ca.root().clone();
        // Root before the intermediate, and the intermediate twice: put right.
        let given = vec![
            chain[0].clone(),
            root.clone(),
            chain[1].clone(),
            chain[1].clone(),
        ];
        let c = Credentials::new(&key, "alice.key", given, "alice.pem").unwrap();
        assert_eq!(
            c.chain(),
            [chain[0].clone(), chain[1].clone(), root.clone()]
        );
        assert_eq!(c.leaf(), &chain[0]);

        let other = KeyType::P256.generate().unwrap().serialize_pem();
        let err =
            Credentials::new(other.as_bytes(), "bob.key", chain.clone(), "alice.pem").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the key bob.key does not match the certificate alice.pem"
        );

        // A certificate from elsewhere is named, not carried along.
        let mut g = Fixture::new("Elsewhere CA", false);
        let stranger = g.issue("carol", Profile::Client, &[]).remove(0);
        let err = Credentials::new(&key, "k", vec![chain[0].clone(), stranger], "mixed.pem")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CN=carol") && err.contains("mixed.pem"),
            "{err}"
        );
    }

    #[test]
    fn one_chain_or_none() {
        let mut f = Fixture::new("Bundle CA", true);
        let chain = f.issue("api", Profile::Server, &["api.local"]);
        let root = f.ca.root().clone();
        let shuffled = vec![root.clone(), chain[0].clone(), chain[1].clone()];
        assert_eq!(
            as_one_chain(&shuffled).unwrap(),
            [chain[0].clone(), chain[1].clone(), root.clone()]
        );
        let g = Fixture::new("Other CA", false);
        assert!(as_one_chain(&[root, g.ca.root().clone()]).is_none());
    }
}
