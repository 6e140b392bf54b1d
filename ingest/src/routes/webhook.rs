//! `POST /api/webhooks/clerk`: verify, publish, answer 2xx once durable.
//!
//! | case                                                  | answer |
//! | ----------------------------------------------------- | ------ |
//! | verified and confirmed by RabbitMQ                    | 202    |
//! | a Svix header missing or malformed                    | 400    |
//! | signature or timestamp does not verify                | 401    |
//! | body not received within `ingest.body_timeout_ms`     | 408    |
//! | body over `ingest.body_limit_bytes` (declared or not) | 413    |
//! | no slot free (`admission`): `Retry-After`, body unread | 503   |
//! | RabbitMQ down, nack, unroutable, no confirm           | 503    |
//! | RabbitMQ blocks publishers, or too many unconfirmed: `Retry-After` | 503 |
//!
//! Every refusal over the body (408, 413, and 503 for want of a slot)
//! closes the connection: what the client still sends is never read.

use crate::admission::{Admission, BodySize, Busy};
use crate::body::{BodyError, BodyLimits};
use crate::metrics::{Metrics, ReasonLabels};
use crate::publisher::{PublishError, Publisher};
use crate::verify::{HeaderError, Rejection, SvixHeaders, Verifier};
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, ContentType, RETRY_AFTER};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use clerk_sync_domain::envelope::EnvelopeSummary;
use clerk_sync_runtime::telemetry::fields;
use clerk_sync_runtime::traces;
use serde_json::json;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::time::Instant;
use tracing::Instrument;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error("{busy}")]
    Busy { busy: Busy, retry_after_secs: u64 },
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
            Self::Body(BodyError::TooLarge(_)) => Some("body_too_large"),
            Self::Body(BodyError::TimedOut(_)) => Some("body_timeout"),
            Self::Body(BodyError::Unreadable) => Some("body_unreadable"),
            Self::Rejected(e) => Some(e.reason()),
            Self::Busy { .. } | Self::Publish(_) => None,
        }
    }
}

impl ResponseError for WebhookError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Header(_)
            | Self::Body(BodyError::Unreadable)
            | Self::Rejected(Rejection::BodyNotUtf8) => StatusCode::BAD_REQUEST,
            Self::Rejected(_) => StatusCode::UNAUTHORIZED,
            Self::Body(BodyError::TimedOut(_)) => StatusCode::REQUEST_TIMEOUT,
            Self::Body(BodyError::TooLarge(_)) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Busy { .. } | Self::Publish(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            Self::Body(_) => {
                response.force_close();
            }
            Self::Busy {
                retry_after_secs, ..
            } => {
                response
                    .insert_header((RETRY_AFTER, *retry_after_secs))
                    .force_close();
            }
            Self::Publish(e) => {
                if let Some(secs) = e.retry_after_secs() {
                    response.insert_header((RETRY_AFTER, secs));
                }
            }
            _ => {}
        }
        response.json(json!({ "error": self.to_string() }))
    }
}

pub async fn receive(
    request: HttpRequest,
    body: web::Payload,
    verifier: web::Data<Verifier>,
    publisher: web::Data<Publisher>,
    admission: web::Data<Admission>,
    limits: web::Data<BodyLimits>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, WebhookError> {
    let outcome = accept(&request, body, &verifier, &publisher, &admission, &limits).await;
    match &outcome {
        // Per event: DEBUG (the metrics count them); failures are WARN.
        Ok(queue) => tracing::debug!(queue = %queue, "event queued"),
        Err(WebhookError::Busy { busy, .. }) => {
            let reason = busy.reason();
            metrics
                .requests_shed
                .get_or_create(&ReasonLabels { reason })
                .inc();
            tracing::warn!(reason, "webhook refused: no slot free");
        }
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
    // Written once: the same bytes as serde_json's.
    outcome.map(|_| {
        HttpResponse::Accepted()
            .content_type(ContentType::json())
            .body(r#"{"status":"queued"}"#)
    })
}

async fn accept<'p>(
    request: &HttpRequest,
    body: web::Payload,
    verifier: &Verifier,
    publisher: &'p Publisher,
    admission: &Admission,
    limits: &BodyLimits,
) -> Result<&'p str, WebhookError> {
    let deadline = Instant::now() + limits.timeout;
    let received_at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let headers = SvixHeaders::from_request(request.headers())?;
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    limits.check_declared(declared)?;
    // Held until the request is answered, its publish included.
    let _slot = admission
        .admit(BodySize::of(declared))
        .map_err(|busy| WebhookError::Busy {
            busy,
            retry_after_secs: limits.retry_after_secs(),
        })?;
    let body = limits.read(body, declared, deadline).await?;
    let event = traces::span(|| tracing::info_span!("verify"))
        .in_scope(|| verifier.verify(headers, body))?;
    let summary = EnvelopeSummary::read(event.body());
    let span = tracing::Span::current();
    if let Some(user) = &summary.clerk_user_id {
        span.record(fields::CLERK_USER_ID, user.as_str());
    }
    if let Some(event_type) = &summary.event_type {
        span.record(fields::CLERK_EVENT_TYPE, event_type.as_str());
    }
    Ok(publisher
        .publish(&event, &summary, received_at_ms)
        .instrument(traces::span(|| tracing::info_span!("publish")))
        .await?)
}
