//! `berth compose up|down|convert`: a Compose file as ECS task definitions and services.
//!
//! Each Compose service becomes the task definition family and the ECS service
//! `{project}-{service}`, with one container named after the Compose service; the project is
//! `--project`, else `$COMPOSE_PROJECT_NAME`, else the file's `name:`, else the name of the
//! directory holding the file, as Compose chooses it. How each key maps is in `convert`; keys
//! and values that do not map are listed (on stderr by `up`, in the plan by `convert`), never
//! dropped without a word; `convert --output json` prints the plan as the ECS inputs alone
//! (`{"project", "taskDefinitions", "services", "unsupported"}`). `up` is idempotent: the container carries the hash of its task
//! definition (`com.docker.compose.config-hash`, as Compose labels its containers), so a
//! service whose hash and replica count are unchanged is left alone, and a changed one gets a
//! new revision and a rolling deployment, followed with `berth deploy`'s progress display.
//! Services are started in `depends_on` order, each rollout completing (its tasks RUNNING, and
//! HEALTHY when it has a health check) before a service that depends on it starts.
//! `down` deletes the services tagged with the project and deregisters their task definitions.
//! Networks, builds and variable interpolation are not mapped (listed when used).

pub mod convert;
pub mod down;
pub mod fields;
pub mod file;
pub mod secrets;
pub mod up;
pub mod volumes;

use super::api::{ApiArgs, Output};
use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `berth compose`.
#[derive(Debug, Subcommand)]
pub enum ComposeCommand {
    /// Create or update the project's services and follow their rollouts.
    Up(UpArgs),
    /// Delete the project's services and deregister their task definitions.
    Down(DownArgs),
    /// Print the task definitions and services `up` would create, and what does not map; with
    /// `--output json`, as the RegisterTaskDefinition and CreateService inputs.
    Convert(ConvertArgs),
}

/// Which Compose file and project.
#[derive(Debug, Clone, Args)]
pub struct ProjectArgs {
    /// The Compose file: by default compose.yaml, compose.yml, docker-compose.yaml or
    /// docker-compose.yml in the current directory.
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// The project name: by default $COMPOSE_PROJECT_NAME, the file's `name:`, or the name of
    /// the file's directory.
    #[arg(short = 'p', long)]
    pub project: Option<String>,
    #[arg(long, default_value = "default")]
    pub cluster: String,
}

/// `berth compose up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// How long to follow each service's rollout.
    #[arg(long, default_value = "10m", value_parser = super::parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// `berth compose down`.
#[derive(Debug, Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// How long to wait for the services' tasks to stop.
    #[arg(long, default_value = "2m", value_parser = super::parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// `berth compose convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// `text`: the plan service by service (each with `dependsOn`, `registerTaskDefinition`
    /// and `createService`), its secrets and what does not map; or `json`: the ECS inputs
    /// alone, `{"project", "taskDefinitions": [RegisterTaskDefinition inputs], "services":
    /// [CreateService inputs], "secrets", "unsupported"}`, in dependency order.
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
}

pub async fn run(command: ComposeCommand) -> anyhow::Result<i32> {
    match command {
        ComposeCommand::Up(args) => up::run(args).await,
        ComposeCommand::Down(args) => down::run(args).await,
        ComposeCommand::Convert(args) => {
            let plan = load(&args.project)?;
            let json = if args.output.is_json() {
                plan.to_ecs_json(&args.project.cluster)
            } else {
                plan.to_json(&args.project.cluster)
            };
            println!("{}", serde_json::to_string_pretty(&json)?);
            Ok(0)
        }
    }
}

const DEFAULT_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// The Compose file named, or the first default one in the current directory.
fn find_file(args: &ProjectArgs) -> anyhow::Result<PathBuf> {
    if let Some(file) = &args.file {
        return Ok(file.clone());
    }
    DEFAULT_FILES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "no Compose file here ({}): name one with -f FILE",
                DEFAULT_FILES.join(", ")
            )
        })
}

/// The project name, in Compose's order of precedence.
fn project_name(args: &ProjectArgs, named_in_file: Option<&str>, dir: &Path) -> String {
    let from_env = std::env::var("COMPOSE_PROJECT_NAME")
        .ok()
        .filter(|v| !v.is_empty());
    let chosen = args
        .project
        .clone()
        .or(from_env)
        .or_else(|| named_in_file.map(str::to_string))
        .or_else(|| {
            dir.file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    convert::normalise_project(&chosen)
}

/// The Compose file of `args`, read and mapped.
pub fn load(args: &ProjectArgs) -> anyhow::Result<convert::Plan> {
    let path = find_file(args)?;
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the Compose file {}", path.display()))?;
    let (compose, unsupported) = file::parse(&text, &path.display().to_string())?;
    let dir = std::fs::canonicalize(&path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let env = |name: &str| std::env::var(name).ok();
    let read = |path: &Path| std::fs::read_to_string(path).ok();
    let source = convert::Source {
        project: project_name(args, compose.name.as_deref(), &dir),
        dir,
        env: &env,
        read: &read,
    };
    convert::convert(&compose, unsupported, &source)
        .with_context(|| format!("{} cannot be mapped to ECS", path.display()))
}

/// The project `down` removes: named by `--project`, else found as `up` finds it (the file
/// need not map, only name the project), else the current directory's name.
pub fn project_only(args: &ProjectArgs) -> anyhow::Result<String> {
    if let Some(project) = &args.project {
        return Ok(convert::normalise_project(project));
    }
    match find_file(args) {
        Ok(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read the Compose file {}", path.display()))?;
            let (compose, _) = file::parse(&text, &path.display().to_string())?;
            let dir = std::fs::canonicalize(&path)
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .unwrap_or_else(|| PathBuf::from("."));
            Ok(project_name(args, compose.name.as_deref(), &dir))
        }
        Err(_) => {
            let dir = std::env::current_dir().context("no current directory")?;
            Ok(project_name(args, None, &dir))
        }
    }
}
