//! The Compose file as `berth compose` reads it: the subset of the Compose specification it
//! maps onto ECS, as typed structs, and the list of every key it does not map, so that nothing
//! in a file is dropped without saying so.
//!
//! The YAML is read with `serde_norway`, the maintained fork of the archived `serde_yaml`: same
//! API, YAML 1.2, anchors and merge keys, and errors that name the key path and the line
//! (`services.web.ports[0]: invalid type: ... at line 7 column 9`). It brings no crate the
//! workspace does not already have (`indexmap`, `itoa`, `ryu`) besides its libyaml port.

use anyhow::Context;
use serde::Deserialize;
use serde_norway::Value as Yaml;
use std::collections::BTreeMap;

/// A Compose file: its project name (`name:`), services and named volumes.
#[derive(Debug, Default, Deserialize)]
pub struct ComposeFile {
    pub name: Option<String>,
    #[serde(default)]
    pub services: BTreeMap<String, ServiceSpec>,
    #[serde(default)]
    pub volumes: BTreeMap<String, Option<VolumeSpec>>,
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretSpec>,
}

/// A top-level secret: its content is a file's or an environment variable's.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SecretSpec {
    pub file: Option<String>,
    pub environment: Option<String>,
}

/// A service's `secrets` entry: a secret's name, or `{source, target}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ServiceSecret {
    Short(String),
    Long {
        source: String,
        target: Option<String>,
    },
}

impl ServiceSecret {
    /// The secret, and the file name it gets under /run/secrets.
    pub fn source_and_target(&self) -> (String, String) {
        match self {
            ServiceSecret::Short(name) => (name.clone(), name.clone()),
            ServiceSecret::Long { source, target } => (
                source.clone(),
                target.clone().unwrap_or_else(|| source.clone()),
            ),
        }
    }
}

/// One service of a Compose file.
#[derive(Debug, Default, Deserialize)]
pub struct ServiceSpec {
    pub image: Option<String>,
    pub command: Option<Words>,
    pub entrypoint: Option<Words>,
    pub environment: Option<Pairs>,
    pub env_file: Option<EnvFiles>,
    #[serde(default)]
    pub ports: Vec<Port>,
    pub depends_on: Option<DependsOn>,
    pub healthcheck: Option<Healthcheck>,
    pub deploy: Option<Deploy>,
    pub scale: Option<u32>,
    pub restart: Option<String>,
    #[serde(default)]
    pub volumes: Vec<ServiceVolume>,
    pub labels: Option<Pairs>,
    pub logging: Option<Logging>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub stop_grace_period: Option<Scalar>,
    pub read_only: Option<bool>,
    pub privileged: Option<bool>,
    pub init: Option<bool>,
    #[serde(default)]
    pub secrets: Vec<ServiceSecret>,
}

/// A YAML scalar where Compose takes a string, a number or a boolean alike.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    String(String),
    Bool(bool),
    Int(i64),
    Float(f64),
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::String(s) => f.write_str(s),
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Float(x) => write!(f, "{x}"),
        }
    }
}

/// `command`, `entrypoint`, `healthcheck.test`: a string (split as a shell would) or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Words {
    String(String),
    List(Vec<String>),
}

/// `environment`, `labels`: `["K=V", "K"]` or `{K: V, K: null}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Pairs {
    List(Vec<String>),
    Map(BTreeMap<String, Option<Scalar>>),
}

impl Pairs {
    /// The pairs; a name without a value (`K`, `K: null`) has `None`.
    pub fn entries(&self) -> Vec<(String, Option<String>)> {
        match self {
            Pairs::List(items) => items
                .iter()
                .map(|item| match item.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (item.clone(), None),
                })
                .collect(),
            Pairs::Map(map) => map
                .iter()
                .map(|(k, v)| (k.clone(), v.as_ref().map(Scalar::to_string)))
                .collect(),
        }
    }
}

/// `env_file`: one path, or a list of paths or `{path, required}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum EnvFiles {
    One(String),
    Many(Vec<EnvFile>),
}

/// One entry of an `env_file` list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum EnvFile {
    Path(String),
    Long {
        path: String,
        #[serde(default = "yes")]
        required: bool,
    },
}

fn yes() -> bool {
    true
}

impl EnvFiles {
    /// The files, each with whether it must exist.
    pub fn files(&self) -> Vec<(String, bool)> {
        match self {
            EnvFiles::One(path) => vec![(path.clone(), true)],
            EnvFiles::Many(list) => list
                .iter()
                .map(|f| match f {
                    EnvFile::Path(path) => (path.clone(), true),
                    EnvFile::Long { path, required } => (path.clone(), *required),
                })
                .collect(),
        }
    }
}

/// A `ports` entry: `"8080:80"`, `"80/udp"`, `80`, or the long syntax.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Port {
    Short(Scalar),
    Long(LongPort),
}

/// The long syntax of a port.
#[derive(Debug, Clone, Deserialize)]
pub struct LongPort {
    pub target: u16,
    pub published: Option<Scalar>,
    pub protocol: Option<String>,
    pub host_ip: Option<String>,
    pub name: Option<String>,
    pub app_protocol: Option<String>,
}

/// `depends_on`: a list of services, or a map of service → condition.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DependsOn {
    List(Vec<String>),
    Map(BTreeMap<String, Dependency>),
}

/// The long syntax of one dependency.
#[derive(Debug, Clone, Deserialize)]
pub struct Dependency {
    pub condition: Option<String>,
}

impl DependsOn {
    /// Each service depended on with its condition (`service_started` when none is given).
    pub fn entries(&self) -> Vec<(String, String)> {
        match self {
            DependsOn::List(names) => names
                .iter()
                .map(|n| (n.clone(), "service_started".to_string()))
                .collect(),
            DependsOn::Map(map) => map
                .iter()
                .map(|(n, d)| {
                    let condition = d.condition.as_deref().unwrap_or("service_started");
                    (n.clone(), condition.to_string())
                })
                .collect(),
        }
    }
}

/// `healthcheck`.
#[derive(Debug, Clone, Deserialize)]
pub struct Healthcheck {
    pub test: Option<Words>,
    pub interval: Option<Scalar>,
    pub timeout: Option<Scalar>,
    pub start_period: Option<Scalar>,
    pub retries: Option<u32>,
    #[serde(default)]
    pub disable: bool,
}

/// `deploy` (the parts that mean something on one cluster).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Deploy {
    pub replicas: Option<u32>,
    pub resources: Option<Resources>,
}

/// `deploy.resources`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Resources {
    pub limits: Option<Resource>,
    pub reservations: Option<Resource>,
}

/// `deploy.resources.limits` or `.reservations`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Resource {
    pub cpus: Option<Scalar>,
    pub memory: Option<Scalar>,
}

/// A service's `volumes` entry: `"data:/var/lib/x:ro"`, `"./site:/www"`, `"/cache"`, or long.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ServiceVolume {
    Short(String),
    Long(LongVolume),
}

/// The long syntax of a service's volume.
#[derive(Debug, Clone, Deserialize)]
pub struct LongVolume {
    #[serde(rename = "type")]
    pub kind: String,
    pub source: Option<String>,
    pub target: String,
    #[serde(default)]
    pub read_only: bool,
}

/// `logging`.
#[derive(Debug, Clone, Deserialize)]
pub struct Logging {
    pub driver: Option<String>,
    #[serde(default)]
    pub options: BTreeMap<String, Scalar>,
}

/// A top-level named volume.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct VolumeSpec {
    pub driver: Option<String>,
    #[serde(default)]
    pub driver_opts: BTreeMap<String, Scalar>,
    pub labels: Option<Pairs>,
    #[serde(default)]
    pub external: bool,
    pub name: Option<String>,
}

/// The keys this module maps, per place in the file; anything else is listed as unsupported.
const TOP_KEYS: &[&str] = &["name", "services", "volumes", "secrets"];
const SERVICE_KEYS: &[&str] = &[
    "image",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "ports",
    "depends_on",
    "healthcheck",
    "deploy",
    "scale",
    "restart",
    "volumes",
    "labels",
    "logging",
    "working_dir",
    "user",
    "hostname",
    "stop_grace_period",
    "read_only",
    "privileged",
    "init",
    "secrets",
];
const DEPLOY_KEYS: &[&str] = &["replicas", "resources"];
const RESOURCES_KEYS: &[&str] = &["limits", "reservations"];
const RESOURCE_KEYS: &[&str] = &["cpus", "memory"];
const HEALTHCHECK_KEYS: &[&str] = &[
    "test",
    "interval",
    "timeout",
    "start_period",
    "retries",
    "disable",
];
const LOGGING_KEYS: &[&str] = &["driver", "options"];
const DEPENDENCY_KEYS: &[&str] = &["condition"];
const LONG_PORT_KEYS: &[&str] = &[
    "target",
    "published",
    "protocol",
    "host_ip",
    "name",
    "app_protocol",
];
const LONG_VOLUME_KEYS: &[&str] = &["type", "source", "target", "read_only"];
const VOLUME_KEYS: &[&str] = &["driver", "driver_opts", "labels", "external", "name"];
const SECRET_KEYS: &[&str] = &["file", "environment"];
const SERVICE_SECRET_KEYS: &[&str] = &["source", "target"];

/// A Compose file read from `text`, with the keys it has that `berth compose` does not map
/// (as paths: `services.web.build`). `path` names the file in errors.
pub fn parse(text: &str, path: &str) -> anyhow::Result<(ComposeFile, Vec<String>)> {
    let mut value: Yaml =
        serde_norway::from_str(text).with_context(|| format!("{path} is not valid YAML"))?;
    if value.is_null() {
        anyhow::bail!("{path} is empty: a Compose file needs `services:`");
    }
    // Parsed straight from the text first, so a type error names its line; the merged value
    // (anchors and `<<:` merge keys applied) is what is used.
    serde_norway::from_str::<ComposeFile>(text)
        .with_context(|| format!("{path} is not a Compose file this can read"))?;
    value
        .apply_merge()
        .with_context(|| format!("{path}: a `<<` merge key does not merge a mapping"))?;
    let unsupported = unsupported_keys(&value);
    let file: ComposeFile = serde_norway::from_value(value)
        .with_context(|| format!("{path} is not a Compose file this can read"))?;
    if file.services.is_empty() {
        anyhow::bail!("{path} has no services: a Compose file needs `services:` with at least one");
    }
    Ok((file, unsupported))
}

/// Every key of `root` this module does not map, as a dotted path.
pub fn unsupported_keys(root: &Yaml) -> Vec<String> {
    let mut found = Vec::new();
    let mut extra = |map: &Yaml, known: &[&str], at: &str| {
        if let Some(map) = map.as_mapping() {
            for key in map.keys() {
                let name = key
                    .as_str()
                    .map_or_else(|| format!("{key:?}"), str::to_string);
                // `x-` keys are extensions: the specification says tools ignore them.
                if !known.contains(&name.as_str()) && !name.starts_with("x-") {
                    found.push(if at.is_empty() {
                        name
                    } else {
                        format!("{at}.{name}")
                    });
                }
            }
        }
    };
    extra(root, TOP_KEYS, "");
    for (name, service) in entries(&root["services"]) {
        let at = format!("services.{name}");
        extra(service, SERVICE_KEYS, &at);
        extra(&service["deploy"], DEPLOY_KEYS, &format!("{at}.deploy"));
        let resources = &service["deploy"]["resources"];
        extra(resources, RESOURCES_KEYS, &format!("{at}.deploy.resources"));
        for kind in RESOURCES_KEYS {
            extra(
                &resources[*kind],
                RESOURCE_KEYS,
                &format!("{at}.deploy.resources.{kind}"),
            );
        }
        extra(
            &service["healthcheck"],
            HEALTHCHECK_KEYS,
            &format!("{at}.healthcheck"),
        );
        extra(&service["logging"], LOGGING_KEYS, &format!("{at}.logging"));
        for (dep, spec) in entries(&service["depends_on"]) {
            extra(spec, DEPENDENCY_KEYS, &format!("{at}.depends_on.{dep}"));
        }
        for (i, port) in service["ports"]
            .as_sequence()
            .into_iter()
            .flatten()
            .enumerate()
        {
            extra(port, LONG_PORT_KEYS, &format!("{at}.ports[{i}]"));
        }
        for (i, secret) in service["secrets"]
            .as_sequence()
            .into_iter()
            .flatten()
            .enumerate()
        {
            extra(secret, SERVICE_SECRET_KEYS, &format!("{at}.secrets[{i}]"));
        }
        for (i, volume) in service["volumes"]
            .as_sequence()
            .into_iter()
            .flatten()
            .enumerate()
        {
            extra(volume, LONG_VOLUME_KEYS, &format!("{at}.volumes[{i}]"));
        }
    }
    for (name, volume) in entries(&root["volumes"]) {
        extra(volume, VOLUME_KEYS, &format!("volumes.{name}"));
    }
    for (name, secret) in entries(&root["secrets"]) {
        extra(secret, SECRET_KEYS, &format!("secrets.{name}"));
    }
    found
}

/// The string-keyed entries of a mapping (none for anything else).
fn entries(value: &Yaml) -> Vec<(String, &Yaml)> {
    value
        .as_mapping()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| k.as_str().map(|k| (k.to_string(), v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_not_mapped_is_listed_with_its_path() {
        let text = r#"
version: "3.9"
x-common: &common
  restart: always
services:
  web:
    <<: *common
    image: busybox
    build: .
    networks: [front]
    deploy:
      replicas: 2
      placement: {constraints: []}
      resources:
        limits: {cpus: "0.5", memory: 64M, pids: 10}
    healthcheck: {test: ["CMD", "true"], start_interval: 1s}
    ports:
      - target: 80
        mode: ingress
    depends_on:
      db: {condition: service_healthy, restart: true}
  db:
    image: busybox
    secrets: [password, {source: cert, target: tls.pem, mode: 0400}]
networks:
  front: {}
secrets:
  password: {file: ./pw}
  cert: {external: true}
"#;
        let (file, unsupported) = parse(text, "compose.yaml").expect("parses");
        assert_eq!(
            unsupported,
            vec![
                "version",
                "networks",
                "services.web.build",
                "services.web.networks",
                "services.web.deploy.placement",
                "services.web.deploy.resources.limits.pids",
                "services.web.healthcheck.start_interval",
                "services.web.depends_on.db.restart",
                "services.web.ports[0].mode",
                "services.db.secrets[1].mode",
                "secrets.cert.external",
            ]
        );
        assert_eq!(
            file.services["web"].restart.as_deref(),
            Some("always"),
            "merge key applied"
        );
        assert_eq!(
            file.services["web"]
                .deploy
                .as_ref()
                .and_then(|d| d.replicas),
            Some(2)
        );
    }

    #[test]
    fn a_wrong_type_names_the_key_and_the_line() {
        let text = "services:\n  web:\n    image: busybox\n    ports:\n      - target: eighty\n";
        let error = format!("{:#}", parse(text, "compose.yaml").expect_err("bad port"));
        assert!(error.contains("services.web.ports"), "{error}");
        assert!(error.contains("line 5"), "{error}");
        let error = format!(
            "{:#}",
            parse("services: [a\n", "c.yaml").expect_err("bad yaml")
        );
        assert!(
            error.contains("c.yaml is not valid YAML") && error.contains("line"),
            "{error}"
        );
        let error = format!(
            "{:#}",
            parse("name: x\n", "c.yaml").expect_err("no services")
        );
        assert!(error.contains("no services"), "{error}");
    }

    #[test]
    fn environment_and_labels_read_as_a_list_or_a_map() {
        let list = Pairs::List(vec!["A=1".into(), "B".into(), "C=x=y".into()]);
        assert_eq!(
            list.entries(),
            vec![
                ("A".into(), Some("1".into())),
                ("B".into(), None),
                ("C".into(), Some("x=y".into()))
            ]
        );
        let map: Pairs = serde_norway::from_str("{A: 1, B: null, C: true, D: text}").expect("map");
        assert_eq!(
            map.entries(),
            vec![
                ("A".into(), Some("1".into())),
                ("B".into(), None),
                ("C".into(), Some("true".into())),
                ("D".into(), Some("text".into()))
            ]
        );
    }
}
