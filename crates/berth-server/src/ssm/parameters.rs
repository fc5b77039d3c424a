//! Parameters and their values: PutParameter, GetParameter, GetParameters,
//! GetParametersByPath, DeleteParameter and DeleteParameters.

use super::{
    arn_of, authorize, authorized, error, find, parameter_key, parameter_not_found, select,
    split_selector, validate_name, validation, Parameter, ParameterVersion, Tag, DEFAULT_KEY_ID,
};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::vault::Sealed;
use berth_store::typed::encode;
use berth_store::{Compare, Txn};
use serde::{Deserialize, Serialize};

/// The parameter types.
const TYPES: [&str; 3] = ["String", "StringList", "SecureString"];

/// PutParameter's input.
// No Debug: it holds a value.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutParameterRequest {
    pub name: String,
    pub description: Option<String>,
    pub value: String,
    #[serde(rename = "Type")]
    pub kind: Option<String>,
    pub key_id: Option<String>,
    pub overwrite: Option<bool>,
    pub allowed_pattern: Option<String>,
    pub tags: Option<Vec<Tag>>,
    pub tier: Option<String>,
    pub data_type: Option<String>,
}

/// PutParameter's answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutParameterResponse {
    pub version: i64,
    pub tier: String,
}

/// Tags: at most 50, keys 1–128 and values up to 256 characters.
pub(super) fn validate_tags(tags: &[Tag]) -> Result<(), ApiError> {
    if tags.len() > 50 {
        return Err(error(
            "TooManyTagsError",
            "A parameter can have at most 50 tags.",
        ));
    }
    match tags
        .iter()
        .find(|t| t.key.is_empty() || t.key.chars().count() > 128 || t.value.chars().count() > 256)
    {
        Some(bad) => Err(validation(format!(
            "The tag key '{}' or its value is empty or too long.",
            bad.key
        ))),
        None => Ok(()),
    }
}

/// An `AllowedPattern` as a regular expression the whole value must match.
fn compile_pattern(pattern: &str) -> Result<regex_lite::Regex, ApiError> {
    regex_lite::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
        error(
            "InvalidAllowedPatternException",
            format!("The allowed pattern is not a valid regular expression: {e}"),
        )
    })
}

/// Refuses a value that does not match the parameter's `AllowedPattern` (the value itself is
/// not repeated: it may be a SecureString).
fn check_pattern(pattern: &str, value: &str) -> Result<(), ApiError> {
    if compile_pattern(pattern)?.is_match(value) {
        return Ok(());
    }
    Err(error(
        "ParameterPatternMismatchException",
        format!("Parameter value, cannot be validated against allowedPattern: {pattern}"),
    ))
}

/// PutParameter: creates a parameter (version 1), or with Overwrite adds its next version.
/// Settings not given on an overwrite (type, description, pattern, key) are kept.
pub async fn put(ctx: Ctx, input: PutParameterRequest) -> Result<PutParameterResponse, ApiError> {
    validate_name(&input.name)?;
    let overwrite = input.overwrite.unwrap_or(false);
    let tags = input.tags.unwrap_or_default();
    if overwrite && !tags.is_empty() {
        return Err(validation(
            "Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource.",
        ));
    }
    validate_tags(&tags)?;
    if let Some(kind) = &input.kind {
        if !TYPES.contains(&kind.as_str()) {
            return Err(validation(format!(
                "1 validation error detected: Value '{kind}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]"
            )));
        }
    }
    let tier = match input.tier.as_deref() {
        None | Some("Standard") | Some("Intelligent-Tiering") => "Standard",
        Some("Advanced") => "Advanced",
        Some(other) => {
            return Err(validation(format!(
                "Tier must be Standard, Advanced or Intelligent-Tiering, not '{other}'."
            )))
        }
    };
    let max_len = if tier == "Advanced" { 8192 } else { 4096 };
    if input.value.is_empty() || input.value.len() > max_len {
        return Err(validation(format!(
            "The parameter value must be 1 to {max_len} characters for the {tier} tier."
        )));
    }
    if input
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 1024)
    {
        return Err(validation(
            "The description must be at most 1024 characters.",
        ));
    }
    if input
        .allowed_pattern
        .as_ref()
        .is_some_and(|p| p.len() > 1024)
    {
        return Err(error(
            "InvalidAllowedPatternException",
            "The allowed pattern must be at most 1024 characters.",
        ));
    }
    if let Some(pattern) = &input.allowed_pattern {
        compile_pattern(pattern)?;
    }
    let data_type = input
        .data_type
        .clone()
        .unwrap_or_else(|| "text".to_string());
    if !["text", "aws:ec2:image", "aws:ssm:integration"].contains(&data_type.as_str()) {
        return Err(validation(format!(
            "The data type '{data_type}' is not supported: use text, aws:ec2:image or aws:ssm:integration."
        )));
    }
    let arn = arn_of(&ctx.app, &input.name);
    let mut keys: crate::authz::Keys = Vec::new();
    for tag in &tags {
        keys.push((format!("aws:RequestTag/{}", tag.key), tag.value.clone()));
        keys.push(("aws:TagKeys".into(), tag.key.clone()));
    }
    authorize(&ctx, "PutParameter", &arn, &keys)?;

    let key = parameter_key(&input.name);
    let now = ctx.now();
    loop {
        let current = ctx.get::<Parameter>(&key)?;
        let previous = current.as_ref().and_then(|c| c.value.latest().cloned());
        if previous.is_some() && !overwrite {
            return Err(error(
                "ParameterAlreadyExists",
                "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.",
            ));
        }
        let kind = match (&input.kind, &previous) {
            (Some(kind), _) => kind.clone(),
            (None, Some(previous)) => previous.kind.clone(),
            (None, None) => {
                return Err(validation(
                    "A parameter type is required when you create a parameter.",
                ))
            }
        };
        let key_id = (kind == "SecureString").then(|| {
            input
                .key_id
                .clone()
                .or_else(|| previous.as_ref().and_then(|p| p.key_id.clone()))
                .unwrap_or_else(|| DEFAULT_KEY_ID.to_string())
        });
        let settings = ParameterVersion {
            version: 0,
            kind,
            description: input
                .description
                .clone()
                .or_else(|| previous.as_ref().and_then(|p| p.description.clone())),
            allowed_pattern: input
                .allowed_pattern
                .clone()
                .or_else(|| previous.as_ref().and_then(|p| p.allowed_pattern.clone())),
            key_id,
            tier: tier.to_string(),
            data_type: data_type.clone(),
            last_modified_date: now,
            last_modified_user: ctx.caller.arn.clone(),
            labels: Vec::new(),
            sealed: Sealed {
                key_id: String::new(),
                wrapped_key: String::new(),
                nonce: String::new(),
                ciphertext: String::new(),
            },
        };
        if let Some(pattern) = &settings.allowed_pattern {
            check_pattern(pattern, &input.value)?;
        }
        let (mut parameter, guard) = match current {
            Some(c) => (c.value, Compare::at(&key, c.mod_revision)),
            None => (
                Parameter {
                    name: input.name.clone(),
                    arn: arn.clone(),
                    tags: tags.clone(),
                    versions: Vec::new(),
                },
                Compare::absent(&key),
            ),
        };
        let version = parameter.push_version(&ctx.vault, &input.value, settings)?;
        let txn = Txn::new().when(guard).put(&key, encode(&parameter));
        if ctx.commit(txn).await?.succeeded {
            return Ok(PutParameterResponse {
                version,
                tier: tier.to_string(),
            });
        }
    }
}

/// A parameter as GetParameter and its kin show it.
// No Debug: it may hold a value.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ParameterAnswer {
    pub name: String,
    #[serde(rename = "Type")]
    pub kind: String,
    pub value: String,
    pub version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    pub last_modified_date: f64,
    #[serde(rename = "ARN")]
    pub arn: String,
    pub data_type: String,
}

/// `reference` (a name or ARN, with an optional `:version` or `:label` selector) read as
/// GetParameter answers it.
fn read(
    ctx: &Ctx,
    action: &str,
    reference: &str,
    with_decryption: bool,
) -> Result<ParameterAnswer, ApiError> {
    let (name, selector) = split_selector(reference);
    let parameter = authorized(ctx, action, name)?
        .ok_or_else(|| parameter_not_found(name))?
        .value;
    let version = select(&parameter, selector)?;
    Ok(ParameterAnswer {
        name: parameter.name.clone(),
        kind: version.kind.clone(),
        value: parameter.shown(&ctx.vault, version, with_decryption)?,
        version: version.version,
        selector: selector.map(|s| format!(":{s}")),
        last_modified_date: version.last_modified_date,
        arn: parameter.arn.clone(),
        data_type: version.data_type.clone(),
    })
}

/// GetParameter's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetParameterRequest {
    pub name: String,
    pub with_decryption: Option<bool>,
}

/// GetParameter's answer.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetParameterResponse {
    pub parameter: ParameterAnswer,
}

/// GetParameter: one parameter's latest value, or the version its selector names. A
/// SecureString is shown decrypted only `WithDecryption`.
pub async fn get(ctx: Ctx, input: GetParameterRequest) -> Result<GetParameterResponse, ApiError> {
    let parameter = read(
        &ctx,
        "GetParameter",
        &input.name,
        input.with_decryption.unwrap_or(false),
    )?;
    Ok(GetParameterResponse { parameter })
}

/// GetParameters' input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetParametersRequest {
    pub names: Vec<String>,
    pub with_decryption: Option<bool>,
}

/// GetParameters' answer.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetParametersResponse {
    pub parameters: Vec<ParameterAnswer>,
    pub invalid_parameters: Vec<String>,
}

/// GetParameters: up to 10 parameters; the names that do not exist (or whose selector names
/// no version) come back in InvalidParameters.
pub async fn get_many(
    ctx: Ctx,
    input: GetParametersRequest,
) -> Result<GetParametersResponse, ApiError> {
    if input.names.is_empty() || input.names.len() > 10 {
        return Err(validation("Names must list 1 to 10 parameters."));
    }
    let mut answer = GetParametersResponse {
        parameters: Vec::new(),
        invalid_parameters: Vec::new(),
    };
    for name in &input.names {
        match read(
            &ctx,
            "GetParameters",
            name,
            input.with_decryption.unwrap_or(false),
        ) {
            Ok(parameter) => answer.parameters.push(parameter),
            Err(e) if matches!(e.name, "ParameterNotFound" | "ParameterVersionNotFound") => {
                answer.invalid_parameters.push(name.clone())
            }
            Err(e) => return Err(e),
        }
    }
    Ok(answer)
}

/// A ParameterStringFilter (DescribeParameters, GetParametersByPath).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ParameterStringFilter {
    pub key: String,
    pub option: Option<String>,
    pub values: Option<Vec<String>>,
}

/// GetParametersByPath's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetParametersByPathRequest {
    pub path: String,
    pub recursive: Option<bool>,
    #[serde(default)]
    pub parameter_filters: Vec<ParameterStringFilter>,
    pub with_decryption: Option<bool>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

/// GetParametersByPath's answer.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetParametersByPathResponse {
    pub parameters: Vec<ParameterAnswer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// Whether `name` lies under `path`: directly (one level), or at any depth when recursive.
pub(super) fn under_path(name: &str, path: &str, recursive: bool) -> bool {
    let prefix = if path.ends_with('/') {
        path.to_string()
    } else {
        format!("{path}/")
    };
    match name.strip_prefix(&prefix) {
        Some(rest) => !rest.is_empty() && (recursive || !rest.contains('/')),
        None => false,
    }
}

/// Whether the latest version of `parameter` passes a GetParametersByPath filter (`Type`,
/// `KeyId` or `Label`, option `Equals` or `BeginsWith`).
fn passes_by_path_filter(
    parameter: &Parameter,
    filter: &ParameterStringFilter,
) -> Result<bool, ApiError> {
    let Some(latest) = parameter.latest() else {
        return Ok(false);
    };
    let fields: Vec<&str> = match filter.key.as_str() {
        "Type" => vec![latest.kind.as_str()],
        "KeyId" => latest.key_id.iter().map(String::as_str).collect(),
        "Label" => parameter
            .versions
            .iter()
            .flat_map(|v| v.labels.iter().map(String::as_str))
            .collect(),
        other => {
            return Err(error(
                "InvalidFilterKey",
                format!("The filter key {other} is not valid for GetParametersByPath: use Type, KeyId or Label."),
            ))
        }
    };
    let values = filter.values.clone().unwrap_or_default();
    if values.is_empty() {
        return Err(error(
            "InvalidFilterValue",
            format!("The filter {} needs at least one value.", filter.key),
        ));
    }
    let begins = match filter.option.as_deref() {
        None | Some("Equals") => false,
        Some("BeginsWith") if filter.key != "Label" => true,
        Some(other) => {
            return Err(error(
                "InvalidFilterOption",
                format!("The filter option {other} is not valid for {}.", filter.key),
            ))
        }
    };
    Ok(values.iter().any(|v| {
        fields.iter().any(|f| {
            if begins {
                f.starts_with(v.as_str())
            } else {
                f == v
            }
        })
    }))
}

/// GetParametersByPath: the parameters under a path (its direct children, or all
/// descendants when Recursive), filtered, at most 10 a page, in name order.
pub async fn by_path(
    ctx: Ctx,
    input: GetParametersByPathRequest,
) -> Result<GetParametersByPathResponse, ApiError> {
    let path = input.path.as_str();
    let valid_path =
        path == "/" || (path.starts_with('/') && validate_name(path.trim_end_matches('/')).is_ok());
    if !valid_path {
        return Err(validation(format!(
            "The parameter path '{path}' is not valid: it must begin with / and be a valid hierarchy."
        )));
    }
    let page = super::history::page_of(input.next_token.as_deref(), input.max_results, 10)?;
    authorize(
        &ctx,
        "GetParametersByPath",
        &arn_of(&ctx.app, path),
        &Vec::new(),
    )?;
    let recursive = input.recursive.unwrap_or(false);
    let mut selected = Vec::new();
    for parameter in ctx.list::<Parameter>(super::PARAMETERS)? {
        let parameter = parameter.value;
        if !under_path(&parameter.name, path, recursive) {
            continue;
        }
        let mut keep = true;
        for filter in &input.parameter_filters {
            keep &= passes_by_path_filter(&parameter, filter)?;
        }
        if keep {
            selected.push(parameter);
        }
    }
    let (parameters, next_token) = page.page(selected, |p| p.name.clone());
    let with_decryption = input.with_decryption.unwrap_or(false);
    let parameters = parameters
        .iter()
        .filter_map(|p| p.latest().map(|v| (p, v)))
        .map(|(p, v)| {
            Ok(ParameterAnswer {
                name: p.name.clone(),
                kind: v.kind.clone(),
                value: p.shown(&ctx.vault, v, with_decryption)?,
                version: v.version,
                selector: None,
                last_modified_date: v.last_modified_date,
                arn: p.arn.clone(),
                data_type: v.data_type.clone(),
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(GetParametersByPathResponse {
        parameters,
        next_token,
    })
}

/// DeleteParameter's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteParameterRequest {
    pub name: String,
}

/// The empty answer.
#[derive(Debug, Serialize)]
pub struct Empty {}

/// Deletes the parameter `name` with all its versions; whether it existed.
async fn remove(ctx: &Ctx, action: &str, name: &str) -> Result<bool, ApiError> {
    let mut found = authorized(ctx, action, name)?;
    // Compare on revision, so a version put meanwhile is not lost unseen: read again, retry.
    while let Some(current) = found {
        let key = parameter_key(&current.value.name);
        let txn = Txn::new()
            .when(Compare::at(&key, current.mod_revision))
            .delete(&key);
        if ctx.commit(txn).await?.succeeded {
            return Ok(true);
        }
        found = find(&ctx.app, name)?;
    }
    Ok(false)
}

/// DeleteParameter: deletes a parameter and all its versions.
pub async fn delete(ctx: Ctx, input: DeleteParameterRequest) -> Result<Empty, ApiError> {
    if remove(&ctx, "DeleteParameter", &input.name).await? {
        Ok(Empty {})
    } else {
        Err(parameter_not_found(&input.name))
    }
}

/// DeleteParameters' input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteParametersRequest {
    pub names: Vec<String>,
}

/// DeleteParameters' answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteParametersResponse {
    pub deleted_parameters: Vec<String>,
    pub invalid_parameters: Vec<String>,
}

/// DeleteParameters: deletes up to 10 parameters; names that do not exist come back in
/// InvalidParameters.
pub async fn delete_many(
    ctx: Ctx,
    input: DeleteParametersRequest,
) -> Result<DeleteParametersResponse, ApiError> {
    if input.names.is_empty() || input.names.len() > 10 {
        return Err(validation("Names must list 1 to 10 parameters."));
    }
    let mut answer = DeleteParametersResponse {
        deleted_parameters: Vec::new(),
        invalid_parameters: Vec::new(),
    };
    for name in input.names {
        if remove(&ctx, "DeleteParameters", &name).await? {
            answer.deleted_parameters.push(name);
        } else {
            answer.invalid_parameters.push(name);
        }
    }
    Ok(answer)
}
