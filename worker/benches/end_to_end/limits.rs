//! The load as requests (signed as Svix signs them), and the machine's
//! limits it is measured against: confirmed publishes straight into
//! RabbitMQ (what the ingest does, without HTTP), and the same rows written
//! straight through diesel-async (what the worker does, without RabbitMQ
//! and the decision).

use crate::common::{self, limit::raw_limit, load::Event, measure};
use crate::drive::drive_local;
use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use clerk_sync_domain::envelope::EnvelopeSummary;
use clerk_sync_domain::paths;
use clerk_sync_domain::topology::Topology;
use clerk_sync_ingest::verify::{SvixHeaders, VerifiedWebhook, Verifier};
use clerk_sync_ingest::{broker::Broker, metrics::Metrics, publisher::Publishers};
use clerk_sync_runtime::amqp;
use clerk_sync_runtime::secret_url::SecretUrl;
use clerk_sync_runtime::settings::{AmqpSettings, WebhookSecrets};
use clerk_sync_store::repository::database;
use clerk_sync_store::settings::Settings;
use clerk_sync_testkit::http1;
use clerk_sync_testkit::webhook::{self, SECRET, unix_now};
use std::sync::Arc;

/// One event as Svix sends it: its headers and body.
pub struct Signed {
    pub headers: SvixHeaders,
    pub body: Bytes,
}

/// Every event signed now (the ingest accepts 5 minutes either way).
pub fn sign(events: &[Event]) -> Result<Vec<Signed>> {
    let now = unix_now();
    events
        .iter()
        .map(|event| {
            let [(_, id), (_, timestamp), (_, signature)] =
                webhook::signed_headers(SECRET, &event.svix_id, now, &event.body)?;
            Ok(Signed {
                headers: SvixHeaders {
                    id,
                    timestamp,
                    signature,
                },
                body: Bytes::from(event.body.clone()),
            })
        })
        .collect()
}

/// Every signed event as a request to the ingest `client` sends to.
pub fn requests(client: &http1::Client, signed: Vec<Signed>) -> Vec<http1::Request> {
    let request = |Signed { headers, body }: Signed| {
        let signed = [&headers.id, &headers.timestamp, &headers.signature].map(String::as_str);
        webhook::signed_request(client, paths::WEBHOOK, signed, body)
    };
    signed.into_iter().map(request).collect()
}

/// Send one request; Ok only for a 2xx answer.
pub async fn post(client: &http1::Client, request: &http1::Request) -> Result<(), String> {
    client.send(request).await?.success()
}

/// Every event published as the ingest publishes it (verified beforehand),
/// `in_flight` awaiting their confirms at a time, into a topology of its
/// own, removed afterwards: publishes per second, and the CPU report.
pub async fn confirmed_publishes(events: &[Event], in_flight: usize) -> Result<(f64, String)> {
    let verifier = Verifier::new(&WebhookSecrets::parse(SECRET))?;
    let verified: Vec<(VerifiedWebhook, EnvelopeSummary)> = sign(events)?
        .into_iter()
        .map(|signed| {
            let verified = verifier
                .verify(signed.headers, signed.body)
                .map_err(|e| anyhow!("{e:?}"))?;
            let summary = EnvelopeSummary::read(verified.body());
            Ok((verified, summary))
        })
        .collect::<Result<_>>()?;
    let verified = Arc::new(verified);
    let settings = AmqpSettings {
        prefix: common::unique("bench_limit"),
        url: SecretUrl::new(common::AMQP_URL),
        ..Default::default()
    };
    let broker = Broker::start(&settings, Arc::new(Metrics::new())).await?;
    // The ingest's publisher lives on its thread: driven there.
    let local = tokio::task::LocalSet::new();
    let (before, sent, after) = local
        .run_until(async {
            let publisher = Publishers::new(&broker).on_this_thread();
            broker.opened(1).await;
            let before = measure::cpu_snapshot(&[std::process::id()]);
            let sent = drive_local(events.len(), in_flight, move |item| {
                let (verified, publisher) = (verified.clone(), publisher.clone());
                async move {
                    let (event, summary) = &verified[item];
                    let published =
                        publisher.publish(event, summary, crate::common::unix_ms() as u64);
                    published.await.map(drop).map_err(|e| e.to_string())
                }
            })
            .await;
            let after = measure::cpu_snapshot(&[std::process::id()]);
            (before, sent, after)
        })
        .await;
    let sent = sent?;
    broker.close().await;
    let admin = amqp::connect(&settings.url, "bench-limit").await?;
    let topology = Topology::new(settings.prefix.clone(), settings.shards);
    let deleted = amqp::delete_topology(&admin, &topology).await;
    let _ = admin.close(200, "measured".into()).await;
    sent.check("confirmed publishes")?;
    deleted.context("removing the limit's topology")?;
    let cpu = measure::cpu_report(
        "benchmark",
        before,
        after,
        sent.ok as f64,
        sent.elapsed.as_secs_f64(),
    );
    Ok((sent.rate(), cpu))
}

/// The rows the worker writes for `events`, in batches of its default
/// size, straight through diesel-async; the tables are emptied afterwards.
pub async fn rows_written(db: &SecretUrl, events: &[Event]) -> Result<(f64, String)> {
    let mut connection = database::connect(db).await?;
    let measured = raw_limit(
        &mut connection,
        events,
        Settings::default().worker.batch_size,
    )
    .await?;
    common::reset(&mut connection).await?;
    Ok(measured)
}
