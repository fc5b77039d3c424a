//! Roles: CreateRole, GetRole, ListRoles, DeleteRole (their inline policies are in
//! `inline_policies`). A role is assumed with STS AssumeRole by the principals its trust
//! policy (`AssumeRolePolicyDocument`) names.

use super::{
    id_fault, no_such_entity, page, policy_document, tags_of, validate_name, validate_path,
    write_page_end, write_tags, PolicyKind,
};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::protocol::query::{timestamp, url_encode, QueryRequest, Xml};
use berth_core::model::iam::{InlinePolicy, Role};
use berth_store::typed::encode;
use berth_store::{keys, Compare, Txn};

fn write_role(xml: &mut Xml, role: &Role) {
    xml.field("Path", &role.path)
        .field("RoleName", &role.role_name)
        .field("RoleId", &role.role_id)
        .field("Arn", &role.arn)
        .field("CreateDate", &timestamp(role.create_date))
        .field(
            "AssumeRolePolicyDocument",
            &url_encode(&role.assume_role_policy_document),
        )
        .optional("Description", role.description.as_deref())
        .field("MaxSessionDuration", &role.max_session_duration.to_string());
    write_tags(xml, &role.tags);
}

/// The role named `name`, or IAM's `NoSuchEntity`.
pub(crate) fn existing(ctx: &Ctx, name: &str) -> Result<Role, ApiError> {
    ctx.get::<Role>(&keys::role(name))?
        .map(|r| r.value)
        .ok_or_else(|| no_such_entity(format!("The role with name {name} cannot be found.")))
}

pub(super) async fn create(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let name = request.required("RoleName")?;
    super::refuse_boundary(request)?;
    validate_name("roleName", name, 64)?;
    let path = request.get("Path").unwrap_or("/");
    validate_path(path)?;
    let max_session_duration = request.integer("MaxSessionDuration")?.unwrap_or(3600);
    if !(3600..=43_200).contains(&max_session_duration) {
        return Err(ApiError::new(
            "ValidationError",
            format!("1 validation error detected: Value '{max_session_duration}' at 'maxSessionDuration' failed to satisfy constraint: Member must have value between 3600 and 43200"),
        ));
    }
    let description = request.get("Description").map(str::to_string);
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 1000)
    {
        return Err(ApiError::new(
            "ValidationError",
            "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 1000",
        ));
    }
    let role = Role {
        role_name: name.to_string(),
        role_id: crate::auth::keys::new_id("AROA").map_err(id_fault)?,
        path: path.to_string(),
        arn: format!("arn:aws:iam::{}:role{path}{name}", ctx.arns.account_id),
        create_date: ctx.now().floor(),
        assume_role_policy_document: policy_document(
            request,
            "AssumeRolePolicyDocument",
            PolicyKind::Trust,
        )?,
        description,
        max_session_duration,
        tags: tags_of(request)?,
    };
    let key = keys::role(name);
    let txn = Txn::new()
        .when(Compare::absent(&key))
        .put(&key, encode(&role));
    if !ctx.commit(txn).await?.succeeded {
        return Err(ApiError::new(
            "EntityAlreadyExists",
            format!("Role with name {name} already exists."),
        ));
    }
    let mut xml = Xml::new();
    xml.nest("Role", |xml| write_role(xml, &role));
    Ok(Some(xml))
}

pub(super) fn get(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let role = existing(ctx, request.required("RoleName")?)?;
    let mut xml = Xml::new();
    xml.nest("Role", |xml| write_role(xml, &role));
    Ok(Some(xml))
}

pub(super) fn list(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let prefix = request.get("PathPrefix").unwrap_or("/");
    let roles: Vec<Role> = ctx
        .list::<Role>(keys::ROLES)?
        .into_iter()
        .map(|r| r.value)
        .filter(|r| r.path.starts_with(prefix))
        .collect();
    let (roles, marker) = page(request, roles, |r| r.role_name.to_lowercase())?;
    let mut xml = Xml::new();
    xml.list("Roles", &roles, write_role);
    write_page_end(&mut xml, marker);
    Ok(Some(xml))
}

pub(super) async fn delete(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let name = request.required("RoleName")?;
    let key = keys::role(name);
    let role = ctx
        .get::<Role>(&key)?
        .ok_or_else(|| no_such_entity(format!("The role with name {name} cannot be found.")))?;
    if !ctx
        .list::<InlinePolicy>(&keys::role_policies_of(name))?
        .is_empty()
    {
        return Err(ApiError::new(
            "DeleteConflict",
            "Cannot delete entity, must delete policies first.",
        ));
    }
    let txn = Txn::new()
        .when(Compare::at(&key, role.mod_revision))
        .delete(&key);
    if !ctx.commit(txn).await?.succeeded {
        return Err(ApiError::new(
            "ConcurrentModification",
            format!("The role {name} changed while it was being deleted; try again."),
        ));
    }
    Ok(None)
}
