//! Running CNI plugins (the Container Network Interface specification, version 1.0): a
//! network's plugin list is executed in order for ADD, each given the previous plugin's result,
//! and in reverse for DEL, each given the result the ADD produced. Berth's networks are the
//! reference plugin `bridge` with `host-local` address management; what the `firewall` and
//! masquerading would add per task, the agent sets once per network (`forwarding_rules`).

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

/// The CNI specification version Berth speaks.
const CNI_VERSION: &str = "1.0.0";

/// The interface name of a task's network interface inside its namespace.
pub const IFNAME: &str = "eth0";

/// The plugin list of Berth network `name` (its bridge is named after it) with block `cidr`;
/// addresses are kept in `ipam_dir`, so they survive agent restarts.
pub fn network_config(name: &str, cidr: &str, ipam_dir: &Path) -> Value {
    json!({
        "cniVersion": CNI_VERSION,
        "name": name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": name,
                "isGateway": true,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": ipam_dir.display().to_string(),
                },
            },
        ],
    })
}

/// The iptables rules (table, chain, rule) that let a network's tasks reach each other and
/// the world, set once per network rather than per task: forwarding from the bridge (Docker's
/// FORWARD policy is DROP), replies back to it, and masquerading for traffic leaving the host.
pub fn forwarding_rules(
    bridge: &str,
    cidr: &str,
) -> Vec<(&'static str, &'static str, Vec<String>)> {
    let rule = |parts: &[&str]| parts.iter().map(|p| p.to_string()).collect::<Vec<_>>();
    vec![
        ("filter", "FORWARD", rule(&["-i", bridge, "-j", "ACCEPT"])),
        (
            "filter",
            "FORWARD",
            rule(&[
                "-o",
                bridge,
                "-m",
                "conntrack",
                "--ctstate",
                "RELATED,ESTABLISHED",
                "-j",
                "ACCEPT",
            ]),
        ),
        (
            "nat",
            "POSTROUTING",
            rule(&["-s", cidr, "!", "-o", bridge, "-j", "MASQUERADE"]),
        ),
    ]
}

/// Makes sure each of `rules` is in place (`iptables -C`, else `-I`), once.
pub async fn ensure_rules(rules: &[(&str, &str, Vec<String>)]) -> Result<(), String> {
    for (table, chain, rule) in rules {
        let present = tokio::process::Command::new("iptables")
            .args(["-w", "-t", table, "-C", chain])
            .args(rule)
            .output()
            .await
            .map_err(|e| format!("cannot run iptables: {e}"))?;
        if present.status.success() {
            continue;
        }
        let added = tokio::process::Command::new("iptables")
            .args(["-w", "-t", table, "-I", chain])
            .args(rule)
            .output()
            .await
            .map_err(|e| format!("cannot run iptables: {e}"))?;
        if !added.status.success() {
            return Err(format!(
                "iptables -t {table} -I {chain} {}: {}",
                rule.join(" "),
                String::from_utf8_lossy(&added.stderr).trim()
            ));
        }
    }
    Ok(())
}

/// Where the plugins are, and how to run them.
#[derive(Debug, Clone)]
pub struct Plugins {
    pub dir: PathBuf,
}

impl Plugins {
    /// Whether the plugins Berth's networks use are installed.
    pub fn missing(&self) -> Vec<String> {
        ["bridge", "host-local"]
            .into_iter()
            .filter(|p| !self.dir.join(p).is_file())
            .map(|p| self.dir.join(p).display().to_string())
            .collect()
    }

    /// ADD: attaches namespace `netns` (of `container`) to the network; returns the last
    /// plugin's result. A plugin that fails has the ones before it undone (DEL).
    pub async fn add(&self, config: &Value, container: &str, netns: &str) -> Result<Value, String> {
        let plugins = plugin_list(config)?;
        let mut previous: Option<Value> = None;
        for (done, plugin) in plugins.iter().enumerate() {
            let input = plugin_input(config, plugin, previous.as_ref());
            match self.run("ADD", &input, container, netns).await {
                Ok(result) => previous = Some(result),
                Err(err) => {
                    let partial = previous.clone();
                    for undo in plugins[..done].iter().rev() {
                        let input = plugin_input(config, undo, partial.as_ref());
                        if let Err(e) = self.run("DEL", &input, container, netns).await {
                            tracing::warn!(%container, "cannot undo a partial network attach: {e}");
                        }
                    }
                    return Err(err);
                }
            }
        }
        previous.ok_or_else(|| "the network has no plugins".to_string())
    }

    /// DEL: detaches `container` from the network and frees its address. `netns` may be
    /// empty when the namespace is gone; `result` is what ADD returned, when known.
    pub async fn del(
        &self,
        config: &Value,
        container: &str,
        netns: &str,
        result: Option<&Value>,
    ) -> Result<(), String> {
        let mut first_error = None;
        for plugin in plugin_list(config)?.iter().rev() {
            let input = plugin_input(config, plugin, result);
            if let Err(err) = self.run("DEL", &input, container, netns).await {
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Frees `address`, held by `container` on `network`, with `host-local` alone (DEL by
    /// container id): for an address whose container and namespace are gone.
    pub async fn release_address(
        &self,
        network: &str,
        address: std::net::Ipv4Addr,
        container: &str,
        ipam_dir: &Path,
    ) -> Result<(), String> {
        let [a, b, c, _] = address.octets();
        let input = json!({
            "cniVersion": CNI_VERSION,
            "name": network,
            "type": "host-local",
            "ipam": {
                "type": "host-local",
                // Release goes by container id; the range only has to be valid.
                "ranges": [[{"subnet": format!("{a}.{b}.{c}.0/24")}]],
                "dataDir": ipam_dir.display().to_string(),
            },
        });
        self.run("DEL", &input, container, "").await.map(|_| ())
    }

    async fn run(
        &self,
        command: &str,
        input: &Value,
        container: &str,
        netns: &str,
    ) -> Result<Value, String> {
        let kind = input.get("type").and_then(Value::as_str).unwrap_or("");
        let binary = self.dir.join(kind);
        let mut child = tokio::process::Command::new(&binary)
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", container)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", IFNAME)
            .env("CNI_PATH", &self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run CNI plugin {}: {e}", binary.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            let bytes = serde_json::to_vec(input).map_err(|e| e.to_string())?;
            stdin
                .write_all(&bytes)
                .await
                .map_err(|e| format!("CNI plugin {kind}: {e}"))?;
        }
        let output = child
            .wait_with_output()
            .await
            .map_err(|e| format!("CNI plugin {kind}: {e}"))?;
        if !output.status.success() {
            let error: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
            let message = error
                .get("msg")
                .and_then(Value::as_str)
                .map(String::from)
                .unwrap_or_else(|| String::from_utf8_lossy(&output.stderr).trim().to_string());
            let details = error.get("details").and_then(Value::as_str).unwrap_or("");
            return Err(format!(
                "CNI plugin {kind} {command} failed: {message}{}{details}",
                if details.is_empty() { "" } else { ": " }
            ));
        }
        if command == "DEL" || output.stdout.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&output.stdout)
            .map_err(|e| format!("CNI plugin {kind} answered no result: {e}"))
    }
}

fn plugin_list(config: &Value) -> Result<Vec<Value>, String> {
    config
        .get("plugins")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| "the network configuration lists no plugins".to_string())
}

/// One plugin's input: its own configuration with the network's name and version, and the
/// previous result when there is one.
fn plugin_input(config: &Value, plugin: &Value, previous: Option<&Value>) -> Value {
    let mut input = plugin.clone();
    if let Some(object) = input.as_object_mut() {
        object.insert("cniVersion".into(), json!(CNI_VERSION));
        object.insert(
            "name".into(),
            config.get("name").cloned().unwrap_or(Value::Null),
        );
        if let Some(previous) = previous.filter(|p| !p.is_null()) {
            object.insert("prevResult".into(), previous.clone());
        }
    }
    input
}

/// The task's address and MAC from an ADD result: the IPv4 address on the interface in the
/// namespace.
pub fn interface_of(result: &Value) -> Option<(String, String)> {
    let interfaces = result.get("interfaces")?.as_array()?;
    result.get("ips")?.as_array()?.iter().find_map(|ip| {
        let address = ip.get("address")?.as_str()?;
        let (addr, _) = address.split_once('/')?;
        addr.parse::<std::net::Ipv4Addr>().ok()?;
        let index = usize::try_from(ip.get("interface")?.as_u64()?).ok()?;
        let interface = interfaces.get(index)?;
        interface.get("sandbox")?;
        let mac = interface.get("mac")?.as_str()?;
        Some((addr.to_string(), mac.to_string()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interface_is_the_one_in_the_namespace() {
        let result = json!({
            "cniVersion": "1.0.0",
            "interfaces": [
                {"name": "berth-net0", "mac": "aa:aa:aa:aa:aa:aa"},
                {"name": "veth1234", "mac": "bb:bb:bb:bb:bb:bb"},
                {"name": "eth0", "mac": "0a:58:0a:c8:00:05", "sandbox": "/proc/7/ns/net"}
            ],
            "ips": [{"interface": 2, "address": "10.200.0.5/16", "gateway": "10.200.0.1"}]
        });
        assert_eq!(
            interface_of(&result),
            Some(("10.200.0.5".into(), "0a:58:0a:c8:00:05".into()))
        );
        assert_eq!(interface_of(&json!({})), None);
    }

    #[test]
    fn chained_plugins_get_the_network_name_version_and_previous_result() {
        let config = network_config("berth-net0", "10.200.0.0/16", Path::new("/x"));
        let plugins = plugin_list(&config).expect("plugins");
        assert_eq!(plugins.len(), 1);
        let first = plugin_input(&config, &plugins[0], None);
        assert_eq!(first["name"], "berth-net0");
        assert_eq!(first["cniVersion"], CNI_VERSION);
        assert!(first.get("prevResult").is_none());
        assert_eq!(first["ipam"]["ranges"][0][0]["subnet"], "10.200.0.0/16");
        // A plugin after the first gets its result.
        let second = plugin_input(
            &config,
            &json!({"type": "tuning"}),
            Some(&json!({"ips": []})),
        );
        assert_eq!(second["prevResult"], json!({"ips": []}));
        assert_eq!(second["name"], "berth-net0");
        let rules = forwarding_rules("berth-net0", "10.200.0.0/16");
        assert_eq!(rules.len(), 3);
        assert_eq!(
            rules[2].2.join(" "),
            "-s 10.200.0.0/16 ! -o berth-net0 -j MASQUERADE"
        );
    }
}
