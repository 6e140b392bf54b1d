//! A lean HTTP/1.1 client for load generators, as `wrk` is one: each
//! request encoded once, ahead ([`post`]), written in one go (its head
//! and its body, which requests may share) on a kept-alive connection, its
//! answer read up to its `Content-Length`.
//! A benchmark's own CPU per request then stays small beside the
//! service's it measures: reqwest's pooled client cost the load
//! generator about 40 µs per request on the reference machine, as much as
//! the ingest's whole HTTP path.
//!
//! Only what the benchmarks need: no TLS, no chunked answers (refused
//! with an error), no redirects. A kept-alive connection the server has
//! closed while idle is opened again and the request sent once more, as
//! hyper does; any other failure is the caller's.

use bytes::Bytes;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use tokio::net::TcpStream;

/// Headers an answer may carry, at most.
const MAX_HEADERS: usize = 32;

/// A request as written on the connection: its head, then its body.
#[derive(Clone, Debug)]
pub struct Request {
    head: Bytes,
    body: Bytes,
}

/// A POST of `body` to `path` on `host`, with `headers` besides `host` and
/// `content-length`.
pub fn post(host: &str, path: &str, headers: &[(&str, &str)], body: Bytes) -> Request {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let head = Bytes::from(head);
    Request { head, body }
}

/// An answer: its status and body.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    /// Ok for a 2xx answer; else `HTTP <status>: <body>`.
    pub fn success(&self) -> Result<(), String> {
        if (200..300).contains(&self.status) {
            return Ok(());
        }
        let body = String::from_utf8_lossy(&self.body);
        Err(format!("HTTP {}: {body}", self.status))
    }
}

/// Connections to one server, kept alive between requests and shared by
/// the tasks that send them (one connection per request in flight).
#[derive(Debug)]
pub struct Client {
    server: SocketAddr,
    idle: Mutex<Vec<Connection>>,
}

impl Client {
    pub fn new(server: SocketAddr) -> Self {
        let idle = Mutex::new(Vec::new());
        Self { server, idle }
    }

    /// The server's address, which requests name as their `host`.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// Write `request` on an idle connection, or a new one, and read its
    /// answer.
    pub async fn send(&self, request: &Request) -> Result<Answer, String> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let (mut connection, answer) = match idle {
            Some(mut connection) => match connection.exchange(request).await {
                Err(Failure::ClosedIdle) => self.fresh(request).await?,
                answer => (connection, answer),
            },
            None => self.fresh(request).await?,
        };
        let answer = answer.map_err(|failure| failure.to_string())?;
        if answer.keep_alive {
            connection.buffer.clear();
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            idle.push(connection);
        }
        Ok(answer.answer)
    }

    /// `request` on a new connection.
    async fn fresh(
        &self,
        request: &Request,
    ) -> Result<(Connection, Result<Read, Failure>), String> {
        let stream = TcpStream::connect(self.server)
            .await
            .map_err(|e| format!("connecting to {}: {e}", self.server))?;
        // Requests are written whole: nothing to gain from Nagle's wait.
        stream
            .set_nodelay(true)
            .map_err(|e| format!("TCP_NODELAY: {e}"))?;
        let mut connection = Connection {
            stream,
            buffer: Vec::with_capacity(4096),
        };
        let answer = connection.exchange(request).await;
        Ok((connection, answer))
    }
}

#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

/// An answer read, and whether its connection may carry the next request.
struct Read {
    answer: Answer,
    keep_alive: bool,
}

#[derive(Debug)]
enum Failure {
    /// The server closed the connection before answering a byte.
    ClosedIdle,
    Other(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ClosedIdle => f.write_str("the server closed the connection without answering"),
            Self::Other(message) => f.write_str(message),
        }
    }
}

impl Connection {
    async fn exchange(&mut self, request: &Request) -> Result<Read, Failure> {
        self.write_all(request).await?;
        loop {
            if let Some(read) = parse(&self.buffer)? {
                return Ok(read);
            }
            if self.read_some().await? == 0 {
                return Err(match self.buffer.is_empty() {
                    true => Failure::ClosedIdle,
                    false => Failure::Other("the server closed the connection mid-answer".into()),
                });
            }
        }
    }

    async fn write_all(&mut self, request: &Request) -> Result<(), Failure> {
        let (head, body) = (&request.head[..], &request.body[..]);
        let mut written = 0;
        while written < head.len() + body.len() {
            let parts = match head.get(written..) {
                Some(rest) if !rest.is_empty() => [IoSlice::new(rest), IoSlice::new(body)],
                _ => [
                    IoSlice::new(&body[written - head.len()..]),
                    IoSlice::new(&[]),
                ],
            };
            match self.stream.try_write_vectored(&parts) {
                Ok(count) => written += count,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let ready = self.stream.writable().await;
                    ready.map_err(|e| Failure::Other(format!("writing: {e}")))?;
                }
                // A reset by a server that closed an idle connection.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    return Err(Failure::ClosedIdle);
                }
                Err(e) => return Err(Failure::Other(format!("writing: {e}"))),
            }
        }
        Ok(())
    }

    /// Bytes read into the buffer: 0 at the end of the stream.
    async fn read_some(&mut self) -> Result<usize, Failure> {
        let filled = self.buffer.len();
        self.buffer.resize(filled.max(2048) * 2, 0);
        let read = loop {
            match self.stream.try_read(&mut self.buffer[filled..]) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if let Err(e) = self.stream.readable().await {
                        break Err(e);
                    }
                }
                read => break read,
            }
        };
        let read = match read {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && filled == 0 => {
                Err(Failure::ClosedIdle)
            }
            read => read.map_err(|e| Failure::Other(format!("reading: {e}"))),
        };
        self.buffer.truncate(filled + *read.as_ref().unwrap_or(&0));
        read
    }
}

/// A whole answer at the start of `bytes`, or None if more is to come.
fn parse(bytes: &[u8]) -> Result<Option<Read>, Failure> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let invalid = |e: &dyn std::fmt::Display| Failure::Other(format!("invalid answer: {e}"));
    let head = match response.parse(bytes).map_err(|e| invalid(&e))? {
        httparse::Status::Partial => return Ok(None),
        httparse::Status::Complete(head) => head,
    };
    let (mut length, mut keep_alive) = (None, response.version == Some(1));
    for header in response.headers.iter() {
        let value = std::str::from_utf8(header.value).unwrap_or_default().trim();
        if header.name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().map_err(|e| invalid(&e))?);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(invalid(&format_args!("transfer-encoding {value}")));
        } else if header.name.eq_ignore_ascii_case("connection") {
            keep_alive = !value.eq_ignore_ascii_case("close");
        }
    }
    let length = length.ok_or_else(|| invalid(&"no content-length"))?;
    let Some(body) = bytes.get(head..head + length) else {
        return Ok(None);
    };
    if bytes.len() > head + length {
        return Err(invalid(&"bytes after the answer's body"));
    }
    let status = response.code.unwrap_or_default();
    let answer = Answer {
        status,
        body: body.to_vec(),
    };
    Ok(Some(Read { answer, keep_alive }))
}

#[cfg(test)]
#[path = "http1_tests.rs"]
mod tests;
