//! Scaling policies: PutScalingPolicy, DescribeScalingPolicies, DeleteScalingPolicy.
//!
//! A target tracking policy makes two CloudWatch alarms on its metric, as AWS does:
//! `TargetTracking-{resource}-AlarmHigh-{id}` (above the target for 3 periods) and, unless
//! `DisableScaleIn`, `…-AlarmLow-{id}` (below 90 % of the target for 15 periods). Its metric
//! is the service's average CPU or memory utilization (`ECSServiceAverage…`, one-minute
//! periods; the `…HighResolution` types use 20-second periods, as on ECS, so scaling reacts
//! within a minute) or a customized metric. A step scaling policy is run by the alarms a user points
//! at its ARN. Both are run by the [controller](super::controller).

use super::targets::{target_key, Target};
use super::{
    answer_page, authorize, ecs_resource, lists_ecs, not_found, validation, DESIRED_COUNT,
};
use crate::cloudwatch::alarms::{alarm_key, Alarm};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use berth_store::typed::{encode, Versioned};
use berth_store::{Compare, Txn};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Where policies are kept, by resource id and name.
pub const POLICIES: &str = "/autoscaling/policies/ecs/";

/// The store key of policy `name` of the target of `resource_id`.
pub fn policy_key(resource_id: &str, name: &str) -> String {
    format!("{POLICIES}{resource_id}/{name}")
}

/// A policy as stored: its configuration as given (Describe answers it back) and the alarms
/// it made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub name: String,
    pub arn: String,
    pub resource_id: String,
    /// `TargetTrackingScaling` or `StepScaling`.
    pub kind: String,
    /// The `…PolicyConfiguration` as given.
    pub config: Value,
    /// (name, ARN) of the alarms target tracking made.
    #[serde(default)]
    pub created_alarms: Vec<(String, String)>,
    /// Epoch seconds.
    pub created: f64,
}

impl Policy {
    fn describe(&self) -> Value {
        let alarms: Vec<Value> = self
            .created_alarms
            .iter()
            .map(|(name, arn)| json!({"AlarmName": name, "AlarmARN": arn}))
            .collect();
        let mut out = json!({
            "PolicyARN": self.arn,
            "PolicyName": self.name,
            "ServiceNamespace": "ecs",
            "ResourceId": self.resource_id,
            "ScalableDimension": DESIRED_COUNT,
            "PolicyType": self.kind,
            "Alarms": alarms,
            "CreationTime": self.created,
        });
        out[config_member(&self.kind)] = self.config.clone();
        out
    }

    /// Its target tracking configuration, if it is one.
    pub fn target_tracking(&self) -> Option<TargetTracking> {
        (self.kind == "TargetTrackingScaling")
            .then(|| serde_json::from_value(self.config.clone()).ok())
            .flatten()
    }

    /// Its step scaling configuration, if it is one.
    pub fn step_scaling(&self) -> Option<StepScaling> {
        (self.kind == "StepScaling")
            .then(|| serde_json::from_value(self.config.clone()).ok())
            .flatten()
    }
}

fn config_member(kind: &str) -> &'static str {
    if kind == "StepScaling" {
        "StepScalingPolicyConfiguration"
    } else {
        "TargetTrackingScalingPolicyConfiguration"
    }
}

/// A metric dimension as the API spells it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Dimension {
    pub name: String,
    pub value: String,
}

/// A predefined metric.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Predefined {
    pub predefined_metric_type: String,
    pub resource_label: Option<String>,
}

/// A customized metric (one metric; no math).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Customized {
    pub metric_name: Option<String>,
    pub namespace: Option<String>,
    #[serde(default)]
    pub dimensions: Vec<Dimension>,
    pub statistic: Option<String>,
    pub unit: Option<String>,
    pub metrics: Option<Value>,
}

/// TargetTrackingScalingPolicyConfiguration.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetTracking {
    pub target_value: f64,
    pub predefined_metric_specification: Option<Predefined>,
    pub customized_metric_specification: Option<Customized>,
    pub scale_out_cooldown: Option<i64>,
    pub scale_in_cooldown: Option<i64>,
    #[serde(default)]
    pub disable_scale_in: bool,
}

/// One step of a step scaling policy: bounds relative to the alarm's threshold.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StepAdjustment {
    pub metric_interval_lower_bound: Option<f64>,
    pub metric_interval_upper_bound: Option<f64>,
    pub scaling_adjustment: i64,
}

/// StepScalingPolicyConfiguration.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StepScaling {
    pub adjustment_type: Option<String>,
    #[serde(default)]
    pub step_adjustments: Vec<StepAdjustment>,
    pub min_adjustment_magnitude: Option<i64>,
    pub cooldown: Option<i64>,
    pub metric_aggregation_type: Option<String>,
}

/// The metric a target tracking policy follows: (namespace, name, dimensions, statistic,
/// unit, period seconds).
pub type TrackedMetric = (
    String,
    String,
    Vec<(String, String)>,
    String,
    Option<String>,
    i64,
);

/// `ALBRequestCountPerTarget`'s metric: ELB's `RequestCountPerTarget` (`Sum` over 1-minute
/// periods) of the target group and load balancer `label` names
/// (`app/<load-balancer-name>/<load-balancer-id>/targetgroup/<target-group-name>/<target-group-id>`).
fn alb_requests_per_target(label: Option<&str>) -> Result<TrackedMetric, ApiError> {
    const FORM: &str = "app/<load-balancer-name>/<load-balancer-id>/targetgroup/<target-group-name>/<target-group-id>";
    let label = label.ok_or_else(|| {
        validation(format!(
            "ALBRequestCountPerTarget needs a ResourceLabel: {FORM}."
        ))
    })?;
    let parts: Vec<&str> = label.split('/').collect();
    let [kind, lb_name, lb_id, marker, tg_name, tg_id] = parts.as_slice() else {
        return Err(validation(format!(
            "ResourceLabel '{label}' is not of the form {FORM}."
        )));
    };
    if *kind != "app"
        || *marker != "targetgroup"
        || [lb_name, lb_id, tg_name, tg_id]
            .iter()
            .any(|p| p.is_empty())
    {
        return Err(validation(format!(
            "ResourceLabel '{label}' is not of the form {FORM}."
        )));
    }
    Ok((
        crate::elbv2::dataplane::NAMESPACE.into(),
        "RequestCountPerTarget".into(),
        vec![
            ("LoadBalancer".to_string(), format!("app/{lb_name}/{lb_id}")),
            (
                "TargetGroup".to_string(),
                format!("targetgroup/{tg_name}/{tg_id}"),
            ),
        ],
        "Sum".into(),
        None,
        60,
    ))
}

/// The metric of `config` for the service `cluster`/`service`.
pub fn tracked_metric(
    config: &TargetTracking,
    cluster: &str,
    service: &str,
) -> Result<TrackedMetric, ApiError> {
    let service_dims = vec![
        ("ClusterName".to_string(), cluster.to_string()),
        ("ServiceName".to_string(), service.to_string()),
    ];
    match (
        &config.predefined_metric_specification,
        &config.customized_metric_specification,
    ) {
        (Some(p), None) => {
            if p.resource_label.is_some() && p.predefined_metric_type != "ALBRequestCountPerTarget"
            {
                return Err(validation(format!(
                    "ResourceLabel is only for ALBRequestCountPerTarget, not {}.",
                    p.predefined_metric_type
                )));
            }
            let (name, period) = match p.predefined_metric_type.as_str() {
                "ECSServiceAverageCPUUtilization" => ("CPUUtilization", 60),
                "ECSServiceAverageMemoryUtilization" => ("MemoryUtilization", 60),
                "ECSServiceAverageCPUUtilizationHighResolution" => ("CPUUtilization", 20),
                "ECSServiceAverageMemoryUtilizationHighResolution" => ("MemoryUtilization", 20),
                "ALBRequestCountPerTarget" => {
                    return alb_requests_per_target(p.resource_label.as_deref())
                }
                other => {
                    return Err(validation(format!(
                        "Unsupported predefined metric type {other} for an ECS service: use \
                         ECSServiceAverageCPUUtilization or ECSServiceAverageMemoryUtilization \
                         (or their HighResolution forms)."
                    )))
                }
            };
            Ok((
                "AWS/ECS".into(),
                name.into(),
                service_dims,
                "Average".into(),
                Some("Percent".into()),
                period,
            ))
        }
        (None, Some(c)) => {
            if c.metrics.is_some() {
                return Err(validation(
                    "Berth tracks one metric: give MetricName, Namespace and Statistic instead \
                     of Metrics (metric math is not supported).",
                ));
            }
            let (Some(name), Some(namespace), Some(statistic)) =
                (&c.metric_name, &c.namespace, &c.statistic)
            else {
                return Err(validation(
                    "A customized metric needs MetricName, Namespace and Statistic.",
                ));
            };
            if !crate::cloudwatch::STATISTICS.contains(&statistic.as_str()) {
                return Err(validation(format!(
                    "Unsupported statistic {statistic}: use Average, Minimum, Maximum, \
                     SampleCount or Sum."
                )));
            }
            let mut dims: Vec<(String, String)> = c
                .dimensions
                .iter()
                .map(|d| (d.name.clone(), d.value.clone()))
                .collect();
            dims.sort();
            Ok((
                namespace.clone(),
                name.clone(),
                dims,
                statistic.clone(),
                c.unit.clone(),
                60,
            ))
        }
        _ => Err(validation(
            "A target tracking configuration needs exactly one of \
             PredefinedMetricSpecification and CustomizedMetricSpecification.",
        )),
    }
}

/// PutScalingPolicy's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRequest {
    policy_name: Option<String>,
    service_namespace: Option<String>,
    resource_id: Option<String>,
    scalable_dimension: Option<String>,
    policy_type: Option<String>,
    step_scaling_policy_configuration: Option<Value>,
    target_tracking_scaling_policy_configuration: Option<Value>,
    predictive_scaling_policy_configuration: Option<Value>,
}

fn check_step_scaling(config: &Value) -> Result<(), ApiError> {
    let step: StepScaling = serde_json::from_value(config.clone())
        .map_err(|e| validation(format!("StepScalingPolicyConfiguration is not valid: {e}")))?;
    let kind = step
        .adjustment_type
        .as_deref()
        .ok_or_else(|| validation("StepScalingPolicyConfiguration.AdjustmentType is required."))?;
    if ![
        "ChangeInCapacity",
        "PercentChangeInCapacity",
        "ExactCapacity",
    ]
    .contains(&kind)
    {
        return Err(validation(format!(
            "Unsupported AdjustmentType {kind}: use ChangeInCapacity, PercentChangeInCapacity or \
             ExactCapacity."
        )));
    }
    if step.step_adjustments.is_empty() {
        return Err(validation(
            "StepScalingPolicyConfiguration.StepAdjustments needs at least one step.",
        ));
    }
    let mut bounds: Vec<(f64, f64)> = step
        .step_adjustments
        .iter()
        .map(|s| {
            (
                s.metric_interval_lower_bound.unwrap_or(f64::NEG_INFINITY),
                s.metric_interval_upper_bound.unwrap_or(f64::INFINITY),
            )
        })
        .collect();
    if bounds.iter().any(|(low, high)| low >= high) {
        return Err(validation(
            "Each step's MetricIntervalLowerBound must be below its MetricIntervalUpperBound.",
        ));
    }
    bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    if bounds.windows(2).any(|w| w[0].1 != w[1].0) {
        return Err(validation(
            "The step adjustments' intervals must not overlap or leave gaps between them.",
        ));
    }
    if let Some(aggregation) = &step.metric_aggregation_type {
        if !["Average", "Minimum", "Maximum"].contains(&aggregation.as_str()) {
            return Err(validation(format!(
                "Unsupported MetricAggregationType {aggregation}: use Average, Minimum or Maximum."
            )));
        }
    }
    Ok(())
}

/// The alarms a target tracking policy makes: (alarm record) high, and low unless scale-in is
/// disabled.
fn tracking_alarms(
    ctx: &Ctx,
    target: &Target,
    policy_arn: &str,
    config: &TargetTracking,
) -> Result<Vec<Alarm>, ApiError> {
    let (namespace, metric_name, dimensions, statistic, unit, period) =
        tracked_metric(config, &target.cluster, &target.service)?;
    let id = super::new_id();
    let now = ctx.now();
    let make = |suffix: &str, threshold: f64, operator: &str, periods: i64| {
        let name = format!("TargetTracking-{}-{suffix}-{id}", target.resource_id);
        Alarm {
            arn: format!(
                "arn:aws:cloudwatch:{}:{}:alarm:{name}",
                ctx.arns.region, ctx.arns.account_id
            ),
            name,
            description: Some(format!(
                "DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {policy_arn}."
            )),
            actions_enabled: true,
            ok_actions: Vec::new(),
            alarm_actions: vec![policy_arn.to_string()],
            insufficient_data_actions: Vec::new(),
            namespace: namespace.clone(),
            metric_name: metric_name.clone(),
            statistic: statistic.clone(),
            dimensions: dimensions.clone(),
            period,
            unit: unit.clone(),
            evaluation_periods: periods,
            datapoints_to_alarm: Some(periods),
            threshold,
            comparison_operator: operator.to_string(),
            treat_missing_data: None,
            configuration_updated: now,
            state: "INSUFFICIENT_DATA".into(),
            state_reason: "Unchecked: Initial alarm creation".into(),
            state_reason_data: None,
            state_updated: now,
            state_transitioned: now,
            held_until: None,
            tags: Vec::new(),
            history: Vec::new(),
        }
    };
    let mut alarms = vec![make(
        "AlarmHigh",
        config.target_value,
        "GreaterThanThreshold",
        3,
    )];
    if !config.disable_scale_in {
        alarms.push(make(
            "AlarmLow",
            config.target_value * 0.9,
            "LessThanThreshold",
            15,
        ));
    }
    Ok(alarms)
}

/// PutScalingPolicy: creates or replaces a policy of a registered target. Replacing a target
/// tracking policy replaces its alarms.
pub async fn put(ctx: Ctx, input: PutRequest) -> Result<Value, ApiError> {
    let (cluster, service, resource_id) = ecs_resource(
        input.service_namespace.as_deref(),
        input.resource_id.as_deref(),
        input.scalable_dimension.as_deref(),
    )?;
    let name = input
        .policy_name
        .ok_or_else(|| validation("PolicyName is required."))?;
    if name.is_empty() || name.chars().count() > 256 || name.contains(':') || name.contains('/') {
        return Err(validation(
            "PolicyName must be 1 to 256 characters without ':' or '/'.",
        ));
    }
    let kind = input
        .policy_type
        .unwrap_or_else(|| "StepScaling".to_string());
    let config = match kind.as_str() {
        "TargetTrackingScaling" => input
            .target_tracking_scaling_policy_configuration
            .ok_or_else(|| {
                validation(
                    "TargetTrackingScalingPolicyConfiguration is required for a \
                     TargetTrackingScaling policy.",
                )
            })?,
        "StepScaling" => input.step_scaling_policy_configuration.ok_or_else(|| {
            validation("StepScalingPolicyConfiguration is required for a StepScaling policy.")
        })?,
        "PredictiveScaling" => {
            let _ = input.predictive_scaling_policy_configuration;
            return Err(validation(
                "Berth does not forecast load: PredictiveScaling is not supported; use \
                 TargetTrackingScaling or StepScaling.",
            ));
        }
        other => {
            return Err(validation(format!(
                "Unsupported PolicyType {other}: use TargetTrackingScaling or StepScaling."
            )))
        }
    };
    authorize(&ctx, "PutScalingPolicy", "*")?;
    let target_at = target_key(&resource_id);
    let no_target = || {
        not_found(format!(
            "No scalable target registered for service namespace: ecs, resource ID: \
             {resource_id}, scalable dimension: {DESIRED_COUNT}"
        ))
    };
    if ctx.get::<Target>(&target_at)?.is_none() {
        return Err(no_target());
    }
    let tracking = if kind == "TargetTrackingScaling" {
        let parsed: TargetTracking = serde_json::from_value(config.clone()).map_err(|e| {
            validation(format!(
                "TargetTrackingScalingPolicyConfiguration is not valid: {e}"
            ))
        })?;
        if !parsed.target_value.is_finite() || parsed.target_value <= 0.0 {
            return Err(validation("TargetValue must be a number above 0."));
        }
        for cooldown in [parsed.scale_in_cooldown, parsed.scale_out_cooldown]
            .into_iter()
            .flatten()
        {
            if cooldown < 0 {
                return Err(validation("Cooldowns must not be negative."));
            }
        }
        tracked_metric(&parsed, &cluster, &service)?;
        Some(parsed)
    } else {
        check_step_scaling(&config)?;
        None
    };

    let key = policy_key(&resource_id, &name);
    loop {
        // The policy (and its alarms) are written only while its target is registered.
        let target = ctx.get::<Target>(&target_at)?.ok_or_else(no_target)?;
        let existing = ctx.get::<Policy>(&key)?;
        let arn = existing.as_ref().map_or_else(
            || {
                format!(
                    "arn:aws:autoscaling:{}:{}:scalingPolicy:{}:resource/ecs/{resource_id}:policyName/{name}",
                    ctx.arns.region,
                    ctx.arns.account_id,
                    super::new_id()
                )
            },
            |p| p.value.arn.clone(),
        );
        let alarms = match &tracking {
            Some(config) => tracking_alarms(&ctx, &target.value, &arn, config)?,
            None => Vec::new(),
        };
        let policy = Policy {
            name: name.clone(),
            arn: arn.clone(),
            resource_id: resource_id.clone(),
            kind: kind.clone(),
            config: config.clone(),
            created_alarms: alarms
                .iter()
                .map(|a| (a.name.clone(), a.arn.clone()))
                .collect(),
            created: existing.as_ref().map_or(ctx.now(), |p| p.value.created),
        };
        let mut txn = Txn::new()
            .when(match &existing {
                Some(found) => Compare::at(&key, found.mod_revision),
                None => Compare::absent(&key),
            })
            .when(Compare::at(&target_at, target.mod_revision));
        if let Some(old) = &existing {
            for (alarm, _) in &old.value.created_alarms {
                txn = txn.delete(alarm_key(alarm));
            }
        }
        for alarm in &alarms {
            txn = txn.put(alarm_key(&alarm.name), encode(alarm));
        }
        txn = txn.put(&key, encode(&policy));
        if ctx.commit(txn).await?.succeeded {
            let created: Vec<Value> = alarms
                .iter()
                .map(|a| json!({"AlarmName": a.name, "AlarmARN": a.arn}))
                .collect();
            return Ok(json!({"PolicyARN": arn, "Alarms": created}));
        }
    }
}

/// The policies of the target of `resource_id`.
pub fn of_target(ctx: &Ctx, resource_id: &str) -> Result<Vec<Versioned<Policy>>, ApiError> {
    ctx.list::<Policy>(&format!("{POLICIES}{resource_id}/"))
}

/// DescribeScalingPolicies' input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeRequest {
    policy_names: Option<Vec<String>>,
    service_namespace: Option<String>,
    resource_id: Option<String>,
    scalable_dimension: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// DescribeScalingPolicies: the namespace's policies, narrowed by resource and names.
pub async fn describe(ctx: Ctx, input: DescribeRequest) -> Result<Value, ApiError> {
    authorize(&ctx, "DescribeScalingPolicies", "*")?;
    let mut policies: Vec<Policy> = if lists_ecs(
        input.service_namespace.as_deref(),
        input.scalable_dimension.as_deref(),
    )? {
        ctx.list::<Policy>(POLICIES)?
            .into_iter()
            .map(|p| p.value)
            .filter(|p| {
                input
                    .resource_id
                    .as_ref()
                    .is_none_or(|r| *r == p.resource_id)
            })
            .filter(|p| {
                input
                    .policy_names
                    .as_ref()
                    .is_none_or(|names| names.contains(&p.name))
            })
            .collect()
    } else {
        Vec::new()
    };
    answer_page(
        &mut policies,
        input.next_token.as_deref(),
        input.max_results,
        "ScalingPolicies",
        |p| p.arn.as_str(),
        Policy::describe,
    )
}

/// DeleteScalingPolicy's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteRequest {
    policy_name: Option<String>,
    service_namespace: Option<String>,
    resource_id: Option<String>,
    scalable_dimension: Option<String>,
}

/// DeleteScalingPolicy: removes the policy and the alarms target tracking made for it.
pub async fn delete(ctx: Ctx, input: DeleteRequest) -> Result<Value, ApiError> {
    let (_, _, resource_id) = ecs_resource(
        input.service_namespace.as_deref(),
        input.resource_id.as_deref(),
        input.scalable_dimension.as_deref(),
    )?;
    let name = input
        .policy_name
        .ok_or_else(|| validation("PolicyName is required."))?;
    authorize(&ctx, "DeleteScalingPolicy", "*")?;
    let key = policy_key(&resource_id, &name);
    let found = ctx.get::<Policy>(&key)?.ok_or_else(|| {
        not_found(format!(
            "No scaling policy found for service namespace: ecs, resource ID: {resource_id}, \
             scalable dimension: {DESIRED_COUNT}, policy name: {name}"
        ))
    })?;
    let mut txn = Txn::new()
        .when(Compare::at(&key, found.mod_revision))
        .delete(&key);
    for (alarm, _) in &found.value.created_alarms {
        txn = txn.delete(alarm_key(alarm));
    }
    if !ctx.commit(txn).await?.succeeded {
        return Err(ApiError::new(
            "ConcurrentUpdateException",
            "The policy changed while it was being deleted; try again.",
        ));
    }
    Ok(json!({}))
}
