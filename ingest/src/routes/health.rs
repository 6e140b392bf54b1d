//! `GET /readyz`: ready while RabbitMQ is usable (`/healthz` is
//! `clerk_sync_runtime::serving::health`).

use crate::publisher::Publisher;
use actix_web::{HttpResponse, web};
use clerk_sync_runtime::serving;
use serde_json::json;

pub async fn readyz(publisher: web::Data<Publisher>) -> HttpResponse {
    serving::readiness(
        publisher.ready(),
        json!({ "reason": "RabbitMQ connection is down" }),
    )
}
