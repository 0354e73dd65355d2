//! `baton.v1.Executions`: run, read, cancel and follow executions.

use baton_proto::convert::from_struct;
use baton_proto::v1 as pb;
use baton_proto::v1::executions_server::Executions;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::convert;
use crate::error::Error;
use crate::model::{EventKind, ExecutionFilter, PlaybookRecord};
use crate::store::Store;
use crate::validate::{self, PlaybookRef};

/// Events read per query while catching up.
const EVENT_PAGE: u32 = 500;

/// The executions' handlers.
#[derive(Debug, Clone)]
pub(crate) struct ExecutionsService {
    pub(crate) store: Store,
}

impl ExecutionsService {
    async fn playbook(&self, request: &pb::RunExecutionRequest) -> Result<PlaybookRecord, Error> {
        match validate::run(request)? {
            PlaybookRef::Id(id) => self.store.get_playbook_by_id(id).await,
            PlaybookRef::Path { path, version } => self.store.get_playbook(&path, version).await,
        }
    }
}

#[tonic::async_trait]
impl Executions for ExecutionsService {
    type WatchEventsStream = ReceiverStream<Result<pb::Event, Status>>;

    async fn run(
        &self,
        request: Request<pb::RunExecutionRequest>,
    ) -> Result<Response<pb::RunExecutionResponse>, Status> {
        let request = request.into_inner();
        let playbook = self.playbook(&request).await?;
        let overrides = request.workload.as_ref().map(from_struct);
        let traceparent = Some(request.traceparent.clone())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(new_traceparent);
        let execution = self.store.run(&playbook, overrides, &traceparent).await?;
        tracing::info!(execution_id = execution.id, path = %playbook.path, "Started execution");
        Ok(Response::new(pb::RunExecutionResponse {
            execution: Some(convert::execution(&execution)),
        }))
    }

    async fn get(
        &self,
        request: Request<pb::GetExecutionRequest>,
    ) -> Result<Response<pb::GetExecutionResponse>, Status> {
        let execution = self.store.get_execution(request.into_inner().id).await?;
        Ok(Response::new(pb::GetExecutionResponse {
            execution: Some(convert::execution(&execution)),
        }))
    }

    async fn list(
        &self,
        request: Request<pb::ListExecutionsRequest>,
    ) -> Result<Response<pb::ListExecutionsResponse>, Status> {
        let request = request.into_inner();
        let filter = ExecutionFilter {
            state: convert::execution_state_filter(request.state),
            playbook_path: Some(request.playbook_path).filter(|p| !p.is_empty()),
            limit: page_limit(request.limit),
            before_id: Some(request.before_id).filter(|id| *id > 0),
        };
        let executions = self.store.list_executions(&filter).await?;
        Ok(Response::new(pb::ListExecutionsResponse {
            executions: executions.iter().map(convert::execution).collect(),
        }))
    }

    async fn cancel(
        &self,
        request: Request<pb::CancelExecutionRequest>,
    ) -> Result<Response<pb::CancelExecutionResponse>, Status> {
        let execution = self.store.cancel_execution(request.into_inner().id).await?;
        let state = execution.state;
        tracing::info!(execution_id = execution.id, state = %state, "Cancelled execution");
        Ok(Response::new(pb::CancelExecutionResponse {
            execution: Some(convert::execution(&execution)),
        }))
    }

    async fn watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let request = request.into_inner();
        // Subscribed before the first read, so no event falls in between.
        let wakes = self.store.subscribe_events();
        self.store.get_execution(request.execution_id).await?;
        let (tx, rx) = mpsc::channel(64);
        let watch = Watch {
            store: self.store.clone(),
            execution_id: request.execution_id,
            cursor: request.after_event_id,
            follow: request.follow.unwrap_or(true),
        };
        tokio::spawn(async move {
            if let Err(status) = watch.run(&tx, wakes).await {
                let _ = tx.send(Err(status)).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// At most 1,000; 0 means 100.
pub(crate) fn page_limit(limit: u32) -> u32 {
    match limit {
        0 => 100,
        n => n.min(1_000),
    }
}

/// A fresh W3C `traceparent` for an execution that continues no trace.
fn new_traceparent() -> String {
    let trace: u128 = rand::random::<u128>().max(1);
    let span: u64 = rand::random::<u64>().max(1);
    format!("00-{trace:032x}-{span:016x}-01")
}

/// One WatchEvents stream.
struct Watch {
    store: Store,
    execution_id: i64,
    cursor: i64,
    follow: bool,
}

impl Watch {
    async fn run(
        mut self,
        tx: &mpsc::Sender<Result<pb::Event, Status>>,
        mut wakes: broadcast::Receiver<i64>,
    ) -> Result<(), Status> {
        loop {
            let events = self
                .store
                .events(self.execution_id, self.cursor, EVENT_PAGE)
                .await?;
            for event in &events {
                self.cursor = event.id;
                if tx.send(Ok(convert::event(event))).await.is_err() {
                    return Ok(());
                }
                if is_last(event.kind) && self.follow {
                    return Ok(());
                }
            }
            if events.len() == EVENT_PAGE as usize {
                continue;
            }
            if !self.follow || self.finished().await? {
                return Ok(());
            }
            self.wait(tx, &mut wakes).await;
        }
    }

    /// Whether the execution has ended and its events were all read.
    async fn finished(&self) -> Result<bool, Status> {
        let execution = self.store.get_execution(self.execution_id).await?;
        if execution.state == crate::model::ExecutionState::Running {
            return Ok(false);
        }
        Ok(self
            .store
            .events(self.execution_id, self.cursor, 1)
            .await?
            .is_empty())
    }

    async fn wait(
        &self,
        tx: &mpsc::Sender<Result<pb::Event, Status>>,
        wakes: &mut broadcast::Receiver<i64>,
    ) {
        loop {
            tokio::select! {
                wake = wakes.recv() => match wake {
                    Ok(id) if id != self.execution_id && id != 0 => continue,
                    _ => return,
                },
                () = tx.closed() => return,
            }
        }
    }
}

fn is_last(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::ExecutionCompleted | EventKind::ExecutionFailed | EventKind::ExecutionCancelled
    )
}
