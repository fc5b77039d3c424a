//! Ingress rules: AuthorizeSecurityGroupIngress and RevokeSecurityGroupIngress, and EC2's
//! `IpPermission` both read and every answer shows. A permission names a protocol, a port
//! range and any number of sources (`IpRanges`, `UserIdGroupPairs`); Berth stores one
//! [`IngressRule`] per source and shows them grouped back by protocol and ports. Berth
//! enforces `tcp`, `udp`, `icmp` and `-1` (every protocol) from IPv4 blocks and groups;
//! IPv6 blocks, prefix lists and other protocols are refused rather than kept and ignored.

use super::security_groups::{find, find_by_name, group_arn, target};
use super::{
    arn, authorize, combination, dry_run, integer, invalid, items, missing, strings, structures,
    Ec2Request, Fields,
};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::protocol::query::Xml;
use berth_core::security_group::{security_group_key, IngressRule, SecurityGroup};
use berth_store::typed::{encode, Versioned};
use berth_store::{Compare, Txn};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The one egress permission every group shows: all traffic to anywhere (Berth does not
/// filter egress).
pub struct EgressAll;

/// [`EgressAll`], as [`write_permissions`] takes it.
pub const EGRESS_ALL: EgressAll = EgressAll;

impl EgressAll {
    /// The rule: protocol `-1` to `0.0.0.0/0`.
    pub fn rule(&self) -> IngressRule {
        IngressRule {
            protocol: "-1".into(),
            from_port: None,
            to_port: None,
            cidr: Some("0.0.0.0/0".into()),
            source_group: None,
            description: None,
        }
    }
}

/// The source of one requested rule, as the request named it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Cidr(String),
    GroupId(String),
    GroupName(String),
}

/// One requested rule: a permission and one of its sources.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted {
    protocol: String,
    from_port: Option<i32>,
    to_port: Option<i32>,
    source: Source,
    description: Option<String>,
}

/// EC2's name of protocol `text` (a name or an IANA number): `tcp`, `udp`, `icmp` or `-1`.
fn protocol(text: &str) -> Result<String, ApiError> {
    match text.to_ascii_lowercase().as_str() {
        "tcp" | "6" => Ok("tcp".into()),
        "udp" | "17" => Ok("udp".into()),
        "icmp" | "1" => Ok("icmp".into()),
        "-1" | "all" => Ok("-1".into()),
        other if other.parse::<u8>().is_ok() || other == "icmpv6" => Err(invalid(format!(
            "Berth's security groups filter tcp, udp, icmp and -1 (all protocols): protocol '{text}' is not one of them."
        ))),
        _ => Err(invalid(format!(
            "Invalid value '{text}' for IP protocol. Unknown protocol."
        ))),
    }
}

/// The stored ports of a `protocol` permission given `from` and `to`: a port range for
/// `tcp`/`udp`, an ICMP type and code (`-1`: any) for `icmp`, none for `-1`.
fn ports(
    protocol: &str,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<(Option<i32>, Option<i32>), ApiError> {
    match protocol {
        "tcp" | "udp" => {
            let (Some(from), Some(to)) = (from, to) else {
                return Err(invalid(
                    "Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange.",
                ));
            };
            if !(0..=65535).contains(&from) || !(0..=65535).contains(&to) {
                return Err(invalid(format!(
                    "Invalid value '{from}-{to}' for portRange: ports are 0 to 65535."
                )));
            }
            if from > to {
                return Err(invalid(format!(
                    "Invalid value '{from}-{to}' for portRange: the from port ({from}) must not be greater than the to port ({to})."
                )));
            }
            Ok((Some(from as i32), Some(to as i32)))
        }
        "icmp" => {
            let (kind, code) = (from.unwrap_or(-1), to.unwrap_or(-1));
            if !(-1..=255).contains(&kind) || !(-1..=255).contains(&code) {
                return Err(invalid(format!(
                    "Invalid value '{kind}/{code}' for ICMP type/code: each is -1 (any) or 0 to 255."
                )));
            }
            if kind == -1 && code != -1 {
                return Err(invalid(format!(
                    "Invalid value '{code}' for ICMP code: with ICMP type -1 (any) the code must be -1."
                )));
            }
            Ok((Some(kind as i32), Some(code as i32)))
        }
        _ => Ok((None, None)),
    }
}

/// An IPv4 block `a.b.c.d/n` with no host bits set, or `InvalidParameterValue`.
fn cidr(text: &str) -> Result<String, ApiError> {
    let malformed = || invalid(format!("CIDR block {text} is malformed"));
    let (address, length) = text.split_once('/').ok_or_else(malformed)?;
    let address: Ipv4Addr = address.parse().map_err(|_| malformed())?;
    let length: u32 = length
        .parse()
        .ok()
        .filter(|l| *l <= 32)
        .ok_or_else(malformed)?;
    let mask = u32::MAX.checked_shl(32 - length).unwrap_or(0);
    let bits = u32::from(address);
    if bits & !mask != 0 {
        return Err(invalid(format!(
            "CIDR block {text} is malformed: its host bits are set (the block is {}/{length}).",
            Ipv4Addr::from(bits & mask)
        )));
    }
    Ok(format!("{address}/{length}"))
}

/// A rule's description: at most 255 characters.
fn description(text: Option<&String>) -> Result<Option<String>, ApiError> {
    match text {
        Some(d) if d.chars().count() > 255 => Err(invalid(format!(
            "Invalid rule description '{d}': at most 255 characters."
        ))),
        other => Ok(other.filter(|d| !d.is_empty()).cloned()),
    }
}

/// The rules `IpPermissions.N` of the request asks for, one per source; or those of the old
/// flat form (`IpProtocol`, `FromPort`, `ToPort`, `CidrIp`, `SourceSecurityGroupName`).
fn wanted(ctx: &Ctx, request: &Ec2Request) -> Result<Vec<Wanted>, ApiError> {
    let permissions = structures(&request.params, "IpPermissions");
    let flat = [
        "IpProtocol",
        "CidrIp",
        "SourceSecurityGroupName",
        "FromPort",
        "ToPort",
    ]
    .iter()
    .any(|p| request.get(p).is_some());
    if flat && !permissions.is_empty() {
        return Err(combination(
            "The parameter IpPermissions cannot be used with the parameters IpProtocol, FromPort, ToPort, CidrIp or SourceSecurityGroupName",
        ));
    }
    if flat {
        return flat_form(ctx, request);
    }
    if permissions.is_empty() {
        return Err(missing("ipPermissions"));
    }
    let mut out = Vec::new();
    for fields in &permissions {
        out.extend(permission(ctx, fields)?);
    }
    Ok(out)
}

/// The rules of one `IpPermission`.
fn permission(ctx: &Ctx, fields: &Fields) -> Result<Vec<Wanted>, ApiError> {
    let protocol = protocol(
        fields
            .get("IpProtocol")
            .ok_or_else(|| missing("ipProtocol"))?,
    )?;
    let (from_port, to_port) = ports(
        &protocol,
        integer(fields.get("FromPort").map(String::as_str), "FromPort")?,
        integer(fields.get("ToPort").map(String::as_str), "ToPort")?,
    )?;
    if !structures(fields, "Ipv6Ranges").is_empty()
        || !structures(fields, "PrefixListIds").is_empty()
    {
        return Err(invalid(
            "Berth's security groups take IPv4 blocks (IpRanges) and groups (UserIdGroupPairs) as sources: IPv6 blocks and prefix lists are not supported.",
        ));
    }
    let wanted = |source, description| Wanted {
        protocol: protocol.clone(),
        from_port,
        to_port,
        source,
        description,
    };
    let mut out = Vec::new();
    for range in structures(fields, "IpRanges") {
        let block = range.get("CidrIp").ok_or_else(|| missing("cidrIp"))?;
        out.push(wanted(
            Source::Cidr(cidr(block)?),
            description(range.get("Description"))?,
        ));
    }
    for pair in structures(fields, "Groups") {
        if let Some(user) = pair.get("UserId").filter(|u| **u != ctx.arns.account_id) {
            return Err(invalid(format!(
                "Berth has one account ({}): groups of account {user} cannot be sources.",
                ctx.arns.account_id
            )));
        }
        let source = match (pair.get("GroupId"), pair.get("GroupName")) {
            (Some(id), _) if !id.is_empty() => Source::GroupId(id.clone()),
            (_, Some(name)) if !name.is_empty() => Source::GroupName(name.clone()),
            _ => return Err(missing("groupId or groupName of a UserIdGroupPair")),
        };
        out.push(wanted(source, description(pair.get("Description"))?));
    }
    if out.is_empty() {
        return Err(missing("ipRanges or groups (the source of the permission)"));
    }
    Ok(out)
}

/// The rule of the old flat form of the request.
fn flat_form(ctx: &Ctx, request: &Ec2Request) -> Result<Vec<Wanted>, ApiError> {
    let mut fields = Fields::new();
    for name in ["IpProtocol", "FromPort", "ToPort"] {
        if let Some(value) = request.get(name) {
            fields.insert(name.into(), value.into());
        }
    }
    if let Some(block) = request.get("CidrIp") {
        fields.insert("IpRanges.1.CidrIp".into(), block.into());
    }
    if let Some(name) = request.get("SourceSecurityGroupName") {
        fields.insert("Groups.1.GroupName".into(), name.into());
        if let Some(owner) = request.get("SourceSecurityGroupOwnerId") {
            fields.insert("Groups.1.UserId".into(), owner.into());
        }
        // A group alone once meant all traffic from it.
        fields
            .entry("IpProtocol".into())
            .or_insert_with(|| "-1".into());
    }
    permission(ctx, &fields)
}

/// The stored rule `wanted` is, for group `group`; its source group as stored when it is
/// another group. `None` when the source group does not exist and `lenient` (a revoke,
/// where such a rule is simply unknown); `InvalidGroup.NotFound` otherwise.
fn resolve(
    ctx: &Ctx,
    group: &SecurityGroup,
    wanted: &Wanted,
    lenient: bool,
) -> Result<(IngressRule, Option<Versioned<SecurityGroup>>), ApiError> {
    let mut rule = IngressRule {
        protocol: wanted.protocol.clone(),
        from_port: wanted.from_port,
        to_port: wanted.to_port,
        cidr: None,
        source_group: None,
        description: wanted.description.clone(),
    };
    let source = match &wanted.source {
        Source::Cidr(block) => {
            rule.cidr = Some(block.clone());
            None
        }
        Source::GroupId(id) if *id == group.group_id => None,
        Source::GroupId(id) => match find(ctx, id) {
            Ok(found) => Some(found),
            Err(e) if lenient && e.name == "InvalidGroup.NotFound" => None,
            Err(e) => return Err(e),
        },
        Source::GroupName(name) if *name == group.group_name => None,
        Source::GroupName(name) => Some(find_by_name(ctx, name, group.vpc_id.as_deref())?),
    };
    rule.source_group = Some(match (&wanted.source, &source) {
        (_, Some(found)) => found.value.group_id.clone(),
        (Source::Cidr(_), None) => return Ok((rule, None)),
        (Source::GroupId(id), None) => id.clone(),
        (Source::GroupName(_), None) => group.group_id.clone(),
    });
    Ok((rule, source))
}

/// The id EC2 shows for rule `rule` of group `group`: `sgr-` and 17 hex digits, derived from
/// the group and the permission so it is the same on every call.
pub fn rule_id(group: &str, rule: &IngressRule) -> String {
    let text = format!(
        "{group}|{}|{:?}|{:?}|{}|{}",
        rule.protocol,
        rule.from_port,
        rule.to_port,
        rule.cidr.as_deref().unwrap_or_default(),
        rule.source_group.as_deref().unwrap_or_default()
    );
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sgr-{}", &hex[..17])
}

/// How EC2 words a rule in its messages: `peer: 10.0.0.0/8, TCP, from port: 22, to port: 22, ALLOW`.
fn wording(rule: &IngressRule) -> String {
    let peer = rule
        .cidr
        .clone()
        .or_else(|| rule.source_group.clone())
        .unwrap_or_default();
    let protocol = if rule.protocol == "-1" {
        "ALL".to_string()
    } else {
        rule.protocol.to_ascii_uppercase()
    };
    match (rule.from_port, rule.to_port) {
        (Some(from), Some(to)) => {
            format!("peer: {peer}, {protocol}, from port: {from}, to port: {to}, ALLOW")
        }
        _ => format!("peer: {peer}, {protocol}, ALLOW"),
    }
}

/// AuthorizeSecurityGroupIngress: adds the rules, each new (`InvalidPermission.Duplicate`
/// otherwise), each source group existing. A source group's record is rewritten unchanged in
/// the same transaction, so a DeleteSecurityGroup of it racing this call sees the new rule.
pub async fn authorize_ingress(ctx: &Ctx, request: &Ec2Request) -> Result<Option<Xml>, ApiError> {
    let id = target(ctx, request)?.value.group_id;
    authorize(ctx, "AuthorizeSecurityGroupIngress", &group_arn(ctx, &id))?;
    let wanted = wanted(ctx, request)?;
    loop {
        let found = find(ctx, &id)?;
        let mut group = found.value;
        let mut sources: BTreeMap<String, Versioned<SecurityGroup>> = BTreeMap::new();
        let mut added: Vec<IngressRule> = Vec::new();
        for each in &wanted {
            let (rule, source) = resolve(ctx, &group, each, false)?;
            let present = group
                .ingress
                .iter()
                .chain(&added)
                .any(|r| r.same_permission(&rule));
            if present {
                return Err(ApiError::new(
                    "InvalidPermission.Duplicate",
                    format!("the specified rule \"{}\" already exists", wording(&rule)),
                ));
            }
            if let Some(source) = source {
                sources.insert(source.value.group_id.clone(), source);
            }
            added.push(rule);
        }
        dry_run(request)?;
        group.ingress.extend(added.iter().cloned());
        let key = security_group_key(&id);
        let mut txn = Txn::new()
            .when(Compare::at(&key, found.mod_revision))
            .put(&key, encode(&group));
        for (source_id, source) in &sources {
            let source_key = security_group_key(source_id);
            txn = txn
                .when(Compare::at(&source_key, source.mod_revision))
                .put(&source_key, encode(&source.value));
        }
        if ctx.commit(txn).await?.succeeded {
            let mut xml = Xml::new();
            xml.field("return", "true");
            items(&mut xml, "securityGroupRuleSet", &added, |xml, rule| {
                write_rule(ctx, xml, &id, rule)
            });
            return Ok(Some(xml));
        }
    }
}

/// RevokeSecurityGroupIngress: removes the rules named by permission or by
/// `SecurityGroupRuleId.N`. A permission the group does not have is no error: it comes back
/// in `UnknownIpPermissions`, as EC2 answers.
pub async fn revoke_ingress(ctx: &Ctx, request: &Ec2Request) -> Result<Option<Xml>, ApiError> {
    let id = target(ctx, request)?.value.group_id;
    authorize(ctx, "RevokeSecurityGroupIngress", &group_arn(ctx, &id))?;
    let rule_ids = strings(&request.params, "SecurityGroupRuleId");
    let wanted = if rule_ids.is_empty() {
        wanted(ctx, request)?
    } else if request
        .params
        .keys()
        .any(|k| k.starts_with("IpPermissions."))
    {
        return Err(combination(
            "The parameter SecurityGroupRuleIds cannot be used with the parameter IpPermissions",
        ));
    } else {
        Vec::new()
    };
    loop {
        let found = find(ctx, &id)?;
        let mut group = found.value;
        let mut removed: Vec<IngressRule> = Vec::new();
        let mut unknown: Vec<IngressRule> = Vec::new();
        for rule_id_given in &rule_ids {
            let rule = group
                .ingress
                .iter()
                .find(|r| rule_id(&id, r) == *rule_id_given)
                .ok_or_else(|| {
                    ApiError::new(
                        "InvalidSecurityGroupRuleId.NotFound",
                        format!("The security group rule ID '{rule_id_given}' does not exist"),
                    )
                })?;
            if !removed.contains(rule) {
                removed.push(rule.clone());
            }
        }
        for each in &wanted {
            let (rule, _) = resolve(ctx, &group, each, true)?;
            match group.ingress.iter().find(|r| r.same_permission(&rule)) {
                Some(stored) if !removed.contains(stored) => removed.push(stored.clone()),
                Some(_) => {}
                None => unknown.push(rule),
            }
        }
        dry_run(request)?;
        let answer = |removed: &[IngressRule], unknown: &[IngressRule]| {
            let mut xml = Xml::new();
            xml.field("return", "true");
            if !unknown.is_empty() {
                write_permissions(ctx, &mut xml, "unknownIpPermissionSet", unknown);
            }
            items(
                &mut xml,
                "revokedSecurityGroupRuleSet",
                removed,
                |xml, rule| write_revoked(xml, &id, rule),
            );
            Some(xml)
        };
        if removed.is_empty() {
            return Ok(answer(&removed, &unknown));
        }
        group.ingress.retain(|r| !removed.contains(r));
        let key = security_group_key(&id);
        let txn = Txn::new()
            .when(Compare::at(&key, found.mod_revision))
            .put(&key, encode(&group));
        if ctx.commit(txn).await?.succeeded {
            return Ok(answer(&removed, &unknown));
        }
    }
}

/// `rules` as EC2's `IpPermission` list `name`: one permission per protocol and port range,
/// its sources under `ipRanges` and `groups`, in the order the rules were added.
pub fn write_permissions(ctx: &Ctx, xml: &mut Xml, name: &str, rules: &[IngressRule]) {
    let mut permissions: Vec<(&IngressRule, Vec<&IngressRule>)> = Vec::new();
    for rule in rules {
        let same_ports = |(first, _): &&mut (&IngressRule, Vec<&IngressRule>)| {
            first.protocol == rule.protocol
                && first.from_port == rule.from_port
                && first.to_port == rule.to_port
        };
        match permissions.iter_mut().find(same_ports) {
            Some((_, members)) => members.push(rule),
            None => permissions.push((rule, vec![rule])),
        }
    }
    items(xml, name, &permissions, |xml, (first, members)| {
        xml.field("ipProtocol", &first.protocol);
        if let (Some(from), Some(to)) = (first.from_port, first.to_port) {
            xml.field("fromPort", &from.to_string())
                .field("toPort", &to.to_string());
        }
        let groups: Vec<&&IngressRule> = members
            .iter()
            .filter(|r| r.source_group.is_some())
            .collect();
        items(xml, "groups", &groups, |xml, rule| {
            xml.optional("description", rule.description.as_deref())
                .field("userId", &ctx.arns.account_id)
                .optional("groupId", rule.source_group.as_deref());
        });
        let ranges: Vec<&&IngressRule> = members.iter().filter(|r| r.cidr.is_some()).collect();
        items(xml, "ipRanges", &ranges, |xml, rule| {
            xml.optional("cidrIp", rule.cidr.as_deref())
                .optional("description", rule.description.as_deref());
        });
        xml.nest("ipv6Ranges", |_| {}).nest("prefixListIds", |_| {});
    });
}

/// The ports of a rule as a SecurityGroupRule shows them (`-1` for none).
fn shown_ports(rule: &IngressRule) -> (String, String) {
    (
        rule.from_port.unwrap_or(-1).to_string(),
        rule.to_port.unwrap_or(-1).to_string(),
    )
}

/// One `SecurityGroupRule` of group `group`.
fn write_rule(ctx: &Ctx, xml: &mut Xml, group: &str, rule: &IngressRule) {
    let id = rule_id(group, rule);
    let (from, to) = shown_ports(rule);
    xml.field("securityGroupRuleId", &id)
        .field("groupId", group)
        .field("groupOwnerId", &ctx.arns.account_id)
        .field("isEgress", "false")
        .field("ipProtocol", &rule.protocol)
        .field("fromPort", &from)
        .field("toPort", &to)
        .optional("cidrIpv4", rule.cidr.as_deref());
    if let Some(source) = &rule.source_group {
        xml.nest("referencedGroupInfo", |xml| {
            xml.field("groupId", source)
                .field("userId", &ctx.arns.account_id);
        });
    }
    xml.optional("description", rule.description.as_deref())
        .field(
            "securityGroupRuleArn",
            &arn(ctx, &format!("security-group-rule/{id}")),
        );
}

/// One `RevokedSecurityGroupRule` of group `group`.
fn write_revoked(xml: &mut Xml, group: &str, rule: &IngressRule) {
    let (from, to) = shown_ports(rule);
    xml.field("securityGroupRuleId", &rule_id(group, rule))
        .field("groupId", group)
        .field("isEgress", "false")
        .field("ipProtocol", &rule.protocol)
        .field("fromPort", &from)
        .field("toPort", &to)
        .optional("cidrIpv4", rule.cidr.as_deref())
        .optional("referencedGroupId", rule.source_group.as_deref())
        .optional("description", rule.description.as_deref());
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn protocols_are_named_as_ec2_names_them() {
        assert_eq!(protocol("TCP").expect("tcp"), "tcp");
        assert_eq!(protocol("6").expect("tcp"), "tcp");
        assert_eq!(protocol("17").expect("udp"), "udp");
        assert_eq!(protocol("1").expect("icmp"), "icmp");
        assert_eq!(protocol("-1").expect("all"), "-1");
        assert_eq!(
            protocol("47").expect_err("gre").name,
            "InvalidParameterValue"
        );
        assert_eq!(
            protocol("bogus").expect_err("bogus").name,
            "InvalidParameterValue"
        );
    }

    #[test]
    fn cidr_blocks_must_be_ipv4_with_no_host_bits() {
        assert_eq!(cidr("10.0.0.0/8").expect("ok"), "10.0.0.0/8");
        assert_eq!(cidr("0.0.0.0/0").expect("ok"), "0.0.0.0/0");
        assert_eq!(cidr("10.1.2.3/32").expect("ok"), "10.1.2.3/32");
        for bad in [
            "10.0.0.5/16",
            "10.0.0.0",
            "10.0.0.0/33",
            "300.0.0.0/8",
            "::/0",
            "x/1",
        ] {
            assert_eq!(
                cidr(bad).expect_err(bad).name,
                "InvalidParameterValue",
                "{bad}"
            );
        }
    }

    #[test]
    fn ports_follow_the_protocol() {
        assert_eq!(
            ports("tcp", Some(80), Some(90)).expect("ok"),
            (Some(80), Some(90))
        );
        assert!(ports("tcp", Some(90), Some(80)).is_err());
        assert!(ports("udp", Some(0), Some(65536)).is_err());
        assert!(ports("tcp", None, Some(80)).is_err());
        assert_eq!(ports("icmp", None, None).expect("ok"), (Some(-1), Some(-1)));
        assert_eq!(
            ports("icmp", Some(8), Some(0)).expect("ok"),
            (Some(8), Some(0))
        );
        assert!(ports("icmp", Some(-1), Some(3)).is_err());
        assert_eq!(ports("-1", Some(1), Some(2)).expect("ok"), (None, None));
    }

    #[test]
    fn rule_ids_are_stable_and_differ_by_permission() {
        let rule = EGRESS_ALL.rule();
        let id = rule_id("sg-1", &rule);
        assert!(id.starts_with("sgr-") && id.len() == 21, "{id}");
        assert_eq!(id, rule_id("sg-1", &rule));
        assert_ne!(id, rule_id("sg-2", &rule));
    }
}
