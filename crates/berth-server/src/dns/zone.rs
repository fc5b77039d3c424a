//! The records the DNS server answers from, built from one read of Cloud Map ([`DnsView`]),
//! and the lookup of one question in them: pure, no I/O.
//!
//! For each DNS namespace `ns` and each of its services `svc`, with the service's record
//! kinds and TTLs (`DnsConfig.DnsRecords`), for its healthy instances only:
//!
//! - `svc.ns` has an `A` (`AAAA`) record per instance with an `AWS_INSTANCE_IPV4`
//!   (`AWS_INSTANCE_IPV6`) when the service has `A` (`AAAA`) records;
//! - `svc.ns` and `_svc._tcp.ns` have an `SRV` record `1 1 PORT {instance}.svc.ns.` per
//!   instance with an `AWS_INSTANCE_PORT` when the service has `SRV` records (priority and
//!   weight 1, as Cloud Map makes them), and `{instance}.svc.ns` answers `A` (`AAAA`) for the
//!   instance, so a client can follow the target;
//! - `svc.ns` is the `CNAME` of an instance's `AWS_INSTANCE_CNAME` when the service has a
//!   `CNAME` record;
//! - the namespace's apex has its `SOA` (TTL: the namespace's `SOA` TTL, 15 s by default) and
//!   an `NS` record.
//!
//! A MULTIVALUE service answers up to 8 records of a type, a WEIGHTED one a single record;
//! which ones turn with each question when there are more.

use crate::servicediscovery::model::{DnsView, Service};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

/// How many records of one type a MULTIVALUE service answers with (Route 53's limit).
pub const MULTIVALUE_LIMIT: usize = 8;
/// The SOA TTL of a namespace that sets none (Cloud Map's default).
const DEFAULT_SOA_TTL: u32 = 15;
/// The name server the `SOA` and `NS` records name: Berth's own, under `.internal`, the
/// domain reserved for private use.
const NAME_SERVER: &str = "ns1.berth.internal.";
/// The `SOA` record's mailbox.
const HOSTMASTER: &str = "hostmaster.berth.internal.";

/// What one record of a name holds.
#[derive(Debug, Clone)]
enum Data {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Srv { port: u16, target: Name },
    Cname(Name),
}

impl Data {
    fn record_type(&self) -> RecordType {
        match self {
            Data::A(_) => RecordType::A,
            Data::Aaaa(_) => RecordType::AAAA,
            Data::Srv { .. } => RecordType::SRV,
            Data::Cname(_) => RecordType::CNAME,
        }
    }

    fn rdata(&self) -> RData {
        match self {
            Data::A(ip) => RData::A(A(*ip)),
            Data::Aaaa(ip) => RData::AAAA(AAAA(*ip)),
            Data::Srv { port, target } => RData::SRV(SRV::new(1, 1, *port, target.clone())),
            Data::Cname(target) => RData::CNAME(CNAME(target.clone())),
        }
    }
}

/// One record of a name, with its TTL.
#[derive(Debug, Clone)]
struct Entry {
    data: Data,
    ttl: u32,
}

/// A name of a namespace: its records, or none (a service without healthy instances, or a
/// name that only has names below it, such as `_tcp.ns`).
#[derive(Debug)]
struct Node {
    entries: Vec<Entry>,
    /// How many records of one type an answer carries.
    limit: usize,
}

/// A namespace's apex.
#[derive(Debug)]
struct Apex {
    name: Name,
    soa_ttl: u32,
}

/// The answer to one question.
#[derive(Debug, Default)]
pub struct Found {
    /// The name does not exist (else: it does, perhaps without records of the type asked).
    pub nxdomain: bool,
    pub answers: Vec<Record>,
    /// The namespace's `SOA` when there is no answer, for negative caching (RFC 2308).
    pub authorities: Vec<Record>,
    /// The addresses of the targets of `SRV` answers.
    pub additionals: Vec<Record>,
}

/// How a question is answered.
#[derive(Debug)]
pub enum Lookup {
    /// The name is in no DNS namespace: this server is no recursive resolver.
    Refused,
    /// The name is in a namespace: its records, or why there are none.
    Found(Found),
}

/// Every DNS namespace's records, as Cloud Map was at one store revision.
#[derive(Debug)]
pub struct Zone {
    /// The store revision it was built at.
    pub revision: u64,
    apexes: Vec<Apex>,
    /// By [`key_of`] the name.
    nodes: HashMap<String, Node>,
}

impl Zone {
    /// The records of `view`, read at store revision `revision`.
    pub fn build(view: &DnsView, revision: u64) -> Zone {
        let mut zone = Zone {
            revision,
            apexes: Vec::new(),
            nodes: HashMap::new(),
        };
        let mut apex_of_namespace: HashMap<&str, usize> = HashMap::new();
        for namespace in &view.namespaces {
            let Some(name) = parse_name(&namespace.name).filter(|n| n.num_labels() > 0) else {
                continue;
            };
            let index = match zone.apexes.iter().position(|a| a.name == name) {
                Some(index) => index,
                None => {
                    zone.apexes.push(Apex {
                        name: name.clone(),
                        soa_ttl: namespace.soa_ttl.map_or(DEFAULT_SOA_TTL, ttl),
                    });
                    zone.apexes.len() - 1
                }
            };
            apex_of_namespace.insert(&namespace.id, index);
            zone.node(&name, &name, MULTIVALUE_LIMIT);
        }
        let mut services: HashMap<&str, (&Service, Name, Name)> = HashMap::new();
        for service in &view.services {
            let Some(&index) = apex_of_namespace.get(service.namespace_id.as_str()) else {
                continue;
            };
            let apex = zone.apexes[index].name.clone();
            let Some(name) = child(&apex, &service.name) else {
                continue;
            };
            let limit = match service.routing_policy.as_deref() {
                Some("WEIGHTED") => 1,
                _ => MULTIVALUE_LIMIT,
            };
            zone.node(&name, &apex, limit);
            if let Some(srv_name) = srv_name(&apex, &service.name) {
                if record_ttl(service, "SRV").is_some() {
                    zone.node(&srv_name, &apex, limit);
                }
            }
            services.insert(&service.id, (service, name, apex));
        }
        for instance in view.instances.iter().filter(|i| i.is_healthy()) {
            let Some((service, name, apex)) = services.get(instance.service_id.as_str()) else {
                continue;
            };
            let host = child(name, &instance.id);
            let a = record_ttl(service, "A");
            let aaaa = record_ttl(service, "AAAA");
            let srv = record_ttl(service, "SRV");
            if let Some(ip) = instance.ipv4() {
                if let Some(ttl) = a {
                    zone.add(name, apex, Data::A(ip), ttl);
                }
                // The SRV target resolves even when the service itself has no A records.
                if let (Some(host), Some(ttl)) = (&host, a.or(srv)) {
                    zone.add(host, apex, Data::A(ip), ttl);
                }
            }
            let ipv6 = instance.attributes.get("AWS_INSTANCE_IPV6");
            if let Some(ip) = ipv6.and_then(|ip| ip.parse::<Ipv6Addr>().ok()) {
                if let Some(ttl) = aaaa {
                    zone.add(name, apex, Data::Aaaa(ip), ttl);
                }
                if let (Some(host), Some(ttl)) = (&host, aaaa.or(srv)) {
                    zone.add(host, apex, Data::Aaaa(ip), ttl);
                }
            }
            if let (Some(port), Some(host), Some(ttl)) = (instance.port(), &host, srv) {
                let data = Data::Srv {
                    port,
                    target: host.clone(),
                };
                zone.add(name, apex, data.clone(), ttl);
                if let Some(srv_name) = srv_name(apex, &service.name) {
                    zone.add(&srv_name, apex, data, ttl);
                }
            }
            let cname = instance.attributes.get("AWS_INSTANCE_CNAME");
            if let (Some(target), Some(ttl)) = (
                cname.and_then(|c| parse_name(c)),
                record_ttl(service, "CNAME"),
            ) {
                zone.add(name, apex, Data::Cname(target), ttl);
            }
        }
        zone
    }

    /// Makes sure `name` (in the namespace whose apex is `apex`) and the names between it and
    /// the apex exist; `limit` applies to `name` itself.
    fn node(&mut self, name: &Name, apex: &Name, limit: usize) -> &mut Node {
        let mut above = name.base_name();
        while above.num_labels() > apex.num_labels() {
            self.nodes.entry(key_of(&above)).or_insert(Node {
                entries: Vec::new(),
                limit: MULTIVALUE_LIMIT,
            });
            above = above.base_name();
        }
        self.nodes.entry(key_of(name)).or_insert(Node {
            entries: Vec::new(),
            limit,
        })
    }

    /// Adds a record to `name`.
    fn add(&mut self, name: &Name, apex: &Name, data: Data, ttl: u32) {
        let node = self.node(name, apex, MULTIVALUE_LIMIT);
        node.entries.push(Entry { data, ttl });
    }

    /// The namespace `name` is in (the innermost, should namespaces nest).
    fn apex_for(&self, name: &Name) -> Option<usize> {
        self.apexes
            .iter()
            .enumerate()
            .filter(|(_, apex)| apex.name.zone_of(name))
            .max_by_key(|(_, apex)| apex.name.num_labels())
            .map(|(index, _)| index)
    }

    /// The answer to `qtype` records of `qname` (`ANY`: every type). `turn` picks which
    /// records a name with more than its limit answers (the question's id does).
    pub fn lookup(&self, qname: &Name, qtype: RecordType, turn: u16) -> Lookup {
        let Some(apex) = self.apex_for(qname).map(|i| &self.apexes[i]) else {
            return Lookup::Refused;
        };
        let mut found = Found::default();
        let Some(node) = self.nodes.get(&key_of(qname)) else {
            found.nxdomain = true;
            found.authorities.push(soa(apex, self.revision));
            return Lookup::Found(found);
        };
        let any = qtype == RecordType::ANY;
        if apex.name == *qname {
            if any || qtype == RecordType::SOA {
                found.answers.push(soa(apex, self.revision));
            }
            if any || qtype == RecordType::NS {
                found.answers.push(ns(apex));
            }
        }
        for kind in [
            RecordType::CNAME,
            RecordType::A,
            RecordType::AAAA,
            RecordType::SRV,
        ] {
            // A name with a CNAME has nothing else: its CNAME answers every type.
            if !(any || kind == qtype || kind == RecordType::CNAME) {
                continue;
            }
            let of_kind: Vec<&Entry> = node
                .entries
                .iter()
                .filter(|e| e.data.record_type() == kind)
                .collect();
            for entry in pick(&of_kind, node.limit, turn) {
                found.answers.push(Record::from_rdata(
                    qname.clone(),
                    entry.ttl,
                    entry.data.rdata(),
                ));
                if let Data::Srv { target, .. } = &entry.data {
                    found.additionals.extend(self.addresses(target));
                }
            }
        }
        if found.answers.is_empty() {
            found.authorities.push(soa(apex, self.revision));
        }
        Lookup::Found(found)
    }

    /// The `A` and `AAAA` records of `name`, for the additional section.
    fn addresses(&self, name: &Name) -> Vec<Record> {
        let Some(node) = self.nodes.get(&key_of(name)) else {
            return Vec::new();
        };
        node.entries
            .iter()
            .filter(|e| matches!(e.data, Data::A(_) | Data::Aaaa(_)))
            .map(|e| Record::from_rdata(name.clone(), e.ttl, e.data.rdata()))
            .collect()
    }
}

/// `limit` of `entries`, starting at the one `turn` points at, so that repeated questions
/// see each of them.
fn pick<'a>(entries: &[&'a Entry], limit: usize, turn: u16) -> Vec<&'a Entry> {
    if entries.len() <= limit {
        return entries.to_vec();
    }
    let start = usize::from(turn) % entries.len();
    entries
        .iter()
        .cycle()
        .skip(start)
        .take(limit)
        .copied()
        .collect()
}

/// The namespace's `SOA` record; its serial is the store revision's low 32 bits, so it moves
/// whenever anything the zone was built from may have.
fn soa(apex: &Apex, revision: u64) -> Record {
    let data = SOA::new(
        constant(NAME_SERVER),
        constant(HOSTMASTER),
        (revision & u64::from(u32::MAX)) as u32,
        7200,
        900,
        1_209_600,
        apex.soa_ttl,
    );
    Record::from_rdata(apex.name.clone(), apex.soa_ttl, RData::SOA(data))
}

/// The namespace's `NS` record.
fn ns(apex: &Apex) -> Record {
    Record::from_rdata(
        apex.name.clone(),
        apex.soa_ttl,
        RData::NS(NS(constant(NAME_SERVER))),
    )
}

fn constant(name: &str) -> Name {
    Name::from_ascii(name).expect("a constant, valid domain name")
}

/// The TTL of the service's `kind` records, if it has them.
fn record_ttl(service: &Service, kind: &str) -> Option<u32> {
    service
        .dns_records
        .iter()
        .find(|r| r.kind.eq_ignore_ascii_case(kind))
        .map(|r| ttl(r.ttl))
}

/// A TTL in seconds as DNS carries it: 0 to 2^31 - 1 (RFC 2181).
fn ttl(seconds: i64) -> u32 {
    u32::try_from(seconds.clamp(0, i64::from(i32::MAX))).unwrap_or(0)
}

/// `text` as an absolute domain name; None when it is not a valid one.
fn parse_name(text: &str) -> Option<Name> {
    let absolute = if text.ends_with('.') {
        text.to_string()
    } else {
        format!("{text}.")
    };
    let parsed = if absolute.is_ascii() {
        Name::from_ascii(&absolute)
    } else {
        Name::from_utf8(&absolute)
    };
    parsed.ok()
}

/// `label.parent`; None when `label` cannot be part of a domain name (an instance id with
/// `/`, `:` or `@`).
fn child(parent: &Name, label: &str) -> Option<Name> {
    parse_name(&format!("{label}.{}", parent.to_ascii()))
}

/// `_svc._tcp.ns`, the name SRV lookups by service and protocol ask for.
fn srv_name(apex: &Name, service: &str) -> Option<Name> {
    child(apex, &format!("_{service}._tcp"))
}

/// The key of `name` in the zone: its lowercase ASCII form.
fn key_of(name: &Name) -> String {
    name.to_lowercase().to_ascii()
}
