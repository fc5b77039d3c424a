//! The ECS cluster query language: expressions such as
//! `attribute:ecs.instance-type =~ t2.* and not (task:group == database)` that `memberOf`
//! placement constraints and ListContainerInstances `filter` use to select container instances.
//!
//! `subject operator [argument]`, with the subjects agentConnected, agentVersion,
//! `attribute:<name>`, ec2InstanceId, registeredAt, runningTasksCount and task:group; the
//! operators `==`/equals, `!=`/not_equals, `>`/greater_than, `>=`/greater_than_equal,
//! `<`/less_than, `<=`/less_than_equal, exists, `!exists`/not_exists, in, `!in`/not_in,
//! `=~`/matches and `!~`/not_matches (a Java-style regular expression that must match the
//! whole value); compound expressions with `and`/`&&`, `or`/`||`, `not`/`!` and parentheses;
//! lists written `[a, b]` (or `(a, b)`); values bare or quoted with `'` or `"`.
//! [`parse`] turns text into an [`Expr`]; the `Display` of an `Expr` parses back to it.

mod parse;

pub use parse::{parse, QueryError, MAX_EXPRESSION_LENGTH};

use std::cmp::Ordering;
use std::fmt;

/// A parsed query expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `subject operator [argument]`.
    Compare(Comparison),
    /// `not expr`.
    Not(Box<Expr>),
    /// `a and b and ...` (two or more).
    And(Vec<Expr>),
    /// `a or b or ...` (two or more).
    Or(Vec<Expr>),
}

/// One `subject operator [argument]` test.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// What is tested.
    pub subject: Subject,
    /// How.
    pub operator: Operator,
    /// Against what (nothing for `exists`).
    pub argument: Argument,
}

/// The field or attribute of a container instance that a comparison reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// Whether the agent is connected (`true` / `false`).
    AgentConnected,
    /// The agent's version, compared part by part (`1.14.5`).
    AgentVersion,
    /// A built-in or custom attribute.
    Attribute(String),
    /// The instance id.
    Ec2InstanceId,
    /// When the instance registered (dates such as `2018-06-18` or `2018-06-18T22:28:28Z`).
    RegisteredAt,
    /// How many tasks run on the instance.
    RunningTasksCount,
    /// The groups of the tasks on the instance: true when any of them matches.
    TaskGroup,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `==`, `equals`.
    Equals,
    /// `!=`, `not_equals`.
    NotEquals,
    /// `>`, `greater_than`.
    GreaterThan,
    /// `>=`, `greater_than_equal`.
    GreaterThanEqual,
    /// `<`, `less_than`.
    LessThan,
    /// `<=`, `less_than_equal`.
    LessThanEqual,
    /// `exists`.
    Exists,
    /// `!exists`, `not_exists`.
    NotExists,
    /// `in` a list.
    In,
    /// `!in`, `not_in` a list.
    NotIn,
    /// `=~`, `matches` a regular expression.
    Matches,
    /// `!~`, `not_matches` a regular expression.
    NotMatches,
}

/// The argument of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Argument {
    /// `exists` and `!exists` take none.
    None,
    /// One value.
    Value(Literal),
    /// `in` and `!in` take a list.
    List(Vec<Literal>),
    /// `=~` and `!~` take a regular expression.
    Pattern(Pattern),
}

/// A value as written, with the number or date it denotes worked out once.
#[derive(Debug, Clone)]
pub struct Literal {
    /// The value's text.
    pub text: String,
    int: Option<i64>,
    /// `[start, end)` in epoch seconds: a whole day for a date, one second for a time.
    time: Option<(f64, f64)>,
}

impl PartialEq for Literal {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Literal {
    /// A literal for `text`.
    pub fn new(text: impl Into<String>) -> Self {
        let text = text.into();
        Self {
            int: text.parse().ok(),
            time: parse::time_range(&text),
            text,
        }
    }
}

/// A compiled regular expression that must match a whole value.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The expression as written.
    pub source: String,
    regex: regex_lite::Regex,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Pattern {
    /// Compiles `source` (anchored at both ends, as Java's `matches` is).
    pub fn new(source: impl Into<String>) -> Result<Self, String> {
        let source = source.into();
        let regex = regex_lite::Regex::new(&format!("^(?:{source})$")).map_err(|e| {
            let text = e.to_string();
            let first = text.lines().last().unwrap_or("invalid").trim().to_string();
            format!("'{source}' is not a valid regular expression ({first})")
        })?;
        Ok(Self { source, regex })
    }

    /// Whether the whole of `value` matches.
    pub fn is_match(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }
}

/// What an expression reads from a container instance.
pub trait Subjects {
    /// Whether its agent is connected.
    fn agent_connected(&self) -> bool;
    /// Its agent's version.
    fn agent_version(&self) -> Option<&str>;
    /// `None` when the attribute is absent, `Some(None)` when present without a value.
    fn attribute(&self, name: &str) -> Option<Option<&str>>;
    /// Its instance id.
    fn ec2_instance_id(&self) -> Option<&str>;
    /// When it registered, in epoch seconds.
    fn registered_at(&self) -> Option<f64>;
    /// How many tasks run on it.
    fn running_tasks_count(&self) -> i64;
    /// Whether any group of its tasks passes `test`.
    fn any_task_group(&self, test: &mut dyn FnMut(&str) -> bool) -> bool;
}

impl Expr {
    /// Whether `instance` satisfies the expression.
    pub fn matches<S: Subjects + ?Sized>(&self, instance: &S) -> bool {
        match self {
            Expr::Compare(c) => c.matches(instance),
            Expr::Not(e) => !e.matches(instance),
            Expr::And(all) => all.iter().all(|e| e.matches(instance)),
            Expr::Or(any) => any.iter().any(|e| e.matches(instance)),
        }
    }

    /// Whether the result depends only on what placing a task does not change (so it can be
    /// computed once per instance and kept): true unless it reads runningTasksCount or
    /// task:group.
    pub fn is_static(&self) -> bool {
        match self {
            Expr::Compare(c) => {
                !matches!(c.subject, Subject::RunningTasksCount | Subject::TaskGroup)
            }
            Expr::Not(e) => e.is_static(),
            Expr::And(v) | Expr::Or(v) => v.iter().all(Expr::is_static),
        }
    }
}

/// The value of a subject on one instance.
enum Value<'a> {
    Text(&'a str),
    Version(&'a str),
    Bool(bool),
    Int(i64),
    Time(f64),
}

impl Comparison {
    /// Whether `instance` passes this test. Negated operators are the negation of their
    /// positive form, so an absent subject fails `==` and passes `!=`.
    pub fn matches<S: Subjects + ?Sized>(&self, instance: &S) -> bool {
        use Operator::*;
        let (positive, negate) = match self.operator {
            NotEquals => (Equals, true),
            NotExists => (Exists, true),
            NotIn => (In, true),
            NotMatches => (Matches, true),
            other => (other, false),
        };
        self.test(positive, instance) != negate
    }

    fn test<S: Subjects + ?Sized>(&self, op: Operator, instance: &S) -> bool {
        let check = |value: Value<'_>| self.check(op, &value);
        match &self.subject {
            Subject::AgentConnected => check(Value::Bool(instance.agent_connected())),
            Subject::AgentVersion => match instance.agent_version() {
                Some(v) => op == Operator::Exists || check(Value::Version(v)),
                None => false,
            },
            Subject::Attribute(name) => match instance.attribute(name) {
                None => false,
                Some(_) if op == Operator::Exists => true,
                Some(None) => false,
                Some(Some(v)) => check(Value::Text(v)),
            },
            Subject::Ec2InstanceId => instance
                .ec2_instance_id()
                .is_some_and(|v| op == Operator::Exists || check(Value::Text(v))),
            Subject::RegisteredAt => instance
                .registered_at()
                .is_some_and(|t| op == Operator::Exists || check(Value::Time(t))),
            Subject::RunningTasksCount => check(Value::Int(instance.running_tasks_count())),
            Subject::TaskGroup => {
                if op == Operator::Exists {
                    instance.any_task_group(&mut |_| true)
                } else {
                    instance.any_task_group(&mut |g| self.check(op, &Value::Text(g)))
                }
            }
        }
    }

    fn check(&self, op: Operator, value: &Value<'_>) -> bool {
        match (&self.argument, op) {
            (Argument::Value(lit), Operator::Equals) => equals(value, lit),
            (Argument::List(list), Operator::In) => list.iter().any(|lit| equals(value, lit)),
            (Argument::Pattern(p), Operator::Matches) => match value {
                Value::Text(t) | Value::Version(t) => p.is_match(t),
                Value::Bool(b) => p.is_match(if *b { "true" } else { "false" }),
                Value::Int(n) => p.is_match(&n.to_string()),
                Value::Time(_) => false,
            },
            (Argument::Value(lit), op) => order(value, lit, op) == Some(true),
            _ => false,
        }
    }
}

fn equals(value: &Value<'_>, lit: &Literal) -> bool {
    match value {
        Value::Text(t) | Value::Version(t) => *t == lit.text,
        Value::Bool(b) => lit
            .text
            .eq_ignore_ascii_case(if *b { "true" } else { "false" }),
        Value::Int(n) => lit.int == Some(*n),
        Value::Time(t) => lit.time.is_some_and(|(s, e)| s <= *t && *t < e),
    }
}

/// The outcome of an ordering operator, `None` when the two cannot be ordered.
fn order(value: &Value<'_>, lit: &Literal, op: Operator) -> Option<bool> {
    if let Value::Time(t) = value {
        let (start, end) = lit.time?;
        return Some(match op {
            Operator::GreaterThan => *t >= end,
            Operator::GreaterThanEqual => *t >= start,
            Operator::LessThan => *t < start,
            Operator::LessThanEqual => *t < end,
            _ => false,
        });
    }
    let ordering = match value {
        Value::Int(n) => n.cmp(&lit.int?),
        Value::Version(v) => compare_versions(v, &lit.text),
        Value::Text(t) => compare_values(t, &lit.text),
        Value::Bool(_) | Value::Time(_) => return None,
    };
    Some(match op {
        Operator::GreaterThan => ordering == Ordering::Greater,
        Operator::GreaterThanEqual => ordering != Ordering::Less,
        Operator::LessThan => ordering == Ordering::Less,
        Operator::LessThanEqual => ordering != Ordering::Greater,
        _ => false,
    })
}

/// Orders attribute values: as numbers when both are numbers, as versions when both look
/// like versions (`1.2.10` > `1.2.9`), else as text.
fn compare_values(a: &str, b: &str) -> Ordering {
    if let (Ok(x), Ok(y)) = (a.parse::<f64>(), b.parse::<f64>()) {
        return x.partial_cmp(&y).unwrap_or(Ordering::Equal);
    }
    let version_like = |s: &str| {
        s.contains('.') && s.chars().all(|c| c.is_ascii_digit() || c == '.') && !s.is_empty()
    };
    if version_like(a) && version_like(b) {
        return compare_versions(a, b);
    }
    a.cmp(b)
}

/// Compares versions part by part (split at `.`, `-`, `+`), numerically where both parts are
/// numbers; a version with more parts is greater when the shared parts are equal.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let split = |s: &'_ str| -> Vec<String> {
        s.trim_start_matches('v')
            .split(['.', '-', '+'])
            .map(str::to_string)
            .collect()
    };
    let (pa, pb) = (split(a), split(b));
    for (x, y) in pa.iter().zip(pb.iter()) {
        let o = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(m), Ok(n)) => m.cmp(&n),
            _ => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    pa.len().cmp(&pb.len())
}

impl Subject {
    /// The operators ECS documents for this subject (every one for attributes and task:group).
    pub fn allows(&self, op: Operator) -> bool {
        use Operator::*;
        match self {
            Subject::AgentConnected | Subject::Ec2InstanceId => {
                matches!(op, Equals | NotEquals | In | NotIn | Matches | NotMatches)
            }
            Subject::AgentVersion | Subject::RegisteredAt | Subject::RunningTasksCount => matches!(
                op,
                Equals | NotEquals | GreaterThan | GreaterThanEqual | LessThan | LessThanEqual
            ),
            Subject::Attribute(_) | Subject::TaskGroup => true,
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::AgentConnected => f.write_str("agentConnected"),
            Subject::AgentVersion => f.write_str("agentVersion"),
            Subject::Attribute(name) => write!(f, "attribute:{name}"),
            Subject::Ec2InstanceId => f.write_str("ec2InstanceId"),
            Subject::RegisteredAt => f.write_str("registeredAt"),
            Subject::RunningTasksCount => f.write_str("runningTasksCount"),
            Subject::TaskGroup => f.write_str("task:group"),
        }
    }
}

impl Operator {
    /// The operator's symbol (or word, for `in` and `exists`).
    pub fn symbol(self) -> &'static str {
        use Operator::*;
        match self {
            Equals => "==",
            NotEquals => "!=",
            GreaterThan => ">",
            GreaterThanEqual => ">=",
            LessThan => "<",
            LessThanEqual => "<=",
            Exists => "exists",
            NotExists => "!exists",
            In => "in",
            NotIn => "!in",
            Matches => "=~",
            NotMatches => "!~",
        }
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_value(f, &self.text)
    }
}

/// Writes a value bare when it reads back as the same value, else quoted.
fn write_value(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    if parse::is_bare_value(text) {
        return f.write_str(text);
    }
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        if c == quote || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push(quote);
    f.write_str(&out)
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.subject, self.operator.symbol())?;
        match &self.argument {
            Argument::None => Ok(()),
            Argument::Value(lit) => write!(f, " {lit}"),
            Argument::Pattern(p) => {
                f.write_str(" ")?;
                write_value(f, &p.source)
            }
            Argument::List(list) => {
                f.write_str(" [")?;
                for (i, lit) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{lit}")?;
                }
                f.write_str("]")
            }
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let joined = |f: &mut fmt::Formatter<'_>, parts: &[Expr], word: &str| -> fmt::Result {
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    write!(f, " {word} ")?;
                }
                match part {
                    Expr::And(_) | Expr::Or(_) => write!(f, "({part})")?,
                    _ => write!(f, "{part}")?,
                }
            }
            Ok(())
        };
        match self {
            Expr::Compare(c) => write!(f, "{c}"),
            Expr::Not(e) => write!(f, "not ({e})"),
            Expr::And(parts) => joined(f, parts, "and"),
            Expr::Or(parts) => joined(f, parts, "or"),
        }
    }
}

#[cfg(test)]
mod tests;
