//! Where the agent finds the credentials it signs with: the standard AWS places, in the
//! standard order. First `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (with
//! `AWS_SESSION_TOKEN`); then the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else
//! `~/.aws/credentials`) under profile `AWS_PROFILE` (else `default`).

use berth_core::sigv4::Credentials;
use std::path::PathBuf;

/// Why no credentials were found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "no AWS credentials for the agent: {0}. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or \
     AWS_PROFILE and AWS_SHARED_CREDENTIALS_FILE (a Berth server writes its root user's keys to \
     DATA_DIR/credentials, profile 'berth')"
)]
pub struct NoCredentials(String);

/// The credentials of this process's environment.
pub fn from_environment() -> Result<Credentials, NoCredentials> {
    from(
        |name| std::env::var(name).ok().filter(|v| !v.is_empty()),
        std::env::var_os("HOME").map(PathBuf::from),
    )
}

/// The credentials `env` and the home directory `home` give.
pub fn from(
    env: impl Fn(&str) -> Option<String>,
    home: Option<PathBuf>,
) -> Result<Credentials, NoCredentials> {
    match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => {
            return Ok(Credentials {
                access_key_id: id,
                secret_access_key: secret,
                session_token: env("AWS_SESSION_TOKEN"),
            })
        }
        (Some(_), None) => {
            return Err(NoCredentials(
                "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not".into(),
            ))
        }
        _ => {}
    }
    let file = env("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| home.map(|h| h.join(".aws").join("credentials")))
        .ok_or_else(|| NoCredentials("no HOME to find ~/.aws/credentials in".into()))?;
    let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
    let text = std::fs::read_to_string(&file)
        .map_err(|e| NoCredentials(format!("cannot read {}: {e}", file.display())))?;
    Credentials::from_profile(&text, &profile).ok_or_else(|| {
        NoCredentials(format!(
            "{} has no profile '{profile}' with aws_access_key_id and aws_secret_access_key",
            file.display()
        ))
    })
}

/// Keys for tests whose peer is a fake server that checks no signature.
#[cfg(test)]
pub(crate) fn for_fake_servers() -> Credentials {
    Credentials {
        access_key_id: "AKIAFAKESERVERPEER00".into(),
        secret_access_key: "fake-server-peer-secret".into(),
        session_token: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn environment_keys_come_first_then_the_profile_of_the_shared_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("credentials");
        std::fs::write(
            &file,
            "[default]\naws_access_key_id = D\naws_secret_access_key = d\n\
             [berth]\naws_access_key_id = B\naws_secret_access_key = b\n",
        )
        .expect("write");
        let path = file.to_str().expect("utf-8");
        let both = env(&[
            ("AWS_ACCESS_KEY_ID", "E"),
            ("AWS_SECRET_ACCESS_KEY", "e"),
            ("AWS_SESSION_TOKEN", "t"),
            ("AWS_SHARED_CREDENTIALS_FILE", path),
        ]);
        let found = from(both, None).expect("env");
        assert_eq!(
            (found.access_key_id.as_str(), found.session_token.as_deref()),
            ("E", Some("t"))
        );
        let profile = env(&[
            ("AWS_SHARED_CREDENTIALS_FILE", path),
            ("AWS_PROFILE", "berth"),
        ]);
        assert_eq!(from(profile, None).expect("profile").access_key_id, "B");
        let default = env(&[("AWS_SHARED_CREDENTIALS_FILE", path)]);
        assert_eq!(from(default, None).expect("default").access_key_id, "D");
        std::fs::create_dir(dir.path().join(".aws")).expect("mkdir");
        std::fs::copy(&file, dir.path().join(".aws/credentials")).expect("copy");
        let home = from(env(&[("AWS_PROFILE", "berth")]), Some(dir.path().into()));
        assert_eq!(home.expect("home").access_key_id, "B");

        let missing = env(&[
            ("AWS_SHARED_CREDENTIALS_FILE", path),
            ("AWS_PROFILE", "nope"),
        ]);
        let err = from(missing, None).expect_err("no such profile");
        assert!(err.to_string().contains("no profile 'nope'"), "{err}");
        let half = env(&[("AWS_ACCESS_KEY_ID", "E")]);
        assert!(from(half, None).is_err());
        let nowhere = env(&[("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")]);
        assert!(from(nowhere, None)
            .expect_err("no file")
            .to_string()
            .contains("DATA_DIR/credentials"));
    }
}
