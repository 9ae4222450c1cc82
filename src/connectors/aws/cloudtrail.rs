//! CloudTrail evidence: who changed a resource just before an incident, from
//! `LookupEvents` by resource name over the investigation's window. Read-only
//! calls (Describe*, List*) are left out: they change nothing.

use aws_sdk_cloudtrail::Client;
use aws_sdk_cloudtrail::primitives::DateTime as SmithyTime;
use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};

use super::client::AwsFailure;
use super::smithy_time;
use crate::connectors::TimeWindow;
use crate::event::{InfraEvent, ResourceId};

/// At most this many changes are kept per lookup (newest first from the API).
const MAX_EVENTS: usize = 200;

/// The write events CloudTrail recorded for `name` inside the window, oldest first.
pub(super) async fn changes(
    client: &Client,
    id: &ResourceId,
    name: &str,
    window: TimeWindow,
) -> Result<Vec<InfraEvent>, AwsFailure> {
    let attribute = LookupAttribute::builder()
        .attribute_key(LookupAttributeKey::ResourceName)
        .attribute_value(name)
        .build()
        .map_err(|e| AwsFailure {
            kind: super::client::FailureKind::Other,
            message: format!("LookupEvents: {e}"),
        })?;
    let mut pages = client
        .lookup_events()
        .lookup_attributes(attribute)
        .start_time(SmithyTime::from_secs(window.from.timestamp()))
        .end_time(SmithyTime::from_secs(window.to.timestamp()))
        .into_paginator()
        .items()
        .send();
    let mut out = Vec::new();
    while let Some(event) = pages.next().await {
        let event = event.map_err(|e| AwsFailure::of("LookupEvents", &e))?;
        if event.read_only() == Some("true") {
            continue;
        }
        let Some(at) = event.event_time().map(smithy_time) else {
            continue;
        };
        let who = event.username().unwrap_or("someone");
        let what = event.event_name().unwrap_or("an unnamed call");
        let source = event.event_source().unwrap_or("an unknown service");
        out.push(InfraEvent {
            at,
            resource: id.clone(),
            kind: "change".into(),
            reason: what.to_string(),
            message: format!("{who} called {what} on {name} via {source}"),
        });
        if out.len() >= MAX_EVENTS {
            break;
        }
    }
    out.sort_by_key(|e| e.at);
    Ok(out)
}
