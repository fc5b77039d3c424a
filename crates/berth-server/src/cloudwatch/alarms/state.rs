//! DeleteAlarms, SetAlarmState, EnableAlarmActions and DisableAlarmActions.

use super::{alarm_arn, alarm_key, check_name, not_found, update, Alarm, STATES};
use crate::cloudwatch::{invalid_value, missing};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use berth_store::{Compare, Txn};
use serde::Deserialize;
use serde_json::{json, Value};

/// An input naming alarms: DeleteAlarms, EnableAlarmActions, DisableAlarmActions.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AlarmNamesInput {
    alarm_names: Option<Vec<String>>,
}

/// DeleteAlarms: all the named alarms, or none when one of them does not exist.
pub async fn delete_alarms(ctx: &Ctx, input: AlarmNamesInput) -> Result<Value, ApiError> {
    let names = input.alarm_names.ok_or_else(|| missing("AlarmNames"))?;
    if names.len() > 100 {
        return Err(invalid_value(
            "The collection AlarmNames must not have more than 100 members.",
        ));
    }
    let mut txn = Txn::new();
    for name in &names {
        let arn = alarm_arn(ctx, name);
        crate::cloudwatch::authorize_on(ctx, "DeleteAlarms", &arn)?;
        let key = alarm_key(name);
        let found = ctx.get::<Alarm>(&key)?.ok_or_else(|| not_found(name))?;
        txn = txn.when(Compare::at(&key, found.mod_revision)).delete(&key);
    }
    if !names.is_empty() && !ctx.commit(txn).await?.succeeded {
        return Err(ApiError::new(
            "ResourceConflict",
            "An alarm changed while it was being deleted; try again.",
        ));
    }
    Ok(json!({}))
}

/// EnableAlarmActions / DisableAlarmActions: sets ActionsEnabled of the named alarms that
/// exist (AWS ignores the others).
pub async fn set_actions_enabled(
    ctx: &Ctx,
    op: &str,
    input: AlarmNamesInput,
    enabled: bool,
) -> Result<Value, ApiError> {
    let names = input.alarm_names.ok_or_else(|| missing("AlarmNames"))?;
    for name in names {
        let arn = alarm_arn(ctx, &name);
        crate::cloudwatch::authorize_on(ctx, op, &arn)?;
        update(ctx, &name, |alarm| {
            alarm.actions_enabled = enabled;
            Ok(())
        })
        .await
        .or_else(|e| {
            if e.name == "ResourceNotFound" {
                Ok(())
            } else {
                Err(e)
            }
        })?;
    }
    Ok(json!({}))
}

/// SetAlarmState's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SetAlarmStateInput {
    alarm_name: Option<String>,
    state_value: Option<String>,
    state_reason: Option<String>,
    state_reason_data: Option<String>,
}

/// SetAlarmState: sets the state until the next evaluation moves it, as AWS does (for
/// testing actions).
pub async fn set_alarm_state(ctx: &Ctx, input: SetAlarmStateInput) -> Result<Value, ApiError> {
    let name = check_name(input.alarm_name.as_deref(), "AlarmName")?;
    let state = input.state_value.ok_or_else(|| missing("StateValue"))?;
    if !STATES.contains(&state.as_str()) {
        return Err(invalid_value(format!(
            "The value {state} for parameter StateValue is not valid: use OK, ALARM or \
             INSUFFICIENT_DATA."
        )));
    }
    let reason = input.state_reason.ok_or_else(|| missing("StateReason"))?;
    if reason.chars().count() > 1023 {
        return Err(invalid_value(
            "The parameter StateReason must be at most 1023 characters long.",
        ));
    }
    if let Some(data) = &input.state_reason_data {
        if serde_json::from_str::<Value>(data).is_err() {
            return Err(ApiError::new(
                "InvalidFormat",
                "The parameter StateReasonData must be JSON.",
            ));
        }
    }
    let arn = alarm_arn(ctx, &name);
    crate::cloudwatch::authorize_on(ctx, "SetAlarmState", &arn)?;
    let now = ctx.now();
    update(ctx, &name, |alarm| {
        alarm.set_state(&state, reason.clone(), input.state_reason_data.clone(), now);
        alarm.held_until = Some(now + alarm.evaluation_interval());
        Ok(())
    })
    .await?;
    Ok(json!({}))
}
