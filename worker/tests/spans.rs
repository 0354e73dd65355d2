//! Attempt spans exported over OTLP to an in-process collector, for
//! playbook executions run by the real broker: one trace per execution,
//! continuing the execution's `traceparent`, one `baton.attempt` span per
//! attempt with the decision attributes.

mod support;

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::json;
use support::api::playbook;
use support::broker::TestBroker;
use support::within;
use support::worker::{TestWorker, config};
use tokio::sync::watch;
use tonic::{Request, Response, Status};

const STEP: &str = "    type: noop\n    fail: 1\n    \
                    retry: {max_attempts: 3, initial_delay: 0.1, jitter: false}\n";

/// Keeps the `baton.attempt` spans it receives and counts them.
#[derive(Debug, Clone)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
    received: Arc<watch::Sender<usize>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        // The broker's own spans share the process-wide exporter.
        let attempts: Vec<Span> = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
            .filter(|span| span.name == "baton.attempt")
            .collect();
        let count = {
            let mut spans = self.spans.lock().unwrap();
            spans.extend(attempts);
            spans.len()
        };
        self.received.send_replace(count);
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    async fn start() -> (String, Collector) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let collector = Collector {
            spans: Arc::default(),
            received: Arc::new(watch::Sender::new(0)),
        };
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(collector.clone()))
                .serve_with_incoming(incoming),
        );
        (url, collector)
    }

    /// Waits for `n` attempt spans and returns them, oldest first.
    async fn attempt_spans(&self, n: usize) -> Vec<Span> {
        let mut received = self.received.subscribe();
        let _ = within("attempt spans", received.wait_for(|count| *count >= n)).await;
        let mut spans = self.spans.lock().unwrap().clone();
        spans.sort_by_key(|s| s.start_time_unix_nano);
        spans
    }
}

fn attribute(span: &Span, key: &str) -> Option<Value> {
    let found = span.attributes.iter().find(|kv| kv.key == key)?;
    found.value.as_ref()?.value.clone()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn string(text: &str) -> Option<Value> {
    Some(Value::StringValue(text.to_owned()))
}

/// An execution as its spans should show it.
#[derive(Debug)]
struct Traced {
    execution_id: i64,
    job_id: i64,
    trace_id: String,
    parent_id: String,
}

// Multi-threaded: flushing the exporter blocks its thread while tonic sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_execution_is_one_trace_with_a_span_per_attempt_and_its_decision() {
    let (url, collector) = Collector::start().await;
    let guard = baton_worker::telemetry::init_with_endpoint("baton-worker-test", Some(&url));
    assert!(guard.exporting());
    let broker = TestBroker::start().await;
    let path = broker.register(&playbook("tests/spans", STEP)).await;
    let worker = TestWorker::start(config(&broker, 1));

    let mut traced = Vec::new();
    for _ in 0..2 {
        traced.push(run_traced(&broker, &path).await);
    }
    worker.stop().await;
    guard.flush();

    let spans = collector.attempt_spans(4).await;
    assert_eq!(spans.len(), 4);
    for execution in &traced {
        let trace: Vec<&Span> = spans
            .iter()
            .filter(|s| hex(&s.trace_id) == execution.trace_id)
            .collect();
        assert_eq!(
            trace.len(),
            2,
            "spans of execution {}",
            execution.execution_id
        );
        check_attempt(trace[0], execution, 1, ("failed", true, 100));
        check_attempt(trace[1], execution, 2, ("succeeded", false, 0));
    }
}

/// Runs the playbook to completion; returns what its spans should carry.
async fn run_traced(broker: &TestBroker, path: &str) -> Traced {
    let execution = broker.run(path, json!({})).await;
    let mut events = broker.watch(execution.id).await;
    let started = events.next_named("action_started").await;
    events.next_named("execution_completed").await;
    let parts: Vec<&str> = execution.traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "traceparent {:?}", execution.traceparent);
    Traced {
        execution_id: execution.id,
        job_id: started.job_id,
        trace_id: parts[1].to_owned(),
        parent_id: parts[2].to_owned(),
    }
}

fn check_attempt(span: &Span, traced: &Traced, attempt: i64, end: (&str, bool, i64)) {
    let (outcome, retry, delay_ms) = end;
    assert_eq!(hex(&span.parent_span_id), traced.parent_id);
    let int = |n: i64| Some(Value::IntValue(n));
    assert_eq!(attribute(span, "baton.attempt"), int(attempt));
    assert_eq!(attribute(span, "baton.max_attempts"), int(3));
    assert_eq!(attribute(span, "baton.job_id"), int(traced.job_id));
    assert_eq!(
        attribute(span, "baton.execution_id"),
        int(traced.execution_id)
    );
    assert_eq!(attribute(span, "baton.step"), string("task"));
    assert_eq!(attribute(span, "baton.kind"), string("noop"));
    assert_eq!(attribute(span, "baton.outcome"), string(outcome));
    let retried = Some(Value::BoolValue(retry));
    assert_eq!(attribute(span, "baton.decision.retry"), retried);
    assert_eq!(attribute(span, "baton.decision.reason"), string("default"));
    assert_eq!(attribute(span, "baton.decision.delay_ms"), int(delay_ms));
}
