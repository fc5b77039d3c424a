//! Which container instance this agent is, at start — never a second identity for one host:
//!
//! 1. the identity file in the data dir, else its backup (which then restores the file);
//! 2. else the labels of the agent's own containers: every container carries the agent's home
//!    (`com.berth.agent-home`, a hash of the data dir path) next to its cluster and instance
//!    id, so the one instance id found for this home and cluster is this agent's;
//! 3. else, when there is evidence that this data dir registered before (identity files that
//!    exist but cannot be read) or the labels name several instances, the agent refuses to
//!    start, saying what to do; with no evidence at all it registers as a new instance.

use crate::agent::{AgentConfig, AgentError};
use crate::engine::bounds::{bounded, CALL_TIMEOUT};
use crate::identity::{self, Identity, Kept, Source};
use crate::runtime::ContainerRuntime;
use crate::spec;
use std::collections::{BTreeMap, BTreeSet};

/// The identity to register as (`None`: register as a new instance), recovered as the module
/// says. `home` is the agent's home id.
pub async fn previous_identity(
    config: &AgentConfig,
    home: &str,
    runtime: &dyn ContainerRuntime,
) -> Result<Option<Identity>, AgentError> {
    let unreadable = match identity::read(&config.data_dir) {
        Kept::Found { identity, source } => {
            if source == Source::Backup {
                tracing::warn!(
                    dir = %config.data_dir.display(),
                    "the identity file is missing or unreadable; using its backup and restoring it"
                );
                identity::save(&config.data_dir, &identity)?;
            }
            if identity.cluster != config.cluster {
                tracing::warn!(kept = %identity.cluster, wanted = %config.cluster, "the data dir holds an instance of another cluster: registering as a new instance");
                return Ok(None);
            }
            return Ok(Some(identity));
        }
        Kept::Missing { unreadable } => unreadable,
    };
    for problem in &unreadable {
        tracing::warn!("cannot read the agent identity: {problem}");
    }
    let labels = BTreeMap::from([(spec::LABEL_AGENT_HOME.to_string(), home.to_string())]);
    let containers = bounded(CALL_TIMEOUT, runtime.list_containers(&labels))
        .await
        .map_err(AgentError::Runtime)?;
    let instances: BTreeSet<&str> = containers
        .iter()
        .filter(|c| c.labels.get(spec::LABEL_CLUSTER) == Some(&config.cluster))
        .filter_map(|c| c.labels.get(spec::LABEL_CONTAINER_INSTANCE))
        .map(String::as_str)
        .filter(|id| !id.is_empty())
        .collect();
    let files = format!(
        "{} and {}",
        config.data_dir.join(identity::IDENTITY_FILE).display(),
        config.data_dir.join(identity::BACKUP_FILE).display()
    );
    match instances.len() {
        1 => {
            let id = instances.into_iter().next().unwrap_or_default();
            tracing::warn!(instance = %id, cluster = %config.cluster, "no readable identity in the data dir: recovered the instance id from the labels of this agent's containers");
            Ok(Some(Identity {
                cluster: config.cluster.clone(),
                container_instance_arn: id.to_string(),
            }))
        }
        0 if unreadable.is_empty() => Ok(None),
        0 => Err(AgentError::IdentityLost(format!(
            "{files} exist but cannot be read, and no container on this host carries {}={home} \
             for cluster {}, so the instance this agent registered as is unknown. Registering \
             again would make a second instance. Restore the file (its content is \
             {{\"cluster\": \"...\", \"containerInstanceArn\": \"...\"}}; `aws ecs \
             list-container-instances` shows the ARN), or move both files away to join as a \
             new instance.",
            spec::LABEL_AGENT_HOME,
            config.cluster
        ))),
        _ => Err(AgentError::IdentityLost(format!(
            "no readable identity in {files}, and the containers of this agent name several \
             instances of cluster {}: {}. Write the right one into {} \
             ({{\"cluster\": \"...\", \"containerInstanceArn\": \"...\"}}) and start again.",
            config.cluster,
            instances.into_iter().collect::<Vec<_>>().join(", "),
            config.data_dir.join(identity::IDENTITY_FILE).display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::fake::FakeRuntime;
    use crate::runtime::ContainerSpec;

    const HOME: &str = "0011223344556677";

    fn config(dir: &std::path::Path) -> AgentConfig {
        AgentConfig::new(
            "http://127.0.0.1:1",
            "demo",
            dir.to_path_buf(),
            crate::credentials::for_fake_servers(),
        )
    }

    async fn container_of(fake: &FakeRuntime, name: &str, cluster: &str, instance: &str) {
        fake.add_image("busybox");
        let mut labels = spec::instance_labels(cluster, instance);
        labels.insert(spec::LABEL_AGENT_HOME.to_string(), HOME.to_string());
        let spec = ContainerSpec {
            name: name.to_string(),
            image: "busybox".into(),
            labels,
            ..ContainerSpec::default()
        };
        fake.create_container(&spec).await.expect("create");
    }

    fn kept(dir: &std::path::Path) -> Identity {
        let identity = Identity {
            cluster: "demo".into(),
            container_instance_arn:
                "arn:aws:ecs:us-east-1:000000000000:container-instance/demo/aaaa".into(),
        };
        identity::save(dir, &identity).expect("save");
        identity
    }

    #[tokio::test]
    async fn a_deleted_identity_file_is_restored_from_its_backup() {
        let dir = tempfile::tempdir().expect("dir");
        let identity = kept(dir.path());
        std::fs::remove_file(dir.path().join(identity::IDENTITY_FILE)).expect("delete");
        let found = previous_identity(&config(dir.path()), HOME, &FakeRuntime::new())
            .await
            .expect("recovered");
        assert_eq!(found, Some(identity.clone()));
        let text =
            std::fs::read_to_string(dir.path().join(identity::IDENTITY_FILE)).expect("restored");
        assert!(text.contains(&identity.container_instance_arn));
    }

    #[tokio::test]
    async fn without_identity_files_the_instance_id_comes_from_the_containers_labels() {
        let dir = tempfile::tempdir().expect("dir");
        let fake = FakeRuntime::new();
        container_of(&fake, "a", "demo", "bbbb").await;
        container_of(&fake, "b", "demo", "bbbb").await;
        container_of(&fake, "c", "other", "cccc").await;
        std::fs::write(dir.path().join(identity::IDENTITY_FILE), "garbage").expect("corrupt");
        let found = previous_identity(&config(dir.path()), HOME, &fake)
            .await
            .expect("recovered");
        assert_eq!(
            found,
            Some(Identity {
                cluster: "demo".into(),
                container_instance_arn: "bbbb".into()
            })
        );
    }

    #[tokio::test]
    async fn a_fresh_data_dir_registers_as_a_new_instance() {
        let dir = tempfile::tempdir().expect("dir");
        let fake = FakeRuntime::new();
        // Containers of another agent home (or cluster) are not this agent's.
        container_of(&fake, "c", "other", "cccc").await;
        let found = previous_identity(&config(dir.path()), HOME, &fake)
            .await
            .expect("fresh");
        assert_eq!(found, None);
    }

    #[tokio::test]
    async fn unreadable_identity_files_without_containers_make_the_agent_refuse_to_start() {
        let dir = tempfile::tempdir().expect("dir");
        kept(dir.path());
        for file in [identity::IDENTITY_FILE, identity::BACKUP_FILE] {
            std::fs::write(dir.path().join(file), "{\"cluster\": ").expect("corrupt");
        }
        let err = previous_identity(&config(dir.path()), HOME, &FakeRuntime::new())
            .await
            .expect_err("refused");
        let message = err.to_string();
        assert!(message.contains("second instance"), "{message}");
        assert!(message.contains("move both files away"), "{message}");
    }

    #[tokio::test]
    async fn containers_naming_several_instances_make_the_agent_refuse_to_guess() {
        let dir = tempfile::tempdir().expect("dir");
        let fake = FakeRuntime::new();
        container_of(&fake, "a", "demo", "bbbb").await;
        container_of(&fake, "b", "demo", "dddd").await;
        let err = previous_identity(&config(dir.path()), HOME, &fake)
            .await
            .expect_err("ambiguous");
        assert!(err.to_string().contains("bbbb, dddd"), "{err}");
    }

    #[tokio::test]
    async fn an_identity_of_another_cluster_means_a_new_instance_here() {
        let dir = tempfile::tempdir().expect("dir");
        kept(dir.path());
        let mut other = config(dir.path());
        other.cluster = "elsewhere".into();
        let found = previous_identity(&other, HOME, &FakeRuntime::new())
            .await
            .expect("fresh");
        assert_eq!(found, None);
    }
}
