//! Authentication: password hashing, access tokens, and the request's identity extractor.

pub mod extract;
pub mod password;
pub mod sessions;
pub mod token;
