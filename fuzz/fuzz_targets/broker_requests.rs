//! Any bytes decoded as each request message and run through the broker's
//! own validation come back as a value or an error, never a panic. The
//! same body runs on stable as `broker/tests/bad_input_props.rs`.
#![no_main]

use baton_broker::validate;
use baton_proto::v1 as pb;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = pb::RegisterPlaybookRequest::decode(data) {
        let _ = validate::register(&r);
    }
    if let Ok(r) = pb::EnqueueJobsRequest::decode(data) {
        let _ = validate::enqueue(&r);
    }
    if let Ok(r) = pb::CompleteRequest::decode(data) {
        let _ = validate::complete(&r);
    }
    if let Ok(r) = pb::FailRequest::decode(data) {
        let _ = validate::fail(&r);
    }
    if let Ok(r) = pb::RunExecutionRequest::decode(data) {
        let _ = validate::run(&r);
    }
    if let Ok(r) = pb::LeaseRequest::decode(data) {
        let _ = validate::hello(&r);
        let _ = validate::lease_request(&r);
    }
    if let Ok(r) = pb::SimulateRequest::decode(data) {
        let _ = validate::simulate(&r);
    }
});
