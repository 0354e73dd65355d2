//! Health and reflection: what grpcurl and Kubernetes probes see.

mod support;

use anyhow::Result;
use tokio_stream::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;

#[tokio::test]
async fn health_reports_serving_for_the_server_and_each_service() -> Result<()> {
    let broker = support::start().await?;
    let channel = tonic::transport::Channel::from_shared(broker.endpoint.clone())?
        .connect()
        .await?;
    let mut health = HealthClient::new(channel);
    for service in ["", "baton.v1.Broker", "baton.v1.Jobs", "baton.v1.Policies"] {
        let request = HealthCheckRequest {
            service: service.into(),
        };
        let status = health.check(request).await?.into_inner().status;
        assert_eq!(status, i32::from(ServingStatus::Serving), "{service}");
    }
    Ok(())
}

#[tokio::test]
async fn reflection_v1alpha_lists_baton_and_health_services() -> Result<()> {
    let broker = support::start().await?;
    let channel = tonic::transport::Channel::from_shared(broker.endpoint.clone())?
        .connect()
        .await?;
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await?
        .into_inner();
    let reply = replies.next().await.transpose()?.expect("a reply");
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        anyhow::bail!("expected a service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "baton.v1.Broker",
        "baton.v1.Executions",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    Ok(())
}
