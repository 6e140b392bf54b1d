//! Svix signature verification on the raw body.
//!
//! A request is either unverified ([`SvixHeaders`] plus bytes) or a
//! [`VerifiedWebhook`]; only [`Verifier::verify`] makes the second, so an
//! unverified body cannot reach the publisher.

use actix_web::http::header::HeaderMap;
use bytes::Bytes;
use clerk_sync_runtime::settings::{SettingsError, WebhookSecrets};
pub use clerk_sync_runtime::signatures::Rejection;
use clerk_sync_runtime::signatures::{Signatures, Signed, Tolerance};

/// Longest svix-id accepted: an AMQP `message_id` holds at most 255 bytes.
const MAX_ID_LEN: usize = 255;

/// The three Svix headers, read from their `svix-*` or `webhook-*` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvixHeaders {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
}

/// A Svix header that is missing or malformed: answered with 400.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeaderError {
    #[error("missing header {0} (or {1})")]
    Missing(&'static str, &'static str),
    #[error("malformed header {0}: {1}")]
    Malformed(&'static str, &'static str),
}

impl HeaderError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing(..) => "missing_header",
            Self::Malformed(..) => "malformed_header",
        }
    }
}

impl SvixHeaders {
    pub fn from_request(headers: &HeaderMap) -> Result<Self, HeaderError> {
        let id = header(headers, ID)?;
        if id.len() > MAX_ID_LEN {
            return Err(HeaderError::Malformed("svix-id", "longer than 255 bytes"));
        }
        let timestamp = header(headers, TIMESTAMP)?;
        if !timestamp.bytes().all(|b| b.is_ascii_digit()) || timestamp.len() > 18 {
            return Err(HeaderError::Malformed(
                "svix-timestamp",
                "not a Unix time in seconds",
            ));
        }
        let signature = header(headers, SIGNATURE)?;
        Ok(Self {
            id: id.to_owned(),
            timestamp: timestamp.to_owned(),
            signature: signature.to_owned(),
        })
    }

    /// The svix-id if the request has a well-formed one, for log spans of
    /// requests that are refused before verification.
    pub fn id_of(headers: &HeaderMap) -> Option<String> {
        header(headers, ID)
            .ok()
            .filter(|id| id.len() <= MAX_ID_LEN)
            .map(str::to_owned)
    }
}

const ID: (&str, &str) = ("svix-id", "webhook-id");
const TIMESTAMP: (&str, &str) = ("svix-timestamp", "webhook-timestamp");
const SIGNATURE: (&str, &str) = ("svix-signature", "webhook-signature");

/// The `svix-*` header, else its `webhook-*` twin: present, not empty,
/// visible ASCII.
fn header<'a>(
    headers: &'a HeaderMap,
    (svix, unbranded): (&'static str, &'static str),
) -> Result<&'a str, HeaderError> {
    let value = headers
        .get(svix)
        .or_else(|| headers.get(unbranded))
        .ok_or(HeaderError::Missing(svix, unbranded))?;
    let text = value
        .to_str()
        .map_err(|_| HeaderError::Malformed(svix, "not visible ASCII"))?
        .trim();
    if text.is_empty() {
        return Err(HeaderError::Malformed(svix, "empty"));
    }
    if !text.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(HeaderError::Malformed(svix, "not visible ASCII"));
    }
    Ok(text)
}

/// A body whose signature verified, with the headers it was signed with.
#[derive(Debug)]
pub struct VerifiedWebhook {
    headers: SvixHeaders,
    body: Bytes,
}

impl VerifiedWebhook {
    pub fn headers(&self) -> &SvixHeaders {
        &self.headers
    }

    pub fn body(&self) -> &Bytes {
        &self.body
    }
}

/// Checks requests against every configured secret (rotation).
#[derive(Debug)]
pub struct Verifier {
    signatures: Signatures,
}

impl Verifier {
    pub fn new(secrets: &WebhookSecrets) -> Result<Self, SettingsError> {
        Signatures::new(secrets).map(|signatures| Self { signatures })
    }

    /// Verify `body` as received. Svix checks the timestamp (5 minutes
    /// either way) and accepts a header holding several signatures when any
    /// `v1` one matches.
    pub fn verify(&self, headers: SvixHeaders, body: Bytes) -> Result<VerifiedWebhook, Rejection> {
        let signed = Signed {
            id: &headers.id,
            timestamp: &headers.timestamp,
            signature: &headers.signature,
            body: &body,
        };
        self.signatures.check(signed, Tolerance::Recent)?;
        Ok(VerifiedWebhook { headers, body })
    }
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
