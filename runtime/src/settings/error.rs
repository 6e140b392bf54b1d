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

    /// The file or a variable could not be read into the settings. The
    /// parser's message may quote the offending text (a TOML syntax error
    /// shows its line, a value of the wrong type is quoted), which could be
    /// a secret: only the position and the problem are kept.
    pub fn unreadable(message: &str) -> Self {
        Self::Unreadable(without_values(message))
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

/// `message` on one line, without the lines of a source snippet (`2 | ...`,
/// `  |   ^`) and with the values serde quotes masked.
fn without_values(message: &str) -> String {
    let kept: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !is_snippet(line))
        .collect();
    let mut one_line = String::new();
    for line in kept {
        if !one_line.is_empty() {
            one_line.push_str(if line.starts_with("in ") { " " } else { ": " });
        }
        one_line.push_str(line);
    }
    // serde quotes the value it could not use: `string "..."`, `variant `...``.
    for (marker, close) in [("string \"", '"'), ("variant `", '`')] {
        one_line = masked_after(&one_line, marker, close);
    }
    one_line
}

/// `text` with what stands between each `marker` and the next `close`
/// replaced by `***`.
fn masked_after(text: &str, marker: &str, close: char) -> String {
    let mut masked = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(marker) {
        let value = at + marker.len();
        let Some(end) = rest[value..].find(close) else {
            break;
        };
        masked.push_str(&rest[..value]);
        masked.push_str("***");
        rest = &rest[value + end..];
    }
    masked.push_str(rest);
    masked
}

/// A line of a TOML error's source snippet: `|`, `2 | text`, `| ^`.
fn is_snippet(line: &str) -> bool {
    line.trim_start_matches(|c: char| c.is_ascii_digit())
        .trim_start()
        .starts_with('|')
}

#[cfg(test)]
mod tests {
    use super::without_values;

    #[test]
    fn quoted_text_and_snippets_are_dropped() {
        let toml = "TOML parse error at line 2, column 30\n  |\n2 | url = \"amqp://u:hunter2@x\n  |                              ^\ninvalid basic string, expected `\"`\n in clerk-sync.toml";
        assert_eq!(
            without_values(toml),
            "TOML parse error at line 2, column 30: invalid basic string, expected `\"` in clerk-sync.toml"
        );
        assert_eq!(
            without_values(
                "invalid type: string \"hunter2\", expected an integer for key `amqp.shards`"
            ),
            "invalid type: string \"***\", expected an integer for key `amqp.shards`"
        );
        assert_eq!(
            without_values("unknown variant `hunter2`, expected `pretty` or `json`"),
            "unknown variant `***`, expected `pretty` or `json`"
        );
    }
}
