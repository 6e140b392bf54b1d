//! A batch in the traces: the W3C context each message carries (the
//! ingest put it in the headers) joins the worker's spans to the webhook's.

use crate::taking::batch::Taken;
use clerk_sync_runtime::telemetry::fields;
use clerk_sync_runtime::traces;
use clerk_sync_store::incoming::Incoming;
use clerk_sync_store::plan::user_of;

/// While traces are exported: the batch's span goes in the trace of its
/// first message's webhook (the W3C context the ingest put in the message's
/// headers) and links to the others'; each message gets a span `event` in
/// its own webhook's trace, with its svix-id and user, open until the
/// batch is settled.
pub(super) fn events(
    batch_span: &tracing::Span,
    batch: &[Taken],
    messages: &[Incoming],
) -> Vec<tracing::Span> {
    if !traces::enabled() {
        return Vec::new();
    }
    let mut events = Vec::with_capacity(batch.len());
    for (index, (taken, message)) in batch.iter().zip(messages).enumerate() {
        let context = traces::context_of(taken.delivery.properties.headers().as_ref());
        match index {
            0 => traces::set_parent(batch_span, context.clone()),
            _ => traces::add_link(batch_span, &context),
        }
        let user = user_of(message);
        let event = tracing::info_span!(
            "event",
            { fields::SVIX_ID } = %message.svix_id,
            { fields::CLERK_USER_ID } = user.as_deref().unwrap_or(""),
        );
        traces::set_parent(&event, context);
        event.follows_from(batch_span);
        events.push(event);
    }
    events
}
