//! The worker's small HTTP server: `/metrics`, `/healthz`, `/readyz`, on
//! `worker.listen` when it is set, else on the first free port of
//! [`DEFAULT_PORTS`], so that any number of workers run on one host with no
//! setting (the URL each took is logged and shown by `status`).

use crate::serving::metrics::Metrics;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use clerk_sync_domain::paths;
use clerk_sync_runtime::serving;
use std::net::{SocketAddr, TcpListener};
use std::ops::RangeInclusive;
use std::sync::Arc;

/// The ports tried in order, on every interface, when `worker.listen` is
/// not set; when all are taken, any free port.
pub const DEFAULT_PORTS: RangeInclusive<u16> = 9090..=9099;

async fn metrics(metrics: web::Data<Metrics>) -> HttpResponse {
    serving::metrics(metrics.registry())
}

async fn readyz(metrics: web::Data<Metrics>) -> HttpResponse {
    serving::readiness(metrics.ready(), metrics.readiness())
}

/// The addresses to try, in order: the one set, or else the default ports
/// on every interface and then any free port.
pub fn candidates(listen: Option<SocketAddr>) -> Vec<SocketAddr> {
    match listen {
        Some(address) => vec![address],
        None => DEFAULT_PORTS
            .chain([0])
            .map(|port| SocketAddr::from(([0, 0, 0, 0], port)))
            .collect(),
    }
}

/// Bind now, so that an address set in `worker.listen` that is taken or
/// not this host's fails start-up.
pub fn bind(listen: Option<SocketAddr>) -> anyhow::Result<TcpListener> {
    let mut failure = None;
    for address in candidates(listen) {
        match TcpListener::bind(address) {
            Ok(listener) => return Ok(listener),
            Err(e) => failure = Some((address, e)),
        }
    }
    let (address, error) = failure.context("no address to listen on")?;
    Err(error).with_context(|| match listen {
        Some(_) => format!("setting worker.listen: cannot listen on {address}"),
        None => format!(
            "cannot listen on any of the ports {}-{} nor on a free one; set worker.listen",
            DEFAULT_PORTS.start(),
            DEFAULT_PORTS.end()
        ),
    })
}

/// Serve on `listener` until dropped.
pub fn serve(listener: TcpListener, state: Arc<Metrics>) -> anyhow::Result<actix_web::dev::Server> {
    let state = web::Data::from(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route(paths::METRICS, web::get().to(metrics))
            .route(paths::HEALTH, web::get().to(serving::health))
            .route(paths::READY, web::get().to(readyz))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .context("cannot serve HTTP")?
    .run();
    Ok(server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_address_is_the_only_one_tried() {
        let set = SocketAddr::from(([127, 0, 0, 1], 9999));
        assert_eq!(candidates(Some(set)), [set]);
    }

    #[test]
    fn unset_tries_the_default_ports_in_order_then_any() {
        let ports: Vec<u16> = candidates(None).iter().map(SocketAddr::port).collect();
        assert_eq!(
            ports,
            [
                9090, 9091, 9092, 9093, 9094, 9095, 9096, 9097, 9098, 9099, 0
            ]
        );
        assert!(candidates(None).iter().all(|a| a.ip().is_unspecified()));
    }
}
