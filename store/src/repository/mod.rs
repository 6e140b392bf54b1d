//! All of the worker's SQL, one module per table or concern. Every
//! function takes the caller's connection and never opens or commits a
//! transaction: the caller owns the transaction boundary.

pub mod database;
pub mod emails;
pub mod events;
pub mod replay;
pub mod rows;
pub mod sslmode;
pub mod tls;
pub mod users;
pub mod workers;
