//! Services: CreateService, GetService, ListServices, UpdateService, DeleteService and the
//! service's own attributes (GetServiceAttributes, UpdateServiceAttributes,
//! DeleteServiceAttributes). A service of a DNS namespace with a DnsConfig (`DNS_HTTP`) gives
//! each instance the DNS records it names, under `{service}.{namespace}`; any other service
//! (`HTTP`) is found by DiscoverInstances only. Route 53 health checks (HealthCheckConfig) are
//! refused: they serve public DNS namespaces, which Berth does not; custom health checks
//! (HealthCheckCustomConfig, as ECS uses) are served.

use super::model::{
    instances_of, namespace_key, revision_key, service_attributes_key, service_key, DnsRecord,
    Instance, Service, INSTANCES, SERVICES,
};
use super::namespaces::{check_description, check_request_id};
use super::tags::{self, TagIn};
use super::{
    authorize, id_of, invalid, new_id, operations, put_some, required, service_arn,
    service_not_found, Filter, ListRequest,
};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use berth_store::typed::{encode, Versioned};
use berth_store::{Compare, Txn};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The most attributes a service may have.
const MAX_SERVICE_ATTRIBUTES: usize = 30;

/// A DNS record as the API spells it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecordIn {
    #[serde(rename = "Type")]
    kind: Option<String>,
    #[serde(rename = "TTL")]
    ttl: Option<i64>,
}

/// DnsConfig (CreateService) and DnsConfigChange (UpdateService).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DnsConfigIn {
    namespace_id: Option<String>,
    routing_policy: Option<String>,
    dns_records: Option<Vec<RecordIn>>,
}

/// HealthCheckCustomConfig.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomConfigIn {
    failure_threshold: Option<i64>,
}

/// Checks a service's DNS records: one of the combinations Cloud Map allows (A, AAAA, A and
/// AAAA, SRV, CNAME), each with a TTL from 0 to 2147483647 seconds.
fn dns_records(records: Option<Vec<RecordIn>>) -> Result<Vec<DnsRecord>, ApiError> {
    let records = required(records, "DnsConfig.DnsRecords")?;
    let mut out: Vec<DnsRecord> = Vec::new();
    for record in records {
        let kind = required(record.kind, "DnsRecords.Type")?;
        let ttl = required(record.ttl, "DnsRecords.TTL")?;
        if !["A", "AAAA", "SRV", "CNAME"].contains(&kind.as_str()) {
            return Err(invalid(format!(
                "'{kind}' is not a DNS record type: use A, AAAA, SRV or CNAME."
            )));
        }
        if !(0..=i64::from(i32::MAX)).contains(&ttl) {
            return Err(invalid(format!(
                "The TTL of the {kind} record must be from 0 to 2147483647 seconds, not {ttl}."
            )));
        }
        if out.iter().any(|r| r.kind == kind) {
            return Err(invalid(format!(
                "DnsRecords names the {kind} record twice."
            )));
        }
        out.push(DnsRecord { kind, ttl });
    }
    let mut kinds: Vec<&str> = out.iter().map(|r| r.kind.as_str()).collect();
    kinds.sort_unstable();
    if !matches!(
        kinds.as_slice(),
        ["A"] | ["AAAA"] | ["A", "AAAA"] | ["SRV"] | ["CNAME"]
    ) {
        return Err(invalid(format!(
            "DnsRecords of types {} cannot go together: give A, AAAA, A and AAAA, SRV or CNAME.",
            kinds.join(", ")
        )));
    }
    Ok(out)
}

/// Checks a service's name: a DNS label for a service with DNS records (`dns`), else up to
/// 127 characters of dot-separated labels.
fn service_name(name: &str, dns: bool) -> Result<(), ApiError> {
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if dns && !label_ok(name) {
        return Err(invalid(format!(
            "'{name}' is not a DNS label: a service with DNS records is named by 1 to 63 \
             letters, digits, hyphens and underscores, no hyphen first or last."
        )));
    }
    if name.is_empty() || name.len() > 127 || !name.split('.').all(label_ok) {
        return Err(invalid(format!(
            "'{name}' is not a service name: 1 to 127 characters of dot-separated labels of \
             letters, digits, hyphens and underscores."
        )));
    }
    Ok(())
}

/// How many instances each service has, by service id.
fn instance_counts(ctx: &Ctx) -> Result<BTreeMap<String, i64>, ApiError> {
    let mut counts = BTreeMap::new();
    for instance in ctx.list::<Instance>(INSTANCES)? {
        *counts.entry(instance.value.service_id).or_insert(0) += 1;
    }
    Ok(counts)
}

/// A service as the API shows it; `full` adds what only GetService and CreateService show.
fn describe(ctx: &Ctx, service: &Service, instances: usize, full: bool) -> Value {
    let mut out = Map::new();
    out.insert("Id".into(), service.id.clone().into());
    out.insert("Arn".into(), service.arn.clone().into());
    out.insert("ResourceOwner".into(), ctx.arns.account_id.clone().into());
    out.insert("Name".into(), service.name.clone().into());
    if full {
        out.insert("NamespaceId".into(), service.namespace_id.clone().into());
    }
    put_some(&mut out, "Description", service.description.clone());
    out.insert("InstanceCount".into(), instances.into());
    if !service.dns_records.is_empty() {
        let records: Vec<Value> = service
            .dns_records
            .iter()
            .map(|r| json!({ "Type": r.kind, "TTL": r.ttl }))
            .collect();
        let mut dns = Map::new();
        dns.insert("NamespaceId".into(), service.namespace_id.clone().into());
        put_some(&mut dns, "RoutingPolicy", service.routing_policy.clone());
        dns.insert("DnsRecords".into(), records.into());
        out.insert("DnsConfig".into(), Value::Object(dns));
    }
    out.insert("Type".into(), service.kind.clone().into());
    if let Some(threshold) = service.custom_health_failure_threshold {
        out.insert(
            "HealthCheckCustomConfig".into(),
            json!({ "FailureThreshold": threshold }),
        );
    }
    out.insert("CreateDate".into(), service.created.into());
    if full {
        put_some(
            &mut out,
            "CreatorRequestId",
            service.creator_request_id.clone(),
        );
    }
    out.insert(
        "CreatedByAccount".into(),
        ctx.arns.account_id.clone().into(),
    );
    Value::Object(out)
}

/// The service `reference` (an id or ARN) names, with its store revision.
pub(super) fn find(ctx: &Ctx, reference: &str) -> Result<Versioned<Service>, ApiError> {
    let id = id_of(reference, "service", "srv-")?;
    ctx.get::<Service>(&service_key(&id))?
        .ok_or_else(|| service_not_found(&id))
}

/// CreateService's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateRequest {
    name: Option<String>,
    namespace_id: Option<String>,
    creator_request_id: Option<String>,
    description: Option<String>,
    dns_config: Option<DnsConfigIn>,
    health_check_config: Option<Value>,
    health_check_custom_config: Option<CustomConfigIn>,
    tags: Option<Vec<TagIn>>,
    #[serde(rename = "Type")]
    kind: Option<String>,
}

/// The refusal of Route 53 health checks.
fn no_route53_health_checks() -> ApiError {
    invalid(
        "HealthCheckConfig (Route 53 health checks) applies to public DNS namespaces, which \
         Berth does not serve: use HealthCheckCustomConfig and UpdateInstanceCustomHealthStatus.",
    )
}

/// CreateService: a service of a namespace (named at top level or, as older clients do, in
/// DnsConfig).
pub async fn create(ctx: &Ctx, input: CreateRequest) -> Result<Value, ApiError> {
    let name = required(input.name, "Name")?;
    check_description(input.description.as_deref())?;
    check_request_id(input.creator_request_id.as_deref())?;
    let tags = tags::checked(input.tags)?;
    if input.health_check_config.is_some() {
        return Err(no_route53_health_checks());
    }
    let threshold = match input.health_check_custom_config {
        Some(custom) => {
            let threshold = custom.failure_threshold.unwrap_or(1);
            if !(1..=10).contains(&threshold) {
                return Err(invalid(format!(
                    "HealthCheckCustomConfig.FailureThreshold must be from 1 to 10, not {threshold}."
                )));
            }
            Some(threshold)
        }
        None => None,
    };
    if let Some(kind) = input.kind.as_deref().filter(|k| *k != "HTTP") {
        return Err(invalid(format!(
            "'{kind}' is not a service type: the only one is HTTP."
        )));
    }
    let in_dns = input
        .dns_config
        .as_ref()
        .and_then(|d| d.namespace_id.clone());
    let namespace_ref = match (input.namespace_id, in_dns) {
        (Some(top), Some(dns)) if top != dns => {
            return Err(invalid(format!(
                "NamespaceId {top} and DnsConfig.NamespaceId {dns} differ: name one namespace."
            )))
        }
        (Some(id), _) | (None, Some(id)) => id,
        (None, None) => return Err(invalid("NamespaceId is required.")),
    };
    let namespace_id = id_of(&namespace_ref, "namespace", "ns-")?;
    let dns = match input.dns_config {
        Some(dns) => {
            let policy = dns
                .routing_policy
                .unwrap_or_else(|| "MULTIVALUE".to_string());
            if !["MULTIVALUE", "WEIGHTED"].contains(&policy.as_str()) {
                return Err(invalid(format!(
                    "'{policy}' is not a routing policy: use MULTIVALUE or WEIGHTED."
                )));
            }
            let records = dns_records(dns.dns_records)?;
            if records.iter().any(|r| r.kind == "CNAME") && policy != "WEIGHTED" {
                return Err(invalid(
                    "A service with a CNAME record needs the WEIGHTED routing policy.",
                ));
            }
            Some((records, policy))
        }
        None => None,
    };
    if dns.is_some() && input.kind.is_some() {
        return Err(invalid(
            "A service of type HTTP has no DNS records: leave out DnsConfig or Type.",
        ));
    }
    service_name(&name, dns.is_some())?;
    authorize(
        ctx,
        "CreateService",
        &super::namespace_arn(ctx, &namespace_id),
    )?;
    loop {
        let namespace = super::namespaces::find(ctx, &namespace_id)?;
        if dns.is_some() && namespace.value.kind == "HTTP" {
            return Err(invalid(format!(
                "Namespace {namespace_id} is an HTTP namespace: its services have no DNS records, so leave out DnsConfig."
            )));
        }
        let siblings = ctx.list::<Service>(SERVICES)?;
        let same = siblings
            .iter()
            .map(|s| &s.value)
            .find(|s| s.namespace_id == namespace_id && s.name.eq_ignore_ascii_case(&name));
        if let Some(existing) = same {
            if input.creator_request_id.is_some()
                && existing.creator_request_id == input.creator_request_id
            {
                let count = ctx.list::<Instance>(&instances_of(&existing.id))?.len();
                return Ok(json!({ "Service": describe(ctx, existing, count, true) }));
            }
            return Err(ApiError::new(
                "ServiceAlreadyExists",
                format!(
                    "Namespace {namespace_id} already has a service named {}: {}.",
                    existing.name, existing.id
                ),
            ));
        }
        let id = new_id("srv-");
        let service = Service {
            arn: service_arn(ctx, &id),
            id: id.clone(),
            name: name.clone(),
            namespace_id: namespace_id.clone(),
            description: input.description.clone(),
            dns_records: dns.as_ref().map(|d| d.0.clone()).unwrap_or_default(),
            routing_policy: dns.as_ref().map(|d| d.1.clone()),
            kind: if dns.is_some() { "DNS_HTTP" } else { "HTTP" }.to_string(),
            custom_health_failure_threshold: threshold,
            created: ctx.now(),
            creator_request_id: input.creator_request_id.clone(),
            tags: tags.clone(),
        };
        let ns_key = namespace_key(&namespace_id);
        let key = service_key(&id);
        // Rewriting the namespace as it is makes a racing DeleteNamespace (or a creation of
        // the same name) fail its guard and look again.
        let txn = Txn::new()
            .when(Compare::at(&ns_key, namespace.mod_revision))
            .when(Compare::absent(&key))
            .put(&ns_key, encode(&namespace.value))
            .put(&key, encode(&service));
        if ctx.commit(txn).await?.succeeded {
            return Ok(json!({ "Service": describe(ctx, &service, 0, true) }));
        }
    }
}

/// An input naming one service by `Id`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IdRequest {
    id: Option<String>,
}

/// GetService.
pub fn get(ctx: &Ctx, input: IdRequest) -> Result<Value, ApiError> {
    let id = id_of(&required(input.id, "Id")?, "service", "srv-")?;
    authorize(ctx, "GetService", &service_arn(ctx, &id))?;
    let service = find(ctx, &id)?.value;
    let count = ctx.list::<Instance>(&instances_of(&id))?.len();
    Ok(json!({ "Service": describe(ctx, &service, count, true) }))
}

/// The namespace ids a NAMESPACE_ID filter keeps (None: every one), checked; `false` when a
/// RESOURCE_OWNER filter names another account.
fn namespaces_kept(
    ctx: &Ctx,
    filters: Vec<Filter>,
) -> Result<(Option<Vec<String>>, bool), ApiError> {
    let mut kept: Option<Vec<String>> = None;
    let mut mine = true;
    for filter in filters {
        let (name, values, condition) = filter.parts()?;
        match (name.as_str(), condition.as_str(), values.len()) {
            ("NAMESPACE_ID", "EQ", 1) | ("NAMESPACE_ID", "IN", 1..) => {
                let ids = values
                    .iter()
                    .map(|v| id_of(v, "namespace", "ns-"))
                    .collect::<Result<Vec<_>, _>>()?;
                kept = Some(match kept {
                    Some(before) => before.into_iter().filter(|id| ids.contains(id)).collect(),
                    None => ids,
                });
            }
            ("RESOURCE_OWNER", "EQ", 1) => {
                mine &= values[0] == "SELF" || values[0] == ctx.arns.account_id;
            }
            ("NAMESPACE_ID" | "RESOURCE_OWNER", _, _) => {
                return Err(invalid(format!(
                    "The {name} filter takes {} with {} value(s), not {condition} with {}.",
                    if name == "NAMESPACE_ID" {
                        "EQ or IN"
                    } else {
                        "EQ"
                    },
                    if name == "NAMESPACE_ID" {
                        "one or more"
                    } else {
                        "one"
                    },
                    values.len()
                )))
            }
            (other, _, _) => {
                return Err(invalid(format!(
                    "'{other}' is not a service filter: use NAMESPACE_ID or RESOURCE_OWNER."
                )))
            }
        }
    }
    Ok((kept, mine))
}

/// ListServices: the services of the namespaces the filters keep, oldest first.
pub fn list(ctx: &Ctx, mut input: ListRequest) -> Result<Value, ApiError> {
    let (namespaces, mine) = namespaces_kept(ctx, input.filters.take().unwrap_or_default())?;
    authorize(ctx, "ListServices", "*")?;
    let services: Vec<Service> = ctx
        .list::<Service>(SERVICES)?
        .into_iter()
        .map(|s| s.value)
        .filter(|s| {
            mine && namespaces
                .as_ref()
                .is_none_or(|ids| ids.contains(&s.namespace_id))
        })
        .collect();
    let counts = instance_counts(ctx)?;
    input.answer(
        services,
        |s| (s.created, &s.id),
        "Services",
        |s| {
            let count = counts.get(&s.id).copied().unwrap_or(0);
            describe(ctx, s, usize::try_from(count).unwrap_or(0), false)
        },
    )
}

/// UpdateService's change.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceChange {
    description: Option<String>,
    dns_config: Option<DnsConfigIn>,
    health_check_config: Option<Value>,
}

/// UpdateService's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateRequest {
    id: Option<String>,
    service: Option<ServiceChange>,
}

/// UpdateService: a new description, or new TTLs for the service's DNS records (their types
/// stay what they are).
pub async fn update(ctx: &Ctx, input: UpdateRequest) -> Result<Value, ApiError> {
    let id = id_of(&required(input.id, "Id")?, "service", "srv-")?;
    let change = required(input.service, "Service")?;
    check_description(change.description.as_deref())?;
    if change.health_check_config.is_some() {
        return Err(no_route53_health_checks());
    }
    let records = match change.dns_config {
        Some(dns) => {
            if dns.routing_policy.is_some() || dns.namespace_id.is_some() {
                return Err(invalid(
                    "UpdateService changes only DnsConfig.DnsRecords: a service keeps its namespace and routing policy.",
                ));
            }
            Some(dns_records(dns.dns_records)?)
        }
        None => None,
    };
    authorize(ctx, "UpdateService", &service_arn(ctx, &id))?;
    loop {
        let found = find(ctx, &id)?;
        let mut service = found.value;
        if let Some(records) = &records {
            let kinds = |list: &[DnsRecord]| {
                let mut kinds: Vec<String> = list.iter().map(|r| r.kind.clone()).collect();
                kinds.sort();
                kinds
            };
            if service.dns_records.is_empty() {
                return Err(invalid(format!(
                    "Service {id} has no DNS records (its type is {}): it cannot get any.",
                    service.kind
                )));
            }
            if kinds(records) != kinds(&service.dns_records) {
                return Err(invalid(format!(
                    "Service {id} has {} records: an update may change their TTLs, not their types.",
                    kinds(&service.dns_records).join(" and ")
                )));
            }
            service.dns_records = records.clone();
        }
        if let Some(description) = &change.description {
            service.description = Some(description.clone());
        }
        let key = service_key(&id);
        let txn = Txn::new()
            .when(Compare::at(&key, found.mod_revision))
            .put(&key, encode(&service));
        let targets = operations::targets(&service.namespace_id, Some(&id), None);
        let (txn, operation) = operations::record(ctx, txn, "UPDATE_SERVICE", &targets)?;
        if ctx.commit(txn).await?.succeeded {
            return Ok(json!({ "OperationId": operation }));
        }
    }
}

/// DeleteService: refused while the service has instances.
pub async fn delete(ctx: &Ctx, input: IdRequest) -> Result<Value, ApiError> {
    let id = id_of(&required(input.id, "Id")?, "service", "srv-")?;
    authorize(ctx, "DeleteService", &service_arn(ctx, &id))?;
    loop {
        let found = find(ctx, &id)?;
        let instances = ctx.list::<Instance>(&instances_of(&id))?.len();
        if instances > 0 {
            return Err(ApiError::new(
                "ResourceInUse",
                format!(
                    "Service {id} has {instances} registered instance(s): deregister them (DeregisterInstance) before deleting the service."
                ),
            ));
        }
        let key = service_key(&id);
        let revision = revision_key(&id);
        let revision_at = ctx.get::<i64>(&revision)?.map_or(0, |r| r.mod_revision);
        let txn = Txn::new()
            .when(Compare::at(&key, found.mod_revision))
            .when(Compare::at(&revision, revision_at))
            .delete(&key)
            .delete(&revision)
            .delete(service_attributes_key(&id));
        if ctx.commit(txn).await?.succeeded {
            return Ok(json!({}));
        }
    }
}

/// An input naming one service by `ServiceId`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributesRequest {
    service_id: Option<String>,
    attributes: Option<Value>,
}

/// The service's attributes as kept.
fn attributes_of(ctx: &Ctx, id: &str) -> Result<Versioned<BTreeMap<String, String>>, ApiError> {
    Ok(ctx
        .get::<BTreeMap<String, String>>(&service_attributes_key(id))?
        .unwrap_or(Versioned {
            value: BTreeMap::new(),
            mod_revision: 0,
        }))
}

/// GetServiceAttributes.
pub fn get_attributes(ctx: &Ctx, input: AttributesRequest) -> Result<Value, ApiError> {
    let id = id_of(&required(input.service_id, "ServiceId")?, "service", "srv-")?;
    authorize(ctx, "GetServiceAttributes", &service_arn(ctx, &id))?;
    let service = find(ctx, &id)?.value;
    let attributes = attributes_of(ctx, &id)?.value;
    Ok(json!({ "ServiceAttributes": {
        "ServiceArn": service.arn,
        "ResourceOwner": ctx.arns.account_id,
        "Attributes": attributes,
    }}))
}

/// Applies `change` to the attributes of service `id` under compare-on-revision.
async fn change_attributes(
    ctx: &Ctx,
    id: &str,
    change: impl Fn(&mut BTreeMap<String, String>),
) -> Result<(), ApiError> {
    loop {
        let service = find(ctx, id)?;
        let current = attributes_of(ctx, id)?;
        let mut attributes = current.value;
        change(&mut attributes);
        if attributes.len() > MAX_SERVICE_ATTRIBUTES {
            return Err(ApiError::new(
                "ServiceAttributesLimitExceededException",
                format!("A service may have at most {MAX_SERVICE_ATTRIBUTES} attributes."),
            ));
        }
        let key = service_attributes_key(id);
        let skey = service_key(id);
        let txn = Txn::new()
            .when(Compare::at(&skey, service.mod_revision))
            .when(Compare::at(&key, current.mod_revision))
            .put(&key, encode(&attributes));
        if ctx.commit(txn).await?.succeeded {
            return Ok(());
        }
    }
}

/// UpdateServiceAttributes: adds or replaces attributes of the service.
pub async fn update_attributes(ctx: &Ctx, input: AttributesRequest) -> Result<Value, ApiError> {
    let id = id_of(&required(input.service_id, "ServiceId")?, "service", "srv-")?;
    let attributes: BTreeMap<String, String> =
        super::input(required(input.attributes, "Attributes")?)?;
    if attributes.is_empty() || attributes.len() > MAX_SERVICE_ATTRIBUTES {
        return Err(invalid(format!(
            "Attributes holds 1 to {MAX_SERVICE_ATTRIBUTES} attributes."
        )));
    }
    for (key, value) in &attributes {
        if key.is_empty() || key.chars().count() > 255 || value.chars().count() > 1024 {
            return Err(invalid(format!(
                "Service attribute {key}: names are 1 to 255 characters, values at most 1024."
            )));
        }
    }
    authorize(ctx, "UpdateServiceAttributes", &service_arn(ctx, &id))?;
    change_attributes(ctx, &id, |current| current.extend(attributes.clone())).await?;
    Ok(json!({}))
}

/// DeleteServiceAttributes: removes the named attributes of the service.
pub async fn delete_attributes(ctx: &Ctx, input: AttributesRequest) -> Result<Value, ApiError> {
    let id = id_of(&required(input.service_id, "ServiceId")?, "service", "srv-")?;
    let keys: Vec<String> = super::input(required(input.attributes, "Attributes")?)?;
    if keys.is_empty() || keys.len() > MAX_SERVICE_ATTRIBUTES {
        return Err(invalid(format!(
            "Attributes names 1 to {MAX_SERVICE_ATTRIBUTES} attribute keys."
        )));
    }
    authorize(ctx, "DeleteServiceAttributes", &service_arn(ctx, &id))?;
    change_attributes(ctx, &id, |current| current.retain(|k, _| !keys.contains(k))).await?;
    Ok(json!({}))
}
