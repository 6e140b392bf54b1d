//! `clerk-sync-worker send`: sign a Clerk-shaped event with the configured
//! webhook secret, as Svix does, and post it to a running ingest. What a
//! developer uses instead of a tunnel to see clerk-sync work end to end.
//!
//! - `send user.created|user.updated|user.deleted [--user ID] [--email E]
//!   [--first-name F] [--last-name L] [--role R] [--version MS] [--svix-id ID]`
//!   builds the event ([`event`]);
//! - `send --file PAYLOAD.json` sends the file's bytes as they are;
//! - `send --scenario NAME` posts a tricky sequence and says what clerk-sync
//!   must end with ([`scenario`]).
//!
//! Exit 0 when every post was answered 2xx, 1 when the ingest is unreachable
//! or answers otherwise, 2 for bad arguments, a missing secret or an
//! unreadable file.

mod args;
pub mod event;
pub mod poster;
mod posts;
pub mod report;
mod run;
pub mod scenario;

pub use args::Args;
pub use run::run;
