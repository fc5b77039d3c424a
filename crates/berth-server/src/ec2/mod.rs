//! The security-group part of the Amazon EC2 API, served on the ECS endpoint so `aws ec2
//! ...-security-group...` and boto3's `ec2` client work unchanged; the groups it keeps are
//! the ones awsvpc tasks are filtered by (see `berth_core::security_group`). One file per
//! resource: [`security_groups`] (create, describe, delete), [`permissions`] (ingress rules:
//! authorize, revoke, and the `IpPermissions` both read and every answer shows), [`tags`].
//!
//! EC2 speaks its own protocol (botocore's `ec2`): the request is a form like the query
//! protocol's, but lists are `Name.N` (no `member`) and names come from the model's
//! `locationName`, capitalised; the answer is `<ActionResponse xmlns=...><requestId/>` with
//! the output members directly inside (lower camel case, lists of `<item>`), and an error is
//! `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`.

pub mod permissions;
pub mod security_groups;
pub mod tags;
#[cfg(test)]
mod tests;

use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::protocol::query::{escape, Xml};
use axum::http::StatusCode;
use std::collections::BTreeMap;

/// XML namespace of EC2 answers.
pub const NAMESPACE: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// The actions served here.
const ACTIONS: &[&str] = &[
    "CreateSecurityGroup",
    "DescribeSecurityGroups",
    "DeleteSecurityGroup",
    "AuthorizeSecurityGroupIngress",
    "RevokeSecurityGroupIngress",
    "CreateTags",
    "DeleteTags",
];

/// An EC2 request: its action and its form parameters (`GroupId.1`, `IpPermissions.1.IpRanges.1.CidrIp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ec2Request {
    pub action: String,
    pub params: Fields,
}

/// Parameters of a request, or the fields of one structure of it with its prefix taken off.
pub type Fields = BTreeMap<String, String>;

impl Ec2Request {
    /// Reads a form body; without `Action` it is no EC2 request.
    pub fn parse(body: &[u8]) -> Result<Ec2Request, ApiError> {
        let request = crate::protocol::query::QueryRequest::parse(body)?;
        Ok(Ec2Request {
            action: request.action.clone(),
            params: request.into_params(),
        })
    }

    /// A parameter, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Runs EC2 action `action` of the form `body`; the output members of its answer, if any.
/// Each handler authorises `ec2:<Action>` on the groups it acts on.
pub async fn dispatch(ctx: Ctx, body: &[u8]) -> Result<Option<Xml>, ApiError> {
    let r = &Ec2Request::parse(body)?;
    let c = &ctx;
    match r.action.as_str() {
        "CreateSecurityGroup" => security_groups::create(c, r).await,
        "DescribeSecurityGroups" => security_groups::describe(c, r),
        "DeleteSecurityGroup" => security_groups::delete(c, r).await,
        "AuthorizeSecurityGroupIngress" => permissions::authorize_ingress(c, r).await,
        "RevokeSecurityGroupIngress" => permissions::revoke_ingress(c, r).await,
        "CreateTags" => tags::create(c, r).await,
        "DeleteTags" => tags::delete(c, r).await,
        other => Err(ApiError::new(
            "InvalidAction",
            format!(
                "The action {other} is not valid for this web service: Berth serves these EC2 actions only: {}.",
                ACTIONS.join(", ")
            ),
        )),
    }
}

/// The answer to `action`: its output members directly under the root, after `requestId`.
pub fn response(action: &str, output: Option<Xml>, request_id: &str) -> String {
    let output = output.map(Xml::into_string).unwrap_or_default();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{NAMESPACE}\">\
         <requestId>{}</requestId>{output}</{action}Response>",
        escape(request_id)
    )
}

/// An error answer, with the HTTP status EC2 gives it.
pub fn error_response(error: &ApiError, request_id: &str) -> (StatusCode, String) {
    let status = match error.name {
        "DryRunOperation" => StatusCode::PRECONDITION_FAILED,
        "UnauthorizedOperation" => StatusCode::FORBIDDEN,
        _ => error.status(),
    };
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code>\
         <Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
        escape(code_of(error.name)),
        escape(&error.message),
        escape(request_id)
    );
    (status, xml)
}

/// EC2's code for an error raised before or around the handlers (authentication, faults).
fn code_of(name: &str) -> &str {
    match name {
        "ServerException" => "InternalError",
        "UnrecognizedClientException" => "AuthFailure",
        other => crate::protocol::query::query_code(other),
    }
}

/// Checks `ec2:<action>` on `resource` for the caller, or `UnauthorizedOperation`.
fn authorize(ctx: &Ctx, action: &str, resource: &str) -> Result<(), ApiError> {
    let action = format!("ec2:{action}");
    crate::authz::authorize_as(ctx, &action, resource, &Vec::new(), "UnauthorizedOperation")
}

/// `DryRunOperation` when the request asks for a dry run: checked after authorisation and
/// validation, as EC2 does, so a dry run tells whether the call would have succeeded.
fn dry_run(request: &Ec2Request) -> Result<(), ApiError> {
    if boolean(request.get("DryRun"), "DryRun")? == Some(true) {
        return Err(ApiError::new(
            "DryRunOperation",
            "Request would have succeeded, but DryRun flag is set.",
        ));
    }
    Ok(())
}

/// EC2's `InvalidParameterValue`.
fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new("InvalidParameterValue", message)
}

/// EC2's `MissingParameter` for parameter `name`.
fn missing(name: &str) -> ApiError {
    ApiError::new(
        "MissingParameter",
        format!("The request must contain the parameter {name}"),
    )
}

/// EC2's `InvalidParameterCombination`.
fn combination(message: impl Into<String>) -> ApiError {
    ApiError::new("InvalidParameterCombination", message)
}

/// A boolean parameter (`true` or `false`).
fn boolean(value: Option<&str>, name: &str) -> Result<Option<bool>, ApiError> {
    match value {
        None => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(v) => Err(invalid(format!(
            "Invalid value '{v}' for {name}: use true or false."
        ))),
    }
}

/// An integer parameter.
fn integer(value: Option<&str>, name: &str) -> Result<Option<i64>, ApiError> {
    value
        .map(|v| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| invalid(format!("Invalid value '{v}' for {name}: not an integer.")))
        })
        .transpose()
}

/// The strings of list `name` of `fields` (`name.N`), in N order.
fn strings(fields: &Fields, name: &str) -> Vec<String> {
    let prefix = format!("{name}.");
    let mut items: BTreeMap<u32, String> = BTreeMap::new();
    for (key, value) in fields.range(prefix.clone()..) {
        let Some(rest) = key.strip_prefix(&prefix) else {
            break;
        };
        if let Ok(index) = rest.parse::<u32>() {
            items.insert(index, value.clone());
        }
    }
    items.into_values().collect()
}

/// The structures of list `name` of `fields` (`name.N.Field...`), in N order, each as its
/// fields with `name.N.` taken off.
fn structures(fields: &Fields, name: &str) -> Vec<Fields> {
    crate::protocol::query::indexed_structures(fields, &format!("{name}."))
}

/// `<name><item>...</item>...</name>`, one item per element of `items`.
fn items<T>(xml: &mut Xml, name: &str, items: &[T], mut item: impl FnMut(&mut Xml, &T)) {
    xml.nest(name, |xml| {
        for each in items {
            xml.nest("item", |xml| item(xml, each));
        }
    });
}

/// `n` random lowercase hexadecimal digits.
fn random_hex(n: usize) -> Result<String, ApiError> {
    let mut bytes = vec![0u8; n.div_ceil(2)];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::server(format!("making an EC2 id: {e}")))?;
    let mut hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    hex.truncate(n);
    Ok(hex)
}

/// `arn:aws:ec2:{region}:{account}:{resource}` of this server.
fn arn(ctx: &Ctx, resource: &str) -> String {
    format!(
        "arn:aws:ec2:{}:{}:{resource}",
        ctx.arns.region, ctx.arns.account_id
    )
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn errors_are_ec2_xml_with_ec2_statuses() {
        let error = ApiError::new(
            "InvalidGroup.NotFound",
            "The security group 'a<b' does not exist",
        );
        let (status, xml) = error_response(&error, "r1");
        assert_eq!(status, axum::http::StatusCode::BAD_REQUEST);
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>InvalidGroup.NotFound</Code>\
             <Message>The security group &apos;a&lt;b&apos; does not exist</Message></Error></Errors><RequestID>r1</RequestID></Response>"
        );
        let (status, xml) = error_response(&ApiError::server("boom"), "r2");
        assert_eq!(status, axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        assert!(xml.contains("<Code>InternalError</Code>"), "{xml}");
        let (status, _) = error_response(&ApiError::new("DryRunOperation", "x"), "r3");
        assert_eq!(status, axum::http::StatusCode::PRECONDITION_FAILED);
    }
}
