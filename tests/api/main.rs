#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
//! The integration suite: every test runs against a real server on its own database, once on
//! SQLite and once on PostgreSQL (see `support::both!`).

#[macro_use]
pub mod support;

mod api_clients;
mod auth;
mod backup;
mod cases;
mod errors;
mod faults;
mod hostile;
mod integrations;
mod lifecycle;
mod matrix;
mod open311;
mod process;
mod project;
mod reference;
mod resilience;
mod security;
mod stats;
mod webhooks;
