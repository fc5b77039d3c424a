//! Where each kind of object lives in the key space. Every key is built here, so the layout
//! can be read (and changed) in one place.

/// Prefix of all clusters.
pub const CLUSTERS: &str = "/clusters/";
/// Prefix of all task definition revisions.
pub const TASK_DEFINITIONS: &str = "/taskdefs/";
/// Prefix of all task definition family counters.
pub const FAMILIES: &str = "/families/";
/// Prefix of all container instances.
pub const INSTANCES: &str = "/instances/";
/// Prefix of all services.
pub const SERVICES: &str = "/services/";
/// Prefix of all tasks.
pub const TASKS: &str = "/tasks/";
/// Prefix of RunTask client tokens.
pub const CLIENT_TOKENS: &str = "/client-tokens/";
/// Prefix of all account settings.
pub const ACCOUNT_SETTINGS: &str = "/account-settings/";
/// Prefix of all service deployments (the history ListServiceDeployments shows).
pub const SERVICE_DEPLOYMENTS: &str = "/service-deployments/";
/// Prefix of all service revisions.
pub const SERVICE_REVISIONS: &str = "/service-revisions/";

/// Prefix of all IAM access keys (their metadata; secrets are never stored).
pub const ACCESS_KEYS: &str = "/iam/access-keys/";

/// `/iam/access-keys/{id}`
pub fn access_key(id: &str) -> String {
    format!("{ACCESS_KEYS}{id}")
}

/// Prefix of all IAM users (keyed by lower-cased name).
pub const USERS: &str = "/iam/users/";
/// Prefix of all IAM roles (keyed by lower-cased name).
pub const ROLES: &str = "/iam/roles/";
/// Prefix of the inline policies of IAM users.
pub const USER_POLICIES: &str = "/iam/user-policies/";
/// Prefix of the inline policies of IAM roles.
pub const ROLE_POLICIES: &str = "/iam/role-policies/";

/// `/iam/users/{lower-cased name}`
pub fn user(name: &str) -> String {
    format!("{USERS}{}", name.to_lowercase())
}

/// `/iam/roles/{lower-cased name}`
pub fn role(name: &str) -> String {
    format!("{ROLES}{}", name.to_lowercase())
}

/// `/iam/user-policies/{lower-cased user}/` — the inline policies of one user.
pub fn user_policies_of(user: &str) -> String {
    format!("{USER_POLICIES}{}/", user.to_lowercase())
}

/// `/iam/user-policies/{lower-cased user}/{lower-cased policy}`
pub fn user_policy(user: &str, policy: &str) -> String {
    format!("{}{}", user_policies_of(user), policy.to_lowercase())
}

/// `/iam/role-policies/{lower-cased role}/` — the inline policies of one role.
pub fn role_policies_of(role: &str) -> String {
    format!("{ROLE_POLICIES}{}/", role.to_lowercase())
}

/// `/iam/role-policies/{lower-cased role}/{lower-cased policy}`
pub fn role_policy(role: &str, policy: &str) -> String {
    format!("{}{}", role_policies_of(role), policy.to_lowercase())
}

/// Prefix of the principals container instances belong to.
pub const INSTANCE_OWNERS: &str = "/instance-owners/";

/// `/instance-owners/{cluster}/{id}` — who registered that instance.
pub fn instance_owner(cluster: &str, id: &str) -> String {
    format!("{INSTANCE_OWNERS}{cluster}/{id}")
}

/// `/clusters/{name}`
pub fn cluster(name: &str) -> String {
    format!("{CLUSTERS}{name}")
}

/// `/taskdefs/{family}/` — all revisions of one family.
pub fn task_definitions_of(family: &str) -> String {
    format!("{TASK_DEFINITIONS}{family}/")
}

/// `/taskdefs/{family}/{revision}` with the revision zero-padded so keys sort numerically.
pub fn task_definition(family: &str, revision: u32) -> String {
    format!("{TASK_DEFINITIONS}{family}/{revision:010}")
}

/// `/families/{family}` — the family's last allocated revision.
pub fn family(family: &str) -> String {
    format!("{FAMILIES}{family}")
}

/// `/instances/{cluster}/` — all container instances of one cluster.
pub fn instances_of(cluster: &str) -> String {
    format!("{INSTANCES}{cluster}/")
}

/// `/instances/{cluster}/{id}`
pub fn instance(cluster: &str, id: &str) -> String {
    format!("{INSTANCES}{cluster}/{id}")
}

/// `/services/{cluster}/` — all services of one cluster.
pub fn services_of(cluster: &str) -> String {
    format!("{SERVICES}{cluster}/")
}

/// `/tasks/{cluster}/` — all tasks of one cluster.
pub fn tasks_of(cluster: &str) -> String {
    format!("{TASKS}{cluster}/")
}

/// `/services/{cluster}/{name}`
pub fn service(cluster: &str, name: &str) -> String {
    format!("{SERVICES}{cluster}/{name}")
}

/// `/client-tokens/{cluster}/{token}` — what a RunTask with that `clientToken` started.
pub fn client_token(cluster: &str, token: &str) -> String {
    format!(
        "{CLIENT_TOKENS}{cluster}/{}",
        token.replace('%', "%25").replace('/', "%2F")
    )
}

/// `/tasks/{cluster}/{id}`
pub fn task(cluster: &str, id: &str) -> String {
    format!("{TASKS}{cluster}/{id}")
}

/// `/account-settings/{principal}/` — the settings of one principal (`default` for the
/// account-wide defaults).
pub fn account_settings_of(principal: &str) -> String {
    format!("{ACCOUNT_SETTINGS}{principal}/")
}

/// `/account-settings/{principal}/{name}`
pub fn account_setting(principal: &str, name: &str) -> String {
    format!("{ACCOUNT_SETTINGS}{principal}/{name}")
}

/// `/service-deployments/{cluster}/{service}/` — the deployment history of one service.
pub fn service_deployments_of(cluster: &str, service: &str) -> String {
    format!("{SERVICE_DEPLOYMENTS}{cluster}/{service}/")
}

/// `/service-deployments/{cluster}/{service}/{id}`
pub fn service_deployment(cluster: &str, service: &str, id: &str) -> String {
    format!("{SERVICE_DEPLOYMENTS}{cluster}/{service}/{id}")
}

/// `/service-revisions/{cluster}/{service}/` — the revisions of one service.
pub fn service_revisions_of(cluster: &str, service: &str) -> String {
    format!("{SERVICE_REVISIONS}{cluster}/{service}/")
}

/// `/service-revisions/{cluster}/{service}/{id}`
pub fn service_revision(cluster: &str, service: &str, id: &str) -> String {
    format!("{SERVICE_REVISIONS}{cluster}/{service}/{id}")
}

/// Prefix of all capacity providers (the built-in FARGATE and FARGATE_SPOT are not stored).
pub const CAPACITY_PROVIDERS: &str = "/capacity-providers/";

/// `/capacity-providers/{name}`
pub fn capacity_provider(name: &str) -> String {
    format!("{CAPACITY_PROVIDERS}{name}")
}

/// The key the leading server holds with its lease (etcd only).
pub const LEADER: &str = "/control/leader";

/// Prefix of the replicas' records: each says which agents it heard from lately.
pub const REPLICAS: &str = "/control/replicas/";

/// `/control/replicas/{name}`
pub fn replica(name: &str) -> String {
    format!("{REPLICAS}{name}")
}

/// Prefix of the files every replica must hold alike (master key, vault key, own CA).
pub const SHARED_FILES: &str = "/control/files/";

/// `/control/files/{name}`
pub fn shared_file(name: &str) -> String {
    format!("{SHARED_FILES}{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_definition_keys_sort_by_revision_number() {
        assert!(task_definition("web", 9) < task_definition("web", 10));
        assert!(task_definition("web", 10).starts_with(&task_definitions_of("web")));
        assert!(!task_definition("web2", 1).starts_with(&task_definitions_of("web")));
    }
}
