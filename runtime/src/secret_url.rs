//! A connection URL that may hold a password, shown with the password masked.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};
use std::fmt;

/// A URL such as `amqp://user:password@host/vhost`. `Display` and `Debug`
/// mask the password; only [`SecretUrl::expose`] gives the real string.
#[derive(Clone)]
pub struct SecretUrl(SecretString);

impl SecretUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(SecretString::from(url.into()))
    }

    /// The full URL, password included: pass it to a client, never to a log.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The URL with any password replaced by `***`. A value holding several
    /// URLs separated by commas (as several broker nodes are given) has
    /// each one's masked: parsed whole, the second URL would be the first
    /// one's path, password and all.
    pub fn redacted(&self) -> String {
        self.expose()
            .split(',')
            .map(|part| redact(part.trim()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The URLs of a value that lists several (separated by commas, as
    /// several broker nodes are given), in order; one for a single URL.
    pub fn nodes(&self) -> Vec<SecretUrl> {
        self.expose()
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(SecretUrl::new)
            .collect()
    }

    pub fn parsed(&self) -> Result<url::Url, url::ParseError> {
        url::Url::parse(self.expose())
    }
}

fn redact(one: &str) -> String {
    match url::Url::parse(one) {
        Ok(mut url) => {
            if url.password().is_some() {
                // Only fails for URLs that cannot have a password at all.
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        Err(_) => "<not a valid URL>".to_owned(),
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl({})", self.redacted())
    }
}

impl<'de> Deserialize<'de> for SecretUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows() {
        let url = SecretUrl::new("amqp://guest:hunter2@rabbit:5672/%2f");
        assert_eq!(url.to_string(), "amqp://guest:***@rabbit:5672/%2f");
        assert!(!format!("{url:?}").contains("hunter2"));
        assert_eq!(url.expose(), "amqp://guest:hunter2@rabbit:5672/%2f");
    }

    #[test]
    fn an_invalid_url_is_not_echoed() {
        let url = SecretUrl::new("hunter2 is not a url");
        assert!(!url.to_string().contains("hunter2"));
    }

    #[test]
    fn every_url_of_a_list_is_masked() {
        let url = SecretUrl::new("amqp://a:first@n1:5672/%2f,amqp://b:second@n2:5673/%2f");
        let shown = format!("{url} {url:?}");
        assert!(!shown.contains("first"), "{shown}");
        assert!(!shown.contains("second"), "{shown}");
        assert_eq!(
            url.to_string(),
            "amqp://a:***@n1:5672/%2f,amqp://b:***@n2:5673/%2f"
        );
    }
}
