//! `baton.v1.Jobs`: bare jobs and every job's history.

use baton_proto::v1 as pb;
use baton_proto::v1::jobs_server::Jobs;
use tonic::{Request, Response, Status};

use super::convert;
use super::executions::page_limit;
use crate::model::JobFilter;
use crate::store::Store;
use crate::validate;

/// The jobs' handlers.
#[derive(Debug, Clone)]
pub(crate) struct JobsService {
    pub(crate) store: Store,
}

#[tonic::async_trait]
impl Jobs for JobsService {
    async fn enqueue(
        &self,
        request: Request<pb::EnqueueJobsRequest>,
    ) -> Result<Response<pb::EnqueueJobsResponse>, Status> {
        let jobs = validate::enqueue(request.get_ref())?;
        let stored = self.store.enqueue(jobs).await?;
        tracing::debug!(count = stored.len(), "Enqueued jobs");
        Ok(Response::new(pb::EnqueueJobsResponse {
            jobs: stored.iter().map(convert::job).collect(),
        }))
    }

    async fn list(
        &self,
        request: Request<pb::ListJobsRequest>,
    ) -> Result<Response<pb::ListJobsResponse>, Status> {
        let request = request.into_inner();
        let filter = JobFilter {
            state: convert::job_state_filter(request.state),
            execution_id: Some(request.execution_id).filter(|id| *id > 0),
            queue: Some(request.queue).filter(|q| !q.is_empty()),
            limit: page_limit(request.limit),
            before_id: Some(request.before_id).filter(|id| *id > 0),
        };
        let jobs = self.store.list_jobs(&filter).await?;
        Ok(Response::new(pb::ListJobsResponse {
            jobs: jobs.iter().map(convert::job).collect(),
        }))
    }

    async fn get(
        &self,
        request: Request<pb::GetJobRequest>,
    ) -> Result<Response<pb::GetJobResponse>, Status> {
        let (job, attempts) = self.store.get_job(request.into_inner().id).await?;
        Ok(Response::new(pb::GetJobResponse {
            job: Some(convert::job(&job)),
            attempts: attempts.iter().map(convert::attempt).collect(),
        }))
    }

    async fn requeue(
        &self,
        request: Request<pb::RequeueJobRequest>,
    ) -> Result<Response<pb::RequeueJobResponse>, Status> {
        let job = self.store.requeue(request.into_inner().id).await?;
        tracing::info!(job_id = job.id, "Requeued job");
        Ok(Response::new(pb::RequeueJobResponse {
            job: Some(convert::job(&job)),
        }))
    }

    async fn cancel(
        &self,
        request: Request<pb::CancelJobRequest>,
    ) -> Result<Response<pb::CancelJobResponse>, Status> {
        let job = self.store.cancel_job(request.into_inner().id).await?;
        tracing::info!(job_id = job.id, state = %job.state, "Cancelled job");
        Ok(Response::new(pb::CancelJobResponse {
            job: Some(convert::job(&job)),
        }))
    }
}
