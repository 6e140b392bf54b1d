//! The version of the RabbitMQ node a URL reaches, for the log and for
//! `status`. RabbitMQ sends it in the server properties of AMQP's
//! `connection.start`, which lapin reads but does not expose; so this opens
//! a short connection of its own over the same TCP and TLS stack (the
//! `amqp`/`amqps` scheme of the URL), and completes the handshake before
//! closing it, so that RabbitMQ does not log an "unexpectedly closed"
//! warning for it.

use crate::amqp_target::{self, Target};
use crate::secret_url::SecretUrl;
use amq_protocol::frame::{AMQPFrame, ProtocolVersion, WriteContext, gen_frame, parse_frame};
use amq_protocol::protocol::{AMQPClass, connection};
use amq_protocol::tcp::TcpStream;
use amq_protocol::types::{AMQPValue, FieldTable, LongString, ShortString};
use amq_protocol::uri::{AMQPScheme, AMQPUri};
use std::io::{self, Read, Write};
use std::net::ToSocketAddrs;
use std::time::Duration;

/// How long the whole exchange may take.
const TIMEOUT: Duration = Duration::from_secs(5);
/// A `connection.start` is a few hundred bytes; anything far larger is not
/// an AMQP server.
const MOST_BYTES: usize = 64 * 1024;

/// The node's version (e.g. `4.0.5`), or why it could not be read.
pub async fn read(url: &SecretUrl) -> Result<String, String> {
    let mut failure = String::from("no broker URL");
    for node in url.nodes() {
        match read_one(&node).await {
            Ok(version) => return Ok(version),
            Err(reason) => failure = reason,
        }
    }
    Err(failure)
}

/// The version of the one node `url` names.
async fn read_one(url: &SecretUrl) -> Result<String, String> {
    let target = amqp_target::target(url).map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(move || probe(&target).map_err(|e| e.to_string()))
        .await
        .map_err(|e| e.to_string())?
}

fn probe(target: &Target) -> io::Result<String> {
    let uri = &target.uri;
    let host = uri.authority.host.as_str();
    let address = (host, uri.authority.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
    let socket = std::net::TcpStream::connect_timeout(&address, TIMEOUT)?;
    socket.set_read_timeout(Some(TIMEOUT))?;
    socket.set_write_timeout(Some(TIMEOUT))?;
    let mut stream = TcpStream::from_std(socket)?;
    if uri.scheme == AMQPScheme::AMQPS {
        stream = stream
            .into_tls(host, target.tls.as_ref())
            .map_err(|e| io::Error::other(e.to_string()))?;
    }
    let mut connection = Handshake {
        stream,
        buffer: Vec::new(),
    };
    connection.send(AMQPFrame::ProtocolHeader(ProtocolVersion::amqp_0_9_1()))?;
    let start = match connection.receive()? {
        AMQPFrame::Method(_, AMQPClass::Connection(connection::AMQPMethod::Start(start))) => start,
        other => return Err(unexpected(&other)),
    };
    let version = version_of(&start.server_properties)
        .ok_or_else(|| io::Error::other("the server named no version"))?;
    // Only to close politely: whatever goes wrong now, the version is read.
    let _ = connection.close(uri);
    Ok(version)
}

/// The `version` of server properties.
fn version_of(properties: &FieldTable) -> Option<String> {
    match properties.inner().get("version")? {
        AMQPValue::LongString(text) => Some(String::from_utf8_lossy(text.as_bytes()).into_owned()),
        AMQPValue::ShortString(text) => Some(text.as_str().to_owned()),
        _ => None,
    }
}

fn unexpected(frame: &AMQPFrame) -> io::Error {
    io::Error::other(format!("unexpected AMQP frame {frame:?}"))
}

struct Handshake {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Handshake {
    fn send(&mut self, frame: AMQPFrame) -> io::Result<()> {
        let written = gen_frame::<Vec<u8>>(&frame)(WriteContext::from(Vec::new()))
            .map_err(|e| io::Error::other(format!("{e:?}")))?;
        let (bytes, _) = written.into_inner();
        self.stream.write_all(&bytes)?;
        self.stream.flush()
    }

    fn receive(&mut self) -> io::Result<AMQPFrame> {
        loop {
            if let Ok((rest, frame)) = parse_frame(self.buffer.as_slice()) {
                let used = self.buffer.len() - rest.len();
                self.buffer.drain(..used);
                return Ok(frame);
            }
            if self.buffer.len() > MOST_BYTES {
                return Err(io::Error::other("not an AMQP server"));
            }
            let mut chunk = [0_u8; 4096];
            let read = self.stream.read(&mut chunk)?;
            if read == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }

    fn method(&mut self, method: connection::AMQPMethod) -> io::Result<()> {
        self.send(AMQPFrame::Method(0, AMQPClass::Connection(method)))
    }

    /// Log in with the URL's credentials (PLAIN), open its virtual host and
    /// close the connection.
    fn close(&mut self, uri: &AMQPUri) -> io::Result<()> {
        let credentials = &uri.authority.userinfo;
        let response = format!("\0{}\0{}", credentials.username, credentials.password);
        let mut client = FieldTable::default();
        client.insert(
            "product".into(),
            AMQPValue::LongString("clerk-sync (version check)".into()),
        );
        self.method(connection::AMQPMethod::StartOk(connection::StartOk {
            client_properties: client,
            mechanism: ShortString::from("PLAIN"),
            response: LongString::from(response),
            locale: ShortString::from("en_US"),
        }))?;
        let tune = match self.receive()? {
            AMQPFrame::Method(_, AMQPClass::Connection(connection::AMQPMethod::Tune(tune))) => tune,
            // Refused (credentials, vhost): the server closes it itself.
            other => return Err(unexpected(&other)),
        };
        self.method(connection::AMQPMethod::TuneOk(connection::TuneOk {
            channel_max: tune.channel_max,
            frame_max: tune.frame_max,
            heartbeat: 0,
        }))?;
        self.method(connection::AMQPMethod::Open(connection::Open {
            virtual_host: ShortString::from(uri.vhost.clone()),
        }))?;
        match self.receive()? {
            AMQPFrame::Method(_, AMQPClass::Connection(connection::AMQPMethod::OpenOk(_))) => {}
            other => return Err(unexpected(&other)),
        }
        self.method(connection::AMQPMethod::Close(connection::Close {
            reply_code: 200,
            reply_text: ShortString::from("version read"),
            class_id: 0,
            method_id: 0,
        }))?;
        self.receive().map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_read_from_the_server_properties() {
        let mut properties = FieldTable::default();
        properties.insert("product".into(), AMQPValue::LongString("RabbitMQ".into()));
        properties.insert("version".into(), AMQPValue::LongString("4.0.5".into()));
        assert_eq!(version_of(&properties).as_deref(), Some("4.0.5"));
        assert_eq!(version_of(&FieldTable::default()), None);
    }
}
