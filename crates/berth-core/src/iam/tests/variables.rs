//! Policy variables.

use super::*;

// ---------------------------------------------------------------- policy variables

#[test]
fn username_variable_in_resource_is_the_callers_name() {
    let p = statements(
        r#"{"Effect": "Allow", "Action": "ecs:*",
            "Resource": "arn:aws:ecs:us-east-1:000000000000:cluster/${aws:username}-*"}"#,
    );
    let alice = ctx(&[("aws:username", "alice")]);
    let own = "arn:aws:ecs:us-east-1:000000000000:cluster/alice-dev";
    let other = "arn:aws:ecs:us-east-1:000000000000:cluster/bob-dev";
    assert_eq!(
        decide_as(&[&p], ALICE, "ecs:RunTask", own, &alice),
        Decision::Allow
    );
    assert_eq!(
        decide_as(&[&p], ALICE, "ecs:RunTask", other, &alice),
        Decision::ImplicitDeny
    );
}

#[test]
fn unresolved_variable_makes_its_resource_match_nothing() {
    let p = statements(
        r#"{"Effect": "Allow", "Action": "ecs:*",
            "Resource": "arn:aws:ecs:us-east-1:000000000000:cluster/${aws:username}"}"#,
    );
    let literal = "arn:aws:ecs:us-east-1:000000000000:cluster/${aws:username}";
    let none = Context::new();
    assert_eq!(
        decide_as(&[&p], ALICE, "ecs:RunTask", literal, &none),
        Decision::ImplicitDeny
    );
}

#[test]
fn principal_tag_variable_in_condition_values() {
    let c = r#"{"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}}"#;
    let same = ctx(&[
        ("aws:PrincipalTag/team", "blue"),
        ("aws:ResourceTag/team", "blue"),
    ]);
    let other = ctx(&[
        ("aws:PrincipalTag/team", "blue"),
        ("aws:ResourceTag/team", "red"),
    ]);
    assert!(holds(c, &same));
    assert!(!holds(c, &other));
}

#[test]
fn unresolved_variable_matches_neither_positive_nor_negated_conditions() {
    let resource = ctx(&[("aws:ResourceTag/team", "red")]);
    let positive = r#"{"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}}"#;
    let negated = r#"{"StringNotEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}}"#;
    assert!(!holds(positive, &resource));
    assert!(!holds(negated, &resource));
}

#[test]
fn variable_default_applies_when_the_key_is_absent() {
    let c = r#"{"StringEquals": {"ecs:cluster": "${aws:PrincipalTag/cluster, 'shared'}"}}"#;
    assert!(holds(c, &ctx(&[("ecs:cluster", "shared")])));
    let tagged = ctx(&[
        ("ecs:cluster", "blue"),
        ("aws:PrincipalTag/cluster", "blue"),
    ]);
    assert!(holds(c, &tagged));
}

#[test]
fn userid_and_any_context_key_resolve_as_variables() {
    let c = r#"{"StringLike": {"ecs:path": "home/${aws:userid}/${ecs:cluster}/*"}}"#;
    let c_ok = ctx(&[
        ("aws:userid", "AIDAEXAMPLE"),
        ("ecs:cluster", "dev"),
        ("ecs:path", "home/AIDAEXAMPLE/dev/x"),
    ]);
    assert!(holds(c, &c_ok));
}

#[test]
fn escapes_stand_for_literal_star_question_mark_and_dollar() {
    let p = statements(
        r#"{"Effect": "Allow", "Action": "ecs:*",
            "Resource": "arn:aws:ecs:us-east-1:000000000000:cluster/a${*}b${?}${$}"}"#,
    );
    let none = Context::new();
    let literal = "arn:aws:ecs:us-east-1:000000000000:cluster/a*b?$";
    let wild = "arn:aws:ecs:us-east-1:000000000000:cluster/axxbc$";
    assert_eq!(
        decide_as(&[&p], ALICE, "ecs:RunTask", literal, &none),
        Decision::Allow
    );
    assert_eq!(
        decide_as(&[&p], ALICE, "ecs:RunTask", wild, &none),
        Decision::ImplicitDeny
    );
}

#[test]
fn variable_values_are_taken_literally_not_as_wildcards() {
    let c = r#"{"StringLike": {"ecs:cluster": "${aws:PrincipalTag/cluster}"}}"#;
    let star_tag = ctx(&[("aws:PrincipalTag/cluster", "*"), ("ecs:cluster", "prod")]);
    assert!(!holds(c, &star_tag));
}

#[test]
fn variables_are_literal_text_in_2008_10_17_policies() {
    let p = policy(
        r#"{"Version": "2008-10-17", "Statement": {"Effect": "Allow", "Action": "ecs:*",
            "Resource": "arn:aws:ecs:us-east-1:000000000000:cluster/${aws:username}"}}"#,
    );
    let alice = ctx(&[("aws:username", "alice")]);
    let named = "arn:aws:ecs:us-east-1:000000000000:cluster/alice";
    let literal = "arn:aws:ecs:us-east-1:000000000000:cluster/${aws:username}";
    assert_eq!(
        decide_as(&[&p], ALICE, "ecs:RunTask", named, &alice),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide_as(&[&p], ALICE, "ecs:RunTask", literal, &alice),
        Decision::Allow
    );
}

#[test]
fn a_document_without_version_reads_as_2008_10_17() {
    let p = policy(r#"{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}"#);
    assert_eq!(p.version(), Version::V2008_10_17);
    let q = statements(r#"{"Effect": "Allow", "Action": "*", "Resource": "*"}"#);
    assert_eq!(q.version(), Version::V2012_10_17);
}
