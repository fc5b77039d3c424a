//! The IAM user `berth up` runs its own agent as: allowed only what an agent does (ECS's
//! agent actions), and bound, like any agent, to the instance it registers.

use crate::app::App;
use crate::error::ApiError;
use berth_core::model::iam::{AccessKey, InlinePolicy, KeyStatus, User};
use berth_core::sigv4::Credentials;
use berth_store::typed::encode;
use berth_store::{keys, Compare, Txn};

/// The inline policy of an agent user.
pub const AGENT_POLICY_NAME: &str = "berth-agent";

/// What an agent does, and nothing else.
pub const AGENT_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"BerthAgent","Effect":"Allow","Action":["ecs:RegisterContainerInstance","ecs:DeregisterContainerInstance","ecs:Poll","ecs:SubmitTaskStateChange","ecs:SubmitContainerStateChange","ecs:DiscoverPollEndpoint","ecs:StartTelemetrySession"],"Resource":"*"}]}"#;

/// Makes sure IAM user `name` exists with the agent policy and an active access key, and
/// returns that key's credentials.
pub async fn ensure_agent_user(app: &App, name: &str) -> Result<Credentials, ApiError> {
    let fault = |e: std::io::Error| ApiError::server(format!("making an IAM id: {e}"));
    let account = &app.config.account_id;
    let user_key = keys::user(name);
    if app.get::<User>(&user_key)?.is_none() {
        let user = User {
            user_name: name.to_string(),
            user_id: crate::auth::keys::new_id("AIDA").map_err(fault)?,
            path: "/".into(),
            arn: format!("arn:aws:iam::{account}:user/{name}"),
            create_date: app.now().floor(),
            tags: Vec::new(),
        };
        let txn = Txn::new()
            .when(Compare::absent(&user_key))
            .put(&user_key, encode(&user));
        app.commit(txn).await?;
    }
    let policy = InlinePolicy {
        owner: name.to_string(),
        policy_name: AGENT_POLICY_NAME.into(),
        policy_document: AGENT_POLICY.into(),
    };
    let policy_key = keys::user_policy(name, AGENT_POLICY_NAME);
    app.commit(Txn::new().put(policy_key, encode(&policy)))
        .await?;
    let existing = app
        .list::<AccessKey>(keys::ACCESS_KEYS)?
        .into_iter()
        .map(|k| k.value)
        .find(|k| k.user_name.as_deref() == Some(name) && k.status == KeyStatus::Active);
    let key = match existing {
        Some(key) => key,
        None => {
            let key = AccessKey {
                access_key_id: crate::auth::keys::new_access_key_id().map_err(fault)?,
                user_name: Some(name.to_string()),
                status: KeyStatus::Active,
                create_date: app.now().floor(),
            };
            let store_key = keys::access_key(&key.access_key_id);
            let txn = Txn::new()
                .when(Compare::absent(&store_key))
                .put(&store_key, encode(&key));
            app.commit(txn).await?;
            key
        }
    };
    Ok(app.keys.credentials_of(&key.access_key_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_policy_is_a_valid_identity_policy() {
        berth_core::iam::Policy::parse(AGENT_POLICY).expect("parses");
    }
}
