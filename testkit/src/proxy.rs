//! A TCP proxy in front of a real service (RabbitMQ, PostgreSQL) that a test
//! can cut (as if the service went away) and restore, or slow down, without
//! disturbing the service that parallel tests share.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

#[derive(Debug)]
pub struct Proxy {
    pub port: u16,
    cut: Arc<AtomicBool>,
    /// Delay added to everything the broker sends back, in milliseconds.
    delay_ms: Arc<AtomicU64>,
    relays: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: &str) -> Self {
        let target: Arc<str> = Arc::from(target);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("{e}"))
            .port();
        let cut = Arc::new(AtomicBool::new(false));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let relays = Arc::new(Mutex::new(Vec::new()));
        let accept = tokio::spawn({
            let (cut, delay_ms, relays) = (cut.clone(), delay_ms.clone(), relays.clone());
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    if cut.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let relay = tokio::spawn(relay(client, target.clone(), delay_ms.clone()));
                    if let Ok(mut relays) = relays.lock() {
                        relays.push(relay);
                    }
                }
            }
        });
        Self {
            port,
            cut,
            delay_ms,
            relays,
            accept,
        }
    }

    /// `amqp://guest:guest@127.0.0.1:{port}/%2f`
    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// `postgres://postgres@127.0.0.1:{port}/{database}`
    pub fn postgres_url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Drop every open connection and refuse new ones.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        if let Ok(mut relays) = self.relays.lock() {
            for relay in relays.drain(..) {
                relay.abort();
            }
        }
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }

    pub fn delay_replies(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

async fn relay(client: TcpStream, target: Arc<str>, delay_ms: Arc<AtomicU64>) {
    let Ok(server) = TcpStream::connect(&*target).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
    };
    let downstream = async {
        let mut buffer = vec![0_u8; 64 * 1024];
        while let Ok(read) = server_read.read(&mut buffer).await {
            if read == 0 {
                break;
            }
            let delay = delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            if client_write.write_all(&buffer[..read]).await.is_err() {
                break;
            }
        }
    };
    // Either side closing ends the relay, which closes both sockets.
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
    }
}
