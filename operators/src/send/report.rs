//! What `send` prints: one line per post, and for a scenario the end state
//! clerk-sync must reach; or one JSON document with `--json`.

use super::poster::Answer;
use crate::table;
use serde_json::{Value, json};

/// One post and the ingest's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub svix_id: String,
    pub event_type: Option<String>,
    pub user: Option<String>,
    /// Its part in a scenario.
    pub note: Option<String>,
    pub answer: Answer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub url: String,
    /// The scenario's name and user.
    pub scenario: Option<(String, String)>,
    pub sent: Vec<Sent>,
    pub expected: Vec<String>,
}

/// Most characters of an answer shown on a line.
const ANSWER_WIDTH: usize = 200;

impl Report {
    /// The human summary: a table of the posts and, for a scenario, the
    /// end state to expect. `complete`: every post was answered 2xx (the
    /// expected end state is shown only then).
    pub fn human(&self, complete: bool) -> String {
        let mut out = match &self.scenario {
            Some((name, user)) => format!("scenario {name} for {user}, sent to {}\n", self.url),
            None => format!("sent to {}\n", self.url),
        };
        let second = if self.scenario.is_some() {
            "STEP"
        } else {
            "USER"
        };
        let rows: Vec<Vec<String>> = self
            .sent
            .iter()
            .map(|sent| {
                let what = match (&self.scenario, &sent.note) {
                    (Some(_), Some(note)) => note.clone(),
                    _ => sent.user.clone().unwrap_or_else(|| "-".to_owned()),
                };
                vec![
                    sent.event_type.clone().unwrap_or_else(|| "-".to_owned()),
                    what,
                    sent.svix_id.clone(),
                    status_text(sent.answer.status),
                    one_line(&sent.answer.body),
                ]
            })
            .collect();
        out.push_str(&table::render(
            &["TYPE", second, "SVIX-ID", "STATUS", "ANSWER"],
            &rows,
        ));
        out.push('\n');
        if complete && !self.expected.is_empty() {
            out.push_str("expected once the worker has applied them:\n");
            for line in &self.expected {
                out.push_str(&format!("  {line}\n"));
            }
        }
        out
    }

    /// The JSON document; `error` is the reason the command failed, if it did.
    pub fn json(&self, error: Option<&str>) -> Value {
        let events: Vec<Value> = self
            .sent
            .iter()
            .map(|sent| {
                json!({
                    "svix_id": sent.svix_id,
                    "type": sent.event_type,
                    "user": sent.user,
                    "note": sent.note,
                    "status": sent.answer.status,
                    "answer": answer_value(&sent.answer.body),
                })
            })
            .collect();
        json!({
            "url": self.url,
            "scenario": self.scenario.as_ref().map(|(name, _)| name),
            "user": self.scenario.as_ref().map(|(_, user)| user),
            "events": events,
            "expected": self.expected,
            "error": error,
        })
    }
}

/// `202 Accepted`, or the number alone for a code without a name.
pub fn status_text(status: u16) -> String {
    match reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|code| code.canonical_reason())
    {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

/// The answer on one line, shortened when long.
pub fn one_line(body: &str) -> String {
    let line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    table::truncate(&line, ANSWER_WIDTH)
}

/// The answer as JSON when it is JSON (the ingest's always is), else text.
fn answer_value(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(svix_id: &str, note: Option<&str>, status: u16, body: &str) -> Sent {
        Sent {
            svix_id: svix_id.to_owned(),
            event_type: Some("user.created".to_owned()),
            user: Some("user_a".to_owned()),
            note: note.map(str::to_owned),
            answer: Answer {
                status,
                body: body.to_owned(),
            },
        }
    }

    const URL: &str = "http://127.0.0.1:8080/api/webhooks/clerk";
    const QUEUED: &str = r#"{"status":"queued"}"#;

    #[test]
    fn one_event_is_one_line_with_its_user_svix_id_status_and_answer() {
        let report = Report {
            url: URL.to_owned(),
            scenario: None,
            sent: vec![sent("msg_1", None, 202, QUEUED)],
            expected: Vec::new(),
        };
        assert_eq!(
            report.human(true),
            format!(
                "sent to {URL}\n\
                 TYPE          USER    SVIX-ID  STATUS        ANSWER\n\
                 user.created  user_a  msg_1    202 Accepted  {QUEUED}\n"
            )
        );
    }

    #[test]
    fn a_scenario_shows_each_step_and_then_what_to_expect() {
        let report = Report {
            url: URL.to_owned(),
            scenario: Some(("out-of-order".to_owned(), "user_a".to_owned())),
            sent: vec![
                sent("msg_x_1", Some("v1"), 202, QUEUED),
                sent("msg_x_3", Some("v2, late"), 202, QUEUED),
            ],
            expected: vec!["user_a has first name 'v3'".to_owned()],
        };
        let text = report.human(true);
        assert_eq!(
            text,
            format!(
                "scenario out-of-order for user_a, sent to {URL}\n\
                 TYPE          STEP      SVIX-ID  STATUS        ANSWER\n\
                 user.created  v1        msg_x_1  202 Accepted  {QUEUED}\n\
                 user.created  v2, late  msg_x_3  202 Accepted  {QUEUED}\n\
                 expected once the worker has applied them:\n\
                 \x20 user_a has first name 'v3'\n"
            )
        );
        assert!(!report.human(false).contains("expected"));
    }

    #[test]
    fn json_has_every_field_and_the_answer_as_json() {
        let report = Report {
            url: URL.to_owned(),
            scenario: None,
            sent: vec![sent("msg_1", None, 401, r#"{"error":"bad"}"#)],
            expected: Vec::new(),
        };
        let value = report.json(Some("the ingest answered 401"));
        assert_eq!(
            value,
            json!({
                "url": URL,
                "scenario": null,
                "user": null,
                "events": [{
                    "svix_id": "msg_1", "type": "user.created", "user": "user_a",
                    "note": null, "status": 401, "answer": {"error": "bad"},
                }],
                "expected": [],
                "error": "the ingest answered 401",
            })
        );
    }

    #[test]
    fn an_answer_that_is_not_json_is_kept_as_text() {
        assert_eq!(answer_value("Bad Gateway"), json!("Bad Gateway"));
        assert_eq!(answer_value(""), json!(""));
    }

    #[test]
    fn long_or_multi_line_answers_fit_on_one_line() {
        assert_eq!(one_line("a\n  b\r\nc "), "a b c");
        let long = "é".repeat(300);
        let short = one_line(&long);
        assert_eq!(short.chars().count(), ANSWER_WIDTH);
        assert!(short.ends_with('…'));
    }

    #[test]
    fn statuses_are_shown_with_their_reason() {
        assert_eq!(status_text(202), "202 Accepted");
        assert_eq!(status_text(401), "401 Unauthorized");
        assert_eq!(status_text(599), "599");
    }
}
