//! Authentication: password hashing, access tokens, API keys, and the request's identity extractor.

pub mod api_key;
pub mod cache;
pub mod extract;
pub mod password;
pub mod sessions;
pub mod token;
