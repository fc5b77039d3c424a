//! May the caller do this? Every request, once authenticated, is authorised before its
//! handler runs: the root user may do everything; an IAM user has its inline policies; an
//! assumed role has its role's. AWS's evaluation applies (explicit deny, then allow, else
//! default deny), with the condition keys AWS defines for the principal (`aws:username`,
//! `aws:userid`, `aws:PrincipalArn`, `aws:PrincipalTag/...`), the resource
//! (`aws:ResourceTag/...`, `ecs:cluster`) and the request (`aws:RequestTag/...`,
//! `aws:TagKeys`).

mod ecs;

use crate::auth::Identity;
use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::protocol::query::QueryRequest;
use berth_core::iam::{evaluate, Context, Decision, Policy, Request};
use berth_core::model::iam::{InlinePolicy, Role, User};
use berth_store::keys;

pub use ecs::authorize_ecs;

/// Condition keys of one request beyond the principal's, as (key, value) pairs; a key may
/// come more than once (`aws:TagKeys`).
pub type Keys = Vec<(String, String)>;

/// The policies that apply to the caller (none for root, which needs none).
fn policies_of(ctx: &Ctx) -> Result<Vec<Policy>, ApiError> {
    let prefix = match &ctx.caller.identity {
        Identity::Root => return Ok(Vec::new()),
        Identity::User { name, .. } => keys::user_policies_of(name),
        Identity::AssumedRole { role, .. } => keys::role_policies_of(role),
    };
    Ok(ctx
        .list::<InlinePolicy>(&prefix)?
        .into_iter()
        .filter_map(|p| match Policy::parse(&p.value.policy_document) {
            Ok(policy) => Some(policy),
            Err(e) => {
                tracing::error!(policy = %p.value.policy_name, error = %e, "a stored policy does not parse; it grants nothing");
                None
            }
        })
        .collect())
}

/// The condition keys of the caller.
pub fn principal_context(ctx: &Ctx) -> Context {
    let account = &ctx.arns.account_id;
    let mut context = Context::new();
    context.insert("aws:PrincipalAccount", account.clone());
    context.insert("aws:userid", ctx.caller.user_id(account));
    let secure = if ctx.caller.secure_transport {
        "true"
    } else {
        "false"
    };
    context.insert("aws:SecureTransport", secure);
    // `aws:PrincipalArn` of a role session is the role's ARN, as AWS defines it.
    let mut principal_arn = ctx.caller.arn.clone();
    let (kind, tags) = match &ctx.caller.identity {
        Identity::Root => ("Account", Vec::new()),
        Identity::User { name, .. } => {
            context.insert("aws:username", name.clone());
            let tags = ctx
                .get::<User>(&keys::user(name))
                .ok()
                .flatten()
                .map(|u| u.value.tags)
                .unwrap_or_default();
            ("User", tags)
        }
        Identity::AssumedRole { role, .. } => {
            let record = ctx.get::<Role>(&keys::role(role)).ok().flatten();
            if let Some(record) = &record {
                principal_arn = record.value.arn.clone();
            }
            let tags = record.map(|r| r.value.tags).unwrap_or_default();
            ("AssumedRole", tags)
        }
    };
    context.insert("aws:PrincipalArn", principal_arn);
    context.insert("aws:PrincipalType", kind);
    for tag in tags {
        context.insert(&format!("aws:PrincipalTag/{}", tag.key), tag.value);
    }
    context
}

/// Whether the caller may do `action` on `resource` with the extra condition keys `extra`;
/// `AccessDenied` (IAM's and STS's name) when not.
pub fn authorize(ctx: &Ctx, action: &str, resource: &str, extra: &Keys) -> Result<(), ApiError> {
    authorize_as(ctx, action, resource, extra, "AccessDenied")
}

/// [`authorize`], refusing with the error named `error_name` (`AccessDeniedException` for
/// ECS).
pub fn authorize_as(
    ctx: &Ctx,
    action: &str,
    resource: &str,
    extra: &Keys,
    error_name: &'static str,
) -> Result<(), ApiError> {
    check(
        ctx,
        action,
        &[(resource.to_string(), extra.clone())],
        error_name,
    )
}

/// The caller's policies and condition keys, read once for every resource of a request.
struct Judge<'a> {
    ctx: &'a Ctx,
    policies: Vec<Policy>,
    base: Context,
}

impl<'a> Judge<'a> {
    fn new(ctx: &'a Ctx) -> Result<Judge<'a>, ApiError> {
        Ok(Judge {
            ctx,
            policies: policies_of(ctx)?,
            base: principal_context(ctx),
        })
    }

    /// AWS's decision for `action` on `resource` with the extra condition keys `extra`.
    fn decide(&self, action: &str, resource: &str, extra: &Keys) -> Decision {
        if self.ctx.caller.is_root() {
            return Decision::Allow;
        }
        let mut context = self.base.clone();
        for (key, value) in extra {
            context.insert(key, value.clone());
        }
        let policies: Vec<&Policy> = self.policies.iter().collect();
        let request = Request {
            principal_arn: &self.ctx.caller.arn,
            action,
            resource,
            context: &context,
        };
        evaluate(&policies, &request)
    }
}

/// What the caller's own policies decide for `action` on `resource` (root: Allow).
pub fn decide(ctx: &Ctx, action: &str, resource: &str, extra: &Keys) -> Result<Decision, ApiError> {
    if ctx.caller.is_root() {
        return Ok(Decision::Allow);
    }
    Ok(Judge::new(ctx)?.decide(action, resource, extra))
}

/// Checks `action` on every `(resource, condition keys)` target; the first denial is the
/// error `error_name`.
fn check(
    ctx: &Ctx,
    action: &str,
    targets: &[(String, Keys)],
    error_name: &'static str,
) -> Result<(), ApiError> {
    if ctx.caller.is_root() {
        return Ok(());
    }
    let judge = Judge::new(ctx)?;
    for (resource, extra) in targets {
        let why = match judge.decide(action, resource, extra) {
            Decision::Allow => continue,
            Decision::ExplicitDeny => "with an explicit deny in an identity-based policy",
            Decision::ImplicitDeny => "because no identity-based policy allows the action",
        };
        return Err(ApiError::new(
            error_name,
            format!(
                "User: {} is not authorized to perform: {action} on resource: {resource} {why}",
                ctx.caller.arn
            ),
        ));
    }
    Ok(())
}

/// Authorises an IAM action: `iam:<Action>` on the user or role it is about — by that
/// user's or role's own ARN (names are found whatever their case, and ARNs carry paths).
pub fn authorize_iam(ctx: &Ctx, request: &QueryRequest) -> Result<(), ApiError> {
    let account = &ctx.arns.account_id;
    let resource = if let Some(role) = request.get("RoleName") {
        ctx.get::<Role>(&keys::role(role))?
            .map(|r| r.value.arn)
            .unwrap_or_else(|| format!("arn:aws:iam::{account}:role/{role}"))
    } else if let Some(user) = request.get("UserName") {
        ctx.get::<User>(&keys::user(user))?
            .map(|u| u.value.arn)
            .unwrap_or_else(|| format!("arn:aws:iam::{account}:user/{user}"))
    } else {
        match (&ctx.caller.identity, request.action.as_str()) {
            (_, "ListUsers" | "ListRoles") => "*".to_string(),
            // Acting on one's own keys or user.
            _ => ctx.caller.arn.clone(),
        }
    };
    let mut extra = Keys::new();
    for tag in request.structures("Tags") {
        if let (Some(k), Some(v)) = (tag.get("Key"), tag.get("Value")) {
            extra.push((format!("aws:RequestTag/{k}"), v.clone()));
            extra.push(("aws:TagKeys".into(), k.clone()));
        }
    }
    check(
        ctx,
        &format!("iam:{}", request.action),
        &[(resource, extra)],
        "AccessDenied",
    )
}
