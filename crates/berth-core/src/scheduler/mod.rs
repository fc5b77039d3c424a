//! Berth's scheduler: a pure placement engine (no I/O, no async). Given a [`Snapshot`] of a
//! cluster's instances and a [`TaskRequest`] (resources, group, strategies, constraints,
//! count), [`Snapshot::place`] picks an instance per task the way ECS does, or says per
//! instance why none would do (ECS's failure reasons).
//!
//! ECS behaviour followed here (Amazon ECS Developer Guide: "Amazon ECS task placement",
//! "task placement strategies", "task placement constraints", "Cluster query language"):
//! instances are filtered by the task definition's required attributes (`requiresAttributes`:
//! ECS's `ATTRIBUTE` failure), by CPU, memory and ports, then by constraints, then ranked by the
//! strategies in order; only ACTIVE instances with a connected agent receive tasks; `spread`
//! balances the tasks of the request's group (a service's tasks, or a standalone task group);
//! distinctInstance counts tasks whose desired status is RUNNING; RunTask's default strategy
//! is random, a service's is spread over `attribute:ecs.availability-zone` then over
//! instances.

mod attributes;
pub mod capacity;
mod engine;
pub mod query;
pub mod rng;
mod snapshot;
pub mod workload;

pub use attributes::{required_attributes, RequiredAttribute};
pub use snapshot::{InstanceInfo, Occupancy, Snapshot, StoredInstance};

use crate::model::container_instance::is_valid_attribute_name;
use crate::model::task::{PlacementConstraint, PlacementStrategy};
use crate::model::task_definition::TaskDefinitionPlacementConstraint;
use crate::resources::{Shortfall, TaskResources};
use query::Expr;

/// The most placement strategies a task or service may name.
pub const MAX_STRATEGIES: usize = 5;
/// The most placement constraints a task may have, its task definition's included.
pub const MAX_CONSTRAINTS: usize = 10;

/// A placement strategy.
#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    /// Fewest remaining units of the field first.
    Binpack(BinpackField),
    /// Fewest tasks of the group per value of the field first.
    Spread(SpreadField),
    /// Any candidate, uniformly.
    Random,
}

/// What `binpack` packs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinpackField {
    /// Remaining CPU units.
    Cpu,
    /// Remaining memory.
    Memory,
}

/// What `spread` balances over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpreadField {
    /// Each instance (`instanceId` or `host`).
    InstanceId,
    /// Each value of an attribute (`attribute:<name>`).
    Attribute(String),
}

/// A placement constraint.
#[derive(Debug, Clone, PartialEq)]
pub enum Constraint {
    /// No two tasks of the group on one instance.
    DistinctInstance,
    /// Only instances the expression selects.
    MemberOf(Expr),
}

/// A batch of identical tasks to place.
#[derive(Debug, Clone)]
pub struct TaskRequest {
    /// What each task reserves.
    pub resources: TaskResources,
    /// The task group (`family:<name>`, `service:<name>` or the caller's).
    pub group: String,
    /// Ranking, in order.
    pub strategies: Vec<Strategy>,
    /// Filters, all of which must hold.
    pub constraints: Vec<Constraint>,
    /// The attributes an instance must carry (the task definition's `requiresAttributes`).
    pub required_attributes: Vec<RequiredAttribute>,
    /// How many tasks.
    pub count: usize,
}

impl TaskRequest {
    /// The `detail` of a `failures` entry for `reason`: for [`Reason::Attribute`] the
    /// required attribute the instance lacks (`name`, or `name=value` when a value is
    /// required); `None` for the others.
    pub fn failure_detail(&self, reason: Reason) -> Option<String> {
        match reason {
            Reason::Attribute(k) => self
                .required_attributes
                .get(usize::from(k))
                .map(RequiredAttribute::to_string),
            _ => None,
        }
    }
}

/// Why an instance did not receive a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Its agent is disconnected.
    Agent,
    /// It lacks a required attribute: the index of the first one in
    /// [`TaskRequest::required_attributes`].
    Attribute(u16),
    /// It lacks a resource.
    Resource(Shortfall),
    /// It fails a memberOf constraint.
    MemberOf,
    /// It already runs a task of the group under distinctInstance.
    DistinctInstance,
}

impl Reason {
    /// The reason as ECS writes it in a `failures` entry.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Agent => "AGENT",
            Reason::Attribute(_) => "ATTRIBUTE",
            Reason::Resource(s) => s.reason(),
            Reason::MemberOf => "MemberOf placement constraint unsatisfied.",
            Reason::DistinctInstance => "DistinctInstance placement constraint unsatisfied.",
        }
    }
}

/// The result of placing a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The instance (snapshot index) of each placed task, in order.
    pub placements: Vec<usize>,
    /// How many tasks could not be placed.
    pub unplaced: usize,
    /// When some could not: each ACTIVE instance (snapshot index) with the reason it refused.
    pub failures: Vec<(usize, Reason)>,
}

/// RunTask's default strategy (ECS: standalone tasks are placed randomly by default).
pub fn default_run_task_strategies() -> Vec<Strategy> {
    vec![Strategy::Random]
}

/// A service's default strategies: spread over Availability Zones, then over instances (ECS:
/// balance across zones, favouring instances with the fewest tasks of the service).
pub fn default_service_strategies() -> Vec<Strategy> {
    vec![
        Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into())),
        Strategy::Spread(SpreadField::InstanceId),
    ]
}

/// Reads and checks the placement strategies of a RunTask or CreateService call; the message
/// is for an InvalidParameterException.
pub fn parse_strategies(strategies: &[PlacementStrategy]) -> Result<Vec<Strategy>, String> {
    if strategies.len() > MAX_STRATEGIES {
        return Err(format!(
            "At most {MAX_STRATEGIES} placement strategies are allowed; {} were given.",
            strategies.len()
        ));
    }
    strategies.iter().map(parse_strategy).collect()
}

fn parse_strategy(s: &PlacementStrategy) -> Result<Strategy, String> {
    let field = s.field.as_deref();
    match s.type_.as_deref() {
        Some("random") => Ok(Strategy::Random),
        Some("binpack") => match field {
            Some(f) if f.eq_ignore_ascii_case("cpu") => Ok(Strategy::Binpack(BinpackField::Cpu)),
            Some(f) if f.eq_ignore_ascii_case("memory") => {
                Ok(Strategy::Binpack(BinpackField::Memory))
            }
            other => Err(format!(
                "The binpack placement strategy needs the field cpu or memory, not '{}'.",
                other.unwrap_or("")
            )),
        },
        Some("spread") => match field {
            Some(f) if f.eq_ignore_ascii_case("instanceId") || f.eq_ignore_ascii_case("host") => {
                Ok(Strategy::Spread(SpreadField::InstanceId))
            }
            Some(f) => match f.strip_prefix("attribute:") {
                Some(name) if is_valid_attribute_name(name) => {
                    Ok(Strategy::Spread(SpreadField::Attribute(name.to_string())))
                }
                _ => Err(format!(
                    "The spread placement strategy needs the field instanceId, host or \
                     attribute:<name>, not '{f}'."
                )),
            },
            None => Err(
                "The spread placement strategy needs a field: instanceId, host or \
                 attribute:<name>."
                    .to_string(),
            ),
        },
        other => Err(format!(
            "'{}' is not a placement strategy type: use binpack, spread or random.",
            other.unwrap_or("")
        )),
    }
}

/// The check ECS makes of a DAEMON service: it places one task per instance and accepts no
/// strategies.
pub fn check_daemon_strategies(strategies: &[PlacementStrategy]) -> Result<(), String> {
    if strategies.is_empty() {
        Ok(())
    } else {
        Err(
            "Placement strategies are not supported with the DAEMON scheduling strategy: \
             leave placementStrategy out."
                .to_string(),
        )
    }
}

/// Reads and checks the constraints of a call together with its task definition's (at most
/// 10 in all); memberOf expressions are parsed, and a parse error names its position.
pub fn parse_constraints(
    call: &[PlacementConstraint],
    task_definition: &[TaskDefinitionPlacementConstraint],
) -> Result<Vec<Constraint>, String> {
    let total = call.len() + task_definition.len();
    if total > MAX_CONSTRAINTS {
        return Err(format!(
            "At most {MAX_CONSTRAINTS} placement constraints are allowed, the task definition's \
             included; there are {total}."
        ));
    }
    let from_td = task_definition.iter().map(|c| {
        (
            c.type_.as_deref(),
            c.expression.as_deref(),
            "the task definition's",
        )
    });
    let from_call = call.iter().map(|c| {
        (
            c.type_.as_deref(),
            c.expression.as_deref(),
            "placementConstraints",
        )
    });
    from_call
        .chain(from_td)
        .map(|(type_, expression, origin)| parse_constraint(type_, expression, origin))
        .collect()
}

fn parse_constraint(
    type_: Option<&str>,
    expression: Option<&str>,
    origin: &str,
) -> Result<Constraint, String> {
    let expression = expression.filter(|e| !e.trim().is_empty());
    match type_ {
        Some("distinctInstance") => match expression {
            None => Ok(Constraint::DistinctInstance),
            Some(_) => Err(
                "A distinctInstance placement constraint takes no expression: leave it out."
                    .to_string(),
            ),
        },
        Some("memberOf") => {
            let text = expression.ok_or_else(|| {
                "A memberOf placement constraint needs an expression (cluster query language)."
                    .to_string()
            })?;
            query::parse(text)
                .map(Constraint::MemberOf)
                .map_err(|e| format!("Invalid memberOf expression in {origin} '{text}': {e}."))
        }
        other => Err(format!(
            "'{}' is not a placement constraint type: use distinctInstance or memberOf.",
            other.unwrap_or("")
        )),
    }
}

#[cfg(test)]
mod tests;
