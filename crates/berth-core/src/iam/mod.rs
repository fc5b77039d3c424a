//! IAM JSON policies: parsing and validating a policy document ([`Policy::parse`]) and deciding
//! a request against a set of policies ([`evaluate`]) as AWS documents the policy language.
//! Pure: the caller gathers the policies that apply (identity policies, a role's trust policy)
//! and the request's condition keys ([`Context`]).
//!
//! What is covered:
//! - `Version` `2012-10-17` or `2008-10-17` (absent reads as `2008-10-17`); policy variables
//!   (`${aws:username}`, `${aws:PrincipalTag/team, 'default'}`, the `${*}`, `${?}` and `${$}`
//!   escapes) only in `2012-10-17` documents, in `Resource`, `NotResource` and condition values.
//! - `Effect`, `Action`/`NotAction` (case-insensitive, `*` and `?`), `Resource`/`NotResource`
//!   (case-sensitive, `*` and `?` over the whole ARN), `Principal`/`NotPrincipal` (`"*"`,
//!   `AWS` ARNs, account roots and bare account ids; `Service` names match a service calling
//!   as its own name, as Berth's agents ask for task role credentials as
//!   `ecs-tasks.amazonaws.com`; `Federated` and `CanonicalUser` parse but match no caller).
//! - Every condition operator of the language (`String*`, `Numeric*`, `Date*`, `Bool`,
//!   `BinaryEquals`, `IpAddress`/`NotIpAddress`, `Arn*`, `Null`), the `...IfExists` suffix and
//!   the `ForAnyValue:`/`ForAllValues:` set qualifiers.
//!
//! Evaluation is AWS's for one account: an explicit `Deny` in any policy wins, else an `Allow`
//! in any, else the default (implicit) deny. Permission boundaries, SCPs and session policies
//! are the caller's to layer on top (each is one more [`evaluate`] whose `Allow` is required).

use std::collections::HashMap;

mod evaluate;
mod policy;

#[cfg(test)]
mod tests;

pub use evaluate::evaluate;

/// A parsed and validated IAM policy document: its version and its statements.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    version: Version,
    id: Option<String>,
    statements: Vec<policy::Statement>,
}

/// The policy language version a document declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `2012-10-17`: the current language, with policy variables.
    V2012_10_17,
    /// `2008-10-17`, also what a document without `Version` is read as: `${...}` is literal.
    V2008_10_17,
}

impl Policy {
    /// The language version the document declared (`2008-10-17` when it declared none).
    pub fn version(&self) -> Version {
        self.version
    }

    /// The document's optional `Id`.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// Whether any statement names a `Principal` or `NotPrincipal`, which identity policies
    /// must not and trust policies must.
    pub fn has_principal(&self) -> bool {
        self.statements.iter().any(|s| s.principal.is_some())
    }

    /// The checks IAM adds for an identity policy (`PutUserPolicy`, `CreatePolicy`, ...): no
    /// statement may name a principal.
    pub fn check_identity_policy(&self) -> Result<(), PolicyError> {
        if self.has_principal() {
            return Err(PolicyError::new(
                "Policy document should not specify a principal.",
            ));
        }
        Ok(())
    }

    /// The checks IAM adds for a role's trust policy (`CreateRole`,
    /// `UpdateAssumeRolePolicy`): every statement names a principal and none a resource.
    pub fn check_trust_policy(&self) -> Result<(), PolicyError> {
        for statement in &self.statements {
            if statement.principal.is_none() {
                return Err(PolicyError::new("Missing required field Principal"));
            }
            if let Some(resource) = &statement.resource {
                let field = if resource.negated {
                    "NotResource"
                } else {
                    "Resource"
                };
                return Err(PolicyError::new(format!("Has prohibited field {field}")));
            }
        }
        Ok(())
    }
}

/// Why a policy document was refused; the message reads like IAM's
/// `MalformedPolicyDocument` messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PolicyError {
    /// What is wrong with the document, for the `MalformedPolicyDocument` response.
    pub message: String,
}

impl PolicyError {
    pub(crate) fn new(message: impl Into<String>) -> PolicyError {
        PolicyError {
            message: message.into(),
        }
    }
}

/// Condition keys and their values for one request. Keys compare case-insensitively (they
/// are stored lowercased), values as given. A key may have several values (`aws:TagKeys`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    values: HashMap<String, Vec<String>>,
}

impl Context {
    /// An empty context: every condition key absent.
    pub fn new() -> Context {
        Context::default()
    }

    /// Adds one value to `key` (a second insert of the same key makes it multi-valued).
    pub fn insert(&mut self, key: &str, value: impl Into<String>) {
        self.values
            .entry(key.to_lowercase())
            .or_default()
            .push(value.into());
    }

    /// [`Context::insert`] for building a context in one expression.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Context {
        self.insert(key, value);
        self
    }

    /// The values of `key`, `None` when the request does not carry it.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.values.get(&key.to_lowercase()).map(Vec::as_slice)
    }
}

/// One request to authorise: who calls, what action, on what resource, with what context.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The calling principal's ARN (`arn:aws:iam::123456789012:user/alice`, `:root`, or
    /// `arn:aws:sts::123456789012:assumed-role/Role/session`).
    pub principal_arn: &'a str,
    /// Service-prefixed action, e.g. `ecs:RunTask`.
    pub action: &'a str,
    /// The resource ARN, or `*` for actions without a resource.
    pub resource: &'a str,
    /// The request's condition keys, also the source of policy variables.
    pub context: &'a Context,
}

/// The outcome of [`evaluate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Some statement allows the request and none denies it.
    Allow,
    /// A `Deny` statement matches the request: no `Allow` anywhere can override it.
    ExplicitDeny,
    /// No statement matches: denied by default.
    ImplicitDeny,
}
