//! The tricky sequences `send --scenario` posts, each with the end state
//! clerk-sync must reach whatever happens in between. Pure: the caller
//! chooses the user, the svix-ids and the base time.

use super::event::{EventSpec, EventType, UserFields};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// created(v1), updated(v3), then the older updated(v2) late.
    OutOfOrder,
    /// the same event, same svix-id, three times (as Svix retries).
    Duplicates,
    /// created, deleted, then an update with a later version.
    DeleteThenUpdate,
}

impl Scenario {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OutOfOrder => "out-of-order",
            Self::Duplicates => "duplicates",
            Self::DeleteThenUpdate => "delete-then-update",
        }
    }
}

/// One post of a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub svix_id: String,
    pub spec: EventSpec,
    /// What this post is in the scenario, for the output.
    pub note: String,
}

/// What to post, in order, and what clerk-sync must end with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub expected: Vec<String>,
}

/// Versions of a scenario are a second apart, from `base_ms`.
const STEP_MS: i64 = 1_000;

/// The plan of `scenario` for `user`; svix-ids are `{id_prefix}_1`, `_2`, ...
pub fn plan(scenario: Scenario, user: &str, id_prefix: &str, base_ms: i64) -> Plan {
    let id = |n: u32| format!("{id_prefix}_{n}");
    let upsert = |event_type: EventType, n: i64, first_name: &str| EventSpec {
        event_type,
        user_id: user.to_owned(),
        version_ms: base_ms + n * STEP_MS,
        created_at_ms: base_ms,
        fields: UserFields {
            first_name: Some(first_name.to_owned()),
            last_name: Some(scenario.as_str().to_owned()),
            ..UserFields::default()
        },
    };
    let step = |svix_id: String, spec: EventSpec, note: &str| Step {
        svix_id,
        spec,
        note: note.to_owned(),
    };
    match scenario {
        Scenario::OutOfOrder => Plan {
            steps: vec![
                step(id(1), upsert(EventType::UserCreated, 0, "v1"), "v1"),
                step(id(2), upsert(EventType::UserUpdated, 2, "v3"), "v3"),
                step(
                    id(3),
                    upsert(EventType::UserUpdated, 1, "v2"),
                    "v2, late: older than v3",
                ),
            ],
            expected: vec![
                format!("{user} has first name 'v3' (one Student row)"),
                format!(
                    "{} (v2) logged stale; {} and {} applied",
                    id(3),
                    id(1),
                    id(2)
                ),
            ],
        },
        Scenario::Duplicates => {
            let created = upsert(EventType::UserCreated, 0, "v1");
            Plan {
                steps: (1..=3)
                    .map(|n| {
                        let note = if n == 1 {
                            "v1"
                        } else {
                            "v1 again, same svix-id"
                        };
                        step(id(1), created.clone(), note)
                    })
                    .collect(),
                expected: vec![
                    format!("{user} has first name 'v1' (one Student row)"),
                    format!("{} logged once, applied", id(1)),
                ],
            }
        }
        Scenario::DeleteThenUpdate => Plan {
            steps: vec![
                step(id(1), upsert(EventType::UserCreated, 0, "v1"), "v1"),
                step(
                    id(2),
                    EventSpec {
                        event_type: EventType::UserDeleted,
                        user_id: user.to_owned(),
                        version_ms: base_ms + STEP_MS,
                        created_at_ms: base_ms,
                        fields: UserFields::default(),
                    },
                    "deleted",
                ),
                step(
                    id(3),
                    upsert(EventType::UserUpdated, 2, "v2"),
                    "v2, later than the deletion",
                ),
            ],
            expected: vec![
                format!("{user} has no Student or Instructor row (deleted stays deleted)"),
                format!(
                    "{} (v2) logged stale; {} and {} applied",
                    id(3),
                    id(1),
                    id(2)
                ),
            ],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clerk_sync_domain::clerk_event::ParsedEvent;

    const T: i64 = 1_767_225_600_000;

    /// (svix-id, type, version) of each step, as clerk-sync will read it.
    fn read(plan: &Plan) -> Vec<(String, String, i64)> {
        plan.steps
            .iter()
            .map(|step| {
                let body = super::super::event::body(&step.spec);
                let event = ParsedEvent::parse(&body).unwrap();
                let version = event.version(&step.svix_id, 0).expect("no version");
                assert_eq!(event.user_id(), Some("user_s"));
                (step.svix_id.clone(), event.event_type, version.at_ms)
            })
            .collect()
    }

    fn expected(rows: &[(&str, &str, i64)]) -> Vec<(String, String, i64)> {
        rows.iter()
            .map(|(id, t, v)| ((*id).to_owned(), (*t).to_owned(), *v))
            .collect()
    }

    #[test]
    fn out_of_order_sends_v3_before_v2() {
        let plan = plan(Scenario::OutOfOrder, "user_s", "msg_x", T);
        assert_eq!(
            read(&plan),
            expected(&[
                ("msg_x_1", "user.created", T),
                ("msg_x_2", "user.updated", T + 2_000),
                ("msg_x_3", "user.updated", T + 1_000),
            ])
        );
        let names: Vec<_> = plan
            .steps
            .iter()
            .map(|s| s.spec.fields.first_name.as_deref())
            .collect();
        assert_eq!(names, [Some("v1"), Some("v3"), Some("v2")]);
        assert_eq!(
            plan.expected[0],
            "user_s has first name 'v3' (one Student row)"
        );
        assert_eq!(
            plan.expected[1],
            "msg_x_3 (v2) logged stale; msg_x_1 and msg_x_2 applied"
        );
    }

    #[test]
    fn duplicates_send_one_event_three_times() {
        let plan = plan(Scenario::Duplicates, "user_s", "msg_x", T);
        assert_eq!(plan.steps.len(), 3);
        assert!(plan.steps.iter().all(|s| s
            == &Step {
                note: s.note.clone(),
                ..plan.steps[0].clone()
            }));
        assert_eq!(
            read(&plan)[0],
            ("msg_x_1".to_owned(), "user.created".to_owned(), T)
        );
        assert_eq!(plan.expected[1], "msg_x_1 logged once, applied");
    }

    #[test]
    fn delete_then_update_updates_after_the_deletion() {
        let plan = plan(Scenario::DeleteThenUpdate, "user_s", "msg_x", T);
        assert_eq!(
            read(&plan),
            expected(&[
                ("msg_x_1", "user.created", T),
                ("msg_x_2", "user.deleted", T + 1_000),
                ("msg_x_3", "user.updated", T + 2_000),
            ])
        );
        assert!(plan.expected[0].contains("no Student or Instructor row"));
    }

    #[test]
    fn scenario_names_are_the_flag_values() {
        use clap::ValueEnum;
        for scenario in Scenario::value_variants() {
            let value = scenario.to_possible_value().expect("no value");
            assert_eq!(value.get_name(), scenario.as_str());
        }
    }
}
