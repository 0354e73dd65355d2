//! `baton.v1.Broker`: the worker protocol.

use baton_proto::v1 as pb;
use baton_proto::v1::broker_server::Broker;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use super::convert;
use super::lease::{LeaseSettings, Outbound, open};
use crate::model::{HeartbeatAnswer, Report};
use crate::store::{Call, ReportItem, Store};
use crate::validate;

/// The worker protocol's handlers.
#[derive(Debug, Clone)]
pub(crate) struct BrokerService {
    pub(crate) store: Store,
    pub(crate) settings: LeaseSettings,
}

impl BrokerService {
    async fn report(
        &self,
        call: Call,
        job_id: i64,
        token: i64,
        report: Report,
    ) -> Result<pb::Resolution, Status> {
        let item = ReportItem {
            call,
            job_id,
            token,
            report,
        };
        let mut answers = self.settings.committer.submit(vec![item]).await;
        let resolution = answers
            .pop()
            .unwrap_or_else(|| Err(Status::internal("no answer")))?;
        let span = tracing::Span::current();
        span.record("attempt", resolution.attempt);
        span.record("state", resolution.state.as_str());
        Ok(convert::resolution(&resolution))
    }
}

fn report_span(name: &'static str, job_id: i64) -> tracing::Span {
    match name {
        "complete" => tracing::info_span!(
            "baton.complete",
            job_id,
            attempt = tracing::field::Empty,
            state = tracing::field::Empty
        ),
        _ => tracing::info_span!(
            "baton.fail",
            job_id,
            attempt = tracing::field::Empty,
            state = tracing::field::Empty
        ),
    }
}

#[tonic::async_trait]
impl Broker for BrokerService {
    type LeaseStream = Outbound;

    async fn lease(
        &self,
        request: Request<Streaming<pb::LeaseRequest>>,
    ) -> Result<Response<Outbound>, Status> {
        let outbound = open(
            self.store.clone(),
            self.settings.clone(),
            request.into_inner(),
        );
        Ok(Response::new(outbound))
    }

    async fn complete(
        &self,
        request: Request<pb::CompleteRequest>,
    ) -> Result<Response<pb::CompleteResponse>, Status> {
        let request = request.into_inner();
        let report = validate::complete(&request)?;
        let call = self.report(Call::Complete, request.job_id, request.lease_token, report);
        let resolution = call
            .instrument(report_span("complete", request.job_id))
            .await?;
        Ok(Response::new(pb::CompleteResponse {
            resolution: Some(resolution),
        }))
    }

    async fn fail(
        &self,
        request: Request<pb::FailRequest>,
    ) -> Result<Response<pb::FailResponse>, Status> {
        let request = request.into_inner();
        let report = validate::fail(&request)?;
        let call = self.report(Call::Fail, request.job_id, request.lease_token, report);
        let resolution = call.instrument(report_span("fail", request.job_id)).await?;
        Ok(Response::new(pb::FailResponse {
            resolution: Some(resolution),
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let request = request.into_inner();
        let timeout = self.settings.lease_timeout;
        let answer = self
            .store
            .heartbeat(request.job_id, request.lease_token, timeout)
            .await?;
        let reply = match answer {
            HeartbeatAnswer::Continue(expires) => pb::HeartbeatResponse {
                directive: pb::Directive::Continue.into(),
                lease_expires_at: Some(convert::timestamp(expires)),
            },
            HeartbeatAnswer::Cancelled => pb::HeartbeatResponse {
                directive: pb::Directive::Cancelled.into(),
                lease_expires_at: None,
            },
        };
        Ok(Response::new(reply))
    }

    async fn release(
        &self,
        request: Request<pb::ReleaseRequest>,
    ) -> Result<Response<pb::ReleaseResponse>, Status> {
        let request = request.into_inner();
        let state = self
            .store
            .release(request.job_id, request.lease_token)
            .await?;
        self.settings.metrics.released(request.lease_token);
        Ok(Response::new(pb::ReleaseResponse {
            state: convert::job_state(state).into(),
        }))
    }
}
