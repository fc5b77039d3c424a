//! Operations: what Cloud Map's asynchronous calls (namespace creation, update and deletion,
//! service updates, instance registration and deregistration) did, for GetOperation and
//! ListOperations. Berth applies each change before answering, so every operation is recorded
//! in the change's own transaction with status `SUCCESS`. The newest [`KEPT`] are kept.

use super::model::{operation_key, Operation, OPERATIONS};
use super::{authorize, invalid, put_some, required, Filter, ListRequest};
use crate::app::App;
use crate::dispatch::Ctx;
use crate::error::ApiError;
use berth_store::typed::encode;
use berth_store::Txn;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// How many operations are kept: recording one more forgets the oldest.
pub const KEPT: usize = 2000;

/// A new operation id, in the shape Cloud Map's have (32 characters, a hyphen, 8 more).
fn new_operation_id() -> String {
    format!("{}-{}", super::random_chars(32), super::random_chars(8))
}

/// Adds to `txn` the record of a successful operation of `kind` on `targets` (`NAMESPACE`,
/// `SERVICE`, `INSTANCE` → id), forgetting the oldest beyond [`KEPT`]; returns the
/// transaction and the operation's id.
pub fn record(
    app: &App,
    txn: Txn,
    kind: &str,
    targets: &[(&str, &str)],
) -> Result<(Txn, String), ApiError> {
    let now = app.now();
    let operation = Operation {
        id: new_operation_id(),
        kind: kind.to_string(),
        status: "SUCCESS".to_string(),
        error_message: None,
        error_code: None,
        created: now,
        updated: now,
        targets: targets
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect(),
    };
    let mut txn = txn.put(operation_key(&operation.id), encode(&operation));
    let mut kept = app.list::<Operation>(OPERATIONS)?;
    if kept.len() >= KEPT {
        kept.sort_by(|a, b| a.value.created.total_cmp(&b.value.created));
        for old in kept.iter().take(kept.len() + 1 - KEPT) {
            txn = txn.delete(operation_key(&old.value.id));
        }
    }
    Ok((txn, operation.id))
}

/// An operation as GetOperation shows it.
fn describe(ctx: &Ctx, operation: &Operation) -> Value {
    let mut out = Map::new();
    out.insert("Id".into(), operation.id.clone().into());
    out.insert("OwnerAccount".into(), ctx.arns.account_id.clone().into());
    out.insert("Type".into(), operation.kind.clone().into());
    out.insert("Status".into(), operation.status.clone().into());
    put_some(&mut out, "ErrorMessage", operation.error_message.clone());
    put_some(&mut out, "ErrorCode", operation.error_code.clone());
    out.insert("CreateDate".into(), operation.created.into());
    out.insert("UpdateDate".into(), operation.updated.into());
    out.insert("Targets".into(), json!(operation.targets));
    Value::Object(out)
}

/// GetOperation's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRequest {
    operation_id: Option<String>,
    owner_account: Option<String>,
}

/// GetOperation: what an asynchronous call did.
pub fn get(ctx: &Ctx, input: GetRequest) -> Result<Value, ApiError> {
    let id = required(input.operation_id, "OperationId")?;
    authorize(ctx, "GetOperation", "*")?;
    let not_found = || {
        ApiError::new(
            "OperationNotFound",
            format!("Operation not found: no operation has the id {id}."),
        )
    };
    if input
        .owner_account
        .is_some_and(|owner| owner != ctx.arns.account_id)
    {
        return Err(not_found());
    }
    let operation = ctx
        .get::<Operation>(&operation_key(&id))?
        .ok_or_else(not_found)?;
    Ok(json!({ "Operation": describe(ctx, &operation.value) }))
}

/// What one filter keeps.
enum Keep {
    /// The target or field named is one of the values.
    OneOf(&'static str, Vec<String>),
    /// Updated from the first time to the second (epoch seconds), both included.
    UpdatedBetween(f64, f64),
}

impl Keep {
    fn of(filter: Filter) -> Result<Keep, ApiError> {
        let (name, values, condition) = filter.parts()?;
        let field = match name.as_str() {
            "NAMESPACE_ID" => "NAMESPACE",
            "SERVICE_ID" => "SERVICE",
            "STATUS" => "STATUS",
            "TYPE" => "TYPE",
            "UPDATE_DATE" => {
                let seconds = |text: &String| {
                    text.parse::<f64>().ok().filter(|s| s.is_finite()).ok_or_else(|| {
                        invalid(format!("UPDATE_DATE values are epoch seconds, not '{text}'."))
                    })
                };
                return match (condition.as_str(), values.as_slice()) {
                    ("BETWEEN", [from, to]) => Ok(Keep::UpdatedBetween(seconds(from)?, seconds(to)?)),
                    _ => Err(invalid(
                        "The UPDATE_DATE filter takes the BETWEEN condition and two values: a start and an end time.",
                    )),
                };
            }
            other => {
                return Err(invalid(format!(
                    "'{other}' is not an operation filter: use NAMESPACE_ID, SERVICE_ID, STATUS, TYPE or UPDATE_DATE."
                )))
            }
        };
        match (condition.as_str(), values.len()) {
            ("EQ", 1) | ("IN", 1..) => Ok(Keep::OneOf(field, values)),
            ("EQ", _) => Err(invalid(format!(
                "The EQ condition of {name} takes exactly one value."
            ))),
            ("IN", _) => Err(invalid(format!(
                "The IN condition of {name} takes one value or more."
            ))),
            (other, _) => Err(invalid(format!(
                "The {name} filter takes the EQ or IN condition, not {other}."
            ))),
        }
    }

    fn keeps(&self, operation: &Operation) -> bool {
        match self {
            Keep::OneOf(field, values) => {
                let value = match *field {
                    "STATUS" => Some(&operation.status),
                    "TYPE" => Some(&operation.kind),
                    target => operation.targets.get(target),
                };
                value.is_some_and(|v| values.contains(v))
            }
            Keep::UpdatedBetween(from, to) => (*from..=*to).contains(&operation.updated),
        }
    }
}

/// ListOperations: the operations that pass every filter, oldest first.
pub fn list(ctx: &Ctx, mut input: ListRequest) -> Result<Value, ApiError> {
    let filters = input
        .filters
        .take()
        .unwrap_or_default()
        .into_iter()
        .map(Keep::of)
        .collect::<Result<Vec<_>, _>>()?;
    authorize(ctx, "ListOperations", "*")?;
    let operations: Vec<Operation> = ctx
        .list::<Operation>(OPERATIONS)?
        .into_iter()
        .map(|o| o.value)
        .filter(|o| filters.iter().all(|f| f.keeps(o)))
        .collect();
    input.answer(
        operations,
        |o| (o.created, &o.id),
        "Operations",
        |o| json!({ "Id": o.id, "Status": o.status }),
    )
}

/// The targets of an operation on `namespace`, `service` and `instance`, as recorded.
pub fn targets<'a>(
    namespace: &'a str,
    service: Option<&'a str>,
    instance: Option<&'a str>,
) -> Vec<(&'static str, &'a str)> {
    let mut out = vec![("NAMESPACE", namespace)];
    out.extend(service.map(|s| ("SERVICE", s)));
    out.extend(instance.map(|i| ("INSTANCE", i)));
    out
}

/// The kept operation of `kind` that targeted namespace `namespace_id`, if any (the answer an
/// idempotent retry of a namespace creation gets again).
pub fn of_namespace(app: &App, kind: &str, namespace_id: &str) -> Result<Option<String>, ApiError> {
    Ok(app
        .list::<Operation>(OPERATIONS)?
        .into_iter()
        .map(|o| o.value)
        .find(|o| {
            o.kind == kind && o.targets.get("NAMESPACE").map(String::as_str) == Some(namespace_id)
        })
        .map(|o| o.id))
}
