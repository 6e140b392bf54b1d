//! clerk-sync's settings: one struct for both binaries, layered with the
//! `config` crate (lowest first): built-in defaults, `clerk-sync.toml` in the
//! working directory (or the file given with `--config`), environment
//! variables `CLERK_SYNC__SECTION__KEY`, and the well-known variables.

use crate::secret_url::SecretUrl;
use clerk_sync_domain::roles::{DefaultRole, MetadataSource, RolePolicy};
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

/// The file read when no `--config` is given (it may be absent).
pub const DEFAULT_CONFIG_FILE: &str = "clerk-sync.toml";
const ENV_PREFIX: &str = "CLERK_SYNC";

/// The well-known variables and the keys they set; they win over everything.
const WELL_KNOWN: [(&str, &str); 5] = [
    ("CLERK_WEBHOOK_SECRET", "webhook.secrets"),
    ("CLERK_SECRET_KEY", "clerk.secret_key"),
    ("DATABASE_URL", "database.url"),
    ("AMQP_URL", "amqp.url"),
    ("INGEST_LISTEN", "ingest.listen"),
];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub webhook: WebhookSettings,
    pub database: DatabaseSettings,
    pub amqp: AmqpSettings,
    pub ingest: IngestSettings,
    pub worker: WorkerSettings,
    pub roles: RolesSettings,
    pub clerk: ClerkSettings,
    pub privacy: PrivacySettings,
    pub status: StatusSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// `CLERK_WEBHOOK_SECRET`: one or more `whsec_...` secrets.
    pub secrets: WebhookSecrets,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `DATABASE_URL`.
    pub url: SecretUrl,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmqpSettings {
    /// `AMQP_URL`.
    pub url: SecretUrl,
    /// Prefix of every exchange and queue name.
    pub prefix: String,
    /// Number of shard queues (K). Changing it moves some users to other
    /// shards: see the README before you do.
    pub shards: u16,
    /// Deliveries of one message before the broker dead-letters it.
    pub delivery_limit: u32,
    /// How long the ingest waits for a publisher confirm before answering 503.
    pub confirm_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSettings {
    /// `INGEST_LISTEN`.
    pub listen: SocketAddr,
    /// Largest body accepted; larger ones get 413.
    pub body_limit_bytes: usize,
    /// How long shutdown waits for requests in flight.
    pub shutdown_timeout_secs: u64,
    /// HTTP worker threads; 0 means one per CPU.
    pub http_workers: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerSettings {
    /// Address of the worker's /metrics, /healthz and /readyz. Unset: the
    /// first free port from 9090 on (see the worker's `http` module), so
    /// that several workers on one host need no setting.
    pub listen: Option<SocketAddr>,
    /// Most messages applied in one database transaction.
    pub batch_size: usize,
    /// How long a batch waits to fill before it is applied anyway.
    pub linger_ms: u64,
    /// Batches applied at once, each in its own transaction on its own
    /// database connection, so one is prepared while another commits.
    pub batches_in_flight: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RolesSettings {
    /// Metadata objects a role is read from, first match wins.
    pub sources: Vec<MetadataSource>,
    /// The role of an event that names none (`none`: no row).
    pub default: DefaultRole,
}

/// Clerk's Backend API, which `reconcile` reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClerkSettings {
    /// Base URL of the Backend API (`/v1/users` is under it).
    pub api_url: String,
    /// `CLERK_SECRET_KEY`: the `sk_...` key. Only `reconcile` needs it.
    pub secret_key: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacySettings {
    /// On `user.deleted`, erase the personal fields of that user's events
    /// in the log (ids, types, versions and outcomes stay).
    pub erase_on_delete: bool,
}

/// Thresholds of `clerk-sync-worker status`: crossing any one makes it exit
/// non-zero, so it can serve as a probe. Unset means not checked.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatusSettings {
    /// Most messages waiting in any one shard queue.
    pub max_shard_depth: Option<u64>,
    /// Oldest age, in seconds, of a message waiting in a shard queue.
    pub max_oldest_message_age_secs: Option<u64>,
    /// Most messages in the dead-letter queue.
    pub max_dead_letters: Option<u64>,
    /// Oldest age, in seconds, of the newest event in the log.
    pub max_newest_event_age_secs: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (colours on a terminal).
    #[default]
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretUrl::new("postgres://postgres@127.0.0.1:5432/clerk_sync"),
        }
    }
}

impl Default for AmqpSettings {
    fn default() -> Self {
        Self {
            url: SecretUrl::new("amqp://guest:guest@127.0.0.1:5672/%2f"),
            prefix: "clerk_sync".to_owned(),
            shards: 8,
            delivery_limit: 10,
            confirm_timeout_ms: 5_000,
        }
    }
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            body_limit_bytes: 1024 * 1024,
            shutdown_timeout_secs: 30,
            http_workers: 0,
        }
    }
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            listen: None,
            batch_size: 500,
            linger_ms: 20,
            batches_in_flight: 2,
        }
    }
}

impl Default for RolesSettings {
    fn default() -> Self {
        let policy = RolePolicy::default();
        Self {
            sources: policy.sources,
            default: policy.default,
        }
    }
}

impl Default for ClerkSettings {
    fn default() -> Self {
        Self {
            api_url: "https://api.clerk.com".to_owned(),
            secret_key: None,
        }
    }
}

impl Default for PrivacySettings {
    fn default() -> Self {
        Self {
            erase_on_delete: true,
        }
    }
}

impl RolesSettings {
    pub fn policy(&self) -> RolePolicy {
        RolePolicy {
            sources: self.sources.clone(),
            default: self.default,
        }
    }
}

/// The webhook signing secrets. Never printed: `Debug` shows only how many.
#[derive(Clone, Default)]
pub struct WebhookSecrets(Vec<SecretString>);

impl WebhookSecrets {
    /// Secrets separated by spaces or commas; empty parts are skipped.
    pub fn parse(list: &str) -> Self {
        Self(
            list.split(|c: char| c.is_whitespace() || c == ',')
                .filter(|part| !part.is_empty())
                .map(|part| SecretString::from(part.to_owned()))
                .collect(),
        )
    }

    pub fn iter(&self) -> impl Iterator<Item = &SecretString> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookSecrets([{} redacted])", self.0.len())
    }
}

impl<'de> Deserialize<'de> for WebhookSecrets {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|list| Self::parse(&list))
    }
}

/// Why the settings could not be loaded: always one line that names the
/// setting (and the variable that sets it) and what is wrong, never a value.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("setting {key}{}: {problem}", env_hint(key))]
    Invalid { key: &'static str, problem: String },
    #[error("settings: {0}")]
    Unreadable(String),
}

impl SettingsError {
    /// Exit code of a process that could not start: 2 when a setting is at
    /// fault (anywhere in the error's chain), 1 for anything else, such as
    /// an unreachable service.
    pub fn exit_code(error: &(dyn std::error::Error + 'static)) -> u8 {
        let mut cause = Some(error);
        while let Some(error) = cause {
            if error.is::<SettingsError>() {
                return 2;
            }
            cause = error.source();
        }
        1
    }
}

fn env_hint(key: &str) -> String {
    let well_known = WELL_KNOWN
        .iter()
        .find(|(_, k)| *k == key)
        .map(|(var, _)| format!("{var} or "))
        .unwrap_or_default();
    let env = format!("{ENV_PREFIX}__{}", key.replace('.', "__").to_uppercase());
    format!(" ({well_known}{env})")
}

fn invalid(key: &'static str, problem: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        key,
        problem: problem.into(),
    }
}

impl Settings {
    /// Load from the process environment and `config_file` (or
    /// `clerk-sync.toml` in the working directory when there is one).
    pub fn load(config_file: Option<&Path>) -> Result<Self, SettingsError> {
        Self::load_from(config_file, &std::env::vars().collect())
    }

    /// Load with an explicit environment (what tests use).
    pub fn load_from(
        config_file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Self, SettingsError> {
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
                .map_err(|e| SettingsError::Unreadable(e.to_string()))?;
        }
        let settings: Settings = builder
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(|e| SettingsError::Unreadable(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        check_url(&self.amqp.url, "amqp.url", &["amqp", "amqps"])?;
        check_url(
            &self.database.url,
            "database.url",
            &["postgres", "postgresql"],
        )?;
        if self.amqp.shards == 0 || self.amqp.shards > 1024 {
            return Err(invalid("amqp.shards", "must be between 1 and 1024"));
        }
        let prefix_ok = !self.amqp.prefix.is_empty()
            && self.amqp.prefix.len() <= 100
            && self
                .amqp
                .prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        if !prefix_ok {
            return Err(invalid(
                "amqp.prefix",
                "must be 1 to 100 characters from A-Z, a-z, 0-9, '_', '-' and '.'",
            ));
        }
        if self.amqp.delivery_limit == 0 {
            return Err(invalid("amqp.delivery_limit", "must be at least 1"));
        }
        if self.amqp.confirm_timeout_ms == 0 {
            return Err(invalid("amqp.confirm_timeout_ms", "must be at least 1"));
        }
        if self.worker.batch_size == 0 || self.worker.batch_size > 10_000 {
            return Err(invalid("worker.batch_size", "must be between 1 and 10000"));
        }
        if self.worker.batches_in_flight == 0 || self.worker.batches_in_flight > 16 {
            return Err(invalid(
                "worker.batches_in_flight",
                "must be between 1 and 16",
            ));
        }
        if self.roles.sources.is_empty() {
            return Err(invalid(
                "roles.sources",
                "must name at least one of public_metadata, private_metadata, unsafe_metadata",
            ));
        }
        match url::Url::parse(&self.clerk.api_url) {
            Ok(parsed) if ["http", "https"].contains(&parsed.scheme()) => {}
            _ => return Err(invalid("clerk.api_url", "must be an http(s) URL")),
        }
        if self.ingest.body_limit_bytes == 0 {
            return Err(invalid("ingest.body_limit_bytes", "must be at least 1"));
        }
        Ok(())
    }

    /// The ingest cannot verify anything without a secret.
    pub fn require_webhook_secrets(&self) -> Result<&WebhookSecrets, SettingsError> {
        if self.webhook.secrets.is_empty() {
            return Err(invalid(
                "webhook.secrets",
                "missing: set it to the whsec_... signing secret of your Clerk webhook endpoint",
            ));
        }
        Ok(&self.webhook.secrets)
    }

    /// `reconcile` cannot read Clerk's users without the secret key.
    pub fn require_clerk_secret_key(&self) -> Result<&SecretString, SettingsError> {
        self.clerk.secret_key.as_ref().ok_or_else(|| {
            invalid(
                "clerk.secret_key",
                "missing: set it to the sk_... secret key of your Clerk instance",
            )
        })
    }

    /// Report a problem with one webhook secret, by position, never by value.
    pub fn invalid_webhook_secret(position: usize, count: usize, problem: &str) -> SettingsError {
        invalid(
            "webhook.secrets",
            format!("secret {position} of {count} is not a valid whsec_ secret: {problem}"),
        )
    }
}

fn check_url(url: &SecretUrl, key: &'static str, schemes: &[&str]) -> Result<(), SettingsError> {
    match url.parsed() {
        Ok(parsed) if schemes.contains(&parsed.scheme()) && parsed.host_str().is_some() => Ok(()),
        Ok(_) => Err(invalid(
            key,
            format!("must be a {} URL with a host", schemes.join("/")),
        )),
        // The parse error names no part of the URL, so it is safe to show.
        Err(e) => Err(invalid(key, format!("not a valid URL ({e})"))),
    }
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
