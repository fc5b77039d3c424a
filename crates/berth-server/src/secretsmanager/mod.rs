//! Secrets Manager on the endpoint (AWS JSON 1.1, target prefix `secretsmanager`): secrets
//! and their versions, whose values are sealed by the [vault](crate::vault) before they are
//! stored. One file per resource area; each handler reads like that operation's documentation.

mod random_password;
mod secrets;
mod tags;
mod values;

pub mod resolve;

use crate::authz::Keys;
use crate::dispatch::{call, Ctx};
use crate::error::ApiError;
use crate::vault::rotation::{vault_fault, SealedRecord};
use crate::vault::Sealed;
use berth_store::typed::Versioned;
use serde::{Deserialize, Serialize};

/// Prefix of all secrets in the store, keyed by name.
pub const SECRETS: &str = "/secretsmanager/secrets/";

/// The staging label of a secret's current version.
pub const AWSCURRENT: &str = "AWSCURRENT";
/// The staging label of the version that was current before.
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";

/// How many versions a secret keeps; the oldest without a staging label go first.
const MAX_VERSIONS: usize = 100;

/// `/secretsmanager/secrets/{name}`
pub fn secret_key(name: &str) -> String {
    format!("{SECRETS}{name}")
}

/// A secret as stored: its metadata and its versions, whose values are sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    pub name: String,
    pub arn: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    pub created_date: f64,
    pub last_changed_date: f64,
    /// When DeleteSecret scheduled the secret for deletion.
    #[serde(default)]
    pub deleted_date: Option<f64>,
    /// When a scheduled deletion takes effect: from then on the secret no longer exists.
    #[serde(default)]
    pub deletion_date: Option<f64>,
    #[serde(default)]
    pub versions: Vec<SecretVersion>,
}

/// One version of a secret's value.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretVersion {
    pub version_id: String,
    /// Staging labels (`AWSCURRENT`, `AWSPREVIOUS`, custom ones).
    pub stages: Vec<String>,
    pub created_date: f64,
    /// Whether the value is `SecretBinary` (else `SecretString`).
    pub binary: bool,
    pub sealed: Sealed,
}

/// A tag as Secrets Manager spells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// A secret's value, as given or as read.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretValue {
    String(String),
    Binary(Vec<u8>),
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(<hidden>)")
    }
}

impl SecretValue {
    fn bytes(&self) -> &[u8] {
        match self {
            SecretValue::String(s) => s.as_bytes(),
            SecretValue::Binary(b) => b,
        }
    }
}

/// The associated data a version's value is sealed for: its secret's ARN and its id.
fn aad(arn: &str, version_id: &str) -> Vec<u8> {
    format!("secretsmanager\0{arn}\0{version_id}").into_bytes()
}

impl SealedRecord for Secret {
    fn sealed_values(&mut self) -> Vec<(&mut Sealed, Vec<u8>)> {
        let arn = self.arn.clone();
        self.versions
            .iter_mut()
            .map(|v| {
                let aad = aad(&arn, &v.version_id);
                (&mut v.sealed, aad)
            })
            .collect()
    }
}

impl Secret {
    /// Whether DeleteSecret has scheduled it for deletion.
    pub fn is_deleted(&self) -> bool {
        self.deleted_date.is_some()
    }

    /// The version with id `version_id`.
    fn version(&self, version_id: &str) -> Option<&SecretVersion> {
        self.versions.iter().find(|v| v.version_id == version_id)
    }

    /// The version labelled `stage`.
    fn staged(&self, stage: &str) -> Option<&SecretVersion> {
        self.versions
            .iter()
            .find(|v| v.stages.iter().any(|s| s == stage))
    }

    /// The value of `version`, opened by the vault.
    pub fn open(
        &self,
        vault: &crate::vault::Vault,
        version: &SecretVersion,
    ) -> Result<SecretValue, ApiError> {
        let bytes = vault
            .unseal(&version.sealed, &aad(&self.arn, &version.version_id))
            .map_err(|e| {
                tracing::error!(secret = %self.arn, error = %e, "a secret version does not decrypt");
                ApiError::new(
                    "DecryptionFailure",
                    format!("Secrets Manager can't decrypt the protected secret text: {e}"),
                )
            })?;
        if version.binary {
            Ok(SecretValue::Binary(bytes))
        } else {
            String::from_utf8(bytes)
                .map(SecretValue::String)
                .map_err(|_| ApiError::server("a stored secret string is not UTF-8"))
        }
    }

    /// The version a GetSecretValue-style request selects: by id and/or stage, AWSCURRENT by
    /// default.
    pub fn select(
        &self,
        version_id: Option<&str>,
        stage: Option<&str>,
    ) -> Result<&SecretVersion, ApiError> {
        let version = match (version_id, stage) {
            (Some(id), stage) => self
                .version(id)
                .filter(|v| stage.is_none_or(|stage| v.stages.iter().any(|s| s == stage))),
            (None, stage) => self.staged(stage.unwrap_or(AWSCURRENT)),
        };
        version.ok_or_else(|| {
            let what = match (version_id, stage) {
                (Some(id), _) => format!("VersionId: {id}"),
                (None, stage) => format!("staging label: {}", stage.unwrap_or(AWSCURRENT)),
            };
            ApiError::new(
                "ResourceNotFoundException",
                format!("Secrets Manager can't find the specified secret value for {what}"),
            )
        })
    }

    /// Seals `value` as a new version `version_id` labelled `stages`: a version that takes
    /// AWSCURRENT leaves AWSPREVIOUS on the one that held it; every other label moves.
    fn add_version(
        &mut self,
        vault: &crate::vault::Vault,
        version_id: &str,
        value: &SecretValue,
        stages: Vec<String>,
        now: f64,
    ) -> Result<(), ApiError> {
        let sealed = vault
            .seal(value.bytes(), &aad(&self.arn, version_id))
            .map_err(vault_fault)?;
        let takes_current = stages.iter().any(|s| s == AWSCURRENT);
        for version in &mut self.versions {
            let was_current = version.stages.iter().any(|s| s == AWSCURRENT);
            version.stages.retain(|s| !stages.contains(s));
            if takes_current {
                version.stages.retain(|s| s != AWSPREVIOUS);
                if was_current {
                    version.stages.push(AWSPREVIOUS.to_string());
                }
            }
        }
        self.versions.push(SecretVersion {
            version_id: version_id.to_string(),
            stages,
            created_date: now,
            binary: matches!(value, SecretValue::Binary(_)),
            sealed,
        });
        while self.versions.len() > MAX_VERSIONS {
            match self.versions.iter().position(|v| v.stages.is_empty()) {
                Some(oldest) => self.versions.remove(oldest),
                None => break,
            };
        }
        self.last_changed_date = now;
        Ok(())
    }

    /// `VersionIdsToStages` / `SecretVersionsToStages`: the labelled versions.
    fn versions_to_stages(&self) -> std::collections::BTreeMap<String, Vec<String>> {
        self.versions
            .iter()
            .filter(|v| !v.stages.is_empty())
            .map(|v| (v.version_id.clone(), v.stages.clone()))
            .collect()
    }

    /// The `aws:ResourceTag/...` condition keys of the secret.
    fn resource_keys(&self) -> Keys {
        self.tags
            .iter()
            .map(|t| (format!("aws:ResourceTag/{}", t.key), t.value.clone()))
            .collect()
    }
}

/// The secret's error when it cannot be found.
pub fn not_found() -> ApiError {
    ApiError::new(
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
    )
}

/// The error of an operation on a secret scheduled for deletion.
pub fn marked_for_deletion() -> ApiError {
    ApiError::new(
        "InvalidRequestException",
        "You can't perform this operation on the secret because it was marked for deletion.",
    )
}

/// An invalid parameter, as Secrets Manager names it.
fn invalid_parameter(message: impl Into<String>) -> ApiError {
    ApiError::new("InvalidParameterException", message)
}

/// The secret `secret_id` names — a name, a full ARN, or an ARN without its random suffix —
/// as stored (a secret past its deletion date no longer exists), with the ARN to authorise
/// against (the secret's, or the one it would have).
pub fn find(app: &crate::app::App, secret_id: &str, now: f64) -> Result<Found, ApiError> {
    if secret_id.is_empty() {
        return Err(invalid_parameter("You must specify a SecretId."));
    }
    let live = |name: &str| -> Result<Option<Versioned<Secret>>, ApiError> {
        Ok(app
            .get::<Secret>(&secret_key(name))?
            .filter(|s| s.value.deletion_date.is_none_or(|d| d > now)))
    };
    let secret = match secret_id.split_once(":secret:") {
        Some((_, rest)) if secret_id.starts_with("arn:") => {
            // A full ARN: the name is what precedes the `-XXXXXX` suffix.
            let full = match rest.len().checked_sub(7) {
                Some(cut) if rest.is_char_boundary(cut) && rest[cut..].starts_with('-') => {
                    live(&rest[..cut])?.filter(|s| s.value.arn == secret_id)
                }
                _ => None,
            };
            match full {
                Some(secret) => Some(secret),
                // A partial ARN: the whole rest is the name.
                None => live(rest)?.filter(|s| {
                    s.value.arn.len() == secret_id.len() + 7 && s.value.arn.starts_with(secret_id)
                }),
            }
        }
        _ => live(secret_id)?,
    };
    let arn = match &secret {
        Some(s) => s.value.arn.clone(),
        None if secret_id.starts_with("arn:") => secret_id.to_string(),
        None => format!(
            "arn:aws:secretsmanager:{}:{}:secret:{secret_id}",
            app.arns.region, app.arns.account_id
        ),
    };
    Ok(Found { secret, arn })
}

/// What [`find`] found.
#[derive(Debug)]
pub struct Found {
    pub secret: Option<Versioned<Secret>>,
    /// The ARN to authorise against.
    pub arn: String,
}

/// Authorises `secretsmanager:{action}` on the secret `secret_id` names and returns it;
/// `ResourceNotFoundException` when it does not exist (after authorisation, as AWS does).
fn authorized(ctx: &Ctx, action: &str, secret_id: &str) -> Result<Versioned<Secret>, ApiError> {
    let found = find(&ctx.app, secret_id, ctx.now())?;
    let keys = found
        .secret
        .as_ref()
        .map(|s| s.value.resource_keys())
        .unwrap_or_default();
    authorize(ctx, action, &found.arn, &keys)?;
    found.secret.ok_or_else(not_found)
}

/// `secretsmanager:{action}` on `resource`, or AccessDeniedException.
fn authorize(ctx: &Ctx, action: &str, resource: &str, keys: &Keys) -> Result<(), ApiError> {
    crate::authz::authorize_as(
        ctx,
        &format!("secretsmanager:{action}"),
        resource,
        keys,
        "AccessDeniedException",
    )
}

/// The paging of Secrets Manager's lists: MaxResults 1 to `max`, InvalidNextTokenException.
fn page_of(
    next_token: Option<&str>,
    max_results: Option<i64>,
    max: usize,
) -> Result<berth_core::pagination::PageRequest, ApiError> {
    use berth_core::pagination::{PageError, PageRequest};
    PageRequest::parse(next_token, max_results, max).map_err(|e| match e {
        PageError::Token => ApiError::new("InvalidNextTokenException", e.to_string()),
        other => invalid_parameter(other.to_string()),
    })
}

/// Runs Secrets Manager operation `op` on the JSON `body`; returns the JSON answer.
pub async fn dispatch(ctx: Ctx, op: &str, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    match op {
        "CreateSecret" => call(ctx, body, secrets::create).await,
        "DescribeSecret" => call(ctx, body, secrets::describe).await,
        "ListSecrets" => call(ctx, body, secrets::list).await,
        "UpdateSecret" => call(ctx, body, secrets::update).await,
        "DeleteSecret" => call(ctx, body, secrets::delete).await,
        "RestoreSecret" => call(ctx, body, secrets::restore).await,
        "GetSecretValue" => call(ctx, body, values::get).await,
        "BatchGetSecretValue" => call(ctx, body, values::batch_get).await,
        "PutSecretValue" => call(ctx, body, values::put).await,
        "ListSecretVersionIds" => call(ctx, body, values::list_version_ids).await,
        "UpdateSecretVersionStage" => call(ctx, body, values::update_stage).await,
        "GetRandomPassword" => call(ctx, body, random_password::get_random_password).await,
        "TagResource" => call(ctx, body, tags::tag).await,
        "UntagResource" => call(ctx, body, tags::untag).await,
        other => Err(ApiError::new(
            "UnknownOperationException",
            format!("'{other}' is not an operation of secretsmanager, or Berth does not support it yet."),
        )),
    }
}

#[cfg(test)]
mod tests;
