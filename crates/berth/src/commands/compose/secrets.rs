//! Compose secrets as ECS secrets. A top-level secret (`file:` or `environment:`) a service
//! uses becomes the Secrets Manager secret `{project}/{name}` holding its content; the
//! project's execution role `{project}-compose-execution` (trusted by `ecs-tasks`, allowed
//! `secretsmanager:GetSecretValue` on exactly those secrets) reads them as a task starts; the
//! container names them in `secrets` (the file name under /run/secrets as `name`) and carries
//! Berth's `com.berth.secret-files=true` label, so each arrives as the file
//! `/run/secrets/NAME`, where Compose puts it. `up` compares a secret's stored value with the
//! file and, when it changed, stores the new one and redeploys the services using it (tasks
//! read secrets as they start). No value is printed, hashed into a label, or kept on disk.

use super::convert::{Source, PROJECT_LABEL};
use super::file::{ComposeFile, ServiceSpec};
use anyhow::{bail, Context};
use berth_agent::client::{xml_text, ClientError, ServerClient};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The Docker label that has Berth's agent write a container's secrets as files.
pub const SECRET_FILES_LABEL: &str = "com.berth.secret-files";
/// The inline policy of the execution role.
const POLICY_NAME: &str = "compose-secrets";

/// One secret `up` stores.
#[derive(Clone)]
pub struct SecretPlan {
    /// Its Compose name.
    pub name: String,
    /// Its Secrets Manager name, `{project}/{name}`.
    pub secret_name: String,
    /// Where the content comes from (`file ./db_password.txt`), for the plan.
    pub from: String,
    /// The content.
    pub value: String,
}

impl std::fmt::Debug for SecretPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretPlan")
            .field("name", &self.name)
            .field("secret_name", &self.secret_name)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// The execution role of `project` (IAM role names are at most 64 characters).
pub fn role_name(project: &str) -> String {
    let suffix = "-compose-execution";
    let keep = 64 - suffix.len();
    format!("{}{suffix}", &project[..project.len().min(keep)])
}

/// The top-level secrets some service uses, read.
pub fn read_secrets(file: &ComposeFile, source: &Source) -> anyhow::Result<Vec<SecretPlan>> {
    let used: BTreeSet<String> = file
        .services
        .values()
        .flat_map(|s| s.secrets.iter().map(|x| x.source_and_target().0))
        .collect();
    let mut secrets = Vec::new();
    for name in used {
        let Some(spec) = file.secrets.get(&name) else {
            continue; // reported by `container_secrets`, with the service that names it
        };
        let at = format!("secrets.{name}");
        let (from, value) = match (&spec.file, &spec.environment) {
            (Some(path), None) => {
                let full = source.dir.join(path);
                let value = (source.read)(&full)
                    .with_context(|| format!("{at}.file: {} does not exist", full.display()))?;
                (format!("file {path}"), value)
            }
            (None, Some(variable)) => {
                let value = (source.env)(variable).with_context(|| {
                    format!("{at}.environment: the variable {variable} is not set")
                })?;
                (format!("environment {variable}"), value)
            }
            (Some(_), Some(_)) => bail!("{at}: give one of `file:` or `environment:`, not both"),
            // External (or empty): listed by `container_secrets` where a service uses it.
            (None, None) => continue,
        };
        secrets.push(SecretPlan {
            secret_name: format!("{}/{name}", source.project),
            name,
            from,
            value,
        });
    }
    Ok(secrets)
}

/// The container's `secrets` for `spec` (`valueFrom` the Secrets Manager name until `up`
/// knows the ARN), and the Compose secrets it uses.
pub fn container_secrets(
    file: &ComposeFile,
    spec: &ServiceSpec,
    at: &str,
    secrets: &[SecretPlan],
    notes: &mut Vec<String>,
) -> anyhow::Result<(Vec<Value>, Vec<String>)> {
    let mut entries = Vec::new();
    let mut used = Vec::new();
    for (i, secret) in spec.secrets.iter().enumerate() {
        let (source, target) = secret.source_and_target();
        let Some(plan) = secrets.iter().find(|s| s.name == source) else {
            if file.secrets.contains_key(&source) {
                notes.push(format!("{at}.secrets[{i}]: '{source}' has no `file:` or `environment:` (external secrets are not supported)"));
                continue;
            }
            bail!("{at}.secrets[{i}]: the secret '{source}' is not declared under the top-level `secrets:`");
        };
        if target.is_empty() || target.contains('/') {
            bail!("{at}.secrets[{i}]: the target '{target}' must be a file name (it goes under /run/secrets)");
        }
        entries.push(json!({"name": target, "valueFrom": plan.secret_name}));
        used.push(plan.secret_name.clone());
    }
    Ok((entries, used))
}

/// The name of the error of a failed call, if the server answered one.
fn error_kind(error: &ClientError) -> Option<&str> {
    match error {
        ClientError::Api { kind, .. } => Some(kind.rsplit('#').next().unwrap_or(kind)),
        _ => None,
    }
}

/// Calls Secrets Manager operation `op`.
async fn secretsmanager(
    client: &ServerClient,
    op: &str,
    input: Value,
) -> Result<Value, ClientError> {
    client
        .call_json("secretsmanager", &format!("secretsmanager.{op}"), &input)
        .await
}

/// Stores each secret: created when missing, its value replaced when it differs. The ARN of
/// each by Secrets Manager name, and the names whose value is new.
pub async fn ensure_secrets(
    client: &ServerClient,
    project: &str,
    secrets: &[SecretPlan],
) -> anyhow::Result<(BTreeMap<String, String>, BTreeSet<String>)> {
    let mut arns = BTreeMap::new();
    let mut changed = BTreeSet::new();
    for secret in secrets {
        let name = secret.secret_name.as_str();
        let created = secretsmanager(
            client,
            "CreateSecret",
            json!({"Name": name, "SecretString": secret.value,
                   "Description": format!("Compose secret {} of project {project}", secret.name),
                   "Tags": [{"Key": PROJECT_LABEL, "Value": project}]}),
        )
        .await;
        let arn = match created {
            Ok(answer) => {
                println!("secret {}: stored as {name}", secret.name);
                changed.insert(name.to_string());
                answer["ARN"].as_str().map(str::to_string)
            }
            Err(e) if error_kind(&e) == Some("ResourceExistsException") => {
                let current = secretsmanager(client, "GetSecretValue", json!({"SecretId": name}))
                    .await
                    .with_context(|| format!("cannot read the secret {name}"))?;
                if current["SecretString"].as_str() != Some(secret.value.as_str()) {
                    secretsmanager(
                        client,
                        "PutSecretValue",
                        json!({"SecretId": name, "SecretString": secret.value}),
                    )
                    .await
                    .with_context(|| format!("cannot store the new value of {name}"))?;
                    println!("secret {}: new value stored in {name}", secret.name);
                    changed.insert(name.to_string());
                }
                current["ARN"].as_str().map(str::to_string)
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot create the secret {name}"));
            }
        };
        let arn = arn.with_context(|| format!("Secrets Manager answered no ARN for {name}"))?;
        arns.insert(name.to_string(), arn);
    }
    Ok((arns, changed))
}

/// Makes the execution role `role` (trusted by ECS tasks) allowed to read exactly `arns`;
/// its ARN.
pub async fn ensure_role(
    client: &ServerClient,
    role: &str,
    arns: &BTreeMap<String, String>,
) -> anyhow::Result<String> {
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    .to_string();
    let created = client
        .call_query(
            "iam",
            "CreateRole",
            &[("RoleName", role), ("AssumeRolePolicyDocument", &trust)],
        )
        .await;
    let answer = match created {
        Ok(answer) => answer,
        Err(e) if error_kind(&e) == Some("EntityAlreadyExists") => client
            .call_query("iam", "GetRole", &[("RoleName", role)])
            .await
            .with_context(|| format!("cannot read the role {role}"))?,
        Err(e) => return Err(e).with_context(|| format!("cannot create the role {role}")),
    };
    let arn =
        xml_text(&answer, "Arn").with_context(|| format!("IAM answered no ARN for {role}"))?;
    let resources: Vec<&String> = arns.values().collect();
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue", "Resource": resources}]})
    .to_string();
    client
        .call_query(
            "iam",
            "PutRolePolicy",
            &[
                ("RoleName", role),
                ("PolicyName", POLICY_NAME),
                ("PolicyDocument", &policy),
            ],
        )
        .await
        .with_context(|| format!("cannot allow the role {role} to read the secrets"))?;
    Ok(arn)
}

/// `task_definition` (a plan's RegisterTaskDefinition input) with the secrets' ARNs in
/// `valueFrom` and the execution role's ARN.
pub fn with_arns(
    task_definition: &Value,
    arns: &BTreeMap<String, String>,
    role_arn: Option<&str>,
) -> Value {
    let mut td = task_definition.clone();
    if let (Some(role), true) = (role_arn, td.get("executionRoleArn").is_some()) {
        td["executionRoleArn"] = role.into();
    }
    for container in td["containerDefinitions"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        for secret in container["secrets"].as_array_mut().into_iter().flatten() {
            let name = secret["valueFrom"].as_str().unwrap_or_default().to_string();
            if let Some(arn) = arns.get(&name) {
                secret["valueFrom"] = arn.clone().into();
            }
        }
    }
    td
}

/// Deletes the project's secrets (those named `{project}/...` and tagged with it) and its
/// execution role.
pub async fn remove(client: &ServerClient, project: &str) -> anyhow::Result<()> {
    let mut token: Option<String> = None;
    let mut doomed = Vec::new();
    loop {
        let mut input = json!({"MaxResults": 100});
        if let Some(token) = &token {
            input["NextToken"] = token.clone().into();
        }
        let page = secretsmanager(client, "ListSecrets", input)
            .await
            .context("cannot list the secrets")?;
        for secret in page["SecretList"].as_array().into_iter().flatten() {
            let name = secret["Name"].as_str().unwrap_or_default();
            let tagged = secret["Tags"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| t["Key"] == PROJECT_LABEL && t["Value"] == project);
            if tagged && name.starts_with(&format!("{project}/")) {
                doomed.push(name.to_string());
            }
        }
        token = page["NextToken"].as_str().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    for name in doomed {
        secretsmanager(
            client,
            "DeleteSecret",
            json!({"SecretId": name, "ForceDeleteWithoutRecovery": true}),
        )
        .await
        .with_context(|| format!("cannot delete the secret {name}"))?;
        println!("deleted secret {name}");
    }
    let role = role_name(project);
    let deleted = async {
        client
            .call_query(
                "iam",
                "DeleteRolePolicy",
                &[("RoleName", role.as_str()), ("PolicyName", POLICY_NAME)],
            )
            .await?;
        client
            .call_query("iam", "DeleteRole", &[("RoleName", role.as_str())])
            .await
    }
    .await;
    match deleted {
        Ok(_) => println!("deleted role {role}"),
        Err(e) if error_kind(&e) == Some("NoSuchEntity") => {}
        Err(e) => return Err(e).with_context(|| format!("cannot delete the role {role}")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::compose::convert::{convert, Source};
    use crate::commands::compose::file::parse;
    use std::path::{Path, PathBuf};

    const FILE: &str = r#"
services:
  db:
    image: busybox
    secrets: [db_password, {source: token, target: api-token}]
  web:
    image: busybox
    secrets: [outside]
secrets:
  db_password: {file: ./db_password.txt}
  token: {environment: API_TOKEN}
  unused: {file: ./nowhere}
  outside: {external: true}
"#;

    fn convert_with(
        text: &str,
        token: Option<&str>,
    ) -> anyhow::Result<crate::commands::compose::convert::Plan> {
        let (file, unsupported) = parse(text, "compose.yaml")?;
        let env = |name: &str| {
            (name == "API_TOKEN")
                .then(|| token.map(str::to_string))
                .flatten()
        };
        let read = |path: &Path| {
            path.ends_with("db_password.txt")
                .then(|| "s3cret".to_string())
        };
        let source = Source {
            project: "shop".into(),
            dir: PathBuf::from("/srv/app"),
            env: &env,
            read: &read,
        };
        convert(&file, unsupported, &source)
    }

    #[test]
    fn a_used_secret_becomes_a_secrets_manager_secret_read_as_a_file_with_the_execution_role() {
        let plan = convert_with(FILE, Some("t0ken")).expect("converts");
        let names: Vec<(&str, &str, &str)> = plan
            .secrets
            .iter()
            .map(|s| (s.name.as_str(), s.secret_name.as_str(), s.from.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("db_password", "shop/db_password", "file ./db_password.txt"),
                ("token", "shop/token", "environment API_TOKEN")
            ],
            "only the secrets a service uses"
        );
        assert_eq!(plan.secrets[0].value, "s3cret");
        assert_eq!(
            plan.execution_role.as_deref(),
            Some("shop-compose-execution")
        );
        let db = &plan.services[0];
        let td = &db.task_definition;
        assert_eq!(td["executionRoleArn"], "shop-compose-execution");
        let container = &td["containerDefinitions"][0];
        assert_eq!(
            container["secrets"],
            json!([{"name": "db_password", "valueFrom": "shop/db_password"},
                   {"name": "api-token", "valueFrom": "shop/token"}])
        );
        assert_eq!(container["dockerLabels"][SECRET_FILES_LABEL], "true");
        assert_eq!(db.secrets, vec!["shop/db_password", "shop/token"]);
        let web = &plan.services[1];
        assert!(web.task_definition.get("executionRoleArn").is_none());
        assert!(web.task_definition["containerDefinitions"][0]
            .get("secrets")
            .is_none());
        let printed = plan.to_json("default").to_string();
        assert!(
            !printed.contains("s3cret") && !printed.contains("t0ken"),
            "{printed}"
        );
        assert!(
            !format!("{plan:?}").contains("s3cret"),
            "no value in Debug either"
        );
    }

    #[test]
    fn a_secret_without_content_or_declaration_is_an_error() {
        let error = format!("{:#}", convert_with(FILE, None).expect_err("no variable"));
        assert!(
            error.contains("secrets.token.environment: the variable API_TOKEN is not set"),
            "{error}"
        );
        let undeclared = "services:\n  a: {image: x, secrets: [nope]}\n";
        let error = format!(
            "{:#}",
            convert_with(undeclared, None).expect_err("undeclared")
        );
        assert!(
            error.contains("services.a.secrets[0]: the secret 'nope' is not declared"),
            "{error}"
        );
    }

    #[test]
    fn up_puts_the_arns_in_place_of_the_names() {
        let plan = convert_with(FILE, Some("t")).expect("converts");
        let arns: BTreeMap<String, String> = [
            (
                "shop/db_password".to_string(),
                "arn:aws:secretsmanager:us-east-1:0:secret:shop/db_password-AbCdEf".to_string(),
            ),
            ("shop/token".to_string(), "arn:token".to_string()),
        ]
        .into();
        let td = with_arns(
            &plan.services[0].task_definition,
            &arns,
            Some("arn:aws:iam::0:role/shop-compose-execution"),
        );
        assert_eq!(
            td["executionRoleArn"],
            "arn:aws:iam::0:role/shop-compose-execution"
        );
        assert_eq!(
            td["containerDefinitions"][0]["secrets"][1]["valueFrom"],
            "arn:token"
        );
        let web = with_arns(&plan.services[1].task_definition, &arns, Some("arn:role"));
        assert!(
            web.get("executionRoleArn").is_none(),
            "only services with secrets get the role"
        );
        assert_eq!(role_name(&"p".repeat(80)).len(), 64);
    }
}
