//! A gate for python tasks that must run until the test lets them go.
//!
//! The task connects to the gate's port, says who it is (its pid, job,
//! execution and attempt), and blocks reading the connection. The test
//! learns that the attempt runs by accepting the connection, lets it
//! finish by writing one byte, and learns that its process is gone when
//! the connection reaches end of file: the task keeps a raw duplicate of
//! the socket that Python never closes, so the kernel closes it exactly
//! when the process exits, not when `main` returns.

use std::net::SocketAddr;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::within;

/// The python source of a gated task; `port` comes from the workload or
/// the payload's `with`, the rest from the job's context.
pub(crate) const CODE: &str = r#"import os, socket

def main(port, job_id, execution_id, attempt):
    conn = socket.create_connection(("127.0.0.1", int(port)))
    os.dup(conn.fileno())
    hello = f"{os.getpid()} {job_id} {execution_id} {attempt}\n"
    conn.sendall(hello.encode())
    conn.recv(1)
    return "released"
"#;

/// The listening side.
#[derive(Debug)]
pub(crate) struct Gate {
    listener: TcpListener,
    addr: SocketAddr,
}

/// A gated task that is running.
#[derive(Debug)]
pub(crate) struct Held {
    pub(crate) pid: u32,
    pub(crate) job_id: i64,
    pub(crate) execution_id: i64,
    pub(crate) attempt: u32,
    conn: BufReader<TcpStream>,
}

impl Gate {
    /// Listens on 127.0.0.1, port 0.
    pub(crate) async fn open() -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        Gate { listener, addr }
    }

    /// The workload that points gated steps here.
    pub(crate) fn workload(&self) -> Value {
        json!({"port": self.addr.port()})
    }

    /// A one-step playbook at `path` whose step is gated, with `retry` (a
    /// YAML flow mapping, or `false`).
    pub(crate) fn playbook(path: &str, retry: &str) -> String {
        let code: String = CODE.lines().map(|l| format!("      {l}\n")).collect();
        let step = format!("    type: python\n    code: |\n{code}    retry: {retry}\n");
        super::api::playbook(path, &step)
    }

    /// Waits for the next gated task to start.
    pub(crate) async fn accept(&self) -> Held {
        let (stream, _) = within("a gated task to start", self.listener.accept())
            .await
            .unwrap();
        let mut conn = BufReader::new(stream);
        let mut hello = String::new();
        within("a gated task's hello", conn.read_line(&mut hello))
            .await
            .unwrap();
        let fields: Vec<&str> = hello.split_whitespace().collect();
        assert_eq!(fields.len(), 4, "gated task hello: {hello:?}");
        Held {
            pid: fields[0].parse().unwrap(),
            job_id: fields[1].parse().unwrap(),
            execution_id: fields[2].parse().unwrap(),
            attempt: fields[3].parse().unwrap(),
            conn,
        }
    }
}

impl Held {
    /// Lets the task return `"released"`.
    pub(crate) async fn release(&mut self) {
        self.conn.get_mut().write_all(b"x").await.unwrap();
    }

    /// Waits for the task's process to exit.
    pub(crate) async fn exited(&mut self) {
        let mut rest = Vec::new();
        let read = within(
            "the task's process to exit",
            self.conn.read_to_end(&mut rest),
        );
        // A killed process may reset the connection instead of closing it.
        let _ = read.await;
        assert!(rest.is_empty(), "the task sent {rest:?} after its hello");
    }
}
