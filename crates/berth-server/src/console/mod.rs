//! The web console at `/console`: clusters, container instances, services (deployments,
//! events, scale, force new deployment, roll back), tasks (containers, exit codes, logs tailed
//! live) and task definitions (revisions, diffs).
//!
//! Server-rendered HTML plus one small vanilla script, both embedded in the binary: the pages
//! are built from the same ECS and CloudWatch Logs operations the API serves, dispatched in
//! process as the signed-in principal, so IAM authorises every read and every action and an
//! access denial shows as a message on the page. There is no npm build step and no frontend
//! dependency to keep up to date; every value is escaped where it is written ([`html`]).
//!
//! Live updates: the parts of a page that change are `<section data-live id=…>`; the script
//! fetches the page again every second and swaps the sections whose markup changed, so
//! progress, events, tasks and log lines appear within 2 s without a reload, and forms being
//! filled in are left alone.
//!
//! Sign-in ([`session`]) takes an access key id and secret; the console session is a MACed,
//! `HttpOnly`, `SameSite=Strict` cookie, and every POST carries a per-session CSRF token and
//! is refused from a foreign `Origin`. The browser tests (`tests/test_console.py`) save a
//! screenshot of each page to `target/test-artifacts/console/`.

pub mod api;
pub mod clusters;
pub mod html;
pub mod services;
pub mod session;
pub mod task_definitions;
pub mod tasks;

use crate::app::App;
use crate::error::ApiError;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use html::Html;
use std::sync::Arc;

/// A rendered part of a page, or the API error that kept it from being read.
pub type Outcome = Result<Html, ApiError>;

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// The console's routes (outside SigV4: the console signs its users in itself).
pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::to("/console/clusters") }),
        )
        .route(
            "/console/",
            get(|| async { Redirect::to("/console/clusters") }),
        )
        .route(
            "/console/sign-in",
            get(session::sign_in_form).post(session::sign_in),
        )
        .route("/console/sign-out", post(session::sign_out))
        .route(
            "/console/assets/console.css",
            get(|| asset(CSS, "text/css")),
        )
        .route(
            "/console/assets/console.js",
            get(|| asset(JS, "text/javascript")),
        )
        .route("/console/clusters", get(clusters::list))
        .route("/console/clusters/{cluster}", get(clusters::show))
        .route(
            "/console/clusters/{cluster}/services/{service}",
            get(services::show),
        )
        .route(
            "/console/clusters/{cluster}/services/{service}/{action}",
            post(services::act),
        )
        .route("/console/clusters/{cluster}/tasks/{task}", get(tasks::show))
        .route("/console/task-definitions", get(task_definitions::families))
        .route(
            "/console/task-definitions/{family}",
            get(task_definitions::family),
        )
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// Appends a section the live-update script refreshes: the rendered part, or its error.
pub fn live(h: &mut Html, id: &str, part: Outcome) {
    h.raw("<section data-live id=\"").text(id).raw("\">");
    match part {
        Ok(part) => {
            h.raw(&part.into_string());
        }
        Err(e) => failed(h, &e),
    };
    h.raw("</section>");
}

/// Appends the message of an API error (an access denial among them) in place of content.
pub fn failed(h: &mut Html, e: &ApiError) {
    h.error(e.name, &e.message);
}

#[cfg(test)]
mod tests;
