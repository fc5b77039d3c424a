//! The IAM policy language as AWS documents it: effects, actions, resources, principals, every
//! condition operator, policy variables, the evaluation order, and IAM's refusals of malformed
//! documents.

use super::*;

mod conditions;
mod documents;
mod evaluation;
mod principals;
mod variables;

pub(super) const ALICE: &str = "arn:aws:iam::000000000000:user/alice";
pub(super) const CLUSTER_DEV: &str = "arn:aws:ecs:us-east-1:000000000000:cluster/dev";

pub(super) fn policy(json: &str) -> Policy {
    Policy::parse(json).unwrap_or_else(|e| panic!("{json} should parse: {e}"))
}

/// A 2012-10-17 document holding the given statements (JSON objects, comma-separated).
pub(super) fn statements(statements: &str) -> Policy {
    policy(&format!(
        r#"{{"Version": "2012-10-17", "Statement": [{statements}]}}"#
    ))
}

pub(super) fn refusal(json: &str) -> String {
    match Policy::parse(json) {
        Ok(p) => panic!("{json} should be refused, parsed as {p:?}"),
        Err(e) => e.message,
    }
}

pub(super) fn decide(policies: &[&Policy], action: &str, resource: &str) -> Decision {
    decide_as(policies, ALICE, action, resource, &Context::new())
}

pub(super) fn decide_as(
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
pub(super) fn holds(condition: &str, context: &Context) -> bool {
    let allow = statements(&format!(
        r#"{{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {condition}}}"#
    ));
    decide_as(&[&allow], ALICE, "ecs:ListClusters", "*", context) == Decision::Allow
}

pub(super) fn ctx(pairs: &[(&str, &str)]) -> Context {
    let mut context = Context::new();
    for (key, value) in pairs {
        context.insert(key, *value);
    }
    context
}
