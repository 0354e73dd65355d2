//! The http executor against a real local server: statuses, bodies,
//! query and body placement, timeouts and connection errors.

mod support;

use std::time::Duration;

use baton_testkit::http::{Reply, TestServer};
use baton_worker::executor::ErrorKind;
use serde_json::json;
use support::{executors, task};

#[tokio::test]
async fn statuses_outside_2xx_fail_until_a_200_succeeds() {
    let server = TestServer::start().await;
    let replies = vec![
        Reply::text(503, "down"),
        Reply::text(502, "bad gateway"),
        Reply::json(200, r#"{"up": true}"#),
    ];
    server.script("/flaky", replies);
    let task = task("http", json!({"url": server.url("/flaky")}));

    let first = executors().execute(&task).await;
    let error = first.error.unwrap();
    assert_eq!(
        (error.kind, error.message.as_str()),
        (ErrorKind::HttpStatus, "HTTP 503: Service Unavailable")
    );
    assert_eq!(first.status_code, Some(503));
    assert_eq!(first.result["data"], "down");

    let second = executors().execute(&task).await;
    assert_eq!(second.error.unwrap().message, "HTTP 502: Bad Gateway");

    let third = executors().execute(&task).await;
    assert_eq!(third.error, None);
    assert_eq!(third.result["status_code"], 200);
    assert_eq!(third.result["data"], json!({"up": true}));
    assert_eq!(third.result["headers"]["content-type"], "application/json");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_kept_as_text() {
    let server = TestServer::start().await;
    server.script("/text", vec![Reply::json(200, "{not json")]);
    let output = executors()
        .execute(&task("http", json!({"endpoint": server.url("/text")})))
        .await;
    assert_eq!(output.result["data"], "{not json");
}

#[tokio::test]
async fn get_sends_params_and_data_in_the_query() {
    let server = TestServer::start().await;
    server.script("/search", vec![Reply::json(200, "[]")]);
    let payload = json!({"url": server.url("/search"), "params": {"q": "a b"}, "data": {"n": 3},
                         "headers": {"X-Trace": "t1"}});
    executors().execute(&task("http", payload)).await;
    let call = &server.calls("/search")[0];
    assert_eq!(call.query, "q=a+b&n=3");
    assert_eq!(call.body, "");
    assert_eq!(call.headers["x-trace"], "t1");
}

#[tokio::test]
async fn post_sends_data_as_a_json_body() {
    let server = TestServer::start().await;
    server.script("/items", vec![Reply::json(201, r#"{"id": 1}"#)]);
    let payload = json!({"method": "post", "url": server.url("/items"),
                         "params": {"dry": true}, "data": {"name": "x"}});
    let output = executors().execute(&task("http", payload)).await;
    assert_eq!(output.error, None);
    let call = &server.calls("/items")[0];
    assert_eq!(call.method, "POST");
    assert_eq!(call.query, "dry=true");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&call.body).unwrap(),
        json!({"name": "x"})
    );
}

#[tokio::test]
async fn a_slow_server_is_a_timeout() {
    let server = TestServer::start().await;
    server.script(
        "/slow",
        vec![Reply::json(200, "{}").after(Duration::from_secs(5))],
    );
    let payload = json!({"url": server.url("/slow"), "timeout": 0.2});
    let output = executors().execute(&task("http", payload)).await;
    assert_eq!(output.error.unwrap().kind, ErrorKind::Timeout);
    assert_eq!(output.status_code, None);
}

#[tokio::test]
async fn a_refused_connection_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let output = executors()
        .execute(&task("http", json!({"url": url})))
        .await;
    assert_eq!(output.error.unwrap().kind, ErrorKind::Transport);
}

#[tokio::test]
async fn a_task_without_url_is_invalid() {
    let output = executors()
        .execute(&task("http", json!({"method": "GET"})))
        .await;
    assert_eq!(output.error.unwrap().kind, ErrorKind::InvalidTask);
}
