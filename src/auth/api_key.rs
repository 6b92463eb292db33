//! API keys for integrating systems: their format, generation and hashing (the verified keys are
//! remembered for a few seconds in a [`PrincipalCache`](super::cache::PrincipalCache)).
//!
//! A key is `msk_<12 hex>_<43 base64url>` (60 characters). `msk_<12 hex>` is its public prefix,
//! stored in clear to find the client; the whole key is stored only as the hex SHA-256 of it
//! (a 256-bit random secret needs no slow hash: there is nothing to guess). The key is shown once,
//! when it is issued, and never logged.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::AppError;

/// What every API key starts with, so people and secret scanners recognise one.
pub const KEY_START: &str = "msk_";
/// Length of the public prefix: `msk_` and 12 lower-case hex characters.
pub const PREFIX_LEN: usize = KEY_START.len() + 12;
/// Length of a whole key: the prefix, `_`, and 32 random bytes in unpadded base64url (43).
pub const KEY_LEN: usize = PREFIX_LEN + 1 + 43;

/// A freshly issued key. Its `Debug` hides the key itself.
pub struct IssuedKey {
    /// The whole key, to be shown to the admin once and then dropped.
    pub key: String,
    /// The public prefix (`msk_<12 hex>`), stored in clear.
    pub prefix: String,
    /// Hex SHA-256 of the whole key, stored.
    pub hash: String,
}

impl std::fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedKey").field("prefix", &self.prefix).field("key", &"<redacted>").finish()
    }
}

/// Makes a new key from the operating system's random source.
pub fn generate() -> IssuedKey {
    let mut id = [0u8; 6];
    OsRng.fill_bytes(&mut id);
    let mut secret = [0u8; 32];
    OsRng.fill_bytes(&mut secret);
    let prefix = format!("{KEY_START}{}", to_hex(&id));
    let key = format!("{prefix}_{}", URL_SAFE_NO_PAD.encode(secret));
    let hash = hash(&key);
    IssuedKey { key, prefix, hash }
}

/// Whether a bearer token is meant as an API key (rather than an access token).
pub fn is_api_key(token: &str) -> bool {
    token.starts_with(KEY_START)
}

/// The public prefix of a well-formed key; `None` for anything that cannot be a key.
pub fn lookup_prefix(key: &str) -> Option<&str> {
    if key.len() != KEY_LEN || !key.starts_with(KEY_START) {
        return None;
    }
    let (prefix, rest) = key.split_at_checked(PREFIX_LEN)?;
    let id_ok = prefix.bytes().skip(KEY_START.len()).all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let secret_ok = rest
        .strip_prefix('_')
        .is_some_and(|secret| secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    (id_ok && secret_ok).then_some(prefix)
}

/// Hex SHA-256 of a key: what is stored and compared.
pub fn hash(key: &str) -> String {
    to_hex(&Sha256::digest(key.as_bytes()))
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The one answer to a key that is unknown, malformed, revoked or expired: the caller learns
/// nothing about which.
pub fn invalid_key() -> AppError {
    AppError::Unauthenticated { code: "invalid_api_key", detail: "the API key is not valid".to_owned() }
}
