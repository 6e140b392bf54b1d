//! `clerk-sync-worker run`: serve `/readyz` and `/metrics`, migrate (waiting
//! for PostgreSQL and RabbitMQ if they do not answer yet), then consume
//! until SIGTERM/SIGINT; then finish and acknowledge the batch in hand, and
//! exit 0.

use crate::migrate;
use crate::serving::http;
use crate::serving::instance::Instance;
use crate::serving::metrics::Metrics;
use crate::taking::channels::Consumer;
use clerk_sync_store::apply::Rules;
use clerk_sync_store::settings::Settings;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    // Listen for SIGTERM from the start: as a container's PID 1 the process
    // would otherwise ignore it while migrating.
    let rules = Arc::new(Rules::of_service(&settings)?);
    let stop = CancellationToken::new();
    let signals = tokio::spawn(stop_on_signal(stop.clone()));
    let metrics = Arc::new(Metrics::new());
    let listener = http::bind(settings.worker.listen)?;
    let instance = Instance::new(listener.local_addr()?);
    let server = http::serve(listener, metrics.clone())?;
    let server_handle = server.handle();
    let server_task = tokio::spawn(server);
    tracing::info!(
        worker = %instance.name,
        metrics = %instance.metrics_url(),
        shards = settings.amqp.shards,
        batch_size = settings.worker.batch_size,
        "clerk-sync-worker running; metrics, /healthz and /readyz at {}",
        instance.metrics_url().trim_end_matches("/metrics"),
    );
    let result = tokio::select! {
        migrated = migrate::run_when_reachable(&settings, &metrics) => migrated,
        () = stop.cancelled() => {
            // The migration's transaction rolls back with the connection.
            tracing::info!("stopped before consuming anything");
            Ok(())
        }
    };
    let result = match result {
        Ok(()) if !stop.is_cancelled() => {
            Consumer::new(settings, rules, instance, metrics, stop.clone())
                .run()
                .await
        }
        other => other,
    };
    stop.cancel();
    signals.abort();
    server_handle.stop(true).await;
    let _ = server_task.await;
    tracing::info!("clerk-sync-worker stopped");
    result
}

async fn stop_on_signal(stop: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("stop requested: finishing the batch in hand");
    stop.cancel();
}
