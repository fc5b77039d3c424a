"""Issue 12's `/metrics` on the server: the Prometheus text format, read with the
prometheus_client parser (a real Prometheus client's), behind the metrics token."""

from __future__ import annotations

import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from harness import BerthUp, raw_request, status_is, wait_for_task


def scrape(up: BerthUp, token: str | None) -> tuple[int, str]:
    request = urllib.request.Request(f"{up.server.url}/metrics")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4"), response.headers
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_metrics_need_the_token(berth_up: BerthUp):
    assert scrape(berth_up, None)[0] == 401
    assert scrape(berth_up, "not-the-token")[0] == 401
    token = (berth_up.server.data_dir / "metrics.token").read_text().strip()
    assert len(token) == 64
    assert oct((berth_up.server.data_dir / "metrics.token").stat().st_mode & 0o777) == "0o600"


def test_metrics_count_requests_and_show_the_control_plane(berth_up: BerthUp):
    token = (berth_up.server.data_dir / "metrics.token").read_text().strip()
    ecs = berth_up.ecs
    before = samples(scrape(berth_up, token)[1])
    key = ("berth_requests_total", (("code", "2xx"), ("operation", "ListClusters"), ("service", "ecs")))
    for _ in range(3):
        ecs.list_clusters()
    # A request signed by no one is refused and counted as anonymous.
    refused = raw_request(berth_up.server.url, operation="ListClusters")
    assert refused.status == 403, refused
    status, text = scrape(berth_up, token)
    assert status == 200
    now = samples(text)  # parses, or the test fails here
    assert now[key] - before.get(key, 0) == 3, (now[key], before.get(key))
    anonymous = ("berth_requests_total", (("code", "4xx"), ("operation", "ListClusters"), ("service", "anonymous")))
    assert now[anonymous] >= 1

    # Latency histograms: cumulative buckets, +Inf equals the count.
    labels = (("operation", "ListClusters"), ("service", "ecs"))
    buckets = sorted(
        ((float(dict(lbls)["le"]), value) for (name, lbls), value in now.items()
         if name == "berth_request_duration_seconds_bucket" and tuple(l for l in lbls if l[0] != "le") == labels),
    )
    assert len(buckets) == 15, buckets
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), buckets
    assert buckets[-1] == (float("inf"), now[("berth_request_duration_seconds_count", labels)])
    assert now[("berth_store_commit_duration_seconds_count", ())] > 0

    # The control plane: berth up's agent connected with its stream open, the controllers' queues.
    assert now[("berth_container_instances", (("connected", "true"),))] >= 1
    assert now[("berth_agent_streams", ())] >= 1
    for controller in ("services", "instance_health"):
        assert ("berth_controller_queue_depth", (("controller", controller),)) in now
    assert ("berth_exec_sessions", ()) in now

    # Tasks by status: a task that ran and stopped is counted, and the gauge totals what
    # ListTasks lists.
    ecs.register_task_definition(family="metrics-once", containerDefinitions=[{"name": "x", "image": "busybox", "memory": 16, "command": ["true"]}])
    arn = ecs.run_task(cluster="default", taskDefinition="metrics-once")["tasks"][0]["taskArn"]
    wait_for_task(ecs, "default", arn, status_is("STOPPED"), 60, "the task to stop")
    tasks = samples(scrape(berth_up, token)[1])
    assert tasks[("berth_tasks", (("status", "STOPPED"),))] >= 1
    listed = sum(len(ecs.list_tasks(cluster="default", desiredStatus=d)["taskArns"]) for d in ("RUNNING", "STOPPED"))
    assert sum(v for (name, _), v in tasks.items() if name == "berth_tasks") == listed
