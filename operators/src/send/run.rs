//! Running `send`: read the file, build the posts, sign and post each,
//! report.

use super::args::Args;
use super::poster::Poster;
use super::posts::{Fresh, posts, read_file};
use super::report::{Report, Sent};
use clerk_sync_domain::roles::MetadataSource;
use clerk_sync_store::settings::Settings;
use std::process::ExitCode;

/// Exit code of bad arguments (as clap's).
const USAGE: u8 = 2;

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
        .unwrap_or_else(|| super::poster::default_url(settings.ingest.listen));
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
                super::report::status_text(answer.status),
                post.svix_id,
                super::report::one_line(&answer.body)
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
