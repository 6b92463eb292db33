//! `Principal` as an actix extractor: every handler that takes one requires a valid bearer token,
//! either an access token from sign-in whose session is still live, or an API key (`msk_…`,
//! looked up in the database unless this process verified it a moment ago).

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;

use super::api_key;
use crate::domain::access::Principal;
use crate::error::AppError;
use crate::service::api_clients;
use crate::state::AppState;

impl FromRequest for Principal {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Principal, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| AppError::Internal("application state missing".to_owned()))?;
            let token = token?;
            if api_key::is_api_key(&token) {
                return authenticate_key(&state, token).await;
            }
            let principal = state.tokens.verify(&token)?;
            let sid = principal.session_id.clone().ok_or_else(session_ended)?;
            let live = match state.sessions.get(&sid) {
                Some(live) => live,
                None => {
                    let check = sid.clone();
                    let live = state
                        .db(move |conn| crate::service::sessions::is_live(conn, &check, crate::domain::util::now()))
                        .await?;
                    state.sessions.put(&sid, live);
                    live
                }
            };
            if live {
                Ok(principal)
            } else {
                Err(session_ended())
            }
        })
    }
}

fn session_ended() -> AppError {
    AppError::Unauthenticated { code: "session_ended", detail: "the session has ended; sign in again".to_owned() }
}

/// The bearer token of the request (the scheme name is case-insensitive).
fn bearer(req: &HttpRequest) -> Result<String, AppError> {
    let missing = || AppError::Unauthenticated {
        code: "unauthenticated",
        detail: "send Authorization: Bearer <token>".to_owned(),
    };
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?;
    value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(missing)
}

/// The client's address for throttling: the peer, or the forwarded-for address when configured.
pub fn client_address(req: &HttpRequest, trust_forwarded: bool) -> String {
    let info = req.connection_info();
    let addr = if trust_forwarded { info.realip_remote_addr() } else { info.peer_addr() };
    addr.map(|a| a.rsplit_once(':').map_or(a, |(host, _)| host).trim_matches(['[', ']']).to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Whom the rate limit charges for a request: `user:<id>` for a valid access token (its signature
/// and expiry are checked here, its session by the handler), `client:<id>` for an API key this
/// process verified a moment ago (the key cache), else `address:<client address>` — so random
/// credentials cannot buy a fresh bucket per request.
pub fn rate_limit_key(req: &HttpRequest, state: &AppState) -> String {
    if let Ok(token) = bearer(req) {
        if api_key::is_api_key(&token) {
            if let Some(p) = state.api_keys.get(&api_key::hash(&token)) {
                return format!("client:{}", p.id);
            }
        } else if let Ok(p) = state.tokens.verify(&token) {
            return format!("user:{}", p.id);
        }
    }
    format!("address:{}", client_address(req, state.config.trust_forwarded_for))
}

/// The API client a key belongs to. The key itself goes no further than this function: only
/// its prefix and hash reach the database, the cache and the logs never see it. Used for bearer
/// keys here and for the Open311 `api_key` form field.
pub async fn authenticate_key(state: &AppState, key: String) -> Result<Principal, AppError> {
    let prefix = api_key::lookup_prefix(&key).map(str::to_owned).ok_or_else(api_key::invalid_key)?;
    let key_hash = api_key::hash(&key);
    drop(key);
    if let Some(principal) = state.api_keys.get(&key_hash) {
        return Ok(principal);
    }
    let presented = key_hash.clone();
    let found = state.db(move |conn| api_clients::authenticate(conn, &prefix, &presented)).await?;
    tracing::debug!(client_id = %found.principal.id, "API client {} authenticated", found.principal.id);
    state.api_keys.put(key_hash, found.principal.clone(), found.valid_for);
    Ok(found.principal)
}
