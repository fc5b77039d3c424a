//! STS on the ECS endpoint (query protocol): GetCallerIdentity, and AssumeRole, which hands
//! out temporary credentials for a role whose trust policy names the caller.

pub mod task_credentials;

use crate::auth::session::Session;
use crate::auth::Principal;
use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::protocol::query::{timestamp, QueryRequest, Xml};
use berth_core::iam::{Decision, Policy, Request};

/// XML namespace of STS answers.
pub const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// Runs STS action `request.action`.
pub async fn dispatch(ctx: Ctx, request: QueryRequest) -> Result<Option<Xml>, ApiError> {
    match request.action.as_str() {
        // Needs no permission, as in AWS.
        "GetCallerIdentity" => Ok(Some(caller_identity(&ctx))),
        "AssumeRole" => assume_role(&ctx, &request),
        other => Err(ApiError::new(
            "InvalidAction",
            format!("The action {other} is not valid for this web service."),
        )),
    }
}

fn caller_identity(ctx: &Ctx) -> Xml {
    let account = &ctx.arns.account_id;
    let mut xml = Xml::new();
    xml.field("UserId", &ctx.caller.user_id(account))
        .field("Account", account)
        .field("Arn", &ctx.caller.arn);
    xml
}

fn access_denied(caller: &Principal, action: &str, resource: &str) -> ApiError {
    ApiError::new(
        "AccessDenied",
        format!(
            "User: {} is not authorized to perform: {action} on resource: {resource}",
            caller.arn
        ),
    )
}

/// Whether an Allow statement of trust policy `document` names `arn` itself as an AWS
/// principal.
fn names_principal(document: &str, arn: &str) -> bool {
    let Ok(document) = serde_json::from_str::<serde_json::Value>(document) else {
        return false;
    };
    let statements = match &document["Statement"] {
        serde_json::Value::Array(items) => items.clone(),
        single => vec![single.clone()],
    };
    statements.iter().any(|statement| {
        let names = |value: &serde_json::Value| match value {
            serde_json::Value::String(s) => s == arn,
            serde_json::Value::Array(items) => items.iter().any(|i| i.as_str() == Some(arn)),
            _ => false,
        };
        statement["Effect"] == "Allow" && names(&statement["Principal"]["AWS"])
    })
}

fn assume_role(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let role_arn = request.required("RoleArn")?;
    let session_name = request.required("RoleSessionName")?;
    let valid_session = (2..=64).contains(&session_name.len())
        && session_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if !valid_session {
        return Err(ApiError::new(
            "ValidationError",
            format!("1 validation error detected: Value '{session_name}' at 'roleSessionName' failed to satisfy constraint: Member must have length between 2 and 64 and match [\\w+=,.@-]*"),
        ));
    }
    let prefix = format!("arn:aws:iam::{}:role/", ctx.arns.account_id);
    let role_name = role_arn
        .strip_prefix(&prefix)
        .map(|rest| rest.rsplit('/').next().unwrap_or(rest))
        .ok_or_else(|| access_denied(&ctx.caller, "sts:AssumeRole", role_arn))?;
    let role = crate::iam::role(ctx, role_name)
        .ok()
        .filter(|r| r.arn == role_arn)
        .ok_or_else(|| access_denied(&ctx.caller, "sts:AssumeRole", role_arn))?;
    // Trust first, so a caller the role does not trust learns nothing more of it. The role's
    // trust policy must allow the caller (with the request's `sts:ExternalId` and
    // `sts:RoleSessionName`), and the caller's own policies must not deny sts:AssumeRole. As
    // within one AWS account, a trust policy that names the caller's own ARN is enough; one
    // that trusts the whole account also needs an Allow in the caller's own policies.
    let trust = Policy::parse(&role.assume_role_policy_document)
        .map_err(|e| ApiError::server(format!("stored trust policy of {}: {e}", role.arn)))?;
    let mut context = crate::authz::principal_context(ctx);
    context.insert("sts:RoleSessionName", session_name);
    if let Some(external_id) = request.get("ExternalId") {
        context.insert("sts:ExternalId", external_id);
    }
    let asked = Request {
        principal_arn: &ctx.caller.arn,
        action: "sts:AssumeRole",
        resource: &role.arn,
        context: &context,
    };
    if berth_core::iam::evaluate(&[&trust], &asked) != Decision::Allow {
        return Err(access_denied(&ctx.caller, "sts:AssumeRole", &role.arn));
    }
    let own = crate::authz::decide(ctx, "sts:AssumeRole", &role.arn, &Vec::new())?;
    let named = names_principal(&role.assume_role_policy_document, &ctx.caller.arn);
    match own {
        Decision::Allow => {}
        Decision::ImplicitDeny if named => {}
        _ => return Err(access_denied(&ctx.caller, "sts:AssumeRole", &role.arn)),
    }
    // A session policy narrows what the session may do; ignoring one would grant more than
    // the caller asked for, so it is refused until it is supported.
    if request.get("Policy").is_some() || !request.structures("PolicyArns").is_empty() {
        return Err(ApiError::new(
            "ValidationError",
            "Berth does not support session policies (Policy, PolicyArns) yet: assume the role without them, or give the role a narrower policy.",
        ));
    }
    // Session tags would become principal tags that policies trust; until they are
    // supported (with sts:TagSession), they are refused rather than ignored.
    // MFA and source identity would have to be checked or recorded; they are refused until
    // they are.
    let unsupported = ["SerialNumber", "TokenCode", "SourceIdentity"]
        .into_iter()
        .find(|name| request.get(name).is_some())
        .or_else(|| {
            request
                .structures("ProvidedContexts")
                .first()
                .map(|_| "ProvidedContexts")
        });
    if let Some(name) = unsupported {
        return Err(ApiError::new(
            "ValidationError",
            format!("Berth does not support {name} in AssumeRole yet: assume the role without it."),
        ));
    }
    let tagged = !request.structures("Tags").is_empty()
        || request.get("TransitiveTagKeys.member.1").is_some();
    if tagged {
        return Err(ApiError::new(
            "ValidationError",
            "Berth does not support session tags (Tags, TransitiveTagKeys) yet: assume the role without them.",
        ));
    }
    let duration = request.integer("DurationSeconds")?.unwrap_or(3600);
    if !(900..=role.max_session_duration).contains(&duration) {
        return Err(ApiError::new(
            "ValidationError",
            format!(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role, or is below 900: {duration} (allowed 900 to {}).",
                role.max_session_duration
            ),
        ));
    }
    let now = ctx.now().floor() as u64;
    let session = Session {
        access_key_id: crate::auth::keys::new_id("ASIA")
            .map_err(|e| ApiError::server(format!("making an access key id: {e}")))?,
        role_name: role.role_name.clone(),
        role_id: role.role_id.clone(),
        session_name: session_name.to_string(),
        expires: now + duration as u64,
    };
    let token = session.token(&ctx.keys);
    let secret = ctx.keys.secret_of(&session.access_key_id);
    let assumed_arn = format!(
        "arn:aws:sts::{}:assumed-role/{}/{session_name}",
        ctx.arns.account_id, role.role_name
    );
    let mut xml = Xml::new();
    xml.nest("Credentials", |xml| {
        xml.field("AccessKeyId", &session.access_key_id)
            .field("SecretAccessKey", &secret)
            .field("SessionToken", &token)
            .field("Expiration", &timestamp(session.expires as f64));
    })
    .nest("AssumedRoleUser", |xml| {
        xml.field("AssumedRoleId", &format!("{}:{session_name}", role.role_id))
            .field("Arn", &assumed_arn);
    });
    Ok(Some(xml))
}
