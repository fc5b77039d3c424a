//! Reading an IAM policy document: JSON text to [`Policy`], refusing what IAM refuses with a
//! `MalformedPolicyDocument` message that says what to fix.

use super::{Policy, PolicyError, Version};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::fmt;

/// One statement: when it applies (principal, action, resource, conditions) and its effect.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Statement {
    pub(crate) sid: Option<String>,
    pub(crate) effect: Effect,
    /// `Principal` or `NotPrincipal`; `None` matches any caller.
    pub(crate) principal: Option<Principals>,
    /// `Action` or `NotAction`.
    pub(crate) action: Actions,
    /// `Resource` or `NotResource`; `None` (a trust policy) matches any resource.
    pub(crate) resource: Option<Resources>,
    /// Every operator × key pair of the `Condition` block; all must hold.
    pub(crate) conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    Allow,
    Deny,
}

/// `Action` (`negated: false`) or `NotAction`: lowercased patterns.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Actions {
    pub(crate) negated: bool,
    pub(crate) patterns: Vec<Vec<Tok>>,
}

/// `Resource` (`negated: false`) or `NotResource`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Resources {
    pub(crate) negated: bool,
    pub(crate) patterns: Vec<Template>,
}

/// `Principal` (`negated: false`) or `NotPrincipal`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Principals {
    pub(crate) negated: bool,
    pub(crate) entries: Vec<Principal>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Principal {
    /// `"*"` or `{"AWS": "*"}`: everyone.
    Anyone,
    /// `arn:aws:iam::ACCOUNT:root` or a bare account id: every principal of the account.
    Account(String),
    /// A user, role or session ARN.
    Arn(String),
    /// `Service`, `Federated` or `CanonicalUser`: kept, matches no caller.
    Other { kind: String, value: String },
}

/// One condition operator applied to one key: `"StringEquals": {"aws:username": [...]}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Condition {
    pub(crate) operator: Operator,
    /// Lowercased, as [`super::Context`] stores keys.
    pub(crate) key: String,
    pub(crate) values: Vec<Template>,
}

/// A condition operator, taken apart: `ForAllValues:StringNotEqualsIfExists` is the
/// `StringEquals` test, negated, with the all-values qualifier and the if-exists suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Operator {
    pub(crate) name: String,
    pub(crate) qualifier: Option<Qualifier>,
    pub(crate) test: Test,
    pub(crate) negated: bool,
    pub(crate) if_exists: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Qualifier {
    ForAnyValue,
    ForAllValues,
}

/// The comparison an operator makes between one request value and one policy value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Test {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    NumericEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    /// `ArnEquals` and `ArnLike` are the same test in AWS's documentation.
    ArnLike,
    Null,
}

/// One element of a pattern after policy variables are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    Char(char),
    /// `*`: any run of characters, including none.
    Any,
    /// `?`: exactly one character.
    One,
}

/// A resource or condition value as written: literal text, wildcards and policy variables.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Template {
    /// No variables (every 2008-10-17 value, most 2012-10-17 ones).
    Fixed(Vec<Tok>),
    Variable(Vec<Piece>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Piece {
    Tok(Tok),
    /// `${key}` or `${key, 'default'}`; the key lowercased.
    Var {
        key: String,
        default: Option<String>,
    },
}

const VENDOR: &str = "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.";

fn err<T>(message: impl Into<String>) -> Result<T, PolicyError> {
    Err(PolicyError::new(message))
}

impl Policy {
    /// Parses and validates an IAM policy document (JSON text). Errors read like IAM's
    /// `MalformedPolicyDocument` messages.
    pub fn parse(json: &str) -> Result<Policy, PolicyError> {
        let document: Json = serde_json::from_str(json).map_err(|e| {
            // Our own duplicate-key error names the key; serde's syntax errors say little a
            // policy author can use, so they read as IAM's.
            let text = e.to_string();
            match text.split_once(DUPLICATE) {
                Some((_, rest)) => PolicyError::new(format!(
                    "Syntax errors in policy. Duplicate key {}.",
                    rest.split(" at line").next().unwrap_or(rest)
                )),
                None => PolicyError::new("Syntax errors in policy."),
            }
        })?;
        let Json::Object(fields) = document else {
            return err("Syntax errors in policy.");
        };
        let mut version = None;
        let mut id = None;
        let mut statement = None;
        for (name, value) in fields {
            match name.as_str() {
                "Version" => version = Some(value),
                "Id" => id = Some(value),
                "Statement" => statement = Some(value),
                _ => {
                    return err(format!(
                        "Policy document contains unsupported field {name}."
                    ))
                }
            }
        }
        let version = match version {
            None => Version::V2008_10_17,
            Some(Json::String(v)) if v == "2012-10-17" => Version::V2012_10_17,
            Some(Json::String(v)) if v == "2008-10-17" => Version::V2008_10_17,
            Some(_) => return err("Policy document must be version 2012-10-17 or 2008-10-17"),
        };
        let id = match id {
            None => None,
            Some(Json::String(id)) => Some(id),
            Some(_) => return err("Id must be a string."),
        };
        let statements = match statement {
            None => return err("Missing required field Statement"),
            Some(Json::Array(items)) => items,
            Some(one @ Json::Object(_)) => vec![one],
            Some(_) => return err("Statement must be an object or an array of objects."),
        };
        if statements.is_empty() {
            return err("Policy document must contain at least one statement.");
        }
        let statements = statements
            .into_iter()
            .map(|s| parse_statement(s, version))
            .collect::<Result<Vec<_>, _>>()?;
        let mut sids: Vec<&str> = statements
            .iter()
            .filter_map(|s| s.sid.as_deref())
            .filter(|sid| !sid.is_empty())
            .collect();
        sids.sort_unstable();
        if sids.windows(2).any(|w| w[0] == w[1]) {
            return err("Statement IDs (SID) in a single policy must be unique.");
        }
        Ok(Policy {
            version,
            id,
            statements,
        })
    }
}

fn parse_statement(statement: Json, version: Version) -> Result<Statement, PolicyError> {
    let Json::Object(fields) = statement else {
        return err("Statement must be an object or an array of objects.");
    };
    let mut sid = None;
    let mut effect = None;
    let (mut principal, mut not_principal) = (None, None);
    let (mut action, mut not_action) = (None, None);
    let (mut resource, mut not_resource) = (None, None);
    let mut condition = None;
    for (name, value) in fields {
        let slot = match name.as_str() {
            "Sid" => &mut sid,
            "Effect" => &mut effect,
            "Principal" => &mut principal,
            "NotPrincipal" => &mut not_principal,
            "Action" => &mut action,
            "NotAction" => &mut not_action,
            "Resource" => &mut resource,
            "NotResource" => &mut not_resource,
            "Condition" => &mut condition,
            _ => return err(format!("Statement contains unsupported field {name}.")),
        };
        *slot = Some(value);
    }

    let sid = match sid {
        None => None,
        Some(Json::String(sid)) if sid.chars().all(|c| c.is_ascii_alphanumeric()) => Some(sid),
        Some(Json::String(_)) => {
            return err(
                "Statement IDs (SID) must be alpha-numeric. Check that your input \
                 satisfies the regular expression [0-9A-Za-z]*",
            )
        }
        Some(_) => return err("Sid must be a string."),
    };
    let effect = match effect {
        None => return err("Statement is missing required field Effect"),
        Some(Json::String(e)) if e == "Allow" => Effect::Allow,
        Some(Json::String(e)) if e == "Deny" => Effect::Deny,
        Some(other) => {
            return err(format!(
                "Invalid effect: {}. Effect must be Allow or Deny.",
                other.describe()
            ))
        }
    };
    let principal = match (principal, not_principal) {
        (Some(_), Some(_)) => {
            return err("Statement cannot contain both Principal and NotPrincipal.")
        }
        (Some(p), None) => Some(parse_principals(p, false)?),
        (None, Some(p)) => Some(parse_principals(p, true)?),
        (None, None) => None,
    };
    let action = match (action, not_action) {
        (Some(_), Some(_)) => return err("Statement cannot contain both Action and NotAction."),
        (Some(a), None) => parse_actions(a, false, "Action")?,
        (None, Some(a)) => parse_actions(a, true, "NotAction")?,
        (None, None) => return err("Missing required field Action"),
    };
    let resource = match (resource, not_resource) {
        (Some(_), Some(_)) => {
            return err("Statement cannot contain both Resource and NotResource.")
        }
        (Some(r), None) => Some(parse_resources(r, false, "Resource", version)?),
        (None, Some(r)) => Some(parse_resources(r, true, "NotResource", version)?),
        // A trust (resource-based) policy names a principal and applies to its own resource.
        (None, None) if principal.is_some() => None,
        (None, None) => return err("Policy statement must contain resources."),
    };
    let conditions = match condition {
        None => Vec::new(),
        Some(c) => parse_conditions(c, version)?,
    };
    Ok(Statement {
        sid,
        effect,
        principal,
        action,
        resource,
        conditions,
    })
}

/// A string or an array of strings (IAM's "one or more" elements); `None` for anything else.
fn strings(value: Json) -> Option<Vec<String>> {
    match value {
        Json::String(s) => Some(vec![s]),
        Json::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Json::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

fn parse_actions(value: Json, negated: bool, field: &str) -> Result<Actions, PolicyError> {
    let Some(values) = strings(value) else {
        return err(format!("{field} must be a string or an array of strings."));
    };
    if values.is_empty() {
        return err("Policy statement must contain actions.");
    }
    let mut patterns = Vec::with_capacity(values.len());
    for action in values {
        // `*` alone is every action; anything else names its service: `ecs:Describe*`.
        if action != "*" && !has_vendor(&action) {
            return err(VENDOR);
        }
        patterns.push(glob_toks(&action.to_lowercase()));
    }
    Ok(Actions { negated, patterns })
}

/// `vendor:rest` with a non-empty vendor and rest.
fn has_vendor(text: &str) -> bool {
    matches!(text.split_once(':'), Some((vendor, rest)) if !vendor.is_empty() && !rest.is_empty())
}

fn parse_resources(
    value: Json,
    negated: bool,
    field: &str,
    version: Version,
) -> Result<Resources, PolicyError> {
    let Some(values) = strings(value) else {
        return err(format!("{field} must be a string or an array of strings."));
    };
    if values.is_empty() {
        return err("Policy statement must contain resources.");
    }
    let mut patterns = Vec::with_capacity(values.len());
    for resource in values {
        if resource != "*" && !resource.starts_with("arn:") {
            return err(format!(
                "Resource {resource} must be in ARN format or \"*\"."
            ));
        }
        patterns.push(Template::parse(&resource, version));
    }
    Ok(Resources { negated, patterns })
}

fn parse_principals(value: Json, negated: bool) -> Result<Principals, PolicyError> {
    let invalid = |text: String| PolicyError::new(format!("Invalid principal in policy: {text}"));
    let entries = match value {
        Json::String(s) if s == "*" => vec![Principal::Anyone],
        Json::Object(kinds) if !kinds.is_empty() => {
            let mut entries = Vec::new();
            for (kind, value) in kinds {
                let shown = format!("\"{kind}\":{}", value.describe());
                let Some(values) = strings(value) else {
                    return Err(invalid(shown));
                };
                if values.is_empty() {
                    return Err(invalid(shown));
                }
                for v in values {
                    let entry = match kind.as_str() {
                        "AWS" => {
                            aws_principal(&v).ok_or_else(|| invalid(format!("\"AWS\":\"{v}\"")))?
                        }
                        "Service" | "Federated" | "CanonicalUser" if !v.is_empty() => {
                            Principal::Other {
                                kind: kind.clone(),
                                value: v,
                            }
                        }
                        _ => return Err(invalid(format!("\"{kind}\":\"{v}\""))),
                    };
                    entries.push(entry);
                }
            }
            entries
        }
        other => return Err(invalid(other.describe())),
    };
    Ok(Principals { negated, entries })
}

/// An `AWS` principal: `*`, a 12-digit account id, an account root ARN, or another IAM or
/// STS ARN without wildcards (IAM refuses wildcards in principals other than `*` alone).
fn aws_principal(value: &str) -> Option<Principal> {
    if value == "*" {
        return Some(Principal::Anyone);
    }
    if is_account_id(value) {
        return Some(Principal::Account(value.to_string()));
    }
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    let [arn, _partition, service, _region, account, resource] = parts[..] else {
        return None;
    };
    if arn != "arn"
        || !matches!(service, "iam" | "sts")
        || !is_account_id(account)
        || resource.is_empty()
        || value.contains(['*', '?'])
    {
        return None;
    }
    if service == "iam" && resource == "root" {
        return Some(Principal::Account(account.to_string()));
    }
    Some(Principal::Arn(value.to_string()))
}

pub(crate) fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

fn parse_conditions(value: Json, version: Version) -> Result<Vec<Condition>, PolicyError> {
    let Json::Object(operators) = value else {
        return err("Condition must be an object of condition operators.");
    };
    let mut conditions = Vec::new();
    for (name, keys) in operators {
        let operator = parse_operator(&name)
            .ok_or_else(|| PolicyError::new(format!("Invalid Condition type : {name}")))?;
        let Json::Object(keys) = keys else {
            return err(format!(
                "Condition operator {name} must map condition keys to values."
            ));
        };
        for (key, values) in keys {
            if !has_vendor(&key) {
                return err(VENDOR);
            }
            let values = condition_values(values).ok_or_else(|| {
                PolicyError::new(format!(
                    "Condition value for {key} must be a string, number, boolean or an array \
                     of them."
                ))
            })?;
            conditions.push(Condition {
                operator: operator.clone(),
                key: key.to_lowercase(),
                values: values.iter().map(|v| Template::parse(v, version)).collect(),
            });
        }
    }
    Ok(conditions)
}

/// Condition values may be written as strings, numbers or booleans (`"aws:SecureTransport":
/// false`); all compare as their text.
fn condition_values(value: Json) -> Option<Vec<String>> {
    fn scalar(value: Json) -> Option<String> {
        match value {
            Json::String(s) | Json::Number(s) => Some(s),
            Json::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    match value {
        Json::Array(items) => items.into_iter().map(scalar).collect(),
        other => scalar(other).map(|s| vec![s]),
    }
}

/// Takes an operator name apart; `None` when it is not one of the language's.
fn parse_operator(name: &str) -> Option<Operator> {
    let lower = name.to_ascii_lowercase();
    let (qualifier, rest) = if let Some(rest) = lower.strip_prefix("foranyvalue:") {
        (Some(Qualifier::ForAnyValue), rest)
    } else if let Some(rest) = lower.strip_prefix("forallvalues:") {
        (Some(Qualifier::ForAllValues), rest)
    } else {
        (None, lower.as_str())
    };
    let (base, if_exists) = match rest.strip_suffix("ifexists") {
        Some(base) => (base, true),
        None => (rest, false),
    };
    let (test, negated) = match base {
        "stringequals" => (Test::StringEquals, false),
        "stringnotequals" => (Test::StringEquals, true),
        "stringequalsignorecase" => (Test::StringEqualsIgnoreCase, false),
        "stringnotequalsignorecase" => (Test::StringEqualsIgnoreCase, true),
        "stringlike" => (Test::StringLike, false),
        "stringnotlike" => (Test::StringLike, true),
        "numericequals" => (Test::NumericEquals, false),
        "numericnotequals" => (Test::NumericEquals, true),
        "numericlessthan" => (Test::NumericLessThan, false),
        "numericlessthanequals" => (Test::NumericLessThanEquals, false),
        "numericgreaterthan" => (Test::NumericGreaterThan, false),
        "numericgreaterthanequals" => (Test::NumericGreaterThanEquals, false),
        "dateequals" => (Test::DateEquals, false),
        "datenotequals" => (Test::DateEquals, true),
        "datelessthan" => (Test::DateLessThan, false),
        "datelessthanequals" => (Test::DateLessThanEquals, false),
        "dategreaterthan" => (Test::DateGreaterThan, false),
        "dategreaterthanequals" => (Test::DateGreaterThanEquals, false),
        "bool" => (Test::Bool, false),
        "binaryequals" => (Test::BinaryEquals, false),
        "ipaddress" => (Test::IpAddress, false),
        "notipaddress" => (Test::IpAddress, true),
        "arnequals" | "arnlike" => (Test::ArnLike, false),
        "arnnotequals" | "arnnotlike" => (Test::ArnLike, true),
        // `Null` asks whether the key is there at all: neither a set qualifier nor IfExists
        // means anything for it.
        "null" if qualifier.is_none() && !if_exists => (Test::Null, false),
        _ => return None,
    };
    Some(Operator {
        name: name.to_string(),
        qualifier,
        test,
        negated,
        if_exists,
    })
}

/// `*` and `?` as wildcards, every other character literal.
pub(crate) fn glob_toks(text: &str) -> Vec<Tok> {
    text.chars()
        .map(|c| match c {
            '*' => Tok::Any,
            '?' => Tok::One,
            c => Tok::Char(c),
        })
        .collect()
}

impl Template {
    /// Reads a value; in a 2012-10-17 document `${...}` is a policy variable or an escape.
    pub(crate) fn parse(text: &str, version: Version) -> Template {
        if version == Version::V2008_10_17 || !text.contains("${") {
            return Template::Fixed(glob_toks(text));
        }
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            // `${` without a closing brace is plain text.
            let Some(end) = after.find('}') else {
                break;
            };
            pieces.extend(glob_toks(&rest[..start]).into_iter().map(Piece::Tok));
            pieces.push(variable(&after[..end]));
            rest = &after[end + 1..];
        }
        pieces.extend(glob_toks(rest).into_iter().map(Piece::Tok));
        if pieces.iter().all(|p| matches!(p, Piece::Tok(_))) {
            let toks = pieces
                .into_iter()
                .filter_map(|p| match p {
                    Piece::Tok(t) => Some(t),
                    Piece::Var { .. } => None,
                })
                .collect();
            return Template::Fixed(toks);
        }
        Template::Variable(pieces)
    }
}

/// The inside of `${...}`: an escape (`*`, `?`, `$` stand for themselves, not wildcards), or a
/// key with an optional quoted default: `aws:PrincipalTag/team, 'none'`.
fn variable(inner: &str) -> Piece {
    match inner {
        "*" | "?" | "$" => {
            return Piece::Tok(Tok::Char(inner.chars().next().unwrap_or('$')));
        }
        _ => {}
    }
    let (key, default) = match inner.split_once(',') {
        Some((key, default)) => {
            let default = default.trim();
            let quoted = default
                .strip_prefix('\'')
                .and_then(|d| d.strip_suffix('\''))
                .map(str::to_string);
            match quoted {
                Some(d) => (key, Some(d)),
                // A default that is not quoted is not the syntax: the variable cannot resolve.
                None => (inner, None),
            }
        }
        None => (inner, None),
    };
    Piece::Var {
        key: key.trim().to_lowercase(),
        default,
    }
}

/// A JSON value that keeps object members in order and refuses duplicate keys: a document
/// with two `Condition` blocks in one statement must not silently lose one.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    /// A number, as its text.
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The value compactly, for error messages.
    fn describe(&self) -> String {
        match self {
            Json::Null => "null".to_string(),
            Json::Bool(b) => b.to_string(),
            Json::Number(n) => n.clone(),
            Json::String(s) => format!("\"{s}\""),
            Json::Array(_) => "[...]".to_string(),
            Json::Object(_) => "{...}".to_string(),
        }
    }
}

const DUPLICATE: &str = "duplicate key ";

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        Ok(Json::Number(v.to_string()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members: Vec<(String, Json)> = Vec::new();
        let mut seen = HashSet::new();
        while let Some((key, value)) = map.next_entry::<String, Json>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("{DUPLICATE}{key}")));
            }
            members.push((key, value));
        }
        Ok(Json::Object(members))
    }
}
