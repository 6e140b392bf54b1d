//! The sections both binaries read: the webhook secrets, RabbitMQ, the
//! ingest's address (the worker's `send` posts to it), and logging; and
//! [`Unused`], for the sections of the other binary.

use super::error::SettingsError;
use crate::secret_url::SecretUrl;
use clerk_sync_domain::topology::Topology;
use secrecy::SecretString;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::net::SocketAddr;

/// A section of a shared settings file that this binary does not read:
/// accepted whatever it holds, and checked by the binary that reads it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unused;

impl<'de> Deserialize<'de> for Unused {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(deserializer).map(|_| Unused)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// `CLERK_WEBHOOK_SECRET`: one or more `whsec_...` secrets.
    pub secrets: WebhookSecrets,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmqpSettings {
    /// `AMQP_URL`.
    pub url: SecretUrl,
    /// Prefix of every exchange and queue name.
    pub prefix: String,
    /// Number of shard queues (K). Changing it moves some users to other
    /// shards: see docs/src/reference/queues.md before you do.
    pub shards: u16,
    /// Deliveries of one message before the broker dead-letters it.
    pub delivery_limit: u32,
    /// How long the ingest waits for a publisher confirm before answering 503.
    pub confirm_timeout_ms: u64,
    /// The ingest's publishes awaiting a confirm at once; more get 503 at once.
    pub max_unconfirmed: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSettings {
    /// `INGEST_LISTEN`.
    pub listen: SocketAddr,
    /// Largest body accepted; larger ones get 413.
    pub body_limit_bytes: usize,
    /// Time from the start of a webhook request's handling to the last
    /// byte of its body; past it the request gets 408.
    pub body_timeout_ms: u64,
    /// Webhook requests handled at once; more get 503 with `Retry-After`.
    pub max_in_flight: usize,
    /// Of those, requests whose body may exceed 64 KiB (declared larger,
    /// or of unknown length); more get 503 with `Retry-After`.
    pub max_large_in_flight: usize,
    /// Connections each HTTP worker thread holds at once; past it new ones
    /// wait in the kernel's backlog.
    pub max_connections: usize,
    /// How long shutdown waits for requests in flight.
    pub shutdown_timeout_secs: u64,
    /// HTTP worker threads; 0 means one per CPU.
    pub http_workers: usize,
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

impl Default for AmqpSettings {
    fn default() -> Self {
        Self {
            url: SecretUrl::new("amqp://guest:guest@127.0.0.1:5672/%2f"),
            prefix: "clerk_sync".to_owned(),
            shards: 8,
            delivery_limit: 10,
            confirm_timeout_ms: 5_000,
            max_unconfirmed: 64,
        }
    }
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            body_limit_bytes: 1024 * 1024,
            body_timeout_ms: 10_000,
            max_in_flight: 128,
            max_large_in_flight: 32,
            max_connections: 128,
            shutdown_timeout_secs: 30,
            http_workers: 0,
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

/// Check that `url` (the setting `key`) is a URL of one of `schemes` with
/// a host.
pub fn check_url(
    url: &SecretUrl,
    key: &'static str,
    schemes: &[&str],
) -> Result<(), SettingsError> {
    match url.parsed() {
        Ok(parsed) if schemes.contains(&parsed.scheme()) && parsed.host_str().is_some() => Ok(()),
        Ok(_) => Err(SettingsError::invalid(
            key,
            format!("must be a {} URL with a host", schemes.join("/")),
        )),
        // The parse error names no part of the URL, so it is safe to show.
        Err(e) => Err(SettingsError::invalid(
            key,
            format!("not a valid URL ({e})"),
        )),
    }
}

impl WebhookSettings {
    /// The ingest cannot verify anything without a secret.
    pub fn require_secrets(&self) -> Result<&WebhookSecrets, SettingsError> {
        if self.secrets.is_empty() {
            return Err(SettingsError::invalid(
                "webhook.secrets",
                "missing: set it to the whsec_... signing secret of your Clerk webhook endpoint",
            ));
        }
        Ok(&self.secrets)
    }

    /// The secrets, which `setting` (on) needs: missing, the error says so
    /// and how to do without.
    pub fn secrets_for(&self, setting: &str) -> Result<&WebhookSecrets, SettingsError> {
        if self.secrets.is_empty() {
            return Err(SettingsError::invalid(
                "webhook.secrets",
                format!(
                    "missing: {setting} (on by default) checks each message's Svix signature \
                     against it; set it to the whsec_... secret of your Clerk webhook endpoint, \
                     or turn {setting} off"
                ),
            ));
        }
        Ok(&self.secrets)
    }

    /// Report a problem with one secret, by position, never by value.
    pub fn invalid_secret(position: usize, count: usize, problem: &str) -> SettingsError {
        SettingsError::invalid(
            "webhook.secrets",
            format!("secret {position} of {count} is not a valid whsec_ secret: {problem}"),
        )
    }
}

impl AmqpSettings {
    /// The topology these settings name: the prefix and the shard count.
    pub fn topology(&self) -> Topology {
        Topology::new(self.prefix.clone(), self.shards)
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        // One node's URL, or several separated by commas.
        let nodes = self.url.nodes();
        if nodes.is_empty() {
            return Err(SettingsError::invalid("amqp.url", "is empty"));
        }
        for node in &nodes {
            check_url(node, "amqp.url", &["amqp", "amqps"])?;
            // Its CA file (`cacertfile`) read now: a missing one is a setting's fault.
            crate::amqp_target::target(node)
                .map_err(|e| SettingsError::invalid("amqp.url", e.to_string()))?;
        }
        if self.shards == 0 || self.shards > 1024 {
            return Err(SettingsError::invalid(
                "amqp.shards",
                "must be between 1 and 1024",
            ));
        }
        let prefix_ok = !self.prefix.is_empty()
            && self.prefix.len() <= 100
            && self
                .prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        if !prefix_ok {
            return Err(SettingsError::invalid(
                "amqp.prefix",
                "must be 1 to 100 characters from A-Z, a-z, 0-9, '_', '-' and '.'",
            ));
        }
        if self.delivery_limit == 0 {
            return Err(SettingsError::invalid(
                "amqp.delivery_limit",
                "must be at least 1",
            ));
        }
        if self.confirm_timeout_ms == 0 {
            return Err(SettingsError::invalid(
                "amqp.confirm_timeout_ms",
                "must be at least 1",
            ));
        }
        if self.max_unconfirmed == 0 {
            return Err(SettingsError::invalid(
                "amqp.max_unconfirmed",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

impl IngestSettings {
    /// The values only the ingest uses (the worker reads just `listen`).
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.body_limit_bytes == 0 {
            return Err(SettingsError::invalid(
                "ingest.body_limit_bytes",
                "must be at least 1",
            ));
        }
        if self.body_timeout_ms == 0 {
            return Err(SettingsError::invalid(
                "ingest.body_timeout_ms",
                "must be at least 1",
            ));
        }
        if self.max_in_flight == 0 {
            return Err(SettingsError::invalid(
                "ingest.max_in_flight",
                "must be at least 1",
            ));
        }
        if self.max_large_in_flight == 0 || self.max_large_in_flight > self.max_in_flight {
            return Err(SettingsError::invalid(
                "ingest.max_large_in_flight",
                "must be between 1 and ingest.max_in_flight",
            ));
        }
        if self.max_connections == 0 {
            return Err(SettingsError::invalid(
                "ingest.max_connections",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
