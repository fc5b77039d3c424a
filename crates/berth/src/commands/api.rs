//! What the human commands (`berth exec`, `berth ps`, `berth services`, `berth instances`,
//! `berth events`, `berth logs`, `berth run`, ...) share: where the server is and how to sign
//! for it, the AWS way (`AWS_ENDPOINT_URL_ECS`, `AWS_ENDPOINT_URL`, `AWS_REGION`,
//! `AWS_DEFAULT_REGION`, keys from the environment or the shared credentials file), tables
//! that fit the terminal, and `--output json` for scripts (a JSON array, or JSON Lines for
//! what comes as it happens).

use anyhow::Context;
use berth_agent::client::ServerClient;
use clap::Args;
use std::io::IsTerminal;
use std::path::PathBuf;

/// Where the server is and how to reach it.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// The Berth endpoint: $AWS_ENDPOINT_URL_ECS, else $AWS_ENDPOINT_URL, else the local server.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Region to sign for: $AWS_REGION, else $AWS_DEFAULT_REGION, else us-east-1.
    #[arg(long)]
    pub region: Option<String>,
    /// CA certificate (PEM) an https:// endpoint must chain to (a Berth server's own CA is
    /// DATA_DIR/tls/ca.pem).
    #[arg(long)]
    pub ca: Option<PathBuf>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl ApiArgs {
    /// A client of the endpoint, signing with the environment's AWS credentials.
    pub fn client(&self) -> anyhow::Result<ServerClient> {
        let endpoint = self
            .endpoint
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL_ECS"))
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| "http://127.0.0.1:7700".into());
        let region = self
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".into());
        let credentials = berth_agent::credentials::from_environment()?;
        ServerClient::with_ca(&endpoint, &region, credentials, self.ca.as_deref())
            .with_context(|| format!("cannot use the endpoint {endpoint}"))
    }
}

/// Calls ECS operation `op`, with what to do next in the error.
pub async fn ecs(
    client: &ServerClient,
    op: &str,
    input: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    client.call(op, &input).await.with_context(|| {
        format!(
            "{op} on {} failed (is the server up and are AWS_PROFILE/AWS_SHARED_CREDENTIALS_FILE \
             or AWS_ACCESS_KEY_ID set? `berth up` prints them)",
            client.base_url()
        )
    })
}

/// Everything a List operation pages through: `op` with `input`, following `nextToken`;
/// the items under `key`.
pub async fn list_all(
    client: &ServerClient,
    op: &str,
    input: serde_json::Value,
    key: &str,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut page_input = input.clone();
        if let Some(token) = &token {
            page_input["nextToken"] = token.clone().into();
        }
        let page = ecs(client, op, page_input).await?;
        items.extend(page[key].as_array().cloned().unwrap_or_default());
        token = page["nextToken"].as_str().map(str::to_string);
        if token.is_none() {
            return Ok(items);
        }
    }
}

/// Describe operation `op` of `names` (under `field` of `input`), `per_call` at a time; the
/// objects under `key`.
pub async fn describe_all(
    client: &ServerClient,
    op: &str,
    input: serde_json::Value,
    field: &str,
    names: &[serde_json::Value],
    per_call: usize,
    key: &str,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut items = Vec::new();
    for chunk in names.chunks(per_call) {
        let mut call_input = input.clone();
        call_input[field] = chunk.to_vec().into();
        let out = ecs(client, op, call_input).await?;
        items.extend(out[key].as_array().cloned().unwrap_or_default());
    }
    Ok(items)
}

/// How a command shows what it found: for people, or as JSON for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Columns that fit the terminal (the listings' human form).
    Table,
    /// Lines for people (the human form of the commands that are not listings; the same as
    /// `table` there).
    Text,
    /// The objects as the API describes them: a JSON array, or JSON Lines (one object a line)
    /// for what is printed as it happens.
    Json,
}

impl Output {
    /// Whether scripts asked for JSON.
    pub fn is_json(self) -> bool {
        self == Output::Json
    }
}

/// `value` as one line of JSON Lines: compact, with the newline.
pub fn json_line(value: &serde_json::Value) -> String {
    let mut line = value.to_string();
    line.push('\n');
    line
}

/// Writes `value` as one line of JSON Lines and flushes, so a reader at the other end of a
/// pipe has each object as soon as it happens.
pub fn write_json_line(
    out: &mut impl std::io::Write,
    value: &serde_json::Value,
) -> anyhow::Result<()> {
    out.write_all(json_line(value).as_bytes())?;
    out.flush()?;
    Ok(())
}

/// What every listing takes: the cluster, how to show it, where the server is.
#[derive(Debug, Clone, Args)]
pub struct ListingArgs {
    #[arg(long, default_value = "default")]
    pub cluster: String,
    /// `table`, or `json`: the objects as the API describes them, as one JSON array.
    #[arg(long, value_enum, default_value = "table")]
    pub output: Output,
    #[command(flatten)]
    pub api: ApiArgs,
}

impl ListingArgs {
    /// Prints `items` as asked: a table of `header` with a row each, or the JSON array.
    pub fn show(
        &self,
        items: &[serde_json::Value],
        header: &[&str],
        row: impl Fn(&serde_json::Value) -> Vec<String>,
    ) -> anyhow::Result<()> {
        match self.output {
            Output::Json => println!("{}", serde_json::to_string_pretty(items)?),
            Output::Table | Output::Text => {
                let rows: Vec<Vec<String>> = items.iter().map(row).collect();
                print!("{}", table(header, &rows));
            }
        }
        Ok(())
    }
}

/// `rows` under `header`, columns padded; on a terminal the last column is cut to its width.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(i) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let limit = std::io::stdout()
        .is_terminal()
        .then(|| rustix::termios::tcgetwinsize(std::io::stdout()).ok())
        .flatten()
        .map(|size| usize::from(size.ws_col))
        .filter(|cols| *cols > 0);
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 < cells.len() {
                text.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            } else {
                text.push_str(cell);
            }
        }
        let text = text.trim_end().to_string();
        match limit {
            Some(cols) if text.chars().count() > cols => text.chars().take(cols).collect(),
            _ => text,
        }
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

/// How long ago epoch seconds `at` was: `45s`, `12m`, `3h`, `2d`.
pub fn age(at: Option<f64>, now: f64) -> String {
    let Some(at) = at else {
        return "-".into();
    };
    let seconds = (now - at).max(0.0) as u64;
    match seconds {
        0..=59 => format!("{seconds}s"),
        60..=3599 => format!("{}m", seconds / 60),
        3600..=86_399 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86_400),
    }
}

/// The last part of an ARN (`.../task/default/ID` → `ID`).
pub fn short(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or(arn).to_string()
}

/// Now, in epoch seconds.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pad_columns_and_ages_read_as_people_say_them() {
        let rows = vec![
            vec!["a".to_string(), "RUNNING".to_string(), "x".to_string()],
            vec!["longer".to_string(), "STOPPED".to_string(), "".to_string()],
        ];
        assert_eq!(
            table(&["ID", "STATUS", "NOTE"], &rows),
            "ID      STATUS   NOTE\na       RUNNING  x\nlonger  STOPPED\n"
        );
        assert_eq!(age(Some(100.0), 145.0), "45s");
        assert_eq!(age(Some(0.0), 7_300.0), "2h");
        assert_eq!(age(Some(0.0), 200_000.0), "2d");
        assert_eq!(age(None, 1.0), "-");
        assert_eq!(short("arn:aws:ecs:us-east-1:0:task/default/abc"), "abc");
    }

    #[test]
    fn a_json_line_is_one_compact_object_and_a_newline() {
        let value = serde_json::json!({"message": "two\nlines", "id": "a"});
        let line = json_line(&value);
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert!(line.ends_with('\n'));
        let back: serde_json::Value = serde_json::from_str(line.trim_end()).expect("parses");
        assert_eq!(back, value);
        let mut out = Vec::new();
        write_json_line(&mut out, &value).expect("writes");
        write_json_line(&mut out, &serde_json::json!([1])).expect("writes");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            format!("{line}[1]\n")
        );
    }
}
