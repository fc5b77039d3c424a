//! IAM's refusals of malformed documents, and no panic on any input.

use super::conditions::tag_keys;
use super::*;

// ---------------------------------------------------------------- malformed documents

#[test]
fn malformed_documents_are_refused_with_iam_messages() {
    let allow = r#""Effect": "Allow", "Action": "ecs:RunTask", "Resource": "*""#;
    let doc =
        |statement: &str| format!(r#"{{"Version": "2012-10-17", "Statement": [{statement}]}}"#);
    let cases: Vec<(String, &str)> = vec![
        ("not json".into(), "Syntax errors in policy."),
        (r#"{"Version": "2012-10-17", "Statement": ["#.into(), "Syntax errors in policy."),
        (r#"["Allow"]"#.into(), "Syntax errors in policy."),
        (
            format!(r#"{{"Version": "2012-10-18", "Statement": {{{allow}}}}}"#),
            "Policy document must be version 2012-10-17 or 2008-10-17",
        ),
        (
            format!(r#"{{"Version": 2012, "Statement": {{{allow}}}}}"#),
            "Policy document must be version 2012-10-17 or 2008-10-17",
        ),
        (r#"{"Version": "2012-10-17"}"#.into(), "Missing required field Statement"),
        (
            r#"{"Version": "2012-10-17", "Statement": []}"#.into(),
            "Policy document must contain at least one statement.",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": "Allow"}"#.into(),
            "Statement must be an object or an array of objects.",
        ),
        (
            format!(r#"{{"Version": "2012-10-17", "Extra": 1, "Statement": {{{allow}}}}}"#),
            "Policy document contains unsupported field Extra.",
        ),
        (
            doc(r#"{"Action": "ecs:RunTask", "Resource": "*"}"#),
            "Statement is missing required field Effect",
        ),
        (
            doc(r#"{"Effect": "allow", "Action": "ecs:RunTask", "Resource": "*"}"#),
            "Invalid effect: \"allow\". Effect must be Allow or Deny.",
        ),
        (
            doc(r#"{"Effect": "Allow", "Resource": "*"}"#),
            "Missing required field Action",
        ),
        (
            doc(r#"{"Effect": "Allow", "Action": [], "Resource": "*"}"#),
            "Policy statement must contain actions.",
        ),
        (
            doc(r#"{"Effect": "Allow", "Action": "ecs:RunTask", "NotAction": "iam:*", "Resource": "*"}"#),
            "Statement cannot contain both Action and NotAction.",
        ),
        (
            doc(r#"{"Effect": "Allow", "Action": "RunTask", "Resource": "*"}"#),
            "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
        ),
        (
            doc(r#"{"Effect": "Allow", "Action": ["ecs:RunTask", 7], "Resource": "*"}"#),
            "Action must be a string or an array of strings.",
        ),
        (
            doc(r#"{"Effect": "Allow", "Action": "ecs:RunTask"}"#),
            "Policy statement must contain resources.",
        ),
        (
            doc(r#"{"Effect": "Allow", "Action": "ecs:RunTask", "Resource": []}"#),
            "Policy statement must contain resources.",
        ),
        (
            doc(r#"{"Effect": "Allow", "Action": "ecs:RunTask", "Resource": "*", "NotResource": "*"}"#),
            "Statement cannot contain both Resource and NotResource.",
        ),
        (
            doc(r#"{"Effect": "Allow", "Action": "ecs:RunTask", "Resource": "cluster/dev"}"#),
            "Resource cluster/dev must be in ARN format or \"*\".",
        ),
        (
            doc(&format!(r#"{{{allow}, "Condition": {{"StringEqualz": {{"aws:username": "a"}}}}}}"#)),
            "Invalid Condition type : StringEqualz",
        ),
        (
            doc(&format!(r#"{{{allow}, "Condition": {{"NullIfExists": {{"aws:username": "true"}}}}}}"#)),
            "Invalid Condition type : NullIfExists",
        ),
        (
            doc(&format!(r#"{{{allow}, "Condition": {{"StringEquals": {{"username": "a"}}}}}}"#)),
            "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
        ),
        (
            doc(&format!(r#"{{{allow}, "Condition": {{"StringEquals": {{"aws:username": {{"a": 1}}}}}}}}"#)),
            "Condition value for aws:username must be a string, number, boolean or an array of them.",
        ),
        (
            doc(&format!(r#"{{{allow}, "Condition": ["StringEquals"]}}"#)),
            "Condition must be an object of condition operators.",
        ),
        (
            doc(&format!(r#"{{{allow}, "Condition": {{"StringEquals": "aws:username"}}}}"#)),
            "Condition operator StringEquals must map condition keys to values.",
        ),
        (
            doc(&format!(r#"{{{allow}, "Effects": "Deny"}}"#)),
            "Statement contains unsupported field Effects.",
        ),
        (
            doc(r#""Allow""#),
            "Statement must be an object or an array of objects.",
        ),
        (
            doc(&format!(r#"{{"Sid": "One", {allow}}}, {{"Sid": "One", {allow}}}"#)),
            "Statement IDs (SID) in a single policy must be unique.",
        ),
        (
            doc(&format!(r#"{{"Sid": "allow-run", {allow}}}"#)),
            "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the \
             regular expression [0-9A-Za-z]*",
        ),
        (
            doc(&format!(r#"{{{allow}, "Effect": "Deny"}}"#)),
            "Syntax errors in policy. Duplicate key Effect.",
        ),
        (
            doc(r#"{"Effect": "Allow", "Principal": "*", "NotPrincipal": "*", "Action": "sts:AssumeRole"}"#),
            "Statement cannot contain both Principal and NotPrincipal.",
        ),
        (
            doc(r#"{"Effect": "Allow", "Principal": "alice", "Action": "sts:AssumeRole"}"#),
            "Invalid principal in policy: \"alice\"",
        ),
        (
            doc(r#"{"Effect": "Allow", "Principal": {"AWS": "alice"}, "Action": "sts:AssumeRole"}"#),
            "Invalid principal in policy: \"AWS\":\"alice\"",
        ),
        (
            doc(r#"{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:user/*"}, "Action": "sts:AssumeRole"}"#),
            "Invalid principal in policy: \"AWS\":\"arn:aws:iam::000000000000:user/*\"",
        ),
        (
            doc(r#"{"Effect": "Allow", "Principal": {"Group": "admins"}, "Action": "sts:AssumeRole"}"#),
            "Invalid principal in policy: \"Group\":\"admins\"",
        ),
        (
            doc(r#"{"Effect": "Allow", "Principal": {}, "Action": "sts:AssumeRole"}"#),
            "Invalid principal in policy: {...}",
        ),
    ];
    for (json, message) in &cases {
        assert_eq!(refusal(json), *message, "{json}");
    }
}

#[test]
fn a_parsed_policy_equals_itself_parsed_again() {
    let json = r#"{"Version": "2012-10-17", "Id": "p1", "Statement": [
        {"Sid": "Read", "Effect": "Allow", "Action": ["ecs:Describe*"], "Resource": "*",
         "Condition": {"StringLike": {"ecs:cluster": "${aws:username}-*"}}}]}"#;
    assert_eq!(policy(json), policy(json));
    assert_eq!(policy(json).id(), Some("p1"));
}

// ---------------------------------------------------------------- no panics on any input

/// xorshift64*: a fixed sequence, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const WORDS: &[&str] = &[
    "Version",
    "Statement",
    "Sid",
    "Effect",
    "Allow",
    "Deny",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Principal",
    "NotPrincipal",
    "Condition",
    "AWS",
    "Service",
    "*",
    "?",
    "2012-10-17",
    "2008-10-17",
    "ecs:*",
    "ecs:Run?ask",
    "arn:aws:ecs:*:*:cluster/*",
    "arn:aws:iam::000000000000:root",
    "000000000000",
    "${aws:username}",
    "${",
    "}",
    "${*}",
    "${aws:PrincipalTag/x, 'd'}",
    "${a,",
    "StringEquals",
    "ForAnyValue:StringLike",
    "ForAllValues:NumericLessThanIfExists",
    "Null",
    "Bool",
    "DateLessThan",
    "IpAddress",
    "ArnLike",
    "aws:TagKeys",
    "aws:username",
    "aws:SourceIp",
    "10.0.0.0/33",
    "::1/200",
    "2024-13-45T99:99:99Z",
    "1e400",
    "-0",
    "true",
    "é",
    "\u{1F980}",
    "",
];

fn random_json(rng: &mut Rng, depth: usize) -> serde_json::Value {
    use serde_json::Value;
    let choice = if depth == 0 {
        rng.below(5)
    } else {
        rng.below(8)
    };
    match choice {
        0 => Value::Null,
        1 => Value::Bool(rng.below(2) == 0),
        2 => serde_json::json!(rng.next() as i64 as f64 / 1e6),
        3 | 4 => Value::String(rng.pick(WORDS).to_string()),
        5 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_json(rng, depth - 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.below(5))
                .map(|_| (rng.pick(WORDS).to_string(), random_json(rng, depth - 1)))
                .collect(),
        ),
    }
}

const ACTIONS: &[&str] = &["*", "ecs:*", "ecs:Run?ask", "iam:*", "ecs:"];
const RESOURCES: &[&str] = &[
    "*",
    "arn:aws:ecs:*:*:cluster/*",
    "arn:aws:ecs:us-east-1:000000000000:cluster/${aws:username}",
    "arn:aws:ecs:${*}:${?}${$}:${",
    "arn:",
];
const PRINCIPALS: &[&str] = &[
    "*",
    "000000000000",
    "arn:aws:iam::000000000000:root",
    "arn:aws:iam::000000000000:role/r",
    "arn:aws:sts::000000000000:assumed-role/r/s",
];
const OPERATORS: &[&str] = &[
    "StringEquals",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLikeIfExists",
    "NumericLessThan",
    "NumericNotEquals",
    "DateGreaterThanEquals",
    "DateNotEquals",
    "Bool",
    "BinaryEquals",
    "IpAddress",
    "NotIpAddressIfExists",
    "ArnLike",
    "ArnNotEquals",
    "Null",
    "ForAnyValue:StringEquals",
    "ForAllValues:StringNotLike",
    "ForAllValues:ArnLikeIfExists",
];
const KEYS: &[&str] = &[
    "aws:TagKeys",
    "aws:username",
    "aws:SourceIp",
    "aws:CurrentTime",
    "x:y",
];

/// A document shaped like a policy, mostly of valid parts with some random ones, so that the
/// generator reaches the evaluator and not only the first refusal.
fn random_policy(rng: &mut Rng) -> serde_json::Value {
    use serde_json::{json, Value};
    fn one_of(rng: &mut Rng, valid: &[&str]) -> Value {
        match rng.below(8) {
            0 => random_json(rng, 2),
            1 => Value::String(rng.pick(WORDS).to_string()),
            2 => Value::Array(
                (0..rng.below(3) + 1)
                    .map(|_| json!(rng.pick(valid)))
                    .collect(),
            ),
            _ => Value::String(rng.pick(valid).to_string()),
        }
    }
    let mut statement = serde_json::Map::new();
    statement.insert("Effect".into(), json!(rng.pick(&["Allow", "Deny"])));
    let action = one_of(rng, ACTIONS);
    statement.insert(rng.pick(&["Action", "NotAction"]).into(), action);
    if rng.below(4) != 0 {
        let resource = one_of(rng, RESOURCES);
        statement.insert(rng.pick(&["Resource", "NotResource"]).into(), resource);
    }
    if rng.below(3) == 0 {
        let principal = json!({"AWS": one_of(rng, PRINCIPALS)});
        statement.insert(rng.pick(&["Principal", "NotPrincipal"]).into(), principal);
    }
    if rng.below(3) != 0 {
        let mut keys = serde_json::Map::new();
        for _ in 0..rng.below(3) + 1 {
            let value = one_of(rng, WORDS);
            keys.insert(rng.pick(KEYS).into(), value);
        }
        statement.insert("Condition".into(), json!({ rng.pick(OPERATORS): keys }));
    }
    let version = rng.pick(&["2012-10-17", "2008-10-17"]);
    json!({"Version": version, "Statement": [statement]})
}

#[test]
fn arbitrary_json_never_panics_the_parser_or_the_evaluator() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut context = tag_keys(&["env", "*"]);
    context.insert("aws:username", "alice");
    context.insert("aws:SourceIp", "10.1.2.3");
    context.insert("aws:CurrentTime", "2024-06-01T12:00:00Z");
    let mut parsed = 0;
    for round in 0..4000 {
        let document = if round % 2 == 0 {
            random_json(&mut rng, 4)
        } else {
            random_policy(&mut rng)
        };
        let text = document.to_string();
        // Also every prefix-cut of the text: truncated documents are syntax errors.
        let cut = &text[..text
            .char_indices()
            .nth(rng.below(text.len() + 1))
            .map_or(text.len(), |(i, _)| i)];
        let _ = Policy::parse(cut);
        if let Ok(p) = Policy::parse(&text) {
            parsed += 1;
            for (action, resource) in [("ecs:RunTask", "*"), ("iam:X", CLUSTER_DEV)] {
                let _ = decide_as(&[&p], ALICE, action, resource, &context);
            }
        }
    }
    assert!(
        parsed > 100,
        "the generator should reach the evaluator ({parsed} parsed)"
    );
}

#[test]
fn arbitrary_text_never_panics_the_parser() {
    let mut rng = Rng(42);
    let alphabet: Vec<char> = "{}[]\":,\\ 0123456789.eE+-tfnulrasSVA*?$é\u{0}"
        .chars()
        .collect();
    for _ in 0..4000 {
        let text: String = (0..rng.below(60))
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect();
        let _ = Policy::parse(&text);
    }
    let deep = "[".repeat(100_000);
    assert_eq!(refusal(&deep), "Syntax errors in policy.");
}
