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
        let urls = split(self.expose());
        if urls.is_empty() {
            return redact(self.expose());
        }
        urls.into_iter().map(redact).collect::<Vec<_>>().join(",")
    }

    /// The URLs of a value that lists several (separated by commas, as
    /// several broker nodes are given), in order; one for a single URL.
    pub fn nodes(&self) -> Vec<SecretUrl> {
        split(self.expose())
            .into_iter()
            .map(SecretUrl::new)
            .collect()
    }

    /// `host:port` of a single URL (the scheme's port when none is given),
    /// which names a broker node in logs, metrics and `/readyz` with no
    /// user or password; the redacted URL when it is not a valid URL.
    pub fn address(&self) -> String {
        match self.parsed() {
            Ok(url) => match (
                url.host_str(),
                url.port_or_known_default().or(match url.scheme() {
                    "amqp" => Some(5672),
                    "amqps" => Some(5671),
                    _ => None,
                }),
            ) {
                (Some(host), Some(port)) => format!("{host}:{port}"),
                (Some(host), None) => host.to_owned(),
                _ => self.redacted(),
            },
            Err(_) => self.redacted(),
        }
    }

    pub fn parsed(&self) -> Result<url::Url, url::ParseError> {
        url::Url::parse(self.expose())
    }
}

/// The URLs `text` holds: one, or several separated by commas. A comma
/// starts another URL only where a scheme (`name://`) follows it, since a
/// comma may stand in a URL's password.
fn split(text: &str) -> Vec<&str> {
    let mut urls = Vec::new();
    let mut start = 0;
    for (at, _) in text.match_indices(',') {
        if starts_with_scheme(text[at + 1..].trim_start()) {
            urls.push(text[start..at].trim());
            start = at + 1;
        }
    }
    urls.push(text[start..].trim());
    urls.retain(|url| !url.is_empty());
    urls
}

fn starts_with_scheme(text: &str) -> bool {
    let Some((scheme, _)) = text.split_once("://") else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

fn redact(one: &str) -> String {
    match url::Url::parse(one) {
        Ok(mut url) => {
            if url.password().is_some() {
                // Only fails for URLs that cannot have a password at all.
                let _ = url.set_password(Some("***"));
            }
            if url.query_pairs().any(|(key, _)| is_secret_parameter(&key)) {
                let pairs: Vec<(String, String)> = url
                    .query_pairs()
                    .map(|(key, value)| {
                        let value = if is_secret_parameter(&key) {
                            "***".to_owned()
                        } else {
                            value.into_owned()
                        };
                        (key.into_owned(), value)
                    })
                    .collect();
                url.query_pairs_mut().clear().extend_pairs(pairs);
            }
            url.to_string()
        }
        Err(_) => "<not a valid URL>".to_owned(),
    }
}

/// A query parameter that holds a secret: PostgreSQL's `password` and
/// `sslpassword`, and anything named like a password, secret, token or key.
fn is_secret_parameter(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "token", "key"]
        .iter()
        .any(|word| key.contains(word))
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
    fn a_password_given_as_a_query_parameter_never_shows() {
        let url = SecretUrl::new(
            "postgres://app@db:5432/app?sslmode=verify-full&password=hunter2&sslpassword=s3cret",
        );
        let shown = format!("{url} {url:?} {}", url.address());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert_eq!(
            url.to_string(),
            "postgres://app@db:5432/app?sslmode=verify-full&password=***&sslpassword=***"
        );
        let node = SecretUrl::new("amqp://u@n1/%2f?auth_token=t0ken,amqp://u@n2/%2f");
        assert!(!node.to_string().contains("t0ken"), "{node}");
    }

    #[test]
    fn an_invalid_url_is_not_echoed() {
        let url = SecretUrl::new("hunter2 is not a url");
        assert!(!url.to_string().contains("hunter2"));
    }

    #[test]
    fn a_comma_in_a_password_does_not_split_the_url() {
        let url = SecretUrl::new("amqp://guest:pa,ss@rabbit:5672/%2f");
        assert_eq!(url.nodes().len(), 1);
        assert_eq!(url.nodes()[0].expose(), url.expose());
        assert_eq!(url.to_string(), "amqp://guest:***@rabbit:5672/%2f");
        let two = SecretUrl::new("amqp://a:x,y@n1/%2f, amqp://b:z@n2/%2f");
        let nodes: Vec<String> = two.nodes().iter().map(|n| n.expose().to_owned()).collect();
        assert_eq!(nodes, ["amqp://a:x,y@n1/%2f", "amqp://b:z@n2/%2f"]);
        assert!(!two.to_string().contains("x,y"), "{two}");
    }

    #[test]
    fn a_node_is_named_by_its_host_and_port() {
        assert_eq!(
            SecretUrl::new("amqp://u:p@rabbit-1:5673/%2f").address(),
            "rabbit-1:5673"
        );
        assert_eq!(
            SecretUrl::new("amqp://u:p@rabbit-2/%2f").address(),
            "rabbit-2:5672"
        );
        assert_eq!(
            SecretUrl::new("amqps://u:p@rabbit-3").address(),
            "rabbit-3:5671"
        );
        assert!(
            !SecretUrl::new("hunter2 is not a url")
                .address()
                .contains("hunter2")
        );
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
