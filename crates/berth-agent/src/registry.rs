//! Credentials for private registries: the registry an image reference names, and the
//! agent-wide credentials of a Docker `config.json` (`--registry-auth`, as ECS's
//! `ECS_ENGINE_AUTH_TYPE=dockercfg`), found for an image by its registry.

use base64::Engine as _;
use std::collections::HashMap;
use std::path::Path;

/// Docker Hub's key in `config.json`.
pub const DOCKER_HUB: &str = "https://index.docker.io/v1/";

/// A user name and password for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
    /// The registry, as Docker names it (`127.0.0.1:5000`, or [`DOCKER_HUB`]).
    pub server: String,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// The registry of an image reference: its first component when that names a host (it has
/// a `.` or a `:`, or is `localhost`), else Docker Hub.
pub fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first.to_string(),
        _ => DOCKER_HUB.to_string(),
    }
}

/// `config.json`'s key as a registry host (`https://host/v1/` → `host`; Docker Hub's kept).
fn normalize(key: &str) -> String {
    if key == DOCKER_HUB || key.contains("index.docker.io") || key == "docker.io" {
        return DOCKER_HUB.to_string();
    }
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key).to_string()
}

/// The credentials of a Docker `config.json`, by registry.
#[derive(Debug, Clone, Default)]
pub struct DockerConfig {
    auths: HashMap<String, RegistryAuth>,
}

impl DockerConfig {
    /// Reads `path`; an entry without usable credentials is an error naming it.
    pub fn load(path: &Path) -> Result<DockerConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        DockerConfig::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Reads a `config.json` document: `{"auths": {REGISTRY: {"auth": base64(user:password)}
    /// or {"username", "password"}}}`.
    pub fn parse(text: &str) -> Result<DockerConfig, String> {
        let document: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let mut auths = HashMap::new();
        for (key, entry) in document["auths"].as_object().into_iter().flatten() {
            let (username, password) = match entry["auth"].as_str() {
                Some(encoded) => {
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(encoded.trim())
                        .ok()
                        .and_then(|b| String::from_utf8(b).ok())
                        .ok_or_else(|| {
                            format!("the auth of {key} is not base64 of user:password")
                        })?;
                    let (user, password) = decoded
                        .split_once(':')
                        .ok_or_else(|| format!("the auth of {key} is not user:password"))?;
                    (user.to_string(), password.to_string())
                }
                None => match (entry["username"].as_str(), entry["password"].as_str()) {
                    (Some(user), Some(password)) => (user.to_string(), password.to_string()),
                    _ => {
                        return Err(format!(
                            "the entry of {key} has neither auth nor username and password"
                        ))
                    }
                },
            };
            let server = normalize(key);
            auths.insert(
                server.clone(),
                RegistryAuth {
                    username,
                    password,
                    server,
                },
            );
        }
        Ok(DockerConfig { auths })
    }

    /// The credentials for `image`'s registry, if the file has them.
    pub fn auth_for(&self, image: &str) -> Option<RegistryAuth> {
        self.auths.get(&registry_of(image)).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_images_registry_is_its_first_component_when_that_names_a_host() {
        assert_eq!(registry_of("127.0.0.1:5000/team/app:1"), "127.0.0.1:5000");
        assert_eq!(
            registry_of("registry.example.com/app"),
            "registry.example.com"
        );
        assert_eq!(registry_of("localhost/app"), "localhost");
        assert_eq!(registry_of("team/app"), DOCKER_HUB);
        assert_eq!(registry_of("busybox"), DOCKER_HUB);
    }

    #[test]
    fn a_docker_config_gives_credentials_by_registry() {
        let config = DockerConfig::parse(
            r#"{"auths": {
                "127.0.0.1:5000": {"auth": "YWxpY2U6czNjcmV0"},
                "https://registry.example.com/v2/": {"username": "bob", "password": "pw"},
                "https://index.docker.io/v1/": {"auth": "aHViOmh1Yg=="}
            }}"#,
        )
        .expect("parses");
        let local = config.auth_for("127.0.0.1:5000/app:1").expect("local");
        assert_eq!(
            (local.username.as_str(), local.password.as_str()),
            ("alice", "s3cret")
        );
        assert_eq!(local.server, "127.0.0.1:5000");
        assert_eq!(
            config
                .auth_for("registry.example.com/x")
                .expect("example")
                .username,
            "bob"
        );
        assert_eq!(config.auth_for("busybox").expect("hub").username, "hub");
        assert!(config.auth_for("other.example.org/x").is_none());
        assert!(
            !format!("{local:?}").contains("s3cret"),
            "the password is never shown"
        );
    }

    #[test]
    fn a_broken_entry_is_named() {
        let error = DockerConfig::parse(r#"{"auths": {"r.example": {"auth": "bm9jb2xvbg=="}}}"#)
            .expect_err("no colon");
        assert!(error.contains("r.example"), "{error}");
        assert!(DockerConfig::parse("[").is_err());
    }
}
