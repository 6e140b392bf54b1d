//! `POST /api/webhooks/clerk`: verify, publish, answer 2xx once durable.
//!
//! | case                                        | answer |
//! | ------------------------------------------- | ------ |
//! | verified and confirmed by RabbitMQ          | 202    |
//! | a Svix header missing or malformed          | 400    |
//! | signature or timestamp does not verify      | 401    |
//! | body over `ingest.body_limit_bytes`         | 413    |
//! | RabbitMQ down, nack, unroutable, no confirm | 503    |

use crate::metrics::{Metrics, ReasonLabels};
use crate::publisher::{PublishError, Publisher};
use crate::verify::{HeaderError, Rejection, SvixHeaders, Verifier};
use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use bytes::{Bytes, BytesMut};
use clerk_sync_domain::envelope::EnvelopeSummary;
use clerk_sync_runtime::telemetry::fields;
use futures::StreamExt;
use serde_json::json;
use std::time::{SystemTime, UNIX_EPOCH};

/// The largest body the route accepts (`ingest.body_limit_bytes`).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error("body is larger than the limit of {0} bytes")]
    TooLarge(usize),
    #[error("could not read the request body")]
    BodyUnreadable,
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

impl WebhookError {
    /// The `reason` label of the verification-failure metric, if it is one.
    fn verification_reason(&self) -> Option<&'static str> {
        match self {
            Self::Header(e) => Some(e.reason()),
            Self::TooLarge(_) => Some("body_too_large"),
            Self::BodyUnreadable => Some("body_unreadable"),
            Self::Rejected(e) => Some(e.reason()),
            Self::Publish(_) => None,
        }
    }
}

impl ResponseError for WebhookError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Header(_) | Self::BodyUnreadable | Self::Rejected(Rejection::BodyNotUtf8) => {
                StatusCode::BAD_REQUEST
            }
            Self::Rejected(_) => StatusCode::UNAUTHORIZED,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Publish(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(json!({ "error": self.to_string() }))
    }
}

pub async fn receive(
    request: HttpRequest,
    body: web::Payload,
    verifier: web::Data<Verifier>,
    publisher: web::Data<Publisher>,
    limit: web::Data<BodyLimit>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, WebhookError> {
    let outcome = accept(&request, body, &verifier, &publisher, limit.0).await;
    match &outcome {
        Ok(queue) => tracing::info!(queue = %queue, "event queued"),
        Err(e) => {
            if let Some(reason) = e.verification_reason() {
                metrics
                    .verification_failures
                    .get_or_create(&ReasonLabels { reason })
                    .inc();
                tracing::warn!(reason, error = %e, "webhook refused");
            } else {
                tracing::error!(error = %e, "webhook not queued");
            }
        }
    }
    outcome.map(|_| HttpResponse::Accepted().json(json!({ "status": "queued" })))
}

async fn accept(
    request: &HttpRequest,
    body: web::Payload,
    verifier: &Verifier,
    publisher: &Publisher,
    limit: usize,
) -> Result<String, WebhookError> {
    let received_at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let headers = SvixHeaders::from_request(request.headers())?;
    let body = read_body(request, body, limit).await?;
    let event = verifier.verify(headers, body)?;
    let summary = EnvelopeSummary::read(event.body());
    let span = tracing::Span::current();
    if let Some(user) = &summary.clerk_user_id {
        span.record(fields::CLERK_USER_ID, user.as_str());
    }
    if let Some(event_type) = &summary.event_type {
        span.record(fields::CLERK_EVENT_TYPE, event_type.as_str());
    }
    Ok(publisher.publish(&event, &summary, received_at_ms).await?)
}

/// The body as received, refused as soon as it is known to exceed `limit`.
async fn read_body(
    request: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Bytes, WebhookError> {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(WebhookError::TooLarge(limit));
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| WebhookError::BodyUnreadable)?;
        if body.len() + chunk.len() > limit {
            return Err(WebhookError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
