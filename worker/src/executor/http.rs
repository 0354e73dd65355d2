//! The `http` task: one HTTP request, its response as the result.
//!
//! Payload: `method` (default GET), `url` or `endpoint`, `headers`,
//! `params` (query), `data` (query for GET, DELETE and HEAD, a JSON body
//! otherwise), `timeout` (seconds). Result:
//! `{"status_code": n, "headers": {…}, "data": <JSON body, else text>}`.
//! A status outside 2xx is an `HTTP_STATUS` failure carrying that result.

use std::time::Duration;

use reqwest::{Method, Url};
use serde_json::{Map, Value, json};

use super::{ErrorKind, Task, TaskError, TaskOutput};

/// Runs `http` tasks with one shared connection pool.
#[derive(Debug, Clone)]
pub struct HttpExecutor {
    client: reqwest::Client,
}

/// The request a payload describes.
#[derive(Debug)]
struct Call {
    method: Method,
    url: Url,
    headers: Vec<(String, String)>,
    body: Option<Value>,
}

impl HttpExecutor {
    /// Builds the client (rustls, no proxy detection surprises).
    pub fn new() -> Result<Self, crate::Error> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("baton-worker/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| crate::Error::Config(format!("building the http client: {err}")))?;
        Ok(HttpExecutor { client })
    }

    /// Sends the request a task describes and reads the whole response.
    pub async fn run(&self, task: &Task, timeout: Duration) -> TaskOutput {
        let call = match Call::parse(&task.payload) {
            Ok(call) => call,
            Err(error) => return TaskOutput::failure(error),
        };

        let mut request = self.client.request(call.method, call.url).timeout(timeout);
        for (name, value) in &call.headers {
            request = request.header(name, value);
        }
        if let Some(body) = &call.body {
            request = request.json(body);
        }

        match request.send().await {
            Ok(response) => read(response, timeout).await,
            Err(err) => TaskOutput::failure(request_error(&err, timeout)),
        }
    }
}

impl Call {
    fn parse(payload: &Map<String, Value>) -> Result<Call, TaskError> {
        let method = match payload.get("method").and_then(Value::as_str) {
            None => Method::GET,
            Some(name) => Method::from_bytes(name.trim().to_uppercase().as_bytes())
                .map_err(|_| TaskError::invalid(format!("`{name}` is not an HTTP method")))?,
        };
        let target = payload
            .get("url")
            .or_else(|| payload.get("endpoint"))
            .and_then(Value::as_str)
            .ok_or_else(|| TaskError::invalid("an http task needs a `url` or `endpoint`"))?;
        let mut url = Url::parse(target)
            .map_err(|err| TaskError::invalid(format!("url `{target}`: {err}")))?;

        add_query(&mut url, payload.get("params"), "params")?;
        let data = payload.get("data").filter(|d| !d.is_null());
        let in_query = matches!(method, Method::GET | Method::DELETE | Method::HEAD);
        if in_query {
            add_query(&mut url, data, "data")?;
        }
        Ok(Call {
            body: data.filter(|_| !in_query).cloned(),
            headers: headers(payload.get("headers"))?,
            method,
            url,
        })
    }
}

/// Appends a mapping's entries to the query string; strings go as they
/// are, other values as their JSON text.
fn add_query(url: &mut Url, value: Option<&Value>, key: &str) -> Result<(), TaskError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let map = value
        .as_object()
        .ok_or_else(|| TaskError::invalid(format!("`{key}` must be a mapping for the query")))?;
    if !map.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (name, value) in map {
            pairs.append_pair(name, &text(value));
        }
    }
    Ok(())
}

fn headers(value: Option<&Value>) -> Result<Vec<(String, String)>, TaskError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let map = value
        .as_object()
        .ok_or_else(|| TaskError::invalid("`headers` must be a mapping"))?;
    Ok(map.iter().map(|(k, v)| (k.clone(), text(v))).collect())
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Reads the response into the result shape; non-2xx statuses fail.
async fn read(response: reqwest::Response, timeout: Duration) -> TaskOutput {
    let status = response.status();
    let headers: Map<String, Value> = response
        .headers()
        .keys()
        .map(|name| {
            let values: Vec<&str> = response
                .headers()
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            (name.as_str().to_owned(), Value::String(values.join(", ")))
        })
        .collect();
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(err) => return TaskOutput::failure(request_error(&err, timeout)),
    };

    let result = json!({"status_code": status.as_u16(), "headers": headers, "data": data(&body)});
    let error = (!status.is_success()).then(|| {
        let reason = status.canonical_reason().unwrap_or("Unknown Status");
        let message = format!("HTTP {}: {reason}", status.as_u16());
        TaskError::new(ErrorKind::HttpStatus, "HTTPError", message)
    });
    TaskOutput {
        result,
        status_code: Some(status.as_u16()),
        error,
    }
}

/// The body as JSON when it parses, else as text; an empty body is null.
fn data(body: &[u8]) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

fn request_error(err: &reqwest::Error, timeout: Duration) -> TaskError {
    if err.is_timeout() {
        return TaskError::timeout(timeout);
    }
    TaskError::new(ErrorKind::Transport, "TransportError", chain(err))
}

/// An error and its causes on one line: reqwest's own message hides them.
fn chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
