//! Clerk webhook events, parsed leniently: the envelope first (`type`,
//! `data`, `timestamp`), `data` second, reading only what clerk-sync uses and
//! ignoring every field Clerk adds. Unknown event types are a value
//! ([`EventKind::Unhandled`]), not an error.

pub use crate::clerk_json::Metadata;
use crate::clerk_json::{self, Data};
use crate::envelope::user_id_field;
use crate::ids;
use crate::projection::{Change, Profile};
use crate::roles::{Resolution, RolePolicy};
use crate::storable::{self, MAX_EMAIL_BYTES, MAX_ID_BYTES};
use crate::version::{Rank, Version, to_millis};

#[derive(Debug, Clone, PartialEq)]
pub struct ParsedEvent {
    pub event_type: String,
    /// The envelope's `timestamp`, in milliseconds.
    pub timestamp_ms: Option<i64>,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// `user.created` or `user.updated`.
    UserUpsert {
        rank: Rank,
        user: Box<ClerkUser>,
    },
    UserDeleted {
        user_id: String,
    },
    /// A type clerk-sync has no handler for: logged as `ignored`, under
    /// `data.user_id` when the object names a user (sessions, e-mails, ...)
    /// by an id that can be stored.
    Unhandled {
        user_id: Option<String>,
    },
}

/// The part of a Clerk User object clerk-sync projects.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClerkUser {
    pub id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub image_url: Option<String>,
    pub primary_email_address_id: Option<String>,
    pub email_addresses: Vec<EmailAddress>,
    /// Milliseconds.
    pub created_at_ms: Option<i64>,
    /// Milliseconds.
    pub updated_at_ms: Option<i64>,
    pub public_metadata: Metadata,
    pub private_metadata: Metadata,
    pub unsafe_metadata: Metadata,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress {
    pub id: String,
    pub email_address: String,
}

impl ClerkUser {
    /// The first field clerk-sync stores that the database cannot hold, and why.
    fn unstorable(&self) -> Option<(&'static str, String)> {
        let texts = [
            ("data.first_name", self.first_name.as_deref()),
            ("data.last_name", self.last_name.as_deref()),
            ("data.image_url", self.image_url.as_deref()),
        ];
        let email = self
            .primary_email()
            .and_then(|email| storable::key_problem(email, MAX_EMAIL_BYTES));
        texts
            .into_iter()
            .find_map(|(field, value)| Some((field, storable::text_problem(value?)?)))
            .or_else(|| email.map(|problem| ("the primary e-mail address", problem)))
    }

    /// The address whose id is `primary_email_address_id`; none when there
    /// is no primary or it is not in the list.
    pub fn primary_email(&self) -> Option<&str> {
        let primary = self.primary_email_address_id.as_deref()?;
        self.email_addresses
            .iter()
            .find(|address| address.id == primary)
            .map(|address| address.email_address.as_str())
    }

    #[cfg(test)]
    pub(crate) fn for_tests(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            ..Self::default()
        }
    }
}

/// Why a body is not a usable Clerk event: logged as `failed`, never retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("body is not JSON ({0})")]
    NotJson(String),
    #[error("body is not a JSON object")]
    NotAnObject,
    #[error("event has no string \"type\"")]
    NoType,
    #[error("{event_type} has no object \"data\"")]
    NoData { event_type: String },
    #[error("{event_type} has no string \"data.id\"")]
    NoUserId { event_type: String },
    /// A value the database cannot hold (see [`storable`]).
    #[error("{}{field} {problem}", event_type.as_deref().map(|t| format!("{t}: ")).unwrap_or_default())]
    Unstorable {
        /// None when the type itself cannot be stored.
        event_type: Option<String>,
        /// The user, when the id is not what cannot be stored.
        user_id: Option<String>,
        /// Where in the body, e.g. `data.first_name`.
        field: &'static str,
        problem: String,
    },
}

impl ParseError {
    /// The event's `type`, when the body is JSON with a (storable) string one.
    pub fn event_type(&self) -> Option<&str> {
        match self {
            Self::NoData { event_type } | Self::NoUserId { event_type } => Some(event_type),
            Self::Unstorable { event_type, .. } => event_type.as_deref(),
            Self::NotJson(_) | Self::NotAnObject | Self::NoType => None,
        }
    }

    /// The user the event is about, when that much could be read.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Self::Unstorable { user_id, .. } => user_id.as_deref(),
            _ => None,
        }
    }
}

impl ParsedEvent {
    /// Read a body in one pass, as leniently as a JSON tree would be read
    /// (see `clerk_json.rs`).
    pub fn parse(body: &[u8]) -> Result<Self, ParseError> {
        let envelope = match clerk_json::read(body) {
            Ok(Some(envelope)) => envelope,
            Ok(None) => return Err(ParseError::NotAnObject),
            Err(e) => return Err(ParseError::NotJson(e.classify_name())),
        };
        let event_type = envelope.event_type.ok_or(ParseError::NoType)?;
        if let Some(problem) = storable::text_problem(&event_type) {
            return Err(unstorable(None, None, "type", problem));
        }
        if let Some(problem) = time_problem(envelope.timestamp) {
            return Err(unstorable(Some(&event_type), None, "timestamp", problem));
        }
        let timestamp_ms = envelope.timestamp.map(to_millis);
        let kind = match event_type.as_str() {
            "user.created" | "user.updated" | "user.deleted" => {
                let Some(data) = envelope.data else {
                    return Err(ParseError::NoData { event_type });
                };
                user_event(&event_type, data)?
            }
            _ => EventKind::Unhandled {
                user_id: envelope.data.and_then(|data| {
                    match user_id_field(&event_type) {
                        "id" => data.id,
                        _ => data.user_id,
                    }
                    .filter(|id| ids::is_user_id(id))
                }),
            },
        };
        Ok(Self {
            event_type,
            timestamp_ms,
            kind,
        })
    }

    /// The event's place in Clerk's order. `svix_timestamp_secs` is the
    /// last resort for the time when the body has none.
    pub fn version(&self, svix_id: &str, svix_timestamp_secs: i64) -> Option<Version> {
        let fallback = self
            .timestamp_ms
            .unwrap_or_else(|| to_millis(svix_timestamp_secs));
        let (at_ms, rank) = match &self.kind {
            EventKind::UserUpsert { rank, user } => (user.updated_at_ms.unwrap_or(fallback), *rank),
            EventKind::UserDeleted { .. } => (fallback, Rank::Deleted),
            EventKind::Unhandled { .. } => return None,
        };
        Some(Version {
            at_ms,
            rank,
            svix_id: svix_id.to_owned(),
        })
    }

    /// What a user event asks of the projection, with how its role was
    /// resolved; `None` for an event type without a handler.
    pub fn change(
        &self,
        svix_id: &str,
        svix_timestamp_secs: i64,
        policy: &RolePolicy,
    ) -> Option<(Change, Resolution)> {
        let version = self.version(svix_id, svix_timestamp_secs)?;
        match &self.kind {
            EventKind::UserUpsert { user, .. } => {
                let resolution = policy.resolve(user);
                let change = Change::Upsert {
                    profile: Profile::of(user, version.at_ms),
                    role: resolution.role(),
                    version,
                };
                Some((change, resolution))
            }
            EventKind::UserDeleted { .. } => Some((Change::Delete { version }, Resolution::NoRole)),
            EventKind::Unhandled { .. } => None,
        }
    }

    /// The user the log files this event under: `data.id` of a user event,
    /// else `data.user_id` where the object names one.
    pub fn subject_user_id(&self) -> Option<&str> {
        match &self.kind {
            EventKind::Unhandled { user_id } => user_id.as_deref(),
            _ => self.user_id(),
        }
    }

    /// The user this event concerns, if it is a user event.
    pub fn user_id(&self) -> Option<&str> {
        match &self.kind {
            EventKind::UserUpsert { user, .. } => Some(&user.id),
            EventKind::UserDeleted { user_id } => Some(user_id),
            EventKind::Unhandled { .. } => None,
        }
    }
}

/// The event of a `user.created`, `user.updated` or `user.deleted` body.
fn user_event(event_type: &str, data: Data) -> Result<EventKind, ParseError> {
    let Some(id) = data.id.filter(|id| !id.is_empty()) else {
        return Err(ParseError::NoUserId {
            event_type: event_type.to_owned(),
        });
    };
    if let Some(problem) = storable::key_problem(&id, MAX_ID_BYTES) {
        return Err(unstorable(Some(event_type), None, "data.id", problem));
    }
    if event_type == "user.deleted" {
        return Ok(EventKind::UserDeleted { user_id: id });
    }
    for (value, field) in [
        (data.created_at, "data.created_at"),
        (data.updated_at, "data.updated_at"),
    ] {
        if let Some(problem) = time_problem(value) {
            return Err(unstorable(Some(event_type), Some(&id), field, problem));
        }
    }
    let user = ClerkUser {
        id,
        first_name: data.first_name,
        last_name: data.last_name,
        image_url: data.image_url,
        primary_email_address_id: data.primary_email_address_id,
        email_addresses: data.email_addresses,
        created_at_ms: data.created_at.map(to_millis),
        updated_at_ms: data.updated_at.map(to_millis),
        public_metadata: data.public_metadata,
        private_metadata: data.private_metadata,
        unsafe_metadata: data.unsafe_metadata,
    };
    if let Some((field, problem)) = user.unstorable() {
        return Err(unstorable(Some(event_type), Some(&user.id), field, problem));
    }
    let rank = if event_type == "user.created" {
        Rank::Created
    } else {
        Rank::Updated
    };
    Ok(EventKind::UserUpsert {
        rank,
        user: Box::new(user),
    })
}

fn unstorable(
    event_type: Option<&str>,
    user_id: Option<&str>,
    field: &'static str,
    problem: String,
) -> ParseError {
    ParseError::Unstorable {
        event_type: event_type.map(str::to_owned),
        user_id: user_id.map(str::to_owned),
        field,
        problem,
    }
}

/// Why a Clerk time (seconds or milliseconds) cannot be stored, with the
/// value as given.
fn time_problem(value: Option<i64>) -> Option<String> {
    let value = value?;
    storable::time_problem(to_millis(value)).map(|problem| format!("{value} {problem}"))
}

/// An event type as a metric label: the user events clerk-sync applies by
/// name, any other type `other`, none `unknown`. The type comes from the
/// body, so it is not a label as it is: each distinct string would be a
/// time series of its own.
pub fn metric_label(event_type: Option<&str>) -> &'static str {
    match event_type {
        Some("user.created") => "user.created",
        Some("user.updated") => "user.updated",
        Some("user.deleted") => "user.deleted",
        Some(_) => "other",
        None => "unknown",
    }
}

/// `serde_json`'s error category, without echoing any of the body.
trait Classify {
    fn classify_name(&self) -> String;
}

impl Classify for serde_json::Error {
    fn classify_name(&self) -> String {
        format!(
            "{:?} error at line {} column {}",
            self.classify(),
            self.line(),
            self.column()
        )
    }
}

#[cfg(test)]
#[path = "clerk_event_tests.rs"]
mod tests;
