//! AWS Cloud Map's objects as the store keeps them, for the API handlers, for the DNS server
//! that answers for them and for the ECS services that register their tasks in them. Every
//! record is JSON under its own key:
//!
//! - a namespace is `/servicediscovery/namespaces/{id}` (`ns-…`);
//! - a service is `/servicediscovery/services/{id}` (`srv-…`);
//! - an instance is `/servicediscovery/instances/{service id}/{instance id}`, so a service's
//!   instances are one prefix to list;
//! - an operation (what an asynchronous call did, for GetOperation) is
//!   `/servicediscovery/operations/{id}`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where namespaces are kept, by id.
pub const NAMESPACES: &str = "/servicediscovery/namespaces/";
/// Where services are kept, by id.
pub const SERVICES: &str = "/servicediscovery/services/";
/// Where instances are kept, by `{service id}/{instance id}`.
pub const INSTANCES: &str = "/servicediscovery/instances/";
/// Where operations are kept, by id.
pub const OPERATIONS: &str = "/servicediscovery/operations/";

/// The store key of namespace `id`.
pub fn namespace_key(id: &str) -> String {
    format!("{NAMESPACES}{id}")
}

/// The store key of service `id`.
pub fn service_key(id: &str) -> String {
    format!("{SERVICES}{id}")
}

/// The prefix of the instances of service `service_id`.
pub fn instances_of(service_id: &str) -> String {
    format!("{INSTANCES}{service_id}/")
}

/// The store key of instance `instance_id` of service `service_id`.
pub fn instance_key(service_id: &str, instance_id: &str) -> String {
    format!("{INSTANCES}{service_id}/{instance_id}")
}

/// The store key of operation `id`.
pub fn operation_key(id: &str) -> String {
    format!("{OPERATIONS}{id}")
}

/// Where each service's instances revision is kept (a number DiscoverInstancesRevision
/// answers), by service id. Every write to a service's instances bumps it.
pub const REVISIONS: &str = "/servicediscovery/revisions/";
/// Where each service's own attributes (UpdateServiceAttributes) are kept, by service id.
pub const SERVICE_ATTRIBUTES: &str = "/servicediscovery/service-attributes/";
/// The names namespaces hold (lowercased, as DNS compares them) → the namespace id: one name,
/// one namespace, even when two creations race.
pub const NAMESPACE_NAMES: &str = "/servicediscovery/namespace-names/";

/// The store key of the instances revision of service `service_id`.
pub fn revision_key(service_id: &str) -> String {
    format!("{REVISIONS}{service_id}")
}

/// The store key of the attributes of service `service_id`.
pub fn service_attributes_key(service_id: &str) -> String {
    format!("{SERVICE_ATTRIBUTES}{service_id}")
}

/// The store key that reserves namespace name `name` (compared without regard to case).
pub fn namespace_name_key(name: &str) -> String {
    format!("{NAMESPACE_NAMES}{}", name.to_ascii_lowercase())
}

/// A tag of a namespace or a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// A namespace: a DNS domain the DNS server answers for (`DNS_PRIVATE`), or a name for API
/// discovery only (`HTTP`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Namespace {
    /// `ns-` and 16 lowercase letters and digits.
    pub id: String,
    pub arn: String,
    /// A domain name (`corp.local`) for DNS namespaces.
    pub name: String,
    /// `DNS_PRIVATE` or `HTTP` (`DNS_PUBLIC` is refused: Berth serves no public DNS).
    pub kind: String,
    pub description: Option<String>,
    /// `Z` and 13 characters, for DNS namespaces.
    pub hosted_zone_id: Option<String>,
    /// The SOA record's TTL, seconds, for DNS namespaces.
    pub soa_ttl: Option<i64>,
    /// Epoch seconds.
    pub created: f64,
    pub creator_request_id: Option<String>,
    pub tags: Vec<Tag>,
}

/// A DNS record kind a service's instances get, with its TTL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRecord {
    /// `A`, `AAAA`, `SRV` or `CNAME`.
    pub kind: String,
    /// Seconds.
    pub ttl: i64,
}

/// A service of a namespace: the name its instances are found under (`{name}.{namespace}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// `srv-` and 16 lowercase letters and digits.
    pub id: String,
    pub arn: String,
    pub name: String,
    pub namespace_id: String,
    pub description: Option<String>,
    /// The records of each instance, for services of DNS namespaces.
    pub dns_records: Vec<DnsRecord>,
    /// `MULTIVALUE` or `WEIGHTED`, for services of DNS namespaces.
    pub routing_policy: Option<String>,
    /// `HTTP`, `DNS_HTTP` or `DNS`.
    pub kind: String,
    /// `HealthCheckCustomConfig.FailureThreshold`, when the service has custom health checks
    /// (ECS services' registries do: ECS reports each task's health).
    pub custom_health_failure_threshold: Option<i64>,
    /// Epoch seconds.
    pub created: f64,
    pub creator_request_id: Option<String>,
    pub tags: Vec<Tag>,
}

/// A registered instance of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// The id the caller chose (ECS uses the task's id).
    pub id: String,
    pub service_id: String,
    /// `AWS_INSTANCE_IPV4`, `AWS_INSTANCE_PORT`, `AWS_INSTANCE_IPV6`, `AWS_INSTANCE_CNAME`, and
    /// the caller's own (ECS adds `ECS_CLUSTER_NAME`, `ECS_SERVICE_NAME`, `ECS_TASK_DEFINITION_FAMILY`,
    /// `AVAILABILITY_ZONE`, ...).
    pub attributes: BTreeMap<String, String>,
    /// `HEALTHY`, `UNHEALTHY` or `UNKNOWN`: custom health (UpdateInstanceCustomHealthStatus)
    /// for services that have it; `HEALTHY` otherwise.
    pub health: String,
    pub creator_request_id: Option<String>,
    /// Epoch seconds.
    pub created: f64,
    /// The ECS task that registered it, if a service registry did (deregistered with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

impl Instance {
    /// Whether DNS answers and DiscoverInstances (with the default health filter) return it.
    pub fn is_healthy(&self) -> bool {
        self.health != "UNHEALTHY"
    }

    /// Its IPv4 address (`AWS_INSTANCE_IPV4`), if it has one.
    pub fn ipv4(&self) -> Option<std::net::Ipv4Addr> {
        self.attributes.get("AWS_INSTANCE_IPV4")?.parse().ok()
    }

    /// Its port (`AWS_INSTANCE_PORT`), if it has one.
    pub fn port(&self) -> Option<u16> {
        self.attributes.get("AWS_INSTANCE_PORT")?.parse().ok()
    }
}

/// What an asynchronous call (namespace creation and deletion, instance registration and
/// deregistration) did, for GetOperation and ListOperations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub id: String,
    /// `CREATE_NAMESPACE`, `DELETE_NAMESPACE`, `UPDATE_NAMESPACE`, `UPDATE_SERVICE`,
    /// `REGISTER_INSTANCE` or `DEREGISTER_INSTANCE`.
    pub kind: String,
    /// `SUCCESS` (Berth applies each change before answering) or `FAIL`.
    pub status: String,
    pub error_message: Option<String>,
    pub error_code: Option<String>,
    /// Epoch seconds.
    pub created: f64,
    pub updated: f64,
    /// `NAMESPACE`, `SERVICE` and `INSTANCE` → the id each names.
    pub targets: BTreeMap<String, String>,
}

/// Everything the DNS server answers from, read at one moment: for each DNS namespace, its
/// services and their instances.
#[derive(Debug, Clone, Default)]
pub struct DnsView {
    pub namespaces: Vec<Namespace>,
    pub services: Vec<Service>,
    pub instances: Vec<Instance>,
}

impl DnsView {
    /// The DNS namespaces (`DNS_PRIVATE`, and `DNS_PUBLIC` should one be stored), their
    /// services and those services' instances, as the state cache holds them now: what the DNS
    /// server answers from. HTTP namespaces and their instances are left out.
    pub fn read(app: &crate::app::App) -> Result<DnsView, crate::error::ApiError> {
        let namespaces: Vec<Namespace> = app
            .list::<Namespace>(NAMESPACES)?
            .into_iter()
            .map(|n| n.value)
            .filter(|n| n.kind.starts_with("DNS_"))
            .collect();
        let ids: std::collections::HashSet<&str> =
            namespaces.iter().map(|n| n.id.as_str()).collect();
        let services: Vec<Service> = app
            .list::<Service>(SERVICES)?
            .into_iter()
            .map(|s| s.value)
            .filter(|s| ids.contains(s.namespace_id.as_str()))
            .collect();
        let mut instances = Vec::new();
        for service in &services {
            let listed = app.list::<Instance>(&instances_of(&service.id))?;
            instances.extend(listed.into_iter().map(|i| i.value));
        }
        Ok(DnsView {
            namespaces,
            services,
            instances,
        })
    }
}
