//! `baton.v1.Policies`: retry schedules explained before they run.

use baton_dsl::{Schedule, ScheduleEnd, simulate};
use baton_proto::convert::to_duration;
use baton_proto::v1 as pb;
use baton_proto::v1::policies_server::Policies;
use tonic::{Request, Response, Status};

use super::convert;
use crate::validate;

/// The policy simulator; needs no store.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoliciesService;

#[tonic::async_trait]
impl Policies for PoliciesService {
    async fn simulate(
        &self,
        request: Request<pb::SimulateRequest>,
    ) -> Result<Response<pb::SimulateResponse>, Status> {
        let policy = validate::simulate(&request.into_inner())?;
        let schedule = simulate(&policy);
        Ok(Response::new(pb::SimulateResponse {
            policy: Some(convert::retry_policy(&policy)),
            retries: retries(&schedule),
            ends: ends(&schedule.end),
        }))
    }
}

fn retries(schedule: &Schedule) -> Vec<pb::ScheduledRetry> {
    schedule
        .entries
        .iter()
        .map(|entry| pb::ScheduledRetry {
            after_attempt: entry.after_attempt,
            nominal: Some(to_duration(entry.nominal)),
            min: Some(to_duration(entry.min)),
            max: Some(to_duration(entry.max)),
            cumulative_min: Some(to_duration(entry.cumulative_min)),
            cumulative_max: Some(to_duration(entry.cumulative_max)),
        })
        .collect()
}

fn ends(end: &ScheduleEnd) -> String {
    let n = end.max_attempts();
    match end {
        ScheduleEnd::AttemptsExhausted { .. } => format!("attempts_exhausted after {n} attempts"),
        ScheduleEnd::Conditional {
            retry_when,
            stop_when,
            ..
        } => {
            let rules: Vec<&str> = [(*retry_when, "retry_when"), (*stop_when, "stop_when")]
                .iter()
                .filter(|(set, _)| *set)
                .map(|(_, name)| *name)
                .collect();
            format!(
                "attempts_exhausted after {n} attempts, or sooner when {}",
                rules.join(" or ")
            )
        }
    }
}
