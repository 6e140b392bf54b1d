//! The load: Clerk-shaped events of about 2 KB, as the model sees them,
//! and published straight into the shard queues.

use crate::common::model::{Change, Modelled};
use anyhow::{Result, bail};
use clerk_sync_domain::topology::Topology;
use clerk_sync_runtime::amqp;
use clerk_sync_runtime::secret_url::SecretUrl;
use clerk_sync_testkit::webhook;
use lapin::BasicProperties;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

pub const T0: i64 = 1_700_000_000_000;

pub struct Event {
    pub svix_id: String,
    pub user: String,
    pub at_ms: i64,
    pub body: Vec<u8>,
    /// What the model reads from it: (rank, change).
    model: (u8, Change),
}

/// `users` users, `total` events: a create, then updates, and for one user
/// in ten a final delete. Events are interleaved across users, as traffic is.
pub fn generate(users: usize, total: usize) -> Vec<Event> {
    let per_user = total / users;
    let padding = "x".repeat(1_150);
    let mut events = Vec::with_capacity(total);
    for step in 0..per_user {
        for u in 0..users {
            let user = format!("user_bench{u:06}");
            let at_ms = T0 + (step as i64) * 1_000;
            let svix_id = format!("msg_bench_{u}_{step}");
            let role = if u % 7 == 0 { "instructor" } else { "student" };
            let first = format!("First{step}");
            let email = format!("{user}@example.com");
            let (body, model) = if step + 1 == per_user && u % 10 == 0 {
                let body = serde_json::json!({"type": "user.deleted", "object": "event", "timestamp": at_ms,
                    "data": {"id": user, "object": "user", "deleted": true}});
                (body, (2, Change::Delete))
            } else {
                let (event_type, rank) = if step == 0 {
                    ("user.created", 0)
                } else {
                    ("user.updated", 1)
                };
                let body = serde_json::json!({"type": event_type, "object": "event", "timestamp": at_ms,
                    "data": {"id": user, "object": "user", "first_name": first, "last_name": "Bench",
                        "image_url": "https://img.clerk.com/eyJ0eXBlIjoiZGVmYXVsdCJ9",
                        "primary_email_address_id": "idn_2",
                        "email_addresses": [
                            {"id": "idn_1", "object": "email_address", "email_address": format!("old.{user}@example.com"), "verification": {"status": "verified", "strategy": "email_code"}},
                            {"id": "idn_2", "object": "email_address", "email_address": email, "verification": {"status": "verified", "strategy": "email_code"}}],
                        "phone_numbers": [], "web3_wallets": [], "external_accounts": [],
                        "public_metadata": {"role": role},
                        "private_metadata": {}, "unsafe_metadata": {"signup_form": padding},
                        "created_at": T0, "updated_at": at_ms, "last_sign_in_at": at_ms,
                        "password_enabled": true, "two_factor_enabled": false}});
                (
                    body,
                    (
                        rank,
                        Change::Upsert {
                            first,
                            email,
                            role: Some(role),
                        },
                    ),
                )
            };
            events.push(Event {
                svix_id,
                user,
                at_ms,
                body: serde_json::to_vec(&body).unwrap_or_default(),
                model,
            });
        }
    }
    events
}

/// The events as the model sees them.
pub fn modelled(events: &[Event]) -> Vec<Modelled> {
    events
        .iter()
        .map(|e| Modelled {
            svix_id: e.svix_id.clone(),
            user: e.user.clone(),
            order: (e.at_ms, e.model.0, e.svix_id.clone()),
            change: e.model.1.clone(),
        })
        .collect()
}

pub async fn publish(url: &SecretUrl, topology: &Topology, events: &[Event]) -> Result<()> {
    let connection = amqp::connect(url, "bench-load").await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    for chunk in events.chunks(1_000) {
        let confirms = chunk.iter().map(|e| {
            // Signed as Svix signs, since the workers check the signature.
            let mut headers = FieldTable::default();
            let signed =
                webhook::signed_headers(webhook::SECRET, &e.svix_id, e.at_ms / 1000, &e.body)
                    .unwrap_or_default();
            for (name, value) in signed {
                headers.insert(
                    name.into(),
                    AMQPValue::LongString(LongString::from(value.as_str())),
                );
            }
            let properties = BasicProperties::default()
                .with_delivery_mode(2)
                .with_message_id(ShortString::from(e.svix_id.as_str()))
                .with_headers(headers);
            let queue = topology.queue_for(&e.user);
            let channel = channel.clone();
            let exchange = topology.exchange();
            async move {
                channel
                    .basic_publish(
                        exchange.as_str().into(),
                        queue.as_str().into(),
                        BasicPublishOptions::default(),
                        &e.body,
                        properties,
                    )
                    .await?
                    .await
            }
        });
        for confirm in futures::future::join_all(confirms).await {
            if !confirm?.is_ack() {
                bail!("RabbitMQ refused a message");
            }
        }
    }
    let _ = connection.close(200, "loaded".into()).await;
    Ok(())
}
