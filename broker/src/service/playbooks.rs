//! `baton.v1.Playbooks`: the catalog.

use baton_proto::v1 as pb;
use baton_proto::v1::playbooks_server::Playbooks;
use tonic::{Request, Response, Status};

use super::convert;
use crate::store::Store;
use crate::validate;

/// The catalog's handlers.
#[derive(Debug, Clone)]
pub(crate) struct PlaybooksService {
    pub(crate) store: Store,
}

#[tonic::async_trait]
impl Playbooks for PlaybooksService {
    async fn register(
        &self,
        request: Request<pb::RegisterPlaybookRequest>,
    ) -> Result<Response<pb::RegisterPlaybookResponse>, Status> {
        let request = request.into_inner();
        let playbook = validate::register(&request)?;
        let record = self
            .store
            .register_playbook(&playbook, &request.yaml)
            .await?;
        tracing::info!(path = %record.path, version = record.version, "Registered playbook");
        Ok(Response::new(pb::RegisterPlaybookResponse {
            playbook: Some(convert::playbook(&record, true)),
        }))
    }

    async fn get(
        &self,
        request: Request<pb::GetPlaybookRequest>,
    ) -> Result<Response<pb::GetPlaybookResponse>, Status> {
        let request = request.into_inner();
        let record = self
            .store
            .get_playbook(&request.path, request.version)
            .await?;
        Ok(Response::new(pb::GetPlaybookResponse {
            playbook: Some(convert::playbook(&record, true)),
        }))
    }

    async fn list(
        &self,
        request: Request<pb::ListPlaybooksRequest>,
    ) -> Result<Response<pb::ListPlaybooksResponse>, Status> {
        let records = self
            .store
            .list_playbooks(&request.into_inner().path_prefix)
            .await?;
        Ok(Response::new(pb::ListPlaybooksResponse {
            playbooks: records
                .iter()
                .map(|r| convert::playbook(r, false))
                .collect(),
        }))
    }
}
