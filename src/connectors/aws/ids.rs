//! Resource ids of this connector: `aws/<profile>/<region>/ec2/<instance-id>`
//! and `aws/<profile>/<region>/ecs/<cluster>/<service>`. The prefix names the
//! connector instance, so an id can never be routed to another account's fleet.

use crate::connectors::ConnectorError;
use crate::event::ResourceId;

/// What an id points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    Instance(String),
    Service { cluster: String, service: String },
}

/// The id prefix of one connector instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct IdPrefix(String);

impl IdPrefix {
    pub fn new(profile: &str, region: &str) -> Self {
        Self(format!("aws/{profile}/{region}/"))
    }

    pub fn instance(&self, instance_id: &str) -> ResourceId {
        ResourceId(format!("{}ec2/{instance_id}", self.0))
    }

    pub fn service(&self, cluster: &str, service: &str) -> ResourceId {
        ResourceId(format!("{}ecs/{cluster}/{service}", self.0))
    }

    /// Reads an id of this connector; any other id is `NotFound`.
    pub fn parse(&self, id: &ResourceId) -> Result<Target, ConnectorError> {
        let not_found = || ConnectorError::NotFound(id.clone());
        let rest = id.as_str().strip_prefix(&self.0).ok_or_else(not_found)?;
        if let Some(instance) = rest.strip_prefix("ec2/") {
            if instance.is_empty() || instance.contains('/') {
                return Err(not_found());
            }
            return Ok(Target::Instance(instance.to_string()));
        }
        if let Some(rest) = rest.strip_prefix("ecs/") {
            let (cluster, service) = rest.split_once('/').ok_or_else(not_found)?;
            if cluster.is_empty() || service.is_empty() || service.contains('/') {
                return Err(not_found());
            }
            return Ok(Target::Service {
                cluster: cluster.to_string(),
                service: service.to_string(),
            });
        }
        Err(not_found())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        let p = IdPrefix::new("prod", "eu-west-1");
        let i = p.instance("i-0abc");
        assert_eq!(i.as_str(), "aws/prod/eu-west-1/ec2/i-0abc");
        assert_eq!(p.parse(&i).unwrap(), Target::Instance("i-0abc".into()));
        let s = p.service("web", "checkout");
        assert_eq!(
            p.parse(&s).unwrap(),
            Target::Service {
                cluster: "web".into(),
                service: "checkout".into()
            }
        );
    }

    #[test]
    fn another_connectors_id_is_not_found() {
        let p = IdPrefix::new("prod", "eu-west-1");
        let other = IdPrefix::new("prod", "us-east-1").instance("i-1");
        assert!(matches!(p.parse(&other), Err(ConnectorError::NotFound(_))));
        assert!(
            p.parse(&ResourceId::new("aws/prod/eu-west-1/ec2/"))
                .is_err()
        );
        assert!(
            p.parse(&ResourceId::new("aws/prod/eu-west-1/ecs/only"))
                .is_err()
        );
    }
}
