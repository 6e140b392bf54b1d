//! What reconcile found and did: one entry per user that differs, and
//! totals; rendered for people or as one JSON document. Pure.

use super::compare::Difference;
use clerk_sync_domain::outcome::Outcome;
use serde::Serialize;
use std::fmt::Write;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub api_url: String,
    pub dry_run: bool,
    pub prune: bool,
    /// Distinct users Clerk listed.
    pub listed: u64,
    /// Requests for pages of the list.
    pub pages: u64,
    /// Requests sent to Clerk's API, retries included.
    pub requests: u64,
    /// The budget they were paced by, per 10 s (0: none).
    pub request_budget: u32,
    /// How long the run took, in seconds.
    pub seconds: f64,
    /// Where this run took over an unfinished one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed: Option<Resumed>,
    pub totals: Totals,
    /// The users that differ, in the order found.
    pub users: Vec<Entry>,
}

/// An unfinished run this one went on with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resumed {
    /// When the unfinished run started (RFC 3339).
    pub started_at: String,
    /// Where in Clerk's list this run started.
    pub offset: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Totals {
    pub in_line: u64,
    /// Missing here: `user.created` recorded (or, dry, to be).
    pub created: u64,
    /// Differing: `user.updated` recorded (or, dry, to be).
    pub updated: u64,
    /// Gone from Clerk, pruned: `user.deleted` recorded (or, dry, to be).
    pub deleted: u64,
    /// Deleted here but still in Clerk: left deleted.
    pub deleted_here: u64,
    /// Held here, not in Clerk's list, left in place (no `--prune`).
    pub not_in_clerk: u64,
    /// Synthetic events written to the log (0 on a dry run).
    pub events: u64,
    /// Of those, the ones older than what was applied (no profile change).
    pub stale: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub user_id: String,
    /// `missing`, `differs`, `deleted_here` or `not_in_clerk`.
    pub difference: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_added: Option<&'static str>,
    /// The synthetic event that fixes it (recorded, or on a dry run due).
    pub event_type: Option<&'static str>,
    pub svix_id: Option<String>,
    /// The event's outcome in the log; none on a dry run.
    pub outcome: Option<&'static str>,
}

impl Entry {
    /// A listed user that differs; `None` when it is in line.
    pub fn of(user_id: &str, difference: &Difference) -> Option<Self> {
        let (name, fields, role_added) = match difference {
            Difference::InLine => return None,
            Difference::Missing => ("missing", Vec::new(), None),
            Difference::Differs { fields, role_added } => {
                ("differs", fields.clone(), role_added.map(|r| r.as_str()))
            }
            Difference::DeletedHere => ("deleted_here", Vec::new(), None),
        };
        Some(Self {
            user_id: user_id.to_owned(),
            difference: name,
            fields,
            role_added,
            event_type: difference.event_type(),
            svix_id: None,
            outcome: None,
        })
    }

    /// A user held here that Clerk does not have; `prune`: to be deleted.
    pub fn not_in_clerk(user_id: &str, prune: bool) -> Self {
        Self {
            user_id: user_id.to_owned(),
            difference: "not_in_clerk",
            fields: Vec::new(),
            role_added: None,
            event_type: prune.then_some("user.deleted"),
            svix_id: None,
            outcome: None,
        }
    }

    fn describe(&self) -> String {
        match self.difference {
            "missing" => "missing here".to_owned(),
            "differs" => {
                let mut parts = Vec::new();
                if !self.fields.is_empty() {
                    parts.push(format!("differs: {}", self.fields.join(", ")));
                }
                if let Some(role) = self.role_added {
                    parts.push(format!("no {role} row"));
                }
                parts.join("; ")
            }
            "deleted_here" => "deleted here, still in Clerk".to_owned(),
            _ => "not in Clerk".to_owned(),
        }
    }

    fn action(&self, dry_run: bool) -> String {
        match (self.event_type, dry_run, self.outcome) {
            (Some(event), true, _) => format!("would record {event}"),
            (Some(event), false, Some(outcome)) => format!("recorded {event}: {outcome}"),
            (Some(event), false, None) => format!("{event} not recorded"),
            (None, _, _) if self.difference == "deleted_here" => {
                "left deleted (deleted stays deleted)".to_owned()
            }
            (None, _, _) => "left in place (--prune removes it)".to_owned(),
        }
    }
}

impl Report {
    /// Count `entry` in the totals and keep it.
    pub fn add(&mut self, entry: Entry) {
        let totals = &mut self.totals;
        match (entry.difference, entry.event_type) {
            ("missing", _) => totals.created += 1,
            ("differs", _) => totals.updated += 1,
            ("deleted_here", _) => totals.deleted_here += 1,
            (_, Some(_)) => totals.deleted += 1,
            (_, None) => totals.not_in_clerk += 1,
        }
        self.users.push(entry);
    }

    /// Record the outcome of the synthetic event `svix_id` of the entry at
    /// `index` (none: it was not logged, being logged already).
    pub fn recorded(&mut self, index: usize, svix_id: String, outcome: Option<Outcome>) {
        self.totals.events += 1;
        if outcome == Some(Outcome::Stale) {
            self.totals.stale += 1;
        }
        if let Some(entry) = self.users.get_mut(index) {
            entry.svix_id = Some(svix_id);
            entry.outcome = Some(outcome.map_or("not recorded", Outcome::as_str));
        }
    }

    pub fn human(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Clerk at {}: {} listed in {}.{}",
            self.api_url,
            plural(self.listed, "user"),
            plural(self.pages, "page"),
            if self.dry_run {
                " Dry run: nothing written."
            } else {
                ""
            }
        );
        if let Some(resumed) = &self.resumed {
            let _ = writeln!(
                out,
                "Went on with the run started at {}, from user {} of the list.",
                resumed.started_at, resumed.offset
            );
        }
        let budget = match self.request_budget {
            0 => "no budget".to_owned(),
            n => format!("budget {n} per 10 s"),
        };
        let _ = writeln!(
            out,
            "{} to Clerk's API ({budget}).",
            plural(self.requests, "request")
        );
        let width = self
            .users
            .iter()
            .map(|e| e.user_id.len())
            .max()
            .unwrap_or(0);
        let described: Vec<String> = self.users.iter().map(Entry::describe).collect();
        let column = described.iter().map(String::len).max().unwrap_or(0);
        for (entry, description) in self.users.iter().zip(&described) {
            let _ = writeln!(
                out,
                "  {:width$}  {description:column$}  {}",
                entry.user_id,
                entry.action(self.dry_run)
            );
        }
        let t = &self.totals;
        let verbs = if self.dry_run {
            ("would create", "update", "delete")
        } else {
            ("created", "updated", "deleted")
        };
        let _ = write!(
            out,
            "{} {}, {} {}, {} {}; {} in line",
            verbs.0, t.created, verbs.1, t.updated, verbs.2, t.deleted, t.in_line
        );
        if t.deleted_here > 0 {
            let _ = write!(out, "; {} deleted here but still in Clerk", t.deleted_here);
        }
        if t.not_in_clerk > 0 {
            let _ = write!(
                out,
                "; {} not in Clerk, left in place (--prune removes them)",
                t.not_in_clerk
            );
        }
        if t.stale > 0 {
            let _ = write!(
                out,
                "; {} of the {} events recorded were stale (older than what was applied: no profile change)",
                t.stale, t.events
            );
        }
        out.push_str(".\n");
        out
    }
}

/// `1 page`, `2 pages`.
pub fn plural(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clerk_sync_domain::roles::Role;

    fn report(dry_run: bool) -> Report {
        let mut report = Report {
            api_url: "http://127.0.0.1:9".to_owned(),
            dry_run,
            listed: 4,
            pages: 1,
            requests: 2,
            request_budget: 20,
            ..Report::default()
        };
        report.totals.in_line = 1;
        for (user, difference) in [
            ("user_a", Difference::Missing),
            (
                "user_bb",
                Difference::Differs {
                    fields: vec!["first_name", "updated_at"],
                    role_added: Some(Role::Instructor),
                },
            ),
            ("user_c", Difference::DeletedHere),
        ] {
            report.add(Entry::of(user, &difference).expect("in line"));
        }
        report.add(Entry::not_in_clerk("user_d", true));
        report.add(Entry::not_in_clerk("user_e", false));
        report
    }

    #[test]
    fn a_run_that_went_on_with_an_unfinished_one_says_so() {
        let mut report = report(false);
        report.request_budget = 0;
        report.resumed = Some(Resumed {
            started_at: "2026-12-01T03:00:00+00:00".to_owned(),
            offset: 50_000,
        });
        let text = report.human();
        let lines: Vec<&str> = text.lines().skip(1).take(2).collect();
        assert_eq!(
            lines,
            [
                "Went on with the run started at 2026-12-01T03:00:00+00:00, from user 50000 of the list.",
                "2 requests to Clerk's API (no budget)."
            ]
        );
    }

    #[test]
    fn in_line_users_make_no_entry() {
        assert_eq!(Entry::of("user_a", &Difference::InLine), None);
    }

    #[test]
    fn totals_count_each_kind() {
        let report = report(false);
        let t = &report.totals;
        assert_eq!(
            (
                t.created,
                t.updated,
                t.deleted,
                t.deleted_here,
                t.not_in_clerk
            ),
            (1, 1, 1, 1, 1)
        );
    }

    #[test]
    fn a_dry_run_says_what_it_would_do() {
        let text = report(true).human();
        assert_eq!(
            text,
            "Clerk at http://127.0.0.1:9: 4 users listed in 1 page. Dry run: nothing written.\n\
             2 requests to Clerk's API (budget 20 per 10 s).\n\
             \x20 user_a   missing here                                        would record user.created\n\
             \x20 user_bb  differs: first_name, updated_at; no instructor row  would record user.updated\n\
             \x20 user_c   deleted here, still in Clerk                        left deleted (deleted stays deleted)\n\
             \x20 user_d   not in Clerk                                        would record user.deleted\n\
             \x20 user_e   not in Clerk                                        left in place (--prune removes it)\n\
             would create 1, update 1, delete 1; 1 in line; 1 deleted here but still in Clerk; \
             1 not in Clerk, left in place (--prune removes them).\n"
        );
    }

    #[test]
    fn a_run_says_what_it_recorded() {
        let mut report = report(false);
        report.recorded(0, "reconcile_1".to_owned(), Some(Outcome::Applied));
        report.recorded(1, "reconcile_2".to_owned(), Some(Outcome::Stale));
        let text = report.human();
        assert!(text.contains("user_a   missing here"), "{text}");
        assert!(text.contains("recorded user.created: applied"), "{text}");
        assert!(text.contains("recorded user.updated: stale"), "{text}");
        assert!(
            text.ends_with("1 of the 2 events recorded were stale (older than what was applied: no profile change).\n"),
            "{text}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["users"][0]["svix_id"], "reconcile_1");
        assert_eq!(json["users"][1]["fields"][0], "first_name");
        assert_eq!(json["users"][1]["role_added"], "instructor");
        assert_eq!(json["totals"]["events"], 2);
    }
}
