//! IAM users: CreateUser, GetUser, ListUsers, DeleteUser.

use super::{
    id_fault, no_such_entity, page, tags_of, validate_name, validate_path, write_page_end,
    write_tags,
};
use crate::auth::Identity;
use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::protocol::query::{timestamp, QueryRequest, Xml};
use berth_core::model::iam::{AccessKey, InlinePolicy, User};
use berth_store::typed::encode;
use berth_store::{keys, Compare, Txn};

pub(super) fn write_user(xml: &mut Xml, user: &User) {
    xml.field("Path", &user.path)
        .field("UserName", &user.user_name)
        .field("UserId", &user.user_id)
        .field("Arn", &user.arn)
        .field("CreateDate", &timestamp(user.create_date));
    write_tags(xml, &user.tags);
}

/// The user named `name`, or IAM's `NoSuchEntity`.
pub(super) fn existing(ctx: &Ctx, name: &str) -> Result<User, ApiError> {
    ctx.get::<User>(&keys::user(name))?
        .map(|u| u.value)
        .ok_or_else(|| no_such_entity(format!("The user with name {name} cannot be found.")))
}

pub(super) async fn create(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let name = request.required("UserName")?;
    super::refuse_boundary(request)?;
    validate_name("userName", name, 64)?;
    let path = request.get("Path").unwrap_or("/");
    validate_path(path)?;
    let tags = tags_of(request)?;
    let user = User {
        user_name: name.to_string(),
        user_id: crate::auth::keys::new_id("AIDA").map_err(id_fault)?,
        path: path.to_string(),
        arn: format!("arn:aws:iam::{}:user{path}{name}", ctx.arns.account_id),
        create_date: ctx.now().floor(),
        tags,
    };
    let key = keys::user(name);
    let txn = Txn::new()
        .when(Compare::absent(&key))
        .put(&key, encode(&user));
    if !ctx.commit(txn).await?.succeeded {
        return Err(ApiError::new(
            "EntityAlreadyExists",
            format!("User with name {name} already exists."),
        ));
    }
    let mut xml = Xml::new();
    xml.nest("User", |xml| write_user(xml, &user));
    Ok(Some(xml))
}

pub(super) fn get(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let mut xml = Xml::new();
    let own = match &ctx.caller.identity {
        Identity::User { name, .. } => Some(name.as_str()),
        _ => None,
    };
    match (request.get("UserName").or(own), &ctx.caller.identity) {
        (Some(name), _) => {
            let user = existing(ctx, name)?;
            xml.nest("User", |xml| write_user(xml, &user));
        }
        (None, Identity::Root) => {
            // The root user as IAM shows it: the account id is its user id.
            xml.nest("User", |xml| {
                xml.field("Path", "/")
                    .field("UserId", &ctx.arns.account_id)
                    .field("Arn", &ctx.caller.arn)
                    .field("CreateDate", &timestamp(0.0));
            });
        }
        (None, _) => {
            return Err(ApiError::new(
                "ValidationError",
                "Must specify userName when calling with non-User credentials",
            ))
        }
    }
    Ok(Some(xml))
}

pub(super) fn list(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let prefix = request.get("PathPrefix").unwrap_or("/");
    let users: Vec<User> = ctx
        .list::<User>(keys::USERS)?
        .into_iter()
        .map(|u| u.value)
        .filter(|u| u.path.starts_with(prefix))
        .collect();
    let (users, marker) = page(request, users, |u| u.user_name.to_lowercase())?;
    let mut xml = Xml::new();
    xml.list("Users", &users, write_user);
    write_page_end(&mut xml, marker);
    Ok(Some(xml))
}

pub(super) async fn delete(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let name = request.required("UserName")?;
    let user = ctx
        .get::<User>(&keys::user(name))?
        .ok_or_else(|| no_such_entity(format!("The user with name {name} cannot be found.")))?;
    let has_keys = ctx
        .list::<AccessKey>(keys::ACCESS_KEYS)?
        .iter()
        .any(|k| k.value.user_name.as_deref().map(str::to_lowercase) == Some(name.to_lowercase()));
    if has_keys {
        return Err(ApiError::new(
            "DeleteConflict",
            "Cannot delete entity, must delete access keys first.",
        ));
    }
    if !ctx
        .list::<InlinePolicy>(&keys::user_policies_of(name))?
        .is_empty()
    {
        return Err(ApiError::new(
            "DeleteConflict",
            "Cannot delete entity, must delete policies first.",
        ));
    }
    let key = keys::user(name);
    let txn = Txn::new()
        .when(Compare::at(&key, user.mod_revision))
        .delete(&key);
    if !ctx.commit(txn).await?.succeeded {
        return Err(ApiError::new(
            "ConcurrentModification",
            format!("The user {name} changed while it was being deleted; try again."),
        ));
    }
    Ok(None)
}
