//! What one `send` posts: the event its flags build, a file as it is, or
//! a scenario's steps. Pure, apart from reading the file.

use super::args::Args;
use super::event::{EventSpec, EventType, UserFields};
use clerk_sync_domain::envelope::EnvelopeSummary;
use std::path::Path;

/// One body to sign and post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Post {
    pub(super) svix_id: String,
    pub(super) body: Vec<u8>,
    pub(super) event_type: Option<String>,
    pub(super) user: Option<String>,
    pub(super) note: Option<String>,
}

/// Everything `send` posts for one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Posts {
    pub(super) posts: Vec<Post>,
    pub(super) scenario: Option<(String, String)>,
    pub(super) expected: Vec<String>,
}

/// Fresh ids and the time, chosen once per invocation.
#[derive(Debug, Clone)]
pub(super) struct Fresh {
    pub(super) user: String,
    pub(super) svix_id: String,
    pub(super) now_ms: i64,
}

impl Fresh {
    pub(super) fn now() -> Self {
        let random = || uuid::Uuid::new_v4().simple().to_string();
        Self {
            user: format!("user_{}", &random()[..24]),
            svix_id: format!("msg_{}", &random()[..24]),
            now_ms: clerk_sync_store::clock::now_ms(),
        }
    }
}

/// The posts that `args` ask for (the file, if any, already read). The
/// error is a usage message.
pub(super) fn posts(args: &Args, file: Option<Vec<u8>>, fresh: Fresh) -> Result<Posts, String> {
    let user = args.user.clone().unwrap_or(fresh.user);
    let svix_id = args.svix_id.clone().unwrap_or(fresh.svix_id);
    if let Some(body) = file {
        let summary = EnvelopeSummary::read(&body);
        return Ok(Posts {
            posts: vec![Post {
                svix_id,
                body,
                event_type: summary.event_type,
                user: summary.clerk_user_id,
                note: None,
            }],
            scenario: None,
            expected: Vec::new(),
        });
    }
    if let Some(scenario) = args.scenario {
        // A second before now, so every version of the scenario is recent.
        let plan = super::scenario::plan(scenario, &user, &svix_id, fresh.now_ms - 1_000);
        return Ok(Posts {
            posts: plan
                .steps
                .into_iter()
                .map(|step| Post {
                    svix_id: step.svix_id,
                    body: super::event::body(&step.spec),
                    event_type: Some(step.spec.event_type.as_str().to_owned()),
                    user: Some(step.spec.user_id),
                    note: Some(step.note),
                })
                .collect(),
            scenario: Some((scenario.as_str().to_owned(), user)),
            expected: plan.expected,
        });
    }
    let Some(event_type) = args.event_type else {
        return Err("give an event type, --file or --scenario".to_owned());
    };
    let fields = UserFields {
        email: args.email.clone(),
        first_name: args.first_name.clone(),
        last_name: args.last_name.clone(),
        role: args.role.clone(),
    };
    if event_type == EventType::UserDeleted && fields != UserFields::default() {
        return Err(
            "--email, --first-name, --last-name and --role do not apply to \
                    user.deleted, whose data is the user id only"
                .to_owned(),
        );
    }
    let version_ms = args.version.unwrap_or(fresh.now_ms);
    let spec = EventSpec {
        event_type,
        user_id: user.clone(),
        version_ms,
        created_at_ms: version_ms,
        fields,
    };
    Ok(Posts {
        posts: vec![Post {
            svix_id,
            body: super::event::body(&spec),
            event_type: Some(event_type.as_str().to_owned()),
            user: Some(user),
            note: None,
        }],
        scenario: None,
        expected: Vec::new(),
    })
}

/// The file's bytes, which must be text for Svix to sign them.
pub(super) fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if std::str::from_utf8(&bytes).is_err() {
        return Err(format!(
            "{} is not UTF-8 text, which Svix cannot sign",
            path.display()
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::send::args::parse;
    use clerk_sync_domain::clerk_event::{EventKind, ParsedEvent};

    fn args(argv: &[&str]) -> Args {
        parse(argv).unwrap()
    }

    fn fresh() -> Fresh {
        Fresh {
            user: "user_fresh".to_owned(),
            svix_id: "msg_fresh".to_owned(),
            now_ms: 1_767_225_600_000,
        }
    }

    fn one(posts: Posts) -> Post {
        assert_eq!(posts.posts.len(), 1);
        posts.posts.into_iter().next().expect("none")
    }

    #[test]
    fn a_built_event_carries_the_flags() {
        let argv = [
            "user.updated",
            "--user",
            "user_a",
            "--email",
            "ada@example.com",
            "--first-name",
            "Ada",
            "--last-name",
            "Lovelace",
            "--role",
            "instructor",
            "--version",
            "1767225605000",
            "--svix-id",
            "msg_a",
        ];
        let post = one(posts(&args(&argv), None, fresh()).unwrap());
        assert_eq!(post.svix_id, "msg_a");
        assert_eq!(post.event_type.as_deref(), Some("user.updated"));
        assert_eq!(post.user.as_deref(), Some("user_a"));
        let event = ParsedEvent::parse(&post.body).unwrap();
        let EventKind::UserUpsert { user, .. } = &event.kind else {
            panic!("not an upsert: {event:?}");
        };
        assert_eq!(user.primary_email(), Some("ada@example.com"));
        assert_eq!(user.updated_at_ms, Some(1_767_225_605_000));
        assert_eq!(user.public_metadata.role.as_deref(), Some("instructor"));
    }

    #[test]
    fn defaults_are_a_fresh_user_a_fresh_svix_id_and_now() {
        let post = one(posts(&args(&["user.created"]), None, fresh()).unwrap());
        assert_eq!(post.svix_id, "msg_fresh");
        assert_eq!(post.user.as_deref(), Some("user_fresh"));
        let event = ParsedEvent::parse(&post.body).unwrap();
        let version = event.version(&post.svix_id, 0).expect("no version");
        assert_eq!(version.at_ms, fresh().now_ms);
        let fresh_ids = Fresh::now();
        assert!(fresh_ids.user.starts_with("user_") && fresh_ids.user.len() == 29);
        assert!(fresh_ids.svix_id.starts_with("msg_") && fresh_ids.svix_id.len() == 28);
        assert_ne!(Fresh::now().svix_id, fresh_ids.svix_id);
    }

    #[test]
    fn user_deleted_takes_no_profile_flags() {
        let error = posts(
            &args(&["user.deleted", "--email", "a@example.com"]),
            None,
            fresh(),
        );
        assert!(matches!(error, Err(message) if message.contains("user.deleted")));
        let post = one(posts(
            &args(&[
                "user.deleted",
                "--user",
                "user_a",
                "--version",
                "1767225609000",
            ]),
            None,
            fresh(),
        )
        .unwrap());
        let event = ParsedEvent::parse(&post.body).unwrap();
        assert_eq!(
            event.version("m", 0).map(|v| v.at_ms),
            Some(1_767_225_609_000)
        );
    }

    #[test]
    fn a_file_is_posted_as_it_is() {
        let body = b"{ \"type\": \"user.created\",\n  \"data\": {\"id\": \"user_f\"} }\n".to_vec();
        let post = one(posts(&args(&["--file", "x.json"]), Some(body.clone()), fresh()).unwrap());
        assert_eq!(post.body, body);
        assert_eq!(post.event_type.as_deref(), Some("user.created"));
        assert_eq!(post.user.as_deref(), Some("user_f"));
        // Not JSON at all: still sent, the worker logs it as failed.
        let post = one(posts(
            &args(&["--file", "x.json"]),
            Some(b"hello".to_vec()),
            fresh(),
        )
        .unwrap());
        assert_eq!((post.event_type, post.user), (None, None));
    }

    #[test]
    fn a_scenario_posts_its_steps_for_the_user() {
        let wanted = posts(
            &args(&["--scenario", "out-of-order", "--user", "user_s"]),
            None,
            fresh(),
        )
        .unwrap();
        assert_eq!(
            wanted.scenario,
            Some(("out-of-order".to_owned(), "user_s".to_owned()))
        );
        let ids: Vec<_> = wanted.posts.iter().map(|p| p.svix_id.as_str()).collect();
        assert_eq!(ids, ["msg_fresh_1", "msg_fresh_2", "msg_fresh_3"]);
        assert!(
            wanted
                .posts
                .iter()
                .all(|p| p.user.as_deref() == Some("user_s"))
        );
        assert_eq!(wanted.expected.len(), 2);
    }

    #[test]
    fn an_unreadable_or_binary_file_is_named() {
        let missing = Path::new("/nonexistent/clerk-sync/payload.json");
        assert!(
            matches!(read_file(missing), Err(m) if m.contains("/nonexistent/clerk-sync/payload.json"))
        );
        let binary = std::env::temp_dir().join(format!("send-{}.bin", uuid::Uuid::new_v4()));
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
        let result = read_file(&binary);
        let _ = std::fs::remove_file(&binary);
        assert!(matches!(result, Err(m) if m.contains("not UTF-8")));
    }
}
