//! Why settings could not be loaded: always one line that names the
//! setting (and the variables that set it) and what is wrong, never a value.

use super::load::{ENV_PREFIX, WELL_KNOWN};

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("setting {key}{}: {problem}", env_hint(key))]
    Invalid { key: &'static str, problem: String },
    #[error("settings: {0}")]
    Unreadable(String),
}

impl SettingsError {
    /// The setting `key` is wrong: `problem` says how, never with its value.
    pub fn invalid(key: &'static str, problem: impl Into<String>) -> Self {
        Self::Invalid {
            key,
            problem: problem.into(),
        }
    }

    /// Exit code of a process that could not start: 2 when a setting is at
    /// fault (anywhere in the error's chain), 1 for anything else, such as
    /// an unreachable service.
    pub fn exit_code(error: &(dyn std::error::Error + 'static)) -> u8 {
        let mut cause = Some(error);
        while let Some(error) = cause {
            if error.is::<SettingsError>() {
                return 2;
            }
            cause = error.source();
        }
        1
    }
}

fn env_hint(key: &str) -> String {
    let well_known = WELL_KNOWN
        .iter()
        .find(|(_, k)| *k == key)
        .map(|(var, _)| format!("{var} or "))
        .unwrap_or_default();
    let env = format!("{ENV_PREFIX}__{}", key.replace('.', "__").to_uppercase());
    format!(" ({well_known}{env})")
}
