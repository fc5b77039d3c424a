//! SSM Parameter Store on the endpoint (AWS JSON 1.1, target prefix `AmazonSSM`):
//! parameters and their versions. Every value is sealed by the [vault](crate::vault) before
//! it is stored; a SecureString's value leaves the server only to a caller that asks
//! `WithDecryption`. One file per resource area.

mod describe;
mod history;
mod labels;
mod parameters;
mod tags;

use crate::authz::Keys;
use crate::dispatch::call;
use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::vault::rotation::{vault_fault, SealedRecord};
use crate::vault::{Sealed, Vault};
use berth_store::typed::Versioned;
use serde::{Deserialize, Serialize};

/// Prefix of all parameters in the store, keyed by name.
pub const PARAMETERS: &str = "/ssm/parameters/";

/// The KMS key AWS names for SecureStrings sealed with the account's default key.
pub const DEFAULT_KEY_ID: &str = "alias/aws/ssm";

/// How many versions a parameter keeps (the oldest goes first).
const MAX_VERSIONS: usize = 100;
/// Deepest hierarchy a parameter name may have.
const MAX_LEVELS: usize = 15;

/// `/ssm/parameters/{name}`
pub fn parameter_key(name: &str) -> String {
    format!("{PARAMETERS}{name}")
}

/// A parameter as stored: its tags and its versions, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parameter {
    pub name: String,
    pub arn: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
    pub versions: Vec<ParameterVersion>,
}

/// One version of a parameter: its value (sealed) and the settings it was put with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParameterVersion {
    pub version: i64,
    /// `String`, `StringList` or `SecureString`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub allowed_pattern: Option<String>,
    #[serde(default)]
    pub key_id: Option<String>,
    pub tier: String,
    pub data_type: String,
    pub last_modified_date: f64,
    pub last_modified_user: String,
    #[serde(default)]
    pub labels: Vec<String>,
    pub sealed: Sealed,
}

/// A tag as SSM spells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// The associated data a version's value is sealed for: its parameter's ARN and version.
fn aad(arn: &str, version: i64) -> Vec<u8> {
    format!("ssm\0{arn}\0{version}").into_bytes()
}

impl SealedRecord for Parameter {
    fn sealed_values(&mut self) -> Vec<(&mut Sealed, Vec<u8>)> {
        let arn = self.arn.clone();
        self.versions
            .iter_mut()
            .map(|v| {
                let aad = aad(&arn, v.version);
                (&mut v.sealed, aad)
            })
            .collect()
    }
}

impl Parameter {
    /// The latest version.
    pub fn latest(&self) -> Option<&ParameterVersion> {
        self.versions.last()
    }

    /// The plaintext of `version`, opened by the vault.
    pub fn plaintext(&self, vault: &Vault, version: &ParameterVersion) -> Result<String, ApiError> {
        let bytes = vault
            .unseal(&version.sealed, &aad(&self.arn, version.version))
            .map_err(vault_fault)?;
        String::from_utf8(bytes).map_err(|_| ApiError::server("a stored parameter is not UTF-8"))
    }

    /// The value of `version` as the caller may see it: a SecureString without
    /// `WithDecryption` shows an opaque ciphertext, never its plaintext.
    pub fn shown(
        &self,
        vault: &Vault,
        version: &ParameterVersion,
        with_decryption: bool,
    ) -> Result<String, ApiError> {
        if version.kind == "SecureString" && !with_decryption {
            Ok(version.sealed.opaque())
        } else {
            self.plaintext(vault, version)
        }
    }

    /// Seals `value` as the next version.
    fn push_version(
        &mut self,
        vault: &Vault,
        value: &str,
        mut settings: ParameterVersion,
    ) -> Result<i64, ApiError> {
        let version = self.latest().map_or(1, |v| v.version + 1);
        settings.version = version;
        settings.sealed = vault
            .seal(value.as_bytes(), &aad(&self.arn, version))
            .map_err(vault_fault)?;
        self.versions.push(settings);
        while self.versions.len() > MAX_VERSIONS {
            self.versions.remove(0);
        }
        Ok(version)
    }

    /// The `aws:ResourceTag/...` condition keys of the parameter.
    fn resource_keys(&self) -> Keys {
        self.tags
            .iter()
            .map(|t| (format!("aws:ResourceTag/{}", t.key), t.value.clone()))
            .collect()
    }
}

/// An error as SSM names it (`ValidationException`, `ParameterNotFound`, ...).
fn error(name: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(name, message)
}

fn validation(message: impl Into<String>) -> ApiError {
    error("ValidationException", message)
}

/// The error of a parameter that does not exist.
pub fn parameter_not_found(name: &str) -> ApiError {
    error("ParameterNotFound", format!("Parameter {name} not found."))
}

/// Checks a parameter name: 1 to 2048 of letters, digits and `_.-/`; a name with a `/` is a
/// path that starts with `/`, has no empty level and at most 15 levels; none begins with
/// `aws` or `ssm`.
pub fn validate_name(name: &str) -> Result<(), ApiError> {
    let bare = name.trim_start_matches('/').to_lowercase();
    let valid = !name.is_empty()
        && name.len() <= 2048
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c))
        && (!name.contains('/')
            || (name.starts_with('/') && !name.ends_with('/') && !name.contains("//")))
        && !bare.starts_with("aws")
        && !bare.starts_with("ssm");
    if !valid {
        return Err(validation(format!(
            "Parameter name '{name}' is not valid: it can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). If formed as a path, it must begin with / and consist of sub-paths divided by /; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_"
        )));
    }
    if name.matches('/').count() > MAX_LEVELS {
        return Err(error(
            "HierarchyLevelLimitExceededException",
            format!("A hierarchy can have a maximum of {MAX_LEVELS} levels: '{name}' has more."),
        ));
    }
    Ok(())
}

/// The ARN of parameter (or path) `name`: `arn:aws:ssm:{region}:{account}:parameter/{name
/// without its leading slash}`.
pub fn arn_of(app: &crate::app::App, name: &str) -> String {
    format!(
        "arn:aws:ssm:{}:{}:parameter/{}",
        app.arns.region,
        app.arns.account_id,
        name.trim_start_matches('/')
    )
}

/// The parameter `reference` names (a name or an ARN, with no selector), if it exists.
pub fn find(
    app: &crate::app::App,
    reference: &str,
) -> Result<Option<Versioned<Parameter>>, ApiError> {
    let Some((_, path)) = reference
        .strip_prefix("arn:")
        .and_then(|_| reference.split_once(":parameter/"))
    else {
        return app.get::<Parameter>(&parameter_key(reference));
    };
    // An ARN drops the leading slash of a path: `parameter/a/b` is `/a/b`, while
    // `parameter/x` is `x` or `/x`.
    let candidates = if path.contains('/') {
        vec![format!("/{path}")]
    } else {
        vec![path.to_string(), format!("/{path}")]
    };
    for name in candidates {
        if let Some(found) = app.get::<Parameter>(&parameter_key(&name))? {
            if found.value.arn == reference {
                return Ok(Some(found));
            }
        }
    }
    Ok(None)
}

/// A reference with an optional `:version` or `:label` selector, split.
pub fn split_selector(reference: &str) -> (&str, Option<&str>) {
    // ARNs have colons of their own: the selector is only after the name part.
    let name_start = reference.find(":parameter/").map_or(0, |i| i + 1);
    match reference[name_start..].rfind(':') {
        Some(i) => (
            &reference[..name_start + i],
            Some(&reference[name_start + i + 1..]),
        ),
        None => (reference, None),
    }
}

/// The version of `parameter` a selector names (the latest without one).
pub fn select<'a>(
    parameter: &'a Parameter,
    selector: Option<&str>,
) -> Result<&'a ParameterVersion, ApiError> {
    let not_found = |what: &str| {
        error(
            "ParameterVersionNotFound",
            format!(
                "Systems Manager could not find version {what} of {}. Verify the version and try again.",
                parameter.name
            ),
        )
    };
    match selector {
        None => parameter
            .latest()
            .ok_or_else(|| parameter_not_found(&parameter.name)),
        Some(s) => match s.parse::<i64>() {
            Ok(n) => parameter
                .versions
                .iter()
                .find(|v| v.version == n)
                .ok_or_else(|| not_found(s)),
            Err(_) => parameter
                .versions
                .iter()
                .find(|v| v.labels.iter().any(|l| l == s))
                .ok_or_else(|| not_found(s)),
        },
    }
}

/// `ssm:{action}` on `resource`, or AccessDeniedException.
fn authorize(ctx: &Ctx, action: &str, resource: &str, keys: &Keys) -> Result<(), ApiError> {
    crate::authz::authorize_as(
        ctx,
        &format!("ssm:{action}"),
        resource,
        keys,
        "AccessDeniedException",
    )
}

/// Authorises `ssm:{action}` on the parameter `reference` names (no selector); returns it if
/// it exists.
fn authorized(
    ctx: &Ctx,
    action: &str,
    reference: &str,
) -> Result<Option<Versioned<Parameter>>, ApiError> {
    let found = find(&ctx.app, reference)?;
    let (arn, keys) = match &found {
        Some(p) => (p.value.arn.clone(), p.value.resource_keys()),
        None if reference.starts_with("arn:") => (reference.to_string(), Keys::new()),
        None => (arn_of(&ctx.app, reference), Keys::new()),
    };
    authorize(ctx, action, &arn, &keys)?;
    Ok(found)
}

/// Runs SSM operation `op` on the JSON `body`; returns the JSON answer.
pub async fn dispatch(ctx: Ctx, op: &str, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    match op {
        "PutParameter" => call(ctx, body, parameters::put).await,
        "GetParameter" => call(ctx, body, parameters::get).await,
        "GetParameters" => call(ctx, body, parameters::get_many).await,
        "GetParametersByPath" => call(ctx, body, parameters::by_path).await,
        "DeleteParameter" => call(ctx, body, parameters::delete).await,
        "DeleteParameters" => call(ctx, body, parameters::delete_many).await,
        "DescribeParameters" => call(ctx, body, describe::describe).await,
        "GetParameterHistory" => call(ctx, body, history::history).await,
        "LabelParameterVersion" => call(ctx, body, labels::label).await,
        "UnlabelParameterVersion" => call(ctx, body, labels::unlabel).await,
        "AddTagsToResource" => call(ctx, body, tags::add).await,
        "RemoveTagsFromResource" => call(ctx, body, tags::remove).await,
        "ListTagsForResource" => call(ctx, body, tags::list).await,
        other => Err(ApiError::new(
            "UnknownOperationException",
            format!(
                "'{other}' is not an operation of AmazonSSM, or Berth does not support it yet."
            ),
        )),
    }
}

#[cfg(test)]
mod tests;
