//! One trace per event, across the queue: a webhook that arrives with a
//! W3C `traceparent` is traced by the ingest (request, verify, publish,
//! confirm) and by the worker (batch, event, lock, decide, apply, commit)
//! in that same trace, exported over OTLP/HTTP to a receiver this test
//! serves, which decodes the protobuf as a collector would. Spans name the
//! svix-id and the user, never the body, the e-mail or the name.
//!
//! Its own test binary: the ingest runs in this process with the global
//! subscriber exporting to the receiver; the worker is the real binary,
//! pointed at the receiver with `OTEL_EXPORTER_OTLP_ENDPOINT`.

#![cfg(test)]

use actix_web::{App, HttpResponse, HttpServer, web};
use clerk_sync_ingest::settings::Settings;
use clerk_sync_ingest::startup::Application;
use clerk_sync_runtime::settings::{LogFormat, WebhookSecrets};
use clerk_sync_runtime::telemetry;
use clerk_sync_testkit::database::TestDatabase;
use clerk_sync_testkit::topology::TestTopology;
use clerk_sync_testkit::webhook::{self, SECRET};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;
use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    trace_id: String,
    parent: String,
    attributes: Vec<(String, String)>,
}

/// An OTLP/HTTP receiver: `POST /v1/traces` with a protobuf body.
async fn receiver() -> (String, Arc<Mutex<Vec<Span>>>) {
    let spans = Arc::new(Mutex::new(Vec::new()));
    let kept = web::Data::from(spans.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        App::new().app_data(kept.clone()).route(
            "/v1/traces",
            web::post().to(
                |body: web::Bytes, kept: web::Data<Mutex<Vec<Span>>>| async move {
                    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                        return HttpResponse::BadRequest().finish();
                    };
                    kept.lock().unwrap().extend(spans_of(request));
                    HttpResponse::Ok()
                        .content_type("application/x-protobuf")
                        .finish()
                },
            ),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    (format!("http://127.0.0.1:{port}"), spans)
}

fn spans_of(request: ExportTraceServiceRequest) -> Vec<Span> {
    let text = |value: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>| match value
        .as_ref()
        .and_then(|v| v.value.as_ref())
    {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    };
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut spans = Vec::new();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .map(|a| text(&a.value))
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                spans.push(Span {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    parent: hex(&span.parent_span_id),
                    attributes: span
                        .attributes
                        .iter()
                        .map(|a| (a.key.clone(), text(&a.value)))
                        .collect(),
                });
            }
        }
    }
    spans
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_event_is_one_trace_from_the_request_to_the_commit() {
    let (otlp, received) = receiver().await;
    let ingest_otel = [(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT".to_owned(),
        format!("{otlp}/v1/traces"),
    )];
    let traces = telemetry::init_with(LogFormat::Json, "info", "clerk-sync-ingest", &|name| {
        ingest_otel
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    });

    let database = TestDatabase::named_only();
    let broker = TestTopology::new(2);
    let mut settings = Settings::default();
    settings.webhook.secrets = WebhookSecrets::parse(SECRET);
    settings.amqp.url =
        clerk_sync_runtime::secret_url::SecretUrl::new(clerk_sync_testkit::broker::amqp_url());
    settings.amqp.prefix = broker.prefix.clone();
    settings.amqp.shards = broker.shards;
    settings.ingest.listen = "127.0.0.1:0".parse().unwrap();
    let application = Application::build(&settings).await.unwrap();
    let url = format!("http://127.0.0.1:{}/api/webhooks/clerk", application.port());
    let ingest = tokio::spawn(application.run_until_stopped());
    let mut worker = tokio::process::Command::new(env!("CARGO_BIN_EXE_clerk-sync-worker"))
        .arg("run")
        .env_clear()
        .env("DATABASE_URL", database.url.expose())
        .env("AMQP_URL", clerk_sync_testkit::broker::amqp_url())
        .env("CLERK_SYNC__AMQP__PREFIX", &broker.prefix)
        .env("CLERK_SYNC__AMQP__SHARDS", broker.shards.to_string())
        .env("CLERK_SYNC__WORKER__LISTEN", "127.0.0.1:0")
        .env("CLERK_WEBHOOK_SECRET", SECRET)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &otlp)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let body = serde_json::json!({
        "type": "user.created", "object": "event", "timestamp": 1_700_000_000_000_i64,
        "data": {"id": "user_traced", "object": "user", "first_name": "Tracy", "last_name": "Secret",
            "primary_email_address_id": "idn_1",
            "email_addresses": [{"id": "idn_1", "email_address": "tracy@example.com"}],
            "public_metadata": {"role": "student"},
            "created_at": 1_700_000_000_000_i64, "updated_at": 1_700_000_000_000_i64}
    })
    .to_string();
    let headers =
        webhook::signed_headers(SECRET, "msg_traced", webhook::unix_now(), body.as_bytes())
            .unwrap();
    let mut request = reqwest::Client::new()
        .post(&url)
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .body(body.clone());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // The worker may not have declared the queues yet: Svix would retry.
        let status = request
            .try_clone()
            .unwrap()
            .send()
            .await
            .map(|r| r.status().as_u16())
            .ok();
        if status == Some(202) {
            break;
        }
        assert!(Instant::now() < deadline, "the ingest answered {status:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The worker's spans arrive once its batch is committed (every 100 ms).
    let wanted_worker: BTreeSet<&str> =
        ["batch", "event", "lock", "decide", "apply", "commit"].into();
    loop {
        let names: BTreeSet<String> = received
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.service == "clerk-sync-worker" && s.trace_id == TRACE_ID)
            .map(|s| s.name.clone())
            .collect();
        if wanted_worker.iter().all(|n| names.contains(*n)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the worker's spans in the trace: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = worker.start_kill();
    traces.shutdown();
    ingest.abort();

    let spans = received.lock().unwrap().clone();
    let ours: Vec<&Span> = spans.iter().filter(|s| s.trace_id == TRACE_ID).collect();
    let names = |service: &str| -> BTreeSet<&str> {
        ours.iter()
            .filter(|s| s.service == service)
            .map(|s| s.name.as_str())
            .collect()
    };
    assert_eq!(
        names("clerk-sync-ingest"),
        ["confirm", "http.request", "publish", "verify"].into(),
        "{spans:#?}"
    );
    let request_span = ours.iter().find(|s| s.name == "http.request").unwrap();
    assert_eq!(
        request_span.parent, CALLER_SPAN,
        "the caller's span is the parent"
    );
    let attribute = |span: &Span, key: &str| {
        span.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        attribute(request_span, "svix.id").as_deref(),
        Some("msg_traced")
    );
    assert_eq!(
        attribute(request_span, "clerk.user_id").as_deref(),
        Some("user_traced")
    );
    let event = ours.iter().find(|s| s.name == "event").unwrap();
    assert_eq!(attribute(event, "svix.id").as_deref(), Some("msg_traced"));
    assert_eq!(
        attribute(event, "clerk.user_id").as_deref(),
        Some("user_traced")
    );
    for span in &spans {
        for (key, value) in &span.attributes {
            for secret in ["tracy@example.com", "Tracy", "Secret", "signup"] {
                assert!(
                    !value.contains(secret),
                    "{} carries {key}={value}",
                    span.name
                );
            }
        }
    }
}
