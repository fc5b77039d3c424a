//! Who is calling. Every AWS API request and every agent gateway call is signed with SigV4 by
//! an access key this server issued; [`authenticate`] checks the signature and names the
//! principal behind the key. Nothing but `/healthz` answers an unsigned request.
//!
//! On first start the server issues the account's root user an access key and writes it to
//! `DATA_DIR/credentials` (profile `berth`, mode 0600): that file is how a user, `berth up`'s
//! own agent and the test suites get their first keys.

pub mod instances;
pub mod keys;
pub mod session;

use crate::app::App;
use crate::error::ApiError;
use berth_core::model::iam::{Role, User};
use berth_core::sigv4::{PathRules, Refusal, RequestParts, Signed};
use berth_store::typed::encode;
use berth_store::{keys as store_keys, Compare, Txn};
pub use keys::{AccessKey, KeyRing, KeyStatus, CREDENTIALS_FILE, PROFILE};
use std::path::PathBuf;

/// The principal a request was signed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `arn:aws:iam::{account}:root`, `arn:aws:iam::{account}:user/{name}` or
    /// `arn:aws:sts::{account}:assumed-role/{role}/{session}`.
    pub arn: String,
    pub access_key_id: String,
    pub identity: Identity,
    /// Whether the request came over TLS (`aws:SecureTransport`).
    pub secure_transport: bool,
    /// The `Host` the request was sent to: where the caller reaches this server.
    pub host: Option<String>,
}

/// Who a principal is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// The account's root user: allowed everything, as in AWS.
    Root,
    /// An IAM user.
    User { name: String, id: String },
    /// A session of a role, from AssumeRole.
    AssumedRole {
        role: String,
        role_id: String,
        session: String,
    },
}

impl Principal {
    /// Whether this is the account's root user.
    pub fn is_root(&self) -> bool {
        self.identity == Identity::Root
    }

    /// What stays the same for this principal and no other, ever: the user's or role's unique
    /// id (a user made again under the same name is another principal), or the account's for
    /// root. Sessions of one role share it.
    pub fn unique_id(&self, account_id: &str) -> String {
        match &self.identity {
            Identity::Root => format!("root:{account_id}"),
            Identity::User { id, .. } => id.clone(),
            Identity::AssumedRole { role_id, .. } => role_id.clone(),
        }
    }

    /// `aws:userid`: the account id for root, the user id, or `roleId:session`.
    pub fn user_id(&self, account_id: &str) -> String {
        match &self.identity {
            Identity::Root => account_id.to_string(),
            Identity::User { id, .. } => id.clone(),
            Identity::AssumedRole {
                role_id, session, ..
            } => format!("{role_id}:{session}"),
        }
    }
}

/// Checks the SigV4 signature of `request` at `now` (Unix seconds) and names its principal,
/// or refuses it with AWS's error. Returns the service the signature is scoped to, which the
/// router holds the request to.
pub fn authenticate(
    app: &App,
    request: &RequestParts<'_>,
    now: u64,
) -> Result<(Principal, String), ApiError> {
    let signed = Signed::parse(request).map_err(refusal)?;
    let invalid_token = || {
        ApiError::new(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    };
    let account = &app.config.account_id;
    let (principal, secret) = match &signed.session_token {
        None => {
            let principal =
                principal_of_access_key(app, &signed.access_key_id)?.ok_or_else(invalid_token)?;
            (principal, app.keys.secret_of(&signed.access_key_id))
        }
        Some(token) => {
            let session = session::Session::from_token(token, &app.keys)
                .filter(|s| s.access_key_id == signed.access_key_id)
                .ok_or_else(invalid_token)?;
            if session.expires <= now {
                return Err(ApiError::new(
                    "ExpiredTokenException",
                    "The security token included in the request is expired",
                ));
            }
            let role = app
                .get::<Role>(&store_keys::role(&session.role_name))?
                .map(|r| r.value)
                .filter(|r| r.role_id == session.role_id)
                .ok_or_else(invalid_token)?;
            let principal = Principal {
                arn: format!(
                    "arn:aws:sts::{account}:assumed-role/{}/{}",
                    role.role_name, session.session_name
                ),
                access_key_id: session.access_key_id.clone(),
                identity: Identity::AssumedRole {
                    role: role.role_name,
                    role_id: role.role_id,
                    session: session.session_name,
                },
                secure_transport: false,
                host: None,
            };
            (principal, app.keys.secret_of(&session.access_key_id))
        }
    };
    signed
        .verify(request, &secret, now, PathRules::SERVICES)
        .map_err(refusal)?;
    Ok((principal, signed.service))
}

/// The principal behind a long-term access key (root's or an IAM user's): `None` when the key
/// is unknown or inactive, or its user is gone. For SigV4 and the console's sign-in alike.
pub fn principal_of_access_key(
    app: &App,
    access_key_id: &str,
) -> Result<Option<Principal>, ApiError> {
    let account = &app.config.account_id;
    let Some(key) = app
        .get::<AccessKey>(&store_keys::access_key(access_key_id))?
        .map(|k| k.value)
        .filter(|k| k.status == KeyStatus::Active)
    else {
        return Ok(None);
    };
    let (identity, arn) = match &key.user_name {
        None => (Identity::Root, format!("arn:aws:iam::{account}:root")),
        Some(name) => {
            let Some(user) = app.get::<User>(&store_keys::user(name))? else {
                return Ok(None);
            };
            let user = user.value;
            let identity = Identity::User {
                name: user.user_name,
                id: user.user_id,
            };
            // The user's own ARN, its path included.
            (identity, user.arn)
        }
    };
    Ok(Some(Principal {
        arn,
        access_key_id: key.access_key_id,
        identity,
        secure_transport: false,
        host: None,
    }))
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
        identity: Identity::Root,
        secure_transport: false,
        host: None,
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
