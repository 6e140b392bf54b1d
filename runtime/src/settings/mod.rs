//! Settings, layered with the `config` crate (lowest first): built-in
//! defaults, `clerk-sync.toml` in the working directory (or the file given
//! with `--config`), environment variables `CLERK_SYNC__SECTION__KEY`, and
//! the well-known variables.
//!
//! Each binary has its own `Settings`, made of the sections it reads (the
//! ingest's in `clerk-sync-ingest`, the worker's in `clerk-sync-worker`),
//! and checks only those; the sections both read, and the loader, are here.
//! One file serves both binaries: a section the binary does not read is
//! accepted as [`Unused`] and checked by the binary that reads it, and an
//! unknown section or key is refused by both.

mod error;
mod load;
mod sections;

pub use error::SettingsError;
pub use load::{DEFAULT_CONFIG_FILE, Sections, load, load_from};
pub use sections::{
    AmqpSettings, IngestSettings, LogFormat, LogSettings, Unused, WebhookSecrets, WebhookSettings,
    check_url,
};

#[cfg(test)]
mod tests;
