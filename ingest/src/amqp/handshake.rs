//! Opening a publishing connection: TCP (and TLS for `amqps://`), then
//! AMQP's handshake: log in (PLAIN), agree frame size and heartbeat, open
//! the virtual host, open channel 1 and put it in confirm mode.

use super::frames::{self, FRAME_MIN_SIZE, FrameError};
use super::tls;
use amq_protocol::frame::{AMQPFrame, ProtocolVersion};
use amq_protocol::protocol::{AMQPClass, channel, confirm, connection};
use amq_protocol::types::{AMQPValue, FieldTable, LongString, ShortString};
use amq_protocol::uri::{AMQPScheme, AMQPUri};
use clerk_sync_runtime::amqp_target::Target;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The channel every publish goes on.
pub const CHANNEL: u16 = 1;

/// A byte stream, over TLS or not.
pub trait Io: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Io for T {}

/// A connection ready to publish on [`CHANNEL`].
pub struct Opened {
    pub io: Box<dyn Io>,
    /// Bytes read past the handshake's last frame.
    pub read: Vec<u8>,
    /// The largest frame either side may send (0: no limit).
    pub frame_max: u32,
    /// Seconds between heartbeats (0: none).
    pub heartbeat: u16,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("frame_max", &self.frame_max)
            .field("heartbeat", &self.heartbeat)
            .finish_non_exhaustive()
    }
}

/// Why a connection could not be opened: said in `/readyz` and the log,
/// never with the URL's password.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("RabbitMQ refused the connection: {code} {text}")]
    Refused { code: u16, text: String },
    #[error("RabbitMQ answered {0} during the handshake")]
    Unexpected(String),
}

/// Connect to `target`'s node and open a confirm-mode channel on it.
pub async fn open(target: &Target, connection_name: &str) -> Result<Opened, OpenError> {
    let uri = &target.uri;
    let host = uri.authority.host.as_str();
    let tcp = tokio::net::TcpStream::connect((host, uri.authority.port)).await?;
    // Each publish is a few small frames: send them now, not after 40 ms.
    tcp.set_nodelay(true)?;
    let io: Box<dyn Io> = if uri.scheme == AMQPScheme::AMQPS {
        let connector = tls::connector(target.tls.cert_chain.as_deref()).map_err(OpenError::Tls)?;
        let name = tls::server_name(host).map_err(OpenError::Tls)?;
        Box::new(connector.connect(name, tcp).await?)
    } else {
        Box::new(tcp)
    };
    let mut wire = Wire {
        io,
        read: Vec::new(),
        frame_max: FRAME_MIN_SIZE,
    };
    let (frame_max, heartbeat) = wire.log_in(uri, connection_name).await?;
    wire.frame_max = frame_max;
    wire.send(AMQPFrame::Method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
            virtual_host: short(&uri.vhost)?,
        })),
    ))
    .await?;
    wire.expect(|class| {
        matches!(
            class,
            AMQPClass::Connection(connection::AMQPMethod::OpenOk(_))
        )
    })
    .await?;
    wire.send(AMQPFrame::Method(
        CHANNEL,
        AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
    ))
    .await?;
    wire.expect(|class| matches!(class, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_))))
        .await?;
    wire.send(AMQPFrame::Method(
        CHANNEL,
        AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select {
            nowait: false,
        })),
    ))
    .await?;
    wire.expect(|class| matches!(class, AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(_))))
        .await?;
    Ok(Opened {
        io: wire.io,
        read: wire.read,
        frame_max,
        heartbeat,
    })
}

fn short(text: &str) -> Result<ShortString, OpenError> {
    ShortString::try_new(text).map_err(|e| OpenError::Frame(FrameError::Encode(e.to_string())))
}

/// What this client can do, as RabbitMQ asks clients to say: without
/// `connection.blocked` it would never say why it stops reading.
fn client_properties(connection_name: &str) -> FieldTable {
    let mut capabilities = FieldTable::default();
    for capability in [
        "publisher_confirms",
        "connection.blocked",
        "authentication_failure_close",
        "basic.nack",
    ] {
        capabilities.insert(capability.into(), AMQPValue::Boolean(true));
    }
    let mut properties = FieldTable::default();
    properties
        .insert("product".into(), AMQPValue::LongString("clerk-sync".into()))
        .insert(
            "connection_name".into(),
            AMQPValue::LongString(connection_name.into()),
        )
        .insert("capabilities".into(), AMQPValue::FieldTable(capabilities));
    properties
}

/// Pure: the frame size and heartbeat to use: the URL's (see
/// `amqp_target`), within the server's limit; the server's heartbeat
/// unless the URL sets one.
pub fn tune(uri: &AMQPUri, server: &connection::Tune) -> (u32, u16) {
    let ours = uri.query.frame_max.unwrap_or(0);
    // No peer may ask for less than the protocol's minimum frame size.
    let frame_max = match (ours, server.frame_max) {
        (0, 0) => 0,
        (0, one) | (one, 0) => one.max(FRAME_MIN_SIZE),
        (ours, theirs) => ours.min(theirs).max(FRAME_MIN_SIZE),
    };
    let heartbeat = uri.query.heartbeat.unwrap_or(server.heartbeat);
    (frame_max, heartbeat)
}

struct Wire {
    io: Box<dyn Io>,
    read: Vec<u8>,
    frame_max: u32,
}

impl Wire {
    async fn send(&mut self, frame: AMQPFrame) -> Result<(), OpenError> {
        let mut out = Vec::new();
        frames::put(&mut out, &frame)?;
        self.io.write_all(&out).await?;
        Ok(self.io.flush().await?)
    }

    async fn receive(&mut self) -> Result<AMQPFrame, OpenError> {
        loop {
            if let Some((frame, used)) = frames::next(&self.read, self.frame_max)? {
                self.read.drain(..used);
                return Ok(frame);
            }
            let mut chunk = [0_u8; 4096];
            let read = self.io.read(&mut chunk).await?;
            if read == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
            }
            self.read.extend_from_slice(&chunk[..read]);
        }
    }

    /// The next method, or the server's reason for closing instead.
    async fn method(&mut self) -> Result<AMQPClass, OpenError> {
        loop {
            match self.receive().await? {
                AMQPFrame::Method(
                    _,
                    AMQPClass::Connection(connection::AMQPMethod::Close(close)),
                ) => {
                    return Err(OpenError::Refused {
                        code: close.reply_code,
                        text: close.reply_text.to_string(),
                    });
                }
                AMQPFrame::Method(_, AMQPClass::Channel(channel::AMQPMethod::Close(close))) => {
                    return Err(OpenError::Refused {
                        code: close.reply_code,
                        text: close.reply_text.to_string(),
                    });
                }
                AMQPFrame::Method(_, class) => return Ok(class),
                AMQPFrame::Heartbeat => {}
                other => return Err(OpenError::Unexpected(other.to_string())),
            }
        }
    }

    async fn expect(&mut self, wanted: impl Fn(&AMQPClass) -> bool) -> Result<(), OpenError> {
        let class = self.method().await?;
        if wanted(&class) {
            Ok(())
        } else {
            Err(OpenError::Unexpected(format!("{class:?}")))
        }
    }

    /// Protocol header, `start-ok` with the URL's user (PLAIN), `tune-ok`.
    async fn log_in(
        &mut self,
        uri: &AMQPUri,
        connection_name: &str,
    ) -> Result<(u32, u16), OpenError> {
        self.send(AMQPFrame::ProtocolHeader(ProtocolVersion::amqp_0_9_1()))
            .await?;
        match self.method().await? {
            AMQPClass::Connection(connection::AMQPMethod::Start(_)) => {}
            other => return Err(OpenError::Unexpected(format!("{other:?}"))),
        }
        let credentials = &uri.authority.userinfo;
        let response = format!("\0{}\0{}", credentials.username, credentials.password);
        self.send(AMQPFrame::Method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
                client_properties: client_properties(connection_name),
                mechanism: "PLAIN".into(),
                response: LongString::from(response),
                locale: "en_US".into(),
            })),
        ))
        .await?;
        let server = match self.method().await? {
            AMQPClass::Connection(connection::AMQPMethod::Tune(tune)) => tune,
            other => return Err(OpenError::Unexpected(format!("{other:?}"))),
        };
        let (frame_max, heartbeat) = tune(uri, &server);
        self.send(AMQPFrame::Method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
                channel_max: 1,
                frame_max,
                heartbeat,
            })),
        ))
        .await?;
        Ok((frame_max, heartbeat))
    }
}

#[cfg(test)]
mod tests {
    use super::tune;
    use amq_protocol::protocol::connection::Tune;

    #[test]
    fn the_url_s_frame_size_and_heartbeat_apply_within_the_server_s_limit() {
        let uri = "amqp://u:p@h/v?frame_max=32768".parse().unwrap();
        let server = |frame_max, heartbeat| Tune {
            channel_max: 2047,
            frame_max,
            heartbeat,
        };
        assert_eq!(tune(&uri, &server(131_072, 60)), (32_768, 60));
        assert_eq!(tune(&uri, &server(8192, 60)), (8192, 60));
        assert_eq!(tune(&uri, &server(0, 0)), (32_768, 0));
        let uri = "amqp://u:p@h/v?heartbeat=5".parse().unwrap();
        assert_eq!(tune(&uri, &server(131_072, 60)), (131_072, 5));
        assert_eq!(tune(&uri, &server(0, 60)), (0, 5));
    }
}
