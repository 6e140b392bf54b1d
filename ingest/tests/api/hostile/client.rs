//! A client on a raw TCP connection: a request head declaring a body, part
//! of the body (or none), then silence; and what the ingest answered.

use crate::helpers::*;
use clerk_sync_domain::paths;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// A request whose body stalls after `sent` of its `declared` bytes, with
/// Svix headers that parse (so only the body decides its fate).
pub async fn stall(address: &str, declared: usize, sent: usize) -> Stalled {
    let host = address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).await.unwrap();
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n",
        paths::WEBHOOK
    );
    for (name, value) in signed_headers(SECRET, &new_svix_id(), now(), b"{}") {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let started = Instant::now();
    // A refused request's connection may be closed while this still
    // writes: what the ingest answered is read afterwards all the same.
    if stream.write_all(head.as_bytes()).await.is_ok() && sent > 0 {
        let _ = stream.write_all(&vec![b'x'; sent]).await;
    }
    Stalled { stream, started }
}

/// `text` as sent, then silence.
pub async fn send(address: &str, text: &str) -> Stalled {
    let mut stream = TcpStream::connect(address.trim_start_matches("http://"))
        .await
        .unwrap();
    let started = Instant::now();
    stream.write_all(text.as_bytes()).await.unwrap();
    Stalled { stream, started }
}

pub struct Stalled {
    stream: TcpStream,
    started: Instant,
}

/// What the ingest did with a stalled request.
#[derive(Debug)]
pub struct Answer {
    /// The status line's code, if an answer was read.
    pub status: Option<u16>,
    /// The whole answer as read.
    pub text: String,
    /// The ingest closed the connection (end of stream or reset).
    pub closed: bool,
    /// Time from the first byte written to the answer's first byte.
    pub answered_after: Option<Duration>,
    /// ... to the close (or to `within`).
    pub after: Duration,
}

impl Stalled {
    /// Read until the ingest closes the connection, for at most `within`.
    pub async fn answer(mut self, within: Duration) -> Answer {
        let until = self.started + within;
        let mut read = Vec::new();
        let mut buffer = [0_u8; 4096];
        let mut answered_after = None;
        let closed = loop {
            match tokio::time::timeout_at(until, self.stream.read(&mut buffer)).await {
                Ok(Ok(0) | Err(_)) => break true,
                Ok(Ok(n)) => {
                    answered_after.get_or_insert_with(|| self.started.elapsed());
                    read.extend_from_slice(&buffer[..n]);
                }
                Err(_) => break false,
            }
        };
        let text = String::from_utf8_lossy(&read).into_owned();
        let status = text
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok());
        Answer {
            status,
            text,
            closed,
            answered_after,
            after: self.started.elapsed(),
        }
    }
}

impl Answer {
    /// Answered within a second, and the connection closed (actix gives
    /// the client `client_disconnect_timeout`, 1 s, to close first).
    pub fn answered_at_once(&self) -> bool {
        self.answered_after
            .is_some_and(|after| after < Duration::from_secs(1))
            && self.closed
            && self.after < Duration::from_millis(2_500)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.text
            .split("\r\n\r\n")
            .next()?
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name).then(|| value.trim())
            })
    }
}

/// A metric's value in `/metrics`' text (0 when the series is absent).
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}
