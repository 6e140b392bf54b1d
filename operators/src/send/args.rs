//! `send`'s arguments, checked as clap parses them.

use super::event::EventType;
use super::scenario::Scenario;
use clap::ArgGroup;
use clap::builder::NonEmptyStringValueParser;
use std::path::PathBuf;

// The field docs are `--help` text, where `<random>` reads as meant.
#[allow(rustdoc::invalid_html_tags)]
#[derive(Debug, clap::Args)]
#[command(group(
    ArgGroup::new("what")
        .required(true)
        .args(["event_type", "file", "scenario"])
))]
pub struct Args {
    /// The event to build and send.
    #[arg(value_enum, value_name = "TYPE")]
    pub(super) event_type: Option<EventType>,

    /// Sign and send this file's bytes exactly as they are, instead of
    /// building an event.
    #[arg(long, value_name = "PAYLOAD.json")]
    pub(super) file: Option<PathBuf>,

    /// Send a tricky sequence and print the end state clerk-sync must reach.
    #[arg(long, value_enum, value_name = "NAME")]
    pub(super) scenario: Option<Scenario>,

    /// The user's Clerk id [default: a fresh user_<random>].
    #[arg(long, value_name = "ID", conflicts_with = "file",
          value_parser = NonEmptyStringValueParser::new())]
    pub(super) user: Option<String>,

    /// The user's primary e-mail address [default: none].
    #[arg(long, value_name = "ADDRESS", conflicts_with_all = ["file", "scenario"])]
    pub(super) email: Option<String>,

    /// The user's first name [default: none].
    #[arg(long, value_name = "NAME", conflicts_with_all = ["file", "scenario"])]
    pub(super) first_name: Option<String>,

    /// The user's last name [default: none].
    #[arg(long, value_name = "NAME", conflicts_with_all = ["file", "scenario"])]
    pub(super) last_name: Option<String>,

    /// Put in public_metadata.role: student, instructor, or any other string
    /// (which clerk-sync reports and makes no row for) [default: none, so
    /// roles.default applies].
    #[arg(long, value_name = "ROLE", conflicts_with_all = ["file", "scenario"])]
    pub(super) role: Option<String>,

    /// The event's version, in milliseconds since 1970: data.updated_at of
    /// user.created/user.updated, the envelope's timestamp of user.deleted
    /// [default: now]. As in Clerk's events, a value below 10^12 is read as
    /// seconds.
    #[arg(long, value_name = "MS", conflicts_with_all = ["file", "scenario"],
          value_parser = clap::value_parser!(i64).range(0..))]
    pub(super) version: Option<i64>,

    /// The svix-id [default: a fresh msg_<random>]. Sending one again is
    /// what a Svix retry looks like.
    #[arg(long, value_name = "ID", conflicts_with = "scenario", value_parser = svix_id)]
    pub(super) svix_id: Option<String>,

    /// The ingest's webhook URL [default: http://127.0.0.1:<port of
    /// ingest.listen>/api/webhooks/clerk].
    #[arg(long, value_name = "URL", value_parser = http_url)]
    pub(super) url: Option<String>,

    /// Print one JSON document instead of the summary.
    #[arg(long)]
    pub(super) json: bool,
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

/// `send` ARGV as clap parses it (for the tests).
#[cfg(test)]
pub(super) fn parse(argv: &[&str]) -> Result<Args, clap::Error> {
    use clap::Parser;
    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }
    Cli::try_parse_from(std::iter::once("send").chain(argv.iter().copied())).map(|c| c.args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn args(argv: &[&str]) -> Args {
        parse(argv).unwrap()
    }

    fn refused(argv: &[&str]) -> ErrorKind {
        match parse(argv) {
            Ok(args) => panic!("{argv:?} accepted: {args:?}"),
            Err(e) => e.kind(),
        }
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
}
