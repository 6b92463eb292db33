//! argon2id password hashing and the password policy. Hashing is slow on purpose: callers run it
//! inside `web::block`, never on an actix worker.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Hashes and verifies passwords with fixed cost parameters.
#[derive(Clone)]
pub struct Hasher {
    params: Params,
    /// A hash of a random password, verified against when the user does not exist so that an
    /// unknown username costs the same time as a wrong password.
    dummy_hash: String,
}

impl Hasher {
    /// A hasher with `memory_kib` and `iterations` (parallelism 1).
    pub fn new(memory_kib: u32, iterations: u32) -> Result<Hasher, String> {
        let params = Params::new(memory_kib.max(Params::MIN_M_COST), iterations.max(1), 1, None)
            .map_err(|e| format!("invalid argon2 parameters: {e}"))?;
        let mut hasher = Hasher { params, dummy_hash: String::new() };
        hasher.dummy_hash = hasher.hash(&uuid::Uuid::new_v4().to_string())?;
        Ok(hasher)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// A PHC-format argon2id hash with a random salt.
    pub fn hash(&self, password: &str) -> Result<String, String> {
        let salt = SaltString::generate(&mut OsRng);
        self.argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| format!("hashing failed: {e}"))
    }

    /// Whether `password` matches `hash` (`None`: compare against the dummy and fail).
    pub fn verify(&self, password: &str, hash: Option<&str>) -> bool {
        let target = hash.unwrap_or(&self.dummy_hash);
        let ok = PasswordHash::new(target)
            .map(|parsed| self.argon2().verify_password(password.as_bytes(), &parsed).is_ok())
            .unwrap_or(false);
        ok && hash.is_some()
    }
}

/// Passwords that are refused whatever their length.
const COMMON: &[&str] = &[
    "password",
    "password1",
    "password123",
    "passw0rd",
    "12345678",
    "123456789",
    "1234567890",
    "0123456789",
    "qwertyuiop",
    "qwerty123",
    "1q2w3e4r5t",
    "iloveyou",
    "admin123",
    "administrator",
    "welcome123",
    "letmein123",
    "abc123456",
    "abcd1234",
    "11111111",
    "00000000",
    "88888888",
    "66666666",
    "123123123",
    "a123456789",
    "woaini1314",
    "5201314520",
    "changeme",
    "changeme123",
    "minsheng",
    "minsheng123",
    "zhangsan123",
];

/// Checks a new password against the policy: at least 10 characters, at most 128, not a common
/// password, not the username, not one repeated character. Returns the reason when refused.
pub fn check_policy(password: &str, username: &str) -> Result<(), &'static str> {
    let len = password.chars().count();
    if len < 10 {
        return Err("must be at least 10 characters long");
    }
    if len > 128 {
        return Err("must be at most 128 characters long");
    }
    let lower = password.to_lowercase();
    if COMMON.contains(&lower.as_str()) {
        return Err("is too common");
    }
    if !username.is_empty() && lower.contains(&username.to_lowercase()) {
        return Err("must not contain the username");
    }
    let mut chars = password.chars();
    let first = chars.next();
    if chars.all(|c| Some(c) == first) {
        return Err("must not be one repeated character");
    }
    Ok(())
}
