//! Load benchmark of the ingest against a live RabbitMQ (`AMQP_URL`, default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`): how close does the HTTP path get
//! to the raw limit of confirmed publishes?
//!
//! * A, raw limit: the library's `Broker` + `Publisher` in process, 64 tasks
//!   each publishing a `user.updated` event (~2 KB, verified before the timed
//!   loop) and awaiting its publisher confirm, in a loop.
//! * B, ingest: the real `clerk-sync-ingest` binary, 64 HTTP clients each
//!   POSTing the same kind of events, Svix-signed before the timed loop.
//!
//!   A and B alternate in five slices each (A, B, A, B, ...; one in a smoke
//!   run), the queues emptied after each, so that both see the machine's
//!   speed of the same minute (`load/alternate.rs`).
//! * C, ingest at half A's rate: the same requests, open loop: each takes the
//!   next slot of a fixed schedule and is timed from its slot, so falling
//!   behind the schedule shows as latency instead of hiding.
//! * D, the HTTP path alone: the same requests, closed loop, to an ingest
//!   whose RabbitMQ is not there (nothing listens on its port), so each is
//!   read, verified and summarised as in B, then answered 503 at once. The
//!   ingest's CPU per request in B less D's is what publishing costs it.
//!   D logs nothing: its one ERROR line per request is not what B pays.
//! * E and F, the load generator on a core of its own: A and B again
//!   against a RabbitMQ node of the benchmark's own that runs on one CPU
//!   only, the ingest started on one CPU and this process on another; the
//!   node runs beside the ingest in E, beside this process in F (see
//!   `load/own_cores.rs`; needs 2 CPUs, else reported as not run).
//!
//! Targets (reported, never enforced): B reaches 60% of A with the load
//! generator on the ingest's cores; the ingest reaches 70% of the raw
//! limit of the same phase with the load generator on a core of its own,
//! in E and in F, each judged apart; p99 of C < 20 ms.
//! The process fails only on errors: a failed publish, a non-2xx answer, an
//! ingest that does not start or does not exit 0 on SIGTERM.
//!
//! What bounds the numbers: the load generator, the ingest and RabbitMQ
//! share the machine's cores (2 on the reference machine), so in B and C the
//! HTTP client's CPU is taken from the ingest and the broker; A pays none of
//! it. Each confirm waits for the quorum queues' Raft log to be fsynced, so
//! the disk and how RabbitMQ batches writes set the latency floor. Each phase
//! prints the CPU time per event of every process (from `/proc`), and of the
//! rest of the machine: a large "other" means something else was running and
//! the numbers are not to be trusted.
//!
//! `cargo bench -p clerk-sync-ingest --bench load` runs each phase for
//! `BENCH_SECONDS` (default 10); without `--bench` (as `cargo test
//! --all-targets` runs it) it is a smoke run of 1 s per phase. It uses its
//! own topology (`bench_<uuid8>`) and deletes it at the end.

use anyhow::{Context, Result, anyhow, bail, ensure};
use bytes::Bytes;
use clerk_sync_domain::envelope::EnvelopeSummary;
use clerk_sync_domain::paths;
use clerk_sync_domain::topology::Topology;
use clerk_sync_ingest::verify::{SvixHeaders, VerifiedWebhook, Verifier};
use clerk_sync_runtime::settings::{AmqpSettings, WebhookSecrets};
use clerk_sync_runtime::{amqp, secret_url::SecretUrl};
use clerk_sync_testkit::cpu::rabbitmq_pid;
use clerk_sync_testkit::{http1, speed, webhook};
use lapin::Connection;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use svix::webhooks::Webhook;

#[path = "load/alternate.rs"]
mod alternate;
#[path = "load/own_cores.rs"]
mod own_cores;
#[path = "load/phase.rs"]
mod phase;
#[path = "load/process.rs"]
mod process;
use alternate::{Compared, Setup, http_phase, raw_and_http};
use own_cores::{Placement, own_cores};
use phase::*;
use process::*;

const CONCURRENCY: usize = 64;
const SHARDS: u16 = 8;
const USERS: u64 = 10_000;
const BODY_BYTES: usize = 2048;
/// Phase A events verified ahead per second of the phase; beyond, inline.
const RAW_PER_SECOND: u64 = 25_000;
/// Phase D requests signed ahead per second of the phase; beyond, inline.
const FLOOR_PER_SECOND: u64 = 20_000;
/// A bench-only secret (base64 of 24 bytes).
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A verified event with the summary the ingest routes it by.
type Event = Arc<(VerifiedWebhook, EnvelopeSummary)>;

#[tokio::main]
async fn main() -> Result<()> {
    let smoke = !std::env::args().any(|arg| arg == "--bench");
    let seconds = match std::env::var("BENCH_SECONDS") {
        Ok(value) => value.parse().context("BENCH_SECONDS: whole seconds")?,
        Err(_) if smoke => 1,
        Err(_) => 10,
    };
    let prefix = format!("bench_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut settings = AmqpSettings {
        prefix: prefix.clone(),
        ..Default::default()
    };
    settings.shards = SHARDS;
    if let Ok(url) = std::env::var("AMQP_URL") {
        settings.url = SecretUrl::new(url);
    }
    let mode = if smoke { "smoke" } else { "full" };
    println!("clerk-sync ingest load ({mode}): {seconds} s per phase, prefix {prefix}");
    println!("{}", tokio::task::spawn_blocking(speed::report).await?);
    let admin = amqp::connect(&settings.url, "clerk-sync-bench").await?;
    let topology = Topology::new(prefix, SHARDS);
    let outcome = run(&settings, &admin, &topology, seconds).await;
    let cleanup = amqp::delete_topology(&admin, &topology).await;
    let _ = admin.close(200, "benchmark done".into()).await;
    outcome?;
    cleanup.context("deleting the benchmark topology")
}

async fn run(
    settings: &AmqpSettings,
    admin: &Connection,
    topology: &Topology,
    secs: u64,
) -> Result<()> {
    let load = Arc::new(Load {
        signer: Webhook::new(SECRET).map_err(|e| anyhow!("bench secret: {e}"))?,
        verifier: Verifier::new(&WebhookSecrets::parse(SECRET))?,
        bodies: (0..USERS).map(clerk_body).collect::<Result<_>>()?,
        ids: AtomicU64::new(0),
    });
    // Whose CPU time to report: ours, and RabbitMQ's if it runs here.
    let me = Some(("load generator", std::process::id()));
    let rabbitmq = rabbitmq_pid(settings.url.expose()).map(|pid| ("rabbitmq", pid));
    // For the ingest's readiness; the load goes through `http1`.
    let client = reqwest::Client::new();

    // Phases A and B, alternated, then C: the real ingest, started first.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut ingest = spawn_ingest(settings, port, "warn")?;
    ingest.wait_ready(&client, &base).await?;
    let connections = Arc::new(http1::Client::new(([127, 0, 0, 1], port).into()));
    let setup = Setup {
        settings,
        admin,
        topology,
        load: &load,
        http: &connections,
        raw_probes: &[me, rabbitmq],
        http_probes: &[me, Some(("ingest", ingest.pid())), rabbitmq],
    };
    let Compared { raw, http, inline } = raw_and_http(&setup, secs).await?;
    println!(
        "A raw: {} (events verified before the loop, {} in it)",
        raw.report(),
        inline.0
    );
    println!(
        "B HTTP: {} (requests signed before the loop, {} in it)",
        http.report(),
        inline.1
    );

    // Phase C: the same requests paced at half the raw rate.
    let target = raw.rate() / 2.0;
    ensure!(target > 0.0, "phase A confirmed nothing");
    let requests = Pool::new((target * secs as f64) as u64 + 1, || {
        load.request(&connections)
    })?;
    let half = http_phase(&setup, secs, Some(target), requests).await?;
    let lag = half.max_lag.as_secs_f64() * 1e3;
    println!(
        "C paced: {} (target {target:.0}/s, up to {lag:.1} ms behind)",
        half.report()
    );
    let exit = ingest.stop().await?;

    let (floor, floor_exit) = http_floor(settings, &client, &load, secs, me).await?;
    println!("D HTTP alone: {}", floor.report());

    let mut own = Vec::new();
    for (phase, placement, beside) in [
        ("E", Placement::BesideRabbitmq, "the ingest beside RabbitMQ"),
        ("F", Placement::Alone, "the ingest alone"),
    ] {
        let Some(figures) = own_cores(placement, &settings.prefix, &load, &client, secs).await?
        else {
            continue;
        };
        for (what, stats) in [("raw", &figures.raw), ("HTTP", &figures.http)] {
            println!("{phase} {what}, {beside}: {}", stats.report());
        }
        own.push((phase, beside, figures));
    }

    let share = 100.0 * http.rate() / raw.rate();
    let p99_half = half.ms(0.99);
    let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
    println!(
        "\n== summary ({secs} s per phase, {CONCURRENCY} concurrent) ==\n\
         raw confirmed publishes/s: {:>6.0} ({})\n\
         ingest requests/s:         {:>6.0} ({share:.0}% of raw) {}\n\
         ingest at half raw rate:   {:>6.0} req/s (target {target:.0}) {}\n\
         target ingest >= 60% of raw, load generator on the same cores: {} ({share:.0}%)\n\
         target p99 < 20 ms at half rate: {} ({p99_half:.2} ms)\n\
         ingest CPU per request:          {:.0} µs (B), {:.0} µs without publishing (D)\n\
         ingest after SIGTERM:            {exit} (B, C), {floor_exit} (D)",
        raw.rate(),
        raw.latencies(),
        http.rate(),
        http.latencies(),
        half.rate(),
        half.latencies(),
        verdict(share >= 60.0),
        verdict(p99_half < 20.0),
        http.cpu_per_event("ingest"),
        floor.cpu_per_event("ingest"),
    );
    let mut phases: Vec<(String, &Stats)> =
        [("A", &raw), ("B", &http), ("C", &half), ("D", &floor)]
            .map(|(phase, stats)| (phase.to_owned(), stats))
            .into();
    let mut exits = vec![exit, floor_exit];
    if own.is_empty() {
        println!("phases E and F (the load generator on a core of its own) need 2 CPUs: not run");
    }
    for (phase, beside, figures) in &own {
        let share = 100.0 * figures.http.rate() / figures.raw.rate();
        println!(
            "target ingest >= 70% of raw, load generator on a core of its own ({phase}, {beside}): {} ({share:.0}%)",
            verdict(share >= 70.0)
        );
        phases.push((format!("{phase} raw"), &figures.raw));
        phases.push((format!("{phase} HTTP"), &figures.http));
        exits.push(figures.exit);
    }
    for (phase, stats) in phases {
        if let Some(error) = &stats.first_error {
            bail!("phase {phase}: {} failed, first: {error}", stats.failed);
        }
    }
    for exit in exits {
        ensure!(
            exit.success(),
            "the ingest exited with {exit} after SIGTERM"
        );
    }
    Ok(())
}

/// Phase D (see the top of this file): returns its figures and the exit
/// status of its ingest after SIGTERM.
async fn http_floor(
    settings: &AmqpSettings,
    client: &reqwest::Client,
    load: &Arc<Load>,
    secs: u64,
    me: Probe,
) -> Result<(Stats, std::process::ExitStatus)> {
    // A port nothing listens on once the listener is dropped.
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let settings = AmqpSettings {
        url: SecretUrl::new(format!("amqp://guest:guest@{nowhere}/%2f")),
        ..settings.clone()
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut ingest = spawn_ingest(&settings, port, "off")?;
    ingest
        .wait_readyz(client, &base, reqwest::StatusCode::SERVICE_UNAVAILABLE)
        .await?;
    let http = Arc::new(http1::Client::new(([127, 0, 0, 1], port).into()));
    // Signing inline would take the load generator's CPU from the ingest.
    let requests = Pool::new(secs * FLOOR_PER_SECOND, || load.request(&http))?;
    let probes = [me, Some(("ingest", ingest.pid()))];
    let load = load.clone();
    let floor = drive(secs, None, &probes, move || {
        let request = requests.take(|| load.request(&http));
        let http = http.clone();
        async move {
            match send(&http, request).await {
                Err(e) if e.starts_with("HTTP 503") && e.contains("RabbitMQ is unavailable") => {
                    Ok(())
                }
                Ok(()) => Err("answered 2xx with no RabbitMQ to publish to".to_owned()),
                Err(e) => Err(e),
            }
        }
    })
    .await;
    let exit = ingest.stop().await?;
    Ok((floor?, exit))
}

/// A Clerk `user.updated` event about one of the bench users, padded to ~2 KB.
fn clerk_body(user: u64) -> Result<Bytes> {
    let mut event = json!({
        "object": "event", "type": "user.updated", "instance_id": "ins_2bench0000000000000000000",
        "timestamp": 1_750_000_000_000_u64 + user,
        "event_attributes": { "http_request": {
            "client_ip": "203.0.113.7", "user_agent": "Mozilla/5.0 (X11; Linux x86_64) bench",
        }},
        "data": {
            "object": "user", "id": format!("user_bench{user:06}"), "external_id": null,
            "username": format!("bench{user}"), "first_name": "Bench", "last_name": "User",
            "image_url": "https://img.clerk.com/eyJ0eXBlIjoiZGVmYXVsdCIsImlpZCI6Imluc18yIn0",
            "primary_email_address_id": format!("idn_bench{user:06}"),
            "email_addresses": [{
                "object": "email_address", "id": format!("idn_bench{user:06}"),
                "email_address": format!("bench.user{user}@example.com"),
                "verification": { "status": "verified", "strategy": "email_code" },
                "linked_to": [],
            }],
            "phone_numbers": [], "web3_wallets": [], "external_accounts": [],
            "public_metadata": { "plan": "pro" }, "private_metadata": {}, "unsafe_metadata": {},
            "password_enabled": true, "two_factor_enabled": false, "banned": false,
            "created_at": 1_700_000_000_000_u64, "updated_at": 1_750_000_000_000_u64 + user,
        },
    });
    // `"notes":""` takes 10 bytes besides the padding itself.
    let padding = BODY_BYTES.saturating_sub(serde_json::to_vec(&event)?.len() + 10);
    let mut notes = "lorem ipsum ".repeat(padding / 12 + 1);
    notes.truncate(padding);
    event["data"]["private_metadata"]["notes"] = json!(notes);
    Ok(Bytes::from(serde_json::to_vec(&event)?))
}

/// What every phase sends: the users' bodies under unique svix-ids.
struct Load {
    signer: Webhook,
    verifier: Verifier,
    bodies: Vec<Bytes>,
    ids: AtomicU64,
}

impl Load {
    /// The next event as Svix sends it: svix-id `msg_bench_<n>`, body of
    /// user `n % USERS`.
    fn sign(&self) -> Result<(SvixHeaders, Bytes)> {
        let n = self.ids.fetch_add(1, Relaxed);
        let body = self
            .bodies
            .get((n % USERS) as usize)
            .cloned()
            .unwrap_or_default();
        let (id, timestamp) = (format!("msg_bench_{n}"), now().as_secs() as i64);
        let signature = self.signer.sign(&id, timestamp, &body)?;
        let timestamp = timestamp.to_string();
        let headers = SvixHeaders {
            id,
            timestamp,
            signature,
        };
        Ok((headers, body))
    }

    /// The next event as a request to the ingest `client` sends to.
    fn request(&self, client: &http1::Client) -> Result<http1::Request> {
        let (headers, body) = self.sign()?;
        let signed = [&headers.id, &headers.timestamp, &headers.signature].map(String::as_str);
        Ok(webhook::signed_request(
            client,
            paths::WEBHOOK,
            signed,
            body,
        ))
    }

    /// The next event, verified as the ingest does, with its summary.
    fn event(&self) -> Result<Event> {
        let (headers, body) = self.sign()?;
        let verified = self.verifier.verify(headers, body)?;
        let summary = EnvelopeSummary::read(verified.body());
        Ok(Arc::new((verified, summary)))
    }
}

/// Send one request (or say why it could not be made); Ok only for a 2xx
/// answer.
async fn send(client: &http1::Client, request: Result<http1::Request>) -> Result<(), String> {
    let request = request.map_err(|e| format!("{e:#}"))?;
    client.send(&request).await?.success()
}
