//! Inline policies of users: PutUserPolicy, GetUserPolicy, DeleteUserPolicy, ListUserPolicies.

use super::{
    no_such_entity, page, policy_document, users, validate_name, write_page_end, PolicyKind,
};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::protocol::query::{url_encode, QueryRequest, Xml};
use berth_core::model::iam::InlinePolicy;
use berth_store::typed::encode;
use berth_store::{keys, Txn};

pub(super) async fn put(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let user = users::existing(ctx, request.required("UserName")?)?;
    let name = request.required("PolicyName")?;
    validate_name("policyName", name, 128)?;
    let policy = InlinePolicy {
        owner: user.user_name.clone(),
        policy_name: name.to_string(),
        policy_document: policy_document(request, "PolicyDocument", PolicyKind::Identity)?,
    };
    let key = keys::user_policy(&user.user_name, name);
    ctx.commit(Txn::new().put(key, encode(&policy))).await?;
    Ok(None)
}

fn existing(ctx: &Ctx, request: &QueryRequest) -> Result<InlinePolicy, ApiError> {
    let user = users::existing(ctx, request.required("UserName")?)?;
    let name = request.required("PolicyName")?;
    ctx.get::<InlinePolicy>(&keys::user_policy(&user.user_name, name))?
        .map(|p| p.value)
        .ok_or_else(|| no_such_entity(format!("The user policy with name {name} cannot be found.")))
}

pub(super) fn get(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let policy = existing(ctx, request)?;
    let mut xml = Xml::new();
    xml.field("UserName", &policy.owner)
        .field("PolicyName", &policy.policy_name)
        .field("PolicyDocument", &url_encode(&policy.policy_document));
    Ok(Some(xml))
}

pub(super) async fn delete(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let policy = existing(ctx, request)?;
    let key = keys::user_policy(&policy.owner, &policy.policy_name);
    ctx.commit(Txn::new().delete(key)).await?;
    Ok(None)
}

pub(super) fn list(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let user = users::existing(ctx, request.required("UserName")?)?;
    let names: Vec<String> = ctx
        .list::<InlinePolicy>(&keys::user_policies_of(&user.user_name))?
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
