//! Clerk's Backend API, as far as `reconcile` reads it: the user list, page
//! by page (`GET /v1/users?limit=&offset=&order_by=`), and one user by id
//! (`GET /v1/users/{id}`), with the `sk_...` key as a Bearer token.
//!
//! Rate limiting (429) is waited out as `Retry-After` asks (seconds or an
//! HTTP date), without using up the tries; server errors, timeouts and
//! refused connections are retried with backoff; a refused key, an answer
//! over [`MAX_ANSWER_BYTES`] and any other answer fail at once. Errors are
//! one line naming the URL (which never holds the key).

use anyhow::{Context, bail};
use clerk_sync_domain::backoff::Backoff;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::time::{Duration, SystemTime};
use url::Url;

/// Clerk's largest page.
pub const MAX_PAGE_SIZE: u32 = 500;
/// Tries of one request before giving up.
pub const ATTEMPTS: u32 = 5;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Between tries of a request Clerk could not answer: 250 ms, doubling.
const BACKOFF: Backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(64));
/// The longest wait honoured from `Retry-After`.
const LONGEST_WAIT: Duration = Duration::from_secs(60);
/// Rate-limited answers (429) in a row before giving up: they do not use up
/// [`ATTEMPTS`], but Clerk refusing for half an hour is an outage.
pub const RATE_LIMITED_TRIES: u32 = 30;
/// The largest answer read: a page of 500 users is a few MiB at most.
pub const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug)]
pub struct ClerkApi {
    http: reqwest::Client,
    base: Url,
    key: SecretString,
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
    pub fn new(api_url: &str, key: SecretString) -> anyhow::Result<Self> {
        let base = Url::parse(api_url)
            .context("setting clerk.api_url (CLERK_SYNC__CLERK__API_URL): not a valid URL")?;
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("clerk-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self { http, base, key })
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

/// The tries of one request so far: failures, and rate-limited answers in
/// a row, which are counted apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tries {
    /// Tries that failed other than by a 429, the current one included.
    pub attempt: u32,
    /// 429s in a row, the current one included.
    pub rate_limited: u32,
}

impl Default for Tries {
    fn default() -> Self {
        Self {
            attempt: 1,
            rate_limited: 0,
        }
    }
}

impl Tries {
    /// After a failed try (`status` None: no answer at all; `retry_after`
    /// as Clerk asked), how long to wait before the next, or None when not
    /// to try again. Counts the try.
    pub fn next(&mut self, status: Option<u16>, retry_after: Option<Duration>) -> Option<Duration> {
        if status == Some(429) {
            self.rate_limited += 1;
            if self.rate_limited >= RATE_LIMITED_TRIES {
                return None;
            }
            let exponential = BACKOFF.after(self.rate_limited - 1);
            return Some(retry_after.unwrap_or(exponential).min(LONGEST_WAIT));
        }
        self.rate_limited = 0;
        let wait = backoff(self.attempt, status)?;
        self.attempt += 1;
        Some(wait)
    }
}

/// How long to wait before try `attempt + 1` after a failed try `attempt`
/// that was not rate-limited (`status` None: no answer at all), or None
/// when not to try again.
pub fn backoff(attempt: u32, status: Option<u16>) -> Option<Duration> {
    if attempt >= ATTEMPTS {
        return None;
    }
    match status {
        None | Some(500..=599) => Some(BACKOFF.after(attempt.saturating_sub(1))),
        Some(_) => None,
    }
}

/// A `Retry-After` value in either of its forms: seconds, or an HTTP date
/// (`Sun, 06 Nov 1994 08:49:37 GMT`, and the two obsolete forms), as the
/// wait from `now`; a date in the past is no wait. None when unreadable.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value)
        .map(|date| date.with_timezone(&chrono::Utc))
        .or_else(|_| {
            ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
                .iter()
                .find_map(|format| chrono::NaiveDateTime::parse_from_str(value, format).ok())
                .map(|naive| naive.and_utc())
                .ok_or(())
        })
        .ok()?;
    let now = chrono::DateTime::<chrono::Utc>::from(now);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
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
    fn server_errors_back_off_and_other_answers_give_up() {
        assert_eq!(backoff(1, Some(503)), Some(Duration::from_millis(250)));
        assert_eq!(backoff(3, None), Some(Duration::from_millis(1000)));
        assert_eq!(backoff(ATTEMPTS, Some(503)), None);
        assert_eq!(backoff(1, Some(400)), None);
        assert_eq!(backoff(1, Some(422)), None);
    }

    #[test]
    fn rate_limits_wait_as_asked_without_using_up_the_tries() {
        let mut tries = Tries::default();
        let three = Some(Duration::from_secs(3));
        for _ in 0..ATTEMPTS * 2 {
            assert_eq!(tries.next(Some(429), three), three);
        }
        assert_eq!(tries.attempt, 1, "429s use no try");
        assert_eq!(
            tries.next(Some(429), Some(Duration::from_secs(3600))),
            Some(LONGEST_WAIT)
        );
        // Without a readable Retry-After: backoff by 429s in a row.
        let mut tries = Tries::default();
        assert_eq!(
            tries.next(Some(429), None),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            tries.next(Some(429), None),
            Some(Duration::from_millis(500))
        );
        // A server error in between ends the run of 429s and uses a try.
        assert_eq!(
            tries.next(Some(503), None),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            tries,
            Tries {
                attempt: 2,
                rate_limited: 0
            }
        );
        // Clerk refusing for ever is given up on.
        let mut tries = Tries::default();
        let waits = (0..RATE_LIMITED_TRIES)
            .map_while(|_| tries.next(Some(429), three))
            .count();
        assert_eq!(waits, RATE_LIMITED_TRIES as usize - 1);
    }

    #[test]
    fn retry_after_is_read_in_both_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_757); // Sun, 06 Nov 1994 08:49:17 GMT
        assert_eq!(retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        let in_20_s = Some(Duration::from_secs(20));
        assert_eq!(retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), in_20_s);
        assert_eq!(retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now), in_20_s);
        assert_eq!(retry_after("Sun Nov  6 08:49:37 1994", now), in_20_s);
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date passed is no wait"
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-1", now), None);
    }

    #[test]
    fn urls_keep_the_base_path_and_escape_ids() {
        let api =
            ClerkApi::new("http://127.0.0.1:9/clerk/", SecretString::from("sk_test")).unwrap();
        assert_eq!(
            api.users_url(&["user_1/../x"]).as_str(),
            "http://127.0.0.1:9/clerk/v1/users/user_1%2F..%2Fx"
        );
        let api = ClerkApi::new("https://api.clerk.com", SecretString::from("sk_test")).unwrap();
        assert_eq!(
            api.users_url(&[]).as_str(),
            "https://api.clerk.com/v1/users"
        );
    }
}
