//! Security groups on awsvpc tasks: each task whose groups Berth knows gets an iptables
//! `filter` table in its own network namespace (`berth_core::security_group::ruleset`), which
//! lets in its host, the tasks on this host that share one of its groups, and what its groups'
//! rules allow, and drops every other connection in. The tables are made again whenever a
//! task's interface comes or goes on this host (a peer's address joins or leaves them); a
//! table that has not changed is not written again.

use berth_core::security_group::{ruleset, Firewall, Peer};
use serde_json::Value;
use std::collections::HashMap;
use tokio::io::AsyncWriteExt;

/// One task interface of this host, as the refresh needs it.
#[derive(Debug, Clone)]
pub(super) struct Interface {
    /// The pause container holding the namespace.
    pub sandbox: String,
    pub address: String,
    /// The host's address on the task's network.
    pub gateway: String,
    pub firewall: Option<Firewall>,
}

/// The gateway address (the host's on the network) in a CNI ADD result.
pub(super) fn gateway_of(result: &Value) -> Option<String> {
    result
        .get("ips")?
        .as_array()?
        .iter()
        .find_map(|ip| ip.get("gateway")?.as_str().map(String::from))
}

/// What each filtered interface's table must be: (sandbox, table), given every interface on
/// the host (the filtered ones and the others).
pub(super) fn tables(interfaces: &[Interface]) -> Vec<(String, String)> {
    let peers: Vec<(String, Peer)> = interfaces
        .iter()
        .filter_map(|i| {
            let firewall = i.firewall.as_ref()?;
            Some((
                i.sandbox.clone(),
                Peer {
                    address: i.address.clone(),
                    groups: firewall.groups.clone(),
                },
            ))
        })
        .collect();
    interfaces
        .iter()
        .filter_map(|i| {
            let firewall = i.firewall.as_ref()?;
            let others: Vec<Peer> = peers
                .iter()
                .filter(|(sandbox, _)| *sandbox != i.sandbox)
                .map(|(_, peer)| peer.clone())
                .collect();
            Some((i.sandbox.clone(), ruleset(firewall, &i.gateway, &others)))
        })
        .collect()
}

/// Writes `table` as the `filter` table of the network namespace of process `pid`, at once
/// (`iptables-restore` in the namespace, which replaces the whole table).
pub(super) async fn apply(pid: u32, table: &str) -> Result<(), String> {
    let mut child = tokio::process::Command::new("nsenter")
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .arg("iptables-restore")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nsenter iptables-restore: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(table.as_bytes())
            .await
            .map_err(|e| format!("cannot give iptables-restore its table: {e}"))?;
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|e| format!("iptables-restore: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "iptables-restore in the task's namespace failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(())
}

/// The tables written so far, by sandbox, so an unchanged one is not written again.
#[derive(Debug, Default)]
pub(super) struct Applied {
    tables: tokio::sync::Mutex<HashMap<String, String>>,
}

impl Applied {
    /// Held while a refresh runs: refreshes one at a time.
    pub(super) async fn lock(&self) -> tokio::sync::MutexGuard<'_, HashMap<String, String>> {
        self.tables.lock().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::security_group::IngressRule;

    fn interface(sandbox: &str, address: &str, groups: Option<&[&str]>) -> Interface {
        Interface {
            sandbox: sandbox.into(),
            address: address.into(),
            gateway: "10.200.0.1".into(),
            firewall: groups.map(|g| Firewall {
                groups: g.iter().map(|s| s.to_string()).collect(),
                rules: Vec::<IngressRule>::new(),
            }),
        }
    }

    #[test]
    fn only_filtered_interfaces_get_tables_and_peers_share_a_group() {
        let all = [
            interface("a", "10.200.0.2", Some(&["sg-1"])),
            interface("b", "10.200.0.3", Some(&["sg-1", "sg-2"])),
            interface("c", "10.200.0.4", Some(&["sg-2"])),
            interface("d", "10.200.0.5", None),
        ];
        let tables: HashMap<String, String> = tables(&all).into_iter().collect();
        assert_eq!(tables.len(), 3);
        assert!(tables["a"].contains("-s 10.200.0.3/32 -j ACCEPT"));
        assert!(
            !tables["a"].contains("10.200.0.4"),
            "c shares no group with a"
        );
        assert!(!tables["a"].contains("10.200.0.2/32 -j"), "not itself");
        assert!(tables["b"].contains("10.200.0.2") && tables["b"].contains("10.200.0.4"));
        assert!(!tables.values().any(|t| t.contains("10.200.0.5")));
    }

    #[test]
    fn the_gateway_comes_from_the_cni_result() {
        let result = serde_json::json!({
            "ips": [{"interface": 2, "address": "10.200.0.5/16", "gateway": "10.200.0.1"}]
        });
        assert_eq!(gateway_of(&result).as_deref(), Some("10.200.0.1"));
        assert_eq!(gateway_of(&serde_json::json!({})), None);
    }
}
