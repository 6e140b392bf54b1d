//! `GET /healthz` (the process answers) and `GET /readyz` (RabbitMQ usable).

use crate::publisher::Publisher;
use actix_web::{HttpResponse, web};
use serde_json::json;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

pub async fn readyz(publisher: web::Data<Publisher>) -> HttpResponse {
    if publisher.ready() {
        HttpResponse::Ok().json(json!({ "status": "ready" }))
    } else {
        HttpResponse::ServiceUnavailable().json(json!({
            "status": "not ready",
            "reason": "RabbitMQ connection is down"
        }))
    }
}
