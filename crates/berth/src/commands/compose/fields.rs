//! How single Compose values become ECS fields: ports, durations, sizes, CPUs, health checks
//! and restart policies; each error names where in the file the value is, and a value ECS
//! cannot hold as written is adjusted with a note.

use super::file::{Healthcheck, Port, Scalar, ServiceSpec, Words};
use anyhow::{bail, Context};
use serde_json::{json, Map, Value};

/// A port number of a Compose file.
fn port_number(text: &str, at: &str) -> anyhow::Result<u16> {
    if text.contains('-') {
        bail!("{at}: port ranges ('{text}') are not supported: list each port");
    }
    text.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .with_context(|| format!("{at}: '{text}' is not a port (1 to 65535)"))
}

/// A `ports` entry as an ECS port mapping: no host port (or `0`) means Docker picks one.
pub fn port_mapping(port: &Port, at: &str, notes: &mut Vec<String>) -> anyhow::Result<Value> {
    let (host_ip, host, container, protocol, name, app_protocol) = match port {
        Port::Short(Scalar::Int(n)) => {
            let container = u16::try_from(*n).ok().filter(|p| *p > 0);
            let container =
                container.with_context(|| format!("{at}: {n} is not a port (1 to 65535)"))?;
            (None, None, container, "tcp".to_string(), None, None)
        }
        Port::Short(Scalar::String(spec)) => {
            let (ports, protocol) = spec.split_once('/').unwrap_or((spec, "tcp"));
            let mut parts: Vec<&str> = ports.rsplitn(3, ':').collect();
            parts.reverse();
            let (host_ip, host, container) = match parts.as_slice() {
                [container] => (None, None, *container),
                [host, container] => (None, Some(*host), *container),
                [ip, host, container] => (Some(ip.to_string()), Some(*host), *container),
                _ => bail!("{at}: '{spec}' is not a port"),
            };
            let host = host
                .filter(|h| !h.is_empty())
                .map(|h| port_number(h, at))
                .transpose()?;
            (
                host_ip,
                host,
                port_number(container, at)?,
                protocol.to_string(),
                None,
                None,
            )
        }
        Port::Short(other) => bail!("{at}: '{other}' is not a port"),
        Port::Long(long) => {
            let host = match &long.published {
                None => None,
                Some(Scalar::Int(n)) => Some(port_number(&n.to_string(), at)?),
                Some(Scalar::String(s)) if s.is_empty() => None,
                Some(other) => Some(port_number(&other.to_string(), at)?),
            };
            let protocol = long.protocol.clone().unwrap_or_else(|| "tcp".into());
            (
                long.host_ip.clone(),
                host,
                long.target,
                protocol,
                long.name.clone(),
                long.app_protocol.clone(),
            )
        }
    };
    if !matches!(protocol.as_str(), "tcp" | "udp") {
        bail!("{at}: the protocol is tcp or udp, not '{protocol}'");
    }
    if let Some(ip) = host_ip.filter(|ip| !ip.is_empty()) {
        notes.push(format!(
            "{at}: host IP {ip} (the port is published on all addresses)"
        ));
    }
    let mut mapping = json!({"containerPort": container, "protocol": protocol});
    if let Some(host) = host {
        mapping["hostPort"] = host.into();
    }
    if let Some(name) = name {
        mapping["name"] = name.into();
    }
    if let Some(app) = app_protocol {
        mapping["appProtocol"] = app.into();
    }
    Ok(mapping)
}

/// Whole seconds of a Compose duration (`1m30s`, `10s`, `500ms` rounds up to 1).
pub fn seconds(value: &Scalar, at: &str) -> anyhow::Result<u64> {
    let text = value.to_string();
    let duration = crate::commands::parse_duration(&text)
        .map_err(|_| anyhow::anyhow!("{at}: '{text}' is not a duration (e.g. 30s, 1m30s)"))?;
    Ok(duration.as_secs() + u64::from(duration.subsec_nanos() > 0))
}

/// `value` within ECS's `min..=max`, with a note when it had to move.
pub fn clamp(value: u64, min: u64, max: u64, at: &str, notes: &mut Vec<String>) -> u64 {
    let kept = value.clamp(min, max);
    if kept != value {
        notes.push(format!(
            "{at}: {value}s is outside ECS's {min} to {max}s; {kept}s is used"
        ));
    }
    kept
}

/// `healthcheck` as an ECS health check (`None` when disabled).
pub fn health_check(
    check: &Healthcheck,
    at: &str,
    notes: &mut Vec<String>,
) -> anyhow::Result<Option<Value>> {
    if check.disable {
        return Ok(None);
    }
    let command = match &check.test {
        None => {
            notes.push(format!(
                "{at}: a check without `test` (the image's HEALTHCHECK) is not used"
            ));
            return Ok(None);
        }
        Some(Words::String(text)) => vec!["CMD-SHELL".to_string(), text.clone()],
        Some(Words::List(list)) => match list.first().map(String::as_str) {
            Some("NONE") => return Ok(None),
            Some("CMD" | "CMD-SHELL") if list.len() > 1 => list.clone(),
            _ => bail!("{at}.test: a list starts with CMD, CMD-SHELL or NONE and has a command"),
        },
    };
    let field = |value: &Option<Scalar>,
                 name: &str,
                 default: u64,
                 min: u64,
                 max: u64,
                 notes: &mut Vec<String>|
     -> anyhow::Result<u64> {
        let given = value
            .as_ref()
            .map(|v| seconds(v, &format!("{at}.{name}")))
            .transpose()?;
        Ok(clamp(
            given.unwrap_or(default),
            min,
            max,
            &format!("{at}.{name}"),
            notes,
        ))
    };
    let interval = field(&check.interval, "interval", 30, 5, 300, notes)?;
    let timeout = field(&check.timeout, "timeout", 30, 2, 60, notes)?;
    let start_period = field(&check.start_period, "start_period", 0, 0, 300, notes)?;
    let retries = u64::from(check.retries.unwrap_or(3));
    if !(1..=10).contains(&retries) {
        notes.push(format!(
            "{at}.retries: {retries} is outside ECS's 1 to 10; {} is used",
            retries.clamp(1, 10)
        ));
    }
    let retries = retries.clamp(1, 10);
    let mut out =
        json!({"command": command, "interval": interval, "timeout": timeout, "retries": retries});
    if start_period > 0 {
        out["startPeriod"] = start_period.into();
    }
    Ok(Some(out))
}

/// Mebibytes of a Compose byte size (`512M`, `1g`, `1024k`, `1073741824`), rounded up.
pub fn mebibytes(value: &Scalar, at: &str) -> anyhow::Result<u64> {
    let text = value.to_string().trim().to_lowercase();
    let digits = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: f64 = number
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n > 0.0)
        .with_context(|| format!("{at}: '{text}' is not a size (e.g. 512M, 1G)"))?;
    let scale = match unit.trim() {
        "" | "b" => 1.0,
        "k" | "kb" => 1024.0,
        "m" | "mb" => 1024.0 * 1024.0,
        "g" | "gb" => 1024.0 * 1024.0 * 1024.0,
        _ => bail!("{at}: '{text}' is not a size (units b, k, m, g)"),
    };
    Ok((number * scale / (1024.0 * 1024.0)).ceil() as u64)
}

/// `deploy.resources`: cpus → CPU units (1,024 a core), memory limit → `memory`, memory
/// reservation → `memoryReservation`; with neither memory, 128 MiB reserved as `berth run`.
pub fn resources(
    spec: &ServiceSpec,
    at: &str,
    container: &mut Map<String, Value>,
) -> anyhow::Result<()> {
    let resources = spec
        .deploy
        .as_ref()
        .and_then(|d| d.resources.clone())
        .unwrap_or_default();
    let limits = resources.limits.unwrap_or_default();
    let reservations = resources.reservations.unwrap_or_default();
    let cpus = limits
        .cpus
        .as_ref()
        .map(|c| (c, "limits"))
        .or(reservations.cpus.as_ref().map(|c| (c, "reservations")));
    if let Some((cpus, kind)) = cpus {
        let text = cpus.to_string();
        let cores: f64 = text
            .parse()
            .ok()
            .filter(|n: &f64| n.is_finite() && *n >= 0.0)
            .with_context(|| {
                format!("{at}.deploy.resources.{kind}.cpus: '{text}' is not a number of CPUs")
            })?;
        container.insert("cpu".into(), ((cores * 1024.0).round() as u64).into());
    }
    let limit = limits
        .memory
        .as_ref()
        .map(|m| mebibytes(m, &format!("{at}.deploy.resources.limits.memory")))
        .transpose()?;
    let reservation = reservations
        .memory
        .as_ref()
        .map(|m| mebibytes(m, &format!("{at}.deploy.resources.reservations.memory")))
        .transpose()?;
    if let Some(limit) = limit {
        container.insert("memory".into(), limit.into());
    }
    match (reservation, limit) {
        (Some(reservation), _) => {
            container.insert("memoryReservation".into(), reservation.into());
        }
        (None, None) => {
            container.insert("memoryReservation".into(), 128.into());
        }
        (None, Some(_)) => {}
    }
    Ok(())
}

/// `restart` as a container restart policy (restart in place, as Docker does). Whatever it
/// says, an ECS service replaces a task that stops.
pub fn restart_policy(
    restart: Option<&str>,
    at: &str,
    notes: &mut Vec<String>,
) -> anyhow::Result<Option<Value>> {
    match restart {
        None => Ok(None),
        Some("no") => {
            notes.push(format!(
                "{at}.restart: no (an ECS service still replaces a task that stops)"
            ));
            Ok(None)
        }
        Some("always" | "unless-stopped") => Ok(Some(json!({"enabled": true}))),
        Some(policy) if policy == "on-failure" || policy.starts_with("on-failure:") => {
            if let Some(count) = policy.strip_prefix("on-failure:") {
                notes.push(format!(
                    "{at}.restart: the limit of {count} restarts (ECS restarts without a limit)"
                ));
            }
            Ok(Some(json!({"enabled": true, "ignoredExitCodes": [0]})))
        }
        Some(other) => bail!(
            "{at}.restart: '{other}' is not a policy (no, always, on-failure[:N], unless-stopped)"
        ),
    }
}
