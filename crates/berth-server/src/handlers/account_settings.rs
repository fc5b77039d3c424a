//! Account settings: PutAccountSetting, PutAccountSettingDefault, ListAccountSettings and
//! DeleteAccountSetting. A principal's own setting wins over the account default, which wins
//! over the AWS-managed default. Without `principalArn` a request is about the caller's own
//! settings.

use crate::dispatch::Ctx;
use crate::error::ApiError;
use berth_core::model::settings::{
    default_value, validate_name, validate_value, Setting, SETTINGS,
};
use berth_core::pagination::PageRequest;
use berth_store::{keys, Compare, Txn};
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// Input of PutAccountSetting.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutAccountSettingRequest {
    name: String,
    value: String,
    principal_arn: Option<String>,
}

/// Input of PutAccountSettingDefault.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutAccountSettingDefaultRequest {
    name: String,
    value: String,
}

/// Input of DeleteAccountSetting.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteAccountSettingRequest {
    name: String,
    principal_arn: Option<String>,
}

/// Input of ListAccountSettings.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListAccountSettingsRequest {
    name: Option<String>,
    value: Option<String>,
    principal_arn: Option<String>,
    #[serde(default)]
    effective_settings: bool,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// Output of the operations that return one setting.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingResponse {
    setting: Setting,
}

/// Output of ListAccountSettings.
#[skip_serializing_none]
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListAccountSettingsResponse {
    settings: Vec<Setting>,
    next_token: Option<String>,
}

/// The principal that account defaults are stored under.
const ACCOUNT_DEFAULT: &str = "default";

fn root_arn(ctx: &Ctx) -> String {
    format!("arn:aws:iam::{}:root", ctx.arns.account_id)
}

/// The principal a request acts for: the one it names, else the caller.
fn principal(ctx: &Ctx, principal_arn: Option<&str>) -> Result<String, ApiError> {
    match principal_arn {
        None => Ok(ctx.caller.arn.clone()),
        Some(arn) => {
            let valid = arn.starts_with("arn:aws:iam::")
                && arn.split(':').nth(5).is_some_and(|r| {
                    r == "root" || r.starts_with("user/") || r.starts_with("role/")
                });
            if valid {
                Ok(arn.to_string())
            } else {
                Err(ApiError::invalid_parameter(format!(
                    "principalArn '{arn}' is not the ARN of an IAM user, role or root user."
                )))
            }
        }
    }
}

/// Principals become one path segment of a key: `/` and `%` are escaped.
fn principal_segment(principal: &str) -> String {
    principal.replace('%', "%25").replace('/', "%2F")
}

fn setting_key(principal: &str, name: &str) -> String {
    keys::account_setting(&principal_segment(principal), name)
}

async fn store_setting(
    ctx: &Ctx,
    key_principal: &str,
    setting: Setting,
) -> Result<Setting, ApiError> {
    let name = setting.name.clone().unwrap_or_default();
    let txn = Txn::new().put(
        setting_key(key_principal, &name),
        berth_store::typed::encode(&setting),
    );
    ctx.commit(txn).await?;
    Ok(setting)
}

/// Sets a setting for a principal (the caller by default).
pub async fn put(ctx: Ctx, req: PutAccountSettingRequest) -> Result<SettingResponse, ApiError> {
    validate_value(&req.name, &req.value).map_err(ApiError::invalid_parameter)?;
    let principal = principal(&ctx, req.principal_arn.as_deref())?;
    let setting = Setting {
        name: Some(req.name),
        value: Some(req.value),
        principal_arn: Some(principal.clone()),
        type_: Some("user".into()),
    };
    Ok(SettingResponse {
        setting: store_setting(&ctx, &principal, setting).await?,
    })
}

/// Sets the account-wide default of a setting, for principals that set none of their own.
pub async fn put_default(
    ctx: Ctx,
    req: PutAccountSettingDefaultRequest,
) -> Result<SettingResponse, ApiError> {
    validate_value(&req.name, &req.value).map_err(ApiError::invalid_parameter)?;
    let setting = Setting {
        name: Some(req.name),
        value: Some(req.value),
        principal_arn: Some(root_arn(&ctx)),
        type_: Some("user".into()),
    };
    Ok(SettingResponse {
        setting: store_setting(&ctx, ACCOUNT_DEFAULT, setting).await?,
    })
}

/// Removes a principal's own setting; the account default applies again.
pub async fn delete(
    ctx: Ctx,
    req: DeleteAccountSettingRequest,
) -> Result<SettingResponse, ApiError> {
    validate_name(&req.name).map_err(ApiError::invalid_parameter)?;
    let principal = principal(&ctx, req.principal_arn.as_deref())?;
    let key = setting_key(&principal, &req.name);
    let Some(current) = ctx.get::<Setting>(&key)? else {
        return Err(ApiError::invalid_parameter(format!(
            "No {} setting is set for principal {principal}.",
            req.name
        )));
    };
    let txn = Txn::new()
        .when(Compare::at(&key, current.mod_revision))
        .delete(&key);
    if !ctx.commit(txn).await?.succeeded {
        return Err(ApiError::client(format!(
            "The {} setting changed while it was being deleted: try again.",
            req.name
        )));
    }
    Ok(SettingResponse {
        setting: current.value,
    })
}

/// The setting `name` in force for `principal`, and whether it came from the principal itself.
fn effective(ctx: &Ctx, principal: &str, name: &str) -> Result<Setting, ApiError> {
    if let Some(own) = ctx.get::<Setting>(&setting_key(principal, name))? {
        return Ok(own.value);
    }
    if let Some(default) = ctx.get::<Setting>(&setting_key(ACCOUNT_DEFAULT, name))? {
        return Ok(Setting {
            principal_arn: Some(principal.to_string()),
            ..default.value
        });
    }
    Ok(Setting {
        name: Some(name.to_string()),
        value: default_value(name).map(str::to_string),
        principal_arn: Some(principal.to_string()),
        type_: Some("aws_managed".into()),
    })
}

/// Lists settings: the principal's own ones, or with `effectiveSettings` every setting as it
/// applies to the principal.
pub async fn list(
    ctx: Ctx,
    req: ListAccountSettingsRequest,
) -> Result<ListAccountSettingsResponse, ApiError> {
    if let Some(name) = &req.name {
        validate_name(name).map_err(ApiError::invalid_parameter)?;
    }
    if req.value.is_some() && req.name.is_none() {
        return Err(ApiError::invalid_parameter(
            "value can only be used together with name.",
        ));
    }
    let page = PageRequest::parse(req.next_token.as_deref(), req.max_results, 10)?;
    let principal = principal(&ctx, req.principal_arn.as_deref())?;
    let names: Vec<&str> = match &req.name {
        Some(name) => vec![name.as_str()],
        None => SETTINGS.iter().map(|(n, _, _)| *n).collect(),
    };
    let mut settings = Vec::new();
    for name in names {
        let setting = if req.effective_settings {
            Some(effective(&ctx, &principal, name)?)
        } else {
            ctx.get::<Setting>(&setting_key(&principal, name))?
                .map(|s| s.value)
        };
        settings.extend(setting.filter(|s| req.value.is_none() || s.value == req.value));
    }
    settings.sort_by(|a, b| a.name.cmp(&b.name));
    let (settings, next_token) = page.page(settings, |s| s.name.clone().unwrap_or_default());
    Ok(ListAccountSettingsResponse {
        settings,
        next_token,
    })
}
