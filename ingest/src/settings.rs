//! The ingest's settings: the shared sections it reads
//! (`clerk_sync_runtime::settings`). The worker's sections of a shared
//! file are accepted and left to the worker to check: the ingest never
//! needs `database.url` or `clerk.api_url` to be right.

use clerk_sync_runtime::settings::{
    AmqpSettings, IngestSettings, LogSettings, Sections, SettingsError, Unused, WebhookSettings,
};
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub webhook: WebhookSettings,
    pub amqp: AmqpSettings,
    pub ingest: IngestSettings,
    pub log: LogSettings,
    // The worker's sections.
    database: Unused,
    worker: Unused,
    roles: Unused,
    clerk: Unused,
    privacy: Unused,
    status: Unused,
}

impl Sections for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.amqp.validate()?;
        self.ingest.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::Settings;
    use clerk_sync_runtime::settings::Sections;
    use std::collections::HashMap;
    use std::io::Write;

    fn from_file(text: &str) -> Result<Settings, String> {
        let path =
            std::env::temp_dir().join(format!("clerk-sync-ingest-{}.toml", uuid::Uuid::new_v4()));
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(text.as_bytes()).unwrap();
        let loaded = Settings::load_from(Some(&path), &HashMap::new()).map_err(|e| e.to_string());
        std::fs::remove_file(&path).ok();
        loaded
    }

    #[test]
    fn the_workers_sections_of_a_shared_file_are_left_to_the_worker() {
        let settings = from_file(
            "[amqp]\nshards = 3\n[database]\nurl = \"nonsense\"\n[clerk]\napi_url = \"ftp://x\"\n\
             [worker]\nbatch_size = 0\n[roles]\nsources = []\n[status]\nmax_dead_letters = 1\n",
        )
        .unwrap();
        assert_eq!(settings.amqp.shards, 3);
        let error = Settings::load_from(
            None,
            &HashMap::from([("DATABASE_URL".to_owned(), "nonsense".to_owned())]),
        );
        assert!(error.is_ok(), "DATABASE_URL is the worker's");
    }

    #[test]
    fn an_unknown_section_or_key_is_still_refused() {
        let section = from_file("[databse]\nurl = \"x\"\n").unwrap_err();
        assert!(section.contains("databse"), "{section}");
        let key = from_file("[ingest]\nlisen = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(key.contains("lisen"), "{key}");
    }

    #[test]
    fn the_request_limits_default_to_what_fits_the_pod_and_bad_ones_are_named() {
        let defaults = from_file("").unwrap().ingest;
        assert_eq!(
            (
                defaults.body_timeout_ms,
                defaults.max_in_flight,
                defaults.max_large_in_flight,
                defaults.max_connections
            ),
            (10_000, 128, 32, 128)
        );
        let cases = [
            ("body_timeout_ms = 0", "ingest.body_timeout_ms"),
            ("max_in_flight = 0", "ingest.max_in_flight"),
            ("max_large_in_flight = 0", "ingest.max_large_in_flight"),
            ("max_connections = 0", "ingest.max_connections"),
            (
                "max_in_flight = 4\nmax_large_in_flight = 5",
                "must be between 1 and ingest.max_in_flight",
            ),
        ];
        for (line, expected) in cases {
            let error = from_file(&format!("[ingest]\n{line}\n")).unwrap_err();
            assert!(error.contains(expected), "{line}: {error}");
            assert!(!error.contains('\n'), "one line: {error}");
        }
    }
}
