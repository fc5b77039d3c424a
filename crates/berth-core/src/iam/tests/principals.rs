//! Principals: trust policies and who they name.

use super::*;

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
fn a_service_principal_matches_only_that_service_calling_as_itself() {
    let p = trust(r#"{"Service": "ecs-tasks.amazonaws.com"}"#);
    assert!(!may_assume(&p, ALICE));
    assert!(may_assume(&p, "ecs-tasks.amazonaws.com"));
    assert!(!may_assume(&p, "lambda.amazonaws.com"));
    let federated = trust(r#"{"Federated": "cognito-identity.amazonaws.com"}"#);
    assert!(!may_assume(&federated, "cognito-identity.amazonaws.com"));
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
