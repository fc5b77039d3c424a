//! DiscoverPollEndpoint: where an agent polls for work and sends telemetry. A Berth server
//! serves all of it itself, so every endpoint is this server as the caller reached it
//! (`https://` over TLS), with the trailing `/` ECS's own endpoints have. Like ECS, it answers
//! before the instance is registered: neither the cluster nor the instance has to exist yet.

use crate::dispatch::Ctx;
use crate::error::ApiError;
use serde::{Deserialize, Serialize};

/// Input of DiscoverPollEndpoint.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoverPollEndpointRequest {
    pub container_instance: Option<String>,
    pub cluster: Option<String>,
}

/// Output of DiscoverPollEndpoint.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoverPollEndpointResponse {
    endpoint: String,
    telemetry_endpoint: String,
    service_connect_endpoint: String,
}

/// DiscoverPollEndpoint: this server, as the caller reached it.
pub async fn discover_poll_endpoint(
    ctx: Ctx,
    req: DiscoverPollEndpointRequest,
) -> Result<DiscoverPollEndpointResponse, ApiError> {
    for (name, value) in [
        ("cluster", &req.cluster),
        ("containerInstance", &req.container_instance),
    ] {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(ApiError::invalid_parameter(format!(
                "{name} can not be blank: leave it out or name one."
            )));
        }
    }
    let scheme = if ctx.caller.secure_transport {
        "https"
    } else {
        "http"
    };
    let host = ctx
        .caller
        .host
        .clone()
        .unwrap_or_else(|| ctx.config.listen.to_string());
    let endpoint = format!("{scheme}://{host}/");
    Ok(DiscoverPollEndpointResponse {
        telemetry_endpoint: endpoint.clone(),
        service_connect_endpoint: endpoint.clone(),
        endpoint,
    })
}

#[cfg(test)]
mod tests {
    use crate::test_support::{app, call, ok};
    use serde_json::json;

    #[tokio::test]
    async fn answers_this_server_before_the_instance_is_registered() {
        let app = app().await;
        let out = ok(
            &app,
            "DiscoverPollEndpoint",
            json!({"cluster": "not-yet", "containerInstance": "not-yet"}),
        )
        .await;
        let expected = format!("http://{}/", app.config.listen);
        assert_eq!(out["endpoint"], json!(expected));
        assert_eq!(out["telemetryEndpoint"], json!(expected));
        assert_eq!(out["serviceConnectEndpoint"], json!(expected));
        let out = ok(&app, "DiscoverPollEndpoint", json!({})).await;
        assert_eq!(out["endpoint"], json!(expected));
    }

    #[tokio::test]
    async fn a_blank_cluster_is_refused() {
        let app = app().await;
        let e = call(&app, "DiscoverPollEndpoint", json!({"cluster": " "}))
            .await
            .expect_err("blank cluster");
        assert_eq!(e.name, "InvalidParameterException");
    }
}
