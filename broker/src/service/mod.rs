//! The gRPC services. Each handler converts the request, calls the store,
//! and converts the answer; errors become statuses in `status` only.

mod broker;
mod commit;
pub(crate) mod convert;
mod executions;
mod jobs;
mod lease;
mod playbooks;
mod policies;
mod status;

pub(crate) use broker::BrokerService;
pub(crate) use commit::Committer;
pub(crate) use executions::ExecutionsService;
pub(crate) use jobs::JobsService;
pub(crate) use lease::LeaseSettings;
pub(crate) use playbooks::PlaybooksService;
pub(crate) use policies::PoliciesService;
