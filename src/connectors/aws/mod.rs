//! The AWS connector: EC2 instances and ECS services of one profile in one
//! region, as one fleet. Credentials, region and `AWS_ENDPOINT_URL` come from
//! `aws-config`'s standard chain; several profiles × regions are separate
//! connector instances, each with its own [`ConnectorId`].
//!
//! It polls on its own schedule (interval plus jitter, back-off when
//! throttled) and tells discovery when nothing was looked at again, so an
//! idle cycle costs nothing. A failed poll never drops the fleet: discovery
//! only retires resources of a connector that answered.

pub(crate) mod client;
mod cloudtrail;
mod cloudwatch;
mod config;
pub mod cost;
mod ec2;
mod ecs;
mod ids;
mod poll;
mod preview;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

pub use aws_runtime::env_config::file::{
    EnvConfigFileKind as ProfileFileKind, EnvConfigFiles as ProfileFiles,
};
pub use config::AwsConfig;
pub use cost::{BillingLine, CostExplorer};

use super::{ConnectorError, InfraConnector, Listing, Result, Scope, TimeWindow};
use crate::clock::SharedClock;
use crate::event::StringMap;
use crate::event::{
    Action, ActionOutcome, ConnectorId, ConnectorState, Environment, Health, HealthStatus,
    InfraEvent, Provider, Resource, ResourceId, Snapshot,
};
use client::{AwsFailure, CredentialCheck, FailureKind};
use ids::{IdPrefix, Target};

/// Status-check transitions remembered per instance, for evidence.
const CHECK_HISTORY: usize = 20;

/// What every listing needs to name and label resources.
struct Context {
    connector: ConnectorId,
    prefix: IdPrefix,
    team_tag: String,
    environment_tag: String,
}

/// How an action waits for the state it asked for.
#[derive(Debug, Clone, Copy)]
pub(super) struct Wait {
    pub interval: Duration,
    pub timeout: Duration,
}

/// The connectors built from the `[aws]` section, and the ones that could not be.
pub struct Setup {
    pub connectors: Vec<Arc<AwsConnector>>,
    /// Connector (or `aws` when the section is missing) → one line saying how to add it.
    pub absent: Vec<(ConnectorId, String)>,
}

/// The id under which a missing `[aws]` section is reported.
pub fn family_id() -> ConnectorId {
    ConnectorId::new("aws")
}

/// Builds one connector per profile × region. Nothing here fails: a pair
/// without credentials or region is reported as absent, expired credentials
/// as a failing connector, each with a line for the Fleet pane.
pub async fn connect(config: Option<&AwsConfig>, clock: SharedClock) -> Setup {
    connect_with(config, clock, None).await
}

/// [`connect`] reading profiles from the given files instead of `~/.aws`
/// (for sites that keep them elsewhere, and for tests).
pub async fn connect_with(
    config: Option<&AwsConfig>,
    clock: SharedClock,
    files: Option<&ProfileFiles>,
) -> Setup {
    let mut setup = Setup {
        connectors: Vec::new(),
        absent: Vec::new(),
    };
    let Some(config) = config else {
        setup.absent.push((
            family_id(),
            "AWS not configured: add an [aws] section (profiles, regions) to the config file; \
             credentials come from ~/.aws, AWS_PROFILE or AWS_ACCESS_KEY_ID"
                .into(),
        ));
        return setup;
    };
    let profiles: Vec<Option<String>> = if config.profiles.is_empty() {
        vec![None]
    } else {
        config.profiles.iter().cloned().map(Some).collect()
    };
    for profile in profiles {
        let regions: Vec<Option<String>> = if config.regions.is_empty() {
            vec![None]
        } else {
            config.regions.iter().cloned().map(Some).collect()
        };
        for region in regions {
            let target = client::Target {
                profile: profile.clone(),
                region,
            };
            let sdk = client::load(&target, config, files).await;
            let Some(region) = sdk.region().map(|r| r.to_string()) else {
                setup.absent.push((
                    ConnectorId::new(format!("aws:{}", target.profile_label())),
                    format!(
                        "profile `{}` names no region: add `regions = [\"eu-west-1\"]` to [aws] \
                         or `region` to the profile",
                        target.profile_label()
                    ),
                ));
                continue;
            };
            let id = ConnectorId::new(format!("aws:{}/{region}", target.profile_label()));
            let status = match client::check_credentials(&sdk, &target).await {
                CredentialCheck::Missing(line) => {
                    setup.absent.push((id, line));
                    continue;
                }
                CredentialCheck::Unusable(line) => (ConnectorState::Failing, line),
                CredentialCheck::Usable => {
                    (ConnectorState::Ok, "connected; first poll pending".into())
                }
            };
            setup.connectors.push(Arc::new(AwsConnector::new(
                id,
                target.profile_label(),
                &region,
                &sdk,
                config,
                clock.clone(),
                status,
            )));
        }
    }
    setup
}

/// What the poller remembers between polls.
struct PollState {
    schedule: poll::Schedule,
    rng: rand_chacha::ChaCha8Rng,
    /// Last seen health per instance, and its transitions (status-check history).
    checks: HashMap<ResourceId, (Health, VecDeque<InfraEvent>)>,
}

/// One profile × region: its EC2 instances and ECS services.
pub struct AwsConnector {
    id: ConnectorId,
    ctx: Context,
    ec2: aws_sdk_ec2::Client,
    ecs: Option<aws_sdk_ecs::Client>,
    cloudtrail: Option<aws_sdk_cloudtrail::Client>,
    cpu: Option<cloudwatch::CpuReader>,
    wait: Wait,
    interval: Duration,
    clock: SharedClock,
    poll: tokio::sync::Mutex<PollState>,
    status: Mutex<(ConnectorState, String)>,
}

impl AwsConnector {
    fn new(
        id: ConnectorId,
        profile: &str,
        region: &str,
        sdk: &aws_config::SdkConfig,
        config: &AwsConfig,
        clock: SharedClock,
        status: (ConnectorState, String),
    ) -> Self {
        Self {
            ctx: Context {
                connector: id.clone(),
                prefix: IdPrefix::new(profile, region),
                team_tag: config.team_tag.clone(),
                environment_tag: config.environment_tag.clone(),
            },
            id,
            ec2: aws_sdk_ec2::Client::new(sdk),
            ecs: config.ecs.then(|| aws_sdk_ecs::Client::new(sdk)),
            cloudtrail: config
                .cloudtrail
                .then(|| aws_sdk_cloudtrail::Client::new(sdk)),
            cpu: config.cloudwatch.then(|| {
                cloudwatch::CpuReader::new(
                    aws_sdk_cloudwatch::Client::new(sdk),
                    cloudwatch::Window {
                        secs: config.cpu_window_secs,
                        period_secs: config.cpu_period_secs,
                    },
                )
            }),
            wait: Wait {
                interval: Duration::from_millis(config.action_poll_interval_ms),
                timeout: Duration::from_secs(config.action_timeout_secs),
            },
            interval: config.poll_interval(),
            clock,
            poll: tokio::sync::Mutex::new(PollState {
                schedule: poll::Schedule::new(
                    config.poll_interval(),
                    config.poll_jitter(),
                    config.max_backoff(),
                ),
                rng: rand_chacha::ChaCha8Rng::from_os_rng(),
                checks: HashMap::new(),
            }),
            status: Mutex::new(status),
        }
    }

    fn set_status(&self, state: ConnectorState, message: String) {
        // A poisoned lock only means a panic elsewhere mid-assignment; the pair is still whole.
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        *s = (state, message);
    }

    /// One full listing: every instance (with its CPU), then every service.
    async fn fetch(&self) -> std::result::Result<Vec<Resource>, AwsFailure> {
        let mut resources = ec2::list(&self.ec2, &self.ctx).await?;
        self.add_cpu(&mut resources).await;
        if let Some(ecs) = &self.ecs {
            match ecs::list(ecs, &self.ctx).await {
                Ok(services) => resources.extend(services),
                // ECS is optional: an account without ECS permission still has a fleet.
                Err(f) if f.kind == FailureKind::Denied => {
                    tracing::warn!(connector = %self.id, "ECS not readable: {}", f.message);
                }
                Err(f) => return Err(f),
            }
        }
        Ok(resources)
    }

    /// Adds each running instance's CPU over the window from CloudWatch, or
    /// why it is unknown. A CloudWatch failure never fails the listing.
    async fn add_cpu(&self, resources: &mut [Resource]) {
        let Some(reader) = &self.cpu else {
            return;
        };
        let running: Vec<(usize, String)> = resources
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.kind == ec2::KIND
                    && r.attributes.get("state").map(String::as_str) == Some("running")
            })
            .filter_map(|(i, r)| match self.ctx.prefix.parse(&r.id) {
                Ok(Target::Instance(id)) => Some((i, id)),
                _ => None,
            })
            .collect();
        if running.is_empty() {
            return;
        }
        let ids: Vec<String> = running.iter().map(|(_, id)| id.clone()).collect();
        let usage = reader.read(&ids, self.clock.now()).await;
        for (i, id) in running {
            if let Some(u) = usage.get(&id) {
                u.publish(&mut resources[i].attributes);
            }
        }
    }

    /// Records status-check transitions of instances (the history `events` reports).
    fn note_checks(
        &self,
        checks: &mut HashMap<ResourceId, (Health, VecDeque<InfraEvent>)>,
        resources: &[Resource],
        now: DateTime<Utc>,
    ) {
        for r in resources.iter().filter(|r| r.kind == ec2::KIND) {
            match checks.get_mut(&r.id) {
                Some((last, _)) if *last == r.health => {}
                Some((last, history)) => {
                    *last = r.health.clone();
                    history.push_back(InfraEvent {
                        at: now,
                        resource: r.id.clone(),
                        kind: if r.health.status == HealthStatus::Healthy {
                            "Normal"
                        } else {
                            "Warning"
                        }
                        .into(),
                        reason: if r.health.reason.is_empty() {
                            "status_checks_ok".into()
                        } else {
                            r.health.reason.clone()
                        },
                        message: format!("{}: {}", r.health.status.as_str(), r.health.message),
                    });
                    while history.len() > CHECK_HISTORY {
                        history.pop_front();
                    }
                }
                None => {
                    checks.insert(r.id.clone(), (r.health.clone(), VecDeque::new()));
                }
            }
        }
    }

    fn failure_status(&self, f: &AwsFailure, backoff: Duration) -> (ConnectorState, String) {
        let retry = format!(
            "next try in {}s; the last known fleet is kept",
            backoff.as_secs()
        );
        match f.kind {
            FailureKind::Throttled => (
                ConnectorState::Degraded,
                format!("throttled by AWS ({}); {retry}", f.message),
            ),
            FailureKind::Expired => (
                ConnectorState::Failing,
                format!(
                    "AWS credentials expired or invalid ({}): refresh them (`aws sso login` or new keys); {retry}",
                    f.message
                ),
            ),
            FailureKind::Denied => (
                ConnectorState::Failing,
                format!("no permission to list the fleet ({}); {retry}", f.message),
            ),
            FailureKind::NotFound | FailureKind::Other => (
                ConnectorState::Degraded,
                format!("poll failed ({}); {retry}", f.message),
            ),
        }
    }

    async fn instance_health(&self, id: &ResourceId, instance_id: &str) -> Result<Health> {
        let facts = ec2::facts(&self.ec2, id, instance_id).await?;
        let out = self
            .ec2
            .describe_instance_status()
            .instance_ids(instance_id)
            .include_all_instances(true)
            .send()
            .await
            .map_err(|e| AwsFailure::of("DescribeInstanceStatus", &e))?;
        Ok(ec2::health(&facts.state, out.instance_statuses().first()))
    }

    fn ecs(&self, id: &ResourceId) -> Result<&aws_sdk_ecs::Client> {
        self.ecs
            .as_ref()
            .ok_or_else(|| ConnectorError::NotFound(id.clone()))
    }

    async fn changes(&self, id: &ResourceId, name: &str, window: TimeWindow) -> Vec<InfraEvent> {
        let Some(ct) = &self.cloudtrail else {
            return Vec::new();
        };
        match cloudtrail::changes(ct, id, name, window).await {
            Ok(events) => events,
            // Evidence is best effort: a missing CloudTrail permission leaves the rest.
            Err(f) => {
                tracing::warn!(connector = %self.id, "CloudTrail lookup for {name} failed: {}", f.message);
                Vec::new()
            }
        }
    }
}

/// What a snapshot's `data` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Recorded {
    Ec2Instance(ec2::InstanceFacts),
    EcsService(ecs::ServiceFacts),
}

#[async_trait]
impl InfraConnector for AwsConnector {
    fn id(&self) -> &ConnectorId {
        &self.id
    }

    fn provider(&self) -> Provider {
        Provider::Aws
    }

    async fn list_resources(&self, scope: &Scope) -> Result<Vec<Resource>> {
        let mut all = self.fetch().await?;
        if !scope.kinds.is_empty() {
            all.retain(|r| scope.kinds.contains(&r.kind));
        }
        Ok(all)
    }

    async fn refresh(&self, scope: &Scope) -> Result<Listing> {
        let mut poll = self.poll.lock().await;
        let now = self.clock.now();
        if !poll.schedule.due(now) {
            return Ok(Listing::Unchanged);
        }
        let state = &mut *poll;
        match self.fetch().await {
            Ok(mut resources) => {
                state.schedule.succeeded(now, &mut state.rng);
                self.note_checks(&mut state.checks, &resources, now);
                self.set_status(
                    ConnectorState::Ok,
                    format!("answering; polled every {}s", self.interval.as_secs()),
                );
                if !scope.kinds.is_empty() {
                    resources.retain(|r| scope.kinds.contains(&r.kind));
                }
                Ok(Listing::Fresh(resources))
            }
            Err(f) => {
                let backoff = state.schedule.failed(now, &mut state.rng);
                let (s, line) = self.failure_status(&f, backoff);
                tracing::warn!(connector = %self.id, "{line}");
                self.set_status(s, line);
                Err(f.into())
            }
        }
    }

    fn status(&self) -> Option<(ConnectorState, String)> {
        Some(
            self.status
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }

    async fn health(&self, id: &ResourceId) -> Result<Health> {
        match self.ctx.prefix.parse(id)? {
            Target::Instance(i) => self.instance_health(id, &i).await,
            Target::Service { cluster, service } => {
                ecs::service_health(self.ecs(id)?, id, &cluster, &service).await
            }
        }
    }

    async fn events(&self, id: &ResourceId, window: TimeWindow) -> Result<Vec<InfraEvent>> {
        let mut out = match self.ctx.prefix.parse(id)? {
            Target::Instance(instance) => {
                let mut out = self.changes(id, &instance, window).await;
                let poll = self.poll.lock().await;
                if let Some((_, history)) = poll.checks.get(id) {
                    out.extend(
                        history
                            .iter()
                            .filter(|e| e.at >= window.from && e.at <= window.to)
                            .cloned(),
                    );
                }
                out
            }
            Target::Service { cluster, service } => {
                let mut out = ecs::events(self.ecs(id)?, id, &cluster, &service, window).await?;
                out.extend(self.changes(id, &service, window).await);
                out
            }
        };
        out.sort_by_key(|e| e.at);
        Ok(out)
    }

    async fn metrics(&self, id: &ResourceId) -> Result<BTreeMap<String, f64>> {
        let mut m = BTreeMap::new();
        match self.ctx.prefix.parse(id)? {
            Target::Instance(i) => {
                let health = self.instance_health(id, &i).await?;
                m.insert(
                    "status_checks_passed".into(),
                    if health.status == HealthStatus::Healthy {
                        1.0
                    } else {
                        0.0
                    },
                );
            }
            Target::Service { cluster, service } => {
                let f = ecs::facts(self.ecs(id)?, id, &cluster, &service).await?;
                m.insert("desired_count".into(), f.desired_count as f64);
                m.insert("running_count".into(), f.running_count as f64);
            }
        }
        Ok(m)
    }

    async fn snapshot(&self, id: &ResourceId) -> Result<Snapshot> {
        let (recorded, summary) = match self.ctx.prefix.parse(id)? {
            Target::Instance(i) => {
                let f = ec2::facts(&self.ec2, id, &i).await?;
                let summary = format!("{} {} {}", f.instance_id, f.state, f.instance_type);
                (Recorded::Ec2Instance(f), summary)
            }
            Target::Service { cluster, service } => {
                let f = ecs::facts(self.ecs(id)?, id, &cluster, &service).await?;
                let summary = format!(
                    "{cluster}/{service}: {} task(s) of {}",
                    f.desired_count, f.task_definition
                );
                (Recorded::EcsService(f), summary)
            }
        };
        let data = serde_json::to_value(&recorded).map_err(|e| {
            ConnectorError::Backend(format!("snapshot of {id} does not serialise: {e}"))
        })?;
        Ok(Snapshot {
            resource: id.clone(),
            connector: self.id.clone(),
            taken_at: self.clock.now(),
            data,
            summary,
        })
    }

    async fn preview(&self, action: &Action) -> Result<crate::event::Preview> {
        let id = &action.target;
        match self.ctx.prefix.parse(id)? {
            Target::Instance(i) => {
                preview::check(action, preview::instance_takes(&action.name))?;
                preview::instance(action, &ec2::facts(&self.ec2, id, &i).await?)
            }
            Target::Service { cluster, service } => {
                preview::check(action, preview::service_takes(&action.name))?;
                let f = ecs::facts(self.ecs(id)?, id, &cluster, &service).await?;
                preview::service(action, &f)
            }
        }
    }

    async fn execute(&self, action: &Action) -> Result<ActionOutcome> {
        let id = &action.target;
        // A parameter EC2 or ECS would not be given is refused, as in the preview.
        match self.ctx.prefix.parse(id)? {
            Target::Instance(_) => preview::check(action, preview::instance_takes(&action.name))?,
            Target::Service { .. } => preview::check(action, preview::service_takes(&action.name))?,
        }
        let result = match self.ctx.prefix.parse(id)? {
            Target::Instance(i) => ec2::execute(&self.ec2, id, &i, action, &self.wait).await,
            Target::Service { cluster, service } => {
                ecs::execute(self.ecs(id)?, id, &cluster, &service, action, &self.wait).await
            }
        };
        // Whatever happened, the next discovery cycle should look again.
        self.poll.lock().await.schedule.poll_soon();
        result
    }

    async fn restore(&self, snapshot: &Snapshot) -> Result<ActionOutcome> {
        let id = &snapshot.resource;
        let recorded: Recorded = super::recorded_state(snapshot, &self.id)?;
        let result = match (self.ctx.prefix.parse(id)?, recorded) {
            (Target::Instance(i), Recorded::Ec2Instance(f)) if f.instance_id == i => {
                ec2::restore(&self.ec2, id, &f, &self.wait).await
            }
            (Target::Service { cluster, service }, Recorded::EcsService(f))
                if f.cluster == cluster && f.service == service =>
            {
                ecs::restore(self.ecs(id)?, id, &f, &self.wait).await
            }
            _ => Err(ConnectorError::BadSnapshot(
                id.clone(),
                "the recorded state is of another resource".into(),
            )),
        };
        self.poll.lock().await.schedule.poll_soon();
        result
    }
}

/// A resource's name, team, environment and labels, from its tags.
struct Tagged {
    name: Option<String>,
    team: String,
    environment: Environment,
    labels: StringMap,
}

/// Reads tags: `Name`, the team tag and the environment tag. An instance with
/// no (or an unknown) environment tag counts as production, the strictest
/// reading, so policy never treats an unlabelled machine as a sandbox.
fn tagged(tags: &[(&str, &str)], ctx: &Context) -> Tagged {
    let mut labels = StringMap::new();
    let mut name = None;
    let mut team = String::new();
    let mut env_tag = None;
    for (k, v) in tags {
        if *k == "Name" {
            name = Some(v.to_string());
        }
        if k.eq_ignore_ascii_case(&ctx.team_tag) {
            team = v.to_string();
        }
        if k.eq_ignore_ascii_case(&ctx.environment_tag) {
            env_tag = Some(*v);
        }
        labels.insert(k.to_string(), v.to_string());
    }
    let environment = match env_tag.map(|v| v.to_ascii_lowercase()).as_deref() {
        Some("dev" | "development" | "test" | "qa" | "sandbox") => Environment::Development,
        Some("stg" | "stage" | "staging" | "preprod") => Environment::Staging,
        _ => Environment::Production,
    };
    // Policies read `team` and `environment` labels by these canonical names.
    if !team.is_empty() {
        labels.insert("team".into(), team.clone());
    }
    labels.insert("environment".into(), environment.as_str().into());
    Tagged {
        name,
        team,
        environment,
        labels,
    }
}

/// An SDK timestamp as a chrono time (out-of-range values fall to the epoch).
pub(crate) fn smithy_time(t: &aws_sdk_ec2::primitives::DateTime) -> DateTime<Utc> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos()).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// The outcome of an action that may fail after it changed something: once
/// a step was taken, a failure is reported with the steps, so the
/// remediation shows what was done and restores; before any step it stays an
/// error.
pub(super) fn outcome_of(result: Result<String>, steps: Vec<String>) -> Result<ActionOutcome> {
    match result {
        Ok(message) => Ok(ActionOutcome {
            success: true,
            message,
            steps,
        }),
        Err(e) if !steps.is_empty() => Ok(ActionOutcome {
            success: false,
            message: e.to_string(),
            steps,
        }),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context {
            connector: ConnectorId::new("aws:test/eu-west-1"),
            prefix: IdPrefix::new("test", "eu-west-1"),
            team_tag: "team".into(),
            environment_tag: "environment".into(),
        }
    }

    #[test]
    fn tags_become_team_environment_and_labels() {
        let t = tagged(
            &[
                ("Name", "api-1"),
                ("Team", "payments"),
                ("environment", "staging"),
            ],
            &ctx(),
        );
        assert_eq!(t.name.as_deref(), Some("api-1"));
        assert_eq!(t.team, "payments");
        assert_eq!(t.environment, Environment::Staging);
        assert_eq!(t.labels["team"], "payments");
        assert_eq!(t.labels["environment"], "staging");
    }

    #[test]
    fn untagged_environment_is_treated_as_production() {
        let t = tagged(&[("environment", "mystery")], &ctx());
        assert_eq!(t.environment, Environment::Production);
        assert_eq!(tagged(&[], &ctx()).environment, Environment::Production);
    }
}
