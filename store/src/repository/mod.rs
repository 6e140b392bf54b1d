//! All of the worker's SQL, one module per table or concern. Every
//! function takes the caller's connection and never opens or commits a
//! transaction: the caller owns the transaction boundary. Those a batch runs
//! take a shared reference, so that independent statements go to the server
//! together (diesel-async pipelines futures polled at once; see
//! `crate::apply`), and are [`prepared`](prepared::prepared) once per
//! connection.

pub mod database;
pub mod emails;
pub mod events;
pub mod prepared;
pub mod reconcile;
pub mod replay;
pub mod rows;
pub mod sslmode;
pub mod tls;
pub mod users;
pub mod workers;
