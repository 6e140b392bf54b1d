//! Every row of the HTTP table of docs/src/contract.md, and for each refused
//! request that nothing was published.

use crate::helpers::*;
use clerk_sync_runtime::settings::WebhookSecrets;
use std::io::{Read, Write};

#[tokio::test]
async fn a_signed_event_is_queued_and_answered_202() {
    let app = spawn_app().await;
    let body = user_event("user.created", "user_a", now() * 1000);
    let (id, response) = app.post_signed(body.clone()).await;
    assert_eq!(response.status().as_u16(), 202);
    let queued = app.topology.drain().await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].body, body);
    assert_eq!(queued[0].message_id.as_deref(), Some(id.as_str()));
}

async fn assert_refused(
    app: &TestApp,
    headers: &[(String, String)],
    body: Vec<u8>,
    status: u16,
    error: &str,
) {
    let (got_status, got_error) = error_of(app.post(headers, body).await).await;
    assert_eq!(
        (got_status, got_error.contains(error)),
        (status, true),
        "{got_error}"
    );
    assert!(
        app.topology.drain().await.is_empty(),
        "a refused request published something"
    );
}

#[tokio::test]
async fn a_missing_or_malformed_svix_header_is_400_and_publishes_nothing() {
    let app = spawn_app().await;
    let body = user_event("user.created", "user_a", now() * 1000);
    let signed = signed_headers(SECRET, &new_svix_id(), now(), &body);
    for missing in ["svix-id", "svix-timestamp", "svix-signature"] {
        let headers: Vec<_> = signed
            .iter()
            .filter(|(n, _)| n != missing)
            .cloned()
            .collect();
        assert_refused(
            &app,
            &headers,
            body.clone(),
            400,
            &format!("missing header {missing}"),
        )
        .await;
    }
    let mut malformed = signed.clone();
    malformed[1].1 = "yesterday".to_owned();
    assert_refused(
        &app,
        &malformed,
        body.clone(),
        400,
        "malformed header svix-timestamp",
    )
    .await;
    let mut long_id = signed.clone();
    long_id[0].1 = "m".repeat(300);
    assert_refused(&app, &long_id, body, 400, "malformed header svix-id").await;
}

#[tokio::test]
async fn a_signature_that_does_not_verify_is_401_and_publishes_nothing() {
    let app = spawn_app().await;
    let body = user_event("user.created", "user_a", now() * 1000);
    let id = new_svix_id();
    let wrong_secret = signed_headers(OTHER_SECRET, &id, now(), &body);
    assert_refused(
        &app,
        &wrong_secret,
        body.clone(),
        401,
        "signature does not match",
    )
    .await;

    let mut tampered_body = body.clone();
    tampered_body.push(b' ');
    let signed = signed_headers(SECRET, &id, now(), &body);
    assert_refused(
        &app,
        &signed,
        tampered_body,
        401,
        "signature does not match",
    )
    .await;

    let mut other_id = signed.clone();
    other_id[0].1 = new_svix_id();
    assert_refused(&app, &other_id, body, 401, "signature does not match").await;
}

#[tokio::test]
async fn timestamps_beyond_five_minutes_are_401_and_publish_nothing() {
    let app = spawn_app().await;
    let body = user_event("user.created", "user_a", now() * 1000);
    let stale = signed_headers(SECRET, &new_svix_id(), now() - 301, &body);
    assert_refused(
        &app,
        &stale,
        body.clone(),
        401,
        "more than 5 minutes in the past",
    )
    .await;
    let future = signed_headers(SECRET, &new_svix_id(), now() + 301, &body);
    assert_refused(
        &app,
        &future,
        body.clone(),
        401,
        "more than 5 minutes in the future",
    )
    .await;

    // Within tolerance on both sides is fine.
    for skew in [-280, 280] {
        let headers = signed_headers(SECRET, &new_svix_id(), now() + skew, &body);
        assert_eq!(
            app.post(&headers, body.clone()).await.status().as_u16(),
            202
        );
    }
    assert_eq!(app.topology.drain().await.len(), 2);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_publishes_nothing() {
    let mut settings = test_settings();
    settings.ingest.body_limit_bytes = 4096;
    let app = spawn_app_with(settings).await;
    let at_limit = vec![b'x'; 4096];
    let headers = signed_headers(SECRET, &new_svix_id(), now(), &at_limit);
    assert_eq!(
        app.post(&headers, at_limit).await.status().as_u16(),
        202,
        "the limit itself is allowed"
    );
    assert_eq!(app.topology.drain().await.len(), 1);

    let over = vec![b'x'; 4097];
    let headers = signed_headers(SECRET, &new_svix_id(), now(), &over);
    assert_refused(
        &app,
        &headers,
        over,
        413,
        "larger than the limit of 4096 bytes",
    )
    .await;
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413_too() {
    let mut settings = test_settings();
    settings.ingest.body_limit_bytes = 4096;
    let app = spawn_app_with(settings).await;
    let body = vec![b'x'; 10_000];
    let headers = signed_headers(SECRET, &new_svix_id(), now(), &body);
    let address = app.address.trim_start_matches("http://").to_owned();
    // No Content-Length: the limit must hold while the body streams in.
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        let mut request = format!("POST /api/webhooks/clerk HTTP/1.1\r\nHost: {address}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n");
        for (name, value) in &headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        let _ = stream.write_all(request.as_bytes());
        for chunk in body.chunks(1000) {
            let _ = stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes());
            let _ = stream.write_all(chunk);
            let _ = stream.write_all(b"\r\n");
        }
        let _ = stream.write_all(b"0\r\n\r\n");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("larger than the limit of 4096 bytes"),
        "{answer}"
    );
    assert!(app.topology.drain().await.is_empty());
}

#[tokio::test]
async fn a_correctly_signed_empty_body_is_queued_for_the_worker_to_judge() {
    let app = spawn_app().await;
    let headers = signed_headers(SECRET, &new_svix_id(), now(), b"");
    assert_eq!(app.post(&headers, Vec::new()).await.status().as_u16(), 202);
    let queued = app.topology.drain().await;
    assert_eq!(queued.len(), 1);
    assert!(queued[0].body.is_empty());

    let unsigned = signed_headers(OTHER_SECRET, &new_svix_id(), now(), b"");
    assert_refused(&app, &unsigned, Vec::new(), 401, "signature does not match").await;
}

#[tokio::test]
async fn a_body_that_is_not_utf8_is_400() {
    let app = spawn_app().await;
    let headers = signed_headers(SECRET, &new_svix_id(), now(), b"{}");
    assert_refused(&app, &headers, vec![0xff, 0xfe], 400, "not UTF-8").await;
}

#[tokio::test]
async fn unbranded_webhook_headers_and_several_signatures_are_accepted() {
    let app = spawn_app().await;
    let body = user_event("user.updated", "user_b", now() * 1000);
    let unbranded: Vec<_> = signed_headers(SECRET, &new_svix_id(), now(), &body)
        .into_iter()
        .map(|(name, value)| (name.replace("svix-", "webhook-"), value))
        .collect();
    assert_eq!(
        app.post(&unbranded, body.clone()).await.status().as_u16(),
        202
    );

    let mut several = signed_headers(SECRET, &new_svix_id(), now(), &body);
    let decoy = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";
    several[2].1 = format!("{decoy} v2,{} {} {decoy}", &several[2].1[3..], several[2].1);
    assert_eq!(app.post(&several, body).await.status().as_u16(), 202);
    assert_eq!(app.topology.drain().await.len(), 2);
}

#[tokio::test]
async fn during_rotation_both_secrets_verify() {
    let mut settings = test_settings();
    settings.webhook.secrets = WebhookSecrets::parse(&format!("{OTHER_SECRET} {SECRET}"));
    let app = spawn_app_with(settings).await;
    let body = user_event("user.updated", "user_c", now() * 1000);
    for secret in [SECRET, OTHER_SECRET] {
        let headers = signed_headers(secret, &new_svix_id(), now(), &body);
        assert_eq!(
            app.post(&headers, body.clone()).await.status().as_u16(),
            202,
            "{secret}"
        );
    }
    assert_eq!(app.topology.drain().await.len(), 2);
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status().as_u16(), 200);
    assert_eq!(app.get("/readyz").await.status().as_u16(), 200);
    let body = user_event("user.created", "user_m", now() * 1000);
    app.post_signed(body.clone()).await;
    app.post(&[], body).await;
    let metrics = app.get("/metrics").await.text().await.unwrap_or_default();
    for line in [
        r#"clerk_sync_ingest_http_requests_total{route="/api/webhooks/clerk",status="202"} 1"#,
        r#"clerk_sync_ingest_http_requests_total{route="/api/webhooks/clerk",status="400"} 1"#,
        r#"clerk_sync_ingest_verification_failures_total{reason="missing_header"} 1"#,
        "clerk_sync_ingest_publish_confirm_seconds_count 1",
        "clerk_sync_ingest_http_requests_in_flight",
        "clerk_sync_ingest_broker_connected 1",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
    let published = format!(
        r#"clerk_sync_ingest_published_total{{queue="{}"}} 1"#,
        app.topology.topology.queue_for("user_m")
    );
    assert!(
        metrics.contains(&published),
        "{published} not in\n{metrics}"
    );
    app.topology.drain().await;
}
