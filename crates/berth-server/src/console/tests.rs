//! Page rendering against an in-memory server, as the root user.

use super::session::Viewer;
use super::*;
use crate::dispatch::Ctx;
use crate::test_support::{app, ok};
use axum::extract::{Path, Query};
use http_body_util::BodyExt as _;
use serde_json::json;

fn viewer(app: &Arc<App>) -> Viewer {
    Viewer {
        ctx: Ctx {
            app: app.clone(),
            caller: crate::auth::root_principal(app).expect("root principal"),
        },
        csrf: "csrf-token".into(),
    }
}

async fn body(response: Response) -> String {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

#[tokio::test]
async fn the_clusters_page_lists_clusters_with_names_escaped() {
    let app = app().await;
    ok(&app, "CreateCluster", json!({"clusterName": "web-1"})).await;
    let html = body(clusters::list(viewer(&app)).await).await;
    assert!(html.contains("href=\"/console/clusters/web-1\""), "{html}");
    assert!(html.contains("<section data-live id=\"clusters\">"));
    assert!(html.contains("value=\"csrf-token\""));
}

#[tokio::test]
async fn a_missing_cluster_reads_as_an_error_message_not_a_failure() {
    let app = app().await;
    let query = serde_json::from_value(json!({})).expect("query");
    let response = clusters::show(viewer(&app), Path("nope".to_string()), Query(query)).await;
    assert_eq!(response.status(), axum::http::StatusCode::OK);
    let html = body(response).await;
    assert!(html.contains("class=\"error\""), "{html}");
    assert!(html.contains("ClusterNotFoundException"), "{html}");
}

#[tokio::test]
async fn a_family_page_diffs_two_revisions() {
    let app = app().await;
    for image in ["busybox:1", "busybox:<2>"] {
        ok(
            &app,
            "RegisterTaskDefinition",
            json!({"family": "web", "containerDefinitions": [
                {"name": "app", "image": image, "memory": 64}]}),
        )
        .await;
    }
    let query = serde_json::from_value(json!({"a": 1, "b": 2})).expect("query");
    let response =
        task_definitions::family(viewer(&app), Path("web".to_string()), Query(query)).await;
    let html = body(response).await;
    assert!(html.contains("web:1") && html.contains("web:2"), "{html}");
    assert!(html.contains("<tr class=\"del\">"), "{html}");
    assert!(html.contains("busybox:&lt;2&gt;"), "{html}");
    assert!(!html.contains("busybox:<2>"));
}

#[tokio::test]
async fn a_task_page_of_an_unknown_task_says_so() {
    let app = app().await;
    ok(&app, "CreateCluster", json!({"clusterName": "c"})).await;
    let response = tasks::show(
        viewer(&app),
        Path(("c".to_string(), "0123456789abcdef".to_string())),
    )
    .await;
    let html = body(response).await;
    assert!(html.contains("class=\"error\""), "{html}");
}

fn sign_in_request(id: &str, secret: &str) -> session::SignInForm {
    serde_json::from_value(json!({"access_key_id": id, "secret_access_key": secret})).expect("form")
}

#[tokio::test]
async fn sign_in_refuses_a_wrong_secret_and_its_cookie_makes_a_viewer() {
    use axum::extract::{FromRequestParts, State};
    use axum::http::{HeaderMap, Request, StatusCode};
    let app = app().await;
    let root = crate::auth::root_principal(&app).expect("root");
    let secret = app.keys.secret_of(&root.access_key_id);

    let wrong = sign_in_request(&root.access_key_id, &format!("{secret}x"));
    let response = session::sign_in(State(app.clone()), HeaderMap::new(), axum::Form(wrong)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get(header::SET_COOKIE).is_none());
    let unknown = sign_in_request("AKIANOSUCHKEY", &secret);
    let response =
        session::sign_in(State(app.clone()), HeaderMap::new(), axum::Form(unknown)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let right = sign_in_request(&root.access_key_id, &secret);
    let response = session::sign_in(State(app.clone()), HeaderMap::new(), axum::Form(right)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = response.headers()[header::SET_COOKIE]
        .to_str()
        .expect("ascii cookie")
        .to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let pair = cookie.split(';').next().expect("name=value").to_string();

    let request = Request::builder()
        .header(header::COOKIE, pair)
        .body(())
        .expect("request");
    let (mut parts, ()) = request.into_parts();
    let viewer = Viewer::from_request_parts(&mut parts, &app)
        .await
        .expect("signed in");
    assert!(viewer.ctx.caller.is_root());
    assert!(!viewer.csrf.is_empty());

    let request = Request::builder()
        .header(header::COOKIE, "berth_console=forged.token")
        .body(())
        .expect("request");
    let (mut parts, ()) = request.into_parts();
    let refused = Viewer::from_request_parts(&mut parts, &app)
        .await
        .expect_err("a forged cookie signs nobody in");
    assert_eq!(refused.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_service_page_shows_deployments_and_its_forms_carry_the_csrf_token() {
    let app = app().await;
    ok(&app, "CreateCluster", json!({"clusterName": "c"})).await;
    ok(
        &app,
        "RegisterTaskDefinition",
        json!({"family": "web", "containerDefinitions": [
            {"name": "app", "image": "busybox", "memory": 64}]}),
    )
    .await;
    ok(
        &app,
        "CreateService",
        json!({"cluster": "c", "serviceName": "web", "taskDefinition": "web", "desiredCount": 0}),
    )
    .await;
    let response = services::show(viewer(&app), Path(("c".to_string(), "web".to_string()))).await;
    let html = body(response).await;
    assert!(
        html.contains("<section data-live id=\"service-deployments\">"),
        "{html}"
    );
    assert!(html.contains("PRIMARY"), "{html}");
    assert!(
        html.contains("action=\"/console/clusters/c/services/web/scale\""),
        "{html}"
    );
    assert!(
        html.contains("name=\"csrf\" value=\"csrf-token\""),
        "{html}"
    );
}
