//! Deciding a request against parsed policies: does a statement apply to the caller, action,
//! resource and condition keys, and which effect wins.

use super::policy::{
    is_account_id, Actions, Condition, Effect, Piece, Principal, Principals, Qualifier, Resources,
    Statement, Template, Test, Tok,
};
use super::{Context, Decision, Policy, Request};
use crate::civil::{days_from_civil, days_in_month};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::net::IpAddr;

/// AWS's evaluation for one account: an explicit Deny in any policy wins; else an Allow in any
/// wins; else [`Decision::ImplicitDeny`] (default deny).
pub fn evaluate(policies: &[&Policy], request: &Request<'_>) -> Decision {
    let action: Vec<char> = request.action.to_lowercase().chars().collect();
    let resource: Vec<char> = request.resource.chars().collect();
    let mut allowed = false;
    for statement in policies.iter().flat_map(|p| &p.statements) {
        // Once allowed, only a Deny can change the answer.
        if allowed && statement.effect == Effect::Allow {
            continue;
        }
        if applies(statement, request, &action, &resource) {
            match statement.effect {
                Effect::Deny => return Decision::ExplicitDeny,
                Effect::Allow => allowed = true,
            }
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

fn applies(
    statement: &Statement,
    request: &Request<'_>,
    action: &[char],
    resource: &[char],
) -> bool {
    let context = request.context;
    statement
        .principal
        .as_ref()
        .is_none_or(|p| principal_matches(p, request.principal_arn))
        && action_matches(&statement.action, action)
        && statement
            .resource
            .as_ref()
            .is_none_or(|r| resource_matches(r, resource, context))
        && statement
            .conditions
            .iter()
            .all(|c| condition_holds(c, context))
}

fn action_matches(actions: &Actions, action: &[char]) -> bool {
    let named = actions.patterns.iter().any(|p| glob(p, action));
    named != actions.negated
}

fn resource_matches(resources: &Resources, resource: &[char], context: &Context) -> bool {
    // A pattern whose variable does not resolve matches nothing.
    let named = resources
        .patterns
        .iter()
        .any(|t| t.resolve(context).is_some_and(|p| glob(&p, resource)));
    named != resources.negated
}

fn principal_matches(principals: &Principals, caller: &str) -> bool {
    let named = principals.entries.iter().any(|p| match p {
        Principal::Anyone => true,
        Principal::Account(account) => account_of(caller) == Some(account.as_str()),
        Principal::Arn(arn) => arn == caller || is_session_of(caller, arn),
        // A service (`ecs-tasks.amazonaws.com`) calls as its own name.
        Principal::Other { kind, value } => kind == "Service" && value == caller,
    });
    named != principals.negated
}

/// The account of an IAM or STS principal ARN.
fn account_of(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts[..] {
        ["arn", _, "iam" | "sts", _, account, _] if is_account_id(account) => Some(account),
        _ => None,
    }
}

/// Whether `caller` is a session of the role `role_arn`: naming a role as principal names all
/// its sessions (`arn:aws:sts::A:assumed-role/Name/session`, which drops the role's path).
fn is_session_of(caller: &str, role_arn: &str) -> bool {
    let role: Vec<&str> = role_arn.splitn(6, ':').collect();
    let session: Vec<&str> = caller.splitn(6, ':').collect();
    let (["arn", partition, "iam", _, account, role_path], ["arn", p, "sts", _, a, assumed]) =
        (&role[..], &session[..])
    else {
        return false;
    };
    let Some(role_name) = role_path
        .strip_prefix("role/")
        .and_then(|path| path.rsplit('/').next())
    else {
        return false;
    };
    let Some((name, session_name)) = assumed
        .strip_prefix("assumed-role/")
        .and_then(|rest| rest.split_once('/'))
    else {
        return false;
    };
    partition == p && account == a && role_name == name && !session_name.is_empty()
}

impl Template {
    /// The pattern with policy variables replaced by the context's values (taken literally:
    /// a `*` in a tag value is no wildcard); `None` when a variable has no single value and no
    /// default.
    pub(crate) fn resolve(&self, context: &Context) -> Option<Cow<'_, [Tok]>> {
        let pieces = match self {
            Template::Fixed(toks) => return Some(Cow::Borrowed(toks)),
            Template::Variable(pieces) => pieces,
        };
        let mut toks = Vec::new();
        for piece in pieces {
            match piece {
                Piece::Tok(t) => toks.push(*t),
                Piece::Var { key, default } => {
                    let value = match (context.get(key), default) {
                        (Some([one]), _) => one.as_str(),
                        (_, Some(default)) => default.as_str(),
                        _ => return None,
                    };
                    toks.extend(value.chars().map(Tok::Char));
                }
            }
        }
        Some(Cow::Owned(toks))
    }
}

/// `*` matches any run of characters, `?` one character; everything else itself. Backtracks
/// only to the last `*`: at worst pattern × text steps, never exponential.
fn glob(pattern: &[Tok], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(Tok::Char(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            Some(Tok::One) => {
                p += 1;
                t += 1;
            }
            Some(Tok::Any) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..]
        .iter()
        .all(|tok| *tok == Tok::Any)
}

fn text_of(pattern: &[Tok]) -> String {
    pattern
        .iter()
        .map(|t| match t {
            Tok::Char(c) => *c,
            Tok::Any => '*',
            Tok::One => '?',
        })
        .collect()
}

/// One condition: an operator on one key. Values of one key are ORed (for negated operators:
/// the request value must match none of them); a request value list is read through the set
/// qualifier.
fn condition_holds(condition: &Condition, context: &Context) -> bool {
    let operator = &condition.operator;
    let present = context.get(&condition.key).filter(|v| !v.is_empty());
    if operator.test == Test::Null {
        let absent = present.is_none();
        return condition.values.iter().any(|v| {
            v.resolve(context).is_some_and(|p| {
                let text = text_of(&p);
                (absent && text.eq_ignore_ascii_case("true"))
                    || (!absent && text.eq_ignore_ascii_case("false"))
            })
        });
    }
    let Some(values) = present else {
        // AWS: IfExists holds without the key; ForAllValues holds on the empty set, ForAnyValue
        // does not; a negated operator holds when there is nothing to equal.
        return operator.if_exists
            || match operator.qualifier {
                Some(Qualifier::ForAllValues) => true,
                Some(Qualifier::ForAnyValue) => false,
                None => operator.negated,
            };
    };
    let patterns: Vec<Option<Cow<'_, [Tok]>>> = condition
        .values
        .iter()
        .map(|v| v.resolve(context))
        .collect();
    // A value that cannot be compared (an unresolved variable, a non-number for a numeric
    // test) matches neither way.
    let value_matches = |value: &String| {
        if operator.negated {
            patterns
                .iter()
                .all(|p| p.as_ref().and_then(|p| test(operator.test, value, p)) == Some(false))
        } else {
            patterns
                .iter()
                .any(|p| p.as_ref().and_then(|p| test(operator.test, value, p)) == Some(true))
        }
    };
    match operator.qualifier {
        Some(Qualifier::ForAllValues) => values.iter().all(value_matches),
        Some(Qualifier::ForAnyValue) => values.iter().any(value_matches),
        None if operator.negated => values.iter().all(value_matches),
        None => values.iter().any(value_matches),
    }
}

/// The positive form of `test` between a request value and a policy value; `None` when they
/// cannot be compared.
fn test(test: Test, value: &str, pattern: &[Tok]) -> Option<bool> {
    let ordered = |ord: Option<Ordering>, want: fn(Ordering) -> bool| ord.map(want);
    match test {
        Test::StringEquals | Test::BinaryEquals => Some(value == text_of(pattern)),
        Test::StringEqualsIgnoreCase => {
            Some(value.to_lowercase() == text_of(pattern).to_lowercase())
        }
        Test::StringLike => Some(glob(pattern, &value.chars().collect::<Vec<_>>())),
        Test::ArnLike => Some(arn_like(pattern, value)),
        Test::Bool => Some(boolean(value)? == boolean(&text_of(pattern))?),
        Test::IpAddress => in_cidr(value, &text_of(pattern)),
        Test::NumericEquals => ordered(numbers(value, pattern), Ordering::is_eq),
        Test::NumericLessThan => ordered(numbers(value, pattern), Ordering::is_lt),
        Test::NumericLessThanEquals => ordered(numbers(value, pattern), Ordering::is_le),
        Test::NumericGreaterThan => ordered(numbers(value, pattern), Ordering::is_gt),
        Test::NumericGreaterThanEquals => ordered(numbers(value, pattern), Ordering::is_ge),
        Test::DateEquals => ordered(dates(value, pattern), Ordering::is_eq),
        Test::DateLessThan => ordered(dates(value, pattern), Ordering::is_lt),
        Test::DateLessThanEquals => ordered(dates(value, pattern), Ordering::is_le),
        Test::DateGreaterThan => ordered(dates(value, pattern), Ordering::is_gt),
        Test::DateGreaterThanEquals => ordered(dates(value, pattern), Ordering::is_ge),
        Test::Null => None,
    }
}

fn boolean(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// How the request's number compares with the policy's.
fn numbers(value: &str, pattern: &[Tok]) -> Option<Ordering> {
    let number = |text: &str| text.trim().parse::<f64>().ok().filter(|n| n.is_finite());
    number(value)?.partial_cmp(&number(&text_of(pattern))?)
}

/// How the request's date compares with the policy's.
fn dates(value: &str, pattern: &[Tok]) -> Option<Ordering> {
    parse_date(value)?.partial_cmp(&parse_date(&text_of(pattern))?)
}

/// ARN matching as AWS documents it for `ArnLike`: each colon-separated part separately, so a
/// wildcard does not run across a colon except in the pattern's last part, which takes the
/// rest of the value (`*` alone matches anything, `arn:aws:ecs:*` any ECS ARN).
fn arn_like(pattern: &[Tok], value: &str) -> bool {
    let mut parts: Vec<&[Tok]> = Vec::with_capacity(6);
    let mut rest = pattern;
    while parts.len() < 5 {
        match rest.iter().position(|t| *t == Tok::Char(':')) {
            Some(i) => {
                parts.push(&rest[..i]);
                rest = &rest[i + 1..];
            }
            None => break,
        }
    }
    parts.push(rest);
    let values: Vec<&str> = value.splitn(parts.len(), ':').collect();
    values.len() == parts.len()
        && parts
            .iter()
            .zip(&values)
            .all(|(p, v)| glob(p, &v.chars().collect::<Vec<_>>()))
}

/// Whether the address `value` lies in `cidr` (`203.0.113.0/24`, `2001:db8::/32`, or a single
/// address); `None` when either does not parse.
fn in_cidr(value: &str, cidr: &str) -> Option<bool> {
    let address: IpAddr = value.trim().parse().ok()?;
    let (network, bits) = match cidr.trim().split_once('/') {
        Some((network, bits)) => (network.parse::<IpAddr>().ok()?, Some(bits.parse().ok()?)),
        None => (cidr.trim().parse::<IpAddr>().ok()?, None),
    };
    match (address.to_canonical(), network.to_canonical()) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let bits: u32 = bits.unwrap_or(32);
            if bits > 32 {
                return None;
            }
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            Some(u32::from(a) & mask == u32::from(n) & mask)
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let bits: u32 = bits.unwrap_or(128);
            if bits > 128 {
                return None;
            }
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            Some(u128::from(a) & mask == u128::from(n) & mask)
        }
        // An IPv6 caller is in no IPv4 range, and the other way round.
        _ => Some(false),
    }
}

/// Seconds since the Unix epoch of a date as the `Date*` operators take them: epoch seconds
/// (`1700000000`) or ISO 8601 (`2024-05-01`, `2024-05-01T12:00:00Z`, `...T12:00:00.5+02:00`,
/// the basic `20240501T120000Z`); no zone means UTC.
fn parse_date(text: &str) -> Option<f64> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<f64>().ok();
    }
    let mut cur = Cursor(text.as_bytes());
    let year = cur.digits(4)?;
    let extended = cur.eat(b'-');
    let month = cur.digits(2)?;
    if extended && !cur.eat(b'-') {
        return None;
    }
    let day = cur.digits(2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut seconds = (days_from_civil(year, month, day) * 86_400) as f64;
    if cur.eat(b'T') || cur.eat(b't') {
        let hour = cur.digits(2)?;
        if extended && !cur.eat(b':') {
            return None;
        }
        let minute = cur.digits(2)?;
        let mut second = 0.0;
        if (extended && cur.eat(b':')) || (!extended && cur.peek_digit()) {
            second = cur.digits(2)? as f64;
            if cur.eat(b'.') || cur.eat(b',') {
                let start = cur.0;
                let n = start.iter().take_while(|b| b.is_ascii_digit()).count();
                let frac = std::str::from_utf8(&start[..n]).ok()?;
                second += format!("0.{frac}").parse::<f64>().ok()?;
                cur.0 = &start[n..];
            }
        }
        if hour > 23 || minute > 59 || second >= 61.0 {
            return None;
        }
        seconds += (hour * 3600 + minute * 60) as f64 + second;
        let utc = cur.eat(b'Z') || cur.eat(b'z');
        if let Some(sign) = if utc { None } else { cur.sign() } {
            let offset_hours = cur.digits(2)?;
            cur.eat(b':');
            let offset_minutes = cur.digits(2)?;
            if offset_hours > 23 || offset_minutes > 59 {
                return None;
            }
            seconds -= (sign * (offset_hours * 3600 + offset_minutes * 60)) as f64;
        }
    }
    cur.0.is_empty().then_some(seconds)
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Option<i64> {
        let head = self.0.get(..n)?;
        if !head.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.0 = &self.0[n..];
        head.iter()
            .try_fold(0i64, |acc, b| Some(acc * 10 + i64::from(b - b'0')))
    }

    fn eat(&mut self, byte: u8) -> bool {
        match self.0.split_first() {
            Some((first, rest)) if *first == byte => {
                self.0 = rest;
                true
            }
            _ => false,
        }
    }

    fn peek_digit(&self) -> bool {
        self.0.first().is_some_and(u8::is_ascii_digit)
    }

    fn sign(&mut self) -> Option<i64> {
        if self.eat(b'+') {
            Some(1)
        } else if self.eat(b'-') {
            Some(-1)
        } else {
            None
        }
    }
}
