//! Services on top of the placed tasks (`--services S`): S services of the benchmark's task
//! definition, spread over zones then instances, created at once; the time until every one
//! runs its desired count.

use super::api::{Api, CLUSTER};
use super::load::FAMILY;
use anyhow::bail;
use serde_json::json;
use std::time::{Duration, Instant};

/// Pause between two looks at the services.
const POLL: Duration = Duration::from_millis(200);

/// Creates `count` services of `desired_each` tasks and waits, until `timeout`, for all to
/// run their desired count; returns how long that took.
pub async fn run(
    api: &Api,
    count: usize,
    desired_each: usize,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let names: Vec<String> = (0..count).map(|i| format!("fleet-{i}")).collect();
    for name in &names {
        api.call(
            "CreateService",
            json!({
                "cluster": CLUSTER, "serviceName": name, "taskDefinition": FAMILY,
                "desiredCount": desired_each,
                "placementStrategy": [
                    {"type": "spread", "field": "attribute:ecs.availability-zone"},
                    {"type": "spread", "field": "instanceId"}
                ],
            }),
        )
        .await?;
    }
    loop {
        let mut stable = 0;
        let mut running = 0;
        for batch in names.chunks(10) {
            let answer = api
                .call(
                    "DescribeServices",
                    json!({"cluster": CLUSTER, "services": batch}),
                )
                .await?;
            for service in answer["services"].as_array().into_iter().flatten() {
                let count = |field: &str| service[field].as_u64().unwrap_or(0);
                running += count("runningCount");
                if count("runningCount") == count("desiredCount") && count("pendingCount") == 0 {
                    stable += 1;
                }
            }
        }
        if stable == count {
            return Ok(started.elapsed());
        }
        if started.elapsed() > timeout {
            bail!(
                "after {timeout:?}, {stable} of {count} services are stable, running {running} of {} tasks",
                count * desired_each
            );
        }
        tokio::time::sleep(POLL).await;
    }
}
