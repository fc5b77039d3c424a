//! Listeners: CreateListener, DescribeListeners, ModifyListener, DeleteListener. A listener is
//! a port of a load balancer (HTTP on application load balancers, TCP on network ones) with
//! its default actions; its rules ([`super::rules`]) live in the same record.

use super::actions::{parse_actions, write_actions};
use super::model::{write, Config, Listener, LoadBalancer};
use super::tags::tags_of;
use super::{
    arn_parts, arn_prefix, authorize, missing, page, port, random_hex, strings, validation,
};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::protocol::query::{QueryRequest, Xml};
use berth_store::typed::encode;
use berth_store::{Compare, Txn};

/// `ListenerNotFound` for `arn`.
pub(super) fn not_found(arn: &str) -> ApiError {
    ApiError::new("ListenerNotFound", format!("Listener '{arn}' not found"))
}

/// Listener `arn` of `config`, or `ListenerNotFound` (`ValidationError` for what is not a
/// listener ARN at all).
pub(super) fn existing<'a>(
    ctx: &Ctx,
    config: &'a Config,
    arn: &str,
) -> Result<&'a Listener, ApiError> {
    arn_parts(ctx, arn, "listener", 4, "listener")?;
    config.listener(arn).ok_or_else(|| not_found(arn))
}

/// The protocol of a listener of `lb`: HTTP for application load balancers, TCP for network
/// ones; the others are refused, saying what Berth serves.
fn check_protocol(lb: &LoadBalancer, protocol: &str) -> Result<(), ApiError> {
    let served = if lb.kind == "network" { "TCP" } else { "HTTP" };
    if protocol == served {
        return Ok(());
    }
    let known = [
        "HTTP", "HTTPS", "TCP", "TLS", "UDP", "TCP_UDP", "GENEVE", "QUIC", "TCP_QUIC",
    ];
    if known.contains(&protocol) {
        Err(ApiError::new(
            "UnsupportedProtocol",
            format!(
                "Berth serves {served} listeners on {} load balancers: the protocol {protocol} is not supported.",
                lb.kind
            ),
        ))
    } else {
        Err(validation(format!(
            "The protocol '{protocol}' is not valid: use {served}."
        )))
    }
}

/// Refuses the TLS settings of a listener: Berth serves no HTTPS or TLS listeners.
fn refuse_tls(request: &QueryRequest) -> Result<(), ApiError> {
    let given = [
        "SslPolicy",
        "Certificates.member.1.CertificateArn",
        "AlpnPolicy.member.1",
    ]
    .into_iter()
    .find(|p| request.get(p).is_some());
    match given {
        Some(p) => Err(validation(format!(
            "Berth serves HTTP and TCP listeners without TLS: {} cannot be given.",
            p.split('.').next().unwrap_or(p)
        ))),
        None => Ok(()),
    }
}

/// The ARNs of a new listener of `lb` and of its default rule.
fn listener_arn(ctx: &Ctx, lb: &LoadBalancer) -> Result<(String, String), ApiError> {
    let lb_tail = lb
        .arn
        .split_once(":loadbalancer/")
        .map_or("", |(_, tail)| tail);
    let id = random_hex(16)?;
    let prefix = arn_prefix(ctx);
    Ok((
        format!("{prefix}listener/{lb_tail}/{id}"),
        format!("{prefix}listener-rule/{lb_tail}/{id}/{}", random_hex(16)?),
    ))
}

pub(super) fn write_listener(xml: &mut Xml, listener: &Listener) {
    xml.field("ListenerArn", &listener.arn)
        .field("LoadBalancerArn", &listener.load_balancer_arn)
        .field("Port", &listener.port.to_string())
        .field("Protocol", &listener.protocol);
    write_actions(xml, "DefaultActions", &listener.default_actions);
}

fn answer(listener: &Listener) -> Option<Xml> {
    let mut xml = Xml::new();
    xml.list("Listeners", std::slice::from_ref(listener), write_listener);
    Some(xml)
}

/// Listeners a load balancer may have (AWS's quota), so that deleting one with all its
/// listeners is one store transaction.
const MAX_LISTENERS: usize = 50;

/// CreateListener: a port of a load balancer and what its requests get by default. Creating
/// the same listener again answers the existing one; another on a port in use is
/// `DuplicateListener`.
pub(super) async fn create(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let lb_arn = request
        .get("LoadBalancerArn")
        .ok_or_else(|| missing("loadBalancerArn"))?;
    let port = port(request.get("Port"), "port")?
        .ok_or_else(|| validation("A port must be specified for the listener."))?;
    let protocol = request
        .get("Protocol")
        .ok_or_else(|| validation("A protocol must be specified for the listener."))?;
    refuse_tls(request)?;
    if request.get("MutualAuthentication.Mode").is_some() {
        return Err(validation(
            "Berth serves listeners without TLS: MutualAuthentication cannot be given.",
        ));
    }
    let tags = tags_of(request)?;
    let items = request.structures("DefaultActions");
    authorize(ctx, "CreateListener", &[lb_arn])?;
    let made = write(ctx, |config| {
        let lb = super::load_balancers::existing(ctx, config, lb_arn)?;
        check_protocol(lb, protocol)?;
        let default_actions = parse_actions(ctx, config, lb, &items, "defaultActions")?;
        if let Some(old) = config.listeners_of(lb_arn).find(|l| l.port == port) {
            if old.protocol == protocol && old.default_actions == default_actions {
                return Ok((Txn::new(), old.clone()));
            }
            return Err(ApiError::new(
                "DuplicateListener",
                format!("A listener already exists on port {port} of load balancer '{lb_arn}'"),
            ));
        }
        if config.listeners_of(lb_arn).count() >= MAX_LISTENERS {
            return Err(ApiError::new(
                "TooManyListeners",
                format!("A load balancer can have at most {MAX_LISTENERS} listeners."),
            ));
        }
        port_free(ctx, config, port, lb_arn)?;
        let (arn, default_rule_arn) = listener_arn(ctx, lb)?;
        let listener = Listener {
            arn,
            load_balancer_arn: lb_arn.to_string(),
            port,
            protocol: protocol.to_string(),
            default_actions,
            default_rule_arn,
            rules: Vec::new(),
            tags: tags.clone(),
            default_rule_tags: Vec::new(),
        };
        let key = listener.key();
        let txn = Txn::new()
            .when(Compare::absent(&key))
            .put(&key, encode(&listener));
        Ok((txn, listener))
    })
    .await?;
    Ok(answer(&made))
}

/// DescribeListeners: those of a load balancer or those named by `ListenerArns` (each must
/// exist), in port order, a page at a time.
pub(super) fn describe(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let lb_arn = request.get("LoadBalancerArn");
    let arns = strings(request, "ListenerArns");
    let mut resources: Vec<&str> = arns.iter().map(String::as_str).collect();
    resources.extend(lb_arn);
    authorize(ctx, "DescribeListeners", &resources)?;
    let config = Config::read(ctx)?;
    let found: Vec<Listener> = match (lb_arn, arns.is_empty()) {
        (Some(_), false) => {
            return Err(validation(
                "Give either LoadBalancerArn or ListenerArns, not both.",
            ))
        }
        (None, true) => {
            return Err(validation(
                "You must specify either listener ARNs or a load balancer ARN",
            ))
        }
        (Some(lb_arn), true) => {
            super::load_balancers::existing(ctx, &config, lb_arn)?;
            config.listeners_of(lb_arn).cloned().collect()
        }
        (None, false) => arns
            .iter()
            .map(|arn| existing(ctx, &config, arn).cloned())
            .collect::<Result<_, _>>()?,
    };
    let (found, marker) = page(request, found, |l| format!("{:05}{}", l.port, l.arn))?;
    let mut xml = Xml::new();
    xml.list("Listeners", &found, write_listener);
    xml.optional("NextMarker", marker.as_deref());
    Ok(Some(xml))
}

fn listener_arn_of(request: &QueryRequest) -> Result<&str, ApiError> {
    request
        .get("ListenerArn")
        .ok_or_else(|| missing("listenerArn"))
}

/// ModifyListener: changes the port, protocol or default actions given; the rules stay.
pub(super) async fn modify(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let arn = listener_arn_of(request)?;
    let port = port(request.get("Port"), "port")?;
    refuse_tls(request)?;
    let items = request.structures("DefaultActions");
    authorize(ctx, "ModifyListener", &[arn])?;
    let listener = write(ctx, |config| {
        let mut listener = existing(ctx, config, arn)?.clone();
        let lb = super::load_balancers::existing(ctx, config, &listener.load_balancer_arn)?;
        if let Some(protocol) = request.get("Protocol") {
            check_protocol(lb, protocol)?;
            listener.protocol = protocol.to_string();
        }
        if let Some(port) = port {
            port_free(ctx, config, port, &listener.load_balancer_arn)?;
            let taken = config
                .listeners_of(&listener.load_balancer_arn)
                .any(|l| l.port == port && l.arn != listener.arn);
            if taken {
                return Err(ApiError::new(
                    "DuplicateListener",
                    format!(
                        "A listener already exists on port {port} of load balancer '{}'",
                        listener.load_balancer_arn
                    ),
                ));
            }
            listener.port = port;
        }
        if !items.is_empty() {
            listener.default_actions = parse_actions(ctx, config, lb, &items, "defaultActions")?;
        }
        Ok((Txn::new().put(listener.key(), encode(&listener)), listener))
    })
    .await?;
    Ok(answer(&listener))
}

/// DeleteListener: the listener and its rules.
pub(super) async fn delete(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let arn = listener_arn_of(request)?;
    authorize(ctx, "DeleteListener", &[arn])?;
    write(ctx, |config| {
        let listener = existing(ctx, config, arn)?;
        Ok((Txn::new().delete(listener.key()), ()))
    })
    .await?;
    Ok(Some(Xml::new()))
}

/// Refuses `port` when a listener of another load balancer than `load_balancer` (whose own
/// listeners are checked by the caller) or Berth's own API has it: the server serves every
/// load balancer on its one listen address, so a port serves one listener.
fn port_free(ctx: &Ctx, config: &Config, port: u16, load_balancer: &str) -> Result<(), ApiError> {
    let address = ctx.app.config.listen;
    if port == address.port() {
        return Err(ApiError::new(
            "DuplicateListener",
            format!("Port {port} is Berth's own API port on {address}; choose another port for the listener."),
        ));
    }
    match config
        .listeners
        .iter()
        .find(|l| l.port == port && l.load_balancer_arn != load_balancer)
    {
        Some(other) => Err(ApiError::new(
            "DuplicateListener",
            format!(
                "Port {port} is already used by a listener of load balancer '{}': Berth serves every load balancer on {}, so one port serves one listener.",
                other.load_balancer_arn,
                address.ip()
            ),
        )),
        None => Ok(()),
    }
}
