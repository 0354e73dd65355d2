//! The HTTP endpoint the wake-up workload's jobs call: it notes when each
//! request arrives, on the benchmark's own monotonic clock, and answers
//! 200 at once. The arrival is the attempt's start as a user's handler
//! would see it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<Instant>>>>;

/// A listening endpoint; requests to `/wake/<key>` resolve that key's
/// waiter.
#[derive(Debug)]
pub(crate) struct WakeServer {
    addr: SocketAddr,
    waiters: Waiters,
}

impl WakeServer {
    /// Listens on a free loopback port.
    pub(crate) async fn start() -> Result<WakeServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let waiters = Waiters::default();
        tokio::spawn(accept_all(listener, waiters.clone()));
        Ok(WakeServer { addr, waiters })
    }

    /// The URL a job calls for `key`, and a receiver of its arrival time.
    pub(crate) fn expect(&self, key: &str) -> (String, oneshot::Receiver<Instant>) {
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .expect("not poisoned")
            .insert(key.to_owned(), tx);
        (format!("http://{}/wake/{key}", self.addr), rx)
    }
}

async fn accept_all(listener: TcpListener, waiters: Waiters) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(serve(stream, waiters.clone()));
    }
}

/// Answers every request of a kept-alive connection.
async fn serve(mut stream: TcpStream, waiters: Waiters) {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let Some(end) = find_head_end(&buf) else {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let arrived = Instant::now();
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        if let Some(key) = wake_key(&head) {
            let waiter = waiters.lock().expect("not poisoned").remove(key);
            if let Some(waiter) = waiter {
                let _ = waiter.send(arrived);
            }
        }
        let reply =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        if stream.write_all(reply).await.is_err() {
            return;
        }
    }
}

/// Where a request head ends (the calls carry no body).
fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

fn wake_key(head: &str) -> Option<&str> {
    let path = head.lines().next()?.split_whitespace().nth(1)?;
    path.strip_prefix("/wake/")
}
