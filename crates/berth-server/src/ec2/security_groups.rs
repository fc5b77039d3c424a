//! Security groups: CreateSecurityGroup, DescribeSecurityGroups, DeleteSecurityGroup, and
//! how a request names a group (GroupId, or GroupName within its VPC). A group is stored by
//! id under `SECURITY_GROUPS`; its name is held under [`NAMES`] so two creates of one name
//! in one VPC cannot both succeed.

use super::permissions::{write_permissions, EGRESS_ALL};
use super::tags::{tags_from_specifications, write_tags};
use super::{
    arn, authorize, combination, dry_run, integer, invalid, missing, random_hex, strings,
    structures, Ec2Request,
};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::protocol::query::{url_encode, Xml};
use berth_core::security_group::{security_group_key, SecurityGroup, SECURITY_GROUPS};
use berth_store::typed::{encode, Versioned};
use berth_store::{Compare, Txn};

/// Store prefix of the names of security groups: `{NAMES}{vpc}/{name}` holds the group id.
pub const NAMES: &str = "/security-group-names/";

/// The longest group name and description.
const MAX_TEXT: usize = 255;

/// The characters EC2 allows in a VPC security group's name and description.
const ALLOWED: &str = "a-zA-Z0-9. _-:/()#,@[]+=&;{}!$*";

/// Store key of the name `name` in VPC `vpc` (none: the groups made without a VpcId).
pub fn name_key(vpc: Option<&str>, name: &str) -> String {
    format!(
        "{NAMES}{}/{}",
        url_encode(vpc.unwrap_or_default()),
        url_encode(name)
    )
}

/// `arn:aws:ec2:{region}:{account}:security-group/{id}`.
pub fn group_arn(ctx: &Ctx, id: &str) -> String {
    arn(ctx, &format!("security-group/{id}"))
}

/// EC2's `InvalidGroup.NotFound` for `what` (an id or a name).
pub fn not_found(what: &str) -> ApiError {
    ApiError::new(
        "InvalidGroup.NotFound",
        format!("The security group '{what}' does not exist"),
    )
}

/// Whether `id` has the form of a security group id: `sg-` and 8 or 17 hex digits.
fn well_formed(id: &str) -> bool {
    id.strip_prefix("sg-").is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17) && hex.chars().all(|c| c.is_ascii_hexdigit())
    })
}

/// Group `id` as stored, or `InvalidGroupId.Malformed` / `InvalidGroup.NotFound`.
pub fn find(ctx: &Ctx, id: &str) -> Result<Versioned<SecurityGroup>, ApiError> {
    if !well_formed(id) {
        return Err(ApiError::new(
            "InvalidGroupId.Malformed",
            format!("Invalid id: \"{id}\" (expecting \"sg-...\")"),
        ));
    }
    ctx.get::<SecurityGroup>(&security_group_key(id))?
        .ok_or_else(|| not_found(id))
}

/// The group named `name`: in VPC `vpc` when given, else the one of that name made without a
/// VPC, else the only one of that name.
pub fn find_by_name(
    ctx: &Ctx,
    name: &str,
    vpc: Option<&str>,
) -> Result<Versioned<SecurityGroup>, ApiError> {
    if vpc.is_some() {
        if let Some(held) = ctx.get::<String>(&name_key(vpc, name))? {
            return find(ctx, &held.value);
        }
    }
    let mut named: Vec<Versioned<SecurityGroup>> = all(ctx)?
        .into_iter()
        .filter(|g| g.value.group_name == name)
        .collect();
    if let Some(at) = named.iter().position(|g| g.value.vpc_id.is_none()) {
        return Ok(named.swap_remove(at));
    }
    match named.len() {
        0 => Err(not_found(name)),
        1 => Ok(named.swap_remove(0)),
        _ => Err(invalid(format!(
            "Several security groups are named '{name}' (in different VPCs): name the group by its GroupId."
        ))),
    }
}

/// Every stored group, by id.
pub fn all(ctx: &Ctx) -> Result<Vec<Versioned<SecurityGroup>>, ApiError> {
    ctx.list::<SecurityGroup>(SECURITY_GROUPS)
}

/// The group a request names by `GroupId` or `GroupName`.
pub fn target(ctx: &Ctx, request: &Ec2Request) -> Result<Versioned<SecurityGroup>, ApiError> {
    match (request.get("GroupId"), request.get("GroupName")) {
        (Some(id), _) if !id.is_empty() => find(ctx, id),
        (_, Some(name)) if !name.is_empty() => find_by_name(ctx, name, None),
        _ => Err(missing("groupId or groupName")),
    }
}

/// EC2's rules for a group's name or description (`what`, as EC2 names the parameter).
fn check_text(text: &str, what: &str) -> Result<(), ApiError> {
    if text.chars().count() > MAX_TEXT {
        return Err(invalid(format!(
            "Value ({text}) for parameter {what} is invalid. Length exceeds maximum of {MAX_TEXT} characters."
        )));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._-:/()#,@[]+=&;{}!$* ".contains(c);
    if let Some(bad) = text.chars().find(|c| !allowed(*c)) {
        return Err(invalid(format!(
            "Value ({text}) for parameter {what} is invalid. Character '{bad}' is not allowed: use {ALLOWED}."
        )));
    }
    Ok(())
}

/// CreateSecurityGroup: a group with no ingress rules (its egress is all traffic, as a new
/// EC2 group's is), unique by name in its VPC.
pub async fn create(ctx: &Ctx, request: &Ec2Request) -> Result<Option<Xml>, ApiError> {
    authorize(ctx, "CreateSecurityGroup", "*")?;
    let name = request
        .get("GroupName")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| missing("groupName"))?;
    let description = request
        .get("GroupDescription")
        .filter(|d| !d.is_empty())
        .ok_or_else(|| missing("groupDescription"))?;
    check_text(name, "groupName")?;
    check_text(description, "groupDescription")?;
    if name.to_ascii_lowercase().starts_with("sg-") {
        return Err(invalid("Group names may not be in the format sg-*"));
    }
    if name == "default" {
        return Err(invalid("Cannot use reserved security group name: default"));
    }
    let vpc_id = request.get("VpcId").filter(|v| !v.is_empty());
    let tags = tags_from_specifications(request, "security-group")?;
    dry_run(request)?;
    let held_at = name_key(vpc_id, name);
    loop {
        let held = ctx.get::<String>(&held_at)?;
        if let Some(held) = &held {
            if ctx
                .get::<SecurityGroup>(&security_group_key(&held.value))?
                .is_some()
            {
                let place = vpc_id
                    .map(|v| format!(" for VPC '{v}'"))
                    .unwrap_or_default();
                return Err(ApiError::new(
                    "InvalidGroup.Duplicate",
                    format!("The security group '{name}' already exists{place}"),
                ));
            }
        }
        let group = SecurityGroup {
            group_id: format!("sg-{}", random_hex(17)?),
            group_name: name.to_string(),
            description: description.to_string(),
            vpc_id: vpc_id.map(String::from),
            ingress: Vec::new(),
            tags: tags.clone(),
        };
        let key = security_group_key(&group.group_id);
        let txn = Txn::new()
            .when(Compare::at(&held_at, held.map_or(0, |h| h.mod_revision)))
            .when(Compare::absent(&key))
            .put(&key, encode(&group))
            .put(&held_at, encode(&group.group_id));
        if ctx.commit(txn).await?.succeeded {
            let mut xml = Xml::new();
            xml.field("groupId", &group.group_id);
            write_tags(&mut xml, &group.tags);
            xml.field("securityGroupArn", &group_arn(ctx, &group.group_id));
            return Ok(Some(xml));
        }
    }
}

/// A filter of DescribeSecurityGroups: its name and the values it accepts (any of them).
struct Filter {
    name: String,
    values: Vec<String>,
}

/// The filters EC2 documents for DescribeSecurityGroups that Berth applies.
const FILTERS: &[&str] = &[
    "group-id",
    "group-name",
    "description",
    "vpc-id",
    "owner-id",
    "tag-key",
    "tag-value",
    "tag:<key>",
    "ip-permission.cidr",
    "ip-permission.group-id",
    "ip-permission.protocol",
    "ip-permission.from-port",
    "ip-permission.to-port",
];

/// The request's `Filter.N` (each with `Name` and `Value.M`), checked.
fn filters(request: &Ec2Request) -> Result<Vec<Filter>, ApiError> {
    let mut out = Vec::new();
    for fields in structures(&request.params, "Filter") {
        let name = fields.get("Name").cloned().unwrap_or_default();
        let known = name.starts_with("tag:") && name.len() > 4 || FILTERS.contains(&name.as_str());
        if !known || name == "tag:<key>" {
            return Err(invalid(format!(
                "The filter '{name}' is invalid: use one of {}.",
                FILTERS.join(", ")
            )));
        }
        out.push(Filter {
            values: strings(&fields, "Value"),
            name,
        });
    }
    Ok(out)
}

/// The values filter `name` compares with `group`.
fn values_of(ctx: &Ctx, group: &SecurityGroup, name: &str) -> Vec<String> {
    let rules = group.ingress.iter();
    match name {
        "group-id" => vec![group.group_id.clone()],
        "group-name" => vec![group.group_name.clone()],
        "description" => vec![group.description.clone()],
        "vpc-id" => group.vpc_id.iter().cloned().collect(),
        "owner-id" => vec![ctx.arns.account_id.clone()],
        "tag-key" => group.tags.iter().map(|t| t.key.clone()).collect(),
        "tag-value" => group.tags.iter().map(|t| t.value.clone()).collect(),
        "ip-permission.cidr" => rules.filter_map(|r| r.cidr.clone()).collect(),
        "ip-permission.group-id" => rules.filter_map(|r| r.source_group.clone()).collect(),
        "ip-permission.protocol" => rules.map(|r| r.protocol.clone()).collect(),
        "ip-permission.from-port" => rules
            .map(|r| r.from_port.unwrap_or(-1).to_string())
            .collect(),
        "ip-permission.to-port" => rules.map(|r| r.to_port.unwrap_or(-1).to_string()).collect(),
        tag => {
            let key = tag.strip_prefix("tag:").unwrap_or_default();
            group
                .tags
                .iter()
                .filter(|t| t.key == key)
                .map(|t| t.value.clone())
                .collect()
        }
    }
}

/// Whether `text` matches filter value `pattern`, where `*` is any run of characters, `?` any
/// one character, and `\` takes the next character literally, as EC2's filters read them.
fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some(('?', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some(('\\', rest)) if !rest.is_empty() => {
                t.first() == rest.first() && go(&rest[1..], &t[1..])
            }
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

/// The most groups one page of DescribeSecurityGroups may hold.
const MAX_PAGE: i64 = 1000;

/// DescribeSecurityGroups: the groups named by `GroupId.N` and `GroupName.N` (each must
/// exist), or every group, narrowed by the filters; paged by `MaxResults`/`NextToken` (not
/// with ids or names, as in EC2), in group id order.
pub fn describe(ctx: &Ctx, request: &Ec2Request) -> Result<Option<Xml>, ApiError> {
    authorize(ctx, "DescribeSecurityGroups", "*")?;
    let ids = strings(&request.params, "GroupId");
    let names = strings(&request.params, "GroupName");
    let filters = filters(request)?;
    let max = integer(request.get("MaxResults"), "MaxResults")?;
    let token = request.get("NextToken").filter(|t| !t.is_empty());
    if (max.is_some() || token.is_some()) && !(ids.is_empty() && names.is_empty()) {
        return Err(combination(
            "The parameter groupIds or groupNames cannot be used with the parameter maxResults or nextToken",
        ));
    }
    if let Some(max) = max.filter(|m| !(5..=MAX_PAGE).contains(m)) {
        return Err(invalid(format!(
            "Value ( {max} ) for parameter maxResults is invalid. Expecting a value between 5 and {MAX_PAGE}."
        )));
    }
    if let Some(token) = token.filter(|t| !well_formed(t)) {
        return Err(ApiError::new(
            "InvalidPaginationToken",
            format!("Invalid pagination token: '{token}'"),
        ));
    }
    dry_run(request)?;
    let mut groups: Vec<SecurityGroup> = if ids.is_empty() && names.is_empty() {
        all(ctx)?.into_iter().map(|g| g.value).collect()
    } else {
        let mut named = Vec::new();
        for id in &ids {
            named.push(find(ctx, id)?.value);
        }
        for name in &names {
            named.push(find_by_name(ctx, name, None)?.value);
        }
        named
    };
    groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    groups.dedup_by(|a, b| a.group_id == b.group_id);
    groups.retain(|g| {
        token.is_none_or(|t| g.group_id.as_str() > t)
            && filters.iter().all(|f| {
                let values = values_of(ctx, g, &f.name);
                f.values
                    .iter()
                    .any(|pattern| values.iter().any(|v| glob(pattern, v)))
            })
    });
    let mut next = None;
    if let Some(max) = max.or(token.map(|_| MAX_PAGE)) {
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        if groups.len() > max {
            groups.truncate(max);
            next = groups.last().map(|g| g.group_id.clone());
        }
    }
    let mut xml = Xml::new();
    super::items(&mut xml, "securityGroupInfo", &groups, |xml, group| {
        write_group(ctx, xml, group)
    });
    xml.optional("nextToken", next.as_deref());
    Ok(Some(xml))
}

/// One group as DescribeSecurityGroups shows it.
fn write_group(ctx: &Ctx, xml: &mut Xml, group: &SecurityGroup) {
    xml.field("ownerId", &ctx.arns.account_id)
        .field("groupId", &group.group_id)
        .field("groupName", &group.group_name)
        .field("groupDescription", &group.description)
        .optional("vpcId", group.vpc_id.as_deref());
    write_permissions(ctx, xml, "ipPermissions", &group.ingress);
    write_permissions(ctx, xml, "ipPermissionsEgress", &[EGRESS_ALL.rule()]);
    write_tags(xml, &group.tags);
    xml.field("securityGroupArn", &group_arn(ctx, &group.group_id));
}

/// A task not yet STOPPED whose interface is in group `id`, if any.
fn task_using(ctx: &Ctx, id: &str) -> Option<String> {
    ctx.snapshot()
        .all_tasks()
        .find(|entry| {
            !entry.is_stopped()
                && entry
                    .task
                    .task_network
                    .as_ref()
                    .and_then(|network| network.firewall.as_ref())
                    .is_some_and(|firewall| firewall.groups.iter().any(|g| g == id))
        })
        .map(|entry| entry.arn().to_string())
}

/// DeleteSecurityGroup: refused (`DependencyViolation`) while another group's rule names it,
/// or a task's interface (a task not yet STOPPED) is in it, as EC2 refuses it while a network
/// interface uses the group.
pub async fn delete(ctx: &Ctx, request: &Ec2Request) -> Result<Option<Xml>, ApiError> {
    let id = target(ctx, request)?.value.group_id;
    authorize(ctx, "DeleteSecurityGroup", &group_arn(ctx, &id))?;
    loop {
        let found = find(ctx, &id)?;
        let group = &found.value;
        let user = all(ctx)?.into_iter().find(|other| {
            other.value.group_id != id
                && other
                    .value
                    .ingress
                    .iter()
                    .any(|r| r.source_group.as_deref() == Some(id.as_str()))
        });
        if let Some(user) = user {
            return Err(ApiError::new(
                "DependencyViolation",
                format!(
                    "resource {id} has a dependent object: a rule of security group {} allows traffic from it",
                    user.value.group_id
                ),
            ));
        }
        if let Some(task) = task_using(ctx, &id) {
            return Err(ApiError::new(
                "DependencyViolation",
                format!(
                    "resource {id} has a dependent object: the network interface of task {task} is in it"
                ),
            ));
        }
        dry_run(request)?;
        let key = security_group_key(&id);
        let mut txn = Txn::new()
            .when(Compare::at(&key, found.mod_revision))
            .delete(&key);
        let held_at = name_key(group.vpc_id.as_deref(), &group.group_name);
        if let Some(held) = ctx.get::<String>(&held_at)?.filter(|h| h.value == id) {
            txn = txn
                .when(Compare::at(&held_at, held.mod_revision))
                .delete(&held_at);
        }
        if ctx.commit(txn).await?.succeeded {
            let mut xml = Xml::new();
            xml.field("return", "true").field("groupId", &id);
            return Ok(Some(xml));
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn filter_values_match_with_ec2_wildcards() {
        assert!(glob("web-*", "web-blue"));
        assert!(glob("web-?", "web-1"));
        assert!(!glob("web-?", "web-12"));
        assert!(glob("a\\*b", "a*b"));
        assert!(!glob("a\\*b", "axb"));
        assert!(glob("*", ""));
        assert!(!glob("web", "web-1"));
    }

    #[test]
    fn group_ids_are_sg_and_8_or_17_hex_digits() {
        assert!(well_formed("sg-0123456789abcdef0"));
        assert!(well_formed("sg-12345678"));
        assert!(!well_formed("sg-web"));
        assert!(!well_formed("web"));
    }
}
