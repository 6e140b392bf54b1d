//! Clerk-shaped user events, as Clerk's webhooks carry them: the envelope
//! (`object`, `type`, `timestamp`, `data`) around a whole User object.
//! Pure: the caller chooses the ids and times.

use serde_json::{Value, json};

/// The user events `send` builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EventType {
    #[value(name = "user.created")]
    UserCreated,
    #[value(name = "user.updated")]
    UserUpdated,
    #[value(name = "user.deleted")]
    UserDeleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserCreated => "user.created",
            Self::UserUpdated => "user.updated",
            Self::UserDeleted => "user.deleted",
        }
    }
}

/// The profile an upsert carries. Like Clerk's, every event holds the whole
/// user: a field left out here is absent from the user, not "unchanged".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserFields {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Any string, put in `public_metadata.role`.
    pub role: Option<String>,
}

/// One event to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    pub event_type: EventType,
    pub user_id: String,
    /// Clerk's version of the event, in milliseconds: `data.updated_at` (and
    /// the envelope's `timestamp`) of an upsert, the envelope's `timestamp`
    /// of a deletion.
    pub version_ms: i64,
    /// The user's `created_at`, in milliseconds.
    pub created_at_ms: i64,
    /// Ignored for `user.deleted`, whose data is the id only.
    pub fields: UserFields,
}

/// Clerk's default avatar, which it reports for users without an image.
const DEFAULT_IMAGE: &str = "https://www.gravatar.com/avatar?d=mp";

/// The JSON body of the event, compact, as Clerk sends it.
pub fn body(spec: &EventSpec) -> Vec<u8> {
    envelope(spec).to_string().into_bytes()
}

/// The event as a JSON value.
pub fn envelope(spec: &EventSpec) -> Value {
    let data = match spec.event_type {
        EventType::UserDeleted => json!({
            "deleted": true,
            "id": spec.user_id,
            "object": "user",
        }),
        EventType::UserCreated | EventType::UserUpdated => user(spec),
    };
    json!({
        "data": data,
        "object": "event",
        "timestamp": spec.version_ms,
        "type": spec.event_type.as_str(),
    })
}

/// The id of the user's e-mail address: the same for every event about the
/// same user, as Clerk's is.
pub fn email_address_id(user_id: &str) -> String {
    format!("idn_{}", user_id.strip_prefix("user_").unwrap_or(user_id))
}

fn user(spec: &EventSpec) -> Value {
    let fields = &spec.fields;
    let email_id = fields
        .email
        .as_ref()
        .map(|_| email_address_id(&spec.user_id));
    let email_addresses: Vec<Value> = fields
        .email
        .iter()
        .map(|address| {
            json!({
                "created_at": spec.created_at_ms,
                "email_address": address,
                "id": email_id,
                "linked_to": [],
                "matches_sso_connection": false,
                "object": "email_address",
                "reserved": false,
                "updated_at": spec.version_ms,
                "verification": {
                    "attempts": null,
                    "expire_at": null,
                    "status": "verified",
                    "strategy": "email_code",
                },
            })
        })
        .collect();
    let public_metadata = match &fields.role {
        Some(role) => json!({ "role": role }),
        None => json!({}),
    };
    json!({
        "backup_code_enabled": false,
        "banned": false,
        "create_organization_enabled": true,
        "created_at": spec.created_at_ms,
        "delete_self_enabled": true,
        "email_addresses": email_addresses,
        "enterprise_accounts": [],
        "external_accounts": [],
        "external_id": null,
        "first_name": fields.first_name,
        "has_image": false,
        "id": spec.user_id,
        "image_url": DEFAULT_IMAGE,
        "last_active_at": null,
        "last_name": fields.last_name,
        "last_sign_in_at": null,
        "legal_accepted_at": null,
        "locked": false,
        "lockout_expires_in_seconds": null,
        "mfa_disabled_at": null,
        "mfa_enabled_at": null,
        "object": "user",
        "passkeys": [],
        "password_enabled": false,
        "phone_numbers": [],
        "primary_email_address_id": email_id,
        "primary_phone_number_id": null,
        "primary_web3_wallet_id": null,
        "private_metadata": {},
        "profile_image_url": DEFAULT_IMAGE,
        "public_metadata": public_metadata,
        "saml_accounts": [],
        "totp_enabled": false,
        "two_factor_enabled": false,
        "unsafe_metadata": {},
        "updated_at": spec.version_ms,
        "username": null,
        "verification_attempts_remaining": null,
        "web3_wallets": [],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clerk_sync_domain::clerk_event::{EventKind, ParsedEvent};
    use clerk_sync_domain::envelope::EnvelopeSummary;
    use clerk_sync_domain::roles::{Resolution, Role, RolePolicy};
    use clerk_sync_domain::version::Rank;

    const T: i64 = 1_767_225_600_000;

    fn spec(event_type: EventType, fields: UserFields) -> EventSpec {
        EventSpec {
            event_type,
            user_id: "user_2abc".to_owned(),
            version_ms: T + 5_000,
            created_at_ms: T,
            fields,
        }
    }

    fn parse(spec: &EventSpec) -> ParsedEvent {
        ParsedEvent::parse(&body(spec)).unwrap()
    }

    fn ada() -> UserFields {
        UserFields {
            email: Some("ada@example.com".to_owned()),
            first_name: Some("Ada".to_owned()),
            last_name: Some("Lovelace".to_owned()),
            role: Some("instructor".to_owned()),
        }
    }

    #[test]
    fn a_created_event_parses_to_its_version_profile_and_role() {
        let event = parse(&spec(EventType::UserCreated, ada()));
        assert_eq!(event.event_type, "user.created");
        assert_eq!(event.timestamp_ms, Some(T + 5_000));
        let version = event.version("msg_1", 0).expect("no version");
        assert_eq!((version.at_ms, version.rank), (T + 5_000, Rank::Created));
        let EventKind::UserUpsert { user, .. } = &event.kind else {
            panic!("not an upsert: {event:?}");
        };
        assert_eq!(user.id, "user_2abc");
        assert_eq!(user.primary_email(), Some("ada@example.com"));
        assert_eq!(user.first_name.as_deref(), Some("Ada"));
        assert_eq!(user.last_name.as_deref(), Some("Lovelace"));
        assert_eq!(user.created_at_ms, Some(T));
        assert_eq!(user.image_url.as_deref(), Some(DEFAULT_IMAGE));
        assert_eq!(
            RolePolicy::default().resolve(user),
            Resolution::Role(Role::Instructor)
        );
    }

    #[test]
    fn an_updated_event_ranks_as_an_update() {
        let event = parse(&spec(EventType::UserUpdated, ada()));
        assert_eq!(event.event_type, "user.updated");
        let version = event.version("msg_1", 0).expect("no version");
        assert_eq!((version.at_ms, version.rank), (T + 5_000, Rank::Updated));
    }

    #[test]
    fn without_fields_the_user_has_no_email_names_or_role() {
        let event = parse(&spec(EventType::UserCreated, UserFields::default()));
        let EventKind::UserUpsert { user, .. } = &event.kind else {
            panic!("not an upsert: {event:?}");
        };
        assert_eq!(user.primary_email(), None);
        assert!(user.email_addresses.is_empty());
        assert_eq!(user.primary_email_address_id, None);
        assert_eq!(
            (user.first_name.as_deref(), user.last_name.as_deref()),
            (None, None)
        );
        // No role named: the configured default decides.
        assert_eq!(
            RolePolicy::default().resolve(user),
            Resolution::Role(Role::Student)
        );
    }

    #[test]
    fn any_role_string_goes_to_public_metadata() {
        let fields = UserFields {
            role: Some("admin".to_owned()),
            ..UserFields::default()
        };
        let value = envelope(&spec(EventType::UserCreated, fields.clone()));
        assert_eq!(value["data"]["public_metadata"], json!({"role": "admin"}));
        let event = parse(&spec(EventType::UserCreated, fields));
        let EventKind::UserUpsert { user, .. } = &event.kind else {
            panic!("not an upsert: {event:?}");
        };
        assert_eq!(
            RolePolicy::default().resolve(user),
            Resolution::Unknown("admin".to_owned())
        );
    }

    #[test]
    fn a_deleted_event_is_the_id_only_and_its_version_is_the_timestamp() {
        let spec = spec(EventType::UserDeleted, ada());
        assert_eq!(
            envelope(&spec)["data"],
            json!({"deleted": true, "id": "user_2abc", "object": "user"})
        );
        let event = parse(&spec);
        assert_eq!(
            event.kind,
            EventKind::UserDeleted {
                user_id: "user_2abc".to_owned()
            }
        );
        let version = event.version("msg_1", 0).expect("no version");
        assert_eq!((version.at_ms, version.rank), (T + 5_000, Rank::Deleted));
    }

    #[test]
    fn the_envelope_is_clerk_shaped() {
        let value = envelope(&spec(EventType::UserCreated, ada()));
        assert_eq!(value["object"], "event");
        assert_eq!(value["data"]["object"], "user");
        assert_eq!(
            value["data"]["email_addresses"][0]["object"],
            "email_address"
        );
        assert_eq!(
            value["data"]["primary_email_address_id"],
            value["data"]["email_addresses"][0]["id"]
        );
        let summary = EnvelopeSummary::read(&body(&spec(EventType::UserCreated, ada())));
        assert_eq!(summary.event_type.as_deref(), Some("user.created"));
        assert_eq!(summary.clerk_user_id.as_deref(), Some("user_2abc"));
    }

    #[test]
    fn the_email_address_id_is_stable_per_user() {
        assert_eq!(email_address_id("user_2abc"), "idn_2abc");
        assert_eq!(email_address_id("someone"), "idn_someone");
    }
}
