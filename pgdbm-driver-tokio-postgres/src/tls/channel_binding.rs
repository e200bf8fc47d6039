//! SCRAM channel binding: RFC 5929's `tls-server-end-point` hash of the server certificate.

use sha2::Digest;

/// RFC 5929's `tls-server-end-point` value of a DER certificate: its hash with the hash function
/// of its signature algorithm, SHA-256 when that is MD5 or SHA-1. `None` for algorithms without
/// a hash of their own (Ed25519, Ed448: PostgreSQL cannot bind to them either) and unparsable
/// certificates; authentication then goes on without channel binding.
pub(crate) fn server_end_point(der: &[u8]) -> Option<Vec<u8>> {
    Some(match signature_hash(der)? {
        Hash::Sha224 => sha2::Sha224::digest(der).to_vec(),
        Hash::Sha256 => sha2::Sha256::digest(der).to_vec(),
        Hash::Sha384 => sha2::Sha384::digest(der).to_vec(),
        Hash::Sha512 => sha2::Sha512::digest(der).to_vec(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hash {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

/// `1.2.840.113549.1.1` (PKCS#1) and `1.2.840.10045.4` (ECDSA signatures), DER-encoded.
pub(super) const PKCS1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
pub(super) const ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04];
/// `2.16.840.1.101.3.4.2` (NIST hash functions) and `1.3.14.3.2.26` (SHA-1).
pub(super) const NIST_HASH: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02];
pub(super) const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];

/// The hash function for channel binding of the certificate's `signatureAlgorithm`.
pub(super) fn signature_hash(der: &[u8]) -> Option<Hash> {
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm AlgorithmIdentifier, … }
    let (cert, _) = der_item(der, 0x30)?;
    let (_, rest) = der_item(cert, 0x30)?;
    let (algorithm, _) = der_item(rest, 0x30)?;
    let (oid, params) = der_item(algorithm, 0x06)?;
    if let Some(last) = oid.strip_prefix(PKCS1) {
        return match last {
            [4 | 5] => Some(Hash::Sha256), // MD5, SHA-1 → SHA-256
            [11] => Some(Hash::Sha256),
            [12] => Some(Hash::Sha384),
            [13] => Some(Hash::Sha512),
            [14] => Some(Hash::Sha224),
            [10] => pss_hash(params), // RSASSA-PSS: the hash is in the parameters
            _ => None,
        };
    }
    match oid.strip_prefix(ECDSA)? {
        [1] => Some(Hash::Sha256), // ecdsa-with-SHA1 → SHA-256
        [3, 1] => Some(Hash::Sha224),
        [3, 2] => Some(Hash::Sha256),
        [3, 3] => Some(Hash::Sha384),
        [3, 4] => Some(Hash::Sha512),
        _ => None,
    }
}

/// RSASSA-PSS-params ::= SEQUENCE { hashAlgorithm [0] AlgorithmIdentifier DEFAULT sha1, … }
fn pss_hash(params: &[u8]) -> Option<Hash> {
    let (params, _) = der_item(params, 0x30)?;
    let Some((hash, _)) = der_item(params, 0xa0) else {
        return Some(Hash::Sha256); // SHA-1 by default → SHA-256
    };
    let (algorithm, _) = der_item(hash, 0x30)?;
    let (oid, _) = der_item(algorithm, 0x06)?;
    if oid == SHA1 {
        return Some(Hash::Sha256);
    }
    match oid.strip_prefix(NIST_HASH)? {
        [1] => Some(Hash::Sha256),
        [2] => Some(Hash::Sha384),
        [3] => Some(Hash::Sha512),
        [4] => Some(Hash::Sha224),
        _ => None,
    }
}

/// The contents of the DER item at the start of `input` if its tag is `tag`, and what follows.
fn der_item(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&len, rest) = rest.split_first()?;
    let (len, rest) = if len < 0x80 {
        (usize::from(len), rest)
    } else {
        let n = usize::from(len & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}
