//! AWS Signature Version 4, both ways: a client signs a request ([`sign`]), the server checks
//! one ([`Signed::parse`] then [`Signed::verify`]). Pure: the caller supplies the clock and
//! the secret of the access key the request names.
//!
//! A signature covers a *canonical request*: the method, the path, the sorted query, the
//! signed headers in lower case with trimmed values, their names, and the SHA-256 of the
//! payload. It is keyed by a key derived from the secret and the credential scope
//! `<yyyymmdd>/<region>/<service>/aws4_request`. A request carries its signature either in an
//! `Authorization` header or in the query (`X-Amz-Signature`, a presigned URL).

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

mod time;

pub use time::{amz_date, parse_amz_date};

/// The only algorithm SigV4 names.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far a request's time may be from the verifier's clock, either way (AWS's 15 minutes).
pub const MAX_SKEW_SECONDS: u64 = 15 * 60;
/// Longest validity a presigned request may claim (AWS's 7 days).
pub const MAX_EXPIRES_SECONDS: u64 = 7 * 24 * 3600;
/// SHA-256 of the empty payload.
pub const EMPTY_PAYLOAD_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// What signs: an access key and its secret, with a session token for temporary credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<hidden>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<hidden>"),
            )
            .finish()
    }
}

impl Credentials {
    /// The credentials of `profile` in the text of an AWS shared-credentials file
    /// (`[profile]` then `aws_access_key_id`, `aws_secret_access_key`, and optionally
    /// `aws_session_token`); `None` when the profile or one of its keys is missing.
    pub fn from_profile(text: &str, profile: &str) -> Option<Credentials> {
        let mut in_profile = false;
        let (mut id, mut secret, mut token) = (None, None, None);
        for line in text.lines().map(str::trim) {
            if line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                in_profile = name.trim() == profile;
            } else if let (true, Some((key, value))) = (in_profile, line.split_once('=')) {
                let value = Some(value.trim().to_string()).filter(|v| !v.is_empty());
                match key.trim() {
                    "aws_access_key_id" => id = value,
                    "aws_secret_access_key" => secret = value,
                    "aws_session_token" => token = value,
                    _ => {}
                }
            }
        }
        Some(Credentials {
            access_key_id: id?,
            secret_access_key: secret?,
            session_token: token,
        })
    }
}

/// An HTTP request as the signature sees it. `path` and `query` are as sent on the wire
/// (percent-encoded, query without `?`); header names in any case.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// How a path becomes its canonical form. Every AWS service but S3 normalises the path and
/// encodes it once more (the SDKs' default); S3 and AWS's published test suite use it as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathRules {
    pub normalize: bool,
    pub double_encode: bool,
}

impl PathRules {
    /// The rules of every service Berth serves (all but S3).
    pub const SERVICES: PathRules = PathRules {
        normalize: true,
        double_encode: true,
    };
}

/// Why a request's signature is not accepted, in AWS's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Neither an `Authorization` header nor a presigned query.
    Missing,
    /// A signature is there but not whole or not well formed (the message says what).
    Incomplete(String),
    /// The signature does not match the request, or its time is outside the allowed window.
    Invalid(String),
}

/// The signature a request carries, parsed and not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub access_key_id: String,
    /// `yyyymmdd` of the credential scope.
    pub scope_date: String,
    pub region: String,
    pub service: String,
    /// `X-Amz-Date` (or `Date`) as sent, and as Unix seconds.
    pub amz_date: String,
    pub time: u64,
    /// Lower-case names, in the order signed.
    pub signed_headers: Vec<String>,
    pub signature: String,
    pub session_token: Option<String>,
    /// Presigned: the seconds the signature stays valid (`X-Amz-Expires`).
    pub expires: Option<u64>,
}

impl Signed {
    /// Reads the signature from the `Authorization` header or, failing that, the query.
    pub fn parse(request: &RequestParts<'_>) -> Result<Signed, Refusal> {
        if let Some(authorization) = header(request.headers, "authorization") {
            return Signed::from_header(request, authorization);
        }
        let query = query_pairs(request.query);
        if query.iter().any(|(k, _)| k.starts_with("X-Amz-")) {
            return Signed::from_query(request, &query);
        }
        Err(Refusal::Missing)
    }

    fn from_header(request: &RequestParts<'_>, authorization: &str) -> Result<Signed, Refusal> {
        let incomplete = |what: &str| Refusal::Incomplete(what.to_string());
        let rest = authorization
            .strip_prefix(ALGORITHM)
            .filter(|rest| rest.starts_with(' '))
            .ok_or_else(|| {
                incomplete(&format!(
                    "Authorization header requires the '{ALGORITHM}' algorithm followed by \
                     Credential, SignedHeaders and Signature."
                ))
            })?;
        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let part = part.trim();
            if let Some((name, value)) = part.split_once('=') {
                match name.trim() {
                    "Credential" => credential = Some(value.trim()),
                    "SignedHeaders" => signed_headers = Some(value.trim()),
                    "Signature" => signature = Some(value.trim()),
                    _ => {}
                }
            }
        }
        let missing = |name: &str| {
            incomplete(&format!(
                "Authorization header requires '{name}' parameter. Authorization={authorization}"
            ))
        };
        let credential = credential.ok_or_else(|| missing("Credential"))?;
        let signed_headers = signed_headers.ok_or_else(|| missing("SignedHeaders"))?;
        let signature = signature.ok_or_else(|| missing("Signature"))?;
        let amz_date = header(request.headers, "x-amz-date")
            .or_else(|| header(request.headers, "date"))
            .ok_or_else(|| {
                incomplete(
                    "Authorization header requires existence of either a 'X-Amz-Date' or a \
                     'Date' header.",
                )
            })?;
        let session_token = header(request.headers, "x-amz-security-token").map(str::to_string);
        Signed::assemble(
            credential,
            signed_headers,
            signature,
            amz_date,
            session_token,
            None,
        )
    }

    fn from_query(
        _request: &RequestParts<'_>,
        query: &[(String, String)],
    ) -> Result<Signed, Refusal> {
        let get = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .ok_or_else(|| {
                    Refusal::Incomplete(format!(
                        "AWS query-string parameters must include '{name}'. Re-examine the \
                         query-string parameters."
                    ))
                })
        };
        let algorithm = get("X-Amz-Algorithm")?;
        if algorithm != ALGORITHM {
            return Err(Refusal::Incomplete(format!(
                "X-Amz-Algorithm must be '{ALGORITHM}', not '{algorithm}'."
            )));
        }
        let expires = get("X-Amz-Expires")?;
        let expires: u64 = expires
            .parse()
            .ok()
            .filter(|e| *e <= MAX_EXPIRES_SECONDS)
            .ok_or_else(|| {
                Refusal::Incomplete(format!(
                    "X-Amz-Expires must be a number of seconds from 0 to {MAX_EXPIRES_SECONDS}, \
                     not '{expires}'."
                ))
            })?;
        let session_token = query
            .iter()
            .find(|(k, _)| k == "X-Amz-Security-Token")
            .map(|(_, v)| v.clone());
        Signed::assemble(
            get("X-Amz-Credential")?,
            get("X-Amz-SignedHeaders")?,
            get("X-Amz-Signature")?,
            get("X-Amz-Date")?,
            session_token,
            Some(expires),
        )
    }

    fn assemble(
        credential: &str,
        signed_headers: &str,
        signature: &str,
        amz_date: &str,
        session_token: Option<String>,
        expires: Option<u64>,
    ) -> Result<Signed, Refusal> {
        let parts: Vec<&str> = credential.split('/').collect();
        let [access_key_id, scope_date, region, service, terminator] = parts[..] else {
            return Err(Refusal::Incomplete(format!(
                "Credential should be scoped to a valid region and service: \
                 '<access key>/<yyyymmdd>/<region>/<service>/aws4_request', not '{credential}'."
            )));
        };
        if access_key_id.is_empty() || terminator != "aws4_request" {
            return Err(Refusal::Incomplete(format!(
                "Credential should be scoped with a valid terminator: 'aws4_request', in \
                 '{credential}'."
            )));
        }
        let time = parse_amz_date(amz_date).ok_or_else(|| {
            Refusal::Incomplete(format!(
                "Date must be in ISO-8601 'basic format' (yyyyMMdd'T'HHmmss'Z'), got '{amz_date}'."
            ))
        })?;
        let signed_headers: Vec<String> = signed_headers
            .split(';')
            .map(str::to_ascii_lowercase)
            .collect();
        if signed_headers.iter().any(String::is_empty) {
            return Err(Refusal::Incomplete(
                "SignedHeaders must name at least 'host', separated by ';'.".into(),
            ));
        }
        if !signed_headers.iter().any(|h| h == "host") {
            return Err(Refusal::Incomplete(
                "'Host' must be a signed header.".into(),
            ));
        }
        if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Refusal::Incomplete(
                "Signature must be 64 hexadecimal characters.".into(),
            ));
        }
        Ok(Signed {
            access_key_id: access_key_id.to_string(),
            scope_date: scope_date.to_string(),
            region: region.to_string(),
            service: service.to_string(),
            amz_date: amz_date.to_string(),
            time,
            signed_headers,
            signature: signature.to_ascii_lowercase(),
            session_token,
            expires,
        })
    }

    /// The credential scope, `<date>/<region>/<service>/aws4_request`.
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.scope_date, self.region, self.service
        )
    }

    /// Checks the signature against `secret` (the secret of [`Signed::access_key_id`]) and the
    /// request's time against `now` (Unix seconds).
    pub fn verify(
        &self,
        request: &RequestParts<'_>,
        secret: &str,
        now: u64,
        rules: PathRules,
    ) -> Result<(), Refusal> {
        self.check_time(now)?;
        if !self.amz_date.starts_with(&self.scope_date) {
            return Err(Refusal::Invalid(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of \
                 date from HTTP: '{}' != '{}', from '{}'.",
                self.scope_date,
                self.amz_date.get(..8).unwrap_or(&self.amz_date),
                self.amz_date
            )));
        }
        let payload_hash = self.payload_hash(request)?;
        let canonical = canonical_request(request, &self.signed_headers, &payload_hash, rules)?;
        let to_sign = string_to_sign(&self.amz_date, &self.scope(), &canonical);
        let key = signing_key(secret, &self.scope_date, &self.region, &self.service);
        let expected = hex::encode(hmac(&key, to_sign.as_bytes()));
        if constant_time_eq(expected.as_bytes(), self.signature.as_bytes()) {
            Ok(())
        } else {
            Err(Refusal::Invalid(
                "The request signature we calculated does not match the signature you \
                 provided. Check your AWS Secret Access Key and signing method. Consult the \
                 service documentation for details."
                    .into(),
            ))
        }
    }

    fn check_time(&self, now: u64) -> Result<(), Refusal> {
        let stamp = |t: u64| amz_date(t);
        match self.expires {
            None => {
                if self.time + MAX_SKEW_SECONDS < now {
                    return Err(Refusal::Invalid(format!(
                        "Signature expired: {} is now earlier than {} ({} - 15 min.)",
                        self.amz_date,
                        stamp(now - MAX_SKEW_SECONDS),
                        stamp(now)
                    )));
                }
                if self.time > now + MAX_SKEW_SECONDS {
                    return Err(Refusal::Invalid(format!(
                        "Signature not yet current: {} is still later than {} ({} + 15 min.)",
                        self.amz_date,
                        stamp(now + MAX_SKEW_SECONDS),
                        stamp(now)
                    )));
                }
            }
            Some(expires) => {
                if self.time > now + MAX_SKEW_SECONDS {
                    return Err(Refusal::Invalid(format!(
                        "Request is not yet valid: it is dated {}.",
                        self.amz_date
                    )));
                }
                if self.time + expires < now {
                    return Err(Refusal::Invalid(format!(
                        "Request has expired: it was valid until {}.",
                        stamp(self.time + expires)
                    )));
                }
            }
        }
        Ok(())
    }

    /// The payload hash the signature covers: the body's SHA-256. A signed
    /// `x-amz-content-sha256` must state exactly that.
    fn payload_hash(&self, request: &RequestParts<'_>) -> Result<String, Refusal> {
        let actual = sha256_hex(request.body);
        if let Some(stated) = header(request.headers, "x-amz-content-sha256") {
            if !stated.eq_ignore_ascii_case(&actual) {
                return Err(Refusal::Invalid(
                    "The provided 'x-amz-content-sha256' header does not match what was \
                     computed."
                        .into(),
                ));
            }
        }
        Ok(actual)
    }
}

/// Signs `request` for `service` in `region` at `now`: returns the headers to add
/// (`x-amz-date`, `x-amz-security-token` when the credentials carry one, `authorization`).
/// The request's own headers must include `host`; every header given is signed.
pub fn sign(
    request: &RequestParts<'_>,
    credentials: &Credentials,
    region: &str,
    service: &str,
    now: u64,
) -> Vec<(&'static str, String)> {
    let date = amz_date(now);
    let scope_date = &date[..8];
    let mut added: Vec<(&'static str, String)> = vec![("x-amz-date", date.clone())];
    if let Some(token) = &credentials.session_token {
        added.push(("x-amz-security-token", token.clone()));
    }
    let mut headers: Vec<(&str, &str)> = request.headers.to_vec();
    headers.extend(added.iter().map(|(k, v)| (*k, v.as_str())));
    let mut names: Vec<String> = headers
        .iter()
        .map(|(k, _)| k.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    let with_added = RequestParts {
        headers: &headers,
        ..*request
    };
    let payload_hash = sha256_hex(request.body);
    // Only headers with names and values a canonical request can hold are given by callers;
    // a failure here is a caller's bug, answered by an unsigned request the server refuses.
    let canonical = canonical_request(&with_added, &names, &payload_hash, PathRules::SERVICES)
        .unwrap_or_default();
    let scope = format!("{scope_date}/{region}/{service}/aws4_request");
    let to_sign = string_to_sign(&date, &scope, &canonical);
    let key = signing_key(&credentials.secret_access_key, scope_date, region, service);
    let signature = hex::encode(hmac(&key, to_sign.as_bytes()));
    added.push((
        "authorization",
        format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
            credentials.access_key_id,
            names.join(";")
        ),
    ));
    added
}

/// The canonical request of `request` over `signed_headers` (lower case, as signed).
pub fn canonical_request(
    request: &RequestParts<'_>,
    signed_headers: &[String],
    payload_hash: &str,
    rules: PathRules,
) -> Result<String, Refusal> {
    let mut out = String::with_capacity(256);
    out.push_str(request.method);
    out.push('\n');
    out.push_str(&canonical_path(request.path, rules));
    out.push('\n');
    out.push_str(&canonical_query(request.query));
    out.push('\n');
    for name in signed_headers {
        let values: Vec<String> = request
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| trim_value(v))
            .collect();
        if values.is_empty() {
            return Err(Refusal::Incomplete(format!(
                "The signed header '{name}' is not in the request."
            )));
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    Ok(out)
}

/// The string to sign: algorithm, time, scope and the hash of the canonical request.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// The key a secret derives for one day, region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Whether two byte strings are equal, in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn header<'a>(headers: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// A header value with its ends trimmed and inner runs of spaces folded to one.
fn trim_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for word in value.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

fn canonical_path(path: &str, rules: PathRules) -> String {
    let path = if path.is_empty() { "/" } else { path };
    let path = if rules.normalize {
        normalize_path(path)
    } else {
        path.to_string()
    };
    if rules.double_encode {
        encode(&path, false)
    } else {
        encode(&decode(&path), false)
    }
}

/// Removes `.` and `..` segments and empty segments, keeping a trailing slash.
fn normalize_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::from("/");
    out.push_str(&segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        out.push('/');
    }
    out
}

/// The query's pairs, percent-decoded. A key without `=` has an empty value.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query_pairs(query)
        .into_iter()
        .filter(|(k, _)| k != "X-Amz-Signature")
        .map(|(k, v)| (encode(&k, true), encode(&v, true)))
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        let _ = write!(out, "{k}={v}");
    }
    out
}

/// Percent-encodes everything but unreserved characters (and `/` unless `slash` is set).
fn encode(text: &str, slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if !slash => out.push('/'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// Percent-decodes `text` (`+` stays `+`, as SigV4 reads queries).
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests;
