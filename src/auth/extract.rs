//! `Principal` as an actix extractor: every handler that takes one requires a valid bearer token.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};

use crate::domain::access::Principal;
use crate::error::AppError;
use crate::state::AppState;

impl FromRequest for Principal {
    type Error = AppError;
    type Future = Ready<Result<Principal, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

fn authenticate(req: &HttpRequest) -> Result<Principal, AppError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| AppError::Internal("application state missing".to_owned()))?;
    let missing = || AppError::Unauthenticated {
        code: "unauthenticated",
        detail: "send Authorization: Bearer <token>".to_owned(),
    };
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?;
    let token = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(missing)?;
    state.tokens.verify(token)
}
