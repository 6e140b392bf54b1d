//! Svix signatures: a body checked against every configured secret (so
//! events signed before a rotation verify while the old secret is set),
//! with Svix's own verifier. The ingest checks requests as they arrive
//! (timestamp within 5 minutes); `verify-log` checks stored events, whose
//! timestamps are old by nature.

use crate::settings::{SettingsError, WebhookSecrets, WebhookSettings};
use secrecy::ExposeSecret;
use svix::webhooks::{Webhook, WebhookError};

/// Why a signature was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Rejection {
    #[error("signature does not match any configured secret")]
    SignatureMismatch,
    #[error("svix-timestamp is more than 5 minutes in the past")]
    TimestampTooOld,
    #[error("svix-timestamp is more than 5 minutes in the future")]
    TimestampInFuture,
    #[error("body is not UTF-8, so Svix cannot have signed it")]
    BodyNotUtf8,
}

impl Rejection {
    /// The metric label and log field of the rejection.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::SignatureMismatch => "signature_mismatch",
            Self::TimestampTooOld => "timestamp_too_old",
            Self::TimestampInFuture => "timestamp_in_future",
            Self::BodyNotUtf8 => "body_not_utf8",
        }
    }
}

/// Whether the timestamp must be recent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tolerance {
    /// A request arriving now: within 5 minutes either way.
    Recent,
    /// A stored event: any time.
    Any,
}

/// The Svix headers a body was signed with.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    pub id: &'a str,
    pub timestamp: &'a str,
    pub signature: &'a str,
    pub body: &'a [u8],
}

/// The configured secrets, ready to check signatures.
#[derive(Debug)]
pub struct Signatures {
    webhooks: Vec<Webhook>,
}

impl Signatures {
    /// A secret that is not a `whsec_` secret is a settings fault, named by
    /// its position, never by its value.
    pub fn new(secrets: &WebhookSecrets) -> Result<Self, SettingsError> {
        let webhooks = secrets
            .iter()
            .enumerate()
            .map(|(index, secret)| {
                Webhook::new(secret.expose_secret()).map_err(|e| {
                    let problem = match e {
                        WebhookError::InvalidSecret(_) => "not base64 after whsec_",
                        WebhookError::EmptySecret => "empty",
                        _ => "unusable",
                    };
                    WebhookSettings::invalid_secret(index + 1, secrets.len(), problem)
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { webhooks })
    }

    /// Check `signed`: a header holding several signatures verifies when
    /// any `v1` one matches any secret.
    pub fn check(&self, signed: Signed<'_>, tolerance: Tolerance) -> Result<(), Rejection> {
        let mut map = http::HeaderMap::new();
        for (name, value) in [
            ("svix-id", signed.id),
            ("svix-timestamp", signed.timestamp),
            ("svix-signature", signed.signature),
        ] {
            let value =
                http::HeaderValue::from_str(value).map_err(|_| Rejection::SignatureMismatch)?;
            map.insert(name, value);
        }
        for webhook in &self.webhooks {
            let verdict = match tolerance {
                Tolerance::Recent => webhook.verify(signed.body, &map),
                Tolerance::Any => webhook.verify_ignoring_timestamp(signed.body, &map),
            };
            match verdict {
                Ok(()) => return Ok(()),
                Err(WebhookError::TimestampTooOldError) => return Err(Rejection::TimestampTooOld),
                Err(WebhookError::FutureTimestampError) => {
                    return Err(Rejection::TimestampInFuture);
                }
                Err(WebhookError::InvalidPayload) => return Err(Rejection::BodyNotUtf8),
                Err(_) => continue,
            }
        }
        Err(Rejection::SignatureMismatch)
    }
}
