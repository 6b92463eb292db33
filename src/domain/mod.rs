//! The domain: case vocabulary, the lifecycle state machine, who may do what, and input validation.
//! Nothing here knows about HTTP or SQL.

pub mod access;
pub mod input;
pub mod lifecycle;
pub mod open311;
pub mod stats;
pub mod types;
pub mod util;
