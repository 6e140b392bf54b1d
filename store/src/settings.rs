//! The worker's settings (the service and the operators' commands): the
//! shared sections (`clerk_sync_runtime::settings`) and its own, loaded and
//! checked together. See docs/src/reference/settings.md for every key.

use clerk_sync_domain::roles::{DefaultRole, MetadataSource, RolePolicy};
use clerk_sync_runtime::secret_url::SecretUrl;
use clerk_sync_runtime::settings::{
    AmqpSettings, IngestSettings, LogSettings, Sections, SettingsError, WebhookSettings, check_url,
};
use secrecy::SecretString;
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The secrets `send` signs with and `verify-log` checks against.
    pub webhook: WebhookSettings,
    pub database: DatabaseSettings,
    pub amqp: AmqpSettings,
    /// Where `send` posts by default.
    pub ingest: IngestSettings,
    pub worker: WorkerSettings,
    pub roles: RolesSettings,
    pub clerk: ClerkSettings,
    pub privacy: PrivacySettings,
    pub status: StatusSettings,
    pub log: LogSettings,
}

impl Settings {
    /// `reconcile` cannot read Clerk's users without the secret key.
    pub fn require_clerk_secret_key(&self) -> Result<&SecretString, SettingsError> {
        self.clerk.secret_key.as_ref().ok_or_else(|| {
            SettingsError::invalid(
                "clerk.secret_key",
                "missing: set it to the sk_... secret key of your Clerk instance",
            )
        })
    }
}

impl Sections for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.amqp.validate()?;
        if let Some(management) = &self.status.management_url {
            for node in management.nodes() {
                check_url(&node, "status.management_url", &["http", "https"])?;
            }
        }
        check_url(
            &self.database.url,
            "database.url",
            &["postgres", "postgresql"],
        )?;
        crate::repository::sslmode::TlsRequest::of(&self.database.url)?;
        if self.worker.batch_size == 0 || self.worker.batch_size > 10_000 {
            return Err(SettingsError::invalid(
                "worker.batch_size",
                "must be between 1 and 10000",
            ));
        }
        if self.worker.batches_in_flight == 0 || self.worker.batches_in_flight > 16 {
            return Err(SettingsError::invalid(
                "worker.batches_in_flight",
                "must be between 1 and 16",
            ));
        }
        if self.roles.sources.is_empty() {
            return Err(SettingsError::invalid(
                "roles.sources",
                "must name at least one of public_metadata, private_metadata, unsafe_metadata",
            ));
        }
        check_clerk_api_url(&self.clerk.api_url)
    }
}

/// `clerk.api_url` carries the `sk_` key in every request: https only,
/// except to this machine (a test double, or a local proxy).
fn check_clerk_api_url(api_url: &str) -> Result<(), SettingsError> {
    let parsed = url::Url::parse(api_url)
        .map_err(|e| SettingsError::invalid("clerk.api_url", format!("not a valid URL ({e})")))?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(SettingsError::invalid(
            "clerk.api_url",
            "must be https: http would send the secret key in clear (http is only allowed to localhost)",
        )),
        _ => Err(SettingsError::invalid(
            "clerk.api_url",
            "must be an https URL with a host",
        )),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `DATABASE_URL`.
    pub url: SecretUrl,
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
    /// Whether `run` migrates the database before consuming. False where a
    /// `clerk-sync-worker migrate` (as the migration role) runs first and
    /// the worker's role holds no DDL rights: `run` then waits until every
    /// migration is applied.
    pub migrate_on_start: bool,
    /// Whether `run` checks each message's stored Svix signature against
    /// `webhook.secrets` before applying it (not its timestamp: messages
    /// wait in queues), logging a message that fails `failed`. Guards
    /// against events forged by anyone who can publish to the queues.
    pub verify_signatures: bool,
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
    /// Requests `reconcile` may send to the Backend API per 10 s, paced
    /// evenly (0: no budget). Clerk allows about 100 per 10 s on a
    /// development instance and 1,000 in production, shared with the app.
    pub request_budget: u32,
}

/// A fifth of a development instance's limit: the app keeps the rest.
pub const DEFAULT_REQUEST_BUDGET: u32 = 20;

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
    /// RabbitMQ's management API (`http://user:password@host:15672`; several
    /// nodes' URLs separated by commas, the first that answers is used), for
    /// each node's queue leaders and members. Unset: not shown.
    pub management_url: Option<SecretUrl>,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretUrl::new("postgres://postgres@127.0.0.1:5432/clerk_sync"),
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
            migrate_on_start: true,
            verify_signatures: true,
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
            request_budget: DEFAULT_REQUEST_BUDGET,
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

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
