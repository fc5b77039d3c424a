//! AWS Cloud Map (service discovery), served on the ECS endpoint under the target prefix
//! `Route53AutoNaming_v20170314`, in both protocols its clients speak: `smithy-rpc-v2-cbor`
//! and AWS JSON 1.1. [`model`] is what the store keeps; one file per resource holds its
//! operations: [`namespaces`], [`services`], [`instances`], [`operations`] and [`tags`].
//!
//! Every operation takes its input as the JSON value of its input shape (CBOR decodes to it)
//! and answers the JSON value of its output shape, which each protocol then writes in its own
//! form. Cloud Map's asynchronous calls answer an operation id; Berth applies each change
//! before answering, so every operation it records has already succeeded.

pub mod ecs;
pub mod instances;
pub mod model;
pub mod namespaces;
pub mod operations;
pub mod services;
pub mod tags;

use crate::dispatch::Ctx;
use crate::error::ApiError;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

/// The target prefix of Cloud Map's operations (`X-Amz-Target` and the CBOR path).
pub const TARGET_PREFIX: &str = "Route53AutoNaming_v20170314";

/// The output members that are timestamps, which CBOR sends as tag 1.
const TIMESTAMP_MEMBERS: &[&str] = &["CreateDate", "UpdateDate"];

/// Cloud Map's `InvalidInput`: a parameter is missing, malformed or cannot apply.
fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new("InvalidInput", message)
}

/// A required member is absent.
fn required<T>(value: Option<T>, name: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| invalid(format!("{name} is required.")))
}

/// `NamespaceNotFound` for the namespace `id`.
fn namespace_not_found(id: &str) -> ApiError {
    ApiError::new(
        "NamespaceNotFound",
        format!("Namespace not found: no namespace has the id {id}."),
    )
}

/// `ServiceNotFound` for the service `id`.
fn service_not_found(id: &str) -> ApiError {
    ApiError::new(
        "ServiceNotFound",
        format!("Service not found: no service has the id {id}."),
    )
}

/// The HTTP status Cloud Map answers error `name` with (its model's `httpStatusCode`); the
/// endpoint's own errors keep theirs.
pub fn status_of(error: &ApiError) -> StatusCode {
    match error.name {
        "NamespaceNotFound"
        | "ServiceNotFound"
        | "InstanceNotFound"
        | "OperationNotFound"
        | "CustomHealthNotFound"
        | "ResourceNotFoundException" => StatusCode::NOT_FOUND,
        "ResourceInUse" | "DuplicateRequest" => StatusCode::CONFLICT,
        "RequestLimitExceeded" => StatusCode::TOO_MANY_REQUESTS,
        _ => error.status(),
    }
}

/// Checks `servicediscovery:{action}` on `resource` for the caller.
fn authorize(ctx: &Ctx, action: &str, resource: &str) -> Result<(), ApiError> {
    crate::authz::authorize_as(
        ctx,
        &format!("servicediscovery:{action}"),
        resource,
        &Vec::new(),
        "AccessDeniedException",
    )
}

/// `n` random lowercase letters and digits (from v4 UUIDs' random bits, 24 characters each).
fn random_chars(n: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(n);
    while out.len() < n {
        let mut bits = uuid::Uuid::new_v4().as_u128();
        for _ in 0..24.min(n - out.len()) {
            out.push(char::from(ALPHABET[(bits % 36) as usize]));
            bits /= 36;
        }
    }
    out
}

/// A new resource id: `prefix` (`ns-`, `srv-`) and 16 lowercase letters and digits.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", random_chars(16))
}

/// `arn:aws:servicediscovery:{region}:{account}:{kind}/{id}`.
fn arn(ctx: &crate::app::App, kind: &str, id: &str) -> String {
    format!(
        "arn:aws:servicediscovery:{}:{}:{kind}/{id}",
        ctx.arns.region, ctx.arns.account_id
    )
}

/// The ARN of namespace `id`.
pub fn namespace_arn(app: &crate::app::App, id: &str) -> String {
    arn(app, "namespace", id)
}

/// The ARN of service `id`.
pub fn service_arn(app: &crate::app::App, id: &str) -> String {
    arn(app, "service", id)
}

/// The id a request's `Id` (an id or the resource's ARN) names, for resources of `kind`
/// (`namespace`, `service`) whose ids start with `prefix`.
fn id_of(reference: &str, kind: &str, prefix: &str) -> Result<String, ApiError> {
    let id = match reference.strip_prefix("arn:") {
        Some(_) => {
            let parts: Vec<&str> = reference.splitn(6, ':').collect();
            match parts.as_slice() {
                [_, _, "servicediscovery", _, _, resource] => resource
                    .strip_prefix(&format!("{kind}/"))
                    .unwrap_or_default(),
                _ => "",
            }
        }
        None => reference,
    };
    let well_formed = id.len() <= 64
        && id.strip_prefix(prefix).is_some_and(|rest| {
            !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric())
        });
    if well_formed {
        Ok(id.to_string())
    } else {
        Err(invalid(format!(
            "'{reference}' is not a {kind} id ({prefix}…) or a {kind} ARN."
        )))
    }
}

/// Puts `value` under `key` of `map` when there is one (Cloud Map leaves absent members out).
fn put_some(map: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(value) = value {
        map.insert(key.to_string(), value.into());
    }
}

/// One page of `items` (sorted here by `key`) after `token`: at most `max` of them (1 to
/// `limit`, default `default`), and the NextToken of the page after it, if any.
fn page<T>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> String,
    token: Option<&str>,
    max: Option<i64>,
    limit: i64,
    default: i64,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let max = max.unwrap_or(default);
    if !(1..=limit).contains(&max) {
        return Err(invalid(format!("MaxResults must be from 1 to {limit}.")));
    }
    items.sort_by_key(&key);
    let start = match token {
        None => 0,
        Some(token) => {
            let after = hex_decode(token).ok_or_else(|| {
                invalid("The NextToken is not one Berth gave: start over without it.")
            })?;
            items.partition_point(|item| key(item) <= after)
        }
    };
    let count = usize::try_from(max).unwrap_or(usize::MAX);
    let rest = items.split_off(start);
    let more = rest.len() > count;
    let page: Vec<T> = rest.into_iter().take(count).collect();
    let next = if more {
        page.last().map(|last| hex_encode(&key(last)))
    } else {
        None
    };
    Ok((page, next))
}

fn hex_encode(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(token: &str) -> Option<String> {
    if token.is_empty() || !token.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// Reads an operation's input from its JSON value, naming the member a bad value sits at.
fn input<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        ApiError::serialization(format!("Invalid value for '{path}': {inner}."))
    })
}

/// Runs operation `op` on its input; returns its output.
async fn run(ctx: Ctx, op: &str, value: Value) -> Result<Value, ApiError> {
    match op {
        "CreateHttpNamespace" => namespaces::create_http(&ctx, input(value)?).await,
        "CreatePrivateDnsNamespace" => namespaces::create_private_dns(&ctx, input(value)?).await,
        "CreatePublicDnsNamespace" | "UpdatePublicDnsNamespace" => {
            Err(namespaces::no_public_dns(op))
        }
        "GetNamespace" => namespaces::get(&ctx, input(value)?),
        "ListNamespaces" => namespaces::list(&ctx, input(value)?),
        "DeleteNamespace" => namespaces::delete(&ctx, input(value)?).await,
        "UpdateHttpNamespace" => namespaces::update_http(&ctx, input(value)?).await,
        "UpdatePrivateDnsNamespace" => namespaces::update_private_dns(&ctx, input(value)?).await,
        "CreateService" => services::create(&ctx, input(value)?).await,
        "GetService" => services::get(&ctx, input(value)?),
        "ListServices" => services::list(&ctx, input(value)?),
        "UpdateService" => services::update(&ctx, input(value)?).await,
        "DeleteService" => services::delete(&ctx, input(value)?).await,
        "GetServiceAttributes" => services::get_attributes(&ctx, input(value)?),
        "UpdateServiceAttributes" => services::update_attributes(&ctx, input(value)?).await,
        "DeleteServiceAttributes" => services::delete_attributes(&ctx, input(value)?).await,
        "RegisterInstance" => instances::register(&ctx, input(value)?).await,
        "DeregisterInstance" => instances::deregister(&ctx, input(value)?).await,
        "GetInstance" => instances::get(&ctx, input(value)?),
        "ListInstances" => instances::list(&ctx, input(value)?),
        "DiscoverInstances" => instances::discover(&ctx, input(value)?),
        "DiscoverInstancesRevision" => instances::discover_revision(&ctx, input(value)?),
        "GetInstancesHealthStatus" => instances::health_status(&ctx, input(value)?),
        "UpdateInstanceCustomHealthStatus" => {
            instances::update_custom_health(&ctx, input(value)?).await
        }
        "GetOperation" => operations::get(&ctx, input(value)?),
        "ListOperations" => operations::list(&ctx, input(value)?),
        "TagResource" => tags::tag(&ctx, input(value)?).await,
        "UntagResource" => tags::untag(&ctx, input(value)?).await,
        "ListTagsForResource" => tags::list(&ctx, input(value)?),
        other => Err(ApiError::new(
            "UnknownOperationException",
            format!(
                "'{other}' is not an operation of {TARGET_PREFIX}, or Berth does not serve it."
            ),
        )),
    }
}

/// Runs operation `op` on the AWS JSON 1.1 `body`; returns the JSON answer.
pub async fn dispatch_json(ctx: Ctx, op: &str, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let value = crate::protocol::json::parse_object(body)?;
    let output = run(ctx, op, value).await?;
    Ok(output.to_string().into_bytes())
}

/// Runs operation `op` on the CBOR `body`; returns the CBOR answer.
pub async fn dispatch_cbor(ctx: Ctx, op: &str, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let value = crate::protocol::cbor::decode(body)?;
    let output = run(ctx, op, value).await?;
    Ok(crate::protocol::cbor::encode(&output, TIMESTAMP_MEMBERS))
}

/// One filter of a List call (ListNamespaces, ListServices, ListOperations).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Filter {
    name: Option<String>,
    values: Option<Vec<String>>,
    condition: Option<String>,
}

impl Filter {
    /// Its name, its values and its condition (`EQ` when not given); a missing name or
    /// values is InvalidInput.
    pub fn parts(self) -> Result<(String, Vec<String>, String), ApiError> {
        Ok((
            required(self.name, "Filters.Name")?,
            required(self.values, "Filters.Values")?,
            self.condition.unwrap_or_else(|| "EQ".to_string()),
        ))
    }
}

/// The input of ListNamespaces, ListServices and ListOperations.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListRequest {
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
    pub filters: Option<Vec<Filter>>,
}

impl ListRequest {
    /// The answer: the page of `items` (oldest first, by `created` and then id) this request
    /// asks for, each as `show` has it, under `member`, with the NextToken of the next page.
    pub fn answer<T>(
        &self,
        items: Vec<T>,
        created: impl Fn(&T) -> (f64, &str),
        member: &str,
        show: impl Fn(&T) -> Value,
    ) -> Result<Value, ApiError> {
        let (page, next) = page(
            items,
            |item| {
                let (at, id) = created(item);
                format!("{at:020.3}{id}")
            },
            self.next_token.as_deref(),
            self.max_results,
            100,
            100,
        )?;
        let mut out = Map::new();
        out.insert(
            member.into(),
            page.iter().map(show).collect::<Vec<_>>().into(),
        );
        put_some(&mut out, "NextToken", next);
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests;
