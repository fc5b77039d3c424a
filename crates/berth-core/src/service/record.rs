//! The stored form of a service: the ECS `Service` shape plus the controller's own state
//! (which tasks it has accounted for, its backoff, the last completed deployment), which
//! DescribeServices never shows. Everything the controller needs survives a restart here.

use super::backoff::Backoff;
use crate::arn::ArnContext;
use crate::model::service::{Deployment, Service, ServiceEvent};
use crate::model::status::DeploymentStatus;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// Most events a service keeps (and DescribeServices returns), newest first.
pub const MAX_EVENTS: usize = 100;

/// A service as stored under `/services/{cluster}/{name}`: the ECS shape with its tags at the
/// top level (as every taggable record), and the controller's state beside it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ServiceRecord {
    #[serde(flatten)]
    pub service: Service,
    /// Internal: never returned by the API.
    #[serde(default, rename = "berthState")]
    pub state: ServiceState,
}

/// What the service controller remembers between reconciles.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceState {
    /// Per deployment (same ids as `deployments[]`): where it belongs in the service
    /// deployment history.
    #[serde(default)]
    pub deployments: Vec<DeploymentState>,
    /// Ids of STOPPED tasks already counted (failures, backoff), so none is counted twice.
    #[serde(default)]
    pub accounted: Vec<String>,
    #[serde(default)]
    pub backoff: Backoff,
    /// The deployment that last completed: what a rollback returns to.
    pub last_completed: Option<CompletedDeployment>,
    /// Whether the service was in a steady state at the last reconcile, and since when.
    #[serde(default)]
    pub steady: bool,
    pub steady_since: Option<f64>,
    /// The clientToken of the CreateService call that made the service (idempotent retries).
    pub client_token: Option<String>,
}

/// The controller's facts about one deployment.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentState {
    /// `ecs-svc/...`, as in `deployments[].id`.
    pub id: String,
    /// The service deployment (ListServiceDeployments) this deployment carries out.
    pub service_deployment_arn: String,
    /// The service revision it runs.
    pub service_revision_arn: String,
    /// When this deployment is a rollback: the id of the deployment it rolls back.
    pub rollback_of: Option<String>,
}

/// A deployment that completed: enough to roll back to it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompletedDeployment {
    pub deployment_id: String,
    pub task_definition: String,
    pub service_revision_arn: String,
}

/// Where new identifiers come from (random in the server, counters in tests).
pub trait IdSource {
    /// A new deployment id, `ecs-svc/` and 19 digits.
    fn deployment_id(&mut self) -> String;
    /// A new event id.
    fn event_id(&mut self) -> String;
}

impl ServiceRecord {
    /// The service's name.
    pub fn name(&self) -> &str {
        self.service.service_name.as_deref().unwrap_or("")
    }

    /// Whether the service runs one task per instance.
    pub fn is_daemon(&self) -> bool {
        self.service.scheduling_strategy.as_deref() == Some("DAEMON")
    }

    /// Whether an external controller deploys the service (EXTERNAL or CODE_DEPLOY): it runs
    /// task sets, not deployments.
    pub fn runs_task_sets(&self) -> bool {
        super::task_sets::runs_task_sets(
            self.service
                .deployment_controller
                .as_ref()
                .map(|c| c.type_.as_str()),
        )
    }

    /// The deployments, oldest last as ECS lists them (PRIMARY first).
    pub fn deployments(&self) -> &[Deployment] {
        self.service.deployments.as_deref().unwrap_or_default()
    }

    /// The PRIMARY deployment.
    pub fn primary(&self) -> Option<&Deployment> {
        self.deployments()
            .iter()
            .find(|d| d.status == Some(DeploymentStatus::Primary))
    }

    /// The PRIMARY deployment, to change it.
    pub fn primary_mut(&mut self) -> Option<&mut Deployment> {
        self.service
            .deployments
            .get_or_insert_with(Vec::new)
            .iter_mut()
            .find(|d| d.status == Some(DeploymentStatus::Primary))
    }

    /// The deployment with `id`, to change it.
    pub fn deployment_mut(&mut self, id: &str) -> Option<&mut Deployment> {
        self.service
            .deployments
            .get_or_insert_with(Vec::new)
            .iter_mut()
            .find(|d| d.id.as_deref() == Some(id))
    }

    /// The controller's facts about deployment `id`.
    pub fn deployment_state(&self, id: &str) -> Option<&DeploymentState> {
        self.state.deployments.iter().find(|d| d.id == id)
    }

    /// Adds an event at the head of `events[]`, keeping the newest [`MAX_EVENTS`].
    pub fn push_event(&mut self, ids: &mut dyn IdSource, message: String, now: f64) {
        let events = self.service.events.get_or_insert_with(Vec::new);
        events.insert(
            0,
            ServiceEvent {
                id: Some(ids.event_id()),
                created_at: Some(now),
                message: Some(message),
            },
        );
        events.truncate(MAX_EVENTS);
    }

    /// Adds an event unless the same message was logged within the last `window` seconds:
    /// conditions that hold for a while (no room, backoff) are said once in a while, not on
    /// every reconcile.
    pub fn push_event_throttled(
        &mut self,
        ids: &mut dyn IdSource,
        message: String,
        now: f64,
        window: f64,
    ) {
        let recent = self.service.events.iter().flatten().any(|e| {
            e.message.as_deref() == Some(message.as_str())
                && e.created_at.is_some_and(|at| now - at < window)
        });
        if !recent {
            self.push_event(ids, message, now);
        }
    }
}

/// `arn:aws:ecs:{region}:{account}:service-deployment/{cluster}/{service}/{id}`
pub fn service_deployment_arn(arns: &ArnContext, cluster: &str, service: &str, id: &str) -> String {
    format!(
        "arn:aws:ecs:{}:{}:service-deployment/{cluster}/{service}/{id}",
        arns.region, arns.account_id
    )
}

/// `arn:aws:ecs:{region}:{account}:service-revision/{cluster}/{service}/{id}`
pub fn service_revision_arn(arns: &ArnContext, cluster: &str, service: &str, id: &str) -> String {
    format!(
        "arn:aws:ecs:{}:{}:service-revision/{cluster}/{service}/{id}",
        arns.region, arns.account_id
    )
}

/// The `(cluster, service, id)` of a service deployment or service revision ARN of `kind`
/// (`service-deployment` or `service-revision`).
pub fn parse_history_arn(arn: &str, kind: &str) -> Option<(String, String, String)> {
    let parsed = crate::arn::Arn::parse(arn)?;
    if parsed.resource_type != kind {
        return None;
    }
    match parsed.path.as_slice() {
        [cluster, service, id] if !cluster.is_empty() && !service.is_empty() && !id.is_empty() => {
            Some((cluster.clone(), service.clone(), id.clone()))
        }
        _ => None,
    }
}

/// The last path element of a deployment id (`ecs-svc/123` → `123`).
pub fn deployment_number(deployment_id: &str) -> &str {
    deployment_id.rsplit('/').next().unwrap_or(deployment_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::test_ids::Counter;

    #[test]
    fn internal_state_sits_beside_the_ecs_shape_and_tags_stay_top_level() {
        let record = ServiceRecord {
            service: Service {
                service_name: Some("web".into()),
                tags: Some(vec![]),
                ..Service::default()
            },
            state: ServiceState {
                accounted: vec!["t1".into()],
                ..ServiceState::default()
            },
        };
        let json = serde_json::to_value(&record).expect("serializes");
        assert_eq!(json["serviceName"], "web");
        assert_eq!(json["tags"], serde_json::json!([]));
        assert_eq!(json["berthState"]["accounted"], serde_json::json!(["t1"]));
        let back: ServiceRecord = serde_json::from_value(json).expect("decodes");
        assert_eq!(back, record);
    }

    #[test]
    fn events_are_newest_first_bounded_and_throttled() {
        let mut record = ServiceRecord::default();
        let mut ids = Counter::default();
        for i in 0..(MAX_EVENTS + 5) {
            record.push_event(&mut ids, format!("m{i}"), i as f64);
        }
        let events = record.service.events.as_ref().expect("events");
        assert_eq!(events.len(), MAX_EVENTS);
        assert_eq!(
            events[0].message.as_deref(),
            Some(format!("m{}", MAX_EVENTS + 4).as_str())
        );
        record.push_event_throttled(&mut ids, "same".into(), 1000.0, 60.0);
        record.push_event_throttled(&mut ids, "same".into(), 1030.0, 60.0);
        record.push_event_throttled(&mut ids, "same".into(), 1061.0, 60.0);
        let same = record
            .service
            .events
            .iter()
            .flatten()
            .filter(|e| e.message.as_deref() == Some("same"))
            .count();
        assert_eq!(same, 2);
    }

    #[test]
    fn history_arns_parse_into_cluster_service_and_id() {
        let arns = ArnContext::new("us-east-1", "000000000000");
        let arn = service_deployment_arn(&arns, "demo", "web", "abc");
        assert_eq!(
            parse_history_arn(&arn, "service-deployment"),
            Some(("demo".into(), "web".into(), "abc".into()))
        );
        assert_eq!(parse_history_arn(&arn, "service-revision"), None);
        assert_eq!(parse_history_arn("nope", "service-revision"), None);
        assert_eq!(deployment_number("ecs-svc/42"), "42");
    }
}
