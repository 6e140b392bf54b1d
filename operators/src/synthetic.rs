//! Events clerk-sync itself records (forget, reconcile): Clerk-shaped bodies
//! with a svix-id naming their origin and no Svix signature, applied
//! through the same path as webhooks so that the log explains every row.

use clerk_sync_domain::clerk_event::ParsedEvent;
use clerk_sync_store::clock::now_ms;
use clerk_sync_store::incoming::Incoming;

/// A synthetic event from `origin` (`forget`, `reconcile`) with `body`.
pub fn event(origin: &'static str, body: &serde_json::Value) -> Incoming {
    let now_ms = now_ms();
    let body = body.to_string().into_bytes();
    Incoming {
        svix_id: format!("{origin}_{}", uuid::Uuid::new_v4().simple()),
        svix_timestamp: Some((now_ms / 1000).to_string()),
        svix_signature: None,
        received_at_ms: Some(now_ms),
        event: ParsedEvent::parse(&body),
        body,
        delivery_count: 0,
        recorded_by: Some(origin),
    }
}

/// A `user.deleted` for `user`, versioned now.
pub fn deleted(origin: &'static str, user: &str) -> Incoming {
    event(
        origin,
        &serde_json::json!({
            "type": "user.deleted",
            "object": "event",
            "timestamp": now_ms(),
            "data": {"id": user, "object": "user", "deleted": true},
        }),
    )
}

/// For clap: a Clerk user id is a non-empty word without spaces.
pub fn user_id_arg(text: &str) -> Result<String, String> {
    if !text.is_empty() && text.len() <= 255 && !text.chars().any(char::is_whitespace) {
        Ok(text.to_owned())
    } else {
        Err(format!("'{text}' is not a Clerk user id (user_...)"))
    }
}
