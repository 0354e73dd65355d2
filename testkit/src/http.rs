//! An HTTP server a test owns: per-path scripted replies, and every call
//! recorded with its monotonic and wall-clock time. A test waits for calls
//! with [`TestServer::wait_for_calls`] instead of polling.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;

/// One scripted reply.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub content_type: &'static str,
    pub delay: Duration,
}

impl Reply {
    /// A reply with a JSON body.
    pub fn json(status: u16, body: &str) -> Self {
        Reply {
            status,
            body: body.to_owned(),
            content_type: "application/json",
            delay: Duration::ZERO,
        }
    }

    /// A reply with a plain-text body.
    pub fn text(status: u16, body: &str) -> Self {
        Reply {
            content_type: "text/plain",
            ..Reply::json(status, body)
        }
    }

    /// The same reply, sent after `delay`.
    pub fn after(self, delay: Duration) -> Self {
        Reply { delay, ..self }
    }
}

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Call {
    /// When it arrived, on the monotonic clock.
    pub at: Instant,
    /// When it arrived, on the wall clock (comparable with stored times).
    pub wall: SystemTime,
    pub method: Method,
    pub query: String,
    pub headers: HeaderMap,
    pub body: String,
}

#[derive(Debug, Default)]
struct Script {
    replies: HashMap<String, Vec<Reply>>,
    calls: HashMap<String, Vec<Call>>,
}

/// What the request handler shares with the test: the script, and a
/// counter of every call received, which wakes waiting tests.
#[derive(Debug, Clone)]
struct Shared {
    script: Arc<Mutex<Script>>,
    received: Arc<watch::Sender<usize>>,
}

/// The server; it stops when the test's runtime ends.
#[derive(Debug, Clone)]
pub struct TestServer {
    addr: SocketAddr,
    shared: Shared,
}

impl TestServer {
    /// Starts serving on 127.0.0.1, port 0.
    pub async fn start() -> TestServer {
        let shared = Shared {
            script: Arc::new(Mutex::new(Script::default())),
            received: Arc::new(watch::Sender::new(0)),
        };
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        TestServer { addr, shared }
    }

    /// Replies to `path` with `replies` in order; the last one repeats.
    /// An unscripted path answers 404.
    pub fn script(&self, path: &str, replies: Vec<Reply>) {
        let mut script = self.shared.script.lock().unwrap();
        script.replies.insert(path.to_owned(), replies);
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The calls `path` received, oldest first.
    pub fn calls(&self, path: &str) -> Vec<Call> {
        let script = self.shared.script.lock().unwrap();
        script.calls.get(path).cloned().unwrap_or_default()
    }

    /// Waits until `path` has received at least `n` calls and returns them
    /// all, oldest first. It waits for as long as it takes: wrap it in
    /// `tokio::time::timeout`.
    pub async fn wait_for_calls(&self, path: &str, n: usize) -> Vec<Call> {
        let mut received = self.shared.received.subscribe();
        let enough = |_: &usize| self.calls(path).len() >= n;
        // The sender lives in `self`, so the channel cannot close here.
        let _ = received.wait_for(enough).await;
        self.calls(path)
    }
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let call = Call {
        at: Instant::now(),
        wall: SystemTime::now(),
        method,
        query: uri.query().unwrap_or_default().to_owned(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let reply = next_reply(&shared.script, uri.path(), call);
    shared.received.send_modify(|n| *n += 1);
    let Some(reply) = reply else {
        return (StatusCode::NOT_FOUND, "not scripted").into_response();
    };
    tokio::time::sleep(reply.delay).await;
    let status = StatusCode::from_u16(reply.status).unwrap();
    (
        status,
        [(header::CONTENT_TYPE, reply.content_type)],
        reply.body,
    )
        .into_response()
}

fn next_reply(script: &Mutex<Script>, path: &str, call: Call) -> Option<Reply> {
    let mut script = script.lock().unwrap();
    let seen = script.calls.entry(path.to_owned()).or_default();
    seen.push(call);
    let n = seen.len();
    let replies = script.replies.get(path)?;
    replies.get(n - 1).or(replies.last()).cloned()
}
