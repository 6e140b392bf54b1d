use super::*;
use crate::envelope::EnvelopeSummary;
use proptest::prelude::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../fixtures/clerk/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

fn parse(name: &str) -> ParsedEvent {
    ParsedEvent::parse(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn upserted(event: &ParsedEvent) -> &ClerkUser {
    match &event.kind {
        EventKind::UserUpsert { user, .. } => user,
        other => panic!("not an upsert: {other:?}"),
    }
}

#[test]
fn clerk_docs_user_created() {
    let event = parse("user.created.json");
    assert_eq!(event.event_type, "user.created");
    let user = upserted(&event);
    assert_eq!(user.id, "user_29w83sxmDNGwOuEthce5gg56FcC");
    assert_eq!(user.primary_email(), Some("example@example.org"));
    assert_eq!(user.first_name.as_deref(), Some("Example"));
    assert_eq!(user.updated_at_ms, Some(1_654_012_591_835));
    assert_eq!(user.created_at_ms, Some(1_654_012_591_514));
    let version = event.version("msg_1", 0).expect("no version");
    assert_eq!(
        (version.at_ms, version.rank),
        (1_654_012_591_835, Rank::Created)
    );
}

#[test]
fn every_user_fixture_parses() {
    for name in [
        "user.created.json",
        "user.updated.json",
        "user.deleted.json",
        "user.created.captured-anonymized.compact.json",
        "openapi-spec/user.created.json",
        "openapi-spec/user.updated.json",
        "openapi-spec/user.deleted.json",
        "synthetic/user.created.phone-only.json",
        "synthetic/user.updated.role-instructor.json",
    ] {
        let event = parse(name);
        assert!(
            event.user_id().is_some_and(|id| id.starts_with("user_")),
            "{name}"
        );
    }
}

#[test]
fn the_spec_example_names_a_primary_that_is_not_in_the_list() {
    let event = parse("openapi-spec/user.created.json");
    let user = upserted(&event);
    assert!(user.primary_email_address_id.is_some());
    assert_eq!(user.primary_email(), None);
}

#[test]
fn a_phone_only_user_has_no_email_and_no_names() {
    let event = parse("synthetic/user.created.phone-only.json");
    let user = upserted(&event);
    assert_eq!(user.primary_email(), None);
    assert_eq!(user.first_name, None);
}

#[test]
fn a_deleted_event_is_versioned_by_its_envelope_timestamp_in_seconds_or_ms() {
    let docs = parse("user.deleted.json");
    assert_eq!(
        docs.version("m", 0).map(|v| (v.at_ms, v.rank)),
        Some((1_661_861_640_000, Rank::Deleted))
    );
    let spec = parse("openapi-spec/user.deleted.json");
    assert_eq!(
        spec.version("m", 0).map(|v| v.at_ms),
        Some(1_716_883_200_000),
        "seconds in the spec example"
    );
    let bare = ParsedEvent::parse(br#"{"type":"user.deleted","data":{"id":"user_1"}}"#).unwrap();
    assert_eq!(
        bare.version("m", 1_700_000_000).map(|v| v.at_ms),
        Some(1_700_000_000_000),
        "svix-timestamp last"
    );
}

#[test]
fn the_primary_email_is_found_wherever_it_is_in_the_list() {
    let body = br#"{"type":"user.updated","data":{"id":"user_1","primary_email_address_id":"idn_2",
        "email_addresses":[{"id":"idn_1","email_address":"first@example.com"},{"id":"idn_2","email_address":"primary@example.com"}]}}"#;
    let event = ParsedEvent::parse(body).unwrap();
    assert_eq!(
        upserted(&event).primary_email(),
        Some("primary@example.com")
    );
}

#[test]
fn other_events_are_unhandled_not_errors() {
    for (name, subject) in [
        (
            "session.created.json",
            Some("user_2g7np7Hrk0SN6kj5EDMLDaKNL0S"),
        ),
        ("organization.created.json", None),
        ("email.created.json", Some("user_abcd")),
        (
            "openapi-spec/sms.created.json",
            Some("user_2g7np7Hrk0SN6kj5EDMLDaKNL0S"),
        ),
    ] {
        let event = parse(name);
        assert!(matches!(event.kind, EventKind::Unhandled { .. }), "{name}");
        assert_eq!(event.user_id(), None, "{name}: no projection change");
        assert_eq!(event.subject_user_id(), subject, "{name}: logged under");
    }
}

#[test]
fn bodies_that_are_not_clerk_events_are_errors_that_say_why() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "body is not JSON"),
        (b"not json", "body is not JSON"),
        (b"[1]", "body is not a JSON object"),
        (br#"{"data":{}}"#, "event has no string \"type\""),
        (
            br#"{"type":"user.created"}"#,
            "user.created has no object \"data\"",
        ),
        (
            br#"{"type":"user.created","data":{"first_name":"x"}}"#,
            "user.created has no string \"data.id\"",
        ),
        (
            br#"{"type":"user.deleted","data":{"id":""}}"#,
            "user.deleted has no string \"data.id\"",
        ),
    ];
    for (body, expected) in cases {
        let error = ParsedEvent::parse(body)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.starts_with(expected), "{error}");
    }
}

#[test]
fn a_json_error_never_echoes_the_body() {
    let error = ParsedEvent::parse(b"{\"email\": \"secret@example.com\" oops")
        .err()
        .map(|e| e.to_string());
    assert!(error.is_some_and(|e| !e.contains("secret@example.com")));
}

proptest! {
    #[test]
    fn never_panics_on_any_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(event) = ParsedEvent::parse(&body) {
            let _ = event.version("msg", 0);
        }
    }

    #[test]
    fn never_panics_on_json_shaped_input(
        event_type in prop::sample::select(vec!["user.created", "user.updated", "user.deleted", "x"]),
        id in prop::option::of(".{0,8}"),
        updated_at in prop::option::of(any::<i64>()),
        timestamp in prop::option::of(any::<i64>()),
    ) {
        let body = serde_json::json!({"type": event_type, "timestamp": timestamp,
            "data": {"id": id, "updated_at": updated_at, "email_addresses": [1, {"id": 2}]}});
        if let Ok(event) = ParsedEvent::parse(body.to_string().as_bytes()) {
            let _ = event.version("msg", i64::MAX);
        }
    }
}

#[test]
fn values_the_database_cannot_hold_are_errors_with_the_type_and_user() {
    let long_id = format!("user_{}", "x".repeat(300));
    let cases: Vec<(String, Option<&str>, Option<&str>, &str)> = vec![
        (
            r#"{"type":"user.created","data":{"id":"user_1","first_name":"A\u0000da"}}"#.to_owned(),
            Some("user.created"),
            Some("user_1"),
            "user.created: data.first_name contains a NUL character",
        ),
        (
            format!(r#"{{"type":"user.updated","data":{{"id":"{long_id}"}}}}"#),
            Some("user.updated"),
            None,
            "user.updated: data.id is 305 bytes long; at most 255 can be stored",
        ),
        (
            r#"{"type":"user.updated","data":{"id":"user_1","updated_at":300000000000000}}"#
                .to_owned(),
            Some("user.updated"),
            Some("user_1"),
            "user.updated: data.updated_at 300000000000000 is outside the years 1 to 9999",
        ),
        (
            r#"{"type":"user.deleted","timestamp":-9000000000000000,"data":{"id":"user_1"}}"#
                .to_owned(),
            Some("user.deleted"),
            None,
            "user.deleted: timestamp -9000000000000000 is outside",
        ),
        (
            r#"{"type":"user.\u0000","data":{}}"#.to_owned(),
            None,
            None,
            "type contains a NUL character",
        ),
        (
            format!(
                r#"{{"type":"user.created","data":{{"id":"user_1","primary_email_address_id":"e","email_addresses":[{{"id":"e","email_address":"{}@example.com"}}]}}}}"#,
                "a".repeat(600)
            ),
            Some("user.created"),
            Some("user_1"),
            "user.created: the primary e-mail address is 612 bytes long",
        ),
    ];
    for (body, event_type, user, message) in cases {
        let error = ParsedEvent::parse(body.as_bytes())
            .err()
            .unwrap_or_else(|| panic!("{body} parsed"));
        assert!(error.to_string().starts_with(message), "{error}");
        assert_eq!(error.event_type(), event_type, "{error}");
        assert_eq!(error.user_id(), user, "{error}");
    }
    // A user id of another object that cannot be stored files the event
    // under no user; the event is still read (and ignored).
    let session = format!(r#"{{"type":"session.created","data":{{"user_id":"{long_id}"}}}}"#);
    let event = ParsedEvent::parse(session.as_bytes()).unwrap();
    assert_eq!(event.subject_user_id(), None);
}

#[test]
fn errors_keep_the_type_of_a_user_event_without_an_id() {
    let error = ParsedEvent::parse(br#"{"type":"user.created","data":{}}"#).err();
    assert_eq!(
        error.as_ref().and_then(ParseError::event_type),
        Some("user.created")
    );
    let unreadable = ParsedEvent::parse(b"nope").err();
    assert_eq!(unreadable.as_ref().and_then(ParseError::event_type), None);
}

proptest! {
    /// Whatever the parser accepts, PostgreSQL can store.
    #[test]
    fn what_parses_can_be_stored(
        id in "[a-z_\u{0}]{1,300}",
        name in "[A-Za-z\u{0}]{0,6}",
        updated_at in prop::option::of(any::<i64>()),
        timestamp in prop::option::of(any::<i64>()),
    ) {
        let body = serde_json::json!({"type": "user.updated", "timestamp": timestamp,
            "data": {"id": id, "first_name": name, "updated_at": updated_at}});
        if let Ok(event) = ParsedEvent::parse(body.to_string().as_bytes()) {
            let user = upserted(&event);
            prop_assert!(storable::key_problem(&user.id, storable::MAX_ID_BYTES).is_none());
            prop_assert!(!user.first_name.as_deref().unwrap_or_default().contains('\0'));
            for ms in [user.updated_at_ms, event.timestamp_ms].into_iter().flatten() {
                prop_assert!(storable::time_problem(ms).is_none());
            }
        }
    }

    /// The ingest's routing and the worker's log file an event under the
    /// same user, whatever the body.
    #[test]
    fn both_readers_find_the_same_user(
        event_type in prop::sample::select(vec!["user.created", "user.updated", "user.deleted",
            "user.signed_in", "session.created", "email.created"]),
        id in prop::option::of("[a-z_\u{0}]{0,3}|u{250,260}"),
        user_id in prop::option::of("[a-z_\u{0}]{0,3}|u{250,260}"),
    ) {
        let body = serde_json::json!({"type": event_type, "timestamp": 1_700_000_000_000_i64,
            "data": {"id": id, "user_id": user_id}});
        let bytes = body.to_string().into_bytes();
        let summary = EnvelopeSummary::read(&bytes);
        match ParsedEvent::parse(&bytes) {
            Ok(event) => prop_assert_eq!(summary.clerk_user_id.as_deref(), event.subject_user_id()),
            Err(e) => {
                if let Some(user) = e.user_id() {
                    prop_assert_eq!(summary.clerk_user_id.as_deref(), Some(user));
                }
            }
        }
    }
}

#[test]
fn metric_labels_are_the_user_events_and_two_others() {
    for known in ["user.created", "user.updated", "user.deleted"] {
        assert_eq!(metric_label(Some(known)), known);
    }
    assert_eq!(metric_label(Some("session.created")), "other");
    assert_eq!(metric_label(Some("user.created\u{0}x")), "other");
    assert_eq!(metric_label(None), "unknown");
}
