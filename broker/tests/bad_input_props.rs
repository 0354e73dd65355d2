//! The `broker_requests` fuzz target's body on stable: arbitrary bytes
//! decoded as each request message and run through the validation the
//! services use never panic, and what is refused is INVALID_ARGUMENT.

use baton_broker::{Error, validate};
use baton_proto::v1 as pb;
use proptest::prelude::*;
use prost::Message;

/// Whether a validation result is a value or a field-naming refusal.
fn clean<T>(result: Result<T, Error>) -> bool {
    match result {
        Ok(_) => true,
        Err(Error::InvalidArgument(message)) => !message.is_empty(),
        Err(_) => false,
    }
}

/// The fuzz target's body.
fn check_every_request(data: &[u8]) {
    if let Ok(r) = pb::RegisterPlaybookRequest::decode(data) {
        assert!(clean(validate::register(&r)));
    }
    if let Ok(r) = pb::EnqueueJobsRequest::decode(data) {
        assert!(clean(validate::enqueue(&r)));
    }
    if let Ok(r) = pb::CompleteRequest::decode(data) {
        assert!(clean(validate::complete(&r)));
    }
    if let Ok(r) = pb::FailRequest::decode(data) {
        assert!(clean(validate::fail(&r)));
    }
    if let Ok(r) = pb::RunExecutionRequest::decode(data) {
        assert!(clean(validate::run(&r)));
    }
    if let Ok(r) = pb::LeaseRequest::decode(data) {
        assert!(clean(validate::hello(&r)));
        assert!(clean(validate::lease_request(&r)));
    }
    if let Ok(r) = pb::SimulateRequest::decode(data) {
        assert!(clean(validate::simulate(&r)));
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_validation(
        data in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        check_every_request(&data);
    }

    #[test]
    fn encoded_requests_with_arbitrary_fields_never_panic(
        kind in ".{0,12}",
        credits in any::<i32>(),
        jitter in any::<f64>(),
        delay in any::<i64>(),
        yaml in ".{0,64}",
    ) {
        let enqueue = pb::EnqueueJobsRequest {
            jobs: vec![pb::JobSpec { kind, ..Default::default() }],
        };
        let credits = pb::LeaseRequest {
            msg: Some(pb::lease_request::Msg::Credits(pb::Credits { credits })),
        };
        let decision = pb::Decision {
            retry: true,
            jitter_factor: jitter,
            delay: Some(prost_types::Duration { seconds: delay, nanos: 0 }),
            ..Default::default()
        };
        let fail = pb::FailRequest { decision: Some(decision), ..Default::default() };
        let register = pb::RegisterPlaybookRequest { yaml };
        check_every_request(&enqueue.encode_to_vec());
        check_every_request(&credits.encode_to_vec());
        check_every_request(&fail.encode_to_vec());
        check_every_request(&register.encode_to_vec());
    }
}

#[test]
fn credits_between_zero_and_the_limit_are_granted() {
    for (credits, granted) in [
        (0, Some(0)),
        (10_000, Some(10_000)),
        (-1, None),
        (10_001, None),
    ] {
        let result = validate::credits(&pb::Credits { credits });
        assert_eq!(result.ok(), granted, "{credits}");
    }
}
