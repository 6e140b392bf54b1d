//! Signing a body as Svix does and posting it to the ingest.

use clerk_sync_domain::paths;
use clerk_sync_runtime::settings::WebhookSettings;
use clerk_sync_store::settings::Settings;
use secrecy::ExposeSecret;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use svix::webhooks::{Webhook, WebhookError};

/// How long one post may take, connecting included.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The ingest's webhook URL on this machine, from its `ingest.listen`:
/// an unspecified address (`0.0.0.0`, `::`) is reached on loopback.
pub fn default_url(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!(
        "http://{}{}",
        SocketAddr::new(ip, listen.port()),
        paths::WEBHOOK
    )
}

/// What the ingest answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why a post got no answer. One line each, naming the URL.
#[derive(Debug)]
pub enum PostError {
    Unreachable { url: String, cause: String },
    Timeout { url: String },
}

impl fmt::Display for PostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable { url, cause } => {
                write!(f, "could not reach the ingest at {url}: {cause}")
            }
            Self::Timeout { url } => write!(
                f,
                "the ingest at {url} did not answer within {} s",
                TIMEOUT.as_secs()
            ),
        }
    }
}

impl std::error::Error for PostError {}

/// Signs with the first configured webhook secret and posts to one URL.
#[derive(Debug)]
pub struct Poster {
    webhook: Webhook,
    client: reqwest::Client,
    url: String,
}

impl Poster {
    /// A settings fault (no secret, or one that is not a whsec_ secret) is a
    /// [`SettingsError`](clerk_sync_runtime::settings::SettingsError), so the command exits 2.
    pub fn new(settings: &Settings, url: String) -> anyhow::Result<Self> {
        let secrets = settings.webhook.require_secrets()?;
        let count = secrets.len();
        let first = secrets
            .iter()
            .next()
            .ok_or_else(|| WebhookSettings::invalid_secret(1, count, "missing"))?;
        let webhook = Webhook::new(first.expose_secret()).map_err(|e| {
            let problem = match e {
                WebhookError::InvalidSecret(_) => "not base64 after whsec_",
                WebhookError::EmptySecret => "empty",
                _ => "unusable",
            };
            WebhookSettings::invalid_secret(1, count, problem)
        })?;
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent(concat!(
                "clerk-sync-worker/",
                env!("CARGO_PKG_VERSION"),
                " send"
            ))
            .build()?;
        Ok(Self {
            webhook,
            client,
            url,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sign `body` for `svix_id` at the current time and post it, with the
    /// three Svix headers, as Svix delivers a message.
    pub async fn post(&self, svix_id: &str, body: &[u8]) -> anyhow::Result<Answer> {
        let timestamp = clerk_sync_store::clock::now_ms() / 1000;
        // Svix signs text only; the caller checks the body is UTF-8.
        let signature = self
            .webhook
            .sign(svix_id, timestamp, body)
            .map_err(|_| anyhow::anyhow!("the body is not UTF-8 text, which Svix cannot sign"))?;
        let response = self
            .client
            .post(&self.url)
            .header("svix-id", svix_id)
            .header("svix-timestamp", timestamp.to_string())
            .header("svix-signature", signature)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| self.no_answer(&e))?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| self.no_answer(&e))?;
        Ok(Answer { status, body })
    }

    fn no_answer(&self, error: &reqwest::Error) -> PostError {
        let url = self.url.clone();
        if error.is_timeout() {
            return PostError::Timeout { url };
        }
        PostError::Unreachable {
            url,
            cause: root_cause(error),
        }
    }
}

/// The innermost cause: "Connection refused (os error 111)" rather than
/// reqwest's and hyper's wrappers around it.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_unspecified_listen_address_is_reached_on_loopback() {
        assert_eq!(
            default_url(addr("0.0.0.0:8080")),
            "http://127.0.0.1:8080/api/webhooks/clerk"
        );
        assert_eq!(
            default_url(addr("[::]:8081")),
            "http://[::1]:8081/api/webhooks/clerk"
        );
    }

    #[test]
    fn a_specific_listen_address_is_used_as_it_is() {
        assert_eq!(
            default_url(addr("10.1.2.3:9000")),
            "http://10.1.2.3:9000/api/webhooks/clerk"
        );
        assert_eq!(
            default_url(addr("[fd00::5]:80")),
            "http://[fd00::5]:80/api/webhooks/clerk"
        );
    }

    #[test]
    fn only_2xx_is_success() {
        let answer = |status| Answer {
            status,
            body: String::new(),
        };
        assert!(answer(202).is_success());
        assert!(answer(200).is_success());
        assert!(!answer(401).is_success());
        assert!(!answer(503).is_success());
        assert!(!answer(302).is_success());
    }

    #[test]
    fn a_post_error_is_one_line_naming_the_url() {
        let error = PostError::Unreachable {
            url: "http://127.0.0.1:1/api/webhooks/clerk".to_owned(),
            cause: "Connection refused (os error 111)".to_owned(),
        };
        assert_eq!(
            error.to_string(),
            "could not reach the ingest at http://127.0.0.1:1/api/webhooks/clerk: \
             Connection refused (os error 111)"
        );
    }
}
