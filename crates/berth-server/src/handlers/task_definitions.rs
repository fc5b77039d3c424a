//! Task definitions: RegisterTaskDefinition, DescribeTaskDefinition, ListTaskDefinitions,
//! ListTaskDefinitionFamilies, DeregisterTaskDefinition and DeleteTaskDefinitions.
//!
//! Each revision is stored at `keys::task_definition(family, revision)` as the ECS shape plus
//! a top-level `tags` array; `keys::family(family)` holds the last revision handed out, so
//! revisions are never reused, even after deletes.

use crate::dispatch::Ctx;
use crate::error::ApiError;
use berth_core::model::task_definition::{
    RegisterTaskDefinitionRequest, TaskDefinition, TaskDefinitionRecord,
};
use berth_core::model::{Failure, Tag, TaskDefinitionStatus};
use berth_core::pagination::PageRequest;
use berth_core::task_definition::{
    parse_reference, parse_revision_reference, prepare_registration, TaskDefinitionError,
    TaskDefinitionRef,
};
use berth_store::typed::encode;
use berth_store::{keys, Compare, Txn};
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;
use std::collections::BTreeMap;

impl From<TaskDefinitionError> for ApiError {
    fn from(e: TaskDefinitionError) -> Self {
        match e {
            TaskDefinitionError::Client(message) => ApiError::client(message),
            TaskDefinitionError::InvalidParameter(message) => ApiError::invalid_parameter(message),
        }
    }
}

/// Output of RegisterTaskDefinition and DescribeTaskDefinition.
#[skip_serializing_none]
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinitionResponse {
    task_definition: TaskDefinition,
    tags: Option<Vec<Tag>>,
}

/// Input of DescribeTaskDefinition.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeTaskDefinitionRequest {
    task_definition: String,
    include: Option<Vec<String>>,
}

/// Input of ListTaskDefinitions.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTaskDefinitionsRequest {
    family_prefix: Option<String>,
    status: Option<String>,
    sort: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// Output of ListTaskDefinitions.
#[skip_serializing_none]
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTaskDefinitionsResponse {
    task_definition_arns: Vec<String>,
    next_token: Option<String>,
}

/// Input of ListTaskDefinitionFamilies.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTaskDefinitionFamiliesRequest {
    family_prefix: Option<String>,
    status: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// Output of ListTaskDefinitionFamilies.
#[skip_serializing_none]
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTaskDefinitionFamiliesResponse {
    families: Vec<String>,
    next_token: Option<String>,
}

/// Input of DeregisterTaskDefinition.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeregisterTaskDefinitionRequest {
    task_definition: String,
}

/// Output of DeregisterTaskDefinition.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeregisterTaskDefinitionResponse {
    task_definition: TaskDefinition,
}

/// Input of DeleteTaskDefinitions.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteTaskDefinitionsRequest {
    task_definitions: Vec<String>,
}

/// Output of DeleteTaskDefinitions.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteTaskDefinitionsResponse {
    task_definitions: Vec<TaskDefinition>,
    failures: Vec<Failure>,
}

/// The record at `keys::family`: the last revision handed out in a family.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FamilyCounter {
    family: String,
    last_revision: u32,
}

/// How often registration retries when other registrations of the family keep winning.
const MAX_REGISTER_ATTEMPTS: usize = 100;

fn not_described() -> ApiError {
    ApiError::client("Unable to describe task definition.")
}

/// Registers a new revision of a family: the next number after any the family ever had.
/// The family counter and the revision are written in one transaction guarded by the
/// counter's store revision, so concurrent registrations get distinct revisions.
pub async fn register(
    ctx: Ctx,
    req: RegisterTaskDefinitionRequest,
) -> Result<TaskDefinitionResponse, ApiError> {
    let (mut td, tags) = prepare_registration(&req)?;
    super::admission::admit_for_registration(&ctx, &td)?;
    let family = req.family;
    let family_key = keys::family(&family);
    for _ in 0..MAX_REGISTER_ATTEMPTS {
        let counter = ctx.get::<FamilyCounter>(&family_key)?;
        let counted = counter.as_ref().map_or(0, |c| c.value.last_revision);
        // Never trust the counter alone: a revision stored without it must not be reused.
        let stored = ctx
            .list::<TaskDefinitionRecord>(&keys::task_definitions_of(&family))?
            .iter()
            .filter_map(|r| r.value.task_definition.revision)
            .max()
            .map_or(0, |r| r.max(0) as u32);
        let revision = counted.max(stored) + 1;
        if revision > i32::MAX as u32 {
            return Err(ApiError::client(format!(
                "Family '{family}' has used every revision number."
            )));
        }
        td.task_definition_arn = Some(ctx.arns.task_definition(&family, revision));
        td.revision = Some(revision as i32);
        td.status = Some(TaskDefinitionStatus::Active);
        td.registered_at = Some(ctx.now());
        td.registered_by = Some(format!("arn:aws:iam::{}:root", ctx.config.account_id));
        let key = keys::task_definition(&family, revision);
        let record = TaskDefinitionRecord {
            task_definition: td.clone(),
            tags: tags.clone(),
        };
        let next = FamilyCounter {
            family: family.clone(),
            last_revision: revision,
        };
        let txn = Txn::new()
            .when(Compare::at(
                &family_key,
                counter.as_ref().map_or(0, |c| c.mod_revision),
            ))
            .when(Compare::absent(&key))
            .put(&family_key, encode(&next))
            .put(&key, encode(&record));
        if ctx.commit(txn).await?.succeeded {
            // As ECS: the tags registered with it, and no `tags` when there were none.
            return Ok(TaskDefinitionResponse {
                task_definition: td,
                tags: Some(tags).filter(|t| !t.is_empty()),
            });
        }
    }
    Err(ApiError::server(format!(
        "Could not allocate a revision of '{family}': too many concurrent registrations; try again."
    )))
}

/// The stored revision a reference names: a bare family means its latest ACTIVE revision.
fn find(
    ctx: &Ctx,
    reference: &TaskDefinitionRef,
) -> Result<Option<TaskDefinitionRecord>, ApiError> {
    Ok(match reference {
        TaskDefinitionRef::Revision { family, revision } => ctx
            .get::<TaskDefinitionRecord>(&keys::task_definition(family, *revision))?
            .map(|v| v.value),
        TaskDefinitionRef::Family(family) => ctx
            .list::<TaskDefinitionRecord>(&keys::task_definitions_of(family))?
            .into_iter()
            .map(|v| v.value)
            .filter(|r| r.task_definition.status == Some(TaskDefinitionStatus::Active))
            .max_by_key(|r| r.task_definition.revision),
    })
}

/// Describes a revision by `family` (latest ACTIVE), `family:revision` or ARN (any status);
/// its tags only with `include: ["TAGS"]` (an empty `tags` otherwise, as ECS shows).
pub async fn describe(
    ctx: Ctx,
    req: DescribeTaskDefinitionRequest,
) -> Result<TaskDefinitionResponse, ApiError> {
    let include = req.include.unwrap_or_default();
    if let Some(bad) = include.iter().find(|i| i.as_str() != "TAGS") {
        return Err(ApiError::invalid_parameter(format!(
            "Invalid include value '{bad}': the only value is TAGS."
        )));
    }
    let reference = parse_reference(&req.task_definition)?;
    let record = find(&ctx, &reference)?.ok_or_else(not_described)?;
    // ECS always answers with `tags`: the revision's with TAGS, `[]` without.
    let tags = if include.iter().any(|i| i == "TAGS") {
        record.tags
    } else {
        Vec::new()
    };
    Ok(TaskDefinitionResponse {
        task_definition: record.task_definition,
        tags: Some(tags),
    })
}

fn invalid_value(member: &str, value: &str, allowed: &str) -> ApiError {
    ApiError::invalid_parameter(format!(
        "Invalid value '{value}' for {member}: use one of {allowed}."
    ))
}

fn check_value(member: &str, value: &str, allowed: &[&str]) -> Result<(), ApiError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(invalid_value(member, value, &allowed.join(", ")))
    }
}

/// Every stored revision as (family, revision, status), in no particular order.
fn all_revisions(ctx: &Ctx, prefix: &str) -> Vec<(String, u32, Option<TaskDefinitionStatus>)> {
    // The cache's decoded copies: no JSON is read again.
    ctx.snapshot()
        .definitions_under(prefix)
        .filter_map(|record| {
            let td = &record.task_definition;
            let revision = u32::try_from(td.revision?).ok()?;
            Some((td.family.clone()?, revision, td.status))
        })
        .collect()
}

/// Lists task definition ARNs with a status (ACTIVE by default), of one family when
/// `familyPrefix` is given (ECS matches the whole family name here), sorted by family and
/// revision, ascending or descending, a page at a time.
pub async fn list(
    ctx: Ctx,
    req: ListTaskDefinitionsRequest,
) -> Result<ListTaskDefinitionsResponse, ApiError> {
    let text = req.status.as_deref().unwrap_or("ACTIVE");
    let status = TaskDefinitionStatus::parse(text).ok_or_else(|| {
        invalid_value(
            "status",
            text,
            &TaskDefinitionStatus::join(TaskDefinitionStatus::ALL),
        )
    })?;
    let sort = req.sort.as_deref().unwrap_or("ASC");
    check_value("sort", sort, &["ASC", "DESC"])?;
    let page = PageRequest::parse(req.next_token.as_deref(), req.max_results, 100)?;
    let after = page
        .after
        .as_deref()
        .map(|token| {
            token
                .rsplit_once(':')
                .and_then(|(f, r)| Some((f.to_string(), r.parse::<u32>().ok()?)))
                .ok_or(berth_core::pagination::PageError::Token)
        })
        .transpose()?;
    // From the (status, family, revision) index, from after the previous page's last
    // revision, one past the page: O(page).
    let family = req.family_prefix.as_deref().filter(|f| !f.is_empty());
    let state = ctx.snapshot();
    let descending = sort == "DESC";
    let rest: Vec<(String, u32)> = state
        .definition_revisions(
            status.as_str(),
            family,
            after.as_ref().map(|(f, r)| (f.as_str(), *r)),
            descending,
        )
        .take(page.limit + 1)
        .map(|(f, r)| (f.to_string(), r))
        .collect();
    let first_page = PageRequest {
        after: None,
        limit: page.limit,
    };
    let (items, next_token) = first_page.page(rest, |(f, r)| format!("{f}:{r}"));
    Ok(ListTaskDefinitionsResponse {
        task_definition_arns: items
            .iter()
            .map(|(family, revision)| ctx.arns.task_definition(family, *revision))
            .collect(),
        next_token,
    })
}

/// Lists family names starting with `familyPrefix`: ACTIVE = families with an ACTIVE
/// revision, INACTIVE = families without one, ALL (the default) = both. Families whose
/// revisions were all deleted are gone, as in ECS.
pub async fn list_families(
    ctx: Ctx,
    req: ListTaskDefinitionFamiliesRequest,
) -> Result<ListTaskDefinitionFamiliesResponse, ApiError> {
    let status = req.status.as_deref().unwrap_or("ALL");
    check_value("status", status, &["ACTIVE", "INACTIVE", "ALL"])?;
    let page = PageRequest::parse(req.next_token.as_deref(), req.max_results, 100)?;
    let prefix = req.family_prefix.unwrap_or_default();
    let mut has_active: BTreeMap<String, bool> = BTreeMap::new();
    for (family, _, revision_status) in all_revisions(&ctx, keys::TASK_DEFINITIONS) {
        if family.starts_with(&prefix) {
            *has_active.entry(family).or_default() |=
                revision_status == Some(TaskDefinitionStatus::Active);
        }
    }
    let families: Vec<String> = has_active
        .into_iter()
        .filter(|(_, active)| match status {
            "ACTIVE" => *active,
            "INACTIVE" => !*active,
            _ => true,
        })
        .map(|(family, _)| family)
        .collect();
    let (families, next_token) = page.page(families, Clone::clone);
    Ok(ListTaskDefinitionFamiliesResponse {
        families,
        next_token,
    })
}

/// Deregisters a revision (`family:revision` or ARN): ACTIVE becomes INACTIVE with
/// `deregisteredAt`. Tasks and services using it keep running; it can no longer start new
/// ones. Deregistering an INACTIVE revision again returns it unchanged.
pub async fn deregister(
    ctx: Ctx,
    req: DeregisterTaskDefinitionRequest,
) -> Result<DeregisterTaskDefinitionResponse, ApiError> {
    let (family, revision) = parse_revision_reference(&req.task_definition)?;
    let key = keys::task_definition(&family, revision);
    let missing = || ApiError::client("The specified task definition does not exist.");
    let current = ctx.get::<TaskDefinitionRecord>(&key)?.ok_or_else(missing)?;
    if current.value.task_definition.status != Some(TaskDefinitionStatus::Active) {
        return Ok(DeregisterTaskDefinitionResponse {
            task_definition: current.value.task_definition,
        });
    }
    let now = ctx.now();
    let record = ctx
        .update::<TaskDefinitionRecord, _>(&key, |current| {
            let mut record = current.ok_or_else(missing)?;
            if record.task_definition.status == Some(TaskDefinitionStatus::Active) {
                record.task_definition.status = Some(TaskDefinitionStatus::Inactive);
                record.task_definition.deregistered_at = Some(now);
            }
            Ok(record)
        })
        .await?;
    Ok(DeregisterTaskDefinitionResponse {
        task_definition: record.task_definition,
    })
}

/// A failure entry of DeleteTaskDefinitions.
fn failure(
    arn: String,
    reason: &str,
    detail: impl Into<String>,
) -> Result<TaskDefinition, Failure> {
    Err(Failure {
        arn: Some(arn),
        reason: Some(reason.to_string()),
        detail: Some(detail.into()),
    })
}

/// Moves one INACTIVE revision to DELETE_IN_PROGRESS; everything else is a failure entry.
async fn delete_one(
    ctx: &Ctx,
    family: &str,
    revision: u32,
    now: f64,
) -> Result<Result<TaskDefinition, Failure>, ApiError> {
    let arn = ctx.arns.task_definition(family, revision);
    let key = keys::task_definition(family, revision);
    let Some(current) = ctx.get::<TaskDefinitionRecord>(&key)? else {
        return Ok(failure(
            arn,
            "The specified task definition does not exist.",
            "Check the family and revision: ListTaskDefinitions shows the registered ones.",
        ));
    };
    match current.value.task_definition.status {
        Some(TaskDefinitionStatus::Active) => Ok(failure(
            arn,
            "The specified task definition is still in ACTIVE status. Please deregister the target and try again.",
            format!("Call DeregisterTaskDefinition for {family}:{revision} first."),
        )),
        Some(TaskDefinitionStatus::DeleteInProgress) => Ok(Ok(current.value.task_definition)),
        _ => {
            let mut record = current.value;
            record.task_definition.status = Some(TaskDefinitionStatus::DeleteInProgress);
            record.task_definition.delete_requested_at = Some(now);
            let txn = Txn::new()
                .when(Compare::at(&key, current.mod_revision))
                .put(&key, encode(&record));
            if ctx.commit(txn).await?.succeeded {
                Ok(Ok(record.task_definition))
            } else {
                // Someone changed it meanwhile (a re-tag, a concurrent delete): look again.
                Box::pin(delete_one(ctx, family, revision, now)).await
            }
        }
    }
}

/// Deletes up to 10 INACTIVE revisions (`family:revision` or ARN): each becomes
/// DELETE_IN_PROGRESS with `deleteRequestedAt`. ACTIVE and unknown ones are `failures`.
pub async fn delete(
    ctx: Ctx,
    req: DeleteTaskDefinitionsRequest,
) -> Result<DeleteTaskDefinitionsResponse, ApiError> {
    if req.task_definitions.is_empty() || req.task_definitions.len() > 10 {
        return Err(ApiError::invalid_parameter(format!(
            "taskDefinitions must list 1 to 10 task definitions, not {}.",
            req.task_definitions.len()
        )));
    }
    // A malformed reference fails the whole request before anything changes.
    let mut revisions: Vec<(String, u32)> = Vec::new();
    for reference in &req.task_definitions {
        let parsed = parse_revision_reference(reference)?;
        if !revisions.contains(&parsed) {
            revisions.push(parsed);
        }
    }
    let now = ctx.now();
    let mut task_definitions = Vec::new();
    let mut failures = Vec::new();
    for (family, revision) in &revisions {
        match delete_one(&ctx, family, *revision, now).await? {
            Ok(td) => task_definitions.push(td),
            Err(f) => failures.push(f),
        }
    }
    Ok(DeleteTaskDefinitionsResponse {
        task_definitions,
        failures,
    })
}

#[cfg(test)]
mod tests;
