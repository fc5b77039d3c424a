//! Namespaces: CreateHttpNamespace, CreatePrivateDnsNamespace, GetNamespace, ListNamespaces,
//! DeleteNamespace, UpdateHttpNamespace and UpdatePrivateDnsNamespace. A private DNS namespace
//! is a domain Berth's DNS server answers for (the VPC a request names is accepted and
//! ignored: Berth has no VPCs); an HTTP namespace is a name for DiscoverInstances only. Public
//! DNS namespaces are refused: Berth serves no public DNS. One name is one namespace, whatever
//! its type, so DiscoverInstances by name is never ambiguous.

use super::model::{namespace_key, namespace_name_key, Namespace, Service, NAMESPACES, SERVICES};
use super::tags::{self, TagIn};
use super::{
    authorize, id_of, invalid, namespace_arn, namespace_not_found, new_id, operations, put_some,
    random_chars, required, Filter, ListRequest,
};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use berth_store::typed::encode;
use berth_store::{Compare, Txn};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The SOA record's TTL when a request gives none, seconds (Cloud Map's default).
const DEFAULT_SOA_TTL: i64 = 15;

/// The refusal of public DNS namespaces.
pub fn no_public_dns(op: &str) -> ApiError {
    invalid(format!(
        "Berth serves no public DNS, so {op} is not supported: use a private DNS namespace \
         (CreatePrivateDnsNamespace) or an HTTP namespace (CreateHttpNamespace)."
    ))
}

/// Checks a description (at most 1024 characters).
pub(super) fn check_description(description: Option<&str>) -> Result<(), ApiError> {
    if description.is_some_and(|d| d.chars().count() > 1024) {
        return Err(invalid("Description is at most 1024 characters long."));
    }
    Ok(())
}

/// Checks a CreatorRequestId (at most 64 characters).
pub(super) fn check_request_id(id: Option<&str>) -> Result<(), ApiError> {
    if id.is_some_and(|id| id.is_empty() || id.chars().count() > 64) {
        return Err(invalid("CreatorRequestId is 1 to 64 characters long."));
    }
    Ok(())
}

/// Checks that `name` is a domain name (labels of letters, digits, hyphens and underscores,
/// 1 to 63 characters, no hyphen at either end; 253 characters in all); returns it without a
/// trailing dot.
pub fn domain_name(name: &str) -> Result<String, ApiError> {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if trimmed.is_empty() || trimmed.len() > 253 || !trimmed.split('.').all(label_ok) {
        return Err(invalid(format!(
            "'{name}' is not a domain name: a DNS namespace is named by labels of letters, \
             digits, hyphens and underscores (1 to 63 characters, no hyphen first or last) \
             joined by dots, 253 characters in all, such as corp.local."
        )));
    }
    Ok(trimmed.to_string())
}

/// Checks an HTTP namespace's name (1 to 1024 printable ASCII characters, not an ARN).
fn http_name(name: &str) -> Result<String, ApiError> {
    let ok = (1..=1024).contains(&name.len())
        && name.chars().all(|c| ('!'..='~').contains(&c))
        && !name.starts_with("arn:");
    if !ok {
        return Err(invalid(format!(
            "'{name}' is not an HTTP namespace name: 1 to 1024 printable ASCII characters \
             without spaces, not starting with arn:."
        )));
    }
    Ok(name.to_string())
}

/// How many services each namespace has, by namespace id.
pub(super) fn service_counts(ctx: &Ctx) -> Result<BTreeMap<String, i64>, ApiError> {
    let mut counts = BTreeMap::new();
    for service in ctx.list::<Service>(SERVICES)? {
        *counts.entry(service.value.namespace_id).or_insert(0) += 1;
    }
    Ok(counts)
}

/// A namespace as the API shows it; `full` adds what only GetNamespace shows.
fn describe(ctx: &Ctx, namespace: &Namespace, services: i64, full: bool) -> Value {
    let mut dns = Map::new();
    put_some(&mut dns, "HostedZoneId", namespace.hosted_zone_id.clone());
    put_some(
        &mut dns,
        "SOA",
        namespace.soa_ttl.map(|ttl| json!({ "TTL": ttl })),
    );
    let mut out = Map::new();
    out.insert("Id".into(), namespace.id.clone().into());
    out.insert("Arn".into(), namespace.arn.clone().into());
    out.insert("ResourceOwner".into(), ctx.arns.account_id.clone().into());
    out.insert("Name".into(), namespace.name.clone().into());
    out.insert("Type".into(), namespace.kind.clone().into());
    put_some(&mut out, "Description", namespace.description.clone());
    out.insert("ServiceCount".into(), services.into());
    out.insert(
        "Properties".into(),
        json!({ "DnsProperties": dns, "HttpProperties": { "HttpName": namespace.name } }),
    );
    out.insert("CreateDate".into(), namespace.created.into());
    if full {
        put_some(
            &mut out,
            "CreatorRequestId",
            namespace.creator_request_id.clone(),
        );
    }
    Value::Object(out)
}

/// What a namespace creation asks for, checked.
struct NewNamespace {
    name: String,
    kind: &'static str,
    description: Option<String>,
    creator_request_id: Option<String>,
    tags: Vec<super::model::Tag>,
    soa_ttl: Option<i64>,
}

/// Creates the namespace, or answers the operation of the one an earlier attempt with the
/// same CreatorRequestId created.
async fn create(ctx: &Ctx, new: NewNamespace) -> Result<Value, ApiError> {
    let action = if new.kind == "HTTP" {
        "CreateHttpNamespace"
    } else {
        "CreatePrivateDnsNamespace"
    };
    authorize(ctx, action, "*")?;
    let name_key = namespace_name_key(&new.name);
    loop {
        if let Some(held) = ctx.get::<String>(&name_key)? {
            let existing = ctx.get::<Namespace>(&namespace_key(&held.value))?;
            if let Some(existing) = existing.map(|e| e.value) {
                let retried = new.creator_request_id.is_some()
                    && existing.creator_request_id == new.creator_request_id
                    && existing.kind == new.kind;
                if retried {
                    if let Some(id) =
                        operations::of_namespace(ctx, "CREATE_NAMESPACE", &existing.id)?
                    {
                        return Ok(json!({ "OperationId": id }));
                    }
                }
                return Err(ApiError::new(
                    "NamespaceAlreadyExists",
                    format!(
                        "A namespace named {} already exists: {} ({}).",
                        existing.name, existing.id, existing.kind
                    ),
                ));
            }
        }
        let id = new_id("ns-");
        let namespace = Namespace {
            arn: namespace_arn(ctx, &id),
            id: id.clone(),
            name: new.name.clone(),
            kind: new.kind.to_string(),
            description: new.description.clone(),
            hosted_zone_id: (new.kind != "HTTP")
                .then(|| format!("Z{}", random_chars(13).to_ascii_uppercase())),
            soa_ttl: new.soa_ttl,
            created: ctx.now(),
            creator_request_id: new.creator_request_id.clone(),
            tags: new.tags.clone(),
        };
        let key = namespace_key(&id);
        let guard = ctx.get::<String>(&name_key)?.map_or(0, |h| h.mod_revision);
        let txn = Txn::new()
            .when(Compare::at(&name_key, guard))
            .when(Compare::absent(&key))
            .put(&key, encode(&namespace))
            .put(&name_key, encode(&id));
        let (txn, operation) =
            operations::record(ctx, txn, "CREATE_NAMESPACE", &[("NAMESPACE", &id)])?;
        if ctx.commit(txn).await?.succeeded {
            return Ok(json!({ "OperationId": operation }));
        }
    }
}

/// CreateHttpNamespace's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateHttpRequest {
    name: Option<String>,
    creator_request_id: Option<String>,
    description: Option<String>,
    tags: Option<Vec<TagIn>>,
}

/// CreateHttpNamespace: a namespace whose services are found by DiscoverInstances only.
pub async fn create_http(ctx: &Ctx, input: CreateHttpRequest) -> Result<Value, ApiError> {
    let name = http_name(&required(input.name, "Name")?)?;
    check_description(input.description.as_deref())?;
    check_request_id(input.creator_request_id.as_deref())?;
    let new = NewNamespace {
        name,
        kind: "HTTP",
        description: input.description,
        creator_request_id: input.creator_request_id,
        tags: tags::checked(input.tags)?,
        soa_ttl: None,
    };
    create(ctx, new).await
}

/// The SOA of a DNS namespace's properties.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Soa {
    #[serde(rename = "TTL")]
    ttl: Option<i64>,
}

/// DnsProperties of a private DNS namespace's properties.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DnsProperties {
    #[serde(rename = "SOA")]
    soa: Option<Soa>,
}

/// Properties of a private DNS namespace (in creation and in update).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Properties {
    dns_properties: Option<DnsProperties>,
}

impl Properties {
    /// The SOA TTL the properties set, checked (they must name one).
    fn soa_ttl(self) -> Result<i64, ApiError> {
        let dns = required(self.dns_properties, "Properties.DnsProperties")?;
        let soa = required(dns.soa, "Properties.DnsProperties.SOA")?;
        let ttl = required(soa.ttl, "Properties.DnsProperties.SOA.TTL")?;
        if !(0..=i64::from(i32::MAX)).contains(&ttl) {
            return Err(invalid(format!(
                "The SOA TTL must be from 0 to 2147483647 seconds, not {ttl}."
            )));
        }
        Ok(ttl)
    }
}

/// CreatePrivateDnsNamespace's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreatePrivateDnsRequest {
    name: Option<String>,
    creator_request_id: Option<String>,
    description: Option<String>,
    /// Accepted and ignored: Berth has no VPCs; its DNS server answers every client.
    #[allow(dead_code)]
    vpc: Option<String>,
    tags: Option<Vec<TagIn>>,
    properties: Option<Properties>,
}

/// CreatePrivateDnsNamespace: a domain Berth's DNS server answers for.
pub async fn create_private_dns(
    ctx: &Ctx,
    input: CreatePrivateDnsRequest,
) -> Result<Value, ApiError> {
    let name = domain_name(&required(input.name, "Name")?)?;
    check_description(input.description.as_deref())?;
    check_request_id(input.creator_request_id.as_deref())?;
    if input.vpc.as_deref().is_some_and(|v| v.chars().count() > 64) {
        return Err(invalid("Vpc is at most 64 characters long."));
    }
    let soa_ttl = match input.properties {
        Some(properties) => properties.soa_ttl()?,
        None => DEFAULT_SOA_TTL,
    };
    let new = NewNamespace {
        name,
        kind: "DNS_PRIVATE",
        description: input.description,
        creator_request_id: input.creator_request_id,
        tags: tags::checked(input.tags)?,
        soa_ttl: Some(soa_ttl),
    };
    create(ctx, new).await
}

/// An input naming one namespace by `Id`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IdRequest {
    id: Option<String>,
}

/// The namespace `reference` (an id or ARN) names, with its store revision.
pub(super) fn find(
    ctx: &Ctx,
    reference: &str,
) -> Result<berth_store::typed::Versioned<Namespace>, ApiError> {
    let id = id_of(reference, "namespace", "ns-")?;
    ctx.get::<Namespace>(&namespace_key(&id))?
        .ok_or_else(|| namespace_not_found(&id))
}

/// GetNamespace.
pub fn get(ctx: &Ctx, input: IdRequest) -> Result<Value, ApiError> {
    let reference = required(input.id, "Id")?;
    let id = id_of(&reference, "namespace", "ns-")?;
    authorize(ctx, "GetNamespace", &namespace_arn(ctx, &id))?;
    let namespace = find(ctx, &id)?.value;
    let services = service_counts(ctx)?.get(&id).copied().unwrap_or(0);
    Ok(json!({ "Namespace": describe(ctx, &namespace, services, true) }))
}

/// A checked filter: whether a namespace passes it.
type Test = Box<dyn Fn(&Namespace) -> bool>;

/// The test `filter` makes, or what is wrong with it.
fn test_of(ctx: &Ctx, filter: Filter) -> Result<Test, ApiError> {
    let (name, values, condition) = filter.parts()?;
    let names = match name.as_str() {
        "TYPE" => false,
        "NAME" | "HTTP_NAME" => true,
        "RESOURCE_OWNER" => {
            return match (condition.as_str(), values.as_slice()) {
                ("EQ", [owner]) => {
                    let mine = owner == "SELF" || *owner == ctx.arns.account_id;
                    Ok(Box::new(move |_| mine))
                }
                _ => Err(invalid(
                    "The RESOURCE_OWNER filter takes the EQ condition and one value (SELF or an account id).",
                )),
            };
        }
        other => {
            return Err(invalid(format!(
                "'{other}' is not a namespace filter: use TYPE, NAME, HTTP_NAME or RESOURCE_OWNER."
            )))
        }
    };
    let field = move |n: &Namespace| {
        if names {
            n.name.clone()
        } else {
            n.kind.clone()
        }
    };
    let same = move |a: &str, b: &str| {
        if names {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    match (condition.as_str(), values.as_slice()) {
        ("EQ", [value]) => {
            let value = value.clone();
            Ok(Box::new(move |n| same(&field(n), &value)))
        }
        ("BEGINS_WITH", [value]) => {
            let value = value.clone();
            Ok(Box::new(move |n| {
                field(n)
                    .get(..value.len())
                    .is_some_and(|start| same(start, &value))
            }))
        }
        ("IN", [_, ..]) if !names => Ok(Box::new(move |n| values.contains(&field(n)))),
        ("EQ" | "BEGINS_WITH", _) => Err(invalid(format!(
            "The {condition} condition of {name} takes exactly one value."
        ))),
        _ => Err(invalid(format!(
            "The {name} filter does not take the {condition} condition: use EQ{}.",
            if names {
                " or BEGINS_WITH"
            } else {
                ", IN or BEGINS_WITH"
            }
        ))),
    }
}

/// ListNamespaces: the namespaces that pass every filter, oldest first.
pub fn list(ctx: &Ctx, mut input: ListRequest) -> Result<Value, ApiError> {
    let tests = input
        .filters
        .take()
        .unwrap_or_default()
        .into_iter()
        .map(|f| test_of(ctx, f))
        .collect::<Result<Vec<_>, _>>()?;
    authorize(ctx, "ListNamespaces", "*")?;
    let namespaces: Vec<Namespace> = ctx
        .list::<Namespace>(NAMESPACES)?
        .into_iter()
        .map(|n| n.value)
        .filter(|n| tests.iter().all(|test| test(n)))
        .collect();
    let counts = service_counts(ctx)?;
    input.answer(
        namespaces,
        |n| (n.created, &n.id),
        "Namespaces",
        |n| describe(ctx, n, counts.get(&n.id).copied().unwrap_or(0), false),
    )
}

/// DeleteNamespace: refused while the namespace has services.
pub async fn delete(ctx: &Ctx, input: IdRequest) -> Result<Value, ApiError> {
    let reference = required(input.id, "Id")?;
    let id = id_of(&reference, "namespace", "ns-")?;
    authorize(ctx, "DeleteNamespace", &namespace_arn(ctx, &id))?;
    loop {
        let found = find(ctx, &id)?;
        let services = service_counts(ctx)?.get(&id).copied().unwrap_or(0);
        if services > 0 {
            return Err(ApiError::new(
                "ResourceInUse",
                format!(
                    "Namespace {id} has {services} service(s): delete them (DeleteService) before the namespace."
                ),
            ));
        }
        let key = namespace_key(&id);
        let name_key = namespace_name_key(&found.value.name);
        let mut txn = Txn::new()
            .when(Compare::at(&key, found.mod_revision))
            .delete(&key);
        // The name is released only if this namespace holds it.
        if let Some(held) = ctx.get::<String>(&name_key)? {
            if held.value == id {
                txn = txn
                    .when(Compare::at(&name_key, held.mod_revision))
                    .delete(&name_key);
            }
        }
        let (txn, operation) =
            operations::record(ctx, txn, "DELETE_NAMESPACE", &[("NAMESPACE", &id)])?;
        if ctx.commit(txn).await?.succeeded {
            return Ok(json!({ "OperationId": operation }));
        }
    }
}

/// Applies `change` to namespace `reference` of type `kind` (`update` names the operation
/// for the error when it has another type); records an UPDATE_NAMESPACE operation.
async fn update(
    ctx: &Ctx,
    reference: &str,
    kind: &str,
    action: &str,
    change: impl Fn(&mut Namespace),
) -> Result<Value, ApiError> {
    let id = id_of(reference, "namespace", "ns-")?;
    authorize(ctx, action, &namespace_arn(ctx, &id))?;
    loop {
        let found = find(ctx, &id)?;
        let mut namespace = found.value;
        if namespace.kind != kind {
            let right = if namespace.kind == "HTTP" {
                "UpdateHttpNamespace"
            } else {
                "UpdatePrivateDnsNamespace"
            };
            return Err(invalid(format!(
                "Namespace {id} is a {} namespace: update it with {right}.",
                namespace.kind
            )));
        }
        change(&mut namespace);
        let key = namespace_key(&id);
        let txn = Txn::new()
            .when(Compare::at(&key, found.mod_revision))
            .put(&key, encode(&namespace));
        let (txn, operation) =
            operations::record(ctx, txn, "UPDATE_NAMESPACE", &[("NAMESPACE", &id)])?;
        if ctx.commit(txn).await?.succeeded {
            return Ok(json!({ "OperationId": operation }));
        }
    }
}

/// The change UpdateHttpNamespace and UpdatePrivateDnsNamespace carry.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NamespaceChange {
    description: Option<String>,
    properties: Option<Properties>,
}

/// UpdateHttpNamespace's and UpdatePrivateDnsNamespace's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateRequest {
    id: Option<String>,
    /// Idempotency is moot: an update applies the same change again.
    #[allow(dead_code)]
    updater_request_id: Option<String>,
    namespace: Option<NamespaceChange>,
}

/// UpdateHttpNamespace: sets an HTTP namespace's description.
pub async fn update_http(ctx: &Ctx, input: UpdateRequest) -> Result<Value, ApiError> {
    let reference = required(input.id, "Id")?;
    let change = required(input.namespace, "Namespace")?;
    if change.properties.is_some() {
        return Err(invalid(
            "An HTTP namespace has no DNS properties to update.",
        ));
    }
    let description = required(change.description, "Namespace.Description")?;
    check_description(Some(&description))?;
    update(ctx, &reference, "HTTP", "UpdateHttpNamespace", |n| {
        n.description = Some(description.clone());
    })
    .await
}

/// UpdatePrivateDnsNamespace: sets a private DNS namespace's description or SOA TTL.
pub async fn update_private_dns(ctx: &Ctx, input: UpdateRequest) -> Result<Value, ApiError> {
    let reference = required(input.id, "Id")?;
    let change = required(input.namespace, "Namespace")?;
    check_description(change.description.as_deref())?;
    let ttl = change.properties.map(Properties::soa_ttl).transpose()?;
    if change.description.is_none() && ttl.is_none() {
        return Err(invalid(
            "Namespace must change something: give a Description or Properties.DnsProperties.SOA.TTL.",
        ));
    }
    let description = change.description;
    update(
        ctx,
        &reference,
        "DNS_PRIVATE",
        "UpdatePrivateDnsNamespace",
        |n| {
            if let Some(description) = &description {
                n.description = Some(description.clone());
            }
            if let Some(ttl) = ttl {
                n.soa_ttl = Some(ttl);
            }
        },
    )
    .await
}

/// The ECS error for a `serviceConnectDefaults` namespace that cannot be used.
fn service_connect_namespace_not_found(reference: &str) -> ApiError {
    ApiError::new(
        "NamespaceNotFoundException",
        format!(
            "The namespace {reference} was not found: name an existing Cloud Map namespace \
             by its ARN, or give a name (an existing namespace of that name is used, or an \
             HTTP namespace of that name is created)."
        ),
    )
}

/// The namespace a cluster's `serviceConnectDefaults` names, resolved as ECS resolves it: an
/// ARN must name an existing namespace (of any type); a name picks the namespace of that
/// name, or creates an HTTP namespace ("API calls" discovery) of that name. Returns its ARN.
/// A namespace created here stays when the cluster goes, as in ECS.
pub async fn for_service_connect(ctx: &Ctx, reference: &str) -> Result<String, ApiError> {
    if reference.starts_with("arn:") {
        return match find(ctx, reference) {
            Ok(namespace) => Ok(namespace.value.arn),
            Err(_) => Err(service_connect_namespace_not_found(reference)),
        };
    }
    let ecs_forbidden = ['<', '>', '"', '/'];
    if reference.chars().count() > 1024 || reference.contains(ecs_forbidden) {
        return Err(ApiError::invalid_parameter(format!(
            "'{reference}' is not a namespace name: up to 1024 characters, without >, <, \" or /."
        )));
    }
    let name = http_name(reference).map_err(|e| ApiError::invalid_parameter(e.message))?;
    // A concurrent creation of the same name loses to the other and uses its namespace.
    for _ in 0..3 {
        if let Some(id) = ctx.get::<String>(&namespace_name_key(&name))? {
            if let Some(namespace) = ctx.get::<Namespace>(&namespace_key(&id.value))? {
                return Ok(namespace.value.arn);
            }
        }
        let new = NewNamespace {
            name: name.clone(),
            kind: "HTTP",
            description: None,
            creator_request_id: None,
            tags: Vec::new(),
            soa_ttl: None,
        };
        match create(ctx, new).await {
            Ok(_) => {}
            Err(e) if e.name == "NamespaceAlreadyExists" => {}
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::server(format!(
        "The namespace {name} was created and removed while this request looked for it: try again."
    )))
}
