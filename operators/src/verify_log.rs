//! `clerk-sync-worker verify-log [--since TIME]`: re-check the Svix
//! signature stored with every logged event against the configured secrets
//! (all of them, so events signed before a rotation still verify while the
//! old secret is configured). Erased events and events clerk-sync recorded
//! itself (reconcile, forget: marked so in their payload, which no
//! published message can do) carry no verifiable signature and are counted
//! as such; any other event without a signature is a failure. Exits 3 when
//! any event does not verify.

use crate::{exit, progress, since};
use chrono::{DateTime, Utc};
use clerk_sync_runtime::signatures::{Signatures, Signed, Tolerance};
use clerk_sync_store::payload;
use clerk_sync_store::repository::{database, events};
use clerk_sync_store::settings::Settings;
use serde::Serialize;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only events received at or after TIME: an RFC 3339 instant, a date
    /// or an age (12h).
    #[arg(long, value_name = "TIME", value_parser = since::arg)]
    since: Option<DateTime<Utc>>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// What re-checking one logged event found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Verified,
    /// Its personal fields were erased, so the body is no longer the one
    /// Svix signed.
    Erased,
    /// Recorded by clerk-sync itself (no Svix signature).
    Unsigned,
    /// No configured secret gives its signature, or it has none and
    /// clerk-sync did not record it.
    Failed,
}

/// One logged event as verify-log reads it.
#[derive(Debug)]
pub struct Logged<'a> {
    pub svix_id: &'a str,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub body: &'a [u8],
    pub erased: bool,
    /// Recorded by clerk-sync itself (see `Incoming::recorded_by`).
    pub recorded_by_clerk_sync: bool,
}

/// Check `event` against `secrets` (pure).
pub fn check(event: &Logged<'_>, signatures: &Signatures) -> Check {
    let signature = event.signature.filter(|s| !s.is_empty());
    if signature.is_none() && event.recorded_by_clerk_sync {
        return Check::Unsigned;
    }
    if event.erased {
        return Check::Erased;
    }
    let Some(signature) = signature else {
        return Check::Failed;
    };
    let Some(timestamp) = event.timestamp else {
        return Check::Failed;
    };
    let signed = Signed {
        id: event.svix_id,
        timestamp,
        signature,
        body: event.body,
    };
    match signatures.check(signed, Tolerance::Any) {
        Ok(()) => Check::Verified,
        Err(_) => Check::Failed,
    }
}

#[derive(Debug, Default, Serialize)]
struct Report {
    checked: u64,
    verified: u64,
    erased: u64,
    unsigned: u64,
    failed: u64,
    /// The svix-ids that did not verify, with when they were received.
    failures: Vec<Failure>,
}

#[derive(Debug, Serialize)]
struct Failure {
    svix_id: String,
    received_at: String,
}

pub async fn run(settings: Settings, args: Args) -> anyhow::Result<ExitCode> {
    let signatures = Signatures::new(settings.webhook.require_secrets()?)?;
    let mut connection = database::connect(&settings.database.url).await?;
    let total = u64::try_from(events::count_since(&mut connection, args.since).await?).unwrap_or(0);
    let bar = progress::bar(Some(total), "verify-log");
    let mut report = Report::default();
    let mut after = String::new();
    loop {
        let page = events::signed_page(&mut connection, &after, args.since).await?;
        let Some(last) = page.last() else { break };
        after = last.svix_id.clone();
        for row in &page {
            let body = payload::body(row.body.clone(), row.body_base64.as_deref());
            let event = Logged {
                svix_id: &row.svix_id,
                timestamp: row.svix_timestamp.as_deref(),
                signature: row.svix_signature.as_deref(),
                body: &body,
                erased: row.erased,
                recorded_by_clerk_sync: row.recorded_by.is_some(),
            };
            report.checked += 1;
            match check(&event, &signatures) {
                Check::Verified => report.verified += 1,
                Check::Erased => report.erased += 1,
                Check::Unsigned => report.unsigned += 1,
                Check::Failed => {
                    report.failed += 1;
                    report.failures.push(Failure {
                        svix_id: row.svix_id.clone(),
                        received_at: row.received_at.clone(),
                    });
                }
            }
        }
        bar.inc(page.len() as u64);
    }
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for failure in &report.failures {
            println!(
                "DOES NOT VERIFY: {} (received {})",
                failure.svix_id, failure.received_at
            );
        }
        println!(
            "verify-log: {} events checked: {} verified, {} erased (personal data removed, \
             signature no longer applies), {} recorded by clerk-sync (unsigned), {} do not verify",
            report.checked, report.verified, report.erased, report.unsigned, report.failed
        );
    }
    Ok(if report.failed > 0 {
        ExitCode::from(exit::CHECK_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clerk_sync_runtime::settings::WebhookSecrets;
    use svix::webhooks::Webhook;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const OTHER: &str = "whsec_bm90IHRoZSBzZWNyZXQgeW91IGFyZSBsb29raW5nIGZvcg==";

    fn secrets(list: &str) -> Signatures {
        Signatures::new(&WebhookSecrets::parse(list)).unwrap()
    }

    fn signed(body: &str) -> String {
        Webhook::new(SECRET)
            .unwrap()
            .sign("msg_1", 1_700_000_000, body.as_bytes())
            .unwrap()
    }

    #[test]
    fn a_stored_signature_verifies_with_any_configured_secret() {
        let signature = format!("v1,bm9wZQ== {}", signed("{}"));
        let event = Logged {
            svix_id: "msg_1",
            timestamp: Some("1700000000"),
            signature: Some(&signature),
            body: b"{}",
            erased: false,
            recorded_by_clerk_sync: false,
        };
        assert_eq!(
            check(&event, &secrets(&format!("{OTHER} {SECRET}"))),
            Check::Verified
        );
        assert_eq!(check(&event, &secrets(OTHER)), Check::Failed);
        let tampered = Logged {
            body: b"{ }",
            ..event
        };
        assert_eq!(check(&tampered, &secrets(SECRET)), Check::Failed);
    }

    #[test]
    fn erased_events_and_those_clerk_sync_recorded_are_not_failures() {
        let signature = signed("{}");
        let erased = Logged {
            svix_id: "msg_1",
            timestamp: Some("1700000000"),
            signature: Some(&signature),
            body: b"{\"type\":\"user.deleted\"}",
            erased: true,
            recorded_by_clerk_sync: false,
        };
        assert_eq!(check(&erased, &secrets(SECRET)), Check::Erased);
        let recorded = Logged {
            signature: None,
            erased: false,
            recorded_by_clerk_sync: true,
            ..erased
        };
        assert_eq!(check(&recorded, &secrets(SECRET)), Check::Unsigned);
        let no_timestamp = Logged {
            svix_id: "msg_1",
            timestamp: None,
            signature: Some(&signature),
            body: b"{}",
            erased: false,
            recorded_by_clerk_sync: false,
        };
        assert_eq!(check(&no_timestamp, &secrets(SECRET)), Check::Failed);
    }

    #[test]
    fn an_event_without_a_signature_that_clerk_sync_did_not_record_fails() {
        let published = Logged {
            svix_id: "reconcile_0123456789abcdef0123456789abcdef",
            timestamp: Some("1700000000"),
            signature: None,
            body: b"{}",
            erased: false,
            recorded_by_clerk_sync: false,
        };
        assert_eq!(check(&published, &secrets(SECRET)), Check::Failed);
        let empty = Logged {
            signature: Some(""),
            ..published
        };
        assert_eq!(check(&empty, &secrets(SECRET)), Check::Failed);
    }
}
