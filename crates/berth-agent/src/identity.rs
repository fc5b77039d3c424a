//! The agent's identity in its data dir: the container instance ARN it registered as, so a
//! restarted agent registers again as the same instance and re-adopts its containers.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// File name of the identity in the data dir.
pub const IDENTITY_FILE: &str = "agent-identity.json";

/// Errors reading or writing the identity.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not an identity.
    #[error("{path} is not a Berth agent identity ({message}): move it away to register as a new instance")]
    Corrupt { path: PathBuf, message: String },
}

/// Who this agent is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// The cluster it registered with.
    pub cluster: String,
    /// The ARN the server gave it.
    pub container_instance_arn: String,
}

impl Identity {
    /// The instance id: the last element of the ARN.
    pub fn instance_id(&self) -> &str {
        instance_id_of(&self.container_instance_arn)
    }
}

/// The id in a container instance ARN (`.../container-instance/{cluster}/{id}`).
pub fn instance_id_of(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

fn path_in(dir: &Path) -> PathBuf {
    dir.join(IDENTITY_FILE)
}

/// The identity kept in `dir`, if there is one.
pub fn load(dir: &Path) -> Result<Option<Identity>, IdentityError> {
    let path = path_in(dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(IdentityError::Io { path, source }),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| IdentityError::Corrupt {
            path,
            message: e.to_string(),
        })
}

/// Keeps `identity` in `dir` (created if needed), replacing the file atomically.
pub fn save(dir: &Path, identity: &Identity) -> Result<(), IdentityError> {
    let path = path_in(dir);
    let io = |source| IdentityError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let temp = dir.join(format!("{IDENTITY_FILE}.tmp"));
    let text = serde_json::to_string_pretty(identity).unwrap_or_default();
    std::fs::write(&temp, text).map_err(io)?;
    std::fs::File::open(&temp)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    std::fs::rename(&temp, &path).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_survives_a_save_and_load() {
        let dir = tempfile::tempdir().expect("temp dir");
        let nested = dir.path().join("agent");
        assert_eq!(load(&nested).expect("load"), None);
        let identity = Identity {
            cluster: "demo".into(),
            container_instance_arn:
                "arn:aws:ecs:us-east-1:000000000000:container-instance/demo/abc".into(),
        };
        save(&nested, &identity).expect("save");
        assert_eq!(load(&nested).expect("load"), Some(identity.clone()));
        assert_eq!(identity.instance_id(), "abc");
    }

    #[test]
    fn a_corrupt_identity_is_an_error_that_says_what_to_do() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(IDENTITY_FILE), "{not json").expect("write");
        let err = load(dir.path()).expect_err("corrupt");
        assert!(err.to_string().contains("move it away"), "{err}");
    }
}
