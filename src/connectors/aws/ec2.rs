//! EC2: instances with their status checks as resources, and the instance
//! actions (reboot, stop, start, resize) with snapshot and restore. Every
//! action waits for the state it asked for with a bounded poll and says what
//! it saw.

use std::collections::HashMap;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{
    AttributeValue, Instance, InstanceStateName, InstanceStatus, InstanceStatusSummary,
    SummaryStatus,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::client::AwsFailure;
use super::{Context, Wait, smithy_time, tagged};
use crate::connectors::{ConnectorError, Result};
use crate::event::StringMap;
use crate::event::{ActionOutcome, Health, HealthStatus, Provider, Resource, ResourceId};

/// The largest page EC2 returns: fewest round trips for a large fleet.
const PAGE_SIZE: i32 = 1000;

/// The resource kind of an instance.
pub(super) const KIND: &str = "ec2_instance";

/// Every instance (all pages) with its status checks; terminated ones are left out.
pub(super) async fn list(
    client: &Client,
    ctx: &Context,
) -> std::result::Result<Vec<Resource>, AwsFailure> {
    let mut statuses: HashMap<String, InstanceStatus> = HashMap::new();
    let mut pages = client
        .describe_instance_status()
        .include_all_instances(true)
        .into_paginator()
        .page_size(PAGE_SIZE)
        .items()
        .send();
    while let Some(status) = pages.next().await {
        let status = status.map_err(|e| AwsFailure::of("DescribeInstanceStatus", &e))?;
        if let Some(id) = status.instance_id() {
            statuses.insert(id.to_string(), status);
        }
    }
    let mut out = Vec::new();
    let mut pages = client
        .describe_instances()
        .into_paginator()
        .page_size(PAGE_SIZE)
        .items()
        .send();
    while let Some(reservation) = pages.next().await {
        let reservation = reservation.map_err(|e| AwsFailure::of("DescribeInstances", &e))?;
        for instance in reservation.instances.unwrap_or_default() {
            if state_of(&instance) == Some(&InstanceStateName::Terminated) {
                continue;
            }
            let status = instance.instance_id().and_then(|id| statuses.get(id));
            if let Some(r) = resource(&instance, status, ctx) {
                out.push(r);
            }
        }
    }
    Ok(out)
}

fn state_of(instance: &Instance) -> Option<&InstanceStateName> {
    instance.state().and_then(|s| s.name())
}

/// An instance as a resource: tags become team/environment and labels.
fn resource(
    instance: &Instance,
    status: Option<&InstanceStatus>,
    ctx: &Context,
) -> Option<Resource> {
    let instance_id = instance.instance_id()?;
    let tags: Vec<(&str, &str)> = instance
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?, t.value()?)))
        .collect();
    let tagged = tagged(&tags, ctx);
    let state = state_of(instance).map(|s| s.as_str()).unwrap_or("unknown");
    let mut attributes = StringMap::new();
    attributes.insert("state".to_string(), state.to_string());
    if let Some(t) = instance.instance_type() {
        attributes.insert("instance_type".into(), t.as_str().to_string());
    }
    if let Some(az) = instance.placement().and_then(|p| p.availability_zone()) {
        attributes.insert("availability_zone".into(), az.to_string());
    }
    if let Some(ip) = instance.private_ip_address() {
        attributes.insert("private_ip".into(), ip.to_string());
    }
    let launched = instance.launch_time().map(smithy_time);
    if let Some(t) = launched {
        attributes.insert("launch_time".into(), crate::event::rfc3339(&t));
    }
    if let Some(s) = status {
        attributes.insert("system_status".into(), summary_label(s.system_status()));
        attributes.insert("instance_status".into(), summary_label(s.instance_status()));
    }
    Some(Resource {
        id: ctx.prefix.instance(instance_id),
        name: tagged.name.unwrap_or_else(|| instance_id.to_string()),
        kind: KIND.into(),
        provider: Provider::Aws,
        connector: ctx.connector.clone(),
        environment: tagged.environment,
        team: tagged.team,
        labels: tagged.labels,
        attributes,
        health: health(state, status),
        created_at: launched.unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
    })
}

fn summary_label(s: Option<&InstanceStatusSummary>) -> String {
    s.and_then(|s| s.status())
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Health from the instance state and its two status checks; a failing check
/// is named in the reason (`system_status_check`, `instance_status_check`).
pub(super) fn health(state: &str, status: Option<&InstanceStatus>) -> Health {
    match state {
        "running" => {}
        "pending" => return Health::new(HealthStatus::Unknown, "pending", "instance is starting"),
        "stopping" | "stopped" | "shutting-down" => {
            return Health::new(
                HealthStatus::Unhealthy,
                "instance_stopped",
                format!("instance is {state}"),
            );
        }
        other => return Health::new(HealthStatus::Unknown, "instance_state", other.to_string()),
    }
    let Some(status) = status else {
        return Health::new(
            HealthStatus::Unknown,
            "status_checks_unavailable",
            "no status checks reported",
        );
    };
    for (reason, check) in [
        ("system_status_check", status.system_status()),
        ("instance_status_check", status.instance_status()),
    ] {
        let Some(check) = check else { continue };
        match check.status() {
            Some(SummaryStatus::Impaired) => {
                return Health::new(HealthStatus::Unhealthy, reason, failed_details(check));
            }
            Some(SummaryStatus::InsufficientData | SummaryStatus::Initializing) => {
                return Health::new(
                    HealthStatus::Unknown,
                    reason,
                    format!(
                        "{reason}: {}",
                        check.status().map(|s| s.as_str()).unwrap_or("")
                    ),
                );
            }
            _ => {}
        }
    }
    Health::healthy()
}

fn failed_details(check: &InstanceStatusSummary) -> String {
    let failed: Vec<String> = check
        .details()
        .iter()
        .filter(|d| d.status().map(|s| s.as_str()) != Some("passed"))
        .map(|d| {
            format!(
                "{} {}",
                d.name().map(|n| n.as_str()).unwrap_or("check"),
                d.status().map(|s| s.as_str()).unwrap_or("failed")
            )
        })
        .collect();
    if failed.is_empty() {
        "impaired".into()
    } else {
        format!("impaired: {}", failed.join(", "))
    }
}

/// One instance's state and type, read fresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct InstanceFacts {
    pub instance_id: String,
    pub state: String,
    pub instance_type: String,
}

/// Reads an instance; an unknown id is `NotFound`.
pub(super) async fn facts(
    client: &Client,
    id: &ResourceId,
    instance_id: &str,
) -> Result<InstanceFacts> {
    let out = client
        .describe_instances()
        .instance_ids(instance_id)
        .send()
        .await
        .map_err(|e| {
            let f = AwsFailure::of("DescribeInstances", &e);
            if f.kind == super::client::FailureKind::NotFound {
                ConnectorError::NotFound(id.clone())
            } else {
                f.into()
            }
        })?;
    let instance = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find(|i| i.instance_id() == Some(instance_id))
        .ok_or_else(|| ConnectorError::NotFound(id.clone()))?;
    Ok(InstanceFacts {
        instance_id: instance_id.to_string(),
        state: state_of(instance)
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        instance_type: instance
            .instance_type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
    })
}

/// Polls until the instance is in `wanted` (bounded by the wait's timeout).
async fn wait_for(
    client: &Client,
    id: &ResourceId,
    instance_id: &str,
    wanted: &str,
    wait: &Wait,
) -> Result<InstanceFacts> {
    let deadline = tokio::time::Instant::now() + wait.timeout;
    loop {
        let now = facts(client, id, instance_id).await?;
        if now.state == wanted {
            return Ok(now);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ConnectorError::Backend(format!(
                "{instance_id} is still {} after {}s (waiting for {wanted})",
                now.state,
                wait.timeout.as_secs()
            )));
        }
        tokio::time::sleep(wait.interval).await;
    }
}

async fn stop(
    client: &Client,
    id: &ResourceId,
    instance_id: &str,
    wait: &Wait,
    steps: &mut Vec<String>,
) -> Result<()> {
    client
        .stop_instances()
        .instance_ids(instance_id)
        .send()
        .await
        .map_err(|e| AwsFailure::of("StopInstances", &e))?;
    steps.push(format!("StopInstances {instance_id}"));
    wait_for(client, id, instance_id, "stopped", wait).await?;
    steps.push(format!("{instance_id} is stopped"));
    Ok(())
}

async fn start(
    client: &Client,
    id: &ResourceId,
    instance_id: &str,
    wait: &Wait,
    steps: &mut Vec<String>,
) -> Result<()> {
    client
        .start_instances()
        .instance_ids(instance_id)
        .send()
        .await
        .map_err(|e| AwsFailure::of("StartInstances", &e))?;
    steps.push(format!("StartInstances {instance_id}"));
    wait_for(client, id, instance_id, "running", wait).await?;
    steps.push(format!("{instance_id} is running"));
    Ok(())
}

async fn set_type(
    client: &Client,
    instance_id: &str,
    instance_type: &str,
    steps: &mut Vec<String>,
) -> Result<()> {
    client
        .modify_instance_attribute()
        .instance_id(instance_id)
        .instance_type(AttributeValue::builder().value(instance_type).build())
        .send()
        .await
        .map_err(|e| AwsFailure::of("ModifyInstanceAttribute", &e))?;
    steps.push(format!(
        "ModifyInstanceAttribute {instance_id} instance_type={instance_type}"
    ));
    Ok(())
}

/// Runs an instance action; the outcome lists every call and what it waited for.
pub(super) async fn execute(
    client: &Client,
    id: &ResourceId,
    instance_id: &str,
    action: &crate::event::Action,
    wait: &Wait,
) -> Result<ActionOutcome> {
    let before = facts(client, id, instance_id).await?;
    let mut steps = Vec::new();
    let unsupported = |why: &str| ConnectorError::BadParam {
        action: action.name.clone(),
        param: "state".into(),
        reason: format!("{instance_id} is {}: {why}", before.state),
    };
    let result: Result<String> = async {
        Ok(match action.name.as_str() {
            "reboot_instance" => {
                if before.state != "running" {
                    return Err(unsupported("only a running instance can be rebooted"));
                }
                client
                    .reboot_instances()
                    .instance_ids(instance_id)
                    .send()
                    .await
                    .map_err(|e| AwsFailure::of("RebootInstances", &e))?;
                steps.push(format!("RebootInstances {instance_id}"));
                wait_for(client, id, instance_id, "running", wait).await?;
                steps.push(format!("{instance_id} is running"));
                format!("rebooted {instance_id}")
            }
            "stop_instance" => {
                if before.state != "running" {
                    return Err(unsupported("only a running instance can be stopped"));
                }
                stop(client, id, instance_id, wait, &mut steps).await?;
                format!("stopped {instance_id} (was running)")
            }
            "start_instance" => {
                if before.state != "stopped" {
                    return Err(unsupported("only a stopped instance can be started"));
                }
                start(client, id, instance_id, wait, &mut steps).await?;
                format!("started {instance_id} (was stopped)")
            }
            "resize_instance" => {
                let wanted = super::preview::wanted_type(action, &before)?;
                let was_running = before.state == "running";
                if was_running {
                    stop(client, id, instance_id, wait, &mut steps).await?;
                } else if before.state != "stopped" {
                    return Err(unsupported("resize needs a running or stopped instance"));
                }
                set_type(client, instance_id, wanted, &mut steps).await?;
                if was_running {
                    start(client, id, instance_id, wait, &mut steps).await?;
                }
                let after = facts(client, id, instance_id).await?;
                if after.instance_type != wanted {
                    return Err(ConnectorError::Backend(format!(
                        "{instance_id} is {} after the resize, not {wanted}",
                        after.instance_type
                    )));
                }
                format!(
                    "resized {instance_id} from {} to {wanted}",
                    before.instance_type
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

/// Returns an instance to the recorded type and state (stopping it first if
/// the type must change, as EC2 requires).
pub(super) async fn restore(
    client: &Client,
    id: &ResourceId,
    recorded: &InstanceFacts,
    wait: &Wait,
) -> Result<ActionOutcome> {
    let instance_id = recorded.instance_id.as_str();
    let mut now = facts(client, id, instance_id).await?;
    let mut steps = Vec::new();
    if now.state == "stopping" {
        now = wait_for(client, id, instance_id, "stopped", wait).await?;
    } else if now.state == "pending" {
        now = wait_for(client, id, instance_id, "running", wait).await?;
    }
    if now.instance_type != recorded.instance_type {
        if now.state == "running" {
            stop(client, id, instance_id, wait, &mut steps).await?;
        }
        set_type(client, instance_id, &recorded.instance_type, &mut steps).await?;
        now = facts(client, id, instance_id).await?;
    }
    match (recorded.state.as_str(), now.state.as_str()) {
        ("running", "stopped") => start(client, id, instance_id, wait, &mut steps).await?,
        ("stopped", "running") => stop(client, id, instance_id, wait, &mut steps).await?,
        _ => {}
    }
    let after = facts(client, id, instance_id).await?;
    let success = after.instance_type == recorded.instance_type && after.state == recorded.state;
    if steps.is_empty() {
        steps.push(format!(
            "{instance_id} already {} {}",
            after.state, after.instance_type
        ));
    }
    Ok(ActionOutcome {
        success,
        message: format!(
            "{instance_id} is {} {} (recorded: {} {})",
            after.state, after.instance_type, recorded.state, recorded.instance_type
        ),
        steps,
    })
}
