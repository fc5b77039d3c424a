//! Who is calling. Every AWS API request and every agent gateway call is signed with SigV4 by
//! an access key this server issued; [`authenticate`] checks the signature and names the
//! principal behind the key. Nothing but `/healthz` answers an unsigned request.
//!
//! On first start the server issues the account's root user an access key and writes it to
//! `DATA_DIR/credentials` (profile `berth`, mode 0600): that file is how a user, `berth up`'s
//! own agent and the test suites get their first keys.

pub mod keys;

use crate::app::App;
use crate::error::ApiError;
use berth_core::sigv4::{PathRules, Refusal, RequestParts, Signed};
use berth_store::typed::encode;
use berth_store::{keys as store_keys, Compare, Txn};
pub use keys::{AccessKey, KeyRing, KeyStatus, CREDENTIALS_FILE, PROFILE};
use std::path::PathBuf;

/// The principal a request was signed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `arn:aws:iam::{account}:root` or `arn:aws:iam::{account}:user/{name}`.
    pub arn: String,
    pub access_key_id: String,
    /// The IAM user; `None` for the account's root user.
    pub user_name: Option<String>,
}

impl Principal {
    /// Whether this is the account's root user (allowed everything, as in AWS).
    pub fn is_root(&self) -> bool {
        self.user_name.is_none()
    }
}

/// Checks the SigV4 signature of `request` for `service` at `now` (Unix seconds) and names
/// its principal, or refuses it with AWS's error.
pub fn authenticate(
    app: &App,
    request: &RequestParts<'_>,
    service: &str,
    now: u64,
) -> Result<Principal, ApiError> {
    let signed = Signed::parse(request).map_err(refusal)?;
    if signed.service != service {
        return Err(ApiError::new(
            "InvalidSignatureException",
            format!(
                "Credential should be scoped to correct service: '{service}'. Credential={}",
                signed.scope()
            ),
        ));
    }
    let key = app
        .get::<AccessKey>(&store_keys::access_key(&signed.access_key_id))?
        .map(|k| k.value)
        .filter(|k| k.status == KeyStatus::Active);
    let (Some(key), None) = (key, &signed.session_token) else {
        return Err(ApiError::new(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    };
    let secret = app.keys.secret_of(&key.access_key_id);
    signed
        .verify(request, &secret, now, PathRules::SERVICES)
        .map_err(refusal)?;
    let account = &app.config.account_id;
    Ok(Principal {
        arn: match &key.user_name {
            None => format!("arn:aws:iam::{account}:root"),
            Some(name) => format!("arn:aws:iam::{account}:user/{name}"),
        },
        access_key_id: key.access_key_id,
        user_name: key.user_name,
    })
}

/// The account's root user, for what the server does on its own behalf (`berth up` making
/// cluster `default`).
pub fn root_principal(app: &App) -> Result<Principal, ApiError> {
    let key = app
        .list::<AccessKey>(store_keys::ACCESS_KEYS)?
        .into_iter()
        .map(|k| k.value)
        .find(|k| k.user_name.is_none() && k.status == KeyStatus::Active)
        .ok_or_else(|| ApiError::server("the root user has no active access key"))?;
    Ok(Principal {
        arn: format!("arn:aws:iam::{}:root", app.config.account_id),
        access_key_id: key.access_key_id,
        user_name: None,
    })
}

fn refusal(refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::Missing => ApiError::new(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token: sign the request with SigV4 (the AWS CLI and SDKs do; \
             `berth up` prints the credentials to use).",
        ),
        Refusal::Incomplete(message) => ApiError::new("IncompleteSignatureException", message),
        Refusal::Invalid(message) => ApiError::new("InvalidSignatureException", message),
    }
}

/// Makes sure the account's root user has an active access key and, with a data dir, that
/// `DATA_DIR/credentials` holds it. Returns the file's path (`None` in memory).
pub async fn bootstrap(app: &App) -> Result<Option<PathBuf>, ApiError> {
    let root = match root_principal(app) {
        Ok(principal) => principal.access_key_id,
        Err(_) => {
            let id = keys::new_access_key_id().map_err(io_fault)?;
            let key = AccessKey {
                access_key_id: id.clone(),
                user_name: None,
                status: KeyStatus::Active,
                create_date: app.now(),
            };
            let store_key = store_keys::access_key(&id);
            let txn = Txn::new()
                .when(Compare::absent(&store_key))
                .put(&store_key, encode(&key));
            if !app.commit(txn).await?.succeeded {
                return Err(ApiError::server(format!("access key id {id} was taken")));
            }
            tracing::info!(access_key_id = %id, "issued the root user's access key");
            id
        }
    };
    let Some(dir) = &app.config.data_dir else {
        return Ok(None);
    };
    let path = dir.join(CREDENTIALS_FILE);
    let text = keys::credentials_file_text(&app.keys.credentials_of(&root));
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        keys::write_private(&path, text.as_bytes()).map_err(io_fault)?;
    }
    Ok(Some(path))
}

fn io_fault(e: std::io::Error) -> ApiError {
    ApiError::server(format!("credentials: {e}"))
}

#[cfg(test)]
mod tests;
