//! The checks give exactly the verdicts of Svix's own verifier (the
//! `svix` crate, which clerk-sync used before), on its published test
//! vector and on arbitrary headers, bodies and secrets.

use super::*;
use proptest::prelude::*;
use svix::webhooks::{Webhook, WebhookError};

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

fn signatures(secrets: &str) -> Signatures {
    Signatures::new(&WebhookSecrets::parse(secrets)).unwrap()
}

/// What the `svix` crate says of `signed`, as [`Signatures::check`] says it.
fn svix_verdict(secrets: &str, signed: Signed<'_>, tolerance: Tolerance) -> Result<(), Rejection> {
    let mut map = http::HeaderMap::new();
    for (name, value) in [
        ("svix-id", signed.id),
        ("svix-timestamp", signed.timestamp),
        ("svix-signature", signed.signature),
    ] {
        let value = http::HeaderValue::from_str(value).map_err(|_| Rejection::SignatureMismatch)?;
        map.insert(name, value);
    }
    for secret in secrets.split(',') {
        let webhook = Webhook::new(secret).unwrap();
        let verdict = match tolerance {
            Tolerance::Recent => webhook.verify(signed.body, &map),
            Tolerance::Any => webhook.verify_ignoring_timestamp(signed.body, &map),
        };
        match verdict {
            Ok(()) => return Ok(()),
            Err(WebhookError::TimestampTooOldError) => return Err(Rejection::TimestampTooOld),
            Err(WebhookError::FutureTimestampError) => return Err(Rejection::TimestampInFuture),
            Err(WebhookError::InvalidPayload) => return Err(Rejection::BodyNotUtf8),
            Err(_) => continue,
        }
    }
    Err(Rejection::SignatureMismatch)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[test]
fn svix_test_vector_verifies() {
    let signed = Signed {
        id: "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
        timestamp: "1649367553",
        signature: "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
        body: br#"{"email":"test@example.com","username":"test_user"}"#,
    };
    assert_eq!(signatures(SECRET).check(signed, Tolerance::Any), Ok(()));
    assert_eq!(
        signatures(SECRET).check(signed, Tolerance::Recent),
        Err(Rejection::TimestampTooOld)
    );
}

#[test]
fn an_unusable_secret_is_named_by_position_only() {
    for (secrets, problem) in [("whsec_%%%", "not base64"), ("whsec_", "empty")] {
        let error = Signatures::new(&WebhookSecrets::parse(&format!("{SECRET},{secrets}")))
            .unwrap_err()
            .to_string();
        assert!(error.contains(problem), "{error}");
        assert!(!error.contains("C2FVsBQIhrsc"), "{error}");
    }
}

/// A header value, sometimes with characters HTTP cannot carry.
fn header() -> impl Strategy<Value = String> {
    prop_oneof!["[ -~]{0,40}", "[a-zA-Z0-9_,. =+/\t\u{7f}\u{e9}]{0,40}",]
}

proptest! {
    #[test]
    fn a_signature_svix_makes_verifies(
        id in "[ -~]{1,40}",
        body in ".{0,300}",
        key in proptest::collection::vec(any::<u8>(), 1..48),
        skew in -250i64..250,
        others in "( v1,[A-Za-z0-9+/=]{4,44}| v2,[a-z]{4}){0,3}",
    ) {
        let secret = format!("whsec_{}", BASE64.encode(&key));
        let timestamp = now() + skew;
        let signature = Webhook::new(&secret).unwrap().sign(&id, timestamp, body.as_bytes()).unwrap();
        let header = format!("{signature}{others}");
        let signed = Signed { id: &id, timestamp: &timestamp.to_string(), signature: &header, body: body.as_bytes() };
        let secrets = format!("{SECRET},{secret}");
        prop_assert_eq!(signatures(&secrets).check(signed, Tolerance::Recent), Ok(()));
        prop_assert_eq!(signatures(&secrets).check(signed, Tolerance::Any), Ok(()));
    }

    #[test]
    fn every_verdict_is_svix_verdict(
        id in header(),
        timestamp in prop_oneof![
            (-1_000i64..1_000).prop_map(|skew| (now() + skew).to_string()),
            "[-+0-9 ]{0,12}",
            Just("1649367553".to_owned()),
        ],
        signature in header(),
        body in prop_oneof![
            ".{0,100}".prop_map(String::into_bytes),
            proptest::collection::vec(any::<u8>(), 0..100),
        ],
        sign_it in any::<bool>(),
        tamper in any::<bool>(),
        any_time in any::<bool>(),
    ) {
        // Half the time a real signature of these very headers, sometimes
        // of another body.
        let signature = match (sign_it, timestamp.parse::<i64>(), std::str::from_utf8(&body)) {
            (true, Ok(ts), Ok(_)) => {
                let signed_body: &[u8] = if tamper { b"{}" } else { &body };
                Webhook::new(SECRET).unwrap().sign(&id, ts, signed_body).unwrap()
            }
            _ => signature,
        };
        let signed = Signed { id: &id, timestamp: &timestamp, signature: &signature, body: &body };
        let tolerance = if any_time { Tolerance::Any } else { Tolerance::Recent };
        prop_assert_eq!(
            signatures(SECRET).check(signed, tolerance),
            svix_verdict(SECRET, signed, tolerance)
        );
    }
}
