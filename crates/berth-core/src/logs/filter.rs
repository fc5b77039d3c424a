//! CloudWatch Logs filter patterns ("Filter pattern syntax for metric filters, subscription
//! filters, filter log events"): the empty pattern matches every event; a term pattern names
//! case-sensitive terms that must all appear (`ERROR timeout`), quoted phrases
//! (`"Exception occurred"`), alternatives of which one must appear (`?ERROR ?WARN`) and terms
//! that must not (`ERROR -Retry`); a JSON pattern `{ ... }` selects fields of an event whose
//! message is JSON (`$.level`, `$.a.b`, `$.list[0]`) and compares them (`=`, `!=` with `*`
//! wildcards on strings; `<`, `<=`, `>`, `>=`, `=`, `!=` on numbers; `IS NULL`, `NOT EXISTS`,
//! `IS TRUE`, `IS FALSE`), combined with `&&`, `||` and parentheses.

use serde_json::Value;

/// A pattern the service would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid filter pattern: {reason}")]
pub struct FilterError {
    /// What is wrong, for the message.
    pub reason: String,
}

fn invalid<T>(reason: impl Into<String>) -> Result<T, FilterError> {
    Err(FilterError {
        reason: reason.into(),
    })
}

/// A parsed filter pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterPattern {
    /// The empty pattern: every event.
    All,
    /// Terms and phrases looked for in the message text.
    Terms(TermPattern),
    /// A condition on the fields of a JSON message.
    Json {
        expr: JsonExpr,
        /// Text every message the condition can match contains verbatim: checked before the
        /// message is parsed, so most non-matching events cost one substring search.
        needles: Vec<String>,
    },
}

/// The terms of a term pattern.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TermPattern {
    /// Each must appear.
    pub required: Vec<String>,
    /// When there are any, at least one must appear (`?term`).
    pub any_of: Vec<String>,
    /// None may appear (`-term`).
    pub excluded: Vec<String>,
}

/// A condition of a JSON pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonExpr {
    And(Box<JsonExpr>, Box<JsonExpr>),
    Or(Box<JsonExpr>, Box<JsonExpr>),
    Test(Selector, Test),
}

/// One step of a selector: a member name or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Field(String),
    Index(usize),
}

/// `$.a.b[0]`: the path from the message's root.
pub type Selector = Vec<Step>;

/// What a selected value must satisfy.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// `= "text"` / `!= "text"` (`*` matches any run of characters).
    Text { equal: bool, glob: String },
    /// A numeric comparison.
    Number { op: NumOp, value: f64 },
    /// `IS NULL`.
    IsNull,
    /// `NOT EXISTS`.
    NotExists,
    /// `IS TRUE` / `IS FALSE`.
    IsBool(bool),
}

/// Numeric comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl FilterPattern {
    /// Parses `pattern` as the service does.
    pub fn parse(pattern: &str) -> Result<FilterPattern, FilterError> {
        let trimmed = pattern.trim();
        if trimmed.is_empty() {
            return Ok(FilterPattern::All);
        }
        if let Some(inner) = trimmed.strip_prefix('{') {
            let Some(inner) = inner.strip_suffix('}') else {
                return invalid("a JSON pattern must end with '}'");
            };
            let tokens = tokenize(inner)?;
            let mut parser = Parser { tokens, at: 0 };
            let expr = parser.or()?;
            if parser.at != parser.tokens.len() {
                return invalid(format!("unexpected {:?}", parser.tokens[parser.at]));
            }
            let mut needles = Vec::new();
            expr.needles(&mut needles);
            return Ok(FilterPattern::Json { expr, needles });
        }
        if trimmed.starts_with('[') {
            return invalid("space-delimited patterns ([...]) are not supported by Berth");
        }
        parse_terms(trimmed).map(FilterPattern::Terms)
    }

    /// Whether the event with this message matches.
    pub fn matches(&self, message: &str) -> bool {
        match self {
            FilterPattern::All => true,
            FilterPattern::Terms(terms) => terms.matches(message),
            FilterPattern::Json { expr, needles } => {
                // Cheap refusals before parsing: only a JSON object holding every needle can
                // match.
                if !message.trim_start().starts_with('{')
                    || !needles.iter().all(|n| message.contains(n.as_str()))
                {
                    return false;
                }
                match serde_json::from_str::<Value>(message) {
                    Ok(value) => expr.eval(&value),
                    Err(_) => false,
                }
            }
        }
    }
}

impl TermPattern {
    /// Whether `message` has every required term, one of the alternatives and no excluded one.
    pub fn matches(&self, message: &str) -> bool {
        self.required.iter().all(|t| message.contains(t.as_str()))
            && (self.any_of.is_empty() || self.any_of.iter().any(|t| message.contains(t.as_str())))
            && !self.excluded.iter().any(|t| message.contains(t.as_str()))
    }
}

fn parse_terms(pattern: &str) -> Result<TermPattern, FilterError> {
    let mut terms = TermPattern::default();
    let mut chars = pattern.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else { break };
        let kind = match first {
            '?' | '-' => {
                chars.next();
                first
            }
            _ => ' ',
        };
        let term = if chars.next_if_eq(&'"').is_some() {
            let mut phrase = String::new();
            loop {
                match chars.next() {
                    None => return invalid("a quoted phrase is not closed"),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => phrase.push(c),
                        None => return invalid("a quoted phrase ends in '\\'"),
                    },
                    Some(c) => phrase.push(c),
                }
            }
            phrase
        } else {
            let mut word = String::new();
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '"' {
                    return invalid("a quote inside a term; quote the whole phrase");
                }
                word.push(c);
            }
            word
        };
        if term.is_empty() {
            return invalid(format!("'{kind}' must be followed by a term"));
        }
        match kind {
            '?' => terms.any_of.push(term),
            '-' => terms.excluded.push(term),
            _ => terms.required.push(term),
        }
    }
    Ok(terms)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    And,
    Or,
    Op(&'static str),
    Selector(Selector),
    Quoted(String),
    Word(String),
}

fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !"()&|=!<>\"".contains(c)
}

fn tokenize(text: &str) -> Result<Vec<Token>, FilterError> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let token = match c {
            c if c.is_whitespace() => continue,
            '(' => Token::Open,
            ')' => Token::Close,
            '&' if chars.next_if_eq(&'&').is_some() => Token::And,
            '|' if chars.next_if_eq(&'|').is_some() => Token::Or,
            '=' => Token::Op("="),
            '!' if chars.next_if_eq(&'=').is_some() => Token::Op("!="),
            '<' if chars.next_if_eq(&'=').is_some() => Token::Op("<="),
            '>' if chars.next_if_eq(&'=').is_some() => Token::Op(">="),
            '<' => Token::Op("<"),
            '>' => Token::Op(">"),
            '"' => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return invalid("a quoted string is not closed"),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => s.push(c),
                            None => return invalid("a quoted string ends in '\\'"),
                        },
                        Some(c) => s.push(c),
                    }
                }
                Token::Quoted(s)
            }
            '$' => Token::Selector(selector(&mut chars)?),
            c if is_word_char(c) => {
                let mut word = c.to_string();
                while let Some(c) = chars.next_if(|&c| is_word_char(c)) {
                    word.push(c);
                }
                Token::Word(word)
            }
            other => return invalid(format!("unexpected '{other}'")),
        };
        tokens.push(token);
    }
    Ok(tokens)
}

fn selector(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<Selector, FilterError> {
    let mut steps = Vec::new();
    loop {
        if chars.next_if_eq(&'.').is_some() {
            let mut name = String::new();
            while let Some(c) = chars.next_if(|&c| is_word_char(c) && c != '.' && c != '[') {
                name.push(c);
            }
            if name.is_empty() {
                return invalid("a selector has an empty member name");
            }
            steps.push(Step::Field(name));
        } else if chars.next_if_eq(&'[').is_some() {
            let mut digits = String::new();
            while let Some(c) = chars.next_if(|c| c.is_ascii_digit()) {
                digits.push(c);
            }
            if chars.next_if_eq(&']').is_none() {
                return invalid("an array index must be a number in [ ]");
            }
            let index = digits.parse().map_err(|_| FilterError {
                reason: "an array index must be a number in [ ]".to_string(),
            })?;
            steps.push(Step::Index(index));
        } else {
            break;
        }
    }
    if steps.is_empty() {
        return invalid("a selector must name a field: $.name");
    }
    Ok(steps)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn or(&mut self) -> Result<JsonExpr, FilterError> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Or) {
            self.at += 1;
            left = JsonExpr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<JsonExpr, FilterError> {
        let mut left = self.primary()?;
        while self.peek() == Some(&Token::And) {
            self.at += 1;
            left = JsonExpr::And(Box::new(left), Box::new(self.primary()?));
        }
        Ok(left)
    }

    fn primary(&mut self) -> Result<JsonExpr, FilterError> {
        match self.next() {
            Some(Token::Open) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Token::Close) => Ok(inner),
                    _ => invalid("a '(' is not closed"),
                }
            }
            Some(Token::Selector(selector)) => Ok(JsonExpr::Test(selector, self.test()?)),
            Some(other) => invalid(format!(
                "expected a selector such as $.field, found {other:?}"
            )),
            None => invalid("a condition is missing"),
        }
    }

    fn keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn test(&mut self) -> Result<Test, FilterError> {
        if self.keyword("IS") {
            return if self.keyword("NULL") {
                Ok(Test::IsNull)
            } else if self.keyword("TRUE") {
                Ok(Test::IsBool(true))
            } else if self.keyword("FALSE") {
                Ok(Test::IsBool(false))
            } else {
                invalid("IS must be followed by NULL, TRUE or FALSE")
            };
        }
        if self.keyword("NOT") {
            return if self.keyword("EXISTS") {
                Ok(Test::NotExists)
            } else {
                invalid("NOT must be followed by EXISTS")
            };
        }
        let op = match self.next() {
            Some(Token::Op(op)) => op,
            _ => return invalid("a selector must be followed by a comparison"),
        };
        let num_op = match op {
            "=" => NumOp::Eq,
            "!=" => NumOp::Ne,
            "<" => NumOp::Lt,
            "<=" => NumOp::Le,
            ">" => NumOp::Gt,
            _ => NumOp::Ge,
        };
        match self.next() {
            Some(Token::Quoted(text)) if matches!(num_op, NumOp::Eq | NumOp::Ne) => {
                Ok(Test::Text {
                    equal: num_op == NumOp::Eq,
                    glob: text,
                })
            }
            Some(Token::Word(word)) => match word.parse::<f64>() {
                Ok(value) if value.is_finite() => Ok(Test::Number { op: num_op, value }),
                _ if matches!(num_op, NumOp::Eq | NumOp::Ne) => Ok(Test::Text {
                    equal: num_op == NumOp::Eq,
                    glob: word,
                }),
                _ => invalid(format!("'{op}' compares numbers; '{word}' is not one")),
            },
            Some(Token::Quoted(_)) => invalid(format!("'{op}' compares numbers, not strings")),
            _ => invalid(format!("'{op}' must be followed by a value")),
        }
    }
}

/// Whether `text` appears verbatim in any JSON text that holds it as a key or string: plain
/// printable ASCII with nothing JSON might escape (`"`, `\\`, `/`).
fn verbatim_in_json(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && !matches!(b, b'"' | b'\\' | b'/'))
}

impl JsonExpr {
    /// Adds to `out` text that every message satisfying the condition contains verbatim: the
    /// member names tested and the fixed parts of `=` strings, on the paths every match
    /// takes (both sides of `&&`, neither of `||`).
    fn needles(&self, out: &mut Vec<String>) {
        match self {
            JsonExpr::And(a, b) => {
                a.needles(out);
                b.needles(out);
            }
            JsonExpr::Or(..) => {}
            JsonExpr::Test(selector, test) => {
                if matches!(test, Test::NotExists) {
                    return;
                }
                if let Some(Step::Field(name)) = selector.last() {
                    if verbatim_in_json(name) {
                        out.push(format!("\"{name}\""));
                    }
                }
                match test {
                    Test::Text { equal: true, glob } => out.extend(
                        glob.split('*')
                            .filter(|part| verbatim_in_json(part))
                            .map(str::to_string),
                    ),
                    Test::IsNull => out.push("null".to_string()),
                    Test::IsBool(true) => out.push("true".to_string()),
                    Test::IsBool(false) => out.push("false".to_string()),
                    _ => {}
                }
            }
        }
    }

    /// Whether the JSON `root` satisfies the condition.
    pub fn eval(&self, root: &Value) -> bool {
        match self {
            JsonExpr::And(a, b) => a.eval(root) && b.eval(root),
            JsonExpr::Or(a, b) => a.eval(root) || b.eval(root),
            JsonExpr::Test(selector, test) => {
                let mut value = Some(root);
                for step in selector {
                    value = match (value, step) {
                        (Some(Value::Object(map)), Step::Field(name)) => map.get(name),
                        (Some(Value::Array(items)), Step::Index(i)) => items.get(*i),
                        _ => None,
                    };
                }
                test.holds(value)
            }
        }
    }
}

impl Test {
    fn holds(&self, value: Option<&Value>) -> bool {
        match (self, value) {
            (Test::NotExists, value) => value.is_none(),
            (_, None) => false,
            (Test::IsNull, Some(v)) => v.is_null(),
            (Test::IsBool(b), Some(v)) => v.as_bool() == Some(*b),
            (Test::Text { equal, glob }, Some(v)) => {
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return false,
                };
                glob_matches(glob, &text) == *equal
            }
            (Test::Number { op, value: want }, Some(v)) => {
                let Some(have) = v.as_f64() else { return false };
                match op {
                    NumOp::Eq => have == *want,
                    NumOp::Ne => have != *want,
                    NumOp::Lt => have < *want,
                    NumOp::Le => have <= *want,
                    NumOp::Gt => have > *want,
                    NumOp::Ge => have >= *want,
                }
            }
        }
    }
}

/// Whether `text` matches `glob`, where `*` stands for any run of characters.
fn glob_matches(glob: &str, text: &str) -> bool {
    let parts: Vec<&str> = glob.split('*').collect();
    if parts.len() == 1 {
        return glob == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, message: &str) -> bool {
        FilterPattern::parse(pattern)
            .unwrap_or_else(|e| panic!("{pattern:?} should parse: {e}"))
            .matches(message)
    }

    #[test]
    fn the_empty_pattern_matches_every_event() {
        assert!(matches("", "anything"));
        assert!(matches("   ", ""));
    }

    #[test]
    fn every_term_must_appear_case_sensitively() {
        assert!(matches("ERROR timeout", "ERROR: request timeout after 3s"));
        assert!(!matches("ERROR timeout", "ERROR: request failed"));
        assert!(!matches("ERROR", "error: lower case"));
    }

    #[test]
    fn a_quoted_phrase_matches_as_a_whole() {
        assert!(matches(
            "\"Exception occurred\"",
            "java: Exception occurred here"
        ));
        assert!(!matches("\"Exception occurred\"", "occurred: Exception"));
        assert!(matches("\"say \\\"hi\\\"\"", "they say \"hi\""));
    }

    #[test]
    fn question_marked_terms_are_alternatives() {
        assert!(matches("?ERROR ?WARN", "WARN disk at 90%"));
        assert!(matches("?ERROR ?WARN", "ERROR disk full"));
        assert!(!matches("?ERROR ?WARN", "INFO all good"));
    }

    #[test]
    fn a_minus_excludes_a_term() {
        assert!(matches("ERROR -Retry", "ERROR connection refused"));
        assert!(!matches(
            "ERROR -Retry",
            "ERROR connection refused, Retry in 5s"
        ));
    }

    #[test]
    fn json_string_equality_takes_wildcards() {
        let message = r#"{"level":"error","user":{"name":"ana"}}"#;
        assert!(matches(r#"{ $.level = "error" }"#, message));
        assert!(!matches(r#"{ $.level = "warn" }"#, message));
        assert!(matches(r#"{ $.level != "warn" }"#, message));
        assert!(matches(r#"{ $.user.name = "a*" }"#, message));
        assert!(matches("{ $.user.name = *n* }", message));
        assert!(!matches(r#"{ $.user.name = "b*" }"#, message));
        assert!(!matches(
            r#"{ $.level = "error" }"#,
            "level=error, not JSON"
        ));
    }

    #[test]
    fn json_numbers_compare_numerically() {
        let message = r#"{"latency": 150, "code": 200}"#;
        assert!(matches("{ $.latency > 100 }", message));
        assert!(matches("{ $.latency >= 150 }", message));
        assert!(!matches("{ $.latency < 100 }", message));
        assert!(matches("{ $.latency <= 150.0 }", message));
        assert!(matches("{ $.code = 200 }", message));
        assert!(matches("{ $.code != 404 }", message));
        assert!(!matches("{ $.missing > 1 }", message));
    }

    #[test]
    fn json_conditions_combine_with_and_or_and_parentheses() {
        let message = r#"{"a": 1, "b": "x", "c": true}"#;
        assert!(matches(r#"{ $.a = 1 && $.b = "x" }"#, message));
        assert!(!matches(r#"{ $.a = 2 && $.b = "x" }"#, message));
        assert!(matches(r#"{ $.a = 2 || $.b = "x" }"#, message));
        assert!(matches(
            r#"{ ($.a = 2 || $.a = 1) && ($.c IS TRUE) }"#,
            message
        ));
        assert!(!matches(
            r#"{ ($.a = 2 || $.a = 3) && $.c IS TRUE }"#,
            message
        ));
    }

    #[test]
    fn json_null_existence_and_booleans() {
        let message = r#"{"gone": null, "ok": false}"#;
        assert!(matches("{ $.gone IS NULL }", message));
        assert!(!matches("{ $.ok IS NULL }", message));
        assert!(matches("{ $.absent NOT EXISTS }", message));
        assert!(!matches("{ $.gone NOT EXISTS }", message));
        assert!(matches("{ $.ok IS FALSE }", message));
        assert!(!matches("{ $.ok IS TRUE }", message));
    }

    #[test]
    fn json_selectors_reach_into_arrays() {
        let message = r#"{"items": [{"id": "first"}, {"id": "second"}], "n": [5, 7]}"#;
        assert!(matches(r#"{ $.items[1].id = "second" }"#, message));
        assert!(matches("{ $.n[0] < 6 }", message));
        assert!(!matches("{ $.n[5] < 6 }", message));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in [
            "\"unclosed",
            "{ $.a = 1",
            "{ $.a }",
            "{ a = 1 }",
            "{ $.a > \"x\" }",
            "{ $.a = 1 && }",
            "{ ($.a = 1 }",
            "{ $.a IS MAYBE }",
            "{ $.a[x] = 1 }",
            "? ERROR",
            "[ip, user]",
        ] {
            assert!(
                FilterPattern::parse(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn json_needles_come_from_and_chains_only() {
        let FilterPattern::Json { needles, .. } = FilterPattern::parse(
            r#"{ $.level = "err*r" && ($.a = 1 || $.b = 2) && $.c NOT EXISTS }"#,
        )
        .expect("parses") else {
            panic!("a JSON pattern");
        };
        assert_eq!(needles, ["\"level\"", "err", "r"]);
        // A key JSON may escape is not a needle: the message below spells it escaped.
        assert!(matches(r#"{ $.a/b = "x" }"#, r#"{"a\/b": "x"}"#));
    }

    #[test]
    fn glob_handles_leading_trailing_and_middle_stars() {
        assert!(glob_matches("*", ""));
        assert!(glob_matches("a*c", "abc"));
        assert!(glob_matches("a*c", "ac"));
        assert!(!glob_matches("a*c", "ab"));
        assert!(glob_matches("*b*d", "abcd"));
        assert!(!glob_matches("ab*ba", "aba"));
    }
}
