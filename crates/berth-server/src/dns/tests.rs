//! The DNS server over real sockets on loopback: Cloud Map records written straight into an
//! in-memory server's store, questions asked over UDP (and TCP) as a resolver asks them.

use super::answer::Resolver;
use super::listen::listen;
use crate::app::App;
use crate::servicediscovery::model::{
    instance_key, namespace_key, service_key, DnsRecord, Instance, Namespace, Service,
};
use berth_store::typed::encode;
use berth_store::Txn;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn namespace(id: &str, name: &str, kind: &str) -> Namespace {
    Namespace {
        id: id.into(),
        arn: format!("arn:aws:servicediscovery:us-east-1:000000000000:namespace/{id}"),
        name: name.into(),
        kind: kind.into(),
        description: None,
        hosted_zone_id: Some("Z0000000000000".into()),
        soa_ttl: Some(20),
        created: 0.0,
        creator_request_id: None,
        tags: Vec::new(),
    }
}

fn service(id: &str, namespace_id: &str, name: &str, records: &[(&str, i64)]) -> Service {
    Service {
        id: id.into(),
        arn: format!("arn:aws:servicediscovery:us-east-1:000000000000:service/{id}"),
        name: name.into(),
        namespace_id: namespace_id.into(),
        description: None,
        dns_records: records
            .iter()
            .map(|(kind, ttl)| DnsRecord {
                kind: (*kind).into(),
                ttl: *ttl,
            })
            .collect(),
        routing_policy: Some("MULTIVALUE".into()),
        kind: "DNS_HTTP".into(),
        custom_health_failure_threshold: Some(1),
        created: 0.0,
        creator_request_id: None,
        tags: Vec::new(),
    }
}

fn instance(service_id: &str, id: &str, ip: &str, port: u16, health: &str) -> Instance {
    Instance {
        id: id.into(),
        service_id: service_id.into(),
        attributes: BTreeMap::from([
            ("AWS_INSTANCE_IPV4".to_string(), ip.to_string()),
            ("AWS_INSTANCE_PORT".to_string(), port.to_string()),
        ]),
        health: health.into(),
        creator_request_id: None,
        created: 0.0,
        owner: None,
    }
}

async fn put_namespace(app: &App, namespace: &Namespace) {
    let txn = Txn::new().put(namespace_key(&namespace.id), encode(namespace));
    app.commit(txn).await.expect("write the namespace");
}

async fn put_service(app: &App, service: &Service) {
    let txn = Txn::new().put(service_key(&service.id), encode(service));
    app.commit(txn).await.expect("write the service");
}

async fn put_instance(app: &App, instance: &Instance) {
    let key = instance_key(&instance.service_id, &instance.id);
    let txn = Txn::new().put(key, encode(instance));
    app.commit(txn).await.expect("write the instance");
}

/// A server on an in-memory store with namespace `corp.local` (`ns-1`) and its service `web`
/// (`srv-1`, A and SRV records), answering DNS on a free loopback port.
async fn served() -> (Arc<App>, SocketAddr) {
    let app = crate::test_support::app().await;
    put_namespace(&app, &namespace("ns-1", "corp.local", "DNS_PRIVATE")).await;
    put_service(
        &app,
        &service("srv-1", "ns-1", "web", &[("A", 30), ("SRV", 40)]),
    )
    .await;
    let addr = "127.0.0.1:0".parse().expect("addr");
    let resolver = Arc::new(Resolver::new(&app));
    let bound = listen(resolver, addr, app.closing()).await.expect("listen");
    (app, bound)
}

fn question(name: &str, kind: RecordType) -> Message {
    let mut message = Message::new(fastrand::u16(..), MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).expect("name"), kind));
    message
}

/// Asks `message` over UDP; the answer.
async fn ask_message(server: SocketAddr, message: &Message) -> Message {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let bytes = message.to_vec().expect("encode");
    socket.send_to(&bytes, server).await.expect("send");
    let mut buffer = vec![0u8; 65_535];
    let len = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buffer))
        .await
        .expect("an answer within 5 s")
        .expect("receive");
    let answer = Message::from_vec(&buffer[..len]).expect("a DNS message");
    assert_eq!(answer.metadata.id, message.metadata.id);
    assert_eq!(answer.metadata.message_type, MessageType::Response);
    answer
}

/// Asks for `kind` records of `name` over UDP; the answer.
async fn ask(server: SocketAddr, name: &str, kind: RecordType) -> Message {
    ask_message(server, &question(name, kind)).await
}

/// Asks for `kind` records of `name` over TCP; the answer.
async fn ask_tcp(server: SocketAddr, name: &str, kind: RecordType) -> Message {
    let mut stream = tokio::net::TcpStream::connect(server)
        .await
        .expect("connect");
    let bytes = question(name, kind).to_vec().expect("encode");
    let len = u16::try_from(bytes.len()).expect("a short question");
    stream.write_all(&len.to_be_bytes()).await.expect("send");
    stream.write_all(&bytes).await.expect("send");
    let mut prefix = [0u8; 2];
    stream.read_exact(&mut prefix).await.expect("length");
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    stream.read_exact(&mut answer).await.expect("answer");
    Message::from_vec(&answer).expect("a DNS message")
}

fn ipv4s(records: &[Record]) -> Vec<String> {
    let mut ips: Vec<String> = records
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    ips.sort();
    ips
}

fn srvs(records: &[Record]) -> Vec<(u16, u16, u16, String)> {
    let mut srvs: Vec<_> = records
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(srv) => Some((srv.priority, srv.weight, srv.port, srv.target.to_ascii())),
            _ => None,
        })
        .collect();
    srvs.sort();
    srvs
}

#[tokio::test]
async fn a_records_are_the_healthy_instances_addresses_with_the_services_ttl() {
    let (app, server) = served().await;
    put_instance(&app, &instance("srv-1", "i-1", "10.0.0.1", 80, "HEALTHY")).await;
    put_instance(&app, &instance("srv-1", "i-2", "10.0.0.2", 80, "UNHEALTHY")).await;
    put_instance(&app, &instance("srv-1", "i-3", "10.0.0.3", 80, "UNKNOWN")).await;

    let answer = ask(server, "web.corp.local.", RecordType::A).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert!(answer.metadata.authoritative);
    assert!(!answer.metadata.recursion_available);
    assert_eq!(ipv4s(&answer.answers), ["10.0.0.1", "10.0.0.3"]);
    assert!(answer.answers.iter().all(|r| r.ttl == 30));

    // Names are case-insensitive, and the answer keeps the question's spelling.
    let answer = ask(server, "WEB.Corp.Local.", RecordType::A).await;
    assert_eq!(ipv4s(&answer.answers), ["10.0.0.1", "10.0.0.3"]);
    assert_eq!(answer.answers[0].name.to_ascii(), "WEB.Corp.Local.");
    app.close();
}

#[tokio::test]
async fn srv_records_name_each_instance_whose_address_comes_in_the_additional_section() {
    let (app, server) = served().await;
    put_instance(&app, &instance("srv-1", "i-1", "10.0.0.1", 8080, "HEALTHY")).await;
    put_instance(
        &app,
        &instance("srv-1", "i-2", "10.0.0.2", 8081, "UNHEALTHY"),
    )
    .await;

    for name in ["web.corp.local.", "_web._tcp.corp.local."] {
        let answer = ask(server, name, RecordType::SRV).await;
        assert_eq!(
            answer.metadata.response_code,
            ResponseCode::NoError,
            "{name}"
        );
        assert_eq!(
            srvs(&answer.answers),
            [(1, 1, 8080, "i-1.web.corp.local.".to_string())],
            "{name}"
        );
        assert!(answer.answers.iter().all(|r| r.ttl == 40));
        assert_eq!(ipv4s(&answer.additionals), ["10.0.0.1"], "{name}");
        assert_eq!(answer.additionals[0].name.to_ascii(), "i-1.web.corp.local.");
    }
    // The target answers A itself; the unhealthy instance's name does not exist.
    let target = ask(server, "i-1.web.corp.local.", RecordType::A).await;
    assert_eq!(ipv4s(&target.answers), ["10.0.0.1"]);
    let gone = ask(server, "i-2.web.corp.local.", RecordType::A).await;
    assert_eq!(gone.metadata.response_code, ResponseCode::NXDomain);
    app.close();
}

#[tokio::test]
async fn multivalue_answers_eight_records_at_most_and_weighted_one() {
    let (app, server) = served().await;
    let mut weighted = service("srv-2", "ns-1", "api", &[("A", 10)]);
    weighted.routing_policy = Some("WEIGHTED".into());
    put_service(&app, &weighted).await;
    for i in 1..=10 {
        let ip = format!("10.0.1.{i}");
        put_instance(
            &app,
            &instance("srv-1", &format!("i-{i}"), &ip, 80, "HEALTHY"),
        )
        .await;
        put_instance(
            &app,
            &instance("srv-2", &format!("i-{i}"), &ip, 80, "HEALTHY"),
        )
        .await;
    }
    let answer = ask(server, "web.corp.local.", RecordType::A).await;
    assert_eq!(answer.answers.len(), 8);
    let answer = ask(server, "api.corp.local.", RecordType::A).await;
    assert_eq!(answer.answers.len(), 1);
    app.close();
}

#[tokio::test]
async fn a_name_that_does_not_exist_is_nxdomain_and_a_missing_type_is_empty() {
    let (app, server) = served().await;
    put_instance(&app, &instance("srv-1", "i-1", "10.0.0.1", 80, "HEALTHY")).await;

    let answer = ask(server, "nope.corp.local.", RecordType::A).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NXDomain);
    assert!(answer.metadata.authoritative);
    assert!(answer.answers.is_empty());
    // The namespace's SOA, for negative caching, with the namespace's SOA TTL.
    assert_eq!(answer.authorities.len(), 1);
    assert_eq!(answer.authorities[0].record_type(), RecordType::SOA);
    assert_eq!(answer.authorities[0].ttl, 20);
    assert_eq!(answer.authorities[0].name.to_ascii(), "corp.local.");

    for (name, kind) in [
        ("web.corp.local.", RecordType::TXT),
        ("web.corp.local.", RecordType::AAAA),
        ("_tcp.corp.local.", RecordType::A),
        ("corp.local.", RecordType::A),
    ] {
        let answer = ask(server, name, kind).await;
        assert_eq!(
            answer.metadata.response_code,
            ResponseCode::NoError,
            "{name} {kind}"
        );
        assert!(answer.answers.is_empty(), "{name} {kind}");
        assert_eq!(answer.authorities.len(), 1, "{name} {kind}");
    }

    let soa = ask(server, "corp.local.", RecordType::SOA).await;
    assert_eq!(soa.answers.len(), 1);
    assert!(matches!(&soa.answers[0].data, RData::SOA(s) if s.minimum == 20));
    let ns = ask(server, "corp.local.", RecordType::NS).await;
    assert!(matches!(&ns.answers[0].data, RData::NS(_)));
    app.close();
}

#[tokio::test]
async fn names_outside_every_dns_namespace_are_refused() {
    let (app, server) = served().await;
    put_namespace(&app, &namespace("ns-2", "api.example", "HTTP")).await;
    put_service(&app, &service("srv-3", "ns-2", "web", &[])).await;
    put_instance(&app, &instance("srv-3", "i-1", "10.0.0.1", 80, "HEALTHY")).await;

    for name in ["example.com.", "local.", "web.api.example."] {
        let answer = ask(server, name, RecordType::A).await;
        assert_eq!(
            answer.metadata.response_code,
            ResponseCode::Refused,
            "{name}"
        );
        assert!(answer.answers.is_empty());
    }
    app.close();
}

#[tokio::test]
async fn a_change_in_the_store_is_answered_at_the_next_question() {
    let (app, server) = served().await;
    let answer = ask(server, "web.corp.local.", RecordType::A).await;
    assert!(answer.answers.is_empty());

    put_instance(&app, &instance("srv-1", "i-1", "10.0.0.1", 80, "HEALTHY")).await;
    let answer = ask(server, "web.corp.local.", RecordType::A).await;
    assert_eq!(ipv4s(&answer.answers), ["10.0.0.1"]);

    put_instance(&app, &instance("srv-1", "i-1", "10.0.0.1", 80, "UNHEALTHY")).await;
    let answer = ask(server, "web.corp.local.", RecordType::A).await;
    assert!(answer.answers.is_empty());

    put_instance(&app, &instance("srv-1", "i-1", "10.0.0.9", 80, "HEALTHY")).await;
    let txn = Txn::new().delete(instance_key("srv-1", "i-1"));
    let answer = ask(server, "web.corp.local.", RecordType::A).await;
    assert_eq!(ipv4s(&answer.answers), ["10.0.0.9"]);
    app.commit(txn).await.expect("deregister");
    let answer = ask(server, "web.corp.local.", RecordType::A).await;
    assert!(answer.answers.is_empty());

    // A new namespace is answered for too.
    put_namespace(&app, &namespace("ns-3", "shop.internal", "DNS_PRIVATE")).await;
    let answer = ask(server, "cart.shop.internal.", RecordType::A).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NXDomain);
    app.close();
}

#[tokio::test]
async fn a_udp_answer_too_large_is_truncated_and_tcp_carries_it_whole() {
    let (app, server) = served().await;
    for i in 1..=8 {
        let id = format!("{i}{}", "0123456789abcdef".repeat(3));
        let ip = format!("10.0.2.{i}");
        put_instance(&app, &instance("srv-1", &id, &ip, 80, "HEALTHY")).await;
    }
    let udp = ask(server, "web.corp.local.", RecordType::SRV).await;
    assert!(udp.metadata.truncation);
    assert!(udp.answers.is_empty());

    let tcp = ask_tcp(server, "web.corp.local.", RecordType::SRV).await;
    assert!(!tcp.metadata.truncation);
    assert_eq!(tcp.answers.len(), 8);
    assert_eq!(tcp.additionals.len(), 8);

    // With EDNS, a client that takes 1232 bytes gets it over UDP.
    let mut message = question("web.corp.local.", RecordType::SRV);
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    message.set_edns(edns);
    let edns_answer = ask_message(server, &message).await;
    assert!(!edns_answer.metadata.truncation);
    assert_eq!(edns_answer.answers.len(), 8);
    assert!(edns_answer.edns.is_some());
    app.close();
}

#[tokio::test]
async fn a_message_without_exactly_one_question_is_a_format_error() {
    let (app, server) = served().await;
    let empty = Message::new(7, MessageType::Query, OpCode::Query);
    let answer = ask_message(server, &empty).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::FormErr);
    app.close();
}
