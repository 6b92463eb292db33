//! Short-lived access tokens: HS256 JWTs with a `kid` header so signing keys can rotate.

use jsonwebtoken::{decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

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

/// The key that signs new tokens, and every key whose tokens are still accepted.
#[derive(Clone)]
pub struct TokenKeys {
    kid: String,
    encoding: EncodingKey,
    verifiers: Vec<(String, DecodingKey)>,
    ttl_secs: i64,
}

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
        TokenKeys { kid: key_id(current), encoding: EncodingKey::from_secret(current), verifiers, ttl_secs }
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

    /// Checks a token's signature, algorithm, key id, expiry, audience and issuer.
    pub fn verify(&self, token: &str) -> Result<Principal, AppError> {
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
        validation.leeway = 5;
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
        Ok(Principal {
            id: c.sub,
            name: c.name,
            kind: PrincipalKind::User,
            role,
            jurisdiction_code: c.jur,
            scope_path: c.scp,
            department_id: c.dep,
            session_id: Some(c.sid),
            scopes: Vec::new(),
        })
    }
}
