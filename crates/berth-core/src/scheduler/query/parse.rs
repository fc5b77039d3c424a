//! The parser of the cluster query language: a recursive descent over the characters, which
//! reports the first problem with the position (0-based character offset) where it is.

use super::{Argument, Comparison, Expr, Literal, Operator, Pattern, Subject};
use crate::civil::{days_from_civil, days_in_month};
use std::fmt;

/// The longest expression ECS accepts.
pub const MAX_EXPRESSION_LENGTH: usize = 2000;

/// Why an expression does not parse, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// 0-based character offset of the problem in the expression.
    pub position: usize,
    /// What is wrong and what would be right.
    pub message: String,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at column {}", self.message, self.position + 1)
    }
}

impl std::error::Error for QueryError {}

/// Parses a cluster query language expression.
pub fn parse(text: &str) -> Result<Expr, QueryError> {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() > MAX_EXPRESSION_LENGTH {
        return Err(QueryError {
            position: MAX_EXPRESSION_LENGTH,
            message: format!(
                "The expression is {} characters long; the limit is {MAX_EXPRESSION_LENGTH}",
                chars.len()
            ),
        });
    }
    let mut parser = Parser { chars, pos: 0 };
    let expr = parser.or()?;
    parser.skip_ws();
    if let Some(c) = parser.peek() {
        let message = if c == ')' {
            "Unexpected ')' without a matching '('".to_string()
        } else {
            format!("Unexpected '{c}': expected 'and', 'or' or the end of the expression")
        };
        return Err(parser.error_here(message));
    }
    Ok(expr)
}

/// Whether `text` can be written without quotes and read back as the same value.
pub(super) fn is_bare_value(text: &str) -> bool {
    !text.is_empty()
        && !matches!(text, "and" | "or" | "not")
        && !text.contains("&&")
        && !text.contains("||")
        && text.chars().all(|c| !ends_bare_value(c))
}

fn ends_bare_value(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | ',' | '\'' | '"')
}

fn is_subject_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '\\' | '-' | '@')
}

const SUBJECTS: &str = "agentConnected, agentVersion, attribute:<name>, ec2InstanceId, \
                        registeredAt, runningTasksCount or task:group";

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn error_at(&self, position: usize, message: impl Into<String>) -> QueryError {
        QueryError {
            position,
            message: message.into(),
        }
    }

    fn error_here(&self, message: impl Into<String>) -> QueryError {
        self.error_at(self.pos, message)
    }

    fn starts_with(&self, s: &str) -> bool {
        s.chars()
            .enumerate()
            .all(|(i, c)| self.peek_at(i) == Some(c))
    }

    /// Whether the word `w` starts here and ends before a character that could continue it.
    fn at_word(&self, w: &str) -> bool {
        let n = w.chars().count();
        self.starts_with(w) && !self.peek_at(n).is_some_and(is_subject_char)
    }

    /// Consumes `and`/`&&` (or `or`/`||`) when one comes next.
    fn eat_connective(&mut self, word: &str, symbol: &str) -> bool {
        self.skip_ws();
        if self.starts_with(symbol) {
            self.pos += symbol.len();
            return true;
        }
        if self.at_word(word) {
            self.pos += word.len();
            return true;
        }
        false
    }

    fn or(&mut self) -> Result<Expr, QueryError> {
        let mut parts = vec![self.and()?];
        while self.eat_connective("or", "||") {
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Expr, QueryError> {
        let mut parts = vec![self.unary()?];
        while self.eat_connective("and", "&&") {
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::And(parts)
        })
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        self.skip_ws();
        if self.at_word("not") {
            self.pos += 3;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some('!') {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some('(') {
            let open = self.pos;
            self.pos += 1;
            let inner = self.or()?;
            self.skip_ws();
            if self.peek() != Some(')') {
                return Err(match self.peek() {
                    None => self.error_at(open, "This '(' is never closed: add a ')'"),
                    Some(c) => {
                        self.error_here(format!("Unexpected '{c}': expected 'and', 'or' or ')'"))
                    }
                });
            }
            self.pos += 1;
            return Ok(inner);
        }
        self.comparison().map(Expr::Compare)
    }

    fn comparison(&mut self) -> Result<Comparison, QueryError> {
        let start = self.pos;
        while self.peek().is_some_and(is_subject_char) {
            self.pos += 1;
        }
        let word: String = self.chars[start..self.pos].iter().collect();
        if word.is_empty() {
            return Err(match self.peek() {
                None => self.error_here(format!("Expected a subject ({SUBJECTS})")),
                Some(c) => self.error_here(format!(
                    "Unexpected '{c}': expected a subject ({SUBJECTS}), 'not' or '('"
                )),
            });
        }
        let subject = subject_of(&word).map_err(|m| self.error_at(start, m))?;
        self.skip_ws();
        let op_start = self.pos;
        let operator = self.operator()?;
        if !subject.allows(operator) {
            return Err(self.error_at(
                op_start,
                format!(
                    "The operator '{}' does not apply to {subject}",
                    operator.symbol()
                ),
            ));
        }
        let argument = match operator {
            Operator::Exists | Operator::NotExists => Argument::None,
            Operator::In | Operator::NotIn => Argument::List(self.list(&subject)?),
            Operator::Matches | Operator::NotMatches => {
                self.skip_ws();
                let at = self.pos;
                let source = self.pattern()?;
                Argument::Pattern(Pattern::new(source).map_err(|m| self.error_at(at, m))?)
            }
            _ => {
                self.skip_ws();
                let at = self.pos;
                let literal = Literal::new(self.value()?);
                check_literal(&subject, operator, &literal).map_err(|m| self.error_at(at, m))?;
                Argument::Value(literal)
            }
        };
        Ok(Comparison {
            subject,
            operator,
            argument,
        })
    }

    fn operator(&mut self) -> Result<Operator, QueryError> {
        use Operator::*;
        const SYMBOLS: [(&str, Operator); 8] = [
            ("==", Equals),
            ("!=", NotEquals),
            (">=", GreaterThanEqual),
            ("<=", LessThanEqual),
            ("=~", Matches),
            ("!~", NotMatches),
            (">", GreaterThan),
            ("<", LessThan),
        ];
        const WORDS: [(&str, Operator); 14] = [
            ("!exists", NotExists),
            ("!in", NotIn),
            ("equals", Equals),
            ("not_equals", NotEquals),
            ("greater_than_equal", GreaterThanEqual),
            ("greater_than", GreaterThan),
            ("less_than_equal", LessThanEqual),
            ("less_than", LessThan),
            ("exists", Exists),
            ("not_exists", NotExists),
            ("in", In),
            ("not_in", NotIn),
            ("matches", Matches),
            ("not_matches", NotMatches),
        ];
        for (word, op) in WORDS {
            if self.at_word(word) {
                self.pos += word.len();
                return Ok(op);
            }
        }
        for (symbol, op) in SYMBOLS {
            if self.starts_with(symbol) {
                self.pos += symbol.len();
                return Ok(op);
            }
        }
        Err(self.error_here(
            "Expected an operator (==, !=, >, >=, <, <=, exists, !exists, in, !in, =~ or !~)",
        ))
    }

    fn list(&mut self, subject: &Subject) -> Result<Vec<Literal>, QueryError> {
        self.skip_ws();
        let close = match self.peek() {
            Some('[') => ']',
            Some('(') => ')',
            _ => return Err(self.error_here("Expected a list of values such as [a, b]")),
        };
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            let at = self.pos;
            let literal = Literal::new(self.value()?);
            check_literal(subject, Operator::Equals, &literal).map_err(|m| self.error_at(at, m))?;
            items.push(literal);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(c) if c == close => {
                    self.pos += 1;
                    return Ok(items);
                }
                None => {
                    return Err(self.error_here(format!("The list is never closed: add '{close}'")))
                }
                Some(c) => {
                    return Err(
                        self.error_here(format!("Unexpected '{c}': expected ',' or '{close}'"))
                    )
                }
            }
        }
    }

    /// A regular expression: quoted, or bare up to white space, where brackets and
    /// parentheses may appear as long as they balance (`t2\.(micro|small)`, `[bc]`).
    fn pattern(&mut self) -> Result<String, QueryError> {
        if matches!(self.peek(), Some('\'' | '"')) {
            return self.value();
        }
        let start = self.pos;
        let mut depth = 0usize;
        while let Some(c) = self.peek() {
            if c.is_whitespace()
                || (depth == 0 && (self.starts_with("&&") || self.starts_with("||")))
            {
                break;
            }
            match c {
                '(' | '[' => depth += 1,
                ')' | ']' if depth == 0 => break,
                ')' | ']' => depth -= 1,
                '\\' => self.pos += usize::from(self.peek_at(1).is_some()),
                _ => {}
            }
            self.pos += 1;
        }
        if self.pos == start {
            return self.value();
        }
        Ok(self.chars[start..self.pos].iter().collect())
    }

    /// A bare or quoted value.
    fn value(&mut self) -> Result<String, QueryError> {
        match self.peek() {
            Some(q @ ('\'' | '"')) => {
                let open = self.pos;
                self.pos += 1;
                let mut out = String::new();
                loop {
                    match self.peek() {
                        None => {
                            return Err(self.error_at(
                                open,
                                format!("This quoted value is never closed: add {q}"),
                            ))
                        }
                        Some('\\') if matches!(self.peek_at(1), Some(c) if c == q || c == '\\') => {
                            out.extend(self.peek_at(1));
                            self.pos += 2;
                        }
                        Some(c) if c == q => {
                            self.pos += 1;
                            return Ok(out);
                        }
                        Some(c) => {
                            out.push(c);
                            self.pos += 1;
                        }
                    }
                }
            }
            _ => {
                let start = self.pos;
                while let Some(c) = self.peek() {
                    if ends_bare_value(c) || self.starts_with("&&") || self.starts_with("||") {
                        break;
                    }
                    self.pos += 1;
                }
                if self.pos == start {
                    return Err(match self.peek() {
                        None => self.error_here("Expected a value"),
                        Some(c) => self.error_here(format!("Unexpected '{c}': expected a value")),
                    });
                }
                Ok(self.chars[start..self.pos].iter().collect())
            }
        }
    }
}

fn subject_of(word: &str) -> Result<Subject, String> {
    Ok(match word {
        "agentConnected" => Subject::AgentConnected,
        "agentVersion" => Subject::AgentVersion,
        "ec2InstanceId" => Subject::Ec2InstanceId,
        "registeredAt" => Subject::RegisteredAt,
        "runningTasksCount" => Subject::RunningTasksCount,
        "task:group" => Subject::TaskGroup,
        _ => match word.strip_prefix("attribute:") {
            Some(name) if crate::model::container_instance::is_valid_attribute_name(name) => {
                Subject::Attribute(name.to_string())
            }
            Some(_) => {
                return Err(format!(
                    "'{word}' does not name an attribute: write attribute:<name> with a name of \
                     1 to 128 letters, numbers, hyphens, underscores, periods or slashes"
                ))
            }
            None => return Err(format!("Unknown subject '{word}': use {SUBJECTS}")),
        },
    })
}

/// Checks that a value suits its subject: counts are whole numbers, registeredAt takes dates,
/// agentConnected takes true or false.
fn check_literal(subject: &Subject, op: Operator, literal: &Literal) -> Result<(), String> {
    let text = &literal.text;
    match subject {
        Subject::RunningTasksCount if literal.int.is_none() => Err(format!(
            "runningTasksCount compares with whole numbers, not '{text}'"
        )),
        Subject::RegisteredAt if literal.time.is_none() => Err(format!(
            "'{text}' is not a date: use 2018-06-18, 2018-06-18T22:28:28, \
             2018-06-18T22:28:28Z or 2018-06-18T22:28:28+00:00"
        )),
        Subject::AgentConnected
            if matches!(op, Operator::Equals | Operator::NotEquals)
                && !text.eq_ignore_ascii_case("true")
                && !text.eq_ignore_ascii_case("false") =>
        {
            Err(format!("agentConnected is true or false, not '{text}'"))
        }
        _ => Ok(()),
    }
}

/// The seconds `[start, end)` a date or time denotes: the whole day for `2018-06-18`, one
/// second for `2018-06-18T22:28:28` (UTC unless it ends in `Z` or an offset like `+02:00`).
pub(super) fn time_range(text: &str) -> Option<(f64, f64)> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(range)?;
        if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    if !(1..=12).contains(&month) || !(1..=days_in_month(year, month)).contains(&day) {
        return None;
    }
    let midnight = (days_from_civil(year, month, day) * 86_400) as f64;
    if b.len() == 10 {
        return Some((midnight, midnight + 86_400.0));
    }
    if b.len() < 19 || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, m, s) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let offset = match &text[19..] {
        "" | "Z" => 0,
        zone if zone.len() == 6 && zone.as_bytes()[3] == b':' => {
            let sign = match zone.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = (digits(20..22)?, digits(23..25)?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    let t = (midnight + (h * 3600 + m * 60 + s - offset) as f64).floor();
    Some((t, t + 1.0))
}
