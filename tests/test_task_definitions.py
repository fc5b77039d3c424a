"""Task definitions through boto3: RegisterTaskDefinition, DescribeTaskDefinition,
ListTaskDefinitions, ListTaskDefinitionFamilies, DeregisterTaskDefinition and
DeleteTaskDefinitions, with ECS's semantics and error codes."""

import datetime

import pytest

from helpers import WEB, all_pages, assert_subset, expect_error, task_definition_arn

INVALID = ("ClientException", "InvalidParameterException")

RICH_CONTAINER = {
    "name": "app",
    "image": "registry.local/app:1.2.3",
    "cpu": 256,
    "memory": 512,
    "memoryReservation": 256,
    "essential": True,
    "portMappings": [
        {"containerPort": 8080, "hostPort": 0, "protocol": "tcp"},
        {"containerPort": 5353, "hostPort": 5353, "protocol": "udp"},
    ],
    "environment": [{"name": "MODE", "value": "test"}, {"name": "LEVEL", "value": "debug"}],
    "command": ["serve", "--port", "8080"],
    "entryPoint": ["/bin/app"],
    "workingDirectory": "/srv",
    "user": "1000:1000",
    "hostname": "app-host",
    "privileged": False,
    "readonlyRootFilesystem": True,
    "disableNetworking": False,
    "interactive": False,
    "pseudoTerminal": False,
    "dnsServers": ["10.0.0.2"],
    "dnsSearchDomains": ["svc.local"],
    "extraHosts": [{"hostname": "db", "ipAddress": "10.0.0.5"}],
    "dockerLabels": {"com.example.team": "platform", "tier": "web"},
    "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}],
    "mountPoints": [{"sourceVolume": "data", "containerPath": "/data", "readOnly": False}],
    "healthCheck": {
        "command": ["CMD-SHELL", "wget -q -O- http://localhost:8080/health || exit 1"],
        "interval": 10,
        "timeout": 3,
        "retries": 2,
        "startPeriod": 5,
    },
    "dependsOn": [{"containerName": "sidecar", "condition": "START"}],
    "startTimeout": 60,
    "stopTimeout": 20,
    "linuxParameters": {"initProcessEnabled": True, "capabilities": {"add": ["NET_ADMIN"], "drop": ["MKNOD"]}},
    "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "10m"}},
    "systemControls": [{"namespace": "net.core.somaxconn", "value": "1024"}],
    "secrets": [{"name": "TOKEN", "valueFrom": "arn:aws:ssm:us-east-1:000000000000:parameter/token"}],
}
SIDECAR = {"name": "sidecar", "image": "busybox", "memoryReservation": 32, "essential": False}


def register(ecs, family, containers=None, **extra):
    return ecs.register_task_definition(family=family, containerDefinitions=containers or WEB, **extra)["taskDefinition"]


def test_register_returns_revision_1_with_the_ecs_shape(ecs, unique):
    family = unique("first")
    td = register(ecs, family)
    assert td["family"] == family
    assert td["revision"] == 1
    assert td["taskDefinitionArn"] == task_definition_arn(family, 1)
    assert td["status"] == "ACTIVE"
    assert isinstance(td["registeredAt"], datetime.datetime)
    assert "EC2" in td["compatibilities"]
    assert isinstance(td.get("requiresAttributes", []), list)
    assert_subset(WEB, td["containerDefinitions"])


def test_revisions_count_up_per_family_independently(ecs, unique):
    a, b = unique("fam-a"), unique("fam-b")
    assert [register(ecs, a)["revision"] for _ in range(3)] == [1, 2, 3]
    assert [register(ecs, b)["revision"] for _ in range(2)] == [1, 2]
    assert register(ecs, a)["revision"] == 4


def test_a_full_container_definition_is_stored_and_returned(ecs, unique):
    family = unique("rich")
    volumes = [{"name": "data", "host": {"sourcePath": "/var/lib/app"}}]
    # NET_ADMIN and a host bind mount grant root on a host: a cluster must allow them.
    ecs.create_cluster(
        clusterName=unique("rich-hosts"),
        tags=[
            {"key": "berth:allow-capabilities", "value": "NET_ADMIN"},
            {"key": "berth:allow-bind-mounts", "value": "/var/lib/app"},
        ],
    )
    td = register(
        ecs,
        family,
        [RICH_CONTAINER, SIDECAR],
        volumes=volumes,
        executionRoleArn="arn:aws:iam::000000000000:role/exec",
    )
    for got in (td, ecs.describe_task_definition(taskDefinition=f"{family}:1")["taskDefinition"]):
        by_name = {c["name"]: c for c in got["containerDefinitions"]}
        assert_subset(RICH_CONTAINER, by_name["app"])
        assert_subset(SIDECAR, by_name["sidecar"])
        assert_subset(volumes, got["volumes"])


def test_task_level_fields_are_stored_and_returned(ecs, unique):
    family = unique("tasklevel")
    fields = {
        "taskRoleArn": "arn:aws:iam::000000000000:role/app",
        "executionRoleArn": "arn:aws:iam::000000000000:role/exec",
        "networkMode": "bridge",
        "cpu": "512",
        "memory": "1024",
        "pidMode": "task",
        "ipcMode": "task",
        "requiresCompatibilities": ["EC2"],
        "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}],
        "runtimePlatform": {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
    }
    td = register(ecs, family, **fields)
    described = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
    for got in (td, described):
        assert_subset(fields, got)


def test_a_container_without_essential_defaults_to_essential(ecs, unique):
    td = register(ecs, unique("essential"), [{"name": "only", "image": "busybox", "memory": 32}])
    assert td["containerDefinitions"][0]["essential"] is True


def test_requires_attributes_name_the_capabilities_the_definition_uses(ecs, unique):
    container = {**WEB[0], "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g"}}}
    td = register(ecs, unique("caps"), [container], taskRoleArn="arn:aws:iam::000000000000:role/app")
    names = {a["name"] for a in td["requiresAttributes"]}
    assert "com.amazonaws.ecs.capability.logging-driver.awslogs" in names
    assert "com.amazonaws.ecs.capability.task-iam-role" in names


def test_a_fargate_compatible_definition_lists_fargate_among_its_compatibilities(ecs, unique):
    td = register(
        ecs,
        unique("fargate"),
        [{"name": "web", "image": "busybox", "essential": True}],
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
    )
    assert "FARGATE" in td["compatibilities"]
    assert td["requiresCompatibilities"] == ["FARGATE"]


def test_fargate_requires_the_awsvpc_network_mode(ecs, unique):
    expect_error(
        INVALID,
        ecs.register_task_definition,
        family=unique("fargate-bridge"),
        containerDefinitions=WEB,
        requiresCompatibilities=["FARGATE"],
        networkMode="bridge",
        cpu="256",
        memory="512",
    )


def test_describe_picks_the_latest_active_revision_for_a_bare_family(ecs, unique):
    family = unique("latest")
    for _ in range(3):
        register(ecs, family)
    assert ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]["revision"] == 3
    ecs.deregister_task_definition(taskDefinition=f"{family}:3")
    assert ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]["revision"] == 2


def test_describe_accepts_family_revision_and_arn_and_shows_inactive_revisions(ecs, unique):
    family = unique("forms")
    register(ecs, family)
    register(ecs, family)
    ecs.deregister_task_definition(taskDefinition=f"{family}:1")
    by_revision = ecs.describe_task_definition(taskDefinition=f"{family}:1")["taskDefinition"]
    assert by_revision["revision"] == 1 and by_revision["status"] == "INACTIVE"
    by_arn = ecs.describe_task_definition(taskDefinition=task_definition_arn(family, 2))["taskDefinition"]
    assert by_arn["revision"] == 2 and by_arn["status"] == "ACTIVE"


def test_describe_an_unknown_family_or_revision_is_a_client_exception(ecs, unique):
    family = unique("known")
    register(ecs, family)
    expect_error("ClientException", ecs.describe_task_definition, taskDefinition=unique("nothere"))
    expect_error("ClientException", ecs.describe_task_definition, taskDefinition=f"{family}:99")
    expect_error(INVALID, ecs.describe_task_definition, taskDefinition=f"{family}:notanumber")


def test_describe_returns_tags_only_when_asked(ecs, unique):
    family = unique("tagged")
    tags = [{"key": "team", "value": "web"}]
    register(ecs, family, tags=tags)
    with_tags = ecs.describe_task_definition(taskDefinition=family, include=["TAGS"])
    assert with_tags["tags"] == tags
    without = ecs.describe_task_definition(taskDefinition=family)
    assert not without.get("tags")


def test_deregister_makes_a_revision_inactive(ecs, unique):
    family = unique("dereg")
    register(ecs, family)
    out = ecs.deregister_task_definition(taskDefinition=f"{family}:1")["taskDefinition"]
    assert out["status"] == "INACTIVE"
    assert out["taskDefinitionArn"] == task_definition_arn(family, 1)
    assert isinstance(out["deregisteredAt"], datetime.datetime)
    listed = ecs.list_task_definitions(familyPrefix=family, status="INACTIVE")["taskDefinitionArns"]
    assert listed == [task_definition_arn(family, 1)]


def test_deregister_needs_a_revision_and_a_known_definition(ecs, unique):
    family = unique("needsrev")
    register(ecs, family)
    expect_error(INVALID, ecs.deregister_task_definition, taskDefinition=family)
    expect_error(INVALID, ecs.deregister_task_definition, taskDefinition=f"{unique('nope')}:1")
    expect_error(INVALID, ecs.deregister_task_definition, taskDefinition=f"{family}:7")
    assert ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]["status"] == "ACTIVE"


def test_list_task_definitions_filters_by_full_family_name_and_status(ecs, unique):
    family = unique("lt")
    longer = family + "-more"
    register(ecs, family)
    register(ecs, family)
    register(ecs, longer)
    ecs.deregister_task_definition(taskDefinition=f"{family}:1")
    # ECS's familyPrefix of ListTaskDefinitions is the full family name, not a prefix.
    active = ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]
    assert active == [task_definition_arn(family, 2)]
    inactive = ecs.list_task_definitions(familyPrefix=family, status="INACTIVE")["taskDefinitionArns"]
    assert inactive == [task_definition_arn(family, 1)]
    everything = all_pages(ecs.list_task_definitions, "taskDefinitionArns")
    assert task_definition_arn(family, 2) in everything
    assert task_definition_arn(longer, 1) in everything
    assert task_definition_arn(family, 1) not in everything, "the default status is ACTIVE"


def test_list_task_definitions_sorts_by_family_then_revision_both_ways(ecs, unique):
    a, b = unique("sorta"), unique("sortb")
    for family in (b, a, b, a, a):
        register(ecs, family)
    ours = {task_definition_arn(a, r) for r in (1, 2, 3)} | {task_definition_arn(b, r) for r in (1, 2)}
    ascending = [x for x in all_pages(ecs.list_task_definitions, "taskDefinitionArns") if x in ours]
    expected = [task_definition_arn(a, r) for r in (1, 2, 3)] + [task_definition_arn(b, r) for r in (1, 2)]
    assert ascending == expected
    descending = [x for x in all_pages(ecs.list_task_definitions, "taskDefinitionArns", sort="DESC") if x in ours]
    assert descending == list(reversed(expected))


def test_list_task_definitions_pages_with_max_results(ecs, unique):
    family = unique("pages")
    for _ in range(5):
        register(ecs, family)
    first = ecs.list_task_definitions(familyPrefix=family, maxResults=2)
    assert len(first["taskDefinitionArns"]) == 2 and first["nextToken"]
    arns = all_pages(ecs.list_task_definitions, "taskDefinitionArns", familyPrefix=family, maxResults=2)
    assert arns == [task_definition_arn(family, r) for r in range(1, 6)]


def test_list_task_definition_families_filters_by_prefix_and_status(ecs, unique):
    prefix = unique("famlist")
    live, dead = prefix + "-live", prefix + "-dead"
    register(ecs, live)
    register(ecs, live)
    register(ecs, dead)
    ecs.deregister_task_definition(taskDefinition=f"{live}:1")
    ecs.deregister_task_definition(taskDefinition=f"{dead}:1")
    default = all_pages(ecs.list_task_definition_families, "families", familyPrefix=prefix)
    assert default == [dead, live], "by default both ACTIVE and INACTIVE families are listed"
    active = all_pages(ecs.list_task_definition_families, "families", familyPrefix=prefix, status="ACTIVE")
    assert active == [live]
    inactive = all_pages(ecs.list_task_definition_families, "families", familyPrefix=prefix, status="INACTIVE")
    assert inactive == [dead]
    assert all_pages(ecs.list_task_definition_families, "families", familyPrefix=live + "x") == []


def test_list_task_definition_families_pages_with_max_results(ecs, unique):
    prefix = unique("fampg")
    families = [f"{prefix}-{i}" for i in range(5)]
    for family in families:
        register(ecs, family)
    first = ecs.list_task_definition_families(familyPrefix=prefix, maxResults=2)
    assert len(first["families"]) == 2 and first["nextToken"]
    assert all_pages(ecs.list_task_definition_families, "families", familyPrefix=prefix, maxResults=2) == families


def test_list_operations_reject_bad_max_results_and_tokens(ecs):
    for call in (ecs.list_task_definitions, ecs.list_task_definition_families):
        expect_error("InvalidParameterException", call, maxResults=0)
        expect_error("InvalidParameterException", call, maxResults=101)
        expect_error(INVALID, call, nextToken="bogus token")
    expect_error("InvalidParameterException", ecs.list_task_definitions, status="DELETED")
    expect_error("InvalidParameterException", ecs.list_task_definitions, sort="SIDEWAYS")


def test_delete_task_definitions_only_deletes_inactive_revisions(ecs, unique):
    family = unique("del")
    register(ecs, family)
    register(ecs, family)
    ecs.deregister_task_definition(taskDefinition=f"{family}:1")
    out = ecs.delete_task_definitions(taskDefinitions=[f"{family}:1", f"{family}:2"])
    assert [(t["taskDefinitionArn"], t["status"]) for t in out["taskDefinitions"]] == [
        (task_definition_arn(family, 1), "DELETE_IN_PROGRESS")
    ]
    assert [f["arn"] for f in out["failures"]] == [task_definition_arn(family, 2)]
    assert out["failures"][0].get("reason")
    assert ecs.describe_task_definition(taskDefinition=f"{family}:2")["taskDefinition"]["status"] == "ACTIVE"
    assert ecs.list_task_definitions(familyPrefix=family, status="INACTIVE")["taskDefinitionArns"] == []
    try:
        gone = ecs.describe_task_definition(taskDefinition=f"{family}:1")["taskDefinition"]
        assert gone["status"] == "DELETE_IN_PROGRESS"
    except ecs.exceptions.ClientException:
        pass  # ECS may also have finished deleting it
    # Revision numbers are never reused.
    assert register(ecs, family)["revision"] == 3


def test_delete_task_definitions_reports_unknown_ones_as_failures(ecs, unique):
    out = ecs.delete_task_definitions(taskDefinitions=[f"{unique('ghost')}:1"])
    assert out["taskDefinitions"] == []
    assert [f["arn"] for f in out["failures"]] == [task_definition_arn(unique("ghost"), 1)]


def test_delete_task_definitions_takes_at_most_ten(ecs, unique):
    expect_error(INVALID, ecs.delete_task_definitions, taskDefinitions=[f"{unique('many')}:{i}" for i in range(1, 12)])


@pytest.mark.parametrize(
    "case, family, containers",
    [
        ("family with a space", "bad family", WEB),
        ("family with a dot", "bad.family", WEB),
        ("family too long", "f" * 256, WEB),
        ("no containers", "ok", []),
        ("no memory anywhere", "ok", [{"name": "web", "image": "busybox"}]),
        ("reservation above the limit", "ok", [{"name": "web", "image": "busybox", "memory": 64, "memoryReservation": 128}]),
        ("duplicate container names", "ok", WEB + WEB),
        ("no essential container", "ok", [{**WEB[0], "essential": False}]),
        ("container name with a slash", "ok", [{**WEB[0], "name": "we/b"}]),
        ("container without a name", "ok", [{"image": "busybox", "memory": 64}]),
        ("container without an image", "ok", [{"name": "web", "memory": 64}]),
        ("dependency on an unknown container", "ok", [{**WEB[0], "dependsOn": [{"containerName": "nope", "condition": "START"}]}]),
    ],
)
def test_register_rejects_invalid_definitions_and_writes_nothing(ecs, unique, case, family, containers):
    family = family if family != "ok" else unique("invalid")
    expect_error(INVALID, ecs.register_task_definition, family=family, containerDefinitions=containers)
    assert family not in all_pages(ecs.list_task_definition_families, "families")


def test_register_rejects_an_unknown_network_mode_and_reserved_tags(ecs, unique):
    expect_error(INVALID, register, ecs, unique("netmode"), networkMode="wormhole")
    expect_error("InvalidParameterException", register, ecs, unique("awstag"), tags=[{"key": "aws:x", "value": "y"}])
    assert all_pages(ecs.list_task_definition_families, "families", familyPrefix=unique("netmode")) == []
    assert all_pages(ecs.list_task_definition_families, "families", familyPrefix=unique("awstag")) == []
