//! Building and running the ingest: `Application::build` declares the
//! topology, binds the listener (port 0 in tests), starts the HTTP worker
//! threads and waits for their RabbitMQ connections; `run_until_stopped`
//! serves until SIGTERM/SIGINT (or a [`ServerHandle`] stop), then lets
//! requests in flight finish, confirms included (each thread's connection
//! ends with its thread).

use crate::admission::Admission;
use crate::body::BodyLimits;
use crate::broker::Broker;
use crate::connection_limits;
use crate::metrics::{Metrics, RequestLabels};
use crate::publisher::Publishers;
use crate::routes;
use crate::settings::Settings;
use crate::verify::{SvixHeaders, Verifier};
use actix_web::dev::{ServerHandle, Service};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use clerk_sync_domain::paths;
use clerk_sync_runtime::serving;
use clerk_sync_runtime::telemetry::fields;
use clerk_sync_runtime::traces;
use prometheus_client::metrics::gauge::Gauge;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;
use tracing::field::Empty;

pub struct Application {
    port: u16,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    handle: ServerHandle,
    broker: Broker,
}

impl Application {
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let verifier = web::Data::new(Verifier::new(settings.webhook.require_secrets()?)?);
        let metrics = Arc::new(Metrics::new());
        let broker = Broker::start(&settings.amqp, metrics.clone()).await?;
        let publishers = Publishers::new(&broker);
        let metrics = web::Data::from(metrics);
        let limits = web::Data::new(BodyLimits {
            max_bytes: settings.ingest.body_limit_bytes,
            timeout: Duration::from_millis(settings.ingest.body_timeout_ms),
        });
        // Shared by every HTTP worker thread.
        let admission = web::Data::new(Admission::new(
            settings.ingest.max_in_flight,
            settings.ingest.max_large_in_flight,
        ));

        let listen = settings.ingest.listen;
        let listener = TcpListener::bind(listen).with_context(|| {
            format!("setting ingest.listen (INGEST_LISTEN): cannot listen on {listen}")
        })?;
        let port = listener.local_addr()?.port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(verifier.clone())
                // Each HTTP worker thread publishes over a connection of its own.
                .app_data(web::Data::new(publishers.on_this_thread()))
                .app_data(metrics.clone())
                .app_data(limits.clone())
                .app_data(admission.clone())
                .wrap_fn(|request, service| {
                    let metrics = request.app_data::<web::Data<Metrics>>().cloned();
                    let span = tracing::info_span!(
                        "http.request",
                        http.method = %request.method(),
                        http.route = Empty,
                        http.status = Empty,
                        { fields::SVIX_ID } = Empty,
                        { fields::CLERK_USER_ID } = Empty,
                        { fields::CLERK_EVENT_TYPE } = Empty,
                    );
                    if let Some(id) = SvixHeaders::id_of(request.headers()) {
                        span.record(fields::SVIX_ID, id.as_str());
                    }
                    // A caller's own trace (W3C `traceparent`) goes on here.
                    if traces::enabled() {
                        traces::set_parent(
                            &span,
                            traces::context_from(|name| {
                                let value = request.headers().get(name)?.to_str().ok()?;
                                Some(value.to_owned())
                            }),
                        );
                    }
                    let in_flight = metrics
                        .as_ref()
                        .map(|m| InFlight::enter(&m.requests_in_flight));
                    let started = Instant::now();
                    let response = span.in_scope(|| service.call(request));
                    async move {
                        let response = response.await?;
                        drop(in_flight);
                        let route = response
                            .request()
                            .match_pattern()
                            .unwrap_or_else(|| "unmatched".to_owned());
                        let status = response.status().as_u16();
                        // On the span only for exported traces: the log
                        // formats a span field on every record, and at INFO
                        // nothing is logged in the span after this point.
                        if traces::enabled() {
                            let span = tracing::Span::current();
                            span.record("http.route", route.as_str());
                            span.record("http.status", status);
                        }
                        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
                        tracing::debug!(http.route = %route, http.status = status, latency_ms, "request answered");
                        if let Some(metrics) = metrics {
                            metrics
                                .requests
                                .get_or_create(&RequestLabels { route, status })
                                .inc();
                        }
                        Ok(response)
                    }
                    .instrument(span)
                })
                .route(paths::WEBHOOK, web::post().to(routes::webhook::receive))
                .route(paths::HEALTH, web::get().to(serving::health))
                .route(paths::READY, web::get().to(routes::health::readyz))
                .route(paths::METRICS, web::get().to(routes::metrics::metrics))
        })
        .max_connections(settings.ingest.max_connections)
        .client_request_timeout(connection_limits::CLIENT_REQUEST_TIMEOUT)
        .client_disconnect_timeout(connection_limits::CLIENT_DISCONNECT_TIMEOUT)
        .keep_alive(connection_limits::KEEP_ALIVE)
        .listen(listener)?
        .shutdown_timeout(settings.ingest.shutdown_timeout_secs);
        // Each HTTP worker thread has its own RabbitMQ connection.
        let threads = match settings.ingest.http_workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let server = server.workers(threads);
        let server = server.run();
        let handle = server.handle();
        // Polled from now on: the HTTP worker threads start and open their
        // connections, which `opened` waits for.
        let server = tokio::spawn(server);
        broker.opened(threads).await;
        tracing::info!(
            listen = %listen,
            port,
            amqp = %settings.amqp.url,
            prefix = %settings.amqp.prefix,
            shards = settings.amqp.shards,
            secrets = settings.webhook.secrets.len(),
            max_in_flight = settings.ingest.max_in_flight,
            max_large_in_flight = settings.ingest.max_large_in_flight,
            max_connections = settings.ingest.max_connections,
            "clerk-sync-ingest ready"
        );
        Ok(Self {
            port,
            server,
            handle,
            broker,
        })
    }

    /// The port actually bound (useful when `ingest.listen` asked for 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server as SIGTERM would.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.server
            .await
            .context("HTTP server task failed")?
            .context("HTTP server failed")?;
        tracing::info!("HTTP server stopped");
        self.broker.close().await;
        Ok(())
    }
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// Counts a request as in flight until dropped.
struct InFlight(Gauge);

impl InFlight {
    fn enter(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}
