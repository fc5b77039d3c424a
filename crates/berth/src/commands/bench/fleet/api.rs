//! ECS calls of the fleet benchmark: JSON in and out through the agent's own client, timed,
//! with retries of transient failures and `nextToken` pagination.

use anyhow::Context;
use berth_agent::client::{ClientError, ServerClient};
use berth_core::sigv4::Credentials;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The cluster the benchmark runs in.
pub const CLUSTER: &str = "fleet";
/// How long a call is retried while its failure is transient (server busy, timed out,
/// restarting): a slow server is what the benchmark measures, not a reason to give up.
const RETRY_WINDOW: Duration = Duration::from_secs(300);
/// Longest pause between two attempts.
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// An ECS client for the benchmark.
#[derive(Debug, Clone)]
pub struct Api {
    client: ServerClient,
}

impl Api {
    /// A client of the server at `endpoint` (`http://HOST:PORT`), signing with `credentials`.
    pub fn new(endpoint: &str, credentials: Credentials) -> anyhow::Result<Api> {
        Ok(Api {
            client: ServerClient::new(endpoint, "us-east-1", credentials)?,
        })
    }

    /// One call, as the server answered it, and how long it took.
    pub async fn timed(&self, op: &str, body: &Value) -> (Result<Value, ClientError>, Duration) {
        self.timed_as(op, body).await
    }

    /// One call, its answer decoded as `R` (only the fields the caller reads, so the load
    /// generator spends little of the machine the server shares), and how long it took.
    pub async fn timed_as<R: DeserializeOwned>(
        &self,
        op: &str,
        body: &Value,
    ) -> (Result<R, ClientError>, Duration) {
        let started = Instant::now();
        let result = self.client.call::<Value, R>(op, body).await;
        (result, started.elapsed())
    }

    /// A call retried (with a growing pause) while it fails transiently, for up to
    /// [`RETRY_WINDOW`].
    pub async fn call(&self, op: &str, body: Value) -> anyhow::Result<Value> {
        let give_up = Instant::now() + RETRY_WINDOW;
        let mut pause = Duration::from_millis(50);
        loop {
            match self.client.call::<Value, Value>(op, &body).await {
                Err(err) if err.is_retryable() && Instant::now() < give_up => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                }
                other => return other.with_context(|| format!("{op} failed")),
            }
        }
    }

    /// One attempt of a call.
    pub async fn once(&self, op: &str, body: Value) -> anyhow::Result<Value> {
        self.timed(op, &body)
            .await
            .0
            .with_context(|| format!("{op} failed"))
    }

    /// Every item of a paginated list (`items` is the answer's list field, e.g. `taskArns`).
    pub async fn list_all(
        &self,
        op: &str,
        body: Value,
        items: &str,
    ) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut page = body.clone();
            page["maxResults"] = json!(100);
            if let Some(token) = &token {
                page["nextToken"] = json!(token);
            }
            let answer = self.call(op, page).await?;
            out.extend(strings(&answer[items]));
            match answer["nextToken"].as_str() {
                Some(next) if !next.is_empty() => token = Some(next.to_string()),
                _ => return Ok(out),
            }
        }
    }

    /// The ARNs of the cluster's tasks whose desired status is RUNNING (ListTasks, all pages).
    pub async fn running_task_arns(&self) -> anyhow::Result<Vec<String>> {
        self.list_all(
            "ListTasks",
            json!({"cluster": CLUSTER, "desiredStatus": "RUNNING"}),
            "taskArns",
        )
        .await
    }
}

/// The strings of a JSON array (nothing when it is not one).
pub fn strings(value: &Value) -> impl Iterator<Item = String> + '_ {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
}

/// The id (last path segment) of an ARN.
pub fn id_of(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}
