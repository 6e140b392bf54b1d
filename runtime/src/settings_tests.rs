use super::*;
use clerk_sync_domain::roles::{DefaultRole, MetadataSource, RolePolicy};
use secrecy::ExposeSecret;
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
fn defaults_match_the_contract() {
    let settings = load(&[]).unwrap();
    assert_eq!(
        settings.database.url.expose(),
        "postgres://postgres@127.0.0.1:5432/clerk_sync"
    );
    assert_eq!(
        settings.amqp.url.expose(),
        "amqp://guest:guest@127.0.0.1:5672/%2f"
    );
    assert_eq!(settings.ingest.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(settings.worker.listen, None, "unset: the first free port");
    assert_eq!(settings.ingest.body_limit_bytes, 1_048_576);
    assert_eq!(settings.amqp.shards, 8);
    assert!(settings.webhook.secrets.is_empty());
    assert_eq!(settings.log.format, LogFormat::Pretty);
}

#[test]
fn well_known_variables_win_over_prefixed_ones_and_the_file() {
    let (path, mut file) = tempfile();
    writeln!(
        file,
        "[amqp]\nurl = \"amqp://file@h/%2f\"\nshards = 3\n[ingest]\nlisten = \"127.0.0.1:1\""
    )
    .unwrap();
    let settings = Settings::load_from(
        Some(&path),
        &env(&[
            ("CLERK_SYNC__AMQP__URL", "amqp://prefixed@h/%2f"),
            ("AMQP_URL", "amqp://wellknown@h/%2f"),
            ("CLERK_SYNC__AMQP__SHARDS", "16"),
            ("INGEST_LISTEN", "127.0.0.1:9999"),
            ("CLERK_WEBHOOK_SECRET", "whsec_a, whsec_b whsec_c"),
            ("CLERK_SYNC__LOG__FORMAT", "json"),
        ]),
    )
    .unwrap();
    assert_eq!(settings.amqp.url.expose(), "amqp://wellknown@h/%2f");
    assert_eq!(settings.amqp.shards, 16, "env beats the file");
    assert_eq!(settings.ingest.listen.to_string(), "127.0.0.1:9999");
    assert_eq!(settings.webhook.secrets.len(), 3);
    assert_eq!(settings.log.format, LogFormat::Json);
    let secrets: Vec<&str> = settings
        .webhook
        .secrets
        .iter()
        .map(|s| s.expose_secret())
        .collect();
    assert_eq!(secrets, ["whsec_a", "whsec_b", "whsec_c"]);
}

#[test]
fn a_bad_setting_is_one_line_naming_it() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("CLERK_SYNC__AMQP__SHARDS", "0")],
            "setting amqp.shards (CLERK_SYNC__AMQP__SHARDS): must be between 1 and 1024",
        ),
        (
            &[("AMQP_URL", "http://x/")],
            "setting amqp.url (AMQP_URL or CLERK_SYNC__AMQP__URL): must be a amqp/amqps URL",
        ),
        (
            &[("DATABASE_URL", "nonsense")],
            "setting database.url (DATABASE_URL or CLERK_SYNC__DATABASE__URL): not a valid URL",
        ),
        (
            &[("CLERK_SYNC__AMQP__PREFIX", "a b")],
            "setting amqp.prefix",
        ),
        (&[("CLERK_SYNC__AMQP__SHARDS", "many")], "amqp.shards"),
        (&[("INGEST_LISTEN", "port eighty")], "ingest.listen"),
        (&[("CLERK_SYNC__AMQP__SHARDZ", "3")], "shardz"),
    ];
    for (pairs, expected) in cases {
        let error = load(pairs).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains(expected), "{pairs:?}: got {error:?}");
        assert!(!error.contains('\n'), "one line: {error:?}");
    }
}

#[test]
fn a_missing_config_file_given_explicitly_is_an_error() {
    let missing = std::path::Path::new("/nonexistent/clerk-sync.toml");
    let error = Settings::load_from(Some(missing), &HashMap::new())
        .err()
        .map(|e| e.to_string());
    assert!(error.is_some_and(|e| e.contains("/nonexistent/clerk-sync.toml")));
}

#[test]
fn the_ingest_requires_a_secret() {
    let settings = load(&[]).unwrap();
    let error = settings
        .require_webhook_secrets()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.starts_with(
        "setting webhook.secrets (CLERK_WEBHOOK_SECRET or CLERK_SYNC__WEBHOOK__SECRETS): missing"
    ));
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let settings = load(&[
        ("CLERK_WEBHOOK_SECRET", "whsec_topsecretvalue"),
        ("AMQP_URL", "amqp://u:amqppassword@h/%2f"),
        ("DATABASE_URL", "postgres://u:dbpassword@h/db"),
        ("CLERK_SECRET_KEY", "sk_test_clerkkeyvalue"),
    ])
    .unwrap();
    let dump = format!("{settings:?} {settings:#?}");
    for secret in [
        "topsecretvalue",
        "amqppassword",
        "dbpassword",
        "clerkkeyvalue",
    ] {
        assert!(!dump.contains(secret), "{secret} leaked: {dump}");
    }
    assert!(dump.contains("WebhookSecrets([1 redacted])"));
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
    let settings = load(&[
        (
            "CLERK_SYNC__ROLES__SOURCES",
            "public_metadata,unsafe_metadata",
        ),
        ("CLERK_SYNC__AMQP__PREFIX", "123"),
    ])
    .unwrap();
    assert_eq!(
        settings.roles.sources,
        [
            MetadataSource::PublicMetadata,
            MetadataSource::UnsafeMetadata
        ]
    );
    assert_eq!(
        settings.amqp.prefix, "123",
        "a number-like string stays a string"
    );
}

#[test]
fn a_settings_fault_exits_2_wherever_it_is_in_the_chain() {
    let fault = Settings::invalid_webhook_secret(1, 1, "empty");
    assert_eq!(SettingsError::exit_code(&fault), 2);
    let io = std::io::Error::other("unreachable");
    assert_eq!(SettingsError::exit_code(&io), 1);
}

#[test]
fn operators_settings_have_safe_defaults_and_come_from_the_environment() {
    let settings = load(&[]).unwrap();
    assert_eq!(settings.clerk.api_url, "https://api.clerk.com");
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
    ])
    .unwrap();
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

    let error = load(&[("CLERK_SYNC__CLERK__API_URL", "ftp://x")])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("setting clerk.api_url"), "{error}");
}
