//! The worker's small HTTP server: `/metrics`, `/healthz`, `/readyz`.

use crate::metrics::Metrics;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;

async fn metrics(metrics: web::Data<Metrics>) -> HttpResponse {
    match metrics.encode() {
        Ok(text) => HttpResponse::Ok()
            .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
            .body(text),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(metrics: web::Data<Metrics>) -> HttpResponse {
    if metrics.ready() {
        HttpResponse::Ok().json(serde_json::json!({ "status": "ready" }))
    } else {
        HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "status": "not ready",
            "database": metrics.database_connected.get() == 1,
            "broker": metrics.broker_connected.get() == 1,
        }))
    }
}

/// Bind now (so a bad `worker.listen` fails start-up) and serve until dropped.
pub fn serve(listen: SocketAddr, state: Arc<Metrics>) -> anyhow::Result<actix_web::dev::Server> {
    let state = web::Data::from(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/metrics", web::get().to(metrics))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
    })
    .workers(1)
    .disable_signals()
    .bind(listen)
    .with_context(|| format!("setting worker.listen: cannot listen on {listen}"))?
    .run();
    Ok(server)
}
