//! Short-lived access tokens: HS256 JWTs with a `kid` header so signing keys can rotate.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::cache::PrincipalCache;
use crate::domain::access::{Principal, PrincipalKind};
use crate::domain::types::Role;
use crate::error::AppError;

/// Audience and issuer of every token.
pub const AUDIENCE: &str = "minsheng";

/// What an access token says about its bearer.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Username.
    pub name: String,
    /// Role wire name.
    pub role: String,
    /// Home jurisdiction code (absent: whole tree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jur: Option<String>,
    /// Scope path of the home jurisdiction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<String>,
    /// Department id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dep: Option<String>,
    /// Session id: the token dies with its session (logout, password change, disabling).
    pub sid: String,
    /// Audience.
    pub aud: String,
    /// Issuer.
    pub iss: String,
    /// Issued at (seconds).
    pub iat: i64,
    /// Expiry (seconds).
    pub exp: i64,
}

/// Seconds a token is still accepted after its expiry (clock skew between processes).
const LEEWAY_SECS: i64 = 5;

/// The key that signs new tokens, and every key whose tokens are still accepted.
#[derive(Clone)]
pub struct TokenKeys {
    kid: String,
    encoding: EncodingKey,
    verifiers: Vec<(String, DecodingKey)>,
    ttl_secs: i64,
    /// Tokens this process has verified, until they expire.
    verified: Arc<PrincipalCache>,
}

/// Most tokens remembered (see [`TokenKeys::verify`]): several thousand signed-in users, under a
/// megabyte per thousand.
const MAX_VERIFIED: usize = 10_000;

/// The key id of a shared secret: a short digest, so the same secret has the same id in every
/// process and a rotated-out secret is recognised by the id on its tokens.
pub fn key_id(secret: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(secret);
    format!("k-{}", &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)[..10])
}

impl TokenKeys {
    /// Signs with `current`; also accepts tokens signed with any of `previous` (a key rotation in
    /// progress: their tokens die on their own within one token lifetime).
    pub fn new(current: &[u8], previous: &[Vec<u8>], ttl_secs: i64) -> TokenKeys {
        let mut verifiers = vec![(key_id(current), DecodingKey::from_secret(current))];
        verifiers.extend(previous.iter().map(|s| (key_id(s), DecodingKey::from_secret(s))));
        TokenKeys {
            kid: key_id(current),
            encoding: EncodingKey::from_secret(current),
            verifiers,
            ttl_secs,
            // No entry outlives a token of this process's lifetime; each ends at its token's expiry.
            verified: Arc::new(PrincipalCache::new(
                Duration::from_secs(u64::try_from(ttl_secs + LEEWAY_SECS).unwrap_or(0)),
                MAX_VERIFIED,
            )),
        }
    }

    /// Lifetime of new tokens in seconds.
    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// Signs a token for `p`.
    pub fn issue(&self, p: &Principal) -> Result<String, AppError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: p.id.clone(),
            name: p.name.clone(),
            role: p.role.as_str().to_owned(),
            jur: p.jurisdiction_code.clone(),
            scp: p.scope_path.clone(),
            dep: p.department_id.clone(),
            sid: p.session_id.clone().ok_or_else(|| AppError::Internal("access token without a session".to_owned()))?,
            aud: AUDIENCE.to_owned(),
            iss: AUDIENCE.to_owned(),
            iat: now,
            exp: now + self.ttl_secs,
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        encode(&header, &claims, &self.encoding).map_err(AppError::internal)
    }

    /// Checks a token's signature, algorithm, key id, expiry, audience and issuer; a token this
    /// process verified before is only checked for its expiry.
    ///
    /// Verifying (two base64 decodes, two JSON parses, the HMAC, the validation set-up) was a
    /// tenth of the CPU of a `GET /cases/{id}` (docs/BENCHMARKS.md, change 28), and a client sends
    /// the same token with every request for its whole life. A token's signature and claims cannot
    /// change, so its principal is remembered under the exact token string until its expiry
    /// (leeway included, counted in whole seconds from the verification, so never later); whether
    /// its session still lives is checked per request apart from this (`auth::extract`). Only
    /// tokens that verified are remembered.
    pub fn verify(&self, token: &str) -> Result<Principal, AppError> {
        if let Some(p) = self.verified.get(token) {
            return Ok(p);
        }
        let (principal, exp) = self.verify_fully(token)?;
        if let Ok(left) = u64::try_from(exp + LEEWAY_SECS - chrono::Utc::now().timestamp()) {
            self.verified.put(token.to_owned(), principal.clone(), Some(Duration::from_secs(left)));
        }
        Ok(principal)
    }

    /// Every check of [`verify`](Self::verify), and the token's expiry.
    fn verify_fully(&self, token: &str) -> Result<(Principal, i64), AppError> {
        let invalid = |detail: &str| AppError::Unauthenticated { code: "invalid_token", detail: detail.to_owned() };
        let header = decode_header(token).map_err(|_| invalid("the access token is malformed"))?;
        let key = match (&header.alg, header.kid.as_deref()) {
            (Algorithm::HS256, Some(kid)) => self.verifiers.iter().find(|(k, _)| k == kid).map(|(_, key)| key),
            _ => None,
        }
        .ok_or_else(|| invalid("the access token was not signed by this service"))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[AUDIENCE]);
        validation.leeway = LEEWAY_SECS.unsigned_abs();
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        validation.validate_nbf = true;
        let data = decode::<Claims>(token, key, &validation).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                AppError::Unauthenticated { code: "token_expired", detail: "the access token has expired".to_owned() }
            }
            _ => invalid("the access token is invalid"),
        })?;
        let c = data.claims;
        // Only users sign in; `integration` is an API client's role and never in a token.
        let role = Role::parse_user(&c.role).ok_or_else(|| invalid("the access token names an unknown role"))?;
        let principal = Principal {
            id: c.sub,
            name: c.name,
            kind: PrincipalKind::User,
            role,
            jurisdiction_code: c.jur,
            scope_path: c.scp,
            department_id: c.dep,
            session_id: Some(c.sid),
            scopes: Vec::new(),
        };
        Ok((principal, c.exp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(b"a-test-secret-of-thirty-two-bytes", &[], 900)
    }

    fn user() -> Principal {
        Principal {
            id: "u-1".to_owned(),
            name: "li.si".to_owned(),
            kind: PrincipalKind::User,
            role: Role::Supervisor,
            jurisdiction_code: Some("530602".to_owned()),
            scope_path: Some("/530000/530600/530602/".to_owned()),
            department_id: None,
            session_id: Some("s-1".to_owned()),
            scopes: Vec::new(),
        }
    }

    fn code(r: Result<Principal, AppError>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(AppError::Unauthenticated { code, .. }) => code,
            Err(_) => "other",
        }
    }

    #[test]
    fn a_remembered_token_says_what_it_said() {
        let k = keys();
        let token = k.issue(&user()).expect("issue");
        let first = k.verify(&token).expect("first");
        assert!(k.verified.get(&token).is_some(), "remembered");
        let again = k.verify(&token).expect("remembered");
        for p in [first, again] {
            assert_eq!(
                (p.id.as_str(), p.role, p.scope_path.as_deref()),
                ("u-1", Role::Supervisor, Some("/530000/530600/530602/"))
            );
            assert_eq!(p.session_id.as_deref(), Some("s-1"));
        }
    }

    #[test]
    fn a_remembered_token_still_expires() {
        let k = keys();
        let token = k.issue(&user()).expect("issue");
        let now = chrono::Utc::now().timestamp();
        // Remembered as expiring now (as if verified while it was live).
        k.verified.put(token.clone(), user(), Some(Duration::ZERO));
        let expired_token = {
            let c = Claims {
                sub: "u-2".to_owned(),
                name: "x".to_owned(),
                role: "supervisor".to_owned(),
                jur: None,
                scp: None,
                dep: None,
                sid: "s-2".to_owned(),
                aud: AUDIENCE.to_owned(),
                iss: AUDIENCE.to_owned(),
                iat: now - 120,
                exp: now - 60,
            };
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some(k.kid.clone());
            encode(&header, &c, &k.encoding).expect("sign")
        };
        k.verified.put(expired_token.clone(), user(), Some(Duration::ZERO));
        assert_eq!(code(k.verify(&expired_token)), "token_expired");
        assert!(k.verified.get(&expired_token).is_none(), "an expired token is not remembered again");
        // The live token's memory ended: checked in full again, and fine.
        assert_eq!(code(k.verify(&token)), "ok");
    }

    #[test]
    fn only_the_exact_token_is_remembered() {
        let k = keys();
        let token = k.issue(&user()).expect("issue");
        k.verify(&token).expect("verified");
        // One character of the signature changed (not the last, whose low bits are padding).
        let at = token.len() - 10;
        let was = &token[at..=at];
        let forged = format!("{}{}{}", &token[..at], if was == "A" { "B" } else { "A" }, &token[at + 1..]);
        assert_eq!(code(k.verify(&forged)), "invalid_token");
        assert_eq!(code(k.verify("not.a.jwt")), "invalid_token");
        for refused in [forged.as_str(), "not.a.jwt"] {
            assert!(k.verified.get(refused).is_none(), "refused tokens are not kept");
        }
        // Another process's key is not trusted because this one remembers a token.
        let other = TokenKeys::new(b"another-secret-of-thirty-two-byte", &[], 900);
        assert_eq!(code(other.verify(&token)), "invalid_token");
    }
}
