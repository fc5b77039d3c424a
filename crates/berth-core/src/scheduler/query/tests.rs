//! Tests of the cluster query language: parsing, errors with positions, evaluation and the
//! Display round trip (over fixed examples and over many random expressions).

use super::*;
use crate::scheduler::rng::Rng;

/// An instance for evaluation tests.
#[derive(Default)]
struct Facts {
    connected: bool,
    version: Option<String>,
    attributes: Vec<(String, Option<String>)>,
    id: Option<String>,
    registered: Option<f64>,
    running: i64,
    groups: Vec<String>,
}

impl Subjects for Facts {
    fn agent_connected(&self) -> bool {
        self.connected
    }
    fn agent_version(&self) -> Option<&str> {
        self.version.as_deref()
    }
    fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref())
    }
    fn ec2_instance_id(&self) -> Option<&str> {
        self.id.as_deref()
    }
    fn registered_at(&self) -> Option<f64> {
        self.registered
    }
    fn running_tasks_count(&self) -> i64 {
        self.running
    }
    fn any_task_group(&self, test: &mut dyn FnMut(&str) -> bool) -> bool {
        self.groups.iter().any(|g| test(g))
    }
}

fn t2_small_in_1a() -> Facts {
    Facts {
        connected: true,
        version: Some("1.14.5".into()),
        attributes: vec![
            ("ecs.instance-type".into(), Some("t2.small".into())),
            ("ecs.availability-zone".into(), Some("us-east-1a".into())),
            ("gpu".into(), None),
            ("slots".into(), Some("12".into())),
        ],
        id: Some("i-abcd1234".into()),
        registered: Some(1_518_480_000.0 + 3600.0), // 2018-02-13T01:00:00Z
        running: 1,
        groups: vec!["service:production".into()],
    }
}

fn holds(expr: &str, facts: &Facts) -> bool {
    parse(expr)
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
        .matches(facts)
}

#[test]
fn the_documented_examples_parse_and_select_as_documented() {
    let f = t2_small_in_1a();
    assert!(holds("attribute:ecs.instance-type == t2.small", &f));
    assert!(holds(
        "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
        &f
    ));
    assert!(holds(
        "attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone != us-east-1d",
        &f
    ));
    assert!(!holds("attribute:ecs.instance-type =~ g2.*", &f));
    assert!(holds("task:group == service:production", &f));
    assert!(!holds("not(task:group == service:production)", &f));
    assert!(holds("not(task:group == database)", &f));
    assert!(holds("runningTasksCount == 1", &f));
    assert!(holds("agentVersion < 1.14.10", &f));
    assert!(!holds("agentVersion < 1.14.5", &f));
    assert!(holds("registeredAt < 2018-02-14", &f));
    assert!(holds("registeredAt == 2018-02-13", &f));
    assert!(!holds("registeredAt < 2018-02-13", &f));
    assert!(holds("registeredAt > 2018-02-13T00:59:59Z", &f));
    assert!(holds("registeredAt <= 2018-02-13T02:00:00+01:00", &f));
    assert!(holds("ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']", &f));
    assert!(holds("agentConnected == true", &f));
}

#[test]
fn operators_words_symbols_and_connectives_are_interchangeable() {
    let f = t2_small_in_1a();
    for expr in [
        "attribute:gpu exists && attribute:nope !exists",
        "attribute:gpu exists and attribute:nope not_exists",
        "attribute:slots greater_than 9 || attribute:slots less_than 2",
        "attribute:slots >= 12 and attribute:slots <= 12",
        "!(attribute:ecs.availability-zone not_in (us-east-1a, us-east-1b))",
        "attribute:ecs.instance-type matches 't2\\.small' and ec2InstanceId not_matches 'i-x.*'",
        "(runningTasksCount==1)&&(task:group!=db)",
        "attribute:ecs.availability-zone =~ us-east-1[ab] and (attribute:ecs.instance-type =~ t2\\.(small|micro))",
        "attribute:ecs.instance-type equals t2.small or attribute:x not_equals y",
    ] {
        assert!(holds(expr, &f), "{expr}");
    }
}

#[test]
fn absent_subjects_fail_positive_tests_and_pass_negated_ones() {
    let f = Facts::default();
    assert!(!holds("attribute:zone == a", &f));
    assert!(holds("attribute:zone != a", &f));
    assert!(!holds("attribute:zone in [a, b]", &f));
    assert!(holds("attribute:zone !in [a, b]", &f));
    assert!(!holds("attribute:zone =~ .*", &f));
    assert!(holds("attribute:zone !~ .*", &f));
    assert!(!holds("task:group exists", &f));
    assert!(holds("task:group != anything", &f));
    assert!(!holds("registeredAt < 2030-01-01", &f));
    assert!(holds("agentConnected == false", &f));
}

#[test]
fn and_binds_tighter_than_or_and_not_tighter_than_and() {
    let f = t2_small_in_1a();
    // true or (false and false) = true; (true or false) and false would be false.
    assert!(holds(
        "runningTasksCount == 1 or runningTasksCount == 5 and runningTasksCount == 6",
        &f
    ));
    assert!(!holds(
        "not runningTasksCount == 1 and runningTasksCount == 1",
        &f
    ));
    let e = parse("a == 1").map(|_| ()).expect_err("unknown subject");
    assert_eq!(e.position, 0);
    assert!(
        parse("attribute:a == 1 or attribute:b == 2 and attribute:c == 3")
            .map(|e| matches!(e, Expr::Or(ref v) if v.len() == 2))
            .expect("parses")
    );
}

/// Each malformed expression with the position its error must point at.
#[test]
fn malformed_expressions_are_rejected_with_the_position_of_the_problem() {
    let cases: &[(&str, usize, &str)] = &[
        ("", 0, "subject"),
        ("   ", 3, "subject"),
        ("attribute:zone", 14, "operator"),
        ("attribute:zone == ", 18, "value"),
        ("attribute:zone = a", 15, "operator"),
        ("zone == a", 0, "Unknown subject"),
        ("attribute: == a", 0, "attribute"),
        ("attribute:zone == a and", 23, "subject"),
        ("attribute:zone == a b", 20, "Unexpected 'b'"),
        ("(attribute:zone == a", 0, "never closed"),
        ("attribute:zone == a)", 19, "')'"),
        ("attribute:zone in a, b", 18, "list"),
        ("attribute:zone in [a, b", 23, "never closed"),
        ("attribute:zone in [a b]", 21, "Unexpected 'b'"),
        ("attribute:zone == 'a", 18, "never closed"),
        ("attribute:zone =~ '('", 18, "regular expression"),
        ("runningTasksCount > many", 20, "whole numbers"),
        ("registeredAt < 2018-13-01", 15, "not a date"),
        ("agentConnected == maybe", 18, "true or false"),
        ("agentVersion exists", 13, "does not apply"),
        ("runningTasksCount =~ 1.*", 18, "does not apply"),
        ("task:group == a or or", 19, "subject"),
        ("attribute:zone == a && || b", 23, "subject"),
    ];
    for (expr, position, fragment) in cases {
        let err = parse(expr).expect_err(expr);
        assert_eq!(err.position, *position, "{expr}: {err}");
        assert!(err.message.contains(fragment), "{expr}: {err}");
        assert!(err
            .to_string()
            .contains(&format!("column {}", position + 1)));
    }
    let long = format!("attribute:a == {}", "x".repeat(2000));
    assert_eq!(parse(&long).expect_err("too long").position, 2000);
}

#[test]
fn display_reparses_to_the_same_expression_for_the_examples() {
    for text in [
        "attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone != us-east-1d",
        "not(task:group == database)",
        "ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']",
        "(attribute:a_ == 1 or attribute:b exists) and not attribute:c !exists",
        "attribute:x == 'two words' or attribute:y == \"it's\" or attribute:z == 'and'",
        "attribute:p =~ '^(a|b)\\\\d$' || agentConnected != FALSE",
        "((attribute:a == 1 and attribute:b == 2) and attribute:c == 3) or !registeredAt >= 2019-01-01",
    ] {
        let expr = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let shown = expr.to_string();
        assert_eq!(parse(&shown).as_ref(), Ok(&expr), "{text} -> {shown}");
    }
}

fn random_literal(rng: &mut Rng, subject: &Subject) -> Literal {
    const WORDS: [&str; 8] = [
        "a",
        "us-east-1a",
        "two words",
        "it's",
        "x\"y",
        "and",
        "t2.*",
        "a\\b",
    ];
    Literal::new(match subject {
        Subject::RunningTasksCount => rng.below(20).to_string(),
        Subject::RegisteredAt => format!("2020-0{}-1{}", 1 + rng.below(9), rng.below(10)),
        Subject::AgentConnected => ["true", "false"][rng.below(2) as usize].to_string(),
        _ => WORDS[rng.below(WORDS.len() as u64) as usize].to_string(),
    })
}

fn random_comparison(rng: &mut Rng) -> Comparison {
    use Operator::*;
    let subjects = [
        Subject::AgentConnected,
        Subject::AgentVersion,
        Subject::Attribute("ecs.availability-zone".into()),
        Subject::Attribute("zone".into()),
        Subject::Ec2InstanceId,
        Subject::RegisteredAt,
        Subject::RunningTasksCount,
        Subject::TaskGroup,
    ];
    let ops = [
        Equals,
        NotEquals,
        GreaterThan,
        GreaterThanEqual,
        LessThan,
        LessThanEqual,
        Exists,
        NotExists,
        In,
        NotIn,
        Matches,
        NotMatches,
    ];
    loop {
        let subject = subjects[rng.below(subjects.len() as u64) as usize].clone();
        let operator = ops[rng.below(ops.len() as u64) as usize];
        if !subject.allows(operator) {
            continue;
        }
        let argument = match operator {
            Exists | NotExists => Argument::None,
            In | NotIn => Argument::List(
                (0..1 + rng.below(3))
                    .map(|_| random_literal(rng, &subject))
                    .collect(),
            ),
            Matches | NotMatches => Argument::Pattern(
                Pattern::new(["t2.*", "a|b", "x\\.y", "[a-c]+ d"][rng.below(4) as usize])
                    .expect("valid pattern"),
            ),
            _ => Argument::Value(random_literal(rng, &subject)),
        };
        return Comparison {
            subject,
            operator,
            argument,
        };
    }
}

fn random_expr(rng: &mut Rng, depth: u32) -> Expr {
    if depth == 0 || rng.below(3) == 0 {
        return Expr::Compare(random_comparison(rng));
    }
    match rng.below(3) {
        0 => Expr::Not(Box::new(random_expr(rng, depth - 1))),
        1 => Expr::And(
            (0..2 + rng.below(2))
                .map(|_| random_expr(rng, depth - 1))
                .collect(),
        ),
        _ => Expr::Or(
            (0..2 + rng.below(2))
                .map(|_| random_expr(rng, depth - 1))
                .collect(),
        ),
    }
}

#[test]
fn display_round_trips_over_many_random_expressions() {
    let mut rng = Rng::new(0x5eed);
    for _ in 0..2000 {
        let expr = random_expr(&mut rng, 4);
        let shown = expr.to_string();
        assert_eq!(parse(&shown).as_ref(), Ok(&expr), "{shown}");
    }
}

#[test]
fn static_expressions_are_those_that_read_no_task_state() {
    assert!(parse("attribute:a == b and agentConnected == true")
        .expect("parses")
        .is_static());
    assert!(!parse("attribute:a == b and not (task:group == x)")
        .expect("parses")
        .is_static());
    assert!(!parse("runningTasksCount < 3").expect("parses").is_static());
}

#[test]
fn versions_and_numbers_order_part_by_part() {
    use std::cmp::Ordering::*;
    assert_eq!(compare_versions("1.14.10", "1.14.9"), Greater);
    assert_eq!(compare_versions("1.2", "1.2.0"), Less);
    assert_eq!(compare_versions("v2.0", "2.0"), Equal);
    let f = t2_small_in_1a();
    assert!(holds("attribute:slots > 9", &f), "numeric, not textual");
    assert!(holds("attribute:ecs.instance-type > t1.micro", &f));
}
