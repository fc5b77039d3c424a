//! A service's page: its deployments with their progress, events and tasks, and the forms
//! that scale it, force a new deployment and roll it back (each an UpdateService call).

use super::api::{self, short, text};
use super::clusters::{describe_tasks, task_table};
use super::html::{url, Html};
use super::session::Viewer;
use super::{failed, live, Outcome};
use crate::error::ApiError;
use axum::extract::Path;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use serde_json::{json, Value};

/// Events shown on the page, newest first.
const EVENTS_SHOWN: usize = 25;

/// The service `name` of `cluster`, described as the viewer.
async fn describe(viewer: &Viewer, cluster: &str, name: &str) -> Result<Value, ApiError> {
    let mut answer = api::ecs(
        viewer,
        "DescribeServices",
        json!({"cluster": cluster, "services": [name]}),
    )
    .await?;
    match answer["services"].get_mut(0).map(Value::take) {
        Some(service) => Ok(service),
        None => Err(ApiError::new(
            "ServiceNotFoundException",
            format!("Service {name} is not in cluster {cluster}."),
        )),
    }
}

/// `GET /console/clusters/{cluster}/services/{service}`.
pub async fn show(viewer: Viewer, Path((cluster, name)): Path<(String, String)>) -> Response {
    let mut h = Html::new();
    match describe(&viewer, &cluster, &name).await {
        Err(e) => failed(&mut h, &e),
        Ok(service) => {
            live(&mut h, "service-summary", Ok(summary(&service)));
            forms(&mut h, &viewer, &cluster, &name, &service);
            let roll_back = roll_back(&viewer, &cluster, &name, &service).await;
            live(&mut h, "service-roll-back", Ok(roll_back));
            live(&mut h, "service-deployments", Ok(deployments(&service)));
            live(
                &mut h,
                "service-tasks",
                tasks(&viewer, &cluster, &name).await,
            );
            live(&mut h, "service-events", Ok(events(&service)));
        }
    }
    viewer.page(&format!("Service {name}"), &h.into_string())
}

fn summary(s: &Value) -> Html {
    let mut h = Html::new();
    h.raw("<dl class=\"summary\">");
    for (label, value) in [
        ("Status", text(&s["status"])),
        ("Desired", text(&s["desiredCount"])),
        ("Running", text(&s["runningCount"])),
        ("Pending", text(&s["pendingCount"])),
        (
            "Task definition",
            short(&text(&s["taskDefinition"])).to_string(),
        ),
        ("Launch type", text(&s["launchType"])),
    ] {
        h.el("dt", label)
            .raw("<dd data-field=\"")
            .text(label)
            .raw("\">")
            .text(&value)
            .raw("</dd>");
    }
    h.raw("</dl>");
    h
}

fn deployments(s: &Value) -> Html {
    let mut h = Html::new();
    h.el("h2", "Deployments");
    h.raw("<table class=\"deployments\">").head(&[
        "Deployment",
        "Status",
        "Task definition",
        "Desired",
        "Pending",
        "Running",
        "Failed",
        "Progress",
        "Rollout",
        "Reason",
        "Updated",
    ]);
    for d in s["deployments"].as_array().into_iter().flatten() {
        h.raw("<tr>")
            .el("td", &text(&d["id"]))
            .el("td", &text(&d["status"]))
            .el("td", short(&text(&d["taskDefinition"])))
            .el("td", &text(&d["desiredCount"]))
            .el("td", &text(&d["pendingCount"]))
            .el("td", &text(&d["runningCount"]))
            .el("td", &text(&d["failedTasks"]));
        let desired = d["desiredCount"].as_u64().unwrap_or(0);
        let running = d["runningCount"].as_u64().unwrap_or(0).min(desired);
        h.raw(&format!(
            "<td><progress value=\"{running}\" max=\"{}\"></progress></td>",
            desired.max(1)
        ))
        .el("td", &text(&d["rolloutState"]))
        .el("td", &text(&d["rolloutStateReason"]))
        .el("td", &api::time(&d["updatedAt"]))
        .raw("</tr>");
    }
    h.raw("</table>");
    h
}

fn events(s: &Value) -> Html {
    let mut h = Html::new();
    h.el("h2", "Events");
    h.raw("<table class=\"events\">").head(&["Time", "Message"]);
    for e in s["events"]
        .as_array()
        .into_iter()
        .flatten()
        .take(EVENTS_SHOWN)
    {
        h.row(&[&api::time(&e["createdAt"]), &text(&e["message"])]);
    }
    h.raw("</table>");
    h
}

async fn tasks(viewer: &Viewer, cluster: &str, name: &str) -> Outcome {
    let arns = api::list_all(
        viewer,
        "ListTasks",
        json!({"cluster": cluster, "serviceName": name}),
        "taskArns",
    )
    .await?;
    let tasks = describe_tasks(viewer, cluster, &arns).await?;
    let mut h = Html::new();
    h.el("h2", &format!("Tasks ({})", tasks.len()));
    task_table(&mut h, cluster, &tasks);
    Ok(h)
}

/// Service deployments looked at, newest first, for the one to roll back to.
const ROLL_BACK_LOOKBACK: usize = 10;

/// The task definition a roll back goes to: that of the deployment the primary one replaces
/// while it rolls out, otherwise the source of the newest service deployment that changed the
/// task definition (ListServiceDeployments, DescribeServiceDeployments,
/// DescribeServiceRevisions). `None` when the service never had another one.
async fn roll_back_target(viewer: &Viewer, cluster: &str, s: &Value) -> Option<String> {
    let deployments = s["deployments"].as_array()?;
    if let Some(previous) = deployments.iter().find(|d| d["status"] == "ACTIVE") {
        return previous["taskDefinition"].as_str().map(str::to_string);
    }
    let current = s["taskDefinition"].as_str()?;
    let service = s["serviceName"].as_str()?;
    let listed = api::ecs(
        viewer,
        "ListServiceDeployments",
        json!({"cluster": cluster, "service": service, "maxResults": ROLL_BACK_LOOKBACK}),
    )
    .await
    .ok()?;
    let arns: Vec<String> = listed["serviceDeployments"]
        .as_array()?
        .iter()
        .filter_map(|d| d["serviceDeploymentArn"].as_str().map(str::to_string))
        .collect();
    let described = api::ecs(
        viewer,
        "DescribeServiceDeployments",
        json!({"serviceDeploymentArns": arns}),
    )
    .await
    .ok()?;
    // Newest first, as listed; the sources of each, in that order.
    let mut sources = Vec::new();
    for arn in &arns {
        let deployment = described["serviceDeployments"]
            .as_array()?
            .iter()
            .find(|d| d["serviceDeploymentArn"] == arn.as_str())?;
        sources.extend(
            deployment["sourceServiceRevisions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["arn"].as_str().map(str::to_string)),
        );
    }
    // DescribeServiceRevisions takes at most 20.
    sources.truncate(20);
    if sources.is_empty() {
        return None;
    }
    let revisions = api::ecs(
        viewer,
        "DescribeServiceRevisions",
        json!({"serviceRevisionArns": sources}),
    )
    .await
    .ok()?;
    sources.iter().find_map(|arn| {
        let revision = revisions["serviceRevisions"]
            .as_array()?
            .iter()
            .find(|r| r["serviceRevisionArn"] == arn.as_str())?;
        revision["taskDefinition"]
            .as_str()
            .filter(|td| *td != current)
            .map(str::to_string)
    })
}

fn forms(h: &mut Html, viewer: &Viewer, cluster: &str, name: &str, s: &Value) {
    let base = format!("/console/clusters/{}/services/{}", url(cluster), url(name));
    h.raw("<div class=\"actions\">");
    h.raw("<form method=\"post\" id=\"scale\" action=\"")
        .text(&format!("{base}/scale"))
        .raw("\">")
        .csrf(&viewer.csrf)
        .raw(
            "<label>Desired count <input type=\"number\" min=\"0\" name=\"desired_count\" value=\"",
        )
        .text(&text(&s["desiredCount"]))
        .raw("\"></label><button type=\"submit\">Scale</button></form>");
    h.raw("<form method=\"post\" id=\"force-new-deployment\" action=\"")
        .text(&format!("{base}/force-new-deployment"))
        .raw("\">")
        .csrf(&viewer.csrf)
        .raw("<button type=\"submit\">Force new deployment</button></form>");
    h.raw("</div>");
}

/// The roll-back form, live because its target changes with each deployment (it holds no
/// input to lose).
async fn roll_back(viewer: &Viewer, cluster: &str, name: &str, s: &Value) -> Html {
    let mut h = Html::new();
    let Some(target) = roll_back_target(viewer, cluster, s).await else {
        h.raw("<p class=\"empty\">No earlier task definition to roll back to.</p>");
        return h;
    };
    let action = format!(
        "/console/clusters/{}/services/{}/roll-back",
        url(cluster),
        url(name)
    );
    h.raw("<form method=\"post\" id=\"roll-back\" action=\"")
        .text(&action)
        .raw("\">")
        .csrf(&viewer.csrf)
        .raw("<input type=\"hidden\" name=\"task_definition\" value=\"")
        .text(&target)
        .raw("\"><button type=\"submit\">Roll back to ")
        .text(short(&target))
        .raw("</button></form>");
    h
}

/// The fields of the service forms.
#[derive(Debug, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    desired_count: Option<String>,
    task_definition: Option<String>,
}

/// `POST .../services/{service}/{action}`: scale, force-new-deployment or roll-back.
pub async fn act(
    viewer: Viewer,
    Path((cluster, name, action)): Path<(String, String, String)>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Err(refusal) = viewer.check_post(&headers, &form.csrf) {
        return refusal.into_response();
    }
    let mut body = json!({"cluster": cluster, "service": name});
    let update = match action.as_str() {
        "scale" => match form
            .desired_count
            .as_deref()
            .map(str::trim)
            .map(str::parse::<u32>)
        {
            Some(Ok(count)) => {
                body["desiredCount"] = json!(count);
                Ok(body)
            }
            _ => Err(ApiError::invalid_parameter(
                "Desired count must be a whole number of tasks, 0 or more.",
            )),
        },
        "force-new-deployment" => {
            body["forceNewDeployment"] = json!(true);
            Ok(body)
        }
        "roll-back" => match form.task_definition.filter(|t| !t.is_empty()) {
            Some(td) => {
                body["taskDefinition"] = json!(td);
                Ok(body)
            }
            None => Err(ApiError::invalid_parameter(
                "There is no earlier task definition to roll back to.",
            )),
        },
        other => Err(ApiError::invalid_parameter(format!(
            "{other} is not a service action (scale, force-new-deployment, roll-back)."
        ))),
    };
    let result = match update {
        Ok(body) => api::ecs(&viewer, "UpdateService", body).await.map(|_| ()),
        Err(e) => Err(e),
    };
    let back = format!(
        "/console/clusters/{}/services/{}",
        url(&cluster),
        url(&name)
    );
    match result {
        Ok(()) => Redirect::to(&back).into_response(),
        Err(e) => {
            let mut h = Html::new();
            failed(&mut h, &e);
            h.raw("<p>").link(&back, "Back to the service").raw("</p>");
            let page = viewer.page("Service update failed", &h.into_string());
            (e.status(), page).into_response()
        }
    }
}
