//! The loader and the shared sections, read into the sections both
//! binaries share (each binary tests its own sections).

use super::*;
use secrecy::ExposeSecret;
use serde::Deserialize;
use std::collections::HashMap;
use std::io::Write;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Shared {
    webhook: WebhookSettings,
    amqp: AmqpSettings,
    ingest: IngestSettings,
    log: LogSettings,
}

impl Sections for Shared {
    fn validate(&self) -> Result<(), SettingsError> {
        self.amqp.validate()?;
        self.ingest.validate()
    }
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load(pairs: &[(&str, &str)]) -> Result<Shared, SettingsError> {
    // A file that does not exist is an error, so point at an empty one.
    let mut file = tempfile();
    file.1.flush().ok();
    load_from(Some(&file.0), &env(pairs))
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
        settings.amqp.url.expose(),
        "amqp://guest:guest@127.0.0.1:5672/%2f"
    );
    assert_eq!(settings.ingest.listen.to_string(), "0.0.0.0:8080");
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
    let settings: Shared = load_from(
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
    let error = load_from::<Shared>(Some(missing), &HashMap::new())
        .err()
        .map(|e| e.to_string());
    assert!(error.is_some_and(|e| e.contains("/nonexistent/clerk-sync.toml")));
}

#[test]
fn the_ingest_requires_a_secret() {
    let settings = load(&[]).unwrap();
    let error = settings
        .webhook
        .require_secrets()
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
    ])
    .unwrap();
    let dump = format!("{settings:?} {settings:#?}");
    for secret in ["topsecretvalue", "amqppassword"] {
        assert!(!dump.contains(secret), "{secret} leaked: {dump}");
    }
    assert!(dump.contains("WebhookSecrets([1 redacted])"));
}

#[test]
fn a_settings_fault_exits_2_wherever_it_is_in_the_chain() {
    let fault = WebhookSettings::invalid_secret(1, 1, "empty");
    assert_eq!(SettingsError::exit_code(&fault), 2);
    let io = std::io::Error::other("unreachable");
    assert_eq!(SettingsError::exit_code(&io), 1);
}

#[test]
fn a_number_like_prefix_stays_a_string() {
    let settings = load(&[("CLERK_SYNC__AMQP__PREFIX", "123")]).unwrap();
    assert_eq!(settings.amqp.prefix, "123");
}

#[test]
fn amqp_url_may_list_several_nodes_each_checked() {
    let settings = load(&[("AMQP_URL", "amqp://a:x@n1/%2f, amqp://b:y@n2:5673/%2f")]).unwrap();
    assert_eq!(settings.amqp.url.nodes().len(), 2);
    let error = load(&[("AMQP_URL", "amqp://a:x@n1/%2f,http://n2/")])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        error.starts_with(
            "setting amqp.url (AMQP_URL or CLERK_SYNC__AMQP__URL): must be a amqp/amqps URL"
        ),
        "{error}"
    );
}

#[test]
fn a_syntax_error_in_the_file_names_the_line_but_never_shows_it() {
    let (path, mut file) = tempfile();
    file.write_all(b"[amqp]\nurl = \"amqp://u:hunter2@x/%2f\nshards = 3\n")
        .unwrap();
    let error = load_from::<Shared>(Some(&path), &HashMap::new())
        .unwrap_err()
        .to_string();
    std::fs::remove_file(&path).ok();
    assert!(!error.contains("hunter2"), "{error}");
    assert!(error.contains("line 2, column 30"), "{error}");
    assert!(!error.contains('\n'), "one line: {error}");
}

#[test]
fn a_value_of_the_wrong_type_is_not_echoed() {
    let (path, mut file) = tempfile();
    file.write_all(b"[amqp]\nshards = \"hunter2\"\n").unwrap();
    let error = load_from::<Shared>(Some(&path), &HashMap::new())
        .unwrap_err()
        .to_string();
    std::fs::remove_file(&path).ok();
    assert!(!error.contains("hunter2"), "{error}");
    assert!(error.contains("amqp.shards"), "{error}");
    let error = load(&[("CLERK_SYNC__INGEST__LISTEN", "hunter2")])
        .unwrap_err()
        .to_string();
    assert!(!error.contains("hunter2"), "{error}");
}
