"""Issue 2's acceptance session, driven with the official AWS CLI as a subprocess against a
`berth server` on a fresh data dir."""

import json

from harness import ACCOUNT, REGION, Berth

WEB_CONTAINERS = '[{"name":"web","image":"busybox","memory":64,"essential":true}]'
TD_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition"
CLUSTER_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster"


def test_the_issue_cli_session_behaves_as_on_ecs(berth: Berth):
    created = berth.cli("create-cluster", "--cluster-name", "demo").json["cluster"]
    assert created["clusterName"] == "demo"
    assert created["clusterArn"] == f"{CLUSTER_ARN}/demo"
    assert created["status"] == "ACTIVE"

    revisions = []
    for _ in range(2):
        out = berth.cli(
            "register-task-definition", "--family", "web", "--container-definitions", WEB_CONTAINERS
        ).json["taskDefinition"]
        assert out["family"] == "web"
        assert out["status"] == "ACTIVE"
        assert out["taskDefinitionArn"] == f"{TD_ARN}/web:{out['revision']}"
        container = out["containerDefinitions"][0]
        assert (container["name"], container["image"], container["memory"], container["essential"]) == (
            "web",
            "busybox",
            64,
            True,
        )
        revisions.append(out["revision"])
    assert revisions == [1, 2]

    described = berth.cli("describe-task-definition", "--task-definition", "web").json["taskDefinition"]
    assert described["revision"] == 2
    assert described["taskDefinitionArn"] == f"{TD_ARN}/web:2"

    deregistered = berth.cli("deregister-task-definition", "--task-definition", "web:1").json["taskDefinition"]
    assert deregistered["revision"] == 1
    assert deregistered["status"] == "INACTIVE"

    listed = berth.cli("list-task-definitions", "--family-prefix", "web", "--status", "ACTIVE").json
    assert listed["taskDefinitionArns"] == [f"{TD_ARN}/web:2"]

    described = berth.cli("describe-clusters", "--clusters", "demo", "nope").json
    assert [c["clusterName"] for c in described["clusters"]] == ["demo"]
    assert described["failures"] == [{"arn": f"{CLUSTER_ARN}/nope", "reason": "MISSING"}]


def test_cli_pagination_of_120_families_with_max_items_50_returns_each_exactly_once(berth: Berth):
    families = [f"pg{i:03d}" for i in range(120)]
    for family in families:
        berth.ecs.register_task_definition(
            family=family, containerDefinitions=json.loads(WEB_CONTAINERS)
        )
    for extra in ([], ["--page-size", "7"]):
        seen: list[str] = []
        token = None
        pages = 0
        while True:
            args = ["list-task-definition-families", "--family-prefix", "pg", "--max-items", "50", *extra]
            if token:
                args += ["--starting-token", token]
            out = berth.cli(*args).json
            pages += 1
            assert len(out["families"]) <= 50
            seen.extend(out["families"])
            token = out.get("NextToken")
            if not token:
                break
            assert pages < 10, "the CLI kept paging past 120 families"
        assert pages == 3, f"expected 50 + 50 + 20 families over 3 CLI pages, got {pages} pages"
        assert sorted(seen) == families, f"with {extra}: {len(seen)} seen, {len(set(seen))} distinct"
        assert len(seen) == len(set(seen)) == 120


def test_cli_reports_an_unknown_cluster_with_its_ecs_error_code(berth: Berth):
    result = berth.cli("delete-cluster", "--cluster", "no-such-cluster", check=False)
    assert result.returncode != 0
    assert "ClusterNotFoundException" in result.stderr, str(result)
