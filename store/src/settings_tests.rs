use super::*;
use clerk_sync_domain::roles::{DefaultRole, MetadataSource, RolePolicy};
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::io::Write;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
    // A file that does not exist is an error, so point at an empty one.
    let mut file = tempfile();
    file.1.flush().ok();
    Settings::load_from(Some(&file.0), &env(pairs))
}

fn tempfile() -> (std::path::PathBuf, std::fs::File) {
    let path = std::env::temp_dir().join(format!("clerk-sync-test-{}.toml", uuid::Uuid::new_v4()));
    let file = std::fs::File::create(&path).unwrap();
    (path, file)
}

#[test]
fn the_workers_defaults_match_the_contract() {
    let settings = load(&[]).unwrap();
    assert_eq!(
        settings.database.url.expose(),
        "postgres://postgres@127.0.0.1:5432/clerk_sync"
    );
    assert_eq!(settings.worker.listen, None, "unset: the first free port");
    assert_eq!(settings.worker.batch_size, 500);
}

#[test]
fn a_bad_database_url_is_one_line_naming_it() {
    let error = load(&[("DATABASE_URL", "nonsense")])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        error.starts_with(
            "setting database.url (DATABASE_URL or CLERK_SYNC__DATABASE__URL): not a valid URL"
        ),
        "{error}"
    );
}

#[test]
fn the_workers_secrets_never_appear_in_debug_output() {
    let settings = load(&[
        ("DATABASE_URL", "postgres://u:dbpassword@h/db"),
        ("CLERK_SECRET_KEY", "sk_test_clerkkeyvalue"),
        ("CLERK_WEBHOOK_SECRET", "whsec_topsecretvalue"),
    ])
    .unwrap();
    let dump = format!("{settings:?} {settings:#?}");
    for secret in ["dbpassword", "clerkkeyvalue", "topsecretvalue"] {
        assert!(!dump.contains(secret), "{secret} leaked: {dump}");
    }
}

#[test]
fn roles_and_worker_settings_come_from_the_file() {
    let (path, mut file) = tempfile();
    writeln!(file, "[roles]\nsources = [\"public_metadata\", \"unsafe_metadata\"]\ndefault = \"none\"\n[worker]\nbatch_size = 50")
        .unwrap();
    let settings = Settings::load_from(Some(&path), &HashMap::new()).unwrap();
    let policy = settings.roles.policy();
    assert_eq!(
        policy.sources,
        [
            MetadataSource::PublicMetadata,
            MetadataSource::UnsafeMetadata
        ]
    );
    assert_eq!(policy.default, DefaultRole::None);
    assert_eq!(settings.worker.batch_size, 50);
    let listen = load(&[("CLERK_SYNC__WORKER__LISTEN", "127.0.0.1:9191")]).unwrap();
    assert_eq!(
        listen.worker.listen.map(|a| a.to_string()).as_deref(),
        Some("127.0.0.1:9191")
    );

    let defaults = load(&[]).unwrap();
    assert_eq!(defaults.roles.policy(), RolePolicy::default());
    let error = load(&[("CLERK_SYNC__ROLES__DEFAULT", "admin")])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        error.contains("roles.default") || error.contains("admin"),
        "{error}"
    );
}

#[test]
fn role_sources_come_from_a_comma_separated_variable() {
    let settings = load(&[(
        "CLERK_SYNC__ROLES__SOURCES",
        "public_metadata,unsafe_metadata",
    )])
    .unwrap();
    assert_eq!(
        settings.roles.sources,
        [
            MetadataSource::PublicMetadata,
            MetadataSource::UnsafeMetadata
        ]
    );
}

#[test]
fn operators_settings_have_safe_defaults_and_come_from_the_environment() {
    let settings = load(&[]).unwrap();
    assert_eq!(settings.clerk.api_url, "https://api.clerk.com");
    assert_eq!(
        settings.clerk.request_budget, 20,
        "a fifth of Clerk's development limit"
    );
    assert!(settings.privacy.erase_on_delete, "erasure is on by default");
    assert_eq!(settings.status.max_dead_letters, None);
    let error = settings
        .require_clerk_secret_key()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.starts_with(
        "setting clerk.secret_key (CLERK_SECRET_KEY or CLERK_SYNC__CLERK__SECRET_KEY): missing"
    ));

    let settings = load(&[
        ("CLERK_SECRET_KEY", "sk_test_1"),
        ("CLERK_SYNC__CLERK__API_URL", "http://127.0.0.1:1234"),
        ("CLERK_SYNC__PRIVACY__ERASE_ON_DELETE", "false"),
        ("CLERK_SYNC__STATUS__MAX_DEAD_LETTERS", "0"),
        ("CLERK_SYNC__CLERK__REQUEST_BUDGET", "500"),
    ])
    .unwrap();
    assert_eq!(settings.clerk.request_budget, 500);
    assert_eq!(
        settings
            .require_clerk_secret_key()
            .map(|k| k.expose_secret().to_owned())
            .ok(),
        Some("sk_test_1".to_owned())
    );
    assert_eq!(settings.clerk.api_url, "http://127.0.0.1:1234");
    assert!(!settings.privacy.erase_on_delete);
    assert_eq!(settings.status.max_dead_letters, Some(0));

    let error = load(&[("CLERK_SYNC__CLERK__REQUEST_BUDGET", "-1")])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("clerk.request_budget"), "{error}");

    let error = load(&[("CLERK_SYNC__CLERK__API_URL", "ftp://x")])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("setting clerk.api_url"), "{error}");
}

#[test]
fn the_clerk_api_is_reached_over_https_except_on_this_machine() {
    for local in [
        "http://127.0.0.1:1234",
        "http://localhost:8080/clerk",
        "http://[::1]:9",
        "https://api.clerk.com",
    ] {
        let loaded = load(&[("CLERK_SYNC__CLERK__API_URL", local)]);
        assert!(loaded.is_ok(), "{local}: {:?}", loaded.err());
    }
    for (refused, problem) in [
        ("http://api.clerk.com", "would send the secret key in clear"),
        ("http://10.0.0.7:8080", "would send the secret key in clear"),
        (
            "http://localhost.evil.example",
            "would send the secret key in clear",
        ),
        ("ftp://api.clerk.com", "must be an https URL"),
        ("api.clerk.com", "not a valid URL"),
    ] {
        let error = load(&[("CLERK_SYNC__CLERK__API_URL", refused)])
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("setting clerk.api_url (CLERK_SYNC__CLERK__API_URL): "),
            "{refused}: {error}"
        );
        assert!(error.contains(problem), "{refused}: {error}");
    }
}

#[test]
fn the_management_url_may_list_nodes_and_must_be_http() {
    let nodes = "http://guest:pw1@r1:15672,http://guest:pw2@r2:15672";
    let settings = load(&[("CLERK_SYNC__STATUS__MANAGEMENT_URL", nodes)]).unwrap();
    let url = settings.status.management_url.unwrap();
    assert_eq!(url.nodes().len(), 2);
    assert!(!format!("{url:?}").contains("pw1"));
    let error = load(&[(
        "CLERK_SYNC__STATUS__MANAGEMENT_URL",
        "amqp://guest:pw@r1:5672",
    )])
    .unwrap_err()
    .to_string();
    assert!(
        error.starts_with("setting status.management_url"),
        "{error}"
    );
    assert!(!error.contains("pw"), "{error}");
}
