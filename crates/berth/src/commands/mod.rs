//! The subcommands of `berth`, one file each.

pub mod agent;
pub mod api;
pub mod bench;
pub mod compose;
pub mod deploy;
pub mod events;
pub mod exec;
pub mod inspect;
pub mod instances;
pub mod logs;
pub mod progress;
pub mod ps;
pub mod run;
pub mod server;
pub mod services;
pub mod store;
pub mod store_history;
pub mod up;
pub mod vault;

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The data dir used when none is given: `$BERTH_DATA_DIR`, else `~/.local/share/berth`.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BERTH_DATA_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/share/berth")
}

/// The root user's keys a server keeps in `DATA_DIR/credentials` (profile `berth`), read as
/// any AWS tool reads a shared-credentials file.
pub fn server_credentials(data_dir: &Path) -> anyhow::Result<berth_core::sigv4::Credentials> {
    let file = data_dir.join(berth_server::auth::CREDENTIALS_FILE);
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read the server's credentials at {}", file.display()))?;
    berth_core::sigv4::Credentials::from_profile(&text, berth_server::auth::PROFILE).with_context(
        || {
            format!(
                "{} has no profile '{}'",
                file.display(),
                berth_server::auth::PROFILE
            )
        },
    )
}

/// Parses a duration for command-line options: `90`, `30s`, `10m`, `1h`, `1h30m`, `500ms`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("'{text}' is not a duration: use e.g. 30s, 10m, 1h or 1h30m");
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(value),
            "s" => Duration::from_secs(value),
            "m" => Duration::from_secs(value * 60),
            "h" => Duration::from_secs(value * 3600),
            "d" => Duration::from_secs(value * 86_400),
            _ => return Err(bad()),
        };
        total += unit;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        for bad in ["", "h", "5x", "1.5h", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
