//! Inline policies of users and roles: Put/Get/Delete/List UserPolicy and RolePolicy, the
//! same four actions on either kind of owner.

use super::{
    no_such_entity, page, policy_document, roles, users, validate_name, write_page_end, PolicyKind,
};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::protocol::query::{url_encode, QueryRequest, Xml};
use berth_core::model::iam::InlinePolicy;
use berth_store::typed::encode;
use berth_store::{keys, Txn};

/// Whose inline policies an action is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Owner {
    User,
    Role,
}

impl Owner {
    /// The parameter naming the owner.
    fn field(self) -> &'static str {
        match self {
            Owner::User => "UserName",
            Owner::Role => "RoleName",
        }
    }

    /// The owner's name as stored, or `NoSuchEntity`.
    fn existing(self, ctx: &Ctx, request: &QueryRequest) -> Result<String, ApiError> {
        let name = request.required(self.field())?;
        Ok(match self {
            Owner::User => users::existing(ctx, name)?.user_name,
            Owner::Role => roles::existing(ctx, name)?.role_name,
        })
    }

    fn key(self, owner: &str, policy: &str) -> String {
        match self {
            Owner::User => keys::user_policy(owner, policy),
            Owner::Role => keys::role_policy(owner, policy),
        }
    }

    fn prefix(self, owner: &str) -> String {
        match self {
            Owner::User => keys::user_policies_of(owner),
            Owner::Role => keys::role_policies_of(owner),
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Owner::User => "user",
            Owner::Role => "role",
        }
    }
}

pub(super) async fn put(
    ctx: &Ctx,
    request: &QueryRequest,
    owner: Owner,
) -> Result<Option<Xml>, ApiError> {
    let name = owner.existing(ctx, request)?;
    let policy_name = request.required("PolicyName")?;
    validate_name("policyName", policy_name, 128)?;
    let policy = InlinePolicy {
        owner: name.clone(),
        policy_name: policy_name.to_string(),
        policy_document: policy_document(request, "PolicyDocument", PolicyKind::Identity)?,
    };
    let key = owner.key(&name, policy_name);
    ctx.commit(Txn::new().put(key, encode(&policy))).await?;
    Ok(None)
}

fn existing(ctx: &Ctx, request: &QueryRequest, owner: Owner) -> Result<InlinePolicy, ApiError> {
    let name = owner.existing(ctx, request)?;
    let policy_name = request.required("PolicyName")?;
    ctx.get::<InlinePolicy>(&owner.key(&name, policy_name))?
        .map(|p| p.value)
        .ok_or_else(|| {
            no_such_entity(format!(
                "The {} policy with name {policy_name} cannot be found.",
                owner.noun()
            ))
        })
}

pub(super) fn get(
    ctx: &Ctx,
    request: &QueryRequest,
    owner: Owner,
) -> Result<Option<Xml>, ApiError> {
    let policy = existing(ctx, request, owner)?;
    let mut xml = Xml::new();
    xml.field(owner.field(), &policy.owner)
        .field("PolicyName", &policy.policy_name)
        .field("PolicyDocument", &url_encode(&policy.policy_document));
    Ok(Some(xml))
}

pub(super) async fn delete(
    ctx: &Ctx,
    request: &QueryRequest,
    owner: Owner,
) -> Result<Option<Xml>, ApiError> {
    let policy = existing(ctx, request, owner)?;
    let key = owner.key(&policy.owner, &policy.policy_name);
    ctx.commit(Txn::new().delete(key)).await?;
    Ok(None)
}

pub(super) fn list(
    ctx: &Ctx,
    request: &QueryRequest,
    owner: Owner,
) -> Result<Option<Xml>, ApiError> {
    let name = owner.existing(ctx, request)?;
    let names: Vec<String> = ctx
        .list::<InlinePolicy>(&owner.prefix(&name))?
        .into_iter()
        .map(|p| p.value.policy_name)
        .collect();
    let (names, marker) = page(request, names, |n| n.to_lowercase())?;
    let mut xml = Xml::new();
    xml.list("PolicyNames", &names, |xml, name| {
        xml.text(name);
    });
    write_page_end(&mut xml, marker);
    Ok(Some(xml))
}
