//! `GET /metrics`: Prometheus text exposition.

use crate::metrics::Metrics;
use actix_web::{HttpResponse, web};
use clerk_sync_runtime::serving;

pub async fn metrics(metrics: web::Data<Metrics>) -> HttpResponse {
    serving::metrics(metrics.registry())
}
