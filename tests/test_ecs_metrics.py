"""Issue 12's ECS metrics on real containers: a server and a real `berth agent` on the
machine's Docker daemon; a service whose task burns a CPU. Its `AWS/ECS` CPUUtilization and
MemoryUtilization (percent of what the task reserves, per service and per cluster, as ECS
computes them) must show in CloudWatch within a minute, read with boto3 (GetMetricData,
GetMetricStatistics, ListMetrics) and the AWS CLI (`aws cloudwatch get-metric-statistics`,
`list-metrics`)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
from typing import Any

import pytest

from fault_helpers import FaultCluster
from harness import REGION, aws_cli, boto3_client, wait_until


@pytest.fixture(scope="module")
def cluster(docker_ready: None, tmp_path_factory: pytest.TempPathFactory):
    running = FaultCluster(tmp_path_factory.mktemp("ecs-metrics"), "metrics", agents=1).start()
    try:
        yield running
    finally:
        running.close()


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def test_a_busy_service_shows_its_cpu_and_memory_utilization_within_a_minute(cluster: FaultCluster, unique):
    ecs = cluster.ecs
    cloudwatch = boto3_client(cluster.server.url, cluster.server.credentials, service="cloudwatch")
    family = unique("burn")
    # CPU units on the container only: shares, not a limit (a task-level cpu would be a hard
    # limit, as on ECS), so the loop takes a whole core.
    ecs.register_task_definition(
        family=family,
        containerDefinitions=[
            {"name": "burn", "image": "busybox", "essential": True, "cpu": 256, "memory": 128,
             "command": ["sh", "-c", "while :; do :; done"]}
        ],
    )
    service = unique("busy")
    ecs.create_service(cluster=cluster.name, serviceName=service, taskDefinition=family, desiredCount=1)
    began = time.monotonic()
    dimensions = [{"Name": "ClusterName", "Value": cluster.name}, {"Name": "ServiceName", "Value": service}]
    start = now() - dt.timedelta(minutes=5)

    def busy() -> list[float] | None:
        out = cloudwatch.get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "cpu",
                    "MetricStat": {
                        "Metric": {"Namespace": "AWS/ECS", "MetricName": "CPUUtilization", "Dimensions": dimensions},
                        "Period": 60,
                        "Stat": "Maximum",
                    },
                }
            ],
            StartTime=start,
            EndTime=now() + dt.timedelta(minutes=1),
        )
        values = out["MetricDataResults"][0]["Values"]
        return values if any(v >= 50 for v in values) else None

    # The task starts, then the agent samples twice (10 s apart) and the server publishes.
    values = wait_until(busy, 90, "the service's CPUUtilization to show the burning task", interval=2, diagnose=cluster.logs)
    elapsed = time.monotonic() - began
    print(f"CreateService -> CPUUtilization >= 50 %: {elapsed:.1f} s")
    # One core over 256 reserved units is 400 %: far above what the task reserves.
    assert max(values) > 100, values

    stats = cloudwatch.get_metric_statistics(
        Namespace="AWS/ECS",
        MetricName="MemoryUtilization",
        Dimensions=dimensions,
        StartTime=start,
        EndTime=now() + dt.timedelta(minutes=1),
        Period=60,
        Statistics=["Average", "Maximum", "SampleCount"],
    )
    assert stats["Datapoints"], stats
    for point in stats["Datapoints"]:
        assert point["Unit"] == "Percent"
        assert 0 < point["Average"] < 100, point
        assert point["SampleCount"] >= 1

    # The cluster's figure: the same task's use over what the instance registered.
    cluster_cpu = cloudwatch.get_metric_statistics(
        Namespace="AWS/ECS",
        MetricName="CPUUtilization",
        Dimensions=[{"Name": "ClusterName", "Value": cluster.name}],
        StartTime=start,
        EndTime=now() + dt.timedelta(minutes=1),
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    assert cluster_cpu and max(p["Maximum"] for p in cluster_cpu) > 5, cluster_cpu

    # The AWS CLI reads the same.
    cmd = [
        *aws_cli(),
        "cloudwatch",
        "get-metric-statistics",
        "--namespace",
        "AWS/ECS",
        "--metric-name",
        "CPUUtilization",
        "--dimensions",
        f"Name=ClusterName,Value={cluster.name}",
        f"Name=ServiceName,Value={service}",
        "--start-time",
        start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "--end-time",
        (now() + dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "--period",
        "60",
        "--statistics",
        "Maximum",
        "--endpoint-url",
        cluster.server.url,
        "--region",
        REGION,
        "--output",
        "json",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=cluster.server.credentials.env(), timeout=120)
    assert done.returncode == 0, done.stderr
    points = json.loads(done.stdout)["Datapoints"]
    assert points and max(p["Maximum"] for p in points) > 100, points

    listed = cloudwatch.list_metrics(Namespace="AWS/ECS", Dimensions=[{"Name": "ServiceName", "Value": service}])
    names = sorted(m["MetricName"] for m in listed["Metrics"])
    assert names == ["CPUUtilization", "MemoryUtilization"], listed

    # Container Insights' figures of the same service: CPU units, MiB and bytes per second.
    insights = cloudwatch.list_metrics(Namespace="ECS/ContainerInsights", Dimensions=[{"Name": "ServiceName", "Value": service}])
    assert sorted(m["MetricName"] for m in insights["Metrics"]) == [
        "CpuUtilized",
        "MemoryUtilized",
        "NetworkRxBytes",
        "NetworkTxBytes",
        "StorageReadBytes",
        "StorageWriteBytes",
    ], insights
    cpu_units = cloudwatch.get_metric_statistics(
        Namespace="ECS/ContainerInsights",
        MetricName="CpuUtilized",
        Dimensions=dimensions,
        StartTime=start,
        EndTime=now() + dt.timedelta(minutes=1),
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    assert max(p["Maximum"] for p in cpu_units) > 500, "a busy loop uses about one core: 1,024 units"

    # And the task's own series.
    [task_arn] = ecs.list_tasks(cluster=cluster.name, serviceName=service)["taskArns"]
    task_id = task_arn.rsplit("/", 1)[-1]
    per_task = cloudwatch.list_metrics(Namespace="ECS/ContainerInsights", Dimensions=[{"Name": "TaskId", "Value": task_id}])
    assert sorted(m["MetricName"] for m in per_task["Metrics"]) == ["CpuUtilized", "MemoryUtilized"], per_task
    task_cpu = cloudwatch.get_metric_statistics(
        Namespace="ECS/ContainerInsights",
        MetricName="CpuUtilized",
        Dimensions=[
            {"Name": "ClusterName", "Value": cluster.name},
            {"Name": "TaskDefinitionFamily", "Value": family},
            {"Name": "TaskId", "Value": task_id},
        ],
        StartTime=start,
        EndTime=now() + dt.timedelta(minutes=1),
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    assert task_cpu and max(p["Maximum"] for p in task_cpu) > 500, task_cpu
    ecs.delete_service(cluster=cluster.name, service=service, force=True)
