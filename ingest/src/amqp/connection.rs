//! One publishing connection, driven entirely on the thread that publishes
//! on it: a publish appends its frames to the connection's buffer and
//! wakes the writer task; the reader task settles each confirm's waiter.
//! No lock and no hand-off to another thread lies between a request and
//! its socket (see the module's parent for why).
//!
//! The connection ends (and every publish awaiting a confirm with it) when
//! RabbitMQ closes it or its channel, the socket fails, a frame cannot be
//! read, no heartbeat came for two intervals, or it is closed or dropped.

use super::confirms::{Confirms, Outcome};
use super::frames;
use super::handshake::{CHANNEL, Io, Opened};
use super::publish::{self, Publish};
use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, basic, channel, connection};
use bytes::{Buf, BytesMut};
use clerk_sync_runtime::broker_link::blocked_reason;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{Notify, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long a polite close waits for RabbitMQ's `close-ok`.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a publish was not even sent: the connection is gone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Gone(pub String);

/// What a publish waits on: its confirm, or the connection's end.
pub type Confirm = oneshot::Receiver<Outcome>;

/// The handle the publishing thread holds; dropping it ends the connection.
#[derive(Debug)]
pub struct Connection {
    inner: Rc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: RefCell<State>,
    wake_writer: Notify,
    blocked: watch::Sender<Option<String>>,
    ended: CancellationToken,
    frame_max: u32,
}

#[derive(Debug)]
struct State {
    /// Frames not yet handed to the socket.
    out: Vec<u8>,
    confirms: Confirms<oneshot::Sender<Outcome>>,
    /// Why the connection ended, once it has.
    gone: Option<String>,
    /// A `basic.return` came; its header (with the message id) is next
    /// (its body frames, which follow, are not needed).
    return_header: bool,
    last_heard: Instant,
}

impl Connection {
    /// Drive an opened connection on this thread's local task set.
    pub fn start(opened: Opened) -> Self {
        let Opened {
            io,
            read,
            frame_max,
            heartbeat,
        } = opened;
        let inner = Rc::new(Inner {
            state: RefCell::new(State {
                out: Vec::with_capacity(16 * 1024),
                confirms: Confirms::default(),
                gone: None,
                return_header: false,
                last_heard: Instant::now(),
            }),
            wake_writer: Notify::new(),
            blocked: watch::channel(None).0,
            ended: CancellationToken::new(),
            frame_max,
        });
        let (reader, writer) = tokio::io::split(io);
        tokio::task::spawn_local(read_frames(
            inner.clone(),
            reader,
            BytesMut::from(&read[..]),
        ));
        tokio::task::spawn_local(write_frames(inner.clone(), writer));
        if heartbeat > 0 {
            tokio::task::spawn_local(beat(inner.clone(), Duration::from_secs(heartbeat.into())));
        }
        Self { inner }
    }

    /// Send a mandatory publish; its confirm comes on the receiver, which
    /// fails if the connection ends first.
    pub fn publish(&self, publish: &Publish<'_>) -> Result<Confirm, Gone> {
        let mut state = self.inner.state.borrow_mut();
        if let Some(reason) = &state.gone {
            return Err(Gone(reason.clone()));
        }
        publish::put_publish(&mut state.out, CHANNEL, publish, self.inner.frame_max)
            .map_err(|e| Gone(e.to_string()))?;
        let (sender, receiver) = oneshot::channel();
        state.confirms.publish(publish.message_id, sender);
        drop(state);
        self.inner.wake_writer.notify_one();
        Ok(receiver)
    }

    /// Why the connection ended, once it has.
    pub fn gone(&self) -> Option<String> {
        self.inner.state.borrow().gone.clone()
    }

    /// Resolves when the connection ends.
    pub async fn ended(&self) {
        self.inner.ended.cancelled().await;
    }

    /// RabbitMQ's `connection.blocked` (why, from `blocked_reason`) and
    /// `connection.unblocked`, as they come.
    pub fn blocked(&self) -> watch::Receiver<Option<String>> {
        self.inner.blocked.subscribe()
    }

    /// Close politely (`connection.close`, then `close-ok`, within a few
    /// seconds): RabbitMQ then logs no "unexpectedly closed" warning.
    pub async fn close(self) {
        if self.gone().is_none() {
            let close = connection::Close {
                reply_code: 200,
                reply_text: "clerk-sync-ingest closing".into(),
                class_id: 0,
                method_id: 0,
            };
            self.inner.send(&AMQPFrame::Method(
                0,
                AMQPClass::Connection(connection::AMQPMethod::Close(close)),
            ));
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.ended()).await;
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.inner.end("the connection was closed".to_owned());
    }
}

impl Inner {
    fn send(&self, frame: &AMQPFrame) {
        let mut state = self.state.borrow_mut();
        if frames::put(&mut state.out, frame).is_ok() {
            drop(state);
            self.wake_writer.notify_one();
        }
    }

    /// End the connection once, for `reason`: every publish awaiting a
    /// confirm learns it (its receiver fails).
    fn end(&self, reason: String) {
        let abandoned = {
            let mut state = self.state.borrow_mut();
            if state.gone.is_some() {
                return;
            }
            state.gone = Some(reason);
            state.confirms.abandon()
        };
        drop(abandoned);
        self.ended.cancel();
    }

    /// One frame from RabbitMQ; Err(why) ends the connection.
    fn receive(&self, frame: AMQPFrame) -> Result<(), String> {
        let mut state = self.state.borrow_mut();
        state.last_heard = Instant::now();
        match frame {
            AMQPFrame::Method(CHANNEL, AMQPClass::Basic(method)) => match method {
                basic::AMQPMethod::Ack(ack) => {
                    settle(state.confirms.settle(ack.delivery_tag, ack.multiple, true));
                }
                basic::AMQPMethod::Nack(nack) => {
                    settle(
                        state
                            .confirms
                            .settle(nack.delivery_tag, nack.multiple, false),
                    );
                }
                basic::AMQPMethod::Return(_) => state.return_header = true,
                _ => {}
            },
            AMQPFrame::Header(CHANNEL, header) if state.return_header => {
                state.return_header = false;
                if let Some(id) = header.properties.message_id() {
                    state.confirms.returned(id.as_str());
                }
            }
            AMQPFrame::Method(0, AMQPClass::Connection(method)) => match method {
                connection::AMQPMethod::Blocked(blocked) => {
                    self.blocked
                        .send_replace(Some(blocked_reason(blocked.reason.as_str())));
                }
                connection::AMQPMethod::Unblocked(_) => {
                    self.blocked.send_replace(None);
                }
                connection::AMQPMethod::Close(close) => {
                    drop(state);
                    self.send(&AMQPFrame::Method(
                        0,
                        AMQPClass::Connection(connection::AMQPMethod::CloseOk(
                            connection::CloseOk {},
                        )),
                    ));
                    return Err(format!(
                        "RabbitMQ closed the connection: {} {}",
                        close.reply_code, close.reply_text
                    ));
                }
                connection::AMQPMethod::CloseOk(_) => {
                    return Err("the connection was closed".to_owned());
                }
                _ => {}
            },
            AMQPFrame::Method(CHANNEL, AMQPClass::Channel(channel::AMQPMethod::Close(close))) => {
                drop(state);
                self.send(&AMQPFrame::Method(
                    CHANNEL,
                    AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})),
                ));
                return Err(format!(
                    "RabbitMQ closed the publishing channel: {} {}",
                    close.reply_code, close.reply_text
                ));
            }
            _ => {}
        }
        Ok(())
    }
}

fn settle(settled: Vec<(oneshot::Sender<Outcome>, Outcome)>) {
    for (waiter, outcome) in settled {
        // A request that gave up waiting (a timeout) dropped its receiver.
        let _ = waiter.send(outcome);
    }
}

async fn read_frames(inner: Rc<Inner>, mut reader: ReadHalf<Box<dyn Io>>, mut buffer: BytesMut) {
    let reason = 'read: loop {
        loop {
            match frames::next(&buffer, inner.frame_max) {
                Ok(Some((frame, used))) => {
                    buffer.advance(used);
                    if let Err(reason) = inner.receive(frame) {
                        break 'read reason;
                    }
                }
                Ok(None) => break,
                Err(e) => break 'read e.to_string(),
            }
        }
        buffer.reserve(16 * 1024);
        tokio::select! {
            read = reader.read_buf(&mut buffer) => match read {
                Ok(0) => break "RabbitMQ closed the socket".to_owned(),
                Ok(_) => {}
                Err(e) => break format!("reading from RabbitMQ failed: {e}"),
            },
            () = inner.ended.cancelled() => return,
        }
    };
    inner.end(reason);
}

async fn write_frames(inner: Rc<Inner>, mut writer: WriteHalf<Box<dyn Io>>) {
    let mut sending = Vec::with_capacity(16 * 1024);
    loop {
        let ending = tokio::select! {
            () = inner.wake_writer.notified() => false,
            () = inner.ended.cancelled() => true,
        };
        std::mem::swap(&mut sending, &mut inner.state.borrow_mut().out);
        if !sending.is_empty() {
            let written = async {
                writer.write_all(&sending).await?;
                writer.flush().await
            };
            // What is left when the connection ends (a close-ok) gets a
            // moment, no more: the peer may be gone.
            let written = if ending {
                tokio::time::timeout(Duration::from_secs(1), written)
                    .await
                    .unwrap_or(Ok(()))
            } else {
                written.await
            };
            sending.clear();
            if let Err(e) = written {
                inner.end(format!("writing to RabbitMQ failed: {e}"));
                return;
            }
        }
        if ending {
            return;
        }
    }
}

/// Send a heartbeat every interval; end the connection when nothing came
/// from RabbitMQ for two (a node cut off sends nothing, not even a reset).
async fn beat(inner: Rc<Inner>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval / 2);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = inner.ended.cancelled() => return,
        }
        let silent = inner.state.borrow().last_heard.elapsed();
        if silent > interval * 2 {
            inner.end(format!(
                "no heartbeat from RabbitMQ for {} s",
                silent.as_secs()
            ));
            return;
        }
        inner.send(&AMQPFrame::Heartbeat);
    }
}
