"""Issue 18's task scale-in protection on real containers: `berth up` on the machine's Docker
daemon, driven with boto3 (signed with the server's own keys).

Expiry is tested for real: the shortest protection ECS allows (expiresInMinutes=1) and a wait
of that minute; nothing fakes the clock. To keep the module short, the removal scenario runs
on a second service while that minute passes."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from harness import BerthUp, wait_until
from test_docker_services import CLUSTER, delete, describe, diagnose, messages, register, running, service_tasks

pytestmark = pytest.mark.waits


def held_event(service: str) -> str:
    return f"(service {service}) was unable to scale in due to (reason 1 tasks under protection)."


def task_of(ecs: Any, arn: str) -> dict:
    return ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"][0]


def protection_of(ecs: Any, arn: str) -> dict:
    out = ecs.get_task_protection(cluster=CLUSTER, tasks=[arn])
    assert out["failures"] == [], out["failures"]
    [protected] = out["protectedTasks"]
    return protected


def test_protection_keeps_tasks_through_scale_in_and_deployments_until_removed_or_expired(
    berth_up: BerthUp, unique
):
    ecs = berth_up.ecs
    family = unique("prot")
    expiring, removed = unique("expiring"), unique("removed")
    register(ecs, family)
    try:
        ecs.create_service(cluster=CLUSTER, serviceName=expiring, taskDefinition=family, desiredCount=1)
        ecs.create_service(cluster=CLUSTER, serviceName=removed, taskDefinition=family, desiredCount=2)
        for name in (expiring, removed):
            ecs.get_waiter("services_stable").wait(
                cluster=CLUSTER, services=[name], WaiterConfig={"Delay": 1, "MaxAttempts": 60}
            )

        # The one-minute protection starts its clock first, then a forced deployment of its
        # service: the new task starts, the protected one stays.
        [old] = [t["taskArn"] for t in running(service_tasks(ecs, CLUSTER, expiring))]
        set_out = ecs.update_task_protection(cluster=CLUSTER, tasks=[old], protectionEnabled=True, expiresInMinutes=1)
        assert set_out["failures"] == []
        [shown] = set_out["protectedTasks"]
        assert shown["taskArn"] == old and shown["protectionEnabled"] is True
        expires_at = shown["expirationDate"].timestamp()
        assert 55 <= expires_at - time.time() <= 61
        assert "protection" not in str(task_of(ecs, old).keys()).lower(), "DescribeTasks does not show protection"
        ecs.update_service(cluster=CLUSTER, service=expiring, forceNewDeployment=True)

        # Meanwhile, scale-in from 2 to 1 with one of two tasks protected (default 2 hours).
        [kept, other] = [t["taskArn"] for t in running(service_tasks(ecs, CLUSTER, removed))]
        ecs.update_task_protection(cluster=CLUSTER, tasks=[kept], protectionEnabled=True)
        assert protection_of(ecs, kept)["protectionEnabled"] is True
        ecs.update_service(cluster=CLUSTER, service=removed, desiredCount=1)
        wait_until(
            lambda: task_of(ecs, other)["lastStatus"] == "STOPPED",
            20,
            "the unprotected task to stop",
            diagnose=lambda: diagnose(berth_up, ecs, CLUSTER, removed),
        )
        assert task_of(ecs, kept)["lastStatus"] == "RUNNING"

        # A forced deployment waits for the protected task, and says so, until it is removed.
        ecs.update_service(cluster=CLUSTER, service=removed, forceNewDeployment=True)

        def replacement_running_and_held() -> bool:
            tasks = running(service_tasks(ecs, CLUSTER, removed))
            fresh = [t for t in tasks if t["taskArn"] != kept]
            return len(fresh) == 1 and held_event(removed) in messages(describe(ecs, CLUSTER, removed))

        wait_until(replacement_running_and_held, 20, "the new task and the held event",
                   diagnose=lambda: diagnose(berth_up, ecs, CLUSTER, removed))
        time.sleep(2)  # a few more controller passes: the protected task is still kept
        assert task_of(ecs, kept)["desiredStatus"] == "RUNNING"
        assert len(describe(ecs, CLUSTER, removed)["deployments"]) == 2
        off = ecs.update_task_protection(cluster=CLUSTER, tasks=[kept], protectionEnabled=False)
        assert off["protectedTasks"][0]["protectionEnabled"] is False
        assert "expirationDate" not in off["protectedTasks"][0]
        wait_until(lambda: task_of(ecs, kept)["lastStatus"] == "STOPPED", 20, "the unprotected old task to stop",
                   diagnose=lambda: diagnose(berth_up, ecs, CLUSTER, removed))
        ecs.get_waiter("services_stable").wait(
            cluster=CLUSTER, services=[removed], WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )

        # Back to the one-minute protection: held until it expires, then stopped on time.
        service = describe(ecs, CLUSTER, expiring)
        assert held_event(expiring) in messages(service)
        assert len(service["deployments"]) == 2
        assert task_of(ecs, old)["desiredStatus"] == "RUNNING"
        assert time.time() < expires_at, "the checks above ran within the minute"
        stopping = wait_until(
            lambda: (t := task_of(ecs, old))["desiredStatus"] == "STOPPED" and t,
            max(expires_at - time.time(), 0) + 10,
            "the old task to stop once its protection expired",
            interval=0.5,
            diagnose=lambda: diagnose(berth_up, ecs, CLUSTER, expiring),
        )
        stopping_at = stopping["stoppingAt"].timestamp()
        why = (stopping.get("stopCode"), stopping.get("stoppedReason"), diagnose(berth_up, ecs, CLUSTER, expiring))
        assert expires_at <= stopping_at <= expires_at + 3, (expires_at, stopping_at, why)
        assert protection_of(ecs, old)["protectionEnabled"] is False
        ecs.get_waiter("services_stable").wait(
            cluster=CLUSTER, services=[expiring], WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
    finally:
        delete(ecs, CLUSTER, expiring)
        delete(ecs, CLUSTER, removed)


def test_bad_protection_requests_get_ecs_errors_and_failures(berth_up: BerthUp, unique):
    ecs = berth_up.ecs
    family, name = unique("prot-bad"), unique("svc")
    register(ecs, family)
    try:
        ecs.create_service(cluster=CLUSTER, serviceName=name, taskDefinition=family, desiredCount=1)
        ecs.get_waiter("services_stable").wait(
            cluster=CLUSTER, services=[name], WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        [task] = [t["taskArn"] for t in running(service_tasks(ecs, CLUSTER, name))]

        def refused(code: str, **kwargs: Any) -> None:
            with pytest.raises(ClientError) as caught:
                ecs.update_task_protection(**{"cluster": CLUSTER, "protectionEnabled": True, **kwargs})
            assert caught.value.response["Error"]["Code"] == code, caught.value.response

        refused("InvalidParameterException", tasks=[task], expiresInMinutes=0)
        refused("InvalidParameterException", tasks=[task], expiresInMinutes=2881)
        refused("InvalidParameterException", tasks=[])
        refused("InvalidParameterException", tasks=[f"{i:032x}" for i in range(11)])
        refused("ClusterNotFoundException", tasks=[task], cluster=unique("nowhere"))
        with pytest.raises(ParamValidationError):
            ecs.update_task_protection(cluster=CLUSTER, tasks=[task])  # protectionEnabled is required
        assert protection_of(ecs, task)["protectionEnabled"] is False, "nothing was written"

        standalone = ecs.run_task(cluster=CLUSTER, taskDefinition=family)["tasks"][0]["taskArn"]
        missing = "0123456789abcdef0123456789abcdef"
        out = ecs.update_task_protection(
            cluster=CLUSTER, tasks=[task, standalone, missing], protectionEnabled=True, expiresInMinutes=2880
        )
        assert [p["taskArn"] for p in out["protectedTasks"]] == [task]
        assert 2879 * 60 < out["protectedTasks"][0]["expirationDate"].timestamp() - time.time() <= 2880 * 60
        reasons = {f["arn"].rsplit("/", 1)[-1]: f["reason"] for f in out["failures"]}
        assert reasons == {standalone.rsplit("/", 1)[-1]: "TASK_NOT_VALID", missing: "MISSING"}
        got = ecs.get_task_protection(cluster=CLUSTER)
        assert task in [p["taskArn"] for p in got["protectedTasks"]]
        ecs.stop_task(cluster=CLUSTER, task=standalone)
    finally:
        delete(ecs, CLUSTER, name)
