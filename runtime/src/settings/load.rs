//! Loading a binary's settings from the file and the environment.

use super::error::SettingsError;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::path::Path;

/// The file read when no `--config` is given (it may be absent).
pub const DEFAULT_CONFIG_FILE: &str = "clerk-sync.toml";
pub(super) const ENV_PREFIX: &str = "CLERK_SYNC";

/// The well-known variables and the keys they set; they win over everything.
pub(super) const WELL_KNOWN: [(&str, &str); 5] = [
    ("CLERK_WEBHOOK_SECRET", "webhook.secrets"),
    ("CLERK_SECRET_KEY", "clerk.secret_key"),
    ("DATABASE_URL", "database.url"),
    ("AMQP_URL", "amqp.url"),
    ("INGEST_LISTEN", "ingest.listen"),
];

/// A binary's settings: its sections (each `#[serde(default,
/// deny_unknown_fields)]`), and the check of the values it uses.
pub trait Sections: DeserializeOwned {
    fn validate(&self) -> Result<(), SettingsError>;

    /// Load from the process environment and `config_file` (or
    /// `clerk-sync.toml` in the working directory when there is one).
    fn load(config_file: Option<&Path>) -> Result<Self, SettingsError> {
        load(config_file)
    }

    /// Load with an explicit environment (what tests use).
    fn load_from(
        config_file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Self, SettingsError> {
        load_from(config_file, env)
    }
}

/// Load from the process environment and `config_file` (or
/// `clerk-sync.toml` in the working directory when there is one).
pub fn load<S: Sections>(config_file: Option<&Path>) -> Result<S, SettingsError> {
    load_from(config_file, &std::env::vars().collect())
}

/// Load with an explicit environment (what tests use).
pub fn load_from<S: Sections>(
    config_file: Option<&Path>,
    env: &HashMap<String, String>,
) -> Result<S, SettingsError> {
    let file = match config_file {
        Some(path) => config::File::from(path).required(true),
        None => config::File::with_name(DEFAULT_CONFIG_FILE).required(false),
    };
    let mut builder = config::Config::builder().add_source(file).add_source(
        config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            // Lists (only roles.sources) are comma-separated.
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("roles.sources")
            .source(Some(env.clone())),
    );
    for (var, key) in WELL_KNOWN {
        builder = builder
            .set_override_option(key, env.get(var).cloned())
            .map_err(|e| SettingsError::unreadable(&e.to_string()))?;
    }
    let settings: S = builder
        .build()
        .and_then(config::Config::try_deserialize)
        .map_err(|e| SettingsError::unreadable(&e.to_string()))?;
    settings.validate()?;
    Ok(settings)
}
