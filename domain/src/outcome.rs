//! What the event log records of each event (`clerk_sync.events.outcome`),
//! and its text: the one place the words are spelled.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// The event changed the profile or deleted the user.
    Applied,
    /// Older than what was applied, or after the deletion: no profile field
    /// changes (it may still add a role row).
    Stale,
    /// Read, but not about a user's profile (another event type, or a user
    /// event without what it needs): logged, nothing written.
    Ignored,
    /// Could not be read or stored (the log row's `error` says why), or
    /// discarded by an operator.
    Failed,
}

impl Outcome {
    /// Every outcome, in the order reports list them.
    pub const ALL: [Outcome; 4] = [
        Outcome::Applied,
        Outcome::Stale,
        Outcome::Ignored,
        Outcome::Failed,
    ];

    /// The text stored in the log, shown in reports and used as a metric
    /// label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Stale => "stale",
            Outcome::Ignored => "ignored",
            Outcome::Failed => "failed",
        }
    }

    /// The outcome a stored text names.
    pub fn parse(text: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == text)
    }

    /// Judged without applying anything: replay reads such an event again,
    /// since a later release may read it differently.
    pub const fn is_unapplied(self) -> bool {
        matches!(self, Outcome::Ignored | Outcome::Failed)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Outcome;

    #[test]
    fn every_outcome_reads_back_from_its_text() {
        for outcome in Outcome::ALL {
            assert_eq!(Outcome::parse(outcome.as_str()), Some(outcome));
        }
        assert_eq!(Outcome::parse("Applied"), None);
    }
}
