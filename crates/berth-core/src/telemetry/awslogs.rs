//! The `awslogs` log driver's options, as a task definition's `logConfiguration.options`
//! give them, read the way Docker's driver reads them; and where its events go.

use std::collections::BTreeMap;

/// How the driver treats a server that cannot keep up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Reading the container's output waits for the server: nothing is dropped.
    Blocking,
    /// Output read while the buffer is full is dropped (and counted).
    NonBlocking,
}

/// The `awslogs` options of one container.
#[derive(Debug, Clone)]
pub struct AwsLogs {
    /// `awslogs-group`.
    pub group: String,
    /// `awslogs-stream-prefix`: the stream is `PREFIX/CONTAINER/TASK_ID`.
    pub stream_prefix: Option<String>,
    /// `awslogs-stream`: the stream's name, when no prefix is set.
    pub stream: Option<String>,
    /// `awslogs-create-group`.
    pub create_group: bool,
    /// `mode`; ECS's default is `non-blocking`.
    pub mode: Mode,
    /// `max-buffer-size` in bytes (non-blocking mode); 1 MiB by default, as Docker's.
    pub max_buffer_bytes: usize,
    /// Where an event begins: `awslogs-multiline-pattern`, or `awslogs-datetime-format`
    /// made a pattern anchored at the line's start. `None`: every line is an event.
    pub event_start: Option<regex_lite::Regex>,
    /// `awslogs-force-flush-interval-seconds`: how long a multiline event may wait for its
    /// next line (5 s by default).
    pub flush_interval: std::time::Duration,
}

/// Options Docker's awslogs driver knows (others are refused, as Docker refuses them).
const KNOWN: &[&str] = &[
    "awslogs-region",
    "awslogs-endpoint",
    "awslogs-group",
    "awslogs-stream",
    "awslogs-stream-prefix",
    "awslogs-create-group",
    "awslogs-create-stream",
    "awslogs-datetime-format",
    "awslogs-multiline-pattern",
    "awslogs-credentials-endpoint",
    "awslogs-force-flush-interval-seconds",
    "awslogs-max-buffered-events",
    "awslogs-format",
    "tag",
    "mode",
    "max-buffer-size",
];

/// Docker's default `max-buffer-size`.
pub const DEFAULT_MAX_BUFFER_BYTES: usize = 1024 * 1024;

impl AwsLogs {
    /// Reads `options`; the error says which option is wrong, in Docker's words.
    pub fn from_options(options: &BTreeMap<String, String>) -> Result<AwsLogs, String> {
        if let Some(unknown) = options.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(format!(
                "unknown log opt '{unknown}' for awslogs log driver"
            ));
        }
        let group = options
            .get("awslogs-group")
            .filter(|g| !g.is_empty())
            .ok_or("must specify a value for log opt 'awslogs-group'")?
            .clone();
        let flag = |name: &str| -> Result<bool, String> {
            match options.get(name).map(String::as_str) {
                None => Ok(false),
                Some(v) => parse_bool(v).ok_or_else(|| {
                    format!("invalid value '{v}' for log opt '{name}': expected true or false")
                }),
            }
        };
        let create_group = flag("awslogs-create-group")?;
        let mode = match options.get("mode").map(String::as_str) {
            None | Some("non-blocking") => Mode::NonBlocking,
            Some("blocking") => Mode::Blocking,
            Some(other) => {
                return Err(format!(
                    "logger: logging mode not supported: {other} (use blocking or non-blocking)"
                ))
            }
        };
        let max_buffer_bytes = match options.get("max-buffer-size") {
            None => DEFAULT_MAX_BUFFER_BYTES,
            Some(size) => parse_size(size).filter(|s| *s > 0).ok_or_else(|| {
                format!("could not parse max-buffer-size '{size}': use a size such as 4m or 512k")
            })?,
        };
        let multiline = options.get("awslogs-multiline-pattern");
        let datetime = options.get("awslogs-datetime-format");
        let event_start = match (multiline, datetime) {
            (Some(_), Some(_)) => {
                return Err("you cannot configure log opt 'awslogs-datetime-format' and 'awslogs-multiline-pattern' at the same time".into())
            }
            (Some(pattern), None) => Some(
                regex_lite::Regex::new(pattern)
                    .map_err(|e| format!("awslogs-multiline-pattern '{pattern}' is not a valid regular expression: {e}"))?,
            ),
            (None, Some(format)) => Some(
                regex_lite::Regex::new(&format!("^{}", strftime_pattern(format)))
                    .map_err(|e| format!("awslogs-datetime-format '{format}' cannot be matched: {e}"))?,
            ),
            (None, None) => None,
        };
        let flush_interval = match options.get("awslogs-force-flush-interval-seconds") {
            None => std::time::Duration::from_secs(5),
            Some(s) => s
                .parse::<u64>()
                .ok()
                .filter(|s| *s > 0)
                .map(std::time::Duration::from_secs)
                .ok_or_else(|| format!("invalid value '{s}' for log opt 'awslogs-force-flush-interval-seconds': a positive number of seconds"))?,
        };
        Ok(AwsLogs {
            group,
            stream_prefix: options
                .get("awslogs-stream-prefix")
                .cloned()
                .filter(|p| !p.is_empty()),
            stream: options
                .get("awslogs-stream")
                .cloned()
                .filter(|s| !s.is_empty()),
            create_group,
            mode,
            max_buffer_bytes,
            event_start,
            flush_interval,
        })
    }

    /// The stream the events of container `container` of task `task_arn` go to:
    /// `PREFIX/CONTAINER/TASK_ID` as ECS names it; else `awslogs-stream`; else the
    /// container's runtime id, as Docker names it.
    pub fn stream_name(&self, container: &str, task_arn: &str, runtime_id: &str) -> String {
        match (&self.stream_prefix, &self.stream) {
            (Some(prefix), _) => {
                let task_id = task_arn.rsplit('/').next().unwrap_or(task_arn);
                format!("{prefix}/{container}/{task_id}")
            }
            (None, Some(stream)) => stream.clone(),
            (None, None) => runtime_id.to_string(),
        }
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// A size as Docker writes it: `512`, `64k`, `4m`, `1g` (powers of 1,024; `b` optional).
fn parse_size(text: &str) -> Option<usize> {
    let lower = text.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let (digits, unit) = match lower
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit() && *c != '.')
    {
        Some((at, _)) => lower.split_at(at),
        None => (lower, ""),
    };
    let number: f64 = digits.parse().ok()?;
    let scale = match unit {
        "" => 1.0,
        "k" | "ki" => 1024.0,
        "m" | "mi" => 1024.0 * 1024.0,
        "g" | "gi" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = number * scale;
    (bytes.is_finite() && bytes >= 0.0 && bytes < usize::MAX as f64).then_some(bytes as usize)
}

/// The regular expression Docker's driver makes of a strftime format: each directive a
/// pattern for its field, other text literal.
fn strftime_pattern(format: &str) -> String {
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push_str(&regex_lite::escape(&c.to_string()));
            continue;
        }
        let piece = match chars.next() {
            Some('a') => "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)",
            Some('A') => "(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)",
            Some('b') => "(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)",
            Some('B') => "(?:January|February|March|April|May|June|July|August|September|October|November|December)",
            Some('d') => "(?:0[1-9]|[12][0-9]|3[01])",
            Some('f') => "[0-9]{6}",
            Some('H') => "(?:[01][0-9]|2[0-3])",
            Some('I') => "(?:0[0-9]|1[0-2])",
            Some('j') => "(?:[0-2][0-9][0-9]|3[0-5][0-9]|36[0-6])",
            Some('L') => "\\.[0-9]{3}",
            Some('m') => "(?:0[1-9]|1[0-2])",
            Some('M') => "[0-5][0-9]",
            Some('p') => "[AP]M",
            Some('S') => "[0-5][0-9]",
            Some('y') => "[0-9]{2}",
            Some('Y') => "[0-9]{4}",
            Some('z') => "[+-][0-9]{4}",
            Some('Z') => "[A-Z]{1,4}T",
            Some('%') => "%",
            Some(other) => {
                out.push_str(&regex_lite::escape(&format!("%{other}")));
                continue;
            }
            None => "%",
        };
        out.push_str(piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ecs_names_the_stream_from_prefix_container_and_task_id() {
        let logs = AwsLogs::from_options(&options(&[
            ("awslogs-group", "/ecs/web"),
            ("awslogs-stream-prefix", "ecs"),
        ]))
        .expect("valid");
        let arn = "arn:aws:ecs:us-east-1:000000000000:task/default/0123abcd";
        assert_eq!(logs.stream_name("web", arn, "f00d"), "ecs/web/0123abcd");
        assert_eq!(logs.mode, Mode::NonBlocking);
        assert_eq!(logs.max_buffer_bytes, DEFAULT_MAX_BUFFER_BYTES);
        assert!(!logs.create_group);
        let bare = AwsLogs::from_options(&options(&[("awslogs-group", "g")])).expect("valid");
        assert_eq!(bare.stream_name("web", arn, "f00d"), "f00d");
    }

    #[test]
    fn bad_options_are_refused_in_dockers_words() {
        let refused =
            |pairs: &[(&str, &str)]| AwsLogs::from_options(&options(pairs)).expect_err("refused");
        assert!(refused(&[]).contains("awslogs-group"));
        assert!(refused(&[("awslogs-group", "g"), ("colour", "red")])
            .contains("unknown log opt 'colour'"));
        assert!(refused(&[("awslogs-group", "g"), ("mode", "sometimes")]).contains("not supported"));
        assert!(
            refused(&[("awslogs-group", "g"), ("max-buffer-size", "lots")])
                .contains("max-buffer-size")
        );
        assert!(
            refused(&[("awslogs-group", "g"), ("awslogs-create-group", "yes")])
                .contains("awslogs-create-group")
        );
        assert!(refused(&[
            ("awslogs-group", "g"),
            ("awslogs-multiline-pattern", "^x"),
            ("awslogs-datetime-format", "%Y")
        ])
        .contains("at the same time"));
        assert!(
            refused(&[("awslogs-group", "g"), ("awslogs-multiline-pattern", "(")])
                .contains("regular expression")
        );
    }

    #[test]
    fn sizes_and_modes_read_as_docker_reads_them() {
        let logs = AwsLogs::from_options(&options(&[
            ("awslogs-group", "g"),
            ("mode", "blocking"),
            ("max-buffer-size", "4m"),
            ("awslogs-create-group", "true"),
        ]))
        .expect("valid");
        assert_eq!(logs.mode, Mode::Blocking);
        assert_eq!(logs.max_buffer_bytes, 4 * 1024 * 1024);
        assert!(logs.create_group);
        assert_eq!(parse_size("512k"), Some(512 * 1024));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("1.5m"), Some(1024 * 1024 * 3 / 2));
    }

    #[test]
    fn a_datetime_format_starts_an_event_where_a_line_begins_with_a_date() {
        let logs = AwsLogs::from_options(&options(&[
            ("awslogs-group", "g"),
            ("awslogs-datetime-format", "%Y-%m-%d %H:%M:%S"),
        ]))
        .expect("valid");
        let start = logs.event_start.expect("a pattern");
        assert!(start.is_match("2026-12-01 10:00:00 ERROR boom"));
        assert!(!start.is_match("    at Foo.bar(Foo.java:1)"));
        assert!(
            !start.is_match("x 2026-12-01 10:00:00"),
            "anchored at the start"
        );
    }

    #[test]
    fn a_multiline_pattern_matches_anywhere_in_the_line() {
        let logs = AwsLogs::from_options(&options(&[
            ("awslogs-group", "g"),
            ("awslogs-multiline-pattern", "INFO|ERROR"),
        ]))
        .expect("valid");
        let start = logs.event_start.expect("a pattern");
        assert!(start.is_match("[main] ERROR x"));
        assert!(!start.is_match("  continued"));
    }
}
