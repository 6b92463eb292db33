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
    /// Audience.
    pub aud: String,
    /// Issuer.
    pub iss: String,
    /// Issued at (seconds).
    pub iat: i64,
    /// Expiry (seconds).
    pub exp: i64,
}

/// The signing key in use.
#[derive(Clone)]
pub struct TokenKeys {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl_secs: i64,
}

impl TokenKeys {
    /// Keys from a shared secret.
    pub fn new(kid: &str, secret: &[u8], ttl_secs: i64) -> TokenKeys {
        TokenKeys {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl_secs,
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
        if header.alg != Algorithm::HS256 || header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err(invalid("the access token was not signed by this service"));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[AUDIENCE]);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        let data = decode::<Claims>(token, &self.decoding, &validation).map_err(|e| match e.kind() {
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
            scopes: Vec::new(),
        })
    }
}
