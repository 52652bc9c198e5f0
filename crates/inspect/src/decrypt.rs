//! Record decryption from key-log secrets: the TLS 1.3 key schedule's last step and the
//! TLS 1.2 PRF key block, with AES-GCM and ChaCha20-Poly1305 (aws-lc-rs only).
//!
//! Only AEAD suites are supported: they are all TLS 1.3 has, and the ECDHE AEAD suites are
//! what a TLS 1.2 mTLS deployment should negotiate. CBC suites show as encrypted.

use aws_lc_rs::{aead, hkdf, hmac};

/// The AEAD suites we can decrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Suite {
    aead: &'static aead::Algorithm,
    hash: Hash,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha256,
    Sha384,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tls13,
    /// TLS 1.2 AES-GCM: 4-byte implicit salt, 8-byte explicit nonce in each record.
    Tls12Gcm,
    /// TLS 1.2 ChaCha20-Poly1305 (RFC 7905): 12-byte IV XOR sequence number.
    Tls12Chacha,
}

/// Why a record did not decrypt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecryptError {
    /// Shorter than the explicit nonce plus tag.
    TooShort,
    /// The tag did not verify: wrong secret, or records missing or out of order.
    Authentication,
    /// TLS 1.3 inner plaintext was all padding (RFC 8446 section 5.4 calls this an error).
    NoContentType,
}

/// A read key for one direction and one epoch (the caller counts sequence numbers, so a
/// key found late in the key log can still decrypt the records that follow).
pub(crate) struct RecordKey {
    key: aead::LessSafeKey,
    iv: [u8; 12],
    kind: Kind,
}

impl std::fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordKey")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Suite {
    /// TLS 1.3 suites.
    pub(crate) fn tls13(id: u16) -> Option<Suite> {
        let (aead, hash) = match id {
            0x1301 => (&aead::AES_128_GCM, Hash::Sha256),
            0x1302 => (&aead::AES_256_GCM, Hash::Sha384),
            0x1303 => (&aead::CHACHA20_POLY1305, Hash::Sha256),
            _ => return None,
        };
        Some(Suite {
            aead,
            hash,
            kind: Kind::Tls13,
        })
    }

    /// TLS 1.2 AEAD suites (ECDHE, DHE and RSA key exchange alike: the key block does not
    /// depend on it).
    pub(crate) fn tls12(id: u16) -> Option<Suite> {
        let (aead, hash, kind) = match id {
            // *_AES_128_GCM_SHA256: RSA, DHE_RSA, ECDHE_ECDSA, ECDHE_RSA
            0x009c | 0x009e | 0xc02b | 0xc02f => (&aead::AES_128_GCM, Hash::Sha256, Kind::Tls12Gcm),
            // *_AES_256_GCM_SHA384
            0x009d | 0x009f | 0xc02c | 0xc030 => (&aead::AES_256_GCM, Hash::Sha384, Kind::Tls12Gcm),
            // *_CHACHA20_POLY1305_SHA256: ECDHE_RSA, ECDHE_ECDSA, DHE_RSA
            0xcca8..=0xccaa => (&aead::CHACHA20_POLY1305, Hash::Sha256, Kind::Tls12Chacha),
            _ => return None,
        };
        Some(Suite { aead, hash, kind })
    }

    /// A TLS 1.3 read key from a traffic secret (RFC 8446 section 7.3).
    pub(crate) fn tls13_key(&self, secret: &[u8]) -> Option<RecordKey> {
        let key = hkdf_expand_label(self.hash, secret, b"key", self.aead.key_len())?;
        let iv = hkdf_expand_label(self.hash, secret, b"iv", 12)?;
        RecordKey::new(self, &key, &iv)
    }

    /// The next TLS 1.3 traffic secret after a KeyUpdate (RFC 8446 section 7.2).
    pub(crate) fn next_traffic_secret(&self, secret: &[u8]) -> Option<Vec<u8>> {
        hkdf_expand_label(self.hash, secret, b"traffic upd", self.hash.len())
    }

    /// The TLS 1.2 client and server read keys from the master secret (RFC 5246 6.3).
    pub(crate) fn tls12_keys(
        &self,
        master_secret: &[u8],
        client_random: &[u8; 32],
        server_random: &[u8; 32],
    ) -> Option<(RecordKey, RecordKey)> {
        let key_len = self.aead.key_len();
        let iv_len = match self.kind {
            Kind::Tls12Gcm => 4,
            _ => 12,
        };
        let mut seed = Vec::with_capacity(64);
        seed.extend_from_slice(server_random);
        seed.extend_from_slice(client_random);
        // AEAD suites have no MAC keys: client key, server key, client IV, server IV.
        let block = prf(
            self.hash,
            master_secret,
            b"key expansion",
            &seed,
            2 * (key_len + iv_len),
        );
        let (client_key, rest) = block.split_at_checked(key_len)?;
        let (server_key, rest) = rest.split_at_checked(key_len)?;
        let (client_iv, server_iv) = rest.split_at_checked(iv_len)?;
        Some((
            RecordKey::new(self, client_key, client_iv)?,
            RecordKey::new(self, server_key, server_iv)?,
        ))
    }
}

impl RecordKey {
    fn new(suite: &Suite, key: &[u8], iv: &[u8]) -> Option<RecordKey> {
        let key = aead::LessSafeKey::new(aead::UnboundKey::new(suite.aead, key).ok()?);
        // TLS 1.2 GCM keeps only the 4-byte salt; the rest comes from each record.
        let mut padded = [0u8; 12];
        padded.get_mut(..iv.len())?.copy_from_slice(iv);
        Some(RecordKey {
            key,
            iv: padded,
            kind: suite.kind,
        })
    }

    /// Decrypts record number `seq` of this epoch. Returns the real content type (the outer
    /// one for TLS 1.2) and the plaintext.
    pub(crate) fn decrypt(
        &self,
        seq: u64,
        header: [u8; 5],
        fragment: &[u8],
    ) -> Result<(u8, Vec<u8>), DecryptError> {
        let tag_len = aead::MAX_TAG_LEN;
        let mut nonce = self.iv;
        let (mut buffer, aad) = match self.kind {
            Kind::Tls13 => {
                xor_seq(&mut nonce, seq);
                (fragment.to_vec(), header.to_vec())
            }
            Kind::Tls12Gcm | Kind::Tls12Chacha => {
                let ciphertext = if self.kind == Kind::Tls12Gcm {
                    let (explicit, rest) = fragment
                        .split_first_chunk::<8>()
                        .ok_or(DecryptError::TooShort)?;
                    for (n, e) in nonce.iter_mut().skip(4).zip(explicit) {
                        *n = *e;
                    }
                    rest
                } else {
                    xor_seq(&mut nonce, seq);
                    fragment
                };
                let plain_len = ciphertext
                    .len()
                    .checked_sub(tag_len)
                    .ok_or(DecryptError::TooShort)?;
                let plain_len = u16::try_from(plain_len).map_err(|_| DecryptError::TooShort)?;
                let mut aad = Vec::with_capacity(13);
                aad.extend_from_slice(&seq.to_be_bytes());
                let [content_type, major, minor, _, _] = header;
                aad.extend_from_slice(&[content_type, major, minor]);
                aad.extend_from_slice(&plain_len.to_be_bytes());
                (ciphertext.to_vec(), aad)
            }
        };
        if buffer.len() < tag_len {
            return Err(DecryptError::TooShort);
        }
        let plaintext = self
            .key
            .open_in_place(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(aad.as_slice()),
                &mut buffer,
            )
            .map_err(|_| DecryptError::Authentication)?;
        let plain_len = plaintext.len();
        buffer.truncate(plain_len);
        match self.kind {
            Kind::Tls13 => {
                // TLSInnerPlaintext: content || content_type || zeros.
                let end = buffer
                    .iter()
                    .rposition(|&b| b != 0)
                    .ok_or(DecryptError::NoContentType)?;
                let content_type = *buffer.get(end).ok_or(DecryptError::NoContentType)?;
                buffer.truncate(end);
                Ok((content_type, buffer))
            }
            _ => Ok((header[0], buffer)),
        }
    }
}

impl Hash {
    fn len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
        }
    }

    fn hkdf(self) -> hkdf::Algorithm {
        match self {
            Hash::Sha256 => hkdf::HKDF_SHA256,
            Hash::Sha384 => hkdf::HKDF_SHA384,
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            Hash::Sha256 => hmac::HMAC_SHA256,
            Hash::Sha384 => hmac::HMAC_SHA384,
        }
    }
}

fn xor_seq(nonce: &mut [u8; 12], seq: u64) {
    for (n, s) in nonce.iter_mut().skip(4).zip(seq.to_be_bytes()) {
        *n ^= s;
    }
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label(secret, label, "", length) of RFC 8446 section 7.1.
fn hkdf_expand_label(hash: Hash, secret: &[u8], label: &[u8], length: usize) -> Option<Vec<u8>> {
    let out_len = u16::try_from(length).ok()?.to_be_bytes();
    let label_len = [u8::try_from(b"tls13 ".len() + label.len()).ok()?];
    let info: [&[u8]; 5] = [&out_len, &label_len, b"tls13 ", label, &[0]];
    let prk = hkdf::Prk::new_less_safe(hash.hkdf(), secret);
    let okm = prk.expand(&info, Len(length)).ok()?;
    let mut out = vec![0; length];
    okm.fill(&mut out).ok()?;
    Some(out)
}

/// The TLS 1.2 PRF, P_hash(secret, label || seed) of RFC 5246 section 5.
fn prf(hash: Hash, secret: &[u8], label: &[u8], seed: &[u8], length: usize) -> Vec<u8> {
    let key = hmac::Key::new(hash.hmac(), secret);
    let mut label_seed = label.to_vec();
    label_seed.extend_from_slice(seed);
    let mut out = Vec::with_capacity(length + hash.len());
    let mut a = hmac::sign(&key, &label_seed); // A(1)
    while out.len() < length {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(a.as_ref());
        ctx.update(&label_seed);
        out.extend_from_slice(ctx.sign().as_ref());
        a = hmac::sign(&key, a.as_ref());
    }
    out.truncate(length);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8448 section 3 (simple 1-RTT handshake): the server handshake traffic secret and
    /// the write key and IV derived from it.
    #[test]
    fn tls13_key_schedule_matches_rfc8448() {
        let secret =
            hex::decode("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")
                .expect("hex");
        let key = hkdf_expand_label(Hash::Sha256, &secret, b"key", 16).expect("key");
        let iv = hkdf_expand_label(Hash::Sha256, &secret, b"iv", 12).expect("iv");
        assert_eq!(hex::encode(key), "3fce516009c21727d0f2e4e86ee403bc");
        assert_eq!(hex::encode(iv), "5d313eb2671276ee13000b30");
    }

    /// The P_SHA256 test vector circulated on the IETF TLS list (and used by many stacks).
    #[test]
    fn tls12_prf_sha256_vector() {
        let secret = hex::decode("9bbe436ba940f017b17652849a71db35").expect("hex");
        let seed = hex::decode("a0ba9f936cda311827a6f796ffd5198c").expect("hex");
        let out = prf(Hash::Sha256, &secret, b"test label", &seed, 100);
        assert_eq!(
            hex::encode(&out[..32]),
            "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a"
        );
    }
}
