//! Webhooks signed as Svix signs them, for tests and benchmarks.

use crate::http1;
use bytes::Bytes;
use std::time::{SystemTime, UNIX_EPOCH};
use svix::webhooks::{Webhook, WebhookError};

/// The webhook secret the tests and benchmarks sign with (the ingest's
/// `webhook.secrets`, and the worker's for `worker.verify_signatures`).
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Now, in Unix seconds (as `svix-timestamp` carries it).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The three headers Svix sends with `body`, signed with `secret`.
pub fn signed_headers(
    secret: &str,
    svix_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<[(&'static str, String); 3], WebhookError> {
    let signature = Webhook::new(secret)?.sign(svix_id, timestamp, body)?;
    Ok([
        ("svix-id", svix_id.to_owned()),
        ("svix-timestamp", timestamp.to_string()),
        ("svix-signature", signature),
    ])
}

/// Sign `body` now and post it to `url`: the HTTP status, or 0 when there
/// was no answer (or the secret is not a `whsec_` secret).
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    svix_id: &str,
    body: &[u8],
) -> u16 {
    let Ok(headers) = signed_headers(secret, svix_id, unix_now(), body) else {
        return 0;
    };
    let mut request = client.post(url).body(body.to_vec());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send().await.map_or(0, |r| r.status().as_u16())
}

/// A POST of `body`, already signed (`svix-id`, `svix-timestamp` and
/// `svix-signature` as Svix sends them), to `path` of the server `client`
/// sends to, for the lean load generator.
pub fn signed_request(
    client: &http1::Client,
    path: &str,
    [id, timestamp, signature]: [&str; 3],
    body: Bytes,
) -> http1::Request {
    let headers = [
        ("content-type", "application/json"),
        ("svix-id", id),
        ("svix-timestamp", timestamp),
        ("svix-signature", signature),
    ];
    http1::post(&client.server().to_string(), path, &headers, body)
}
