//! The events of a chaos run: a history per user, the deliveries Svix
//! would make of them, and a seeded generator so a run can be repeated.

use crate::common::model::{Change, Modelled};

const T0: i64 = 1_700_000_000_000;

/// One distinct event and its body.
#[derive(Debug)]
pub struct Sent {
    pub modelled: Modelled,
    pub body: Vec<u8>,
}

/// Per user a create and 1 to 17 updates (about 10 events per user; the
/// role changes now and then, the e-mail address with every step), and for
/// one user in five a delete at a time that may come before some updates:
/// it is final all the same.
pub fn histories(users: usize, rng: &mut Rng) -> Vec<Sent> {
    let mut sent = Vec::new();
    for u in 0..users {
        let user = format!("user_chaos{u:05}");
        let updates = 1 + rng.below(17) as i64;
        for step in 0..=updates {
            let role = match rng.below(5) {
                0 => Some("instructor"),
                1 => Some("student"),
                _ => None,
            };
            let first = format!("F{step}");
            let email = format!("{user}.{step}@example.com");
            let at = T0 + step * 1_000 + rng.below(1_500) as i64;
            let (event_type, rank) = if step == 0 {
                ("user.created", 0)
            } else {
                ("user.updated", 1)
            };
            let svix_id = format!("msg_{user}_{step}");
            let metadata = role.map_or(serde_json::json!({}), |r| serde_json::json!({"role": r}));
            let body = serde_json::json!({
                "type": event_type, "object": "event", "timestamp": at,
                "data": {"id": user, "object": "user", "first_name": first, "last_name": "Chaos",
                    "image_url": "https://img.clerk.com/x", "primary_email_address_id": "idn_primary",
                    "email_addresses": [
                        {"id": "idn_old", "email_address": format!("old.{user}@example.com")},
                        {"id": "idn_primary", "email_address": email}],
                    "public_metadata": metadata, "private_metadata": {}, "unsafe_metadata": {},
                    "created_at": T0, "updated_at": at}
            });
            sent.push(Sent {
                modelled: Modelled {
                    order: (at, rank, svix_id.clone()),
                    svix_id,
                    user: user.clone(),
                    change: Change::Upsert { first, email, role },
                },
                body: serde_json::to_vec(&body).unwrap_or_default(),
            });
        }
        if rng.below(5) == 0 {
            let at = T0 + rng.below(updates as u64 * 1_000 + 1_000) as i64;
            let svix_id = format!("msg_{user}_deleted");
            let body = serde_json::json!({"type": "user.deleted", "object": "event", "timestamp": at,
                "data": {"id": user, "object": "user", "deleted": true}});
            sent.push(Sent {
                modelled: Modelled {
                    order: (at, 2, svix_id.clone()),
                    svix_id,
                    user,
                    change: Change::Delete,
                },
                body: serde_json::to_vec(&body).unwrap_or_default(),
            });
        }
    }
    sent
}

/// Every event once, one in ten twice (a redelivery by Svix: same svix-id,
/// same body), shuffled.
pub fn deliveries<'a>(events: &'a [Sent], rng: &mut Rng) -> Vec<&'a Sent> {
    let mut all: Vec<&Sent> = events.iter().chain(events.iter().step_by(10)).collect();
    for i in (1..all.len()).rev() {
        all.swap(i, rng.below(i as u64 + 1) as usize);
    }
    all
}

/// A small deterministic generator (a 64-bit LCG), so a run is repeatable
/// from its printed seed.
#[derive(Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}
