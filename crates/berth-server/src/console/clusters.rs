//! The clusters list and a cluster's page: its container instances (resources registered and
//! remaining, attributes, whether the agent is connected), services and running tasks.

use super::api::{self, short, text};
use super::html::{url, Html};
use super::session::Viewer;
use super::{live, Outcome};
use axum::extract::{Path, Query};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};

/// `GET /console/clusters`.
pub async fn list(viewer: Viewer) -> Response {
    let mut h = Html::new();
    live(&mut h, "clusters", render_list(&viewer).await);
    viewer.page("Clusters", &h.into_string())
}

async fn render_list(viewer: &Viewer) -> Outcome {
    let arns = api::list_all(viewer, "ListClusters", json!({}), "clusterArns").await?;
    let clusters = api::describe_all(
        viewer,
        "DescribeClusters",
        json!({}),
        "clusters",
        &arns,
        100,
        "clusters",
    )
    .await?;
    let mut h = Html::new();
    h.raw("<table>").head(&[
        "Cluster",
        "Status",
        "Instances",
        "Services",
        "Running tasks",
        "Pending tasks",
    ]);
    for c in &clusters {
        let name = text(&c["clusterName"]);
        h.raw("<tr><td>")
            .link(&format!("/console/clusters/{}", url(&name)), &name)
            .raw("</td>");
        for field in [
            "status",
            "registeredContainerInstancesCount",
            "activeServicesCount",
            "runningTasksCount",
            "pendingTasksCount",
        ] {
            h.el("td", &text(&c[field]));
        }
        h.raw("</tr>");
    }
    h.raw("</table>");
    if clusters.is_empty() {
        h.raw("<p class=\"empty\">No clusters.</p>");
    }
    Ok(h)
}

/// Which tasks a cluster's page lists.
#[derive(Debug, Deserialize)]
pub struct TasksQuery {
    /// `STOPPED` for the stopped tasks (with their stop reasons); running ones otherwise.
    status: Option<String>,
}

/// `GET /console/clusters/{cluster}?status=`.
pub async fn show(
    viewer: Viewer,
    Path(cluster): Path<String>,
    Query(query): Query<TasksQuery>,
) -> Response {
    let stopped = query.status.as_deref() == Some("STOPPED");
    let mut h = Html::new();
    let instances = render_instances(&viewer, &cluster).await;
    live(&mut h, "cluster-instances", instances);
    let services = render_services(&viewer, &cluster).await;
    live(&mut h, "cluster-services", services);
    let base = format!("/console/clusters/{}", url(&cluster));
    h.raw("<p class=\"filter\">");
    if stopped {
        h.link(&base, "Show running tasks");
    } else {
        h.link(&format!("{base}?status=STOPPED"), "Show stopped tasks");
    }
    h.raw("</p>");
    let tasks = render_tasks(&viewer, &cluster, stopped).await;
    live(&mut h, "cluster-tasks", tasks);
    viewer.page(&format!("Cluster {cluster}"), &h.into_string())
}

/// The value of resource `name` (`CPU`, `MEMORY`) in an instance's resource list.
fn resource(list: &Value, name: &str) -> i64 {
    list.as_array()
        .into_iter()
        .flatten()
        .find(|r| r["name"] == name)
        .and_then(|r| r["integerValue"].as_i64())
        .unwrap_or(0)
}

async fn render_instances(viewer: &Viewer, cluster: &str) -> Outcome {
    let arns = api::list_all(
        viewer,
        "ListContainerInstances",
        json!({"cluster": cluster}),
        "containerInstanceArns",
    )
    .await?;
    let instances = api::describe_all(
        viewer,
        "DescribeContainerInstances",
        json!({"cluster": cluster}),
        "containerInstances",
        &arns,
        100,
        "containerInstances",
    )
    .await?;
    let mut h = Html::new();
    h.el("h2", &format!("Container instances ({})", instances.len()));
    h.raw("<table>").head(&[
        "Instance",
        "Status",
        "Agent connected",
        "CPU used / registered",
        "Memory used / registered (MiB)",
        "Running",
        "Pending",
        "Attributes",
    ]);
    for i in &instances {
        let (reg, rem) = (&i["registeredResources"], &i["remainingResources"]);
        let cpu = (resource(reg, "CPU"), resource(rem, "CPU"));
        let mem = (resource(reg, "MEMORY"), resource(rem, "MEMORY"));
        let attributes: Vec<String> = i["attributes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| {
                !a["name"]
                    .as_str()
                    .is_some_and(|n| n.contains("ecs.capability."))
            })
            .map(|a| match a["value"].as_str() {
                Some(v) => format!("{}={v}", text(&a["name"])),
                None => text(&a["name"]),
            })
            .collect();
        h.row(&[
            short(&text(&i["containerInstanceArn"])),
            &text(&i["status"]),
            if i["agentConnected"] == json!(true) {
                "yes"
            } else {
                "no"
            },
            &format!("{} / {} ({} free)", cpu.0 - cpu.1, cpu.0, cpu.1),
            &format!("{} / {} ({} free)", mem.0 - mem.1, mem.0, mem.1),
            &text(&i["runningTasksCount"]),
            &text(&i["pendingTasksCount"]),
            &attributes.join(", "),
        ]);
    }
    h.raw("</table>");
    Ok(h)
}

async fn render_services(viewer: &Viewer, cluster: &str) -> Outcome {
    let arns = api::list_all(
        viewer,
        "ListServices",
        json!({"cluster": cluster}),
        "serviceArns",
    )
    .await?;
    let services = api::describe_all(
        viewer,
        "DescribeServices",
        json!({"cluster": cluster}),
        "services",
        &arns,
        10,
        "services",
    )
    .await?;
    let mut h = Html::new();
    h.el("h2", &format!("Services ({})", services.len()));
    h.raw("<table>").head(&[
        "Service",
        "Status",
        "Desired",
        "Running",
        "Pending",
        "Task definition",
    ]);
    for s in &services {
        let name = text(&s["serviceName"]);
        h.raw("<tr><td>")
            .link(
                &format!("/console/clusters/{}/services/{}", url(cluster), url(&name)),
                &name,
            )
            .raw("</td>");
        for field in ["status", "desiredCount", "runningCount", "pendingCount"] {
            h.el("td", &text(&s[field]));
        }
        h.el("td", short(&text(&s["taskDefinition"])));
        h.raw("</tr>");
    }
    h.raw("</table>");
    Ok(h)
}

async fn render_tasks(viewer: &Viewer, cluster: &str, stopped: bool) -> Outcome {
    let status = if stopped { "STOPPED" } else { "RUNNING" };
    let arns = api::list_all(
        viewer,
        "ListTasks",
        json!({"cluster": cluster, "desiredStatus": status}),
        "taskArns",
    )
    .await?;
    let tasks = describe_tasks(viewer, cluster, &arns).await?;
    let mut h = Html::new();
    let what = if stopped { "Stopped tasks" } else { "Tasks" };
    h.el("h2", &format!("{what} ({})", tasks.len()));
    task_table(&mut h, cluster, &tasks);
    Ok(h)
}

/// Describes tasks by ARN, 100 at a time.
pub async fn describe_tasks(
    viewer: &Viewer,
    cluster: &str,
    arns: &[String],
) -> Result<Vec<Value>, crate::error::ApiError> {
    api::describe_all(
        viewer,
        "DescribeTasks",
        json!({"cluster": cluster}),
        "tasks",
        arns,
        100,
        "tasks",
    )
    .await
}

/// A table of tasks linking to their pages.
pub fn task_table(h: &mut Html, cluster: &str, tasks: &[Value]) {
    h.raw("<table class=\"tasks\">").head(&[
        "Task",
        "Last status",
        "Desired status",
        "Group",
        "Task definition",
        "Instance",
        "Started",
        "Stopped reason",
    ]);
    for t in tasks {
        let arn = text(&t["taskArn"]);
        let id = short(&arn);
        h.raw("<tr><td>")
            .link(
                &format!("/console/clusters/{}/tasks/{}", url(cluster), url(id)),
                id,
            )
            .raw("</td>");
        h.el("td", &text(&t["lastStatus"]))
            .el("td", &text(&t["desiredStatus"]))
            .el("td", &text(&t["group"]))
            .el("td", short(&text(&t["taskDefinitionArn"])))
            .el("td", short(&text(&t["containerInstanceArn"])))
            .el("td", &api::time(&t["startedAt"]))
            .el("td", &text(&t["stoppedReason"]));
        h.raw("</tr>");
    }
    h.raw("</table>");
    if tasks.is_empty() {
        h.raw("<p class=\"empty\">No tasks.</p>");
    }
}
