//! `clerk-sync-worker send`: sign a Clerk-shaped event with the configured
//! webhook secret, as Svix does, and post it to a running ingest. What a
//! developer uses instead of a tunnel to see clerk-sync work end to end.
//!
//! - `send user.created|user.updated|user.deleted [--user ID] [--email E]
//!   [--first-name F] [--last-name L] [--role R] [--version MS] [--svix-id ID]`
//!   builds the event ([`event`]);
//! - `send --file PAYLOAD.json` sends the file's bytes as they are;
//! - `send --scenario NAME` posts a tricky sequence and says what clerk-sync
//!   must end with ([`scenario`]).
//!
//! Exit 0 when every post was answered 2xx, 1 when the ingest is unreachable
//! or answers otherwise, 2 for bad arguments, a missing secret or an
//! unreadable file.

pub mod event;
pub mod post;
pub mod report;
pub mod scenario;

use crate::settings::Settings;
use clap::ArgGroup;
use clap::builder::NonEmptyStringValueParser;
use clerk_sync_domain::envelope::EnvelopeSummary;
use clerk_sync_domain::roles::MetadataSource;
use event::{EventSpec, EventType, UserFields};
use post::Poster;
use report::{Report, Sent};
use scenario::Scenario;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit code of bad arguments (as clap's).
const USAGE: u8 = 2;

#[derive(Debug, clap::Args)]
#[command(group(
    ArgGroup::new("what")
        .required(true)
        .args(["event_type", "file", "scenario"])
))]
pub struct Args {
    /// The event to build and send.
    #[arg(value_enum, value_name = "TYPE")]
    event_type: Option<EventType>,

    /// Sign and send this file's bytes exactly as they are, instead of
    /// building an event.
    #[arg(long, value_name = "PAYLOAD.json")]
    file: Option<PathBuf>,

    /// Send a tricky sequence and print the end state clerk-sync must reach.
    #[arg(long, value_enum, value_name = "NAME")]
    scenario: Option<Scenario>,

    /// The user's Clerk id [default: a fresh user_<random>].
    #[arg(long, value_name = "ID", conflicts_with = "file",
          value_parser = NonEmptyStringValueParser::new())]
    user: Option<String>,

    /// The user's primary e-mail address [default: none].
    #[arg(long, value_name = "ADDRESS", conflicts_with_all = ["file", "scenario"])]
    email: Option<String>,

    /// The user's first name [default: none].
    #[arg(long, value_name = "NAME", conflicts_with_all = ["file", "scenario"])]
    first_name: Option<String>,

    /// The user's last name [default: none].
    #[arg(long, value_name = "NAME", conflicts_with_all = ["file", "scenario"])]
    last_name: Option<String>,

    /// Put in public_metadata.role: student, instructor, or any other string
    /// (which clerk-sync reports and makes no row for) [default: none, so
    /// roles.default applies].
    #[arg(long, value_name = "ROLE", conflicts_with_all = ["file", "scenario"])]
    role: Option<String>,

    /// The event's version, in milliseconds since 1970: data.updated_at of
    /// user.created/user.updated, the envelope's timestamp of user.deleted
    /// [default: now]. As in Clerk's events, a value below 10^12 is read as
    /// seconds.
    #[arg(long, value_name = "MS", conflicts_with_all = ["file", "scenario"],
          value_parser = clap::value_parser!(i64).range(0..))]
    version: Option<i64>,

    /// The svix-id [default: a fresh msg_<random>]. Sending one again is
    /// what a Svix retry looks like.
    #[arg(long, value_name = "ID", conflicts_with = "scenario", value_parser = svix_id)]
    svix_id: Option<String>,

    /// The ingest's webhook URL [default: http://127.0.0.1:<port of
    /// ingest.listen>/api/webhooks/clerk].
    #[arg(long, value_name = "URL", value_parser = http_url)]
    url: Option<String>,

    /// Print one JSON document instead of the summary.
    #[arg(long)]
    json: bool,
}

/// A svix-id the ingest accepts: 1 to 255 bytes of visible ASCII.
fn svix_id(text: &str) -> Result<String, String> {
    if text.is_empty() || text.len() > 255 || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be 1 to 255 visible ASCII characters".to_owned());
    }
    Ok(text.to_owned())
}

/// An http(s) URL.
fn http_url(text: &str) -> Result<String, String> {
    match url::Url::parse(text) {
        Ok(url) if ["http", "https"].contains(&url.scheme()) && url.has_host() => {
            Ok(text.to_owned())
        }
        Ok(_) => Err("must be an http:// or https:// URL".to_owned()),
        Err(e) => Err(format!("not a URL ({e})")),
    }
}

/// One body to sign and post.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Post {
    svix_id: String,
    body: Vec<u8>,
    event_type: Option<String>,
    user: Option<String>,
    note: Option<String>,
}

/// Everything `send` posts for one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Posts {
    posts: Vec<Post>,
    scenario: Option<(String, String)>,
    expected: Vec<String>,
}

/// Fresh ids and the time, chosen once per invocation.
#[derive(Debug, Clone)]
struct Fresh {
    user: String,
    svix_id: String,
    now_ms: i64,
}

impl Fresh {
    fn now() -> Self {
        let random = || uuid::Uuid::new_v4().simple().to_string();
        Self {
            user: format!("user_{}", &random()[..24]),
            svix_id: format!("msg_{}", &random()[..24]),
            now_ms: crate::clock::now_ms(),
        }
    }
}

/// The posts that `args` ask for (the file, if any, already read). The
/// error is a usage message.
fn posts(args: &Args, file: Option<Vec<u8>>, fresh: Fresh) -> Result<Posts, String> {
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
        let plan = scenario::plan(scenario, &user, &svix_id, fresh.now_ms - 1_000);
        return Ok(Posts {
            posts: plan
                .steps
                .into_iter()
                .map(|step| Post {
                    svix_id: step.svix_id,
                    body: event::body(&step.spec),
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
            body: event::body(&spec),
            event_type: Some(event_type.as_str().to_owned()),
            user: Some(user),
            note: None,
        }],
        scenario: None,
        expected: Vec::new(),
    })
}

/// The file's bytes, which must be text for Svix to sign them.
fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if std::str::from_utf8(&bytes).is_err() {
        return Err(format!(
            "{} is not UTF-8 text, which Svix cannot sign",
            path.display()
        ));
    }
    Ok(bytes)
}

pub async fn run(settings: Settings, args: Args) -> anyhow::Result<ExitCode> {
    let file = match args.file.as_deref().map(read_file).transpose() {
        Ok(file) => file,
        Err(message) => return Ok(usage(&message)),
    };
    let wanted = match posts(&args, file, Fresh::now()) {
        Ok(wanted) => wanted,
        Err(message) => return Ok(usage(&message)),
    };
    if args.role.is_some()
        && !settings
            .roles
            .sources
            .contains(&MetadataSource::PublicMetadata)
    {
        tracing::warn!(
            "roles.sources does not include public_metadata: clerk-sync will not read --role"
        );
    }
    let url = args
        .url
        .clone()
        .unwrap_or_else(|| post::default_url(settings.ingest.listen));
    let poster = Poster::new(&settings, url)?;

    let mut report = Report {
        url: poster.url().to_owned(),
        scenario: wanted.scenario,
        sent: Vec::new(),
        expected: wanted.expected,
    };
    let mut failure = None;
    for post in wanted.posts {
        let answer = match poster.post(&post.svix_id, &post.body).await {
            Ok(answer) => answer,
            Err(e) => {
                failure = Some(format!("{e:#}"));
                break;
            }
        };
        if !answer.is_success() {
            failure = Some(format!(
                "the ingest at {} answered {} to {}: {}",
                poster.url(),
                report::status_text(answer.status),
                post.svix_id,
                report::one_line(&answer.body)
            ));
        }
        report.sent.push(Sent {
            svix_id: post.svix_id,
            event_type: post.event_type,
            user: post.user,
            note: post.note,
            answer,
        });
        if failure.is_some() {
            break;
        }
    }

    if args.json {
        println!("{:#}", report.json(failure.as_deref()));
    } else if !report.sent.is_empty() {
        print!("{}", report.human(failure.is_none()));
    }
    match failure {
        Some(reason) => Err(anyhow::anyhow!(reason)),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// A usage fault found after parsing: one line, exit 2.
fn usage(message: &str) -> ExitCode {
    eprintln!("clerk-sync-worker: {message}");
    ExitCode::from(USAGE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use clap::error::ErrorKind;
    use clerk_sync_domain::clerk_event::{EventKind, ParsedEvent};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(argv: &[&str]) -> Result<Args, clap::Error> {
        Cli::try_parse_from(std::iter::once("send").chain(argv.iter().copied())).map(|c| c.args)
    }

    fn args(argv: &[&str]) -> Args {
        parse(argv).unwrap()
    }

    fn refused(argv: &[&str]) -> ErrorKind {
        match parse(argv) {
            Ok(args) => panic!("{argv:?} accepted: {args:?}"),
            Err(e) => e.kind(),
        }
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
    fn exactly_one_of_type_file_and_scenario() {
        assert_eq!(refused(&[]), ErrorKind::MissingRequiredArgument);
        assert_eq!(
            refused(&["user.created", "--file", "x.json"]),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            refused(&["user.created", "--scenario", "duplicates"]),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            refused(&["--file", "x.json", "--scenario", "duplicates"]),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(refused(&["user.signed_in"]), ErrorKind::InvalidValue);
        assert_eq!(refused(&["--scenario", "chaos"]), ErrorKind::InvalidValue);
    }

    #[test]
    fn event_flags_do_not_go_with_a_file_or_a_scenario() {
        for flag in [
            "--email",
            "--first-name",
            "--last-name",
            "--role",
            "--version",
        ] {
            for other in [["--file", "x.json"], ["--scenario", "out-of-order"]] {
                let kind = refused(&[other[0], other[1], flag, "1"]);
                assert_eq!(kind, ErrorKind::ArgumentConflict, "{flag} with {other:?}");
            }
        }
        assert_eq!(
            refused(&["--file", "x.json", "--user", "user_a"]),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            refused(&["--scenario", "duplicates", "--svix-id", "msg_a"]),
            ErrorKind::ArgumentConflict
        );
        // What does go together.
        args(&["--scenario", "duplicates", "--user", "user_a"]);
        args(&["--file", "x.json", "--svix-id", "msg_a", "--json"]);
    }

    #[test]
    fn values_are_checked_when_parsed() {
        assert_eq!(
            refused(&["user.created", "--url", "ftp://host/x"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            refused(&["user.created", "--url", "not a url"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            refused(&["user.created", "--version=-5"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            refused(&["user.created", "--svix-id", "msg with space"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            refused(&["user.created", "--user", ""]),
            ErrorKind::InvalidValue
        );
        args(&[
            "user.created",
            "--url",
            "https://example.com/api/webhooks/clerk",
        ]);
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
        assert_eq!(user.public_metadata.get("role"), Some(&"instructor".into()));
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
