//! EC2 security groups through the dispatcher on an in-memory server, as `aws ec2` would
//! drive them: each operation, each error, and that a refused call writes nothing.

use super::security_groups::NAMES;
use crate::app::App;
use crate::auth::Principal;
use crate::dispatch::Ctx;
use crate::error::ApiError;
use berth_core::security_group::{security_group_key, SecurityGroup, SECURITY_GROUPS};
use std::sync::Arc;

/// Runs `action` with `params` as `caller`; the whole XML answer or the error.
async fn call_as(
    app: &Arc<App>,
    caller: Principal,
    action: &str,
    params: &[(&str, &str)],
) -> Result<String, ApiError> {
    let body = crate::test_support::form_body(action, "2016-11-15", params);
    let ctx = Ctx {
        app: app.clone(),
        caller,
    };
    let output = super::dispatch(ctx, body.as_bytes()).await?;
    Ok(super::response(action, output, "test"))
}

async fn call(app: &Arc<App>, action: &str, params: &[(&str, &str)]) -> Result<String, ApiError> {
    let root = crate::auth::root_principal(app).expect("root principal");
    call_as(app, root, action, params).await
}

async fn ok(app: &Arc<App>, action: &str, params: &[(&str, &str)]) -> String {
    match call(app, action, params).await {
        Ok(xml) => xml,
        Err(e) => panic!("{action} failed: {e}"),
    }
}

/// The code of the error `action` must answer.
async fn err(app: &Arc<App>, action: &str, params: &[(&str, &str)]) -> &'static str {
    match call(app, action, params).await {
        Ok(xml) => panic!("{action} should fail, answered {xml}"),
        Err(e) => e.name,
    }
}

use crate::test_support::{xml_text as text, xml_texts as texts};

/// Every stored group, by id.
fn stored(app: &Arc<App>) -> Vec<SecurityGroup> {
    app.list::<SecurityGroup>(SECURITY_GROUPS)
        .expect("list")
        .into_iter()
        .map(|g| g.value)
        .collect()
}

fn group_of(app: &Arc<App>, id: &str) -> SecurityGroup {
    app.get::<SecurityGroup>(&security_group_key(id))
        .expect("get")
        .expect("the group exists")
        .value
}

/// The names of the groups filter `name` with one value `value` finds.
async fn filtered(app: &Arc<App>, name: &str, value: &str) -> Vec<String> {
    let xml = ok(
        app,
        "DescribeSecurityGroups",
        &[("Filter.1.Name", name), ("Filter.1.Value.1", value)],
    )
    .await;
    texts(&xml, "groupName")
}

async fn create(app: &Arc<App>, name: &str) -> String {
    let xml = ok(
        app,
        "CreateSecurityGroup",
        &[("GroupName", name), ("GroupDescription", "a group")],
    )
    .await;
    text(&xml, "groupId")
}

/// Authorizes tcp `from`-`to` from `cidr` into `group`.
async fn allow_cidr(app: &Arc<App>, group: &str, from: &str, to: &str, cidr: &str) -> String {
    ok(
        app,
        "AuthorizeSecurityGroupIngress",
        &[
            ("GroupId", group),
            ("IpPermissions.1.IpProtocol", "tcp"),
            ("IpPermissions.1.FromPort", from),
            ("IpPermissions.1.ToPort", to),
            ("IpPermissions.1.IpRanges.1.CidrIp", cidr),
        ],
    )
    .await
}

#[tokio::test]
async fn a_created_group_has_an_id_an_arn_tags_and_the_default_egress() {
    let app = crate::test_support::app().await;
    let xml = ok(
        &app,
        "CreateSecurityGroup",
        &[
            ("GroupName", "web"),
            ("GroupDescription", "web servers"),
            ("VpcId", "vpc-1"),
            ("TagSpecification.1.ResourceType", "security-group"),
            ("TagSpecification.1.Tag.1.Key", "team"),
            ("TagSpecification.1.Tag.1.Value", "blue"),
        ],
    )
    .await;
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CreateSecurityGroupResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>test</requestId>"), "{xml}");
    let id = text(&xml, "groupId");
    let hex = id.strip_prefix("sg-").expect("sg- id");
    assert!(
        hex.len() == 17
            && hex
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "{id}"
    );
    assert_eq!(
        text(&xml, "securityGroupArn"),
        format!("arn:aws:ec2:us-east-1:000000000000:security-group/{id}")
    );
    assert_eq!(texts(&xml, "key"), ["team"]);

    let described = ok(&app, "DescribeSecurityGroups", &[("GroupId.1", &id)]).await;
    assert_eq!(text(&described, "groupName"), "web");
    assert_eq!(text(&described, "groupDescription"), "web servers");
    assert_eq!(text(&described, "vpcId"), "vpc-1");
    assert_eq!(text(&described, "ownerId"), "000000000000");
    assert_eq!(text(&described, "value"), "blue");
    assert!(
        described.contains("<ipPermissions></ipPermissions>"),
        "{described}"
    );
    let egress = text(&described, "ipPermissionsEgress");
    assert_eq!(text(&egress, "ipProtocol"), "-1");
    assert_eq!(text(&egress, "cidrIp"), "0.0.0.0/0");
    assert_eq!(group_of(&app, &id).tags[0].key, "team");
}

#[tokio::test]
async fn bad_creates_are_refused_with_ec2_codes_and_write_nothing() {
    let app = crate::test_support::app().await;
    create(&app, "web").await;
    let long = "x".repeat(256);
    for (params, code) in [
        (vec![("GroupDescription", "d")], "MissingParameter"),
        (vec![("GroupName", "a")], "MissingParameter"),
        (
            vec![("GroupName", long.as_str()), ("GroupDescription", "d")],
            "InvalidParameterValue",
        ),
        (
            vec![("GroupName", "a"), ("GroupDescription", long.as_str())],
            "InvalidParameterValue",
        ),
        (
            vec![("GroupName", "sg-web"), ("GroupDescription", "d")],
            "InvalidParameterValue",
        ),
        (
            vec![("GroupName", "caf\u{e9}"), ("GroupDescription", "d")],
            "InvalidParameterValue",
        ),
        (
            vec![("GroupName", "web"), ("GroupDescription", "d")],
            "InvalidGroup.Duplicate",
        ),
        (
            vec![
                ("GroupName", "tagged"),
                ("GroupDescription", "d"),
                ("TagSpecification.1.ResourceType", "instance"),
                ("TagSpecification.1.Tag.1.Key", "k"),
            ],
            "InvalidParameterValue",
        ),
        (
            vec![
                ("GroupName", "tagged"),
                ("GroupDescription", "d"),
                ("TagSpecification.1.ResourceType", "security-group"),
                ("TagSpecification.1.Tag.1.Key", "aws:x"),
            ],
            "InvalidParameterValue",
        ),
        (
            vec![
                ("GroupName", "dry"),
                ("GroupDescription", "d"),
                ("DryRun", "true"),
            ],
            "DryRunOperation",
        ),
    ] {
        assert_eq!(
            err(&app, "CreateSecurityGroup", &params).await,
            code,
            "{params:?}"
        );
    }
    assert_eq!(stored(&app).len(), 1, "only the first group");
    // The same name in another VPC is another group.
    let params = [
        ("GroupName", "web"),
        ("GroupDescription", "d"),
        ("VpcId", "vpc-2"),
    ];
    ok(&app, "CreateSecurityGroup", &params).await;
    assert_eq!(
        err(&app, "CreateSecurityGroup", &params).await,
        "InvalidGroup.Duplicate"
    );
    assert_eq!(stored(&app).len(), 2);
}

#[tokio::test]
async fn describe_finds_groups_by_id_name_and_filters_and_pages_them() {
    let app = crate::test_support::app().await;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(create(&app, &format!("app-{i}")).await);
    }
    let tagged = ids[3].clone();
    ok(
        &app,
        "CreateTags",
        &[
            ("ResourceId.1", &tagged),
            ("Tag.1.Key", "env"),
            ("Tag.1.Value", "prod"),
        ],
    )
    .await;
    let by_name = ok(&app, "DescribeSecurityGroups", &[("GroupName.1", "app-2")]).await;
    assert_eq!(texts(&by_name, "groupId"), [ids[2].clone()]);
    assert_eq!(
        filtered(&app, "group-name", "app-[56]").await.len(),
        0,
        "no brackets in EC2 globs"
    );
    assert_eq!(filtered(&app, "group-name", "app-?").await.len(), 7);
    assert_eq!(filtered(&app, "tag:env", "prod").await, ["app-3"]);
    assert_eq!(filtered(&app, "tag-key", "env").await, ["app-3"]);
    assert_eq!(filtered(&app, "group-id", &tagged).await, ["app-3"]);
    assert_eq!(filtered(&app, "vpc-id", "vpc-1").await.len(), 0);

    let first = ok(&app, "DescribeSecurityGroups", &[("MaxResults", "5")]).await;
    assert_eq!(texts(&first, "groupName").len(), 5);
    let token = text(&first, "nextToken");
    let rest = ok(
        &app,
        "DescribeSecurityGroups",
        &[("MaxResults", "5"), ("NextToken", &token)],
    )
    .await;
    assert_eq!(texts(&rest, "groupName").len(), 2);
    assert!(texts(&rest, "nextToken").is_empty());

    for (params, code) in [
        (
            vec![("GroupId.1", "sg-0123456789abcdef0")],
            "InvalidGroup.NotFound",
        ),
        (vec![("GroupId.1", "web")], "InvalidGroupId.Malformed"),
        (vec![("GroupName.1", "nope")], "InvalidGroup.NotFound"),
        (
            vec![("Filter.1.Name", "colour"), ("Filter.1.Value.1", "x")],
            "InvalidParameterValue",
        ),
        (vec![("MaxResults", "4")], "InvalidParameterValue"),
        (
            vec![("MaxResults", "5"), ("GroupName.1", "app-1")],
            "InvalidParameterCombination",
        ),
        (vec![("NextToken", "garbage")], "InvalidPaginationToken"),
    ] {
        assert_eq!(
            err(&app, "DescribeSecurityGroups", &params).await,
            code,
            "{params:?}"
        );
    }
}

#[tokio::test]
async fn one_permission_with_several_sources_is_stored_per_source_and_shown_grouped() {
    let app = crate::test_support::app().await;
    let web = create(&app, "web").await;
    let lb = create(&app, "lb").await;
    let xml = ok(
        &app,
        "AuthorizeSecurityGroupIngress",
        &[
            ("GroupId", &web),
            ("IpPermissions.1.IpProtocol", "6"),
            ("IpPermissions.1.FromPort", "8080"),
            ("IpPermissions.1.ToPort", "8090"),
            ("IpPermissions.1.IpRanges.1.CidrIp", "10.0.0.0/8"),
            ("IpPermissions.1.IpRanges.1.Description", "office"),
            ("IpPermissions.1.IpRanges.2.CidrIp", "192.168.1.0/24"),
            ("IpPermissions.1.Groups.1.GroupId", &lb),
            ("IpPermissions.2.IpProtocol", "udp"),
            ("IpPermissions.2.FromPort", "53"),
            ("IpPermissions.2.ToPort", "53"),
            ("IpPermissions.2.IpRanges.1.CidrIp", "0.0.0.0/0"),
            ("IpPermissions.3.IpProtocol", "icmp"),
            ("IpPermissions.3.FromPort", "8"),
            ("IpPermissions.3.ToPort", "-1"),
            ("IpPermissions.3.IpRanges.1.CidrIp", "10.1.0.0/16"),
            ("IpPermissions.4.IpProtocol", "-1"),
            ("IpPermissions.4.Groups.1.GroupId", &web),
        ],
    )
    .await;
    assert_eq!(text(&xml, "return"), "true");
    let rule_ids = texts(&xml, "securityGroupRuleId");
    assert_eq!(rule_ids.len(), 6, "{xml}");
    assert!(rule_ids
        .iter()
        .all(|id| id.starts_with("sgr-") && id.len() == 21));
    assert_eq!(
        text(&xml, "referencedGroupInfo"),
        format!("<groupId>{lb}</groupId><userId>000000000000</userId>")
    );

    let rules = group_of(&app, &web).ingress;
    assert_eq!(rules.len(), 6);
    assert!(rules
        .iter()
        .all(|r| r.cidr.is_some() != r.source_group.is_some()));
    assert_eq!(rules[0].protocol, "tcp", "numbers are stored as names");
    assert_eq!((rules[4].from_port, rules[4].to_port), (Some(8), Some(-1)));
    assert_eq!((rules[5].from_port, rules[5].to_port), (None, None));

    let described = ok(&app, "DescribeSecurityGroups", &[("GroupId.1", &web)]).await;
    let ingress = text(&described, "ipPermissions");
    assert_eq!(texts(&ingress, "ipProtocol"), ["tcp", "udp", "icmp", "-1"]);
    assert_eq!(
        texts(&ingress, "fromPort"),
        ["8080", "53", "8"],
        "-1 shows no ports"
    );
    assert_eq!(
        texts(&ingress, "cidrIp"),
        ["10.0.0.0/8", "192.168.1.0/24", "0.0.0.0/0", "10.1.0.0/16"]
    );
    assert_eq!(texts(&ingress, "groupId"), [lb.clone(), web.clone()]);
    assert_eq!(texts(&ingress, "description"), ["office"]);
    let found = ok(
        &app,
        "DescribeSecurityGroups",
        &[
            ("Filter.1.Name", "ip-permission.group-id"),
            ("Filter.1.Value.1", &lb),
        ],
    )
    .await;
    assert_eq!(texts(&found, "groupName"), ["web"]);
}

#[tokio::test]
async fn the_old_flat_form_authorizes_and_revokes_one_rule() {
    let app = crate::test_support::app().await;
    let web = create(&app, "web").await;
    create(&app, "lb").await;
    let flat = [
        ("GroupName", "web"),
        ("IpProtocol", "tcp"),
        ("FromPort", "22"),
        ("ToPort", "22"),
        ("CidrIp", "10.0.0.0/8"),
    ];
    ok(&app, "AuthorizeSecurityGroupIngress", &flat).await;
    let by_source = [("GroupId", web.as_str()), ("SourceSecurityGroupName", "lb")];
    ok(&app, "AuthorizeSecurityGroupIngress", &by_source).await;
    let rules = group_of(&app, &web).ingress;
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[1].protocol, "-1");
    ok(&app, "RevokeSecurityGroupIngress", &flat).await;
    ok(&app, "RevokeSecurityGroupIngress", &by_source).await;
    assert!(group_of(&app, &web).ingress.is_empty());
}

#[tokio::test]
async fn bad_permissions_are_refused_and_nothing_of_the_request_is_written() {
    let app = crate::test_support::app().await;
    let web = create(&app, "web").await;
    allow_cidr(&app, &web, "80", "80", "10.0.0.0/8").await;
    // `P.` is the first IpPermission, which also allows 172.16.0.0/12 unless `-` leads the case.
    let unknown = "sg-0123456789abcdef0";
    let cases = [
        (
            "P.IpProtocol=tcp&P.FromPort=90&P.ToPort=80",
            "InvalidParameterValue",
        ),
        ("P.IpProtocol=tcp&P.FromPort=90", "InvalidParameterValue"),
        (
            "P.IpProtocol=udp&P.FromPort=0&P.ToPort=70000",
            "InvalidParameterValue",
        ),
        ("P.IpProtocol=gre", "InvalidParameterValue"),
        ("P.IpProtocol=47", "InvalidParameterValue"),
        (
            "P.IpProtocol=-1&P.IpRanges.2.CidrIp=10.0.0.1/8",
            "InvalidParameterValue",
        ),
        (
            "P.IpProtocol=-1&P.IpRanges.2.CidrIp=10.0.0.0",
            "InvalidParameterValue",
        ),
        (
            "P.IpProtocol=-1&P.Ipv6Ranges.1.CidrIpv6=::/0",
            "InvalidParameterValue",
        ),
        // A source group that does not exist, beside a good block.
        (
            &format!("P.IpProtocol=-1&P.Groups.1.GroupId={unknown}"),
            "InvalidGroup.NotFound",
        ),
        // The rule already there, beside a new one; the same rule twice in one request.
        (
            "P.IpProtocol=tcp&P.FromPort=80&P.ToPort=80&P.IpRanges.2.CidrIp=10.0.0.0/8",
            "InvalidPermission.Duplicate",
        ),
        (
            "P.IpProtocol=-1&P.IpRanges.2.CidrIp=172.16.0.0/12",
            "InvalidPermission.Duplicate",
        ),
        ("P.IpProtocol=-1&DryRun=true", "DryRunOperation"),
        ("-", "MissingParameter"),
        (
            "-P.IpProtocol=tcp&P.FromPort=1&P.ToPort=2",
            "MissingParameter",
        ),
        (
            "-IpProtocol=-1&CidrIp=10.0.0.0/8&GroupId=",
            "MissingParameter",
        ),
        (
            &format!("-IpProtocol=-1&CidrIp=10.0.0.0/8&GroupId={unknown}"),
            "InvalidGroup.NotFound",
        ),
        (
            "-IpProtocol=-1&P.IpProtocol=-1",
            "InvalidParameterCombination",
        ),
    ];
    let before = group_of(&app, &web);
    for (case, code) in cases {
        let (body, extra) = match case.strip_prefix('-') {
            Some(bare) => (bare.to_string(), ""),
            None => (case.to_string(), "&P.IpRanges.1.CidrIp=172.16.0.0/12"),
        };
        let body = format!("GroupId={web}&{body}{extra}").replace("P.", "IpPermissions.1.");
        let mut params: Vec<(&str, &str)> = Vec::new();
        for pair in body.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            // A later GroupId (the case's own) replaces the group's.
            params.retain(|(key, _)| *key != k);
            params.push((k, v));
        }
        let refused = err(&app, "AuthorizeSecurityGroupIngress", &params).await;
        assert_eq!(refused, code, "{case}");
        assert_eq!(group_of(&app, &web), before, "nothing written by {case}");
    }
}

#[tokio::test]
async fn revoke_removes_known_rules_and_answers_the_unknown_ones() {
    let app = crate::test_support::app().await;
    let web = create(&app, "web").await;
    allow_cidr(&app, &web, "80", "80", "10.0.0.0/8").await;
    let added = allow_cidr(&app, &web, "443", "443", "10.0.0.0/8").await;
    let xml = ok(
        &app,
        "RevokeSecurityGroupIngress",
        &[
            ("GroupId", &web),
            ("IpPermissions.1.IpProtocol", "tcp"),
            ("IpPermissions.1.FromPort", "80"),
            ("IpPermissions.1.ToPort", "80"),
            ("IpPermissions.1.IpRanges.1.CidrIp", "10.0.0.0/8"),
            ("IpPermissions.1.IpRanges.2.CidrIp", "192.168.0.0/16"),
            ("IpPermissions.2.IpProtocol", "-1"),
            ("IpPermissions.2.Groups.1.GroupId", "sg-0123456789abcdef0"),
        ],
    )
    .await;
    assert_eq!(text(&xml, "return"), "true");
    let unknown = text(&xml, "unknownIpPermissionSet");
    assert_eq!(texts(&unknown, "cidrIp"), ["192.168.0.0/16"]);
    assert_eq!(texts(&unknown, "groupId"), ["sg-0123456789abcdef0"]);
    let revoked = text(&xml, "revokedSecurityGroupRuleSet");
    assert_eq!(texts(&revoked, "cidrIpv4"), ["10.0.0.0/8"]);
    assert_eq!(texts(&revoked, "fromPort"), ["80"]);
    assert_eq!(group_of(&app, &web).ingress.len(), 1);

    // By the rule id AuthorizeSecurityGroupIngress answered.
    let rule = text(&added, "securityGroupRuleId");
    assert_eq!(
        err(
            &app,
            "RevokeSecurityGroupIngress",
            &[
                ("GroupId", &web),
                ("SecurityGroupRuleId.1", "sgr-00000000000000000")
            ]
        )
        .await,
        "InvalidSecurityGroupRuleId.NotFound"
    );
    assert_eq!(group_of(&app, &web).ingress.len(), 1);
    ok(
        &app,
        "RevokeSecurityGroupIngress",
        &[("GroupId", &web), ("SecurityGroupRuleId.1", &rule)],
    )
    .await;
    assert!(group_of(&app, &web).ingress.is_empty());
    let udp = [("IpProtocol", "udp"), ("FromPort", "1"), ("ToPort", "2")];
    let params = [&udp[..], &[("GroupId", &web), ("CidrIp", "10.0.0.0/8")]].concat();
    let nothing = ok(&app, "RevokeSecurityGroupIngress", &params).await;
    assert!(nothing.contains("<unknownIpPermissionSet>"), "{nothing}");
    assert_eq!(
        err(
            &app,
            "RevokeSecurityGroupIngress",
            &[
                ("GroupId", "sg-0123456789abcdef0"),
                ("IpProtocol", "-1"),
                ("CidrIp", "10.0.0.0/8")
            ]
        )
        .await,
        "InvalidGroup.NotFound"
    );
}

#[tokio::test]
async fn a_group_another_group_names_cannot_be_deleted_until_the_rule_goes() {
    let app = crate::test_support::app().await;
    let web = create(&app, "web").await;
    let lb = create(&app, "lb").await;
    let lb_before = app
        .get::<SecurityGroup>(&security_group_key(&lb))
        .expect("get")
        .expect("lb");
    let source = [
        ("GroupId", web.as_str()),
        ("IpPermissions.1.IpProtocol", "tcp"),
        ("IpPermissions.1.FromPort", "80"),
        ("IpPermissions.1.ToPort", "80"),
        ("IpPermissions.1.Groups.1.GroupId", lb.as_str()),
    ];
    ok(&app, "AuthorizeSecurityGroupIngress", &source).await;
    // The source group was rewritten with the rule, so a delete that read it before fails its guard.
    let lb_after = app
        .get::<SecurityGroup>(&security_group_key(&lb))
        .expect("get")
        .expect("lb");
    assert!(lb_after.mod_revision > lb_before.mod_revision);
    assert_eq!(lb_after.value, lb_before.value);

    assert_eq!(
        err(&app, "DeleteSecurityGroup", &[("GroupId", &lb)]).await,
        "DependencyViolation"
    );
    assert_eq!(
        err(
            &app,
            "DeleteSecurityGroup",
            &[("GroupId", &lb), ("DryRun", "true")]
        )
        .await,
        "DependencyViolation"
    );
    assert_eq!(stored(&app).len(), 2);
    // A group naming itself is no obstacle.
    ok(
        &app,
        "AuthorizeSecurityGroupIngress",
        &[
            ("GroupId", &web),
            ("IpPermissions.1.IpProtocol", "-1"),
            ("IpPermissions.1.Groups.1.GroupId", &web),
        ],
    )
    .await;
    ok(&app, "RevokeSecurityGroupIngress", &source).await;
    let xml = ok(&app, "DeleteSecurityGroup", &[("GroupId", &lb)]).await;
    assert_eq!(
        (text(&xml, "return"), text(&xml, "groupId")),
        ("true".to_string(), lb.clone())
    );
    assert_eq!(
        err(&app, "DeleteSecurityGroup", &[("GroupId", &lb)]).await,
        "InvalidGroup.NotFound"
    );
    assert_eq!(
        err(&app, "DeleteSecurityGroup", &[("GroupName", "nope")]).await,
        "InvalidGroup.NotFound"
    );
    assert_eq!(
        err(&app, "DeleteSecurityGroup", &[]).await,
        "MissingParameter"
    );
    assert_eq!(
        err(
            &app,
            "DeleteSecurityGroup",
            &[("GroupName", "web"), ("DryRun", "true")]
        )
        .await,
        "DryRunOperation"
    );
    ok(&app, "DeleteSecurityGroup", &[("GroupName", "web")]).await;
    assert!(stored(&app).is_empty());
    assert!(
        app.list::<String>(NAMES).expect("names").is_empty(),
        "names are released"
    );
    create(&app, "web").await;
}

#[tokio::test]
async fn tags_are_added_replaced_and_removed_on_groups_only() {
    let app = crate::test_support::app().await;
    let web = create(&app, "web").await;
    let lb = create(&app, "lb").await;
    ok(
        &app,
        "CreateTags",
        &[
            ("ResourceId.1", &web),
            ("ResourceId.2", &lb),
            ("Tag.1.Key", "env"),
            ("Tag.1.Value", "dev"),
            ("Tag.2.Key", "team"),
        ],
    )
    .await;
    ok(
        &app,
        "CreateTags",
        &[
            ("ResourceId.1", &web),
            ("Tag.1.Key", "env"),
            ("Tag.1.Value", "prod"),
        ],
    )
    .await;
    let tags = |id: &str| {
        group_of(&app, id)
            .tags
            .into_iter()
            .map(|t| (t.key, t.value))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        tags(&web),
        [
            ("env".into(), "prod".into()),
            ("team".into(), String::new())
        ]
    );
    // One unknown resource: nothing is tagged.
    let unknown = [
        ("ResourceId.1", lb.as_str()),
        ("ResourceId.2", "sg-0123456789abcdef0"),
        ("Tag.1.Key", "x"),
    ];
    assert_eq!(
        err(&app, "CreateTags", &unknown).await,
        "InvalidGroup.NotFound"
    );
    assert_eq!(
        err(
            &app,
            "CreateTags",
            &[("ResourceId.1", "i-123"), ("Tag.1.Key", "x")]
        )
        .await,
        "InvalidID"
    );
    assert_eq!(
        err(&app, "CreateTags", &[("ResourceId.1", &lb)]).await,
        "MissingParameter"
    );
    assert_eq!(
        err(&app, "CreateTags", &[("Tag.1.Key", "x")]).await,
        "MissingParameter"
    );
    assert_eq!(tags(&lb).len(), 2);
    // A value given must match; no value removes the key.
    ok(
        &app,
        "DeleteTags",
        &[
            ("ResourceId.1", &web),
            ("Tag.1.Key", "env"),
            ("Tag.1.Value", "dev"),
        ],
    )
    .await;
    assert_eq!(tags(&web).len(), 2);
    ok(
        &app,
        "DeleteTags",
        &[("ResourceId.1", &web), ("Tag.1.Key", "env")],
    )
    .await;
    assert_eq!(tags(&web), [("team".into(), String::new())]);
    ok(&app, "DeleteTags", &[("ResourceId.1", &lb)]).await;
    assert!(tags(&lb).is_empty());
}

#[tokio::test]
async fn a_user_without_ec2_permissions_is_refused_and_nothing_is_made() {
    let app = crate::test_support::app().await;
    let user = crate::test_support::user_without_policies();
    let params = [("GroupName", "web"), ("GroupDescription", "d")];
    let e = call_as(&app, user.clone(), "CreateSecurityGroup", &params)
        .await
        .expect_err("denied");
    assert_eq!(e.name, "UnauthorizedOperation");
    assert!(
        e.message.contains("ec2:CreateSecurityGroup"),
        "{}",
        e.message
    );
    let e = call_as(&app, user, "DescribeSecurityGroups", &[])
        .await
        .expect_err("denied");
    assert_eq!(e.name, "UnauthorizedOperation");
    assert!(stored(&app).is_empty());
    assert_eq!(err(&app, "RunInstances", &[]).await, "InvalidAction");
}
