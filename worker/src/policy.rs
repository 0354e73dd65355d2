//! Retry policies and decisions between the wire and `baton-dsl`.
//!
//! The broker sends the policy as a proto `RetryPolicy`; the worker turns it
//! into the dsl's, builds the dsl `Outcome` from what the task produced,
//! decides with the same code the broker uses, and sends the decision back
//! as a proto `Decision`. Prost types stay here and in the runtime.

use baton_dsl::{Decision, Expression, JitterSource, Outcome, RandomJitter, Reason, RetryPolicy};
use baton_proto::convert;
use baton_proto::v1;

use crate::executor::{ErrorKind, TaskError, TaskOutput};

/// The dsl policy of a proto one. An unset policy allows one attempt; a
/// `max_attempts` of 0 counts as 1. Fails when an expression does not parse.
pub fn from_proto(policy: Option<&v1::RetryPolicy>) -> Result<RetryPolicy, String> {
    let Some(policy) = policy else {
        return Ok(RetryPolicy::default());
    };
    Ok(RetryPolicy {
        max_attempts: policy.max_attempts.max(1),
        initial_delay: duration(policy.initial_delay.as_ref()),
        backoff_multiplier: policy.backoff_multiplier,
        max_delay: duration(policy.max_delay.as_ref()),
        jitter: policy.jitter,
        retry_when: expression(&policy.retry_when)?,
        stop_when: expression(&policy.stop_when)?,
    })
}

fn duration(d: Option<&prost_types::Duration>) -> std::time::Duration {
    d.map(convert::from_duration).unwrap_or_default()
}

fn expression(source: &str) -> Result<Option<Expression>, String> {
    if source.trim().is_empty() {
        return Ok(None);
    }
    Expression::parse(source).map(Some)
}

/// What the policy sees of an attempt's output.
pub fn outcome(output: &TaskOutput) -> Outcome {
    Outcome {
        success: output.succeeded(),
        result: output.result.clone(),
        status_code: output.status_code,
        error: output.error.as_ref().map(|e| e.message.clone()),
    }
}

/// Decides after `attempt` ended with `output`, with random jitter.
pub fn decide(policy: &RetryPolicy, output: &TaskOutput, attempt: u32) -> Decision {
    decide_with(policy, output, attempt, &mut RandomJitter)
}

/// [`decide`] with a chosen jitter source (tests fix it).
pub fn decide_with(
    policy: &RetryPolicy,
    output: &TaskOutput,
    attempt: u32,
    jitter: &mut dyn JitterSource,
) -> Decision {
    baton_dsl::decide(policy, &outcome(output), attempt, jitter)
}

/// The proto form of a decision.
pub fn decision_to_proto(decision: &Decision) -> v1::Decision {
    v1::Decision {
        retry: decision.retry,
        delay: Some(convert::to_duration(decision.delay)),
        reason: reason_to_proto(decision.reason).into(),
        raw_delay: Some(convert::to_duration(decision.raw_delay)),
        jitter_factor: decision.jitter_factor,
        message: decision.message.clone().unwrap_or_default(),
    }
}

fn reason_to_proto(reason: Reason) -> v1::DecisionReason {
    match reason {
        Reason::AttemptsExhausted => v1::DecisionReason::AttemptsExhausted,
        Reason::StopWhen => v1::DecisionReason::StopWhen,
        Reason::RetryWhen => v1::DecisionReason::RetryWhen,
        Reason::RetryWhenFalse => v1::DecisionReason::RetryWhenFalse,
        Reason::Default => v1::DecisionReason::Default,
        Reason::ExpressionError => v1::DecisionReason::ExpressionError,
    }
}

/// The proto form of an attempt's output.
pub fn outcome_to_proto(output: &TaskOutput) -> v1::Outcome {
    v1::Outcome {
        result: (!output.result.is_null()).then(|| convert::to_value(&output.result)),
        status_code: output.status_code.map(u32::from),
        error: output.error.as_ref().map(error_to_proto),
    }
}

fn error_to_proto(error: &TaskError) -> v1::TaskError {
    v1::TaskError {
        kind: kind_to_proto(error.kind).into(),
        r#type: error.error_type.clone(),
        message: error.message.clone(),
        traceback: error.traceback.clone(),
    }
}

fn kind_to_proto(kind: ErrorKind) -> v1::ErrorKind {
    match kind {
        ErrorKind::Exception => v1::ErrorKind::Exception,
        ErrorKind::HttpStatus => v1::ErrorKind::HttpStatus,
        ErrorKind::Timeout => v1::ErrorKind::Timeout,
        ErrorKind::Transport => v1::ErrorKind::Transport,
        ErrorKind::InvalidTask => v1::ErrorKind::InvalidTask,
        ErrorKind::Internal => v1::ErrorKind::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_dsl::FixedJitter;
    use serde_json::json;
    use std::time::Duration;

    fn wire(retry_when: &str, stop_when: &str) -> v1::RetryPolicy {
        v1::RetryPolicy {
            max_attempts: 4,
            initial_delay: Some(convert::to_duration(Duration::from_millis(250))),
            backoff_multiplier: 2.0,
            max_delay: Some(convert::to_duration(Duration::from_secs(10))),
            jitter: true,
            retry_when: retry_when.to_owned(),
            stop_when: stop_when.to_owned(),
        }
    }

    #[test]
    fn a_wire_policy_becomes_the_same_dsl_policy() {
        let policy = from_proto(Some(&wire("status_code >= 500", ""))).unwrap();
        assert_eq!(policy.max_attempts, 4);
        assert_eq!(policy.initial_delay, Duration::from_millis(250));
        assert_eq!(policy.max_delay, Duration::from_secs(10));
        assert!(policy.jitter);
        assert_eq!(policy.retry_when.unwrap().source(), "status_code >= 500");
        assert!(policy.stop_when.is_none());
    }

    #[test]
    fn an_unset_policy_allows_one_attempt() {
        assert_eq!(from_proto(None).unwrap().max_attempts, 1);
    }

    #[test]
    fn an_expression_that_does_not_parse_is_refused() {
        assert!(from_proto(Some(&wire("status_code >=", ""))).is_err());
    }

    #[test]
    fn a_failed_output_decides_a_jittered_retry_on_the_wire() {
        let policy = from_proto(Some(&wire("", ""))).unwrap();
        let error = TaskError::new(ErrorKind::Exception, "ValueError", "boom");
        let output = TaskOutput::failure(error);
        let decision = decide_with(&policy, &output, 2, &mut FixedJitter(1.5));
        let wire = decision_to_proto(&decision);
        assert!(wire.retry);
        assert_eq!(wire.reason(), v1::DecisionReason::Default);
        assert_eq!(
            wire.delay,
            Some(convert::to_duration(Duration::from_millis(750)))
        );
        assert_eq!(
            wire.raw_delay,
            Some(convert::to_duration(Duration::from_millis(500)))
        );
    }

    #[test]
    fn an_http_output_carries_its_status_and_error_kind() {
        let mut output = TaskOutput::success(json!({"status_code": 503}));
        output.status_code = Some(503);
        output.error = Some(TaskError::new(
            ErrorKind::HttpStatus,
            "HTTPError",
            "HTTP 503",
        ));
        let wire = outcome_to_proto(&output);
        assert_eq!(wire.status_code, Some(503));
        assert_eq!(wire.error.unwrap().kind(), v1::ErrorKind::HttpStatus);
    }
}
