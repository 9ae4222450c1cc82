//! What an AWS action would change, from the instance or service as EC2 and
//! ECS describe it now, and the parameters each action takes (read by the
//! preview and by execution alike).

use aws_sdk_ec2::types::InstanceType;

use super::ec2::InstanceFacts;
use super::ecs::ServiceFacts;
use crate::connectors::{ConnectorError, Result, check_params, check_stated, preview_of};
use crate::event::{Action, Change, Preview};

/// The parameters an instance action takes; `None` for an action EC2 is not asked to do.
pub fn instance_takes(action: &str) -> Option<&'static [&'static str]> {
    Some(match action {
        "reboot_instance" | "stop_instance" | "start_instance" => &[],
        "resize_instance" => &["instance_type", "from_instance_type"],
        _ => return None,
    })
}

/// The parameters a service action takes; `None` for an action ECS is not asked to do.
pub fn service_takes(action: &str) -> Option<&'static [&'static str]> {
    Some(match action {
        "force_new_deployment" => &[],
        "set_desired_count" => &["desired_count"],
        _ => return None,
    })
}

/// Refuses an action the target does not support or a parameter it would ignore.
pub fn check(action: &Action, takes: Option<&[&str]>) -> Result<()> {
    let takes = takes.ok_or_else(|| ConnectorError::Unsupported {
        action: action.name.clone(),
        resource: action.target.clone(),
    })?;
    check_params(action, takes)
}

fn bad(action: &Action, param: &str, reason: String) -> ConnectorError {
    ConnectorError::BadParam {
        action: action.name.clone(),
        param: param.into(),
        reason,
    }
}

/// The instance type a resize asks for: a real EC2 type, not the one the
/// instance `f` already has.
pub fn wanted_type<'a>(action: &'a Action, f: &InstanceFacts) -> Result<&'a str> {
    let wanted = action
        .params
        .get("instance_type")
        .map(String::as_str)
        .unwrap_or("");
    if !InstanceType::values().contains(&wanted) {
        return Err(bad(
            action,
            "instance_type",
            format!("`{wanted}` is not an EC2 instance type"),
        ));
    }
    if wanted == f.instance_type {
        return Err(bad(
            action,
            "instance_type",
            format!("{} already is {wanted}", f.instance_id),
        ));
    }
    Ok(wanted)
}

/// The task count a `set_desired_count` asks for (0 to 10000).
pub fn desired_count(action: &Action) -> Result<i32> {
    let raw = action
        .params
        .get("desired_count")
        .map(String::as_str)
        .unwrap_or("");
    raw.trim()
        .parse()
        .ok()
        .filter(|n| (0..=10_000).contains(n))
        .ok_or_else(|| {
            bad(
                action,
                "desired_count",
                format!("`{raw}` is not a count between 0 and 10000"),
            )
        })
}

/// What an instance action would change on the instance `f` describes.
pub fn instance(action: &Action, f: &InstanceFacts) -> Result<Preview> {
    check(action, instance_takes(&action.name))?;
    let state = |need: &[&str], why: &str| {
        if need.contains(&f.state.as_str()) {
            Ok(())
        } else {
            Err(bad(
                action,
                "state",
                format!("{} is {}: {why}", f.instance_id, f.state),
            ))
        }
    };
    let mut notes = Vec::new();
    let changes = match action.name.as_str() {
        "reboot_instance" => {
            state(&["running"], "only a running instance can be rebooted")?;
            vec![Change::new("state", &f.state, "rebooted, then running")]
        }
        "stop_instance" => {
            state(&["running"], "only a running instance can be stopped")?;
            notes.push("instance-store volumes lose their data when it stops".into());
            vec![Change::new("state", &f.state, "stopped")]
        }
        "start_instance" => {
            state(&["stopped"], "only a stopped instance can be started")?;
            vec![Change::new("state", &f.state, "running")]
        }
        _ => {
            let wanted = wanted_type(action, f)?;
            check_stated(action, "from_instance_type", &f.instance_type)?;
            state(
                &["running", "stopped"],
                "resize needs a running or stopped instance",
            )?;
            let mut changes = vec![Change::new("instance type", &f.instance_type, wanted)];
            if f.state == "running" {
                notes.push("the instance is stopped to change its type, then started".into());
                changes.push(Change::new("state", "running", "stopped, then running"));
            }
            changes
        }
    };
    let mut p = preview_of(action, format!("EC2 instance {}", f.instance_id), changes);
    p.notes.extend(notes);
    Ok(p)
}

/// What a service action would change on the service `f` describes.
pub fn service(action: &Action, f: &ServiceFacts) -> Result<Preview> {
    check(action, service_takes(&action.name))?;
    let changes = match action.name.as_str() {
        "force_new_deployment" => vec![Change::new(
            "deployment",
            f.primary_deployment.as_deref().unwrap_or("none"),
            format!(
                "a new one of {} ({} tasks replaced)",
                f.task_definition, f.desired_count
            ),
        )],
        _ => {
            let wanted = desired_count(action)?;
            vec![Change::new(
                "desired count",
                f.desired_count.to_string(),
                wanted.to_string(),
            )]
        }
    };
    Ok(preview_of(
        action,
        format!("ECS service {}/{}", f.cluster, f.service),
        changes,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ResourceId;

    fn running(itype: &str) -> InstanceFacts {
        InstanceFacts {
            instance_id: "i-0abc".into(),
            state: "running".into(),
            instance_type: itype.into(),
        }
    }

    fn resize(to: &str) -> Action {
        Action::new(
            "resize_instance",
            ResourceId::new("aws/us-east-1/ec2/i-0abc"),
        )
        .with("instance_type", to)
    }

    #[test]
    fn a_resize_shows_the_live_type_and_the_stop_it_needs() {
        let p = instance(&resize("m5.large"), &running("m5.xlarge")).unwrap();
        assert_eq!(p.object, "EC2 instance i-0abc");
        assert_eq!(
            p.lines(),
            [
                "instance type: m5.xlarge → m5.large",
                "state: running → stopped, then running"
            ]
        );
    }

    #[test]
    fn a_stale_stated_type_and_unknown_types_are_refused() {
        // The policy judged a downsize from m5.8xlarge; the instance is m5.xlarge now.
        let err = instance(
            &resize("m5.large").with("from_instance_type", "m5.8xlarge"),
            &running("m5.xlarge"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("from_instance_type") && err.contains("live value is m5.xlarge"),
            "{err}"
        );
        let err = instance(&resize("m5.huge"), &running("m5.xlarge"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not an EC2 instance type"), "{err}");
        let err = instance(&resize("m5.xlarge"), &running("m5.xlarge"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("already is"), "{err}");
    }

    #[test]
    fn ignored_parameters_are_refused_by_name() {
        let stop = Action::new("stop_instance", ResourceId::new("x")).with("force", "true");
        let err = instance(&stop, &running("m5.large"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`force`") && err.contains("ignored"), "{err}");
        let svc = ServiceFacts {
            cluster: "prod".into(),
            service: "api".into(),
            desired_count: 4,
            running_count: 4,
            task_definition: "api:7".into(),
            primary_deployment: Some("ecs-svc/1".into()),
        };
        let scale = Action::new("set_desired_count", ResourceId::new("x"))
            .with("desired_count", "2")
            .with("replicas", "2");
        let err = service(&scale, &svc).unwrap_err().to_string();
        assert!(err.contains("`replicas`"), "{err}");
        let scale =
            Action::new("set_desired_count", ResourceId::new("x")).with("desired_count", "2");
        assert_eq!(
            service(&scale, &svc).unwrap().lines(),
            ["desired count: 4 → 2"]
        );
        let err = instance(
            &Action::new("rotate_secret", ResourceId::new("x")),
            &running("m5.large"),
        )
        .unwrap_err();
        assert!(matches!(err, ConnectorError::Unsupported { .. }));
    }

    #[test]
    fn state_rules_are_checked_before_approval() {
        let mut f = running("m5.large");
        f.state = "stopped".into();
        let err = instance(&Action::new("reboot_instance", ResourceId::new("x")), &f)
            .unwrap_err()
            .to_string();
        assert!(err.contains("only a running instance"), "{err}");
        assert_eq!(
            instance(&Action::new("start_instance", ResourceId::new("x")), &f)
                .unwrap()
                .lines(),
            ["state: stopped → running"]
        );
    }
}
