//! The mapping from a Compose file to ECS: for each Compose service, the
//! RegisterTaskDefinition input of family `{project}-{service}` (one container named after the
//! service) and the CreateService input of the service of the same name, in dependency order,
//! with everything the mapping could not keep listed. Pure: the caller reads the files and the
//! environment.

use super::fields::{clamp, health_check, port_mapping, resources, restart_policy, seconds};
use super::file::{ComposeFile, ServiceSpec, Words};
use super::secrets::{container_secrets, read_secrets, role_name, SecretPlan, SECRET_FILES_LABEL};
use super::volumes::volumes;
use anyhow::{bail, Context};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The tag (on services and task definitions) and Docker label naming the project, as Compose
/// names it; `down` finds a project's services by it.
pub const PROJECT_LABEL: &str = "com.docker.compose.project";
/// The tag and Docker label naming the Compose service.
pub const SERVICE_LABEL: &str = "com.docker.compose.service";
/// The Docker label holding the hash of everything else in the task definition: `up` compares
/// it with the service's current task definition to know whether the service changed.
pub const HASH_LABEL: &str = "com.docker.compose.config-hash";

/// What the mapping needs from outside the file.
pub struct Source<'a> {
    /// The project name (already normalised).
    pub project: String,
    /// The directory of the Compose file: relative paths are relative to it.
    pub dir: PathBuf,
    /// The environment, for `environment` names without a value.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// The text of an `env_file`, or `None` when it does not exist.
    pub read: &'a dyn Fn(&Path) -> Option<String>,
}

/// What `up` does for the project: every service in dependency order.
#[derive(Debug, Clone)]
pub struct Plan {
    pub project: String,
    pub services: Vec<ServicePlan>,
    /// Keys and values the mapping does not keep, each with where it is.
    pub unsupported: Vec<String>,
    /// The secrets to store, and the execution role reading them (when there are any).
    pub secrets: Vec<SecretPlan>,
    pub execution_role: Option<String>,
}

/// One Compose service as ECS calls.
#[derive(Debug, Clone)]
pub struct ServicePlan {
    /// The Compose service name.
    pub name: String,
    /// The ECS service name and task definition family: `{project}-{service}`.
    pub service_name: String,
    /// The RegisterTaskDefinition input.
    pub task_definition: Value,
    /// The CreateService input (without `cluster`).
    pub service: Value,
    /// The hash in the container's `com.docker.compose.config-hash` label.
    pub config_hash: String,
    /// Compose services this one waits for, with the condition.
    pub depends_on: Vec<(String, String)>,
    /// The Secrets Manager names of the secrets it reads.
    pub secrets: Vec<String>,
}

impl ServicePlan {
    /// The CreateService input, in `cluster`.
    pub fn create_service(&self, cluster: &str) -> Value {
        let mut create = self.service.clone();
        create["cluster"] = cluster.into();
        create
    }
}

impl Plan {
    /// The secrets to store, as `convert` prints them.
    fn secrets_json(&self) -> Vec<Value> {
        self.secrets
            .iter()
            .map(|s| json!({"name": s.name, "secretsManagerName": s.secret_name, "from": s.from}))
            .collect()
    }

    /// The plan as `berth compose convert --output json` prints it: the ECS inputs alone, in
    /// dependency order.
    pub fn to_ecs_json(&self, cluster: &str) -> Value {
        let task_definitions: Vec<&Value> =
            self.services.iter().map(|s| &s.task_definition).collect();
        let services: Vec<Value> = self
            .services
            .iter()
            .map(|s| s.create_service(cluster))
            .collect();
        json!({"project": self.project, "taskDefinitions": task_definitions, "services": services,
               "secrets": self.secrets_json(), "unsupported": self.unsupported})
    }

    /// The plan as `berth compose convert` prints it.
    pub fn to_json(&self, cluster: &str) -> Value {
        let services: Vec<Value> = self
            .services
            .iter()
            .map(|s| {
                let create = s.create_service(cluster);
                json!({
                    "name": s.name,
                    "dependsOn": s.depends_on.iter().map(|(n, c)| json!({"service": n, "condition": c})).collect::<Vec<_>>(),
                    "registerTaskDefinition": s.task_definition,
                    "createService": create,
                })
            })
            .collect();
        json!({"project": self.project, "services": services, "secrets": self.secrets_json(),
               "executionRole": self.execution_role, "unsupported": self.unsupported})
    }
}

/// A Compose project name made valid, as Compose does: lower case, letters, digits, `-` and
/// `_`, starting with a letter or digit.
pub fn normalise_project(name: &str) -> String {
    let cleaned: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    cleaned
        .trim_start_matches(['-', '_'])
        .chars()
        .take(200)
        .collect()
}

/// The ECS name of a Compose service of `project`: `{project}-{service}` (a `.` becomes `-`:
/// ECS names are letters, digits, `-` and `_`).
pub fn ecs_name(project: &str, service: &str) -> String {
    let service: String = service
        .chars()
        .map(|c| if c == '.' { '-' } else { c })
        .collect();
    format!("{project}-{service}")
}

/// The plan for `file` (whose unmapped keys are `unsupported`).
pub fn convert(
    file: &ComposeFile,
    mut unsupported: Vec<String>,
    source: &Source,
) -> anyhow::Result<Plan> {
    if source.project.is_empty() {
        bail!("the project name is empty: give one with --project NAME or `name:` in the file");
    }
    let secrets = read_secrets(file, source)?;
    let execution_role = (!secrets.is_empty()).then(|| role_name(&source.project));
    let mut services = Vec::new();
    for name in order(file)? {
        let spec = &file.services[&name];
        let inputs = Inputs {
            file,
            source,
            secrets: &secrets,
            execution_role: execution_role.as_deref(),
        };
        services.push(service_plan(&inputs, &name, spec, &mut unsupported)?);
    }
    Ok(Plan {
        project: source.project.clone(),
        services,
        unsupported,
        secrets,
        execution_role,
    })
}

/// The services in an order where each comes after those it depends on (then by name).
pub fn order(file: &ComposeFile) -> anyhow::Result<Vec<String>> {
    let mut ordered: Vec<String> = Vec::new();
    let mut placed: BTreeSet<String> = BTreeSet::new();
    let deps = |name: &str| -> Vec<String> {
        file.services[name]
            .depends_on
            .as_ref()
            .map(|d| d.entries().into_iter().map(|(n, _)| n).collect())
            .unwrap_or_default()
    };
    for (name, spec) in &file.services {
        for (dep, _) in spec
            .depends_on
            .as_ref()
            .map(|d| d.entries())
            .unwrap_or_default()
        {
            if !file.services.contains_key(&dep) {
                bail!("services.{name}.depends_on: there is no service '{dep}' in the file");
            }
        }
    }
    while ordered.len() < file.services.len() {
        let ready: Vec<String> = file
            .services
            .keys()
            .filter(|n| !placed.contains(*n) && deps(n).iter().all(|d| placed.contains(d)))
            .cloned()
            .collect();
        if ready.is_empty() {
            let left: Vec<&String> = file
                .services
                .keys()
                .filter(|n| !placed.contains(*n))
                .collect();
            bail!(
                "depends_on makes a cycle among the services {}",
                left.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        for name in ready {
            placed.insert(name.clone());
            ordered.push(name);
        }
    }
    Ok(ordered)
}

/// What every service's mapping reads besides its own spec.
struct Inputs<'a> {
    file: &'a ComposeFile,
    source: &'a Source<'a>,
    secrets: &'a [SecretPlan],
    execution_role: Option<&'a str>,
}

fn service_plan(
    inputs: &Inputs,
    name: &str,
    spec: &ServiceSpec,
    notes: &mut Vec<String>,
) -> anyhow::Result<ServicePlan> {
    let (file, source) = (inputs.file, inputs.source);
    let at = format!("services.{name}");
    let project = &source.project;
    let service_name = ecs_name(project, name);
    let image = spec.image.as_deref().with_context(|| {
        format!("{at} has no image: `build` is not supported, build and tag the image first and name it in `image:`")
    })?;
    let mut container = Map::new();
    container.insert("name".into(), name.into());
    container.insert("image".into(), image.into());
    container.insert("essential".into(), true.into());
    if let Some(words) = &spec.entrypoint {
        container.insert(
            "entryPoint".into(),
            split(words, &format!("{at}.entrypoint"))?.into(),
        );
    }
    if let Some(words) = &spec.command {
        container.insert(
            "command".into(),
            split(words, &format!("{at}.command"))?.into(),
        );
    }
    let environment = environment(spec, &at, source)?;
    if !environment.is_empty() {
        let pairs: Vec<Value> = environment
            .iter()
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect();
        container.insert("environment".into(), pairs.into());
    }
    let mut fixed_host_port = false;
    let mut mappings = Vec::new();
    for (i, port) in spec.ports.iter().enumerate() {
        let mapping = port_mapping(port, &format!("{at}.ports[{i}]"), notes)?;
        fixed_host_port |= mapping.get("hostPort").is_some();
        mappings.push(mapping);
    }
    if !mappings.is_empty() {
        container.insert("portMappings".into(), mappings.into());
    }
    if let Some(check) = &spec.healthcheck {
        if let Some(check) = health_check(check, &format!("{at}.healthcheck"), notes)? {
            container.insert("healthCheck".into(), check);
        }
    }
    resources(spec, &at, &mut container)?;
    let (volumes, mounts) = volumes(file, spec, &at, source, notes)?;
    if !mounts.is_empty() {
        container.insert("mountPoints".into(), mounts.into());
    }
    if let Some(policy) = restart_policy(spec.restart.as_deref(), &at, notes)? {
        container.insert("restartPolicy".into(), policy);
    }
    if let Some(logging) = &spec.logging {
        let options: Map<String, Value> = logging
            .options
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string().into()))
            .collect();
        let mut config = json!({"logDriver": logging.driver.as_deref().unwrap_or("json-file")});
        if !options.is_empty() {
            config["options"] = options.into();
        }
        container.insert("logConfiguration".into(), config);
    }
    for (key, field) in [
        (&spec.working_dir, "workingDirectory"),
        (&spec.user, "user"),
        (&spec.hostname, "hostname"),
    ] {
        if let Some(value) = key {
            container.insert(field.into(), value.clone().into());
        }
    }
    if let Some(period) = &spec.stop_grace_period {
        let seconds = seconds(period, &format!("{at}.stop_grace_period"))?;
        container.insert(
            "stopTimeout".into(),
            clamp(seconds, 2, 120, &format!("{at}.stop_grace_period"), notes).into(),
        );
    }
    if let Some(read_only) = spec.read_only {
        container.insert("readonlyRootFilesystem".into(), read_only.into());
    }
    if let Some(privileged) = spec.privileged {
        container.insert("privileged".into(), privileged.into());
    }
    if let Some(init) = spec.init {
        container.insert(
            "linuxParameters".into(),
            json!({"initProcessEnabled": init}),
        );
    }
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in spec
        .labels
        .as_ref()
        .map(|l| l.entries())
        .unwrap_or_default()
    {
        labels.insert(key, value.unwrap_or_default());
    }
    let (secrets, secret_names) = container_secrets(file, spec, &at, inputs.secrets, notes)?;
    if !secrets.is_empty() {
        container.insert("secrets".into(), secrets.into());
        labels.insert(SECRET_FILES_LABEL.into(), "true".into());
    }
    labels.insert(PROJECT_LABEL.into(), project.clone());
    labels.insert(SERVICE_LABEL.into(), name.into());
    container.insert("dockerLabels".into(), json!(labels));

    let tags =
        json!([{"key": PROJECT_LABEL, "value": project}, {"key": SERVICE_LABEL, "value": name}]);
    let mut task_definition = json!({
        "family": service_name,
        "containerDefinitions": [Value::Object(container)],
        "tags": tags,
    });
    if !volumes.is_empty() {
        task_definition["volumes"] = volumes.into();
    }
    if let (Some(role), false) = (inputs.execution_role, secret_names.is_empty()) {
        // The role's name until `up` knows its ARN.
        task_definition["executionRoleArn"] = role.into();
    }
    let config_hash = hash(&task_definition);
    task_definition["containerDefinitions"][0]["dockerLabels"][HASH_LABEL] =
        config_hash.clone().into();

    let replicas = spec
        .deploy
        .as_ref()
        .and_then(|d| d.replicas)
        .or(spec.scale)
        .unwrap_or(1);
    // A fixed host port can be bound by one task per host at a time: replace tasks (stop the
    // old, then start the new, as Compose recreates a container) rather than start the new
    // one beside the old, which could never be placed on a one-host cluster.
    let (minimum, maximum) = if fixed_host_port {
        (0, 100)
    } else {
        (100, 200)
    };
    let service = json!({
        "serviceName": service_name,
        "taskDefinition": service_name,
        "desiredCount": replicas,
        "deploymentConfiguration": {
            "minimumHealthyPercent": minimum,
            "maximumPercent": maximum,
            "deploymentCircuitBreaker": {"enable": true, "rollback": true},
        },
        "tags": tags,
    });
    let depends_on = spec
        .depends_on
        .as_ref()
        .map(|d| d.entries())
        .unwrap_or_default();
    for (dep, condition) in &depends_on {
        match condition.as_str() {
            "service_started" | "service_healthy" => {}
            "service_completed_successfully" => notes.push(format!(
                "{at}.depends_on.{dep}: service_completed_successfully (an ECS service never completes: '{dep}' is only started first)"
            )),
            other => bail!("{at}.depends_on.{dep}.condition: '{other}' is not a condition (service_started, service_healthy, service_completed_successfully)"),
        }
    }
    Ok(ServicePlan {
        name: name.into(),
        service_name,
        task_definition,
        service,
        config_hash,
        depends_on,
        secrets: secret_names,
    })
}

/// A hash of `value` that does not depend on the order of object keys.
fn hash(value: &Value) -> String {
    fn canonical(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let sorted: BTreeMap<&String, &Value> = map.iter().collect();
                out.push('{');
                for (k, v) in sorted {
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    canonical(v, out);
                    out.push(',');
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for item in items {
                    canonical(item, out);
                    out.push(',');
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut text = String::new();
    canonical(value, &mut text);
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// `command`/`entrypoint`: a list as it is; a string split as a POSIX shell splits words.
fn split(words: &Words, at: &str) -> anyhow::Result<Vec<String>> {
    match words {
        Words::List(list) => Ok(list.clone()),
        Words::String(text) => shlex::split(text).with_context(|| {
            format!("{at}: cannot split '{text}' into words (an unclosed quote?)")
        }),
    }
}

/// `env_file` then `environment` (which wins), by name; a name without a value takes the
/// value in the environment of `berth compose`, and is left out when that has none.
fn environment(
    spec: &ServiceSpec,
    at: &str,
    source: &Source,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    for (path, required) in spec
        .env_file
        .as_ref()
        .map(|f| f.files())
        .unwrap_or_default()
    {
        let full = source.dir.join(&path);
        let Some(text) = (source.read)(&full) else {
            if required {
                bail!("{at}.env_file: {} does not exist", full.display());
            }
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            match line.split_once('=') {
                Some((key, value)) => {
                    let value = value.trim();
                    let unquoted = ['"', '\'']
                        .iter()
                        .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
                        .unwrap_or(value);
                    env.insert(key.trim().to_string(), unquoted.to_string());
                }
                None if line.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                    if let Some(value) = (source.env)(line) {
                        env.insert(line.to_string(), value);
                    }
                }
                None => bail!("{}:{}: write it as NAME=VALUE", full.display(), n + 1),
            }
        }
    }
    for (key, value) in spec
        .environment
        .as_ref()
        .map(|e| e.entries())
        .unwrap_or_default()
    {
        match value.or_else(|| (source.env)(&key)) {
            Some(value) => {
                env.insert(key, value);
            }
            None => {
                env.remove(&key);
            }
        }
    }
    Ok(env)
}

#[cfg(test)]
mod tests;
