"""EC2 security groups on Berth's endpoint, from boto3's `ec2` client and the AWS CLI v2:
create (with tags), describe by id, name and filter (and paged), ingress rules from a CIDR and
from another group for tcp, udp, icmp and every protocol, duplicate rules, revoke (known and
unknown rules), delete refused while another group names the group, errors in EC2's own codes;
and every answer recorded here walked against botocore's EC2 model (protocol `ec2`)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import xml_conformance
from harness import RECORDER, Berth, boto3_client

ACCOUNT = "000000000000"
ARN_PREFIX = f"arn:aws:ec2:us-east-1:{ACCOUNT}:security-group/"
AWS_CLI_V2 = "/usr/bin/aws"
EGRESS_ALL = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [], "PrefixListIds": [], "UserIdGroupPairs": []}]


@pytest.fixture(scope="module")
def ec2(berth: Berth):
    """EC2 through the recording proxy."""
    return boto3_client(berth.endpoint, berth.credentials, service="ec2")


@pytest.fixture(scope="module")
def unchecked(berth: Berth):
    """An EC2 client that sends what botocore would refuse itself (a missing GroupName)."""
    return boto3_client(berth.endpoint, berth.credentials, service="ec2", parameter_validation=False)


def code(call, **kwargs) -> str:
    """The EC2 error code `call(**kwargs)` is refused with."""
    with pytest.raises(ClientError) as refused:
        call(**kwargs)
    return refused.value.response["Error"]["Code"]


def group(ec2, group_id: str) -> dict:
    return ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]


def make(ec2, unique, base: str, **kwargs) -> str:
    return ec2.create_security_group(GroupName=unique(base), Description=f"{base} tasks", **kwargs)["GroupId"]


def tcp(port_from: int, port_to: int, cidrs=(), groups=()) -> dict:
    return {
        "IpProtocol": "tcp",
        "FromPort": port_from,
        "ToPort": port_to,
        "IpRanges": [{"CidrIp": c} for c in cidrs],
        "UserIdGroupPairs": [{"GroupId": g} for g in groups],
    }


def test_a_group_is_created_with_tags_and_described_by_id_name_and_filter(ec2, unique):
    name = unique("web")
    made = ec2.create_security_group(
        GroupName=name,
        Description="web servers",
        VpcId="vpc-0abc",
        TagSpecifications=[{"ResourceType": "security-group", "Tags": [{"Key": "team", "Value": "blue"}]}],
    )
    group_id = made["GroupId"]
    assert group_id.startswith("sg-") and len(group_id) == 20 and group_id[3:] == group_id[3:].lower()
    assert made["SecurityGroupArn"] == ARN_PREFIX + group_id
    assert made["Tags"] == [{"Key": "team", "Value": "blue"}]

    described = group(ec2, group_id)
    assert described == {
        "OwnerId": ACCOUNT,
        "GroupId": group_id,
        "GroupName": name,
        "Description": "web servers",
        "VpcId": "vpc-0abc",
        "IpPermissions": [],
        "IpPermissionsEgress": EGRESS_ALL,
        "Tags": [{"Key": "team", "Value": "blue"}],
        "SecurityGroupArn": ARN_PREFIX + group_id,
    }
    assert ec2.describe_security_groups(GroupNames=[name])["SecurityGroups"][0]["GroupId"] == group_id
    by_filter = ec2.describe_security_groups(
        Filters=[{"Name": "tag:team", "Values": ["blue"]}, {"Name": "group-name", "Values": [name, "other"]}]
    )["SecurityGroups"]
    assert [g["GroupId"] for g in by_filter] == [group_id]
    by_vpc = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": ["vpc-0abc"]}])["SecurityGroups"]
    assert group_id in [g["GroupId"] for g in by_vpc]
    assert ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": ["sg-nothing*"]}])["SecurityGroups"] == []

    assert code(ec2.create_security_group, GroupName=name, Description="again", VpcId="vpc-0abc") == "InvalidGroup.Duplicate"
    # The same name in another VPC is another group.
    other = ec2.create_security_group(GroupName=name, Description="d", VpcId="vpc-0def")["GroupId"]
    assert other != group_id


def test_describe_pages_with_max_results_and_next_token(ec2, unique):
    made = {make(ec2, unique, f"page{i}", TagSpecifications=[{"ResourceType": "security-group", "Tags": [{"Key": "pager", "Value": unique("p")}]}]) for i in range(6)}
    pager = [{"Name": "tag:pager", "Values": [unique("p")]}]
    first = ec2.describe_security_groups(Filters=pager, MaxResults=5)
    assert len(first["SecurityGroups"]) == 5 and first.get("NextToken")
    rest = ec2.describe_security_groups(Filters=pager, MaxResults=5, NextToken=first["NextToken"])
    assert "NextToken" not in rest
    assert {g["GroupId"] for g in first["SecurityGroups"] + rest["SecurityGroups"]} == made
    paged = ec2.get_paginator("describe_security_groups").paginate(Filters=pager, PaginationConfig={"PageSize": 5})
    assert {g["GroupId"] for page in paged for g in page["SecurityGroups"]} == made


def test_ingress_from_cidrs_and_groups_for_every_protocol_is_shown_as_ec2_groups_it(ec2, unique):
    web = make(ec2, unique, "web")
    lb = make(ec2, unique, "lb")
    answer = ec2.authorize_security_group_ingress(
        GroupId=web,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 8080,
                "ToPort": 8090,
                "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "office"}, {"CidrIp": "192.168.1.0/24"}],
                "UserIdGroupPairs": [{"GroupId": lb, "Description": "the load balancer"}],
            },
            {"IpProtocol": "17", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
            {"IpProtocol": "icmp", "FromPort": 8, "ToPort": -1, "IpRanges": [{"CidrIp": "10.1.0.0/16"}]},
            {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": web}]},
        ],
    )
    assert answer["Return"] is True
    rules = answer["SecurityGroupRules"]
    assert len(rules) == 6
    assert all(r["SecurityGroupRuleId"].startswith("sgr-") and r["GroupId"] == web and r["IsEgress"] is False for r in rules)
    assert [r.get("CidrIpv4") for r in rules[:2]] == ["10.0.0.0/8", "192.168.1.0/24"]
    assert rules[2]["ReferencedGroupInfo"] == {"GroupId": lb, "UserId": ACCOUNT}
    assert (rules[3]["IpProtocol"], rules[3]["FromPort"], rules[3]["ToPort"]) == ("udp", 53, 53)

    permissions = group(ec2, web)["IpPermissions"]
    assert permissions == [
        {
            "IpProtocol": "tcp",
            "FromPort": 8080,
            "ToPort": 8090,
            "UserIdGroupPairs": [{"Description": "the load balancer", "UserId": ACCOUNT, "GroupId": lb}],
            "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "office"}, {"CidrIp": "192.168.1.0/24"}],
            "Ipv6Ranges": [],
            "PrefixListIds": [],
        },
        {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "UserIdGroupPairs": [], "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [], "PrefixListIds": []},
        {"IpProtocol": "icmp", "FromPort": 8, "ToPort": -1, "UserIdGroupPairs": [], "IpRanges": [{"CidrIp": "10.1.0.0/16"}], "Ipv6Ranges": [], "PrefixListIds": []},
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"UserId": ACCOUNT, "GroupId": web}], "IpRanges": [], "Ipv6Ranges": [], "PrefixListIds": []},
    ]
    found = ec2.describe_security_groups(Filters=[{"Name": "ip-permission.group-id", "Values": [lb]}])["SecurityGroups"]
    assert [g["GroupId"] for g in found] == [web]

    # The old flat form.
    ec2.authorize_security_group_ingress(GroupId=web, IpProtocol="tcp", FromPort=22, ToPort=22, CidrIp="172.16.0.0/12")
    assert group(ec2, web)["IpPermissions"][-1]["IpRanges"] == [{"CidrIp": "172.16.0.0/12"}]


def test_duplicate_and_bad_rules_are_refused_and_nothing_of_them_is_kept(ec2, unchecked, unique):
    web = make(ec2, unique, "web")
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[tcp(80, 80, cidrs=["10.0.0.0/8"])])
    before = group(ec2, web)
    unknown = "sg-0123456789abcdef0"
    refusals = [
        ("InvalidPermission.Duplicate", [tcp(80, 80, cidrs=["10.9.0.0/16", "10.0.0.0/8"])]),
        ("InvalidGroup.NotFound", [tcp(80, 81, cidrs=["10.9.0.0/16"], groups=[unknown])]),
        ("InvalidParameterValue", [tcp(90, 80, cidrs=["10.9.0.0/16"])]),
        ("InvalidParameterValue", [tcp(0, 70000, cidrs=["10.9.0.0/16"])]),
        ("InvalidParameterValue", [tcp(80, 80, cidrs=["10.9.0.1/16"])]),
        ("InvalidParameterValue", [tcp(80, 80, cidrs=["not-a-cidr"])]),
        ("InvalidParameterValue", [{"IpProtocol": "gre", "IpRanges": [{"CidrIp": "10.9.0.0/16"}]}]),
        ("InvalidParameterValue", [{"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}]),
    ]
    for expected, permissions in refusals:
        assert code(ec2.authorize_security_group_ingress, GroupId=web, IpPermissions=permissions) == expected, permissions
    assert group(ec2, web) == before
    assert code(ec2.authorize_security_group_ingress, GroupId=unknown, IpPermissions=[tcp(1, 1, cidrs=["10.0.0.0/8"])]) == "InvalidGroup.NotFound"
    assert code(ec2.authorize_security_group_ingress, GroupId="web", IpPermissions=[tcp(1, 1, cidrs=["10.0.0.0/8"])]) == "InvalidGroupId.Malformed"
    assert code(ec2.authorize_security_group_ingress, GroupId=web, IpPermissions=[tcp(1, 1, cidrs=["10.0.0.0/8"])], DryRun=True) == "DryRunOperation"
    assert code(ec2.describe_security_groups, GroupIds=[unknown]) == "InvalidGroup.NotFound"
    assert code(ec2.describe_security_groups, Filters=[{"Name": "colour", "Values": ["red"]}]) == "InvalidParameterValue"
    assert code(unchecked.create_security_group, Description="no name") == "MissingParameter"
    assert code(ec2.create_security_group, GroupName="sg-looks-like-an-id", Description="d") == "InvalidParameterValue"
    assert code(ec2.create_security_group, GroupName="x" * 256, Description="d") == "InvalidParameterValue"
    assert code(ec2.create_security_group, GroupName=unique("long"), Description="d" * 256) == "InvalidParameterValue"
    assert ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [unique("long"), "x" * 256]}])["SecurityGroups"] == []


def test_revoke_removes_known_rules_and_answers_unknown_ones(ec2, unique):
    web = make(ec2, unique, "web")
    lb = make(ec2, unique, "lb")
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[tcp(443, 443, cidrs=["10.0.0.0/8"], groups=[lb]), tcp(80, 80, cidrs=["10.0.0.0/8"])])
    revoked = ec2.revoke_security_group_ingress(GroupId=web, IpPermissions=[tcp(443, 443, cidrs=["10.0.0.0/8", "192.168.0.0/16"], groups=[lb])])
    assert revoked["Return"] is True
    assert revoked["UnknownIpPermissions"] == [
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": [], "IpRanges": [{"CidrIp": "192.168.0.0/16"}], "Ipv6Ranges": [], "PrefixListIds": []}
    ]
    assert sorted(r.get("CidrIpv4") or r.get("ReferencedGroupId") for r in revoked["RevokedSecurityGroupRules"]) == sorted(["10.0.0.0/8", lb])
    assert [p["FromPort"] for p in group(ec2, web)["IpPermissions"]] == [80]
    nothing = ec2.revoke_security_group_ingress(GroupId=web, IpPermissions=[{"IpProtocol": "udp", "FromPort": 1, "ToPort": 2, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
    assert nothing["Return"] is True and len(nothing["UnknownIpPermissions"]) == 1
    rule = ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[{"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])["SecurityGroupRules"][0]
    ec2.revoke_security_group_ingress(GroupId=web, SecurityGroupRuleIds=[rule["SecurityGroupRuleId"]])
    assert [p["IpProtocol"] for p in group(ec2, web)["IpPermissions"]] == ["tcp"]


def test_a_group_in_use_by_another_cannot_be_deleted_until_its_rule_goes(ec2, unique):
    web = make(ec2, unique, "web")
    lb = make(ec2, unique, "lb")
    permission = {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "UserIdGroupPairs": [{"GroupId": lb}]}
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[permission])
    assert code(ec2.delete_security_group, GroupId=lb) == "DependencyViolation"
    assert group(ec2, lb)["GroupId"] == lb
    ec2.revoke_security_group_ingress(GroupId=web, IpPermissions=[permission])
    deleted = ec2.delete_security_group(GroupId=lb)
    assert deleted["Return"] is True and deleted["GroupId"] == lb
    assert code(ec2.describe_security_groups, GroupIds=[lb]) == "InvalidGroup.NotFound"
    assert code(ec2.delete_security_group, GroupId=lb) == "InvalidGroup.NotFound"
    ec2.delete_security_group(GroupName=ec2.describe_security_groups(GroupIds=[web])["SecurityGroups"][0]["GroupName"])
    assert code(ec2.describe_security_groups, GroupIds=[web]) == "InvalidGroup.NotFound"


def test_tags_are_added_and_removed(ec2, unique):
    web = make(ec2, unique, "web")
    ec2.create_tags(Resources=[web], Tags=[{"Key": "env", "Value": "dev"}, {"Key": "team", "Value": "red"}])
    ec2.delete_tags(Resources=[web], Tags=[{"Key": "team"}])
    assert group(ec2, web)["Tags"] == [{"Key": "env", "Value": "dev"}]
    assert code(ec2.create_tags, Resources=["sg-0123456789abcdef0"], Tags=[{"Key": "a", "Value": "b"}]) == "InvalidGroup.NotFound"


def aws_v2(berth: Berth, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`aws <args>` of the AWS CLI v2 against the server (through the recording proxy), with
    the server's keys in a shared-credentials file of its own."""
    credentials = berth.credentials.write(tmp_path / "credentials")
    cmd = [AWS_CLI_V2, *args, "--endpoint-url", berth.endpoint, "--region", "us-east-1", "--output", "json"]
    return subprocess.run(cmd, capture_output=True, text=True, env=credentials.env(), timeout=120)


def test_the_aws_cli_v2_creates_authorizes_describes_and_deletes(berth, unique, tmp_path):
    name = unique("cli")
    made = aws_v2(berth, tmp_path, "ec2", "create-security-group", "--group-name", name, "--description", "from the CLI",
                  "--tag-specifications", "ResourceType=security-group,Tags=[{Key=via,Value=cli}]")
    assert made.returncode == 0, made.stderr
    group_id = json.loads(made.stdout)["GroupId"]
    allowed = aws_v2(berth, tmp_path, "ec2", "authorize-security-group-ingress", "--group-id", group_id,
                     "--protocol", "tcp", "--port", "80-90", "--cidr", "10.0.0.0/8")
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)["Return"] is True
    again = aws_v2(berth, tmp_path, "ec2", "authorize-security-group-ingress", "--group-id", group_id,
                   "--protocol", "tcp", "--port", "80-90", "--cidr", "10.0.0.0/8")
    assert again.returncode != 0 and "(InvalidPermission.Duplicate)" in again.stderr, again.stderr
    described = aws_v2(berth, tmp_path, "ec2", "describe-security-groups", "--group-names", name)
    assert described.returncode == 0, described.stderr
    shown = json.loads(described.stdout)["SecurityGroups"][0]
    assert shown["IpPermissions"][0]["FromPort"] == 80 and shown["IpPermissions"][0]["ToPort"] == 90
    assert shown["Tags"] == [{"Key": "via", "Value": "cli"}]
    bad = aws_v2(berth, tmp_path, "ec2", "authorize-security-group-ingress", "--group-id", group_id,
                 "--protocol", "udp", "--port", "53", "--cidr", "10.0.0.300/8")
    assert bad.returncode != 0 and "(InvalidParameterValue)" in bad.stderr, bad.stderr
    missing = aws_v2(berth, tmp_path, "ec2", "delete-security-group", "--group-id", "sg-0123456789abcdef0")
    assert missing.returncode != 0 and "(InvalidGroup.NotFound)" in missing.stderr, missing.stderr
    deleted = aws_v2(berth, tmp_path, "ec2", "delete-security-group", "--group-id", group_id)
    assert deleted.returncode == 0, deleted.stderr


def test_every_ec2_answer_recorded_here_matches_the_botocore_model():
    """The answers of this module's calls (successes and errors), walked against botocore's
    EC2 model as the end-of-session conformance test walks the other query services'."""
    exchanges = [e for e in RECORDER.snapshot() if e.signing_service == "ec2"]
    checked, violations = xml_conformance.check_exchanges(exchanges)
    assert checked > 0 and checked == len(exchanges), (checked, len(exchanges))
    assert any(e.status >= 400 for e in exchanges) and any(e.status == 200 for e in exchanges)
    print(f"checked {checked} EC2 answers")
    assert not violations, "\n".join(f"{v}" for _, v in violations)


def test_the_ec2_walker_finds_wrapped_results_unknown_members_and_query_errors():
    def answer(inner: str) -> bytes:
        return (
            '<DescribeSecurityGroupsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId>'
            f"{inner}</DescribeSecurityGroupsResponse>"
        ).encode()

    good = "<securityGroupInfo><item><groupId>sg-1</groupId><ipPermissions><item><fromPort>80</fromPort></item></ipPermissions></item></securityGroupInfo>"
    assert xml_conformance.check_answer("ec2", "DescribeSecurityGroups", 200, answer(good)) == []
    wrapped = f"<DescribeSecurityGroupsResult>{good}</DescribeSecurityGroupsResult>"
    assert xml_conformance.check_answer("ec2", "DescribeSecurityGroups", 200, answer(wrapped))
    bad = "<securityGroupInfo><member><groupId>sg-1</groupId></member><item><fromPort>x</fromPort></item></securityGroupInfo>"
    found = [v.where for v in xml_conformance.check_answer("ec2", "DescribeSecurityGroups", 200, answer(bad))]
    assert found == ["DescribeSecurityGroups(output).securityGroupInfo[0]", "DescribeSecurityGroups(output).securityGroupInfo[1].fromPort"], found
    query_error = b"<ErrorResponse><Error><Code>X</Code><Message>m</Message></Error><RequestId>r</RequestId></ErrorResponse>"
    assert xml_conformance.check_answer("ec2", "DescribeSecurityGroups", 400, query_error)
    ec2_error = b"<Response><Errors><Error><Code>X</Code><Message>m</Message></Error></Errors><RequestID>r</RequestID></Response>"
    assert xml_conformance.check_answer("ec2", "DescribeSecurityGroups", 400, ec2_error) == []
