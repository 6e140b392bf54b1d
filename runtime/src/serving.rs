//! The answers both binaries serve beside their work: `/healthz`,
//! `/readyz` and Prometheus' `/metrics` (the paths are
//! `clerk_sync_domain::paths`).

use actix_web::HttpResponse;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};

/// `GET /healthz`: the process answers.
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 with `"status": "ready"` when `ready`, else 503 with
/// `"status": "not ready"`; beside it, `details` (the broker node in use,
/// or which service is missing and why).
pub fn readiness(ready: bool, details: Value) -> HttpResponse {
    let mut body = json!({ "status": if ready { "ready" } else { "not ready" } });
    if let (Some(body), Value::Object(details)) = (body.as_object_mut(), details) {
        body.extend(details);
    }
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// `GET /metrics`: `registry` in the OpenMetrics text format.
pub fn metrics(registry: &Registry) -> HttpResponse {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, registry) {
        Ok(()) => HttpResponse::Ok()
            .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
            .body(text),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode metrics");
            HttpResponse::InternalServerError().finish()
        }
    }
}
