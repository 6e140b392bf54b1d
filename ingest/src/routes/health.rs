//! `GET /readyz`: ready while RabbitMQ is usable, naming the node in use
//! or why there is none (`/healthz` is `clerk_sync_runtime::serving::health`).

use crate::publisher::Publisher;
use actix_web::{HttpResponse, web};
use clerk_sync_runtime::serving;

pub async fn readyz(publisher: web::Data<Publisher>) -> HttpResponse {
    serving::readiness(publisher.ready(), publisher.readiness())
}
