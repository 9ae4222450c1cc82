//! ECS: clusters' services (running vs desired, deployments) as resources,
//! their events and deployments as evidence, and the service actions
//! (`force_new_deployment`, `set_desired_count`) with snapshot and restore.

use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{Service, ServiceField};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::client::AwsFailure;
use super::{Context, Wait, smithy_time, tagged};
use crate::connectors::{ConnectorError, Result, TimeWindow};
use crate::event::StringMap;
use crate::event::{
    ActionOutcome, Health, HealthStatus, InfraEvent, Provider, Resource, ResourceId,
};

/// The resource kind of a service.
pub(super) const KIND: &str = "ecs_service";

/// DescribeServices takes at most this many services per call.
const DESCRIBE_BATCH: usize = 10;

/// Every service of every cluster (all pages).
pub(super) async fn list(
    client: &Client,
    ctx: &Context,
) -> std::result::Result<Vec<Resource>, AwsFailure> {
    let mut out = Vec::new();
    let mut clusters = client.list_clusters().into_paginator().items().send();
    while let Some(cluster_arn) = clusters.next().await {
        let cluster_arn = cluster_arn.map_err(|e| AwsFailure::of("ListClusters", &e))?;
        let cluster = last_segment(&cluster_arn).to_string();
        let mut arns = Vec::new();
        let mut services = client
            .list_services()
            .cluster(&cluster_arn)
            .into_paginator()
            .items()
            .send();
        while let Some(arn) = services.next().await {
            arns.push(arn.map_err(|e| AwsFailure::of("ListServices", &e))?);
        }
        for batch in arns.chunks(DESCRIBE_BATCH) {
            for service in describe(client, &cluster_arn, batch.to_vec()).await? {
                if service.status() == Some("INACTIVE") {
                    continue;
                }
                if let Some(r) = resource(&cluster, &service, ctx) {
                    out.push(r);
                }
            }
        }
    }
    Ok(out)
}

async fn describe(
    client: &Client,
    cluster: &str,
    services: Vec<String>,
) -> std::result::Result<Vec<Service>, AwsFailure> {
    let out = client
        .describe_services()
        .cluster(cluster)
        .set_services(Some(services))
        .include(ServiceField::Tags)
        .send()
        .await
        .map_err(|e| AwsFailure::of("DescribeServices", &e))?;
    Ok(out.services.unwrap_or_default())
}

/// The part of an ARN after its last `/` (the cluster or service name).
fn last_segment(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

fn primary(service: &Service) -> Option<&aws_sdk_ecs::types::Deployment> {
    service
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"))
}

fn resource(cluster: &str, service: &Service, ctx: &Context) -> Option<Resource> {
    let name = service.service_name()?;
    let tags: Vec<(&str, &str)> = service
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?, t.value()?)))
        .collect();
    let tagged = tagged(&tags, ctx);
    let mut attributes = StringMap::new();
    attributes.insert("cluster".to_string(), cluster.to_string());
    attributes.insert("desired_count".into(), service.desired_count().to_string());
    attributes.insert("running_count".into(), service.running_count().to_string());
    attributes.insert("pending_count".into(), service.pending_count().to_string());
    attributes.insert(
        "deployments".into(),
        service.deployments().len().to_string(),
    );
    if let Some(td) = service.task_definition() {
        attributes.insert("task_definition".into(), last_segment(td).to_string());
    }
    if let Some(d) = primary(service) {
        if let Some(id) = d.id() {
            attributes.insert("primary_deployment".into(), id.to_string());
        }
        if let Some(state) = d.rollout_state() {
            attributes.insert("rollout_state".into(), state.as_str().to_string());
        }
    }
    if let Some(lt) = service.launch_type() {
        attributes.insert("launch_type".into(), lt.as_str().to_string());
    }
    Some(Resource {
        id: ctx.prefix.service(cluster, name),
        name: tagged.name.unwrap_or_else(|| name.to_string()),
        kind: KIND.into(),
        provider: Provider::Aws,
        connector: ctx.connector.clone(),
        environment: tagged.environment,
        team: tagged.team,
        labels: tagged.labels,
        attributes,
        health: health(service),
        created_at: service
            .created_at()
            .map(smithy_time)
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
    })
}

/// Running against desired tasks, and a failed rollout, decide health.
pub(super) fn health(service: &Service) -> Health {
    let (desired, running) = (service.desired_count(), service.running_count());
    if primary(service)
        .and_then(|d| d.rollout_state())
        .is_some_and(|s| s.as_str() == "FAILED")
    {
        return Health::new(
            HealthStatus::Unhealthy,
            "deployment_failed",
            "the primary deployment's rollout failed",
        );
    }
    if desired > 0 && running == 0 {
        return Health::new(
            HealthStatus::Unhealthy,
            "no_running_tasks",
            format!("0 of {desired} tasks running"),
        );
    }
    if running < desired {
        return Health::new(
            HealthStatus::Degraded,
            "tasks_below_desired",
            format!("{running} of {desired} tasks running"),
        );
    }
    Health::healthy()
}

/// A service's count and task definition, enough to restore it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct ServiceFacts {
    pub cluster: String,
    pub service: String,
    pub desired_count: i32,
    pub running_count: i32,
    pub task_definition: String,
    pub primary_deployment: Option<String>,
}

async fn read(
    client: &Client,
    id: &ResourceId,
    cluster: &str,
    name: &str,
) -> Result<(ServiceFacts, Service)> {
    let services = describe(client, cluster, vec![name.to_string()]).await?;
    let service = services
        .into_iter()
        .find(|s| s.service_name() == Some(name) && s.status() != Some("INACTIVE"))
        .ok_or_else(|| ConnectorError::NotFound(id.clone()))?;
    let facts = ServiceFacts {
        cluster: cluster.to_string(),
        service: name.to_string(),
        desired_count: service.desired_count(),
        running_count: service.running_count(),
        task_definition: service.task_definition().unwrap_or_default().to_string(),
        primary_deployment: primary(&service).and_then(|d| d.id()).map(str::to_string),
    };
    Ok((facts, service))
}

/// A service's health, read fresh.
pub(super) async fn service_health(
    client: &Client,
    id: &ResourceId,
    cluster: &str,
    name: &str,
) -> Result<Health> {
    Ok(health(&read(client, id, cluster, name).await?.1))
}

/// Reads a service's facts (for snapshots).
pub(super) async fn facts(
    client: &Client,
    id: &ResourceId,
    cluster: &str,
    name: &str,
) -> Result<ServiceFacts> {
    Ok(read(client, id, cluster, name).await?.0)
}

/// Polls until `done` holds for the service (bounded by the wait's timeout).
async fn wait_until(
    client: &Client,
    id: &ResourceId,
    cluster: &str,
    name: &str,
    wait: &Wait,
    what: &str,
    done: impl Fn(&ServiceFacts) -> bool,
) -> Result<ServiceFacts> {
    let deadline = tokio::time::Instant::now() + wait.timeout;
    loop {
        let now = facts(client, id, cluster, name).await?;
        if done(&now) {
            return Ok(now);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ConnectorError::Backend(format!(
                "{cluster}/{name} did not reach {what} within {}s ({} of {} running)",
                wait.timeout.as_secs(),
                now.running_count,
                now.desired_count
            )));
        }
        tokio::time::sleep(wait.interval).await;
    }
}

/// Runs a service action and waits for the service to settle.
pub(super) async fn execute(
    client: &Client,
    id: &ResourceId,
    cluster: &str,
    name: &str,
    action: &crate::event::Action,
    wait: &Wait,
) -> Result<ActionOutcome> {
    let before = facts(client, id, cluster, name).await?;
    let mut steps = Vec::new();
    let result: Result<String> = async {
        Ok(match action.name.as_str() {
            "force_new_deployment" => {
                client
                    .update_service()
                    .cluster(cluster)
                    .service(name)
                    .force_new_deployment(true)
                    .send()
                    .await
                    .map_err(|e| AwsFailure::of("UpdateService", &e))?;
                steps.push(format!("UpdateService {cluster}/{name} forceNewDeployment"));
                let old = before.primary_deployment.clone();
                let after = wait_until(
                    client,
                    id,
                    cluster,
                    name,
                    wait,
                    "a new settled deployment",
                    |f| {
                        f.primary_deployment.is_some()
                            && f.primary_deployment != old
                            && f.running_count >= f.desired_count
                    },
                )
                .await?;
                steps.push(format!(
                    "new deployment {} with {} of {} tasks running",
                    after.primary_deployment.as_deref().unwrap_or("?"),
                    after.running_count,
                    after.desired_count
                ));
                format!("forced a new deployment of {cluster}/{name}")
            }
            "set_desired_count" => {
                let wanted = super::preview::desired_count(action)?;
                client
                    .update_service()
                    .cluster(cluster)
                    .service(name)
                    .desired_count(wanted)
                    .send()
                    .await
                    .map_err(|e| AwsFailure::of("UpdateService", &e))?;
                steps.push(format!(
                    "UpdateService {cluster}/{name} desiredCount={wanted}"
                ));
                wait_until(client, id, cluster, name, wait, "the desired count", |f| {
                    f.desired_count == wanted && f.running_count == wanted
                })
                .await?;
                steps.push(format!("{wanted} of {wanted} tasks running"));
                format!(
                    "set {cluster}/{name} desired count from {} to {wanted}",
                    before.desired_count
                )
            }
            other => {
                return Err(ConnectorError::Unsupported {
                    action: other.to_string(),
                    resource: id.clone(),
                });
            }
        })
    }
    .await;
    super::outcome_of(result, steps)
}

/// Puts back the recorded desired count and task definition and waits for them.
pub(super) async fn restore(
    client: &Client,
    id: &ResourceId,
    recorded: &ServiceFacts,
    wait: &Wait,
) -> Result<ActionOutcome> {
    let (cluster, name) = (recorded.cluster.as_str(), recorded.service.as_str());
    let mut request = client
        .update_service()
        .cluster(cluster)
        .service(name)
        .desired_count(recorded.desired_count);
    if !recorded.task_definition.is_empty() {
        request = request.task_definition(&recorded.task_definition);
    }
    request
        .send()
        .await
        .map_err(|e| AwsFailure::of("UpdateService", &e))?;
    let mut steps = vec![format!(
        "UpdateService {cluster}/{name} desiredCount={} taskDefinition={}",
        recorded.desired_count, recorded.task_definition
    )];
    let after = wait_until(client, id, cluster, name, wait, "the recorded state", |f| {
        f.desired_count == recorded.desired_count
            && f.running_count == recorded.desired_count
            && f.task_definition == recorded.task_definition
    })
    .await?;
    steps.push(format!(
        "{} of {} tasks running on {}",
        after.running_count, after.desired_count, after.task_definition
    ));
    Ok(ActionOutcome {
        success: true,
        message: format!(
            "{cluster}/{name} is back to {} task(s) of {}",
            recorded.desired_count,
            last_segment(&recorded.task_definition)
        ),
        steps,
    })
}

/// The service's own events and its deployments inside the window.
pub(super) async fn events(
    client: &Client,
    id: &ResourceId,
    cluster: &str,
    name: &str,
    window: TimeWindow,
) -> Result<Vec<InfraEvent>> {
    let (_, service) = read(client, id, cluster, name).await?;
    let mut out = Vec::new();
    for e in service.events() {
        let Some(at) = e.created_at().map(smithy_time) else {
            continue;
        };
        if at < window.from || at > window.to {
            continue;
        }
        let message = e.message().unwrap_or_default().to_string();
        let warning = message.contains("unable")
            || message.contains("failed")
            || message.contains("unhealthy");
        out.push(InfraEvent {
            at,
            resource: id.clone(),
            kind: if warning { "Warning" } else { "Normal" }.into(),
            reason: "service_event".into(),
            message,
        });
    }
    for d in service.deployments() {
        let Some(at) = d.created_at().map(smithy_time) else {
            continue;
        };
        if at < window.from || at > window.to {
            continue;
        }
        out.push(InfraEvent {
            at,
            resource: id.clone(),
            kind: "change".into(),
            reason: "deployment".into(),
            message: format!(
                "{} deployment {} of {} ({} of {} running{})",
                d.status().unwrap_or("?").to_lowercase(),
                d.id().unwrap_or("?"),
                last_segment(d.task_definition().unwrap_or("?")),
                d.running_count(),
                d.desired_count(),
                d.rollout_state()
                    .map(|s| format!(", rollout {}", s.as_str().to_lowercase()))
                    .unwrap_or_default()
            ),
        });
    }
    out.sort_by_key(|e| e.at);
    Ok(out)
}
