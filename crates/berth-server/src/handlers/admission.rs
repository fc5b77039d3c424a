//! The admission policy at the API: a task definition that grants root on a host (see
//! `berth_core::task_definition::admission`) is registered only when some cluster's tags
//! allow it, and runs (RunTask, StartTask, CreateService, UpdateService) only on a cluster
//! whose tags do. Refusals are ClientExceptions that name every refused field and the tag that
//! would allow it; nothing is written.

use crate::dispatch::Ctx;
use crate::error::ApiError;
use berth_core::model::cluster::Cluster;
use berth_core::model::task_definition::TaskDefinition;
use berth_core::model::ClusterStatus;
use berth_core::task_definition::admission::{check, Allowances, Refusal};
use berth_store::keys;

/// The allowances `cluster`'s tags grant.
pub fn allowances_of(cluster: &Cluster) -> Allowances {
    Allowances::from_cluster_tags(cluster.tags.as_deref().unwrap_or_default())
}

/// Refuses `td` unless the tags of `cluster`, where it is to run, allow every root-granting
/// field it has.
pub fn admit_on_cluster(cluster: &Cluster, td: &TaskDefinition) -> Result<(), ApiError> {
    let refusals = check(td, &allowances_of(cluster));
    if refusals.is_empty() {
        return Ok(());
    }
    Err(ApiError::client(format!(
        "Cluster '{}' does not allow task definition {}. {}",
        cluster.cluster_name.as_deref().unwrap_or_default(),
        td.task_definition_arn
            .as_deref()
            .or(td.family.as_deref())
            .unwrap_or_default(),
        joined(&refusals)
    )))
}

/// Refuses to register `td` when no cluster could run it: it is admitted when a cluster
/// without admission tags would admit it (nothing in it grants root on a host, so any cluster
/// may run it, including one not yet created), or when some ACTIVE cluster's tags allow all
/// it asks for.
pub fn admit_for_registration(ctx: &Ctx, td: &TaskDefinition) -> Result<(), ApiError> {
    let refusals = check(td, &Allowances::default());
    if refusals.is_empty() {
        return Ok(());
    }
    let clusters = ctx.list::<Cluster>(keys::CLUSTERS)?;
    let admitted = clusters
        .iter()
        .map(|c| &c.value)
        .filter(|c| c.status == Some(ClusterStatus::Active))
        .any(|c| check(td, &allowances_of(c)).is_empty());
    if admitted {
        return Ok(());
    }
    Err(ApiError::client(format!(
        "No ACTIVE cluster allows this task definition, so it was not registered. {}",
        joined(&refusals)
    )))
}

fn joined(refusals: &[Refusal]) -> String {
    refusals
        .iter()
        .map(Refusal::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests;
