//! The Svix test vectors of `fixtures/clerk/svix_test_vectors.md` (at the
//! repository root), and header parsing. Tolerance and rotation are tested
//! end to end in `tests/api/webhook.rs`.

use super::*;
use actix_web::http::header::{HeaderName, HeaderValue};
use clerk_sync_runtime::settings::WebhookSecrets;

const SECRET_A: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SECRET_B: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

fn verifier(secrets: &str) -> Verifier {
    Verifier::new(&WebhookSecrets::parse(secrets)).unwrap()
}

fn headers(id: &str, timestamp: &str, signature: &str) -> SvixHeaders {
    SvixHeaders {
        id: id.to_owned(),
        timestamp: timestamp.to_owned(),
        signature: signature.to_owned(),
    }
}

/// The vectors' timestamps are old: checked as a stored event is.
fn stored(verifier: &Verifier, h: SvixHeaders, body: &[u8]) -> Result<(), Rejection> {
    let signed = Signed {
        id: &h.id,
        timestamp: &h.timestamp,
        signature: &h.signature,
        body,
    };
    verifier.signatures.check(signed, Tolerance::Any)
}

#[test]
fn vector_a_verifies() {
    let h = headers(
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265330",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    );
    assert_eq!(
        stored(&verifier(SECRET_A), h, br#"{"test": 2432232314}"#),
        Ok(())
    );
}

#[test]
fn vector_a_large_payloads_verify() {
    for (size, signature) in [
        (
            1024 * 1024,
            "v1,txpEUxqWZJ5nteTnymUVa+7C4NHpBeXJ6CsBAW0c3/A=",
        ),
        (
            256 * 1024,
            "v1,Mw4Pe2WgApuT7NSqnSq0PQPV9gbLdggCl9B865x5Xh0=",
        ),
        (
            256 * 1024 - 1,
            "v1,NTItnqyWMoFhk2Bbe5V/BMdcFRWgcSQaTgqLHX7FC7c=",
        ),
    ] {
        let h = headers("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", signature);
        assert_eq!(
            stored(&verifier(SECRET_A), h, &vec![b'a'; size]),
            Ok(()),
            "{size}"
        );
    }
}

#[test]
fn vector_b_verifies_and_its_negatives_do_not() {
    let body = br#"{"email":"test@example.com","username":"test_user"}"#;
    let good = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
    let decoys = "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ= v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q= v1,9DfC1c3eeOrXB6w/5dIDydLNQaEyww5KalE5jLBZucE=";
    let verifier = verifier(SECRET_B);
    let check = |signature: &str| {
        stored(
            &verifier,
            headers("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", "1649367553", signature),
            body,
        )
    };
    assert_eq!(check(good), Ok(()));
    assert_eq!(
        check(&format!("{decoys} {good}")),
        Ok(()),
        "any v1 entry may match"
    );
    assert_eq!(
        check(&format!("v2,{} {good}", &good[3..])),
        Ok(()),
        "other versions are skipped"
    );
    for bad in [
        "v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=",
        decoys,
        "v1,",
        "v1,tZ1I4",
        &format!("v2,{}", &good[3..]),
    ] {
        assert_eq!(check(bad), Err(Rejection::SignatureMismatch), "{bad}");
    }
    // The header timestamp must be the one that was signed.
    let shifted = headers("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", "1649367554", good);
    assert_eq!(
        stored(&verifier, shifted, body),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn vector_a_negatives_do_not_verify() {
    for bad in [
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLawdd",
        "v1,dawfeoifkpqwoekfpqoekf",
    ] {
        let h = headers("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", bad);
        assert_eq!(
            stored(&verifier(SECRET_A), h, br#"{"test": 2432232314}"#),
            Err(Rejection::SignatureMismatch)
        );
    }
}

#[test]
fn derived_vectors_over_clerk_fixtures_verify_on_the_exact_bytes() {
    let fixtures = format!("{}/../fixtures/clerk", env!("CARGO_MANIFEST_DIR"));
    for (file, signature) in [
        (
            "user.created.captured-anonymized.compact.json",
            "v1,U7BhAbYz/dqNzbQYPORw2DgKAudsL7RSUGNJqWt+F3Y=",
        ),
        (
            "user.created.json",
            "v1,4vZLaJEWpOww3wbFXfQLyxfJy9Gc9sUzsGXpl9bIPtU=",
        ),
        (
            "user.deleted.json",
            "v1,b5XSFOn/kbf0fwlqWAPm3M7t5jaHZ7phfMqc6EIGOZE=",
        ),
    ] {
        let body =
            std::fs::read(format!("{fixtures}/{file}")).unwrap_or_else(|e| panic!("{file}: {e}"));
        let h = headers("msg_2xtKOmOKFZcYQ8kBGzxhPlrgBJv", "1748751900", signature);
        assert_eq!(
            stored(&verifier(SECRET_A), h.clone(), &body),
            Ok(()),
            "{file}"
        );
        // Re-serialising the JSON (what the old Next.js route did) breaks it.
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let reserialised = serde_json::to_vec_pretty(&value).unwrap();
        assert_eq!(
            stored(&verifier(SECRET_A), h, &reserialised),
            Err(Rejection::SignatureMismatch),
            "{file}"
        );
    }
}

#[test]
fn any_configured_secret_may_match() {
    let h = headers(
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265330",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    );
    let rotated = verifier(&format!("{SECRET_B}, {SECRET_A}"));
    assert_eq!(stored(&rotated, h, br#"{"test": 2432232314}"#), Ok(()));
}

#[test]
fn secrets_with_and_without_prefix_are_accepted_and_bad_ones_are_named_by_position() {
    assert!(Verifier::new(&WebhookSecrets::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).is_ok());
    let error = Verifier::new(&WebhookSecrets::parse(&format!(
        "{SECRET_A} whsec_%%notbase64%%"
    )))
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(
        error.contains("secret 2 of 2 is not a valid whsec_ secret"),
        "{error}"
    );
    assert!(
        !error.contains("notbase64"),
        "the secret itself is never shown: {error}"
    );
}

fn header_map(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let value = HeaderValue::from_str(value).unwrap();
        map.insert(HeaderName::from_static(name), value);
    }
    map
}

#[test]
fn headers_are_read_from_either_naming() {
    let svix = header_map(&[
        ("svix-id", "msg_1"),
        ("svix-timestamp", "1"),
        ("svix-signature", "v1,x"),
    ]);
    let unbranded = header_map(&[
        ("webhook-id", "msg_1"),
        ("webhook-timestamp", "1"),
        ("webhook-signature", "v1,x"),
    ]);
    assert_eq!(
        SvixHeaders::from_request(&svix),
        SvixHeaders::from_request(&unbranded)
    );
    assert!(SvixHeaders::from_request(&svix).is_ok());
}

#[test]
fn missing_and_malformed_headers_are_named() {
    let long_id = "m".repeat(256);
    let cases: &[(&[(&'static str, &str)], HeaderError)] = &[
        (
            &[("svix-timestamp", "1"), ("svix-signature", "v1,x")],
            HeaderError::Missing("svix-id", "webhook-id"),
        ),
        (
            &[("svix-id", "m"), ("svix-signature", "v1,x")],
            HeaderError::Missing("svix-timestamp", "webhook-timestamp"),
        ),
        (
            &[("svix-id", "m"), ("svix-timestamp", "1")],
            HeaderError::Missing("svix-signature", "webhook-signature"),
        ),
        (
            &[
                ("svix-id", ""),
                ("svix-timestamp", "1"),
                ("svix-signature", "v1,x"),
            ],
            HeaderError::Malformed("svix-id", "empty"),
        ),
        (
            &[
                ("svix-id", &long_id),
                ("svix-timestamp", "1"),
                ("svix-signature", "v1,x"),
            ],
            HeaderError::Malformed("svix-id", "longer than 255 bytes"),
        ),
        (
            &[
                ("svix-id", "m"),
                ("svix-timestamp", "-5"),
                ("svix-signature", "v1,x"),
            ],
            HeaderError::Malformed("svix-timestamp", "not a Unix time in seconds"),
        ),
        (
            &[
                ("svix-id", "m"),
                ("svix-timestamp", "1.5"),
                ("svix-signature", "v1,x"),
            ],
            HeaderError::Malformed("svix-timestamp", "not a Unix time in seconds"),
        ),
        (
            &[
                ("svix-id", "m"),
                ("svix-timestamp", "1"),
                ("svix-signature", " "),
            ],
            HeaderError::Malformed("svix-signature", "empty"),
        ),
    ];
    for (pairs, expected) in cases {
        assert_eq!(
            SvixHeaders::from_request(&header_map(pairs)).as_ref().err(),
            Some(expected),
            "{pairs:?}"
        );
    }
}
