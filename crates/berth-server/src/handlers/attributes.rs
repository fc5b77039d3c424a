//! Attributes of container instances: PutAttributes, DeleteAttributes and ListAttributes. They
//! live in the `attributes` array of each instance's record.

use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::handlers::container_instances::{id_of, resolve_id, update_instances};
use berth_core::model::container_instance::{
    check_custom_attribute_limit, put_attribute, remove_attribute, validate_attribute,
    ContainerInstance, TARGET_TYPE,
};
use berth_core::model::{Attribute, ContainerInstanceStatus};
use berth_core::pagination::PageRequest;
use berth_store::keys;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// Input of PutAttributes and DeleteAttributes.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributesRequest {
    cluster: Option<String>,
    attributes: Vec<Attribute>,
}

/// Output of PutAttributes and DeleteAttributes.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributesResponse {
    attributes: Vec<Attribute>,
}

/// Input of ListAttributes.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListAttributesRequest {
    cluster: Option<String>,
    target_type: String,
    attribute_name: Option<String>,
    attribute_value: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// Output of ListAttributes.
#[skip_serializing_none]
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListAttributesResponse {
    attributes: Vec<Attribute>,
    next_token: Option<String>,
}

/// Most attributes one PutAttributes or DeleteAttributes call may carry.
const MAX_PER_CALL: usize = 10;

fn check_target_type(target_type: &str) -> Result<(), ApiError> {
    if target_type == TARGET_TYPE {
        Ok(())
    } else {
        Err(ApiError::invalid_parameter(format!(
            "Invalid targetType '{target_type}': the only target type is container-instance."
        )))
    }
}

fn target_not_found(target: &str, cluster: &str) -> ApiError {
    ApiError::new(
        "TargetNotFoundException",
        format!(
            "Could not find container instance '{target}' in cluster '{cluster}': use an id or \
             ARN that ListContainerInstances returns for that cluster."
        ),
    )
}

/// One instance an attribute call changes, with the attributes aimed at it.
struct Target {
    key: String,
    reference: String,
    attributes: Vec<Attribute>,
}

/// Checks a PutAttributes or DeleteAttributes request and groups its attributes by the
/// instance they target, in the order the instances first appear.
/// More than `MAX_PER_CALL` attributes is a `too_many` error: PutAttributes reports it as
/// AttributeLimitExceededException, DeleteAttributes (which has no such error) as
/// InvalidParameterException.
fn targets_of(
    ctx: &Ctx,
    req: &AttributesRequest,
    too_many: &'static str,
) -> Result<(String, Vec<Target>), ApiError> {
    if req.attributes.is_empty() {
        return Err(ApiError::invalid_parameter(
            "attributes is empty: name at least one attribute.",
        ));
    }
    if req.attributes.len() > MAX_PER_CALL {
        return Err(ApiError::new(
            too_many,
            format!(
                "{} attributes were given: at most {MAX_PER_CALL} can be put or deleted in one \
                 call.",
                req.attributes.len()
            ),
        ));
    }
    let cluster = ctx.cluster_name(req.cluster.as_deref())?;
    ctx.active_cluster(Some(&cluster))?;
    let mut targets: Vec<Target> = Vec::new();
    for attribute in &req.attributes {
        validate_attribute(attribute).map_err(ApiError::invalid_parameter)?;
        check_target_type(attribute.target_type.as_deref().unwrap_or(TARGET_TYPE))?;
        let Some(reference) = attribute.target_id.as_deref().filter(|t| !t.is_empty()) else {
            return Err(ApiError::invalid_parameter(format!(
                "Attribute '{}' has no targetId: name the container instance (id or ARN) it \
                 applies to.",
                attribute.name
            )));
        };
        let id =
            resolve_id(&cluster, reference).ok_or_else(|| target_not_found(reference, &cluster))?;
        let key = keys::instance(&cluster, &id);
        match targets.iter_mut().find(|t| t.key == key) {
            Some(target) => target.attributes.push(attribute.clone()),
            None => targets.push(Target {
                key,
                reference: reference.to_string(),
                attributes: vec![attribute.clone()],
            }),
        }
    }
    Ok((cluster, targets))
}

/// Applies `change` to every target's attribute list in one transaction; an unknown or
/// deregistered target fails the whole call.
async fn change_attributes<F>(
    ctx: &Ctx,
    cluster: &str,
    targets: &[Target],
    change: F,
) -> Result<(), ApiError>
where
    F: Fn(&mut Vec<Attribute>, &[Attribute]) -> Result<(), ApiError>,
{
    let keys: Vec<String> = targets.iter().map(|t| t.key.clone()).collect();
    update_instances(ctx, &keys, |current| {
        current
            .into_iter()
            .zip(targets)
            .map(|(instance, target)| {
                let mut instance = instance
                    .filter(|i| i.status != Some(ContainerInstanceStatus::Inactive))
                    .ok_or_else(|| target_not_found(&target.reference, cluster))?;
                change(
                    instance.attributes.get_or_insert_with(Vec::new),
                    &target.attributes,
                )?;
                Ok(Some(instance))
            })
            .collect()
    })
    .await?;
    Ok(())
}

/// The attributes of a request as the response echoes them, with their target type.
fn echo(attributes: Vec<Attribute>) -> Vec<Attribute> {
    attributes
        .into_iter()
        .map(|mut a| {
            a.target_type = Some(TARGET_TYPE.to_string());
            a
        })
        .collect()
}

/// Creates or replaces attributes on container instances. An instance may carry at most
/// `MAX_CUSTOM_ATTRIBUTES` (10, as ECS documents) custom attributes.
pub async fn put(ctx: Ctx, req: AttributesRequest) -> Result<AttributesResponse, ApiError> {
    let (cluster, targets) = targets_of(&ctx, &req, "AttributeLimitExceededException")?;
    change_attributes(&ctx, &cluster, &targets, |stored, new| {
        for attribute in new {
            put_attribute(stored, &attribute.name, attribute.value.as_deref());
        }
        check_custom_attribute_limit(stored)
            .map_err(|message| ApiError::new("AttributeLimitExceededException", message))
    })
    .await?;
    Ok(AttributesResponse {
        attributes: echo(req.attributes),
    })
}

/// Removes attributes from container instances by name (a value, if given, is ignored).
pub async fn delete(ctx: Ctx, req: AttributesRequest) -> Result<AttributesResponse, ApiError> {
    let (cluster, targets) = targets_of(&ctx, &req, "InvalidParameterException")?;
    change_attributes(&ctx, &cluster, &targets, |stored, gone| {
        for attribute in gone {
            remove_attribute(stored, &attribute.name);
        }
        Ok(())
    })
    .await?;
    Ok(AttributesResponse {
        attributes: echo(req.attributes),
    })
}

/// Lists the attributes of a cluster's registered instances, optionally those with one name
/// (and value), a page at a time, each with the instance ARN as its target.
pub async fn list(
    ctx: Ctx,
    req: ListAttributesRequest,
) -> Result<ListAttributesResponse, ApiError> {
    check_target_type(&req.target_type)?;
    if req.attribute_value.is_some() && req.attribute_name.is_none() {
        return Err(ApiError::invalid_parameter(
            "attributeValue can only be used together with attributeName.",
        ));
    }
    let page = PageRequest::parse(req.next_token.as_deref(), req.max_results, 100)?;
    let cluster = ctx.cluster_name(req.cluster.as_deref())?;
    ctx.active_cluster(Some(&cluster))?;
    let mut entries: Vec<(String, Attribute)> = Vec::new();
    for stored in ctx.list::<ContainerInstance>(&keys::instances_of(&cluster))? {
        let instance = stored.value;
        if instance.status == Some(ContainerInstanceStatus::Inactive) {
            continue;
        }
        let id = id_of(&instance);
        let arn = instance.container_instance_arn.clone().unwrap_or_default();
        for attribute in instance.attributes.unwrap_or_default() {
            let wanted = req
                .attribute_name
                .as_ref()
                .is_none_or(|n| *n == attribute.name)
                && req
                    .attribute_value
                    .as_ref()
                    .is_none_or(|v| attribute.value.as_ref() == Some(v));
            if wanted {
                // NUL sorts before every id character, so pages follow (id, name) order.
                let sort_key = format!("{id}\u{0}{}", attribute.name);
                entries.push((
                    sort_key,
                    Attribute {
                        target_type: Some(TARGET_TYPE.to_string()),
                        target_id: Some(arn.clone()),
                        ..attribute
                    },
                ));
            }
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let (entries, next_token) = page.page(entries, |(key, _)| key.clone());
    Ok(ListAttributesResponse {
        attributes: entries.into_iter().map(|(_, a)| a).collect(),
        next_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::{clusters, container_instances};
    use crate::{App, ServerConfig};
    use berth_core::model::container_instance::MAX_CUSTOM_ATTRIBUTES;
    use serde::de::DeserializeOwned;
    use serde_json::{json, Value};

    fn req<T: DeserializeOwned>(body: Value) -> T {
        serde_json::from_value(body).expect("well-formed request")
    }

    /// An app with cluster `demo` and `n` registered instances; returns their ARNs in id order.
    async fn app_with_instances(n: usize) -> (Ctx, Vec<String>) {
        let app = App::open(ServerConfig::default()).await.expect("opens");
        clusters::ensure_cluster(&app, "demo")
            .await
            .expect("cluster");
        let caller = crate::auth::root_principal(&app).expect("root");
        let ctx = Ctx { app, caller };
        let mut arns = Vec::new();
        for _ in 0..n {
            let body = json!({"cluster": "demo",
                              "attributes": [{"name": "ecs.os-type", "value": "linux"}]});
            let registered = container_instances::register(ctx.clone(), req(body))
                .await
                .expect("registers");
            let arn = serde_json::to_value(registered).expect("serializes")["containerInstance"]
                ["containerInstanceArn"]
                .as_str()
                .map(str::to_string)
                .expect("arn");
            arns.push(arn);
        }
        arns.sort();
        (ctx, arns)
    }

    async fn list_all(ctx: &Ctx, body: Value) -> Result<ListAttributesResponse, ApiError> {
        list(ctx.clone(), req(body)).await
    }

    fn pairs(response: &ListAttributesResponse) -> Vec<(String, Option<String>, String)> {
        response
            .attributes
            .iter()
            .map(|a| {
                let target = a.target_id.clone().unwrap_or_default();
                (a.name.clone(), a.value.clone(), target)
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn put_attributes_show_up_in_list_attributes_with_instance_arns() {
        let (ctx, arns) = app_with_instances(2).await;
        let id = arns[1].rsplit('/').next().expect("id").to_string();
        let put_body = json!({"cluster": "demo", "attributes": [
            {"name": "stack", "value": "prod", "targetId": arns[0]},
            {"name": "stack", "value": "test", "targetType": "container-instance",
             "targetId": id}]});
        let echoed = put(ctx.clone(), req(put_body)).await.expect("puts");
        assert_eq!(echoed.attributes.len(), 2);
        assert_eq!(echoed.attributes[1].target_id.as_deref(), Some(id.as_str()));
        assert!(echoed
            .attributes
            .iter()
            .all(|a| a.target_type.as_deref() == Some("container-instance")));
        let body = json!({"cluster": "demo", "targetType": "container-instance",
                          "attributeName": "stack"});
        let listed = list_all(&ctx, body).await.expect("lists");
        assert_eq!(
            pairs(&listed),
            vec![
                ("stack".into(), Some("prod".into()), arns[0].clone()),
                ("stack".into(), Some("test".into()), arns[1].clone()),
            ]
        );
        let body = json!({"cluster": "demo", "targetType": "container-instance",
                          "attributeName": "stack", "attributeValue": "test"});
        let filtered = list_all(&ctx, body).await.expect("lists");
        assert_eq!(pairs(&filtered).len(), 1);
        let body = json!({"cluster": "demo", "targetType": "container-instance"});
        assert_eq!(
            list_all(&ctx, body).await.expect("lists").attributes.len(),
            4
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn put_replaces_values_and_delete_removes_by_name() {
        let (ctx, arns) = app_with_instances(1).await;
        let attribute = |value: &str| json!({"name": "stack", "value": value, "targetId": arns[0]});
        for value in ["prod", "test"] {
            let body = json!({"cluster": "demo", "attributes": [attribute(value)]});
            put(ctx.clone(), req(body)).await.expect("puts");
        }
        let body = json!({"cluster": "demo", "targetType": "container-instance",
                          "attributeName": "stack"});
        let listed = list_all(&ctx, body.clone()).await.expect("lists");
        assert_eq!(pairs(&listed)[0].1.as_deref(), Some("test"));
        let gone =
            json!({"cluster": "demo", "attributes": [{"name": "stack", "targetId": arns[0]}]});
        delete(ctx.clone(), req(gone)).await.expect("deletes");
        assert!(list_all(&ctx, body)
            .await
            .expect("lists")
            .attributes
            .is_empty());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn unknown_targets_fail_the_whole_call_and_write_nothing() {
        let (ctx, arns) = app_with_instances(1).await;
        let body = json!({"cluster": "demo", "attributes": [
            {"name": "stack", "value": "prod", "targetId": arns[0]},
            {"name": "stack", "value": "prod", "targetId": "feedface"}]});
        let err = put(ctx.clone(), req(body))
            .await
            .expect_err("unknown target");
        assert_eq!(err.name, "TargetNotFoundException");
        let body = json!({"cluster": "demo", "targetType": "container-instance",
                          "attributeName": "stack"});
        assert!(list_all(&ctx, body)
            .await
            .expect("lists")
            .attributes
            .is_empty());
        container_instances::deregister(
            ctx.clone(),
            req(json!({"cluster": "demo", "containerInstance": arns[0]})),
        )
        .await
        .expect("deregisters");
        let body = json!({"cluster": "demo", "attributes": [
            {"name": "stack", "targetId": arns[0]}]});
        let err = put(ctx.clone(), req(body))
            .await
            .expect_err("inactive target");
        assert_eq!(err.name, "TargetNotFoundException");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn bad_attribute_calls_are_invalid_parameters_or_limit_errors() {
        let (ctx, arns) = app_with_instances(1).await;
        let target = &arns[0];
        let invalid = [
            json!({"cluster": "demo", "attributes": []}),
            json!({"cluster": "demo", "attributes": [{"name": "x"}]}),
            json!({"cluster": "demo", "attributes": [{"name": "bad*", "targetId": target}]}),
            json!({"cluster": "demo", "attributes": [
                {"name": "x", "targetType": "service", "targetId": target}]}),
        ];
        for body in invalid {
            let err = put(ctx.clone(), req(body)).await.expect_err("invalid");
            assert_eq!(err.name, "InvalidParameterException");
        }
        let batch = |from: usize, to: usize| {
            let attributes: Vec<Value> = (from..to)
                .map(|i| json!({"name": format!("custom{i:02}"), "targetId": target}))
                .collect();
            json!({"cluster": "demo", "attributes": attributes})
        };
        put(ctx.clone(), req(batch(0, MAX_CUSTOM_ATTRIBUTES)))
            .await
            .expect("up to the limit");
        let err = put(ctx.clone(), req(batch(50, 51)))
            .await
            .expect_err("over");
        assert_eq!(err.name, "AttributeLimitExceededException");
        let err = put(ctx.clone(), req(batch(50, 61)))
            .await
            .expect_err("11 in a call");
        assert_eq!(err.name, "AttributeLimitExceededException");
        let err = delete(ctx.clone(), req(batch(50, 61)))
            .await
            .expect_err("11 in a call");
        assert_eq!(err.name, "InvalidParameterException");
        let bad_lists = [
            json!({"cluster": "demo", "targetType": "service"}),
            json!({"cluster": "demo", "targetType": "container-instance", "attributeValue": "x"}),
        ];
        for body in bad_lists {
            let err = list_all(&ctx, body).await.expect_err("invalid");
            assert_eq!(err.name, "InvalidParameterException");
        }
        let missing = json!({"cluster": "nope", "targetType": "container-instance"});
        let err = list_all(&ctx, missing).await.expect_err("no cluster");
        assert_eq!(err.name, "ClusterNotFoundException");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn list_attributes_pages_in_instance_then_name_order() {
        let (ctx, arns) = app_with_instances(2).await;
        let body = json!({"cluster": "demo", "attributes": [
            {"name": "b", "targetId": arns[0]}, {"name": "a", "targetId": arns[1]}]});
        put(ctx.clone(), req(body)).await.expect("puts");
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let body = json!({"cluster": "demo", "targetType": "container-instance",
                              "maxResults": 3, "nextToken": token});
            let page = list_all(&ctx, body).await.expect("lists");
            seen.extend(pairs(&page).into_iter().map(|(n, _, t)| (t, n)));
            match page.next_token {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        let expected = vec![
            (arns[0].clone(), "b".to_string()),
            (arns[0].clone(), "ecs.os-type".to_string()),
            (arns[1].clone(), "a".to_string()),
            (arns[1].clone(), "ecs.os-type".to_string()),
        ];
        assert_eq!(seen, expected);
    }
}
