//! Access keys of users (and of the root user): CreateAccessKey, ListAccessKeys,
//! UpdateAccessKey, DeleteAccessKey. The secret is shown once, by CreateAccessKey.

use super::{id_fault, no_such_entity, page, users, write_page_end};
use crate::auth::Identity;
use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::protocol::query::{timestamp, QueryRequest, Xml};
use berth_core::model::iam::{AccessKey, KeyStatus};
use berth_store::typed::encode;
use berth_store::{keys, Compare, Txn};

/// Most access keys one user (or the root user) may have, as IAM.
const KEYS_PER_USER: usize = 2;

/// Whose keys a request is about: the named user, else the caller (a user, or root as
/// `None`). Assumed roles have no keys of their own.
fn owner(ctx: &Ctx, request: &QueryRequest) -> Result<Option<String>, ApiError> {
    match (request.get("UserName"), &ctx.caller.identity) {
        (Some(name), _) => Ok(Some(users::existing(ctx, name)?.user_name)),
        (None, Identity::User { name, .. }) => Ok(Some(name.clone())),
        (None, Identity::Root) => Ok(None),
        (None, Identity::AssumedRole { .. }) => Err(ApiError::new(
            "ValidationError",
            "Must specify userName when calling with non-User credentials",
        )),
    }
}

fn keys_of(ctx: &Ctx, owner: &Option<String>) -> Result<Vec<AccessKey>, ApiError> {
    let owner = owner.as_deref().map(str::to_lowercase);
    Ok(ctx
        .list::<AccessKey>(keys::ACCESS_KEYS)?
        .into_iter()
        .map(|k| k.value)
        .filter(|k| k.user_name.as_deref().map(str::to_lowercase) == owner)
        .collect())
}

fn key_of(ctx: &Ctx, owner: &Option<String>, id: &str) -> Result<AccessKey, ApiError> {
    keys_of(ctx, owner)?
        .into_iter()
        .find(|k| k.access_key_id == id)
        .ok_or_else(|| no_such_entity(format!("The Access Key with id {id} cannot be found.")))
}

fn user_name_of(ctx: &Ctx, key: &AccessKey) -> String {
    key.user_name
        .clone()
        .unwrap_or_else(|| ctx.arns.account_id.clone())
}

pub(super) async fn create(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let owner = owner(ctx, request)?;
    if keys_of(ctx, &owner)?.len() >= KEYS_PER_USER {
        return Err(ApiError::new(
            "LimitExceeded",
            format!("Cannot exceed quota for AccessKeysPerUser: {KEYS_PER_USER}"),
        ));
    }
    let key = AccessKey {
        access_key_id: crate::auth::keys::new_access_key_id().map_err(id_fault)?,
        user_name: owner,
        status: KeyStatus::Active,
        create_date: ctx.now().floor(),
    };
    let store_key = keys::access_key(&key.access_key_id);
    let txn = Txn::new()
        .when(Compare::absent(&store_key))
        .put(&store_key, encode(&key));
    if !ctx.commit(txn).await?.succeeded {
        return Err(ApiError::server("a new access key id was already taken"));
    }
    let secret = ctx.keys.secret_of(&key.access_key_id);
    let mut xml = Xml::new();
    xml.nest("AccessKey", |xml| {
        xml.field("UserName", &user_name_of(ctx, &key))
            .field("AccessKeyId", &key.access_key_id)
            .field("Status", key.status.as_str())
            .field("SecretAccessKey", &secret)
            .field("CreateDate", &timestamp(key.create_date));
    });
    Ok(Some(xml))
}

pub(super) fn list(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let owner = owner(ctx, request)?;
    let (keys, marker) = page(request, keys_of(ctx, &owner)?, |k| k.access_key_id.clone())?;
    let mut xml = Xml::new();
    xml.list("AccessKeyMetadata", &keys, |xml, key| {
        xml.field("UserName", &user_name_of(ctx, key))
            .field("AccessKeyId", &key.access_key_id)
            .field("Status", key.status.as_str())
            .field("CreateDate", &timestamp(key.create_date));
    });
    write_page_end(&mut xml, marker);
    Ok(Some(xml))
}

pub(super) async fn update(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let owner = owner(ctx, request)?;
    let id = request.required("AccessKeyId")?;
    let status = match request.required("Status")? {
        "Active" => KeyStatus::Active,
        "Inactive" => KeyStatus::Inactive,
        other => {
            return Err(ApiError::new(
                "ValidationError",
                format!("1 validation error detected: Value '{other}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]"),
            ))
        }
    };
    key_of(ctx, &owner, id)?;
    ctx.update::<AccessKey, _>(&keys::access_key(id), |current| {
        let mut key = current.ok_or_else(|| {
            no_such_entity(format!("The Access Key with id {id} cannot be found."))
        })?;
        key.status = status;
        Ok(key)
    })
    .await?;
    Ok(None)
}

pub(super) async fn delete(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let owner = owner(ctx, request)?;
    let id = request.required("AccessKeyId")?;
    key_of(ctx, &owner, id)?;
    ctx.commit(Txn::new().delete(keys::access_key(id))).await?;
    Ok(None)
}
