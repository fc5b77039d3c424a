//! Instances: RegisterInstance, DeregisterInstance, GetInstance, ListInstances,
//! DiscoverInstances, DiscoverInstancesRevision, GetInstancesHealthStatus and
//! UpdateInstanceCustomHealthStatus. An instance's attributes are checked as Cloud Map checks
//! them: a service with an A record needs `AWS_INSTANCE_IPV4`, AAAA needs `AWS_INSTANCE_IPV6`,
//! SRV needs `AWS_INSTANCE_PORT` and an address, CNAME needs `AWS_INSTANCE_CNAME`. Every write
//! to a service's instances bumps its revision (DiscoverInstancesRevision), in the write's own
//! transaction. [`put_instance`] and [`remove_instance`] are the writes, for ECS's service
//! registries too.

use super::model::{
    instance_key, instances_of, revision_key, service_key, Instance, Namespace, Service,
    NAMESPACES, SERVICES,
};
use super::{id_of, invalid, operations, page, put_some, required, service_arn, service_not_found};
use crate::app::App;
use crate::dispatch::Ctx;
use crate::error::ApiError;
use berth_store::typed::encode;
use berth_store::{Compare, Txn};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The most instances one service may have (Cloud Map's quota).
pub const MAX_INSTANCES: usize = 1000;
/// The most custom (non-`AWS_`) attributes an instance may have.
const MAX_CUSTOM_ATTRIBUTES: usize = 30;
/// The attributes Cloud Map itself defines.
const AWS_ATTRIBUTES: &[&str] = &[
    "AWS_ALIAS_DNS_NAME",
    "AWS_EC2_INSTANCE_ID",
    "AWS_INIT_HEALTH_STATUS",
    "AWS_INSTANCE_CNAME",
    "AWS_INSTANCE_IPV4",
    "AWS_INSTANCE_IPV6",
    "AWS_INSTANCE_PORT",
];

/// Checks an instance id: 1 to 64 letters, digits and `_/:.@-`.
fn check_instance_id(id: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_/:.@-".contains(c));
    if !ok {
        return Err(invalid(format!(
            "'{id}' is not an instance id: 1 to 64 letters, digits and _ / : . @ -."
        )));
    }
    Ok(())
}

/// Checks attributes on their own: names and values, Cloud Map's own attributes' values, and
/// the limits on custom attributes.
pub fn check_attributes(attributes: &BTreeMap<String, String>) -> Result<(), ApiError> {
    let mut custom = 0;
    let mut size = 0;
    for (key, value) in attributes {
        let key_ok = (1..=255).contains(&key.len()) && key.chars().all(|c| c.is_ascii_graphic());
        if !key_ok {
            return Err(invalid(format!(
                "'{key}' is not an attribute name: 1 to 255 printable ASCII characters without spaces."
            )));
        }
        let value_ok = value.len() <= 1024
            && value
                .chars()
                .all(|c| c.is_ascii_graphic() || c == ' ' || c == '\t')
            && value.trim() == value;
        if !value_ok {
            return Err(invalid(format!(
                "The value of attribute {key} must be at most 1024 printable ASCII characters, without spaces at either end."
            )));
        }
        size += key.len() + value.len();
        if !AWS_ATTRIBUTES.contains(&key.as_str()) {
            custom += 1;
        }
    }
    if custom > MAX_CUSTOM_ATTRIBUTES {
        return Err(invalid(format!(
            "An instance may have at most {MAX_CUSTOM_ATTRIBUTES} custom attributes, not {custom}."
        )));
    }
    if size > 5000 {
        return Err(invalid(format!(
            "The attributes' names and values add up to {size} characters: the limit is 5000."
        )));
    }
    let get = |k: &str| attributes.get(k).map(String::as_str);
    if let Some(ip) = get("AWS_INSTANCE_IPV4") {
        if ip.parse::<std::net::Ipv4Addr>().is_err() {
            return Err(invalid(format!(
                "AWS_INSTANCE_IPV4 '{ip}' is not an IPv4 address."
            )));
        }
    }
    if let Some(ip) = get("AWS_INSTANCE_IPV6") {
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(invalid(format!(
                "AWS_INSTANCE_IPV6 '{ip}' is not an IPv6 address."
            )));
        }
    }
    if let Some(port) = get("AWS_INSTANCE_PORT") {
        if port.parse::<u16>().is_err() {
            return Err(invalid(format!(
                "AWS_INSTANCE_PORT '{port}' is not a port: a number from 0 to 65535."
            )));
        }
    }
    if let Some(status) = get("AWS_INIT_HEALTH_STATUS") {
        if status != "HEALTHY" && status != "UNHEALTHY" {
            return Err(invalid(format!(
                "AWS_INIT_HEALTH_STATUS '{status}' must be HEALTHY or UNHEALTHY."
            )));
        }
    }
    if let Some(cname) = get("AWS_INSTANCE_CNAME") {
        super::namespaces::domain_name(cname)?;
    }
    if get("AWS_ALIAS_DNS_NAME").is_some() {
        return Err(invalid(
            "AWS_ALIAS_DNS_NAME is not supported: Berth makes no Route 53 alias records; give the instance's address (AWS_INSTANCE_IPV4).",
        ));
    }
    if get("AWS_EC2_INSTANCE_ID").is_some() {
        return Err(invalid(
            "AWS_EC2_INSTANCE_ID is not supported: Berth has no EC2 instances; give the instance's address (AWS_INSTANCE_IPV4).",
        ));
    }
    Ok(())
}

/// Checks that attributes give what the service's DNS records need.
pub fn check_against(
    service: &Service,
    attributes: &BTreeMap<String, String>,
) -> Result<(), ApiError> {
    let has = |k: &str| attributes.contains_key(k);
    for record in &service.dns_records {
        let needed: &[&str] = match record.kind.as_str() {
            "A" => &["AWS_INSTANCE_IPV4"],
            "AAAA" => &["AWS_INSTANCE_IPV6"],
            "SRV" => &["AWS_INSTANCE_PORT"],
            "CNAME" => &["AWS_INSTANCE_CNAME"],
            _ => &[],
        };
        if let Some(missing) = needed.iter().find(|k| !has(k)) {
            return Err(invalid(format!(
                "Service {} has a {} record, so its instances need the attribute {missing}.",
                service.id, record.kind
            )));
        }
        if record.kind == "SRV" && !has("AWS_INSTANCE_IPV4") && !has("AWS_INSTANCE_IPV6") {
            return Err(invalid(format!(
                "Service {} has an SRV record, so its instances need an address: AWS_INSTANCE_IPV4, AWS_INSTANCE_IPV6 or both.",
                service.id
            )));
        }
    }
    Ok(())
}

/// Adds to `txn` the write that bumps service `service_id`'s instances revision, guarded on
/// it: every transaction that adds, changes or removes an instance should carry it.
pub fn bump_revision(app: &App, txn: Txn, service_id: &str) -> Result<Txn, ApiError> {
    let key = revision_key(service_id);
    let current = app.get::<i64>(&key)?;
    let (value, at) = current.map_or((0, 0), |c| (c.value, c.mod_revision));
    Ok(txn
        .when(Compare::at(&key, at))
        .put(&key, encode(&(value + 1))))
}

/// Registers `instance` in its service, or replaces the instance of the same id, once its
/// attributes fit the service; records a REGISTER_INSTANCE operation and returns its id.
pub async fn put_instance(app: &App, instance: Instance) -> Result<String, ApiError> {
    check_instance_id(&instance.id)?;
    check_attributes(&instance.attributes)?;
    loop {
        let service = app
            .get::<Service>(&service_key(&instance.service_id))?
            .ok_or_else(|| service_not_found(&instance.service_id))?;
        check_against(&service.value, &instance.attributes)?;
        let key = instance_key(&instance.service_id, &instance.id);
        let existing = app.get::<Instance>(&key)?;
        if existing.is_none()
            && app
                .list::<Instance>(&instances_of(&instance.service_id))?
                .len()
                >= MAX_INSTANCES
        {
            return Err(ApiError::new(
                "ResourceLimitExceeded",
                format!(
                    "Service {} already has {MAX_INSTANCES} instances, the most a service may have.",
                    instance.service_id
                ),
            ));
        }
        let txn = Txn::new()
            .when(Compare::at(
                service_key(&service.value.id),
                service.mod_revision,
            ))
            .when(Compare::at(&key, existing.map_or(0, |e| e.mod_revision)))
            .put(&key, encode(&instance));
        let txn = bump_revision(app, txn, &instance.service_id)?;
        let targets = operations::targets(
            &service.value.namespace_id,
            Some(&instance.service_id),
            Some(&instance.id),
        );
        let (txn, operation) = operations::record(app, txn, "REGISTER_INSTANCE", &targets)?;
        if app.commit(txn).await?.succeeded {
            return Ok(operation);
        }
    }
}

/// Deregisters instance `instance_id` of service `service_id`; records a
/// DEREGISTER_INSTANCE operation and returns its id (None when there was no such instance).
pub async fn remove_instance(
    app: &App,
    service_id: &str,
    instance_id: &str,
) -> Result<Option<String>, ApiError> {
    loop {
        let service = app
            .get::<Service>(&service_key(service_id))?
            .ok_or_else(|| service_not_found(service_id))?;
        let key = instance_key(service_id, instance_id);
        let Some(existing) = app.get::<Instance>(&key)? else {
            return Ok(None);
        };
        let txn = Txn::new()
            .when(Compare::at(&key, existing.mod_revision))
            .delete(&key);
        let txn = bump_revision(app, txn, service_id)?;
        let targets = operations::targets(
            &service.value.namespace_id,
            Some(service_id),
            Some(instance_id),
        );
        let (txn, operation) = operations::record(app, txn, "DEREGISTER_INSTANCE", &targets)?;
        if app.commit(txn).await?.succeeded {
            return Ok(Some(operation));
        }
    }
}

/// Checks `servicediscovery:{action}` on service `service_id` for the caller.
fn authorize(ctx: &Ctx, action: &str, service_id: &str) -> Result<(), ApiError> {
    super::authorize(ctx, action, &service_arn(ctx, service_id))
}

fn instance_not_found(service_id: &str, instance_id: &str) -> ApiError {
    ApiError::new(
        "InstanceNotFound",
        format!("Instance not found: service {service_id} has no instance {instance_id}."),
    )
}

/// RegisterInstance's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterRequest {
    service_id: Option<String>,
    instance_id: Option<String>,
    creator_request_id: Option<String>,
    attributes: Option<BTreeMap<String, String>>,
}

/// RegisterInstance: registers an instance, or updates the one of the same id (keeping its
/// health). A new instance of a service with custom health checks starts as
/// `AWS_INIT_HEALTH_STATUS` says (HEALTHY by default).
pub async fn register(ctx: &Ctx, input: RegisterRequest) -> Result<Value, ApiError> {
    let service_id = id_of(&required(input.service_id, "ServiceId")?, "service", "srv-")?;
    let instance_id = required(input.instance_id, "InstanceId")?;
    let attributes = required(input.attributes, "Attributes")?;
    check_instance_id(&instance_id)?;
    super::namespaces::check_request_id(input.creator_request_id.as_deref())?;
    check_attributes(&attributes)?;
    authorize(ctx, "RegisterInstance", &service_id)?;
    let existing = ctx.get::<Instance>(&instance_key(&service_id, &instance_id))?;
    let (health, created) = match existing {
        Some(existing) => (existing.value.health, existing.value.created),
        None => {
            let initial = attributes
                .get("AWS_INIT_HEALTH_STATUS")
                .cloned()
                .unwrap_or_else(|| "HEALTHY".to_string());
            (initial, ctx.now())
        }
    };
    let instance = Instance {
        id: instance_id,
        service_id,
        attributes,
        health,
        creator_request_id: input.creator_request_id,
        created,
        owner: None,
    };
    let operation = put_instance(ctx, instance).await?;
    Ok(json!({ "OperationId": operation }))
}

/// An input naming one instance of a service.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceRequest {
    service_id: Option<String>,
    instance_id: Option<String>,
}

impl InstanceRequest {
    fn ids(self) -> Result<(String, String), ApiError> {
        let service = id_of(&required(self.service_id, "ServiceId")?, "service", "srv-")?;
        let instance = required(self.instance_id, "InstanceId")?;
        Ok((service, instance))
    }
}

/// DeregisterInstance.
pub async fn deregister(ctx: &Ctx, input: InstanceRequest) -> Result<Value, ApiError> {
    let (service_id, instance_id) = input.ids()?;
    authorize(ctx, "DeregisterInstance", &service_id)?;
    match remove_instance(ctx, &service_id, &instance_id).await? {
        Some(operation) => Ok(json!({ "OperationId": operation })),
        None => Err(instance_not_found(&service_id, &instance_id)),
    }
}

/// The instance the ids name, its service checked first.
fn find(ctx: &Ctx, service_id: &str, instance_id: &str) -> Result<(Service, Instance), ApiError> {
    let service = super::services::find(ctx, service_id)?.value;
    let instance = ctx
        .get::<Instance>(&instance_key(service_id, instance_id))?
        .ok_or_else(|| instance_not_found(service_id, instance_id))?;
    Ok((service, instance.value))
}

/// GetInstance.
pub fn get(ctx: &Ctx, input: InstanceRequest) -> Result<Value, ApiError> {
    let (service_id, instance_id) = input.ids()?;
    authorize(ctx, "GetInstance", &service_id)?;
    let (_, instance) = find(ctx, &service_id, &instance_id)?;
    let mut out = Map::new();
    out.insert("Id".into(), instance.id.clone().into());
    put_some(
        &mut out,
        "CreatorRequestId",
        instance.creator_request_id.clone(),
    );
    out.insert("Attributes".into(), json!(instance.attributes));
    out.insert(
        "CreatedByAccount".into(),
        ctx.arns.account_id.clone().into(),
    );
    Ok(json!({ "ResourceOwner": ctx.arns.account_id, "Instance": out }))
}

/// ListInstances' input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListRequest {
    service_id: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// ListInstances: a service's instances by id.
pub fn list(ctx: &Ctx, input: ListRequest) -> Result<Value, ApiError> {
    let service_id = id_of(&required(input.service_id, "ServiceId")?, "service", "srv-")?;
    authorize(ctx, "ListInstances", &service_id)?;
    super::services::find(ctx, &service_id)?;
    let instances: Vec<Instance> = ctx
        .list::<Instance>(&instances_of(&service_id))?
        .into_iter()
        .map(|i| i.value)
        .collect();
    let (page, next) = page(
        instances,
        |i| i.id.clone(),
        input.next_token.as_deref(),
        input.max_results,
        100,
        100,
    )?;
    let summaries: Vec<Value> = page
        .iter()
        .map(|i| json!({ "Id": i.id, "Attributes": i.attributes, "CreatedByAccount": ctx.arns.account_id }))
        .collect();
    let mut out = Map::new();
    out.insert("ResourceOwner".into(), ctx.arns.account_id.clone().into());
    out.insert("Instances".into(), summaries.into());
    put_some(&mut out, "NextToken", next);
    Ok(Value::Object(out))
}

/// The health an instance is reported with: its custom health for a service that has custom
/// health checks, UNKNOWN for one that has none (as Cloud Map reports it).
fn reported_health<'a>(service: &Service, instance: &'a Instance) -> &'a str {
    if service.custom_health_failure_threshold.is_some() {
        &instance.health
    } else {
        "UNKNOWN"
    }
}

/// DiscoverInstances' and DiscoverInstancesRevision's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiscoverRequest {
    namespace_name: Option<String>,
    service_name: Option<String>,
    max_results: Option<i64>,
    query_parameters: Option<BTreeMap<String, String>>,
    optional_parameters: Option<BTreeMap<String, String>>,
    health_status: Option<String>,
    owner_account: Option<String>,
}

/// The namespace and service a discovery names (names compare without regard to case, and a
/// namespace's trailing dot is optional), after authorising `action` on them.
fn discovered(
    ctx: &Ctx,
    action: &str,
    input: &mut DiscoverRequest,
) -> Result<(Namespace, Service), ApiError> {
    let namespace_name = required(input.namespace_name.take(), "NamespaceName")?;
    let service_name = required(input.service_name.take(), "ServiceName")?;
    crate::authz::authorize_as(
        ctx,
        &format!("servicediscovery:{action}"),
        "*",
        &vec![
            (
                "servicediscovery:NamespaceName".into(),
                namespace_name.clone(),
            ),
            ("servicediscovery:ServiceName".into(), service_name.clone()),
        ],
        "AccessDeniedException",
    )?;
    let wanted = namespace_name.strip_suffix('.').unwrap_or(&namespace_name);
    let not_found = || {
        ApiError::new(
            "NamespaceNotFound",
            format!("Namespace not found: no namespace is named {namespace_name}."),
        )
    };
    if input
        .owner_account
        .as_ref()
        .is_some_and(|owner| *owner != ctx.arns.account_id)
    {
        return Err(not_found());
    }
    let namespace = ctx
        .list::<Namespace>(NAMESPACES)?
        .into_iter()
        .map(|n| n.value)
        .find(|n| n.name.eq_ignore_ascii_case(wanted))
        .ok_or_else(not_found)?;
    let service = ctx
        .list::<Service>(SERVICES)?
        .into_iter()
        .map(|s| s.value)
        .find(|s| s.namespace_id == namespace.id && s.name.eq_ignore_ascii_case(&service_name))
        .ok_or_else(|| {
            ApiError::new(
                "ServiceNotFound",
                format!(
                    "Service not found: namespace {} has no service named {service_name}.",
                    namespace.name
                ),
            )
        })?;
    Ok((namespace, service))
}

/// The instances revision of service `service_id`: the store revision of the last write to
/// its instances (the revision key's, which every removal bumps, or a later instance's).
fn revision_of(ctx: &Ctx, service_id: &str) -> Result<i64, ApiError> {
    let bumped = ctx
        .get::<i64>(&revision_key(service_id))?
        .map_or(0, |r| r.mod_revision);
    let latest = ctx
        .list::<Instance>(&instances_of(service_id))?
        .iter()
        .map(|i| i.mod_revision)
        .max()
        .unwrap_or(0);
    Ok(i64::try_from(bumped.max(latest)).unwrap_or(i64::MAX))
}

/// DiscoverInstances: the instances of a service, found by the names of its namespace and
/// itself, that have every QueryParameters attribute (and every OptionalParameters one, when
/// some do) and the health asked for.
pub fn discover(ctx: &Ctx, mut input: DiscoverRequest) -> Result<Value, ApiError> {
    let max = input.max_results.unwrap_or(100);
    if !(1..=1000).contains(&max) {
        return Err(invalid("MaxResults must be from 1 to 1000."));
    }
    let filter = input
        .health_status
        .clone()
        .unwrap_or_else(|| "HEALTHY".to_string());
    if !["HEALTHY", "UNHEALTHY", "ALL", "HEALTHY_OR_ELSE_ALL"].contains(&filter.as_str()) {
        return Err(invalid(format!(
            "'{filter}' is not a health status filter: use HEALTHY, UNHEALTHY, ALL or HEALTHY_OR_ELSE_ALL."
        )));
    }
    let (namespace, service) = discovered(ctx, "DiscoverInstances", &mut input)?;
    let has_all = |instance: &Instance, wanted: &BTreeMap<String, String>| {
        wanted
            .iter()
            .all(|(k, v)| instance.attributes.get(k) == Some(v))
    };
    let query = input.query_parameters.unwrap_or_default();
    let mut found: Vec<Instance> = ctx
        .list::<Instance>(&instances_of(&service.id))?
        .into_iter()
        .map(|i| i.value)
        .filter(|i| has_all(i, &query))
        .collect();
    if let Some(optional) = input.optional_parameters.filter(|o| !o.is_empty()) {
        if found.iter().any(|i| has_all(i, &optional)) {
            found.retain(|i| has_all(i, &optional));
        }
    }
    // The health filter applies to services that have health checks only.
    if service.custom_health_failure_threshold.is_some() {
        let healthy = |i: &Instance| i.is_healthy();
        match filter.as_str() {
            "HEALTHY" => found.retain(healthy),
            "UNHEALTHY" => found.retain(|i| !i.is_healthy()),
            "HEALTHY_OR_ELSE_ALL" if found.iter().any(healthy) => found.retain(healthy),
            _ => {}
        }
    }
    found.truncate(usize::try_from(max).unwrap_or(100));
    let instances: Vec<Value> = found
        .iter()
        .map(|i| {
            json!({
                "InstanceId": i.id,
                "NamespaceName": namespace.name,
                "ServiceName": service.name,
                "HealthStatus": reported_health(&service, i),
                "Attributes": i.attributes,
            })
        })
        .collect();
    Ok(json!({ "Instances": instances, "InstancesRevision": revision_of(ctx, &service.id)? }))
}

/// DiscoverInstancesRevision: a number that grows whenever the service's instances change.
pub fn discover_revision(ctx: &Ctx, mut input: DiscoverRequest) -> Result<Value, ApiError> {
    let (_, service) = discovered(ctx, "DiscoverInstancesRevision", &mut input)?;
    Ok(json!({ "InstancesRevision": revision_of(ctx, &service.id)? }))
}

/// GetInstancesHealthStatus' input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthRequest {
    service_id: Option<String>,
    instances: Option<Vec<String>>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// GetInstancesHealthStatus: the health of the named instances, or of all the service's.
pub fn health_status(ctx: &Ctx, input: HealthRequest) -> Result<Value, ApiError> {
    let service_id = id_of(&required(input.service_id, "ServiceId")?, "service", "srv-")?;
    authorize(ctx, "GetInstancesHealthStatus", &service_id)?;
    let service = super::services::find(ctx, &service_id)?.value;
    let all: Vec<Instance> = ctx
        .list::<Instance>(&instances_of(&service_id))?
        .into_iter()
        .map(|i| i.value)
        .collect();
    let chosen = match input.instances {
        Some(ids) if !ids.is_empty() => {
            let mut chosen = Vec::new();
            for id in ids {
                let instance = all
                    .iter()
                    .find(|i| i.id == id)
                    .ok_or_else(|| instance_not_found(&service_id, &id))?;
                chosen.push(instance.clone());
            }
            chosen.dedup_by(|a, b| a.id == b.id);
            chosen
        }
        _ => all,
    };
    let (page, next) = page(
        chosen,
        |i| i.id.clone(),
        input.next_token.as_deref(),
        input.max_results,
        100,
        100,
    )?;
    let status: Map<String, Value> = page
        .iter()
        .map(|i| (i.id.clone(), reported_health(&service, i).into()))
        .collect();
    let mut out = Map::new();
    out.insert("Status".into(), Value::Object(status));
    put_some(&mut out, "NextToken", next);
    Ok(Value::Object(out))
}

/// UpdateInstanceCustomHealthStatus' input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomHealthRequest {
    service_id: Option<String>,
    instance_id: Option<String>,
    status: Option<String>,
}

/// UpdateInstanceCustomHealthStatus: sets the health of an instance of a service with custom
/// health checks. Cloud Map applies it after about 30 seconds; Berth at once.
pub async fn update_custom_health(
    ctx: &Ctx,
    input: CustomHealthRequest,
) -> Result<Value, ApiError> {
    let service_id = id_of(&required(input.service_id, "ServiceId")?, "service", "srv-")?;
    let instance_id = required(input.instance_id, "InstanceId")?;
    let status = required(input.status, "Status")?;
    if status != "HEALTHY" && status != "UNHEALTHY" {
        return Err(invalid(format!(
            "'{status}' is not a custom health status: use HEALTHY or UNHEALTHY."
        )));
    }
    authorize(ctx, "UpdateInstanceCustomHealthStatus", &service_id)?;
    loop {
        let service = super::services::find(ctx, &service_id)?.value;
        if service.custom_health_failure_threshold.is_none() {
            return Err(ApiError::new(
                "CustomHealthNotFound",
                format!(
                    "Service {service_id} has no custom health checks (HealthCheckCustomConfig): its instances' health cannot be set."
                ),
            ));
        }
        let key = instance_key(&service_id, &instance_id);
        let found = ctx
            .get::<Instance>(&key)?
            .ok_or_else(|| instance_not_found(&service_id, &instance_id))?;
        if found.value.health == status {
            return Ok(json!({}));
        }
        let mut instance = found.value;
        instance.health = status.clone();
        let txn = Txn::new()
            .when(Compare::at(&key, found.mod_revision))
            .put(&key, encode(&instance));
        let txn = bump_revision(ctx, txn, &service_id)?;
        if ctx.commit(txn).await?.succeeded {
            return Ok(json!({}));
        }
    }
}
