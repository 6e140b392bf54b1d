//! `clerk-sync-worker replay` against the real database: it restores a
//! damaged projection exactly (same rows, same ids, business rows kept),
//! writes nothing on a dry run, re-reads payloads, and loses nothing while
//! a worker consumes.

mod helpers;
mod rereads;
mod restores;
