//! Agents are principals bound to their instances, as ECS's instance roles and Kubernetes'
//! NodeRestriction: the principal that registers a container instance owns it, and only it
//! (or the account's root user) may register it again, open its desired-state stream,
//! heartbeat for it, or report the state of tasks placed on it.

use crate::dispatch::Ctx;
use crate::error::ApiError;
use berth_store::typed::encode;
use berth_store::{keys, Compare, Txn};
use serde::{Deserialize, Serialize};

/// Who registered an instance: its ARN (for messages) and its unique id (what is compared: a
/// user deleted and made again under the same name is another principal, while every session
/// of one role is the same one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InstanceOwner {
    principal_arn: String,
    principal_id: String,
}

impl InstanceOwner {
    fn of(ctx: &Ctx) -> InstanceOwner {
        InstanceOwner {
            principal_arn: ctx.caller.arn.clone(),
            principal_id: ctx.caller.unique_id(&ctx.arns.account_id),
        }
    }
}

fn owner_of(ctx: &Ctx, cluster: &str, id: &str) -> Result<Option<InstanceOwner>, ApiError> {
    Ok(ctx
        .get::<InstanceOwner>(&keys::instance_owner(cluster, id))?
        .map(|o| o.value))
}

fn not_yours(ctx: &Ctx, instance_arn: &str, owner: Option<&str>) -> ApiError {
    ApiError::new(
        "AccessDeniedException",
        format!(
            "{} may not act for container instance {instance_arn}: it belongs to {}. Only the \
             principal that registered an instance (its agent) may register it again, stream \
             its tasks, heartbeat for it or report its tasks.",
            ctx.caller.arn,
            owner.unwrap_or("no principal")
        ),
    )
}

/// Refuses unless the caller owns instance `id` of `cluster` (or is root).
pub fn check_owner(ctx: &Ctx, cluster: &str, id: &str) -> Result<(), ApiError> {
    if ctx.caller.is_root() {
        return Ok(());
    }
    let owner = owner_of(ctx, cluster, id)?;
    let me = InstanceOwner::of(ctx);
    if owner.as_ref().map(|o| &o.principal_id) == Some(&me.principal_id) {
        Ok(())
    } else {
        Err(not_yours(
            ctx,
            &ctx.arns.container_instance(cluster, id),
            owner.as_ref().map(|o| o.principal_arn.as_str()),
        ))
    }
}

/// Makes the caller the owner of instance `id` before it is registered: a new instance
/// becomes the caller's; an existing one must already be (or the caller is root, who takes
/// it over).
pub async fn claim(ctx: &Ctx, cluster: &str, id: &str) -> Result<(), ApiError> {
    let key = keys::instance_owner(cluster, id);
    let current = ctx.get::<InstanceOwner>(&key)?;
    let me = InstanceOwner::of(ctx);
    match &current {
        Some(owner) if owner.value.principal_id == me.principal_id => return Ok(()),
        Some(owner) if !ctx.caller.is_root() => {
            return Err(not_yours(
                ctx,
                &ctx.arns.container_instance(cluster, id),
                Some(&owner.value.principal_arn),
            ))
        }
        _ => {}
    }
    let guard = match &current {
        Some(owner) => Compare::at(&key, owner.mod_revision),
        None => Compare::absent(&key),
    };
    let txn = Txn::new().when(guard).put(&key, encode(&me));
    if ctx.commit(txn).await?.succeeded {
        Ok(())
    } else {
        Err(not_yours(
            ctx,
            &ctx.arns.container_instance(cluster, id),
            Some("another principal, which registered it at the same time"),
        ))
    }
}
