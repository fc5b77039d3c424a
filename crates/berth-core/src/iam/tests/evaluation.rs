//! Effects and evaluation order, actions and resources.

use super::*;

// ---------------------------------------------------------------- effect and evaluation order

#[test]
fn an_allow_statement_allows_its_action_on_its_resource() {
    let p = statements(r#"{"Effect": "Allow", "Action": "ecs:RunTask", "Resource": "*"}"#);
    assert_eq!(decide(&[&p], "ecs:RunTask", CLUSTER_DEV), Decision::Allow);
}

#[test]
fn no_policies_at_all_is_an_implicit_deny() {
    assert_eq!(decide(&[], "ecs:RunTask", "*"), Decision::ImplicitDeny);
}

#[test]
fn an_action_no_statement_names_is_an_implicit_deny() {
    let p = statements(r#"{"Effect": "Allow", "Action": "ecs:RunTask", "Resource": "*"}"#);
    assert_eq!(decide(&[&p], "ecs:StopTask", "*"), Decision::ImplicitDeny);
}

#[test]
fn a_deny_in_one_policy_beats_an_allow_in_another() {
    let allow = statements(r#"{"Effect": "Allow", "Action": "*", "Resource": "*"}"#);
    let deny = statements(r#"{"Effect": "Deny", "Action": "ecs:DeleteCluster", "Resource": "*"}"#);
    for order in [[&allow, &deny], [&deny, &allow]] {
        assert_eq!(
            decide(&order, "ecs:DeleteCluster", "*"),
            Decision::ExplicitDeny
        );
        assert_eq!(decide(&order, "ecs:ListClusters", "*"), Decision::Allow);
    }
}

#[test]
fn a_deny_beats_an_allow_in_the_same_policy() {
    let p = statements(
        r#"{"Effect": "Allow", "Action": "ecs:*", "Resource": "*"},
           {"Effect": "Deny", "Action": "ecs:Delete*", "Resource": "*"}"#,
    );
    assert_eq!(
        decide(&[&p], "ecs:DeleteService", "*"),
        Decision::ExplicitDeny
    );
    assert_eq!(decide(&[&p], "ecs:CreateService", "*"), Decision::Allow);
}

#[test]
fn a_deny_that_does_not_match_leaves_an_implicit_deny() {
    let p = statements(r#"{"Effect": "Deny", "Action": "ecs:RunTask", "Resource": "*"}"#);
    assert_eq!(decide(&[&p], "ecs:StopTask", "*"), Decision::ImplicitDeny);
}

#[test]
fn statement_may_be_one_object_instead_of_an_array() {
    let p = policy(
        r#"{"Version": "2012-10-17",
            "Statement": {"Effect": "Allow", "Action": "ecs:RunTask", "Resource": "*"}}"#,
    );
    assert_eq!(decide(&[&p], "ecs:RunTask", "*"), Decision::Allow);
}

// ---------------------------------------------------------------- actions

#[test]
fn action_matching_ignores_case() {
    let p = statements(r#"{"Effect": "Allow", "Action": "ECS:runtask", "Resource": "*"}"#);
    assert_eq!(decide(&[&p], "ecs:RunTask", "*"), Decision::Allow);
}

#[test]
fn action_star_wildcard_matches_any_run_of_characters() {
    let p = statements(r#"{"Effect": "Allow", "Action": "ecs:Describe*", "Resource": "*"}"#);
    assert_eq!(decide(&[&p], "ecs:DescribeTasks", "*"), Decision::Allow);
    assert_eq!(decide(&[&p], "ecs:Describe", "*"), Decision::Allow);
    assert_eq!(decide(&[&p], "ecs:ListTasks", "*"), Decision::ImplicitDeny);
}

#[test]
fn action_question_mark_matches_exactly_one_character() {
    let p = statements(r#"{"Effect": "Allow", "Action": "ecs:?unTask", "Resource": "*"}"#);
    assert_eq!(decide(&[&p], "ecs:RunTask", "*"), Decision::Allow);
    assert_eq!(decide(&[&p], "ecs:unTask", "*"), Decision::ImplicitDeny);
}

#[test]
fn star_action_matches_every_service_and_action() {
    let p = statements(r#"{"Effect": "Allow", "Action": "*", "Resource": "*"}"#);
    assert_eq!(decide(&[&p], "iam:CreateUser", "*"), Decision::Allow);
    assert_eq!(decide(&[&p], "ecs:RunTask", "*"), Decision::Allow);
}

#[test]
fn service_wildcard_does_not_reach_other_services() {
    let p = statements(r#"{"Effect": "Allow", "Action": "ecs:*", "Resource": "*"}"#);
    assert_eq!(decide(&[&p], "iam:CreateUser", "*"), Decision::ImplicitDeny);
}

#[test]
fn action_array_values_are_alternatives() {
    let p = statements(
        r#"{"Effect": "Allow", "Action": ["ecs:RunTask", "ecs:StopTask"], "Resource": "*"}"#,
    );
    assert_eq!(decide(&[&p], "ecs:StopTask", "*"), Decision::Allow);
    assert_eq!(decide(&[&p], "ecs:StartTask", "*"), Decision::ImplicitDeny);
}

#[test]
fn not_action_allows_every_action_it_does_not_name() {
    let p = statements(r#"{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}"#);
    assert_eq!(decide(&[&p], "ecs:RunTask", "*"), Decision::Allow);
    assert_eq!(decide(&[&p], "iam:CreateUser", "*"), Decision::ImplicitDeny);
}

#[test]
fn deny_with_not_action_denies_everything_else() {
    let allow = statements(r#"{"Effect": "Allow", "Action": "*", "Resource": "*"}"#);
    let deny = statements(r#"{"Effect": "Deny", "NotAction": "ecs:*", "Resource": "*"}"#);
    assert_eq!(
        decide(&[&allow, &deny], "iam:ListUsers", "*"),
        Decision::ExplicitDeny
    );
    assert_eq!(
        decide(&[&allow, &deny], "ecs:ListTasks", "*"),
        Decision::Allow
    );
}

// ---------------------------------------------------------------- resources

#[test]
fn resource_must_match_the_whole_arn() {
    let p = statements(&format!(
        r#"{{"Effect": "Allow", "Action": "ecs:*", "Resource": "{CLUSTER_DEV}"}}"#
    ));
    assert_eq!(
        decide(&[&p], "ecs:DescribeClusters", CLUSTER_DEV),
        Decision::Allow
    );
    let longer = format!("{CLUSTER_DEV}2");
    assert_eq!(
        decide(&[&p], "ecs:DescribeClusters", &longer),
        Decision::ImplicitDeny
    );
}

#[test]
fn resource_matching_is_case_sensitive() {
    let p = statements(&format!(
        r#"{{"Effect": "Allow", "Action": "ecs:*", "Resource": "{CLUSTER_DEV}"}}"#
    ));
    let upper = CLUSTER_DEV.replace("dev", "DEV");
    assert_eq!(
        decide(&[&p], "ecs:DescribeClusters", &upper),
        Decision::ImplicitDeny
    );
}

#[test]
fn resource_star_spans_slashes_and_colons() {
    let p = statements(
        r#"{"Effect": "Allow", "Action": "ecs:*", "Resource": "arn:aws:ecs:*:000000000000:task/*"}"#,
    );
    let task = "arn:aws:ecs:eu-west-1:000000000000:task/dev/0123456789abcdef";
    assert_eq!(decide(&[&p], "ecs:StopTask", task), Decision::Allow);
    let other_account = "arn:aws:ecs:eu-west-1:111111111111:task/dev/0123";
    assert_eq!(
        decide(&[&p], "ecs:StopTask", other_account),
        Decision::ImplicitDeny
    );
}

#[test]
fn resource_question_mark_matches_one_character() {
    let p = statements(
        r#"{"Effect": "Allow", "Action": "ecs:*", "Resource": "arn:aws:ecs:us-east-1:000000000000:cluster/dev?"}"#,
    );
    let dev1 = "arn:aws:ecs:us-east-1:000000000000:cluster/dev1";
    assert_eq!(decide(&[&p], "ecs:DescribeClusters", dev1), Decision::Allow);
    assert_eq!(
        decide(&[&p], "ecs:DescribeClusters", CLUSTER_DEV),
        Decision::ImplicitDeny
    );
}

#[test]
fn star_resource_matches_the_star_of_resourceless_actions() {
    let p = statements(r#"{"Effect": "Allow", "Action": "ecs:ListClusters", "Resource": "*"}"#);
    assert_eq!(decide(&[&p], "ecs:ListClusters", "*"), Decision::Allow);
}

#[test]
fn not_resource_applies_to_every_other_resource() {
    let p = statements(&format!(
        r#"{{"Effect": "Deny", "Action": "ecs:*", "NotResource": "{CLUSTER_DEV}"}},
           {{"Effect": "Allow", "Action": "ecs:*", "Resource": "*"}}"#
    ));
    let prod = "arn:aws:ecs:us-east-1:000000000000:cluster/prod";
    assert_eq!(
        decide(&[&p], "ecs:DeleteCluster", prod),
        Decision::ExplicitDeny
    );
    assert_eq!(
        decide(&[&p], "ecs:DeleteCluster", CLUSTER_DEV),
        Decision::Allow
    );
}

#[test]
fn read_only_user_on_dev_is_denied_everything_else() {
    let p = statements(
        r#"{"Effect": "Allow",
            "Action": ["ecs:Describe*", "ecs:List*"],
            "Resource": ["arn:aws:ecs:us-east-1:000000000000:cluster/dev",
                         "arn:aws:ecs:us-east-1:000000000000:task/dev/*"]}"#,
    );
    let task = "arn:aws:ecs:us-east-1:000000000000:task/dev/4f1c2d";
    let prod = "arn:aws:ecs:us-east-1:000000000000:cluster/prod";
    let prod_task = "arn:aws:ecs:us-east-1:000000000000:task/prod/4f1c2d";
    assert_eq!(
        decide(&[&p], "ecs:DescribeClusters", CLUSTER_DEV),
        Decision::Allow
    );
    assert_eq!(decide(&[&p], "ecs:ListTasks", CLUSTER_DEV), Decision::Allow);
    assert_eq!(decide(&[&p], "ecs:DescribeTasks", task), Decision::Allow);
    for (action, resource) in [
        ("ecs:RunTask", CLUSTER_DEV),
        ("ecs:StopTask", task),
        ("ecs:DeleteCluster", CLUSTER_DEV),
        ("ecs:DescribeClusters", prod),
        ("ecs:DescribeTasks", prod_task),
        ("ecs:ListClusters", "*"),
        ("iam:ListUsers", "*"),
    ] {
        assert_eq!(
            decide(&[&p], action, resource),
            Decision::ImplicitDeny,
            "{action} {resource}"
        );
    }
}

#[test]
fn deny_on_prod_tag_wins_over_allow_everything() {
    let admin = statements(r#"{"Effect": "Allow", "Action": "*", "Resource": "*"}"#);
    let guard = statements(
        r#"{"Effect": "Deny", "Action": "*", "Resource": "*",
            "Condition": {"StringEquals": {"aws:ResourceTag/env": "prod"}}}"#,
    );
    let prod = ctx(&[("aws:ResourceTag/env", "prod")]);
    let dev = ctx(&[("aws:ResourceTag/env", "dev")]);
    let policies = [&admin, &guard];
    let run = |c: &Context| decide_as(&policies, ALICE, "ecs:RunTask", CLUSTER_DEV, c);
    assert_eq!(run(&prod), Decision::ExplicitDeny);
    assert_eq!(run(&dev), Decision::Allow);
    assert_eq!(run(&Context::new()), Decision::Allow);
}
