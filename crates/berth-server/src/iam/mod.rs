//! IAM, served on the ECS endpoint over the query protocol so `aws iam` and boto3's IAM
//! client work unchanged: users, their access keys and inline policies, roles and theirs.
//! One file per resource; each handler reads its query parameters and writes IAM's XML.

mod access_keys;
pub mod agent_user;
mod inline_policies;
mod roles;
mod users;

use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::protocol::query::{QueryRequest, Xml};
use berth_core::model::iam::IamTag;

pub(crate) use roles::existing as role;

/// XML namespace of IAM answers.
pub const NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// Runs IAM action `request.action`; the XML of its result, if it has one.
pub async fn dispatch(ctx: Ctx, request: QueryRequest) -> Result<Option<Xml>, ApiError> {
    use inline_policies::Owner::{Role, User};
    crate::authz::authorize_iam(&ctx, &request)?;
    match request.action.as_str() {
        "CreateUser" => users::create(&ctx, &request).await,
        "GetUser" => users::get(&ctx, &request),
        "ListUsers" => users::list(&ctx, &request),
        "DeleteUser" => users::delete(&ctx, &request).await,
        "CreateAccessKey" => access_keys::create(&ctx, &request).await,
        "ListAccessKeys" => access_keys::list(&ctx, &request),
        "UpdateAccessKey" => access_keys::update(&ctx, &request).await,
        "DeleteAccessKey" => access_keys::delete(&ctx, &request).await,
        "PutUserPolicy" => inline_policies::put(&ctx, &request, User).await,
        "GetUserPolicy" => inline_policies::get(&ctx, &request, User),
        "DeleteUserPolicy" => inline_policies::delete(&ctx, &request, User).await,
        "ListUserPolicies" => inline_policies::list(&ctx, &request, User),
        "CreateRole" => roles::create(&ctx, &request).await,
        "GetRole" => roles::get(&ctx, &request),
        "ListRoles" => roles::list(&ctx, &request),
        "DeleteRole" => roles::delete(&ctx, &request).await,
        "PutRolePolicy" => inline_policies::put(&ctx, &request, Role).await,
        "GetRolePolicy" => inline_policies::get(&ctx, &request, Role),
        "DeleteRolePolicy" => inline_policies::delete(&ctx, &request, Role).await,
        "ListRolePolicies" => inline_policies::list(&ctx, &request, Role),
        other => Err(ApiError::new(
            "InvalidAction",
            format!("The action {other} is not valid for this web service."),
        )),
    }
}

/// IAM's name rule for users, roles and policies: 1 to `max` of `[A-Za-z0-9+=,.@_-]`.
fn validate_name(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    let valid = !value.is_empty()
        && value.len() <= max
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if valid {
        Ok(())
    } else {
        Err(ApiError::new(
            "ValidationError",
            format!(
                "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: Member must have length between 1 and {max} and match [\\w+=,.@-]+"
            ),
        ))
    }
}

/// A path: `/` or `/a/b/`, at most 512 characters of printable ASCII.
fn validate_path(path: &str) -> Result<(), ApiError> {
    let valid = path.starts_with('/')
        && path.ends_with('/')
        && path.len() <= 512
        && path.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if valid {
        Ok(())
    } else {
        Err(ApiError::new(
            "ValidationError",
            format!("The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters: '{path}'."),
        ))
    }
}

/// The tags of a request's `Tags.member.N`.
fn tags_of(request: &QueryRequest) -> Result<Vec<IamTag>, ApiError> {
    let tags: Vec<IamTag> = request
        .structures("Tags")
        .into_iter()
        .map(|t| IamTag {
            key: t.get("Key").cloned().unwrap_or_default(),
            value: t.get("Value").cloned().unwrap_or_default(),
        })
        .collect();
    if tags.len() > 50 {
        return Err(ApiError::new(
            "LimitExceeded",
            "Cannot exceed quota for TagsPerUser: 50.",
        ));
    }
    if let Some(bad) = tags
        .iter()
        .find(|t| t.key.is_empty() || t.key.len() > 128 || t.value.len() > 256)
    {
        return Err(ApiError::new(
            "InvalidInput",
            format!(
                "The tag key '{}' or its value is empty or too long.",
                bad.key
            ),
        ));
    }
    Ok(tags)
}

fn write_tags(xml: &mut Xml, tags: &[IamTag]) {
    if !tags.is_empty() {
        xml.list("Tags", tags, |xml, tag| {
            xml.field("Key", &tag.key).field("Value", &tag.value);
        });
    }
}

/// What a policy document is for: a trust policy names principals, an identity policy may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PolicyKind {
    Identity,
    Trust,
}

/// A policy document checked against the IAM policy grammar.
fn policy_document(
    request: &QueryRequest,
    field: &str,
    kind: PolicyKind,
) -> Result<String, ApiError> {
    let document = request.required(field)?;
    if document.len() > 131_072 {
        return Err(ApiError::new(
            "LimitExceeded",
            "Cannot exceed quota for PolicySize: 131072.",
        ));
    }
    let policy = berth_core::iam::Policy::parse(document).map_err(|e| {
        // A trust statement without a principal fails the grammar's resource rule first;
        // IAM names what a trust policy lacks.
        let message = match kind {
            PolicyKind::Trust if e.message == "Policy statement must contain resources." => {
                "Missing required field Principal".to_string()
            }
            _ => e.message,
        };
        ApiError::new("MalformedPolicyDocument", message)
    })?;
    match kind {
        PolicyKind::Identity => policy.check_identity_policy(),
        PolicyKind::Trust => policy.check_trust_policy(),
    }
    .map_err(|e| ApiError::new("MalformedPolicyDocument", e.message))?;
    Ok(document.to_string())
}

/// One page of `items` (sorted by `key`) after `Marker`, at most `MaxItems` (1–1000, default
/// 100): the page, and the marker of the next one.
fn page<T>(
    request: &QueryRequest,
    items: Vec<T>,
    key: impl Fn(&T) -> String,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let max = request.integer("MaxItems")?.unwrap_or(100);
    if !(1..=1000).contains(&max) {
        return Err(ApiError::new(
            "ValidationError",
            format!("1 validation error detected: Value '{max}' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000"),
        ));
    }
    let after = request.get("Marker");
    let mut rest: Vec<T> = items
        .into_iter()
        .filter(|item| after.is_none_or(|m| key(item).as_str() > m))
        .collect();
    let max = max as usize;
    if rest.len() > max {
        rest.truncate(max);
        let marker = rest.last().map(&key);
        Ok((rest, marker))
    } else {
        Ok((rest, None))
    }
}

/// `IsTruncated` and `Marker` of a page.
fn write_page_end(xml: &mut Xml, marker: Option<String>) {
    xml.field(
        "IsTruncated",
        if marker.is_some() { "true" } else { "false" },
    );
    xml.optional("Marker", marker.as_deref());
}

/// Refuses a permissions boundary: one ignored would grant more than it allows.
fn refuse_boundary(request: &QueryRequest) -> Result<(), ApiError> {
    if request.get("PermissionsBoundary").is_some() {
        return Err(ApiError::new(
            "ValidationError",
            "Berth does not support permissions boundaries yet: create the entity without PermissionsBoundary and keep its own policies narrow.",
        ));
    }
    Ok(())
}

fn no_such_entity(message: String) -> ApiError {
    ApiError::new("NoSuchEntity", message)
}

fn id_fault(e: std::io::Error) -> ApiError {
    ApiError::server(format!("making an IAM id: {e}"))
}
