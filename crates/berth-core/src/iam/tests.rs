//! The IAM policy language as AWS documents it: effects, actions, resources, principals, every
//! condition operator, policy variables, the evaluation order, and IAM's refusals of malformed
//! documents.

use super::*;

const ALICE: &str = "arn:aws:iam::000000000000:user/alice";
const CLUSTER_DEV: &str = "arn:aws:ecs:us-east-1:000000000000:cluster/dev";

fn policy(json: &str) -> Policy {
    Policy::parse(json).unwrap_or_else(|e| panic!("{json} should parse: {e}"))
}

/// A 2012-10-17 document holding the given statements (JSON objects, comma-separated).
fn statements(statements: &str) -> Policy {
    policy(&format!(
        r#"{{"Version": "2012-10-17", "Statement": [{statements}]}}"#
    ))
}

fn refusal(json: &str) -> String {
    match Policy::parse(json) {
        Ok(p) => panic!("{json} should be refused, parsed as {p:?}"),
        Err(e) => e.message,
    }
}

fn decide(policies: &[&Policy], action: &str, resource: &str) -> Decision {
    decide_as(policies, ALICE, action, resource, &Context::new())
}

fn decide_as(
    policies: &[&Policy],
    principal_arn: &str,
    action: &str,
    resource: &str,
    context: &Context,
) -> Decision {
    evaluate(
        policies,
        &Request {
            principal_arn,
            action,
            resource,
            context,
        },
    )
}

/// Whether a statement allowing everything under `condition` (a JSON object) allows a request
/// with `context`.
fn holds(condition: &str, context: &Context) -> bool {
    let allow = statements(&format!(
        r#"{{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {condition}}}"#
    ));
    decide_as(&[&allow], ALICE, "ecs:ListClusters", "*", context) == Decision::Allow
}

fn ctx(pairs: &[(&str, &str)]) -> Context {
    let mut context = Context::new();
    for (key, value) in pairs {
        context.insert(key, *value);
    }
    context
}

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

// ---------------------------------------------------------------- principals (trust policies)

fn trust(principal: &str) -> Policy {
    statements(&format!(
        r#"{{"Effect": "Allow", "Principal": {principal}, "Action": "sts:AssumeRole"}}"#
    ))
}

fn may_assume(trust_policy: &Policy, caller: &str) -> bool {
    let role = "arn:aws:iam::000000000000:role/deployer";
    decide_as(
        &[trust_policy],
        caller,
        "sts:AssumeRole",
        role,
        &Context::new(),
    ) == Decision::Allow
}

#[test]
fn account_root_principal_matches_every_principal_of_that_account() {
    let p = trust(r#"{"AWS": "arn:aws:iam::000000000000:root"}"#);
    assert!(may_assume(&p, ALICE));
    assert!(may_assume(&p, "arn:aws:iam::000000000000:root"));
    assert!(may_assume(&p, "arn:aws:iam::000000000000:role/ci"));
    assert!(may_assume(
        &p,
        "arn:aws:sts::000000000000:assumed-role/ci/build-7"
    ));
}

#[test]
fn account_root_principal_does_not_match_another_account() {
    let p = trust(r#"{"AWS": "arn:aws:iam::000000000000:root"}"#);
    assert!(!may_assume(&p, "arn:aws:iam::111111111111:user/alice"));
    assert!(!may_assume(&p, "not an arn"));
}

#[test]
fn bare_account_id_principal_is_the_account_root() {
    let p = trust(r#"{"AWS": "111111111111"}"#);
    assert!(may_assume(&p, "arn:aws:iam::111111111111:user/bob"));
    assert!(!may_assume(&p, ALICE));
}

#[test]
fn user_principal_matches_that_user_only() {
    let p = trust(r#"{"AWS": ["arn:aws:iam::000000000000:user/alice"]}"#);
    assert!(may_assume(&p, ALICE));
    assert!(!may_assume(&p, "arn:aws:iam::000000000000:user/bob"));
    assert!(!may_assume(&p, "arn:aws:iam::000000000000:root"));
}

#[test]
fn role_principal_matches_the_sessions_of_that_role() {
    let p = trust(r#"{"AWS": "arn:aws:iam::000000000000:role/team/ci"}"#);
    assert!(may_assume(
        &p,
        "arn:aws:sts::000000000000:assumed-role/ci/build-7"
    ));
    assert!(!may_assume(
        &p,
        "arn:aws:sts::000000000000:assumed-role/other/build-7"
    ));
    assert!(!may_assume(
        &p,
        "arn:aws:sts::111111111111:assumed-role/ci/build-7"
    ));
}

#[test]
fn star_principal_matches_everyone() {
    assert!(may_assume(
        &trust(r#""*""#),
        "arn:aws:iam::999999999999:user/x"
    ));
    assert!(may_assume(&trust(r#"{"AWS": "*"}"#), ALICE));
}

#[test]
fn service_principal_parses_but_matches_no_caller() {
    let p = trust(r#"{"Service": "ecs-tasks.amazonaws.com"}"#);
    assert!(!may_assume(&p, ALICE));
    assert!(!may_assume(&p, "ecs-tasks.amazonaws.com"));
}

#[test]
fn not_principal_matches_everyone_it_does_not_name() {
    let p = statements(
        r#"{"Effect": "Allow", "Action": "*", "Resource": "*"},
           {"Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::000000000000:user/alice"},
            "Action": "*", "Resource": "*"}"#,
    );
    let ctx = Context::new();
    assert_eq!(
        decide_as(&[&p], ALICE, "s3:GetObject", "*", &ctx),
        Decision::Allow
    );
    let bob = "arn:aws:iam::000000000000:user/bob";
    assert_eq!(
        decide_as(&[&p], bob, "s3:GetObject", "*", &ctx),
        Decision::ExplicitDeny
    );
}

#[test]
fn statement_without_principal_matches_any_principal() {
    let p = statements(r#"{"Effect": "Allow", "Action": "*", "Resource": "*"}"#);
    let ctx = Context::new();
    let stranger = "arn:aws:iam::999999999999:user/x";
    assert_eq!(
        decide_as(&[&p], stranger, "ecs:RunTask", "*", &ctx),
        Decision::Allow
    );
}

#[test]
fn trust_and_identity_policy_checks_follow_iam() {
    let trust_policy = trust(r#"{"AWS": "000000000000"}"#);
    assert_eq!(trust_policy.check_trust_policy(), Ok(()));
    assert_eq!(
        trust_policy.check_identity_policy().map_err(|e| e.message),
        Err("Policy document should not specify a principal.".to_string())
    );
    let identity = statements(r#"{"Effect": "Allow", "Action": "*", "Resource": "*"}"#);
    assert_eq!(identity.check_identity_policy(), Ok(()));
    assert_eq!(
        identity.check_trust_policy().map_err(|e| e.message),
        Err("Missing required field Principal".to_string())
    );
    let with_resource = statements(
        r#"{"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole", "Resource": "*"}"#,
    );
    assert_eq!(
        with_resource.check_trust_policy().map_err(|e| e.message),
        Err("Has prohibited field Resource".to_string())
    );
    let with_not_resource = statements(
        r#"{"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole", "NotResource": "*"}"#,
    );
    assert_eq!(
        with_not_resource
            .check_trust_policy()
            .map_err(|e| e.message),
        Err("Has prohibited field NotResource".to_string())
    );
}

// ---------------------------------------------------------------- condition structure

#[test]
fn values_of_one_key_are_alternatives() {
    let c = r#"{"StringEquals": {"aws:RequestedRegion": ["us-east-1", "eu-west-1"]}}"#;
    assert!(holds(c, &ctx(&[("aws:RequestedRegion", "eu-west-1")])));
    assert!(!holds(c, &ctx(&[("aws:RequestedRegion", "ap-south-1")])));
}

#[test]
fn keys_of_one_operator_must_all_match() {
    let c = r#"{"StringEquals": {"ecs:cluster": "dev", "aws:RequestedRegion": "us-east-1"}}"#;
    let both = ctx(&[("ecs:cluster", "dev"), ("aws:RequestedRegion", "us-east-1")]);
    let one = ctx(&[("ecs:cluster", "dev"), ("aws:RequestedRegion", "eu-west-1")]);
    assert!(holds(c, &both));
    assert!(!holds(c, &one));
}

#[test]
fn operators_of_one_statement_must_all_match() {
    let c = r#"{"StringEquals": {"ecs:cluster": "dev"}, "Bool": {"aws:SecureTransport": "true"}}"#;
    assert!(holds(
        c,
        &ctx(&[("ecs:cluster", "dev"), ("aws:SecureTransport", "true")])
    ));
    assert!(!holds(
        c,
        &ctx(&[("ecs:cluster", "dev"), ("aws:SecureTransport", "false")])
    ));
}

#[test]
fn condition_keys_ignore_case_but_values_do_not() {
    let c = r#"{"StringEquals": {"AWS:UserName": "alice"}}"#;
    assert!(holds(c, &ctx(&[("aws:username", "alice")])));
    assert!(!holds(c, &ctx(&[("aws:username", "Alice")])));
}

#[test]
fn context_keys_are_stored_case_insensitively_and_may_repeat() {
    let mut c = Context::new();
    c.insert("aws:TagKeys", "env");
    c.insert("AWS:TAGKEYS", "team");
    assert_eq!(
        c.get("aws:tagkeys"),
        Some(&["env".to_string(), "team".to_string()][..])
    );
    assert_eq!(c.get("aws:username"), None);
}

#[test]
fn condition_values_may_be_numbers_and_booleans() {
    assert!(holds(
        r#"{"Bool": {"aws:SecureTransport": true}}"#,
        &ctx(&[("aws:SecureTransport", "true")])
    ));
    assert!(holds(
        r#"{"NumericLessThan": {"ecs:count": [3, 10]}}"#,
        &ctx(&[("ecs:count", "5")])
    ));
}

#[test]
fn positive_operators_do_not_match_an_absent_key() {
    for c in [
        r#"{"StringEquals": {"ecs:cluster": "dev"}}"#,
        r#"{"StringLike": {"ecs:cluster": "*"}}"#,
        r#"{"NumericGreaterThan": {"ecs:count": "0"}}"#,
        r#"{"ArnLike": {"aws:SourceArn": "*"}}"#,
        r#"{"Bool": {"aws:SecureTransport": "false"}}"#,
        r#"{"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}"#,
        r#"{"DateLessThan": {"aws:CurrentTime": "2100-01-01T00:00:00Z"}}"#,
    ] {
        assert!(!holds(c, &Context::new()), "{c}");
    }
}

#[test]
fn negated_operators_match_an_absent_key() {
    for c in [
        r#"{"StringNotEquals": {"ecs:cluster": "dev"}}"#,
        r#"{"StringNotEqualsIgnoreCase": {"ecs:cluster": "dev"}}"#,
        r#"{"StringNotLike": {"ecs:cluster": "d*"}}"#,
        r#"{"NumericNotEquals": {"ecs:count": "1"}}"#,
        r#"{"DateNotEquals": {"aws:CurrentTime": "2024-01-01"}}"#,
        r#"{"ArnNotEquals": {"aws:SourceArn": "arn:aws:ecs:us-east-1:0:cluster/dev"}}"#,
        r#"{"ArnNotLike": {"aws:SourceArn": "arn:aws:ecs:*"}}"#,
        r#"{"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}"#,
    ] {
        assert!(holds(c, &Context::new()), "{c}");
    }
}

// ---------------------------------------------------------------- string operators

#[test]
fn string_equals_is_exact_and_case_sensitive() {
    let c = r#"{"StringEquals": {"ecs:cluster": "dev"}}"#;
    assert!(holds(c, &ctx(&[("ecs:cluster", "dev")])));
    assert!(!holds(c, &ctx(&[("ecs:cluster", "Dev")])));
    assert!(!holds(c, &ctx(&[("ecs:cluster", "dev2")])));
}

#[test]
fn string_equals_takes_wildcards_literally() {
    let c = r#"{"StringEquals": {"ecs:cluster": "d*"}}"#;
    assert!(holds(c, &ctx(&[("ecs:cluster", "d*")])));
    assert!(!holds(c, &ctx(&[("ecs:cluster", "dev")])));
}

#[test]
fn string_not_equals_matches_any_other_value() {
    let c = r#"{"StringNotEquals": {"ecs:cluster": ["dev", "test"]}}"#;
    assert!(holds(c, &ctx(&[("ecs:cluster", "prod")])));
    assert!(!holds(c, &ctx(&[("ecs:cluster", "test")])));
}

#[test]
fn string_equals_ignore_case_folds_case() {
    let c = r#"{"StringEqualsIgnoreCase": {"ecs:cluster": "DEV"}}"#;
    assert!(holds(c, &ctx(&[("ecs:cluster", "dev")])));
    assert!(!holds(c, &ctx(&[("ecs:cluster", "prod")])));
}

#[test]
fn string_not_equals_ignore_case_folds_case() {
    let c = r#"{"StringNotEqualsIgnoreCase": {"ecs:cluster": "DEV"}}"#;
    assert!(!holds(c, &ctx(&[("ecs:cluster", "dev")])));
    assert!(holds(c, &ctx(&[("ecs:cluster", "prod")])));
}

#[test]
fn string_like_takes_star_and_question_mark_as_wildcards() {
    let c = r#"{"StringLike": {"ecs:cluster": ["dev-*", "qa?"]}}"#;
    assert!(holds(c, &ctx(&[("ecs:cluster", "dev-eu")])));
    assert!(holds(c, &ctx(&[("ecs:cluster", "qa1")])));
    assert!(!holds(c, &ctx(&[("ecs:cluster", "qa12")])));
    assert!(!holds(c, &ctx(&[("ecs:cluster", "Dev-eu")])));
}

#[test]
fn string_not_like_matches_values_outside_every_pattern() {
    let c = r#"{"StringNotLike": {"ecs:cluster": ["dev-*", "qa?"]}}"#;
    assert!(holds(c, &ctx(&[("ecs:cluster", "prod")])));
    assert!(!holds(c, &ctx(&[("ecs:cluster", "dev-eu")])));
}

// ---------------------------------------------------------------- numeric, date, bool, binary, ip

#[test]
fn numeric_operators_compare_numbers() {
    let five = ctx(&[("ecs:count", "5")]);
    let cases = [
        ("NumericEquals", "5", true),
        ("NumericEquals", "5.0", true),
        ("NumericEquals", "6", false),
        ("NumericNotEquals", "6", true),
        ("NumericNotEquals", "5", false),
        ("NumericLessThan", "6", true),
        ("NumericLessThan", "5", false),
        ("NumericLessThanEquals", "5", true),
        ("NumericLessThanEquals", "4", false),
        ("NumericGreaterThan", "4", true),
        ("NumericGreaterThan", "5", false),
        ("NumericGreaterThanEquals", "5", true),
        ("NumericGreaterThanEquals", "6", false),
    ];
    for (operator, value, expected) in cases {
        let c = format!(r#"{{"{operator}": {{"ecs:count": "{value}"}}}}"#);
        assert_eq!(holds(&c, &five), expected, "5 {operator} {value}");
    }
}

#[test]
fn numeric_operators_never_match_a_non_number() {
    let c = ctx(&[("ecs:count", "five")]);
    assert!(!holds(r#"{"NumericEquals": {"ecs:count": "5"}}"#, &c));
    assert!(!holds(r#"{"NumericNotEquals": {"ecs:count": "5"}}"#, &c));
    assert!(!holds(
        r#"{"NumericLessThan": {"ecs:count": "NaN"}}"#,
        &ctx(&[("ecs:count", "1")])
    ));
}

#[test]
fn date_operators_compare_instants_in_iso_8601_and_epoch_seconds() {
    let now = ctx(&[("aws:CurrentTime", "2024-06-01T12:00:00Z")]);
    let cases = [
        ("DateEquals", "2024-06-01T14:00:00+02:00", true),
        ("DateEquals", "1717243200", true),
        ("DateNotEquals", "2024-06-01T12:00:01Z", true),
        ("DateNotEquals", "2024-06-01T12:00:00Z", false),
        ("DateLessThan", "2025-01-01", true),
        ("DateLessThan", "2024-06-01", false),
        ("DateLessThanEquals", "2024-06-01T12:00:00Z", true),
        ("DateGreaterThan", "2024-06-01", true),
        ("DateGreaterThan", "2024-06-01T12:00:00.001Z", false),
        ("DateGreaterThanEquals", "20240601T120000Z", true),
        ("DateGreaterThanEquals", "2024-06-02", false),
    ];
    for (operator, value, expected) in cases {
        let c = format!(r#"{{"{operator}": {{"aws:CurrentTime": "{value}"}}}}"#);
        assert_eq!(holds(&c, &now), expected, "now {operator} {value}");
    }
}

#[test]
fn date_operators_never_match_a_non_date() {
    let c = ctx(&[("aws:CurrentTime", "2024-02-30T00:00:00Z")]);
    assert!(!holds(
        r#"{"DateLessThan": {"aws:CurrentTime": "2100-01-01"}}"#,
        &c
    ));
    assert!(!holds(
        r#"{"DateNotEquals": {"aws:CurrentTime": "2100-01-01"}}"#,
        &c
    ));
}

#[test]
fn bool_compares_true_and_false() {
    let c = r#"{"Bool": {"aws:SecureTransport": "false"}}"#;
    assert!(holds(c, &ctx(&[("aws:SecureTransport", "false")])));
    assert!(!holds(c, &ctx(&[("aws:SecureTransport", "true")])));
    assert!(holds(
        r#"{"Bool": {"aws:MultiFactorAuthPresent": "true"}}"#,
        &ctx(&[("aws:MultiFactorAuthPresent", "TRUE")])
    ));
}

#[test]
fn binary_equals_compares_the_base64_text() {
    let c = r#"{"BinaryEquals": {"ecs:blob": "QmluYXJ5VmFsdWU="}}"#;
    assert!(holds(c, &ctx(&[("ecs:blob", "QmluYXJ5VmFsdWU=")])));
    assert!(!holds(c, &ctx(&[("ecs:blob", "QmluYXJ5VmFsdWF=")])));
}

#[test]
fn ip_address_matches_addresses_inside_the_cidr() {
    let c =
        r#"{"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:db8::/32", "198.51.100.7"]}}"#;
    assert!(holds(c, &ctx(&[("aws:SourceIp", "203.0.113.77")])));
    assert!(holds(c, &ctx(&[("aws:SourceIp", "198.51.100.7")])));
    assert!(holds(c, &ctx(&[("aws:SourceIp", "2001:db8:1::5")])));
    assert!(!holds(c, &ctx(&[("aws:SourceIp", "203.0.114.1")])));
    assert!(!holds(c, &ctx(&[("aws:SourceIp", "2001:db9::1")])));
}

#[test]
fn not_ip_address_matches_addresses_outside_the_cidr() {
    let c = r#"{"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}"#;
    assert!(holds(c, &ctx(&[("aws:SourceIp", "192.168.1.1")])));
    assert!(!holds(c, &ctx(&[("aws:SourceIp", "10.1.2.3")])));
    assert!(!holds(c, &ctx(&[("aws:SourceIp", "not-an-ip")])));
}

// ---------------------------------------------------------------- ARN operators

#[test]
fn arn_equals_and_arn_like_match_exact_arns_and_wildcards() {
    let source = ctx(&[("aws:SourceArn", CLUSTER_DEV)]);
    for operator in ["ArnEquals", "ArnLike"] {
        for (pattern, expected) in [
            (CLUSTER_DEV, true),
            ("arn:aws:ecs:*:000000000000:cluster/*", true),
            ("arn:aws:ecs:us-east-?:000000000000:cluster/dev", true),
            ("arn:aws:ecs:us-east-1:000000000000:cluster/prod", false),
            ("arn:aws:ecs:us-east-1:111111111111:cluster/*", false),
        ] {
            let c = format!(r#"{{"{operator}": {{"aws:SourceArn": "{pattern}"}}}}"#);
            assert_eq!(holds(&c, &source), expected, "{operator} {pattern}");
        }
    }
}

#[test]
fn arn_like_wildcards_stay_within_their_colon_separated_part() {
    let source = ctx(&[("aws:SourceArn", CLUSTER_DEV)]);
    // `us-*` in the region part may not swallow the account as well.
    let c = r#"{"ArnLike": {"aws:SourceArn": "arn:aws:ecs:us-*:cluster/dev"}}"#;
    assert!(!holds(c, &source));
    let parts = r#"{"ArnLike": {"aws:SourceArn": "arn:aws:ecs:us-*:*:cluster/dev"}}"#;
    assert!(holds(parts, &source));
    // The last part of the pattern takes the rest of the ARN.
    let any_ecs = r#"{"ArnLike": {"aws:SourceArn": "arn:aws:ecs:*"}}"#;
    assert!(holds(any_ecs, &source));
    assert!(!holds(
        any_ecs,
        &ctx(&[("aws:SourceArn", "arn:aws:s3:::bucket")])
    ));
}

#[test]
fn arn_not_like_and_arn_not_equals_match_other_arns() {
    let source = ctx(&[("aws:SourceArn", CLUSTER_DEV)]);
    for operator in ["ArnNotEquals", "ArnNotLike"] {
        let hit =
            format!(r#"{{"{operator}": {{"aws:SourceArn": "arn:aws:ecs:*:*:cluster/dev"}}}}"#);
        let miss =
            format!(r#"{{"{operator}": {{"aws:SourceArn": "arn:aws:ecs:*:*:cluster/prod"}}}}"#);
        assert!(!holds(&hit, &source), "{operator}");
        assert!(holds(&miss, &source), "{operator}");
    }
}

// ---------------------------------------------------------------- Null and IfExists

#[test]
fn null_true_matches_an_absent_key_and_false_a_present_one() {
    let absent = r#"{"Null": {"aws:TokenIssueTime": "true"}}"#;
    let present = r#"{"Null": {"aws:TokenIssueTime": "false"}}"#;
    let with_key = ctx(&[("aws:TokenIssueTime", "2024-06-01T00:00:00Z")]);
    assert!(holds(absent, &Context::new()));
    assert!(!holds(absent, &with_key));
    assert!(holds(present, &with_key));
    assert!(!holds(present, &Context::new()));
}

#[test]
fn if_exists_holds_when_the_key_is_absent() {
    for c in [
        r#"{"StringEqualsIfExists": {"ecs:cluster": "dev"}}"#,
        r#"{"NumericLessThanIfExists": {"ecs:count": "3"}}"#,
        r#"{"ArnLikeIfExists": {"aws:SourceArn": "arn:aws:ecs:*:*:cluster/dev"}}"#,
        r#"{"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}}"#,
    ] {
        assert!(holds(c, &Context::new()), "{c}");
    }
}

#[test]
fn if_exists_tests_the_key_when_it_is_present() {
    let c = r#"{"StringEqualsIfExists": {"ecs:cluster": "dev"}}"#;
    assert!(holds(c, &ctx(&[("ecs:cluster", "dev")])));
    assert!(!holds(c, &ctx(&[("ecs:cluster", "prod")])));
    let n = r#"{"NumericLessThanIfExists": {"ecs:count": "3"}}"#;
    assert!(!holds(n, &ctx(&[("ecs:count", "4")])));
}

// ---------------------------------------------------------------- set qualifiers

fn tag_keys(keys: &[&str]) -> Context {
    let mut c = Context::new();
    for key in keys {
        c.insert("aws:TagKeys", *key);
    }
    c
}

#[test]
fn for_all_values_requires_every_request_value_to_be_listed() {
    let c = r#"{"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}}"#;
    assert!(holds(c, &tag_keys(&["env"])));
    assert!(holds(c, &tag_keys(&["env", "team"])));
    assert!(!holds(c, &tag_keys(&["env", "owner"])));
}

#[test]
fn for_all_values_holds_when_the_key_is_absent() {
    let c = r#"{"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}}"#;
    assert!(holds(c, &Context::new()));
}

#[test]
fn for_any_value_requires_one_request_value_to_be_listed() {
    let c = r#"{"ForAnyValue:StringEquals": {"aws:TagKeys": ["env", "team"]}}"#;
    assert!(holds(c, &tag_keys(&["owner", "team"])));
    assert!(!holds(c, &tag_keys(&["owner", "cost"])));
}

#[test]
fn for_any_value_fails_when_the_key_is_absent() {
    let c = r#"{"ForAnyValue:StringEquals": {"aws:TagKeys": ["env", "team"]}}"#;
    assert!(!holds(c, &Context::new()));
}

#[test]
fn set_qualifiers_combine_with_other_operators() {
    let like = r#"{"ForAllValues:StringLike": {"aws:TagKeys": "team-*"}}"#;
    assert!(holds(like, &tag_keys(&["team-a", "team-b"])));
    assert!(!holds(like, &tag_keys(&["team-a", "env"])));
    let not_any = r#"{"ForAnyValue:StringNotEquals": {"aws:TagKeys": "env"}}"#;
    assert!(holds(not_any, &tag_keys(&["env", "team"])));
    assert!(!holds(not_any, &tag_keys(&["env"])));
    assert!(!holds(not_any, &Context::new()));
    let not_all = r#"{"ForAllValues:StringNotEquals": {"aws:TagKeys": "env"}}"#;
    assert!(holds(not_all, &tag_keys(&["team", "owner"])));
    assert!(!holds(not_all, &tag_keys(&["env", "team"])));
    let any_if_exists = r#"{"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": "env"}}"#;
    assert!(holds(any_if_exists, &Context::new()));
}

#[test]
fn unqualified_operators_on_a_multi_valued_key() {
    // Positive: some value matches. Negated: no value matches.
    let keys = tag_keys(&["env", "team"]);
    assert!(holds(r#"{"StringEquals": {"aws:TagKeys": "team"}}"#, &keys));
    assert!(!holds(
        r#"{"StringNotEquals": {"aws:TagKeys": "team"}}"#,
        &keys
    ));
    assert!(holds(
        r#"{"StringNotEquals": {"aws:TagKeys": "owner"}}"#,
        &keys
    ));
}

#[test]
fn operator_names_ignore_case() {
    let c = r#"{"forallvalues:stringequals": {"aws:TagKeys": "env"}}"#;
    assert!(holds(c, &tag_keys(&["env"])));
    assert!(!holds(c, &tag_keys(&["team"])));
}

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
