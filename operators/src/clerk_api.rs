//! Clerk's Backend API, as far as `reconcile` reads it: the user list, page
//! by page (`GET /v1/users?limit=&offset=&order_by=`), how many users there
//! are (`GET /v1/users/count`), and one user by id (`GET /v1/users/{id}`),
//! with the `sk_...` key as a Bearer token. Every request, retries
//! included, waits for its turn within the request budget ([`Pacing`]).
//!
//! Rate limits, server errors, timeouts and refused connections are tried
//! again as [`crate::clerk_retry`] says; a refused key, an answer over
//! [`MAX_ANSWER_BYTES`] and any other answer fail at once. Errors are one
//! line naming the URL (which never holds the key).

use crate::clerk_retry::{Tries, retry_after};
use crate::pacing::Pacing;
use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use url::Url;

/// Clerk's largest page.
pub const MAX_PAGE_SIZE: u32 = 500;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read: a page of 500 users is a few MiB at most.
pub const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug)]
pub struct ClerkApi {
    http: reqwest::Client,
    base: Url,
    key: SecretString,
    pacing: Mutex<Pacing>,
    /// Requests sent so far, retries included.
    sent: AtomicU64,
}

/// One page of the user list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Clerk's user objects as returned (each an object with a string `id`).
    pub users: Vec<Value>,
    /// Present when Clerk answers `{"data": [...], "total_count": N}`.
    pub total_count: Option<u64>,
}

impl ClerkApi {
    /// `budget`: requests per 10 s, paced evenly; 0 for none.
    pub fn new(api_url: &str, key: SecretString, budget: u32) -> anyhow::Result<Self> {
        let base = Url::parse(api_url)
            .context("setting clerk.api_url (CLERK_SYNC__CLERK__API_URL): not a valid URL")?;
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("clerk-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            http,
            base,
            key,
            pacing: Mutex::new(Pacing::new(budget)),
            sent: AtomicU64::new(0),
        })
    }

    /// Requests sent so far, retries included.
    pub fn requests_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// How many users the instance has; `None` when this API does not say
    /// (404).
    pub async fn user_count(&self) -> anyhow::Result<Option<u64>> {
        let url = self.users_url(&["count"]);
        let Some(body) = self.get(&url).await? else {
            return Ok(None);
        };
        match serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|count| count.get("total_count")?.as_u64())
        {
            Some(count) => Ok(Some(count)),
            None => bail!("Clerk's answer from {url} is not a count of users"),
        }
    }

    /// `limit` users from `offset` on, newest first.
    pub async fn list_users(&self, offset: u64, limit: u32) -> anyhow::Result<Page> {
        let mut url = self.users_url(&[]);
        url.query_pairs_mut()
            .append_pair("limit", &limit.to_string())
            .append_pair("offset", &offset.to_string())
            .append_pair("order_by", "-created_at");
        match self.get(&url).await? {
            Some(body) => parse_page(&body).map_err(|problem| {
                anyhow::anyhow!("Clerk's answer from {url} is not a user list: {problem}")
            }),
            None => bail!(
                "Clerk answered 404 Not Found at {url}: is clerk.api_url the Backend API (https://api.clerk.com)?"
            ),
        }
    }

    /// One user, or `None` when Clerk no longer has it (404).
    pub async fn user(&self, user_id: &str) -> anyhow::Result<Option<Value>> {
        let url = self.users_url(&[user_id]);
        let Some(body) = self.get(&url).await? else {
            return Ok(None);
        };
        match serde_json::from_slice::<Value>(&body) {
            Ok(user) if user_id_of(&user) == Some(user_id) => Ok(Some(user)),
            _ => bail!("Clerk's answer from {url} is not the user {user_id}"),
        }
    }

    /// `{base}/v1/users[/segments...]`, whatever path the base has.
    fn users_url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.set_query(None);
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["v1", "users"]).extend(segments);
        }
        url
    }

    /// GET with retries: the body of a 2xx, `None` for a 404.
    async fn get(&self, url: &Url) -> anyhow::Result<Option<Vec<u8>>> {
        let mut tries = Tries::default();
        loop {
            self.take_turn().await;
            let sent = self
                .http
                .get(url.clone())
                .bearer_auth(self.key.expose_secret())
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await;
            let failure = match sent {
                Ok(response) => {
                    let status = response.status().as_u16();
                    match status {
                        200..=299 => match read_capped(response).await {
                            Ok(body) => return Ok(Some(body)),
                            Err(Failure::TooLarge) => bail!(
                                "Clerk's answer from {url} is larger than {} MiB: not read",
                                MAX_ANSWER_BYTES / (1024 * 1024)
                            ),
                            Err(failure) => failure,
                        },
                        404 => return Ok(None),
                        401 | 403 => bail!(
                            "Clerk refused the secret key ({status} at {url}): check CLERK_SECRET_KEY (clerk.secret_key)"
                        ),
                        _ => {
                            let retry_after = response
                                .headers()
                                .get(reqwest::header::RETRY_AFTER)
                                .and_then(|value| value.to_str().ok())
                                .and_then(|value| retry_after(value, SystemTime::now()));
                            Failure::Status(status, retry_after)
                        }
                    }
                }
                Err(e) => Failure::Transport(e.without_url().to_string()),
            };
            let (status, retry_after) = match &failure {
                Failure::Status(status, retry_after) => (Some(*status), *retry_after),
                Failure::Transport(_) | Failure::TooLarge => (None, None),
            };
            match tries.next(status, retry_after) {
                Some(wait) => {
                    tracing::info!(
                        %url,
                        attempt = tries.attempt,
                        rate_limited = tries.rate_limited,
                        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        problem = %failure,
                        "Clerk's API did not answer; retrying"
                    );
                    tokio::time::sleep(wait).await;
                }
                None if tries.attempt + tries.rate_limited > 1 => bail!(
                    "Clerk's API at {url} failed {} times, last: {failure}",
                    tries.attempt + tries.rate_limited
                ),
                None => bail!("Clerk's API at {url} answered {failure}"),
            }
        }
    }

    /// Wait for this request's turn within the budget, and count it.
    async fn take_turn(&self) {
        let wait = self
            .pacing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .wait(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
            self.pacing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .went(Instant::now());
        }
        self.sent.fetch_add(1, Ordering::Relaxed);
    }
}

/// A 2xx answer's body, refused once it passes [`MAX_ANSWER_BYTES`]
/// (whatever `Content-Length` says: it is read chunk by chunk).
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, Failure> {
    if response
        .content_length()
        .is_some_and(|length| length > MAX_ANSWER_BYTES as u64)
    {
        return Err(Failure::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Failure::Transport(e.without_url().to_string()))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(Failure::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[derive(Debug)]
enum Failure {
    /// An HTTP status clerk-sync does not take as an answer, with the wait
    /// its Retry-After asks for.
    Status(u16, Option<Duration>),
    /// No answer: connection refused, timeout, reset.
    Transport(String),
    /// A 2xx answer over [`MAX_ANSWER_BYTES`].
    TooLarge,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Status(status, _) => write!(f, "HTTP {status}"),
            Self::Transport(problem) => write!(f, "no answer ({problem})"),
            Self::TooLarge => write!(f, "an answer over {MAX_ANSWER_BYTES} bytes"),
        }
    }
}

/// A page as Clerk sends it: a JSON array of user objects, or (newer API
/// versions) `{"data": [...], "total_count": N}`.
pub fn parse_page(body: &[u8]) -> Result<Page, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON ({:?} error)", e.classify()))?;
    let (users, total_count) = match value {
        Value::Array(users) => (users, None),
        Value::Object(mut object) => match object.remove("data") {
            Some(Value::Array(users)) => (users, object.get("total_count").and_then(Value::as_u64)),
            _ => return Err("an object without a \"data\" array".to_owned()),
        },
        _ => return Err("neither an array nor an object with \"data\"".to_owned()),
    };
    if let Some(position) = users.iter().position(|user| user_id_of(user).is_none()) {
        return Err(format!("item {} has no string \"id\"", position + 1));
    }
    Ok(Page { users, total_count })
}

/// The `id` of a user object, when it has a non-empty one.
pub fn user_id_of(user: &Value) -> Option<&str> {
    user.get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_page_shapes_are_read() {
        let array = parse_page(br#"[{"id":"user_1"},{"id":"user_2","first_name":"A"}]"#).unwrap();
        assert_eq!(array.users.len(), 2);
        assert_eq!(array.total_count, None);
        let paginated = parse_page(br#"{"data":[{"id":"user_1"}],"total_count":7}"#).unwrap();
        assert_eq!(paginated.users.len(), 1);
        assert_eq!(paginated.total_count, Some(7));
        assert_eq!(parse_page(b"[]").map(|p| p.users.len()), Ok(0));
    }

    #[test]
    fn anything_else_is_not_a_user_list() {
        assert_eq!(
            parse_page(b"<html>").map(|_| ()),
            Err("not JSON (Syntax error)".to_owned())
        );
        assert_eq!(
            parse_page(br#"{"errors":[]}"#).map(|_| ()),
            Err("an object without a \"data\" array".to_owned())
        );
        assert_eq!(
            parse_page(br#"[{"id":"user_1"},{"object":"user"}]"#).map(|_| ()),
            Err("item 2 has no string \"id\"".to_owned())
        );
        assert!(parse_page(b"42").is_err());
        assert!(parse_page(br#"[{"id":""}]"#).is_err());
    }

    #[test]
    fn urls_keep_the_base_path_and_escape_ids() {
        let api = ClerkApi::new(
            "http://127.0.0.1:9/clerk/",
            SecretString::from("sk_test"),
            0,
        )
        .unwrap();
        assert_eq!(
            api.users_url(&["user_1/../x"]).as_str(),
            "http://127.0.0.1:9/clerk/v1/users/user_1%2F..%2Fx"
        );
        let api = ClerkApi::new("https://api.clerk.com", SecretString::from("sk_test"), 0).unwrap();
        assert_eq!(
            api.users_url(&[]).as_str(),
            "https://api.clerk.com/v1/users"
        );
    }
}
