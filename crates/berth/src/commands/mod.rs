//! The subcommands of `berth`, one file each.

pub mod agent;
pub mod server;
pub mod up;

use std::path::PathBuf;

/// The data dir used when none is given: `$BERTH_DATA_DIR`, else `~/.local/share/berth`.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BERTH_DATA_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/share/berth")
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
