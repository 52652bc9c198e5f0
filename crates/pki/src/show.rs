//! Describing certificates, chains, CSRs, CRLs, keys and PKCS#12 files for people.

use x509_parser::prelude::{GeneralName, X509Certificate};

/// The subject alternative names of a certificate, as openssl prints them (`DNS:x`, `IP:y`).
pub fn subject_alt_names(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value.general_names.iter().map(general_name).collect()
}

/// One general name in openssl's spelling.
pub fn general_name(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(d) => format!("DNS:{d}"),
        GeneralName::RFC822Name(e) => format!("email:{e}"),
        GeneralName::URI(u) => format!("URI:{u}"),
        GeneralName::IPAddress(b) => match b.len() {
            4 => <[u8; 4]>::try_from(*b)
                .map(|a| format!("IP:{}", std::net::IpAddr::from(a)))
                .unwrap_or_else(|_| "IP:?".into()),
            16 => <[u8; 16]>::try_from(*b)
                .map(|a| format!("IP:{}", std::net::IpAddr::from(a)))
                .unwrap_or_else(|_| "IP:?".into()),
            _ => format!("IP:{}", hex::encode(b)),
        },
        GeneralName::DirectoryName(n) => format!("DirName:{n}"),
        other => format!("{other:?}"),
    }
}
