//! Console sign-in: an access key id and its secret make a console session, a cookie holding a
//! token the server MACs (like STS session tokens, nothing is stored). Every request re-checks
//! the key behind it, so a key made inactive or deleted ends its console sessions at once.
//! Forms carry a per-session CSRF token derived from the session token, and POSTs with a
//! foreign `Origin` are refused; the cookie is also `SameSite=Strict` and `HttpOnly`.

use super::html::{page, respond, Frame, Html};
use crate::app::App;
use crate::auth::{principal_of_access_key, Principal};
use crate::dispatch::Ctx;
use crate::http::cookies::cookie;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use base64::Engine as _;
use serde::Deserialize;
use std::sync::Arc;

/// The cookie's name.
pub const COOKIE: &str = "berth_console";
/// How long a console session lasts.
pub const SESSION_SECONDS: u64 = 12 * 3600;
const CONTEXT: &[u8] = b"berth console session v1\0";
const CSRF_CONTEXT: &[u8] = b"berth console csrf v1\0";

/// What a console session token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// The long-term access key the user signed in with.
    pub access_key_id: String,
    /// Unix seconds after which the session is refused.
    pub expires: u64,
    /// Random, so that two sign-ins never share a token (or a CSRF token).
    pub nonce: String,
}

impl ConsoleSession {
    /// The token of this session: its fields and the server's MAC over them.
    pub fn token(&self, keys: &crate::auth::KeyRing) -> String {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = format!("{}\n{}\n{}", self.access_key_id, self.expires, self.nonce);
        let body = engine.encode(payload.as_bytes());
        let mac = keys.mac(&[CONTEXT, body.as_bytes()].concat());
        format!("{body}.{}", engine.encode(mac))
    }

    /// The session a token carries if the server made it and it has not expired at `now`.
    pub fn from_token(
        token: &str,
        keys: &crate::auth::KeyRing,
        now: u64,
    ) -> Option<ConsoleSession> {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (body, mac) = token.split_once('.')?;
        let expected = engine.encode(keys.mac(&[CONTEXT, body.as_bytes()].concat()));
        if !berth_core::sigv4::constant_time_eq(expected.as_bytes(), mac.as_bytes()) {
            return None;
        }
        let payload = String::from_utf8(engine.decode(body).ok()?).ok()?;
        let mut fields = payload.splitn(3, '\n');
        let session = ConsoleSession {
            access_key_id: fields.next()?.to_string(),
            expires: fields.next()?.parse().ok()?,
            nonce: fields.next()?.to_string(),
        };
        (session.expires > now).then_some(session)
    }
}

/// The CSRF token of the session whose token is `session_token`.
pub fn csrf_token(keys: &crate::auth::KeyRing, session_token: &str) -> String {
    let mac = keys.mac(&[CSRF_CONTEXT, session_token.as_bytes()].concat());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac)
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The signed-in user of a console request: the context to make API calls in as them, and
/// their CSRF token for the forms on the page.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub ctx: Ctx,
    pub csrf: String,
}

impl Viewer {
    /// The principal's ARN, for the page header.
    pub fn arn(&self) -> &str {
        &self.ctx.caller.arn
    }

    /// A whole page for this viewer.
    pub fn page(&self, title: &str, body: &str) -> Response {
        let frame = Frame {
            title,
            viewer: Some((self.arn(), &self.csrf)),
        };
        respond(StatusCode::OK, page(frame, body))
    }

    /// Refuses a POST of this viewer unless its CSRF token matches and its `Origin`, when
    /// sent, is this server.
    pub fn check_post(&self, headers: &HeaderMap, csrf: &str) -> Result<(), Refused> {
        same_origin(headers)?;
        if berth_core::sigv4::constant_time_eq(csrf.as_bytes(), self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(Refused(
                "The form's CSRF token is missing or wrong: reload the page and try again.",
            ))
        }
    }
}

/// A refused POST: a 403 with a page saying why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused(pub &'static str);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        refused(self.0)
    }
}

fn refused(why: &str) -> Response {
    let mut body = Html::new();
    body.error("Forbidden", why)
        .raw("<p><a href=\"/console/clusters\">Back to the console</a></p>");
    let frame = Frame {
        title: "Request refused",
        viewer: None,
    };
    respond(StatusCode::FORBIDDEN, page(frame, &body.into_string()))
}

/// Refuses a request whose `Origin` header names another site than the `Host` it was sent to.
fn same_origin(headers: &HeaderMap) -> Result<(), Refused> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin.to_str().ok().and_then(|o| {
        o.strip_prefix("http://")
            .or_else(|| o.strip_prefix("https://"))
    });
    match (origin_host, host) {
        (Some(o), Some(h)) if o.eq_ignore_ascii_case(h) => Ok(()),
        _ => Err(Refused(
            "The request came from another site (its Origin is not this server's).",
        )),
    }
}

fn over_tls(app: &App) -> bool {
    !matches!(app.config.tls, crate::tls::Tls::Off)
}

impl FromRequestParts<Arc<App>> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Viewer, Response> {
        let to_sign_in = || Redirect::to("/console/sign-in").into_response();
        let token = cookie(&parts.headers, COOKIE).ok_or_else(to_sign_in)?;
        let session =
            ConsoleSession::from_token(token, &app.keys, unix_now()).ok_or_else(to_sign_in)?;
        let principal: Principal = principal_of_access_key(app, &session.access_key_id)
            .ok()
            .flatten()
            .ok_or_else(to_sign_in)?;
        let principal = Principal {
            secure_transport: over_tls(app),
            host: parts
                .headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            ..principal
        };
        Ok(Viewer {
            csrf: csrf_token(&app.keys, token),
            ctx: Ctx {
                app: Arc::clone(app),
                caller: principal,
            },
        })
    }
}

const SIGN_IN_FORM: &str = concat!(
    r#"<form class="signin" method="post" action="/console/sign-in">"#,
    r#"<label>Access key ID "#,
    r#"<input name="access_key_id" autocomplete="username" required></label>"#,
    r#"<label>Secret access key "#,
    r#"<input name="secret_access_key" type="password" autocomplete="current-password" required>"#,
    r#"</label><button type="submit">Sign in</button></form>"#,
    r#"<p class="hint">The root user's key is in the server's <code>DATA_DIR/credentials</code> "#,
    r#"(profile <code>berth</code>); IAM users sign in with their own access keys.</p>"#,
);

fn sign_in_page(status: StatusCode, error: Option<&str>) -> Response {
    let mut body = Html::new();
    if let Some(error) = error {
        body.error("Sign-in refused", error);
    }
    body.raw(SIGN_IN_FORM);
    let frame = Frame {
        title: "Sign in",
        viewer: None,
    };
    respond(status, page(frame, &body.into_string()))
}

/// `GET /console/sign-in`: the form.
pub async fn sign_in_form() -> Response {
    sign_in_page(StatusCode::OK, None)
}

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    access_key_id: String,
    #[serde(default)]
    secret_access_key: String,
}

/// `POST /console/sign-in`: checks the key and its secret; a session cookie on success.
pub async fn sign_in(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    if let Err(refusal) = same_origin(&headers) {
        return refusal.into_response();
    }
    let id = form.access_key_id.trim();
    let wrong = "The access key ID or secret access key is wrong, or the key is inactive.";
    let principal = match principal_of_access_key(&app, id) {
        Ok(Some(principal)) => principal,
        Ok(None) => return sign_in_page(StatusCode::UNAUTHORIZED, Some(wrong)),
        Err(e) => return sign_in_page(e.status(), Some(&e.to_string())),
    };
    let secret = app.keys.secret_of(&principal.access_key_id);
    if !berth_core::sigv4::constant_time_eq(
        secret.as_bytes(),
        form.secret_access_key.trim().as_bytes(),
    ) {
        return sign_in_page(StatusCode::UNAUTHORIZED, Some(wrong));
    }
    let nonce = match crate::auth::keys::random_token() {
        Ok(nonce) => nonce,
        Err(e) => {
            return sign_in_page(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(&format!("no randomness for a session: {e}")),
            )
        }
    };
    let session = ConsoleSession {
        access_key_id: principal.access_key_id,
        expires: unix_now() + SESSION_SECONDS,
        nonce,
    };
    let secure = if over_tls(&app) { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={}; Path=/console; Max-Age={SESSION_SECONDS}; HttpOnly; SameSite=Strict{secure}",
        session.token(&app.keys)
    );
    set_cookie(Redirect::to("/console/clusters").into_response(), &cookie)
}

fn set_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// A form carrying only the CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// `POST /console/sign-out`: forgets the cookie.
pub async fn sign_out(viewer: Viewer, headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    if let Err(refusal) = viewer.check_post(&headers, &form.csrf) {
        return refusal.into_response();
    }
    let cookie = format!("{COOKIE}=; Path=/console; Max-Age=0; HttpOnly; SameSite=Strict");
    set_cookie(Redirect::to("/console/sign-in").into_response(), &cookie)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::KeyRing;

    fn session(expires: u64) -> ConsoleSession {
        ConsoleSession {
            access_key_id: "AKIAEXAMPLE".into(),
            expires,
            nonce: "n1".into(),
        }
    }

    #[test]
    fn a_session_token_round_trips_until_it_expires() {
        let keys = KeyRing::open(None).expect("keys");
        let token = session(1000).token(&keys);
        assert_eq!(
            ConsoleSession::from_token(&token, &keys, 999),
            Some(session(1000))
        );
        assert_eq!(ConsoleSession::from_token(&token, &keys, 1000), None);
    }

    #[test]
    fn forged_or_foreign_tokens_are_refused() {
        let keys = KeyRing::open(None).expect("keys");
        let other = KeyRing::open(None).expect("other keys");
        let token = session(1000).token(&keys);
        assert_eq!(ConsoleSession::from_token(&token, &other, 0), None);
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (_, mac) = token.split_once('.').expect("dot");
        let forged = format!("{}.{mac}", engine.encode("AKIAOTHER\n9999\nn1"));
        assert_eq!(ConsoleSession::from_token(&forged, &keys, 0), None);
        assert_eq!(ConsoleSession::from_token("garbage", &keys, 0), None);
        assert_eq!(ConsoleSession::from_token("", &keys, 0), None);
    }

    #[test]
    fn csrf_tokens_differ_per_session() {
        let keys = KeyRing::open(None).expect("keys");
        let a = session(1000).token(&keys);
        let mut other = session(1000);
        other.nonce = "n2".into();
        let b = other.token(&keys);
        assert_ne!(csrf_token(&keys, &a), csrf_token(&keys, &b));
        assert_eq!(csrf_token(&keys, &a), csrf_token(&keys, &a));
    }

    #[test]
    fn a_foreign_origin_is_refused_and_the_own_one_passes() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&headers).is_ok());
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&headers).is_ok());
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(same_origin(&headers).is_err());
        headers.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(same_origin(&headers).is_err());
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; berth_console=tok.en; b=2"),
        );
        assert_eq!(cookie(&headers, COOKIE), Some("tok.en"));
        assert_eq!(cookie(&headers, "c"), None);
    }
}
