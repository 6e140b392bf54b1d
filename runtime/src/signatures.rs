//! Svix signatures: a body checked against every configured secret (so
//! events signed before a rotation verify while the old secret is set),
//! exactly as Svix's verifier checks them (its rules, including which
//! header values and timestamps it takes, are kept and tested against it),
//! with aws-lc's HMAC-SHA256, which uses the CPU's SHA instructions: Svix's
//! crate hashes in portable code, and that was about 45% of the ingest's
//! instructions per request (callgrind, see docs/src/benchmarks.md, "End to end"). The
//! ingest checks requests as they arrive (timestamp within 5 minutes);
//! the worker and `verify-log` check stored events, whose timestamps are
//! old by nature.

use crate::settings::{SettingsError, WebhookSecrets, WebhookSettings};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::ExposeSecret;
use std::time::{SystemTime, UNIX_EPOCH};

/// How far a request's `svix-timestamp` may be from now, either way.
const TOLERANCE_SECS: u64 = 5 * 60;

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
pub struct Signatures {
    keys: Vec<hmac::Key>,
}

impl std::fmt::Debug for Signatures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signatures {{ secrets: {} }}", self.keys.len())
    }
}

impl Signatures {
    /// A secret that is not a `whsec_` secret is a settings fault, named by
    /// its position, never by its value.
    pub fn new(secrets: &WebhookSecrets) -> Result<Self, SettingsError> {
        let keys = secrets
            .iter()
            .enumerate()
            .map(|(index, secret)| {
                let secret = secret.expose_secret();
                let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
                let problem = match BASE64.decode(encoded) {
                    Ok(key) if !key.is_empty() => {
                        return Ok(hmac::Key::new(hmac::HMAC_SHA256, &key));
                    }
                    Ok(_) => "empty",
                    Err(_) => "not base64 after whsec_",
                };
                Err(WebhookSettings::invalid_secret(
                    index + 1,
                    secrets.len(),
                    problem,
                ))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { keys })
    }

    /// Check `signed`: a header holding several signatures verifies when
    /// any `v1` one matches any secret.
    pub fn check(&self, signed: Signed<'_>, tolerance: Tolerance) -> Result<(), Rejection> {
        // What Svix's verifier refuses before it compares anything: a header
        // value HTTP cannot carry, a timestamp that is not an integer (or,
        // when it must be recent, is before 1970).
        let carried = [signed.id, signed.timestamp, signed.signature]
            .iter()
            .all(|value| value.bytes().all(|b| b == b'\t' || (32..127).contains(&b)));
        let Ok(timestamp) = signed.timestamp.parse::<i64>() else {
            return Err(Rejection::SignatureMismatch);
        };
        if !carried || self.keys.is_empty() {
            return Err(Rejection::SignatureMismatch);
        }
        if tolerance == Tolerance::Recent {
            recent(timestamp)?;
        }
        if std::str::from_utf8(signed.body).is_err() {
            return Err(Rejection::BodyNotUtf8);
        }
        // Svix signs "{id}.{timestamp}.{body}", the timestamp as parsed.
        let timestamp = timestamp.to_string();
        let offered: Vec<&str> = signed
            .signature
            .split(' ')
            .filter_map(|entry| entry.split_once(','))
            .filter(|(version, _)| *version == "v1")
            .map(|(_, signature)| signature)
            .collect();
        for key in &self.keys {
            let mut context = hmac::Context::with_key(key);
            for part in [signed.id.as_bytes(), b".", timestamp.as_bytes(), b"."] {
                context.update(part);
            }
            context.update(signed.body);
            let expected = BASE64.encode(context.sign());
            if offered.iter().any(|offered| same(offered, &expected)) {
                return Ok(());
            }
        }
        Err(Rejection::SignatureMismatch)
    }
}

/// Within [`TOLERANCE_SECS`] of now; a timestamp before 1970 (or a clock
/// before it) is no signature at all, as for Svix.
fn recent(timestamp: i64) -> Result<(), Rejection> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Rejection::SignatureMismatch)?
        .as_secs();
    let timestamp = u64::try_from(timestamp).map_err(|_| Rejection::SignatureMismatch)?;
    if timestamp.saturating_add(TOLERANCE_SECS) < now {
        Err(Rejection::TimestampTooOld)
    } else if timestamp > now.saturating_add(TOLERANCE_SECS) {
        Err(Rejection::TimestampInFuture)
    } else {
        Ok(())
    }
}

/// Equal, in a time that does not depend on where they differ.
fn same(offered: &str, expected: &str) -> bool {
    offered.len() == expected.len()
        && offered
            .bytes()
            .zip(expected.bytes())
            .fold(0, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
#[path = "signatures_tests.rs"]
mod tests;
