//! The SigV4 code proven on AWS's published test suite (`tests/data/aws-sigv4-test-suite`):
//! for every case, the canonical request and string to sign match AWS's, the header-signed
//! and the presigned request both verify with the case's secret at the case's time, and fail
//! with another secret, a changed body or a clock outside the window.

use super::*;
use std::path::{Path, PathBuf};

fn suite() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/aws-sigv4-test-suite")
}

/// One request of the suite, as text: `METHOD PATH HTTP/1.1`, headers, blank line, body.
struct RawRequest {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawRequest {
    fn read(path: &Path) -> RawRequest {
        let text = std::fs::read_to_string(path).expect("suite file");
        let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let first = lines.next().expect("request line");
        let (method, rest) = first.split_once(' ').expect("method");
        let target = rest.rsplit_once(" HTTP/").expect("version").0;
        // The suite writes paths unencoded (`/ሴ`, `/example space/`); on the wire they are
        // percent-encoded, which is what a server sees.
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                let last = headers.last_mut().expect("a header to continue");
                last.1.push('\n');
                last.1.push_str(line);
            } else {
                let (name, value) = line.split_once(':').expect("header");
                headers.push((name.to_string(), value.to_string()));
            }
        }
        RawRequest {
            method: method.to_string(),
            path: wire_path(path),
            query: query.to_string(),
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&RequestParts<'_>) -> T) -> T {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        f(&RequestParts {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &headers,
            body: &self.body,
        })
    }
}

/// A path as a client sends it: characters a URI path may not hold percent-encoded.
fn wire_path(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

struct Case {
    name: String,
    dir: PathBuf,
    secret: String,
    now: u64,
    rules: PathRules,
    /// The token was added after signing (a signer option some services use): the presigned
    /// form then cannot verify anywhere, so only its header form is checked.
    unsigned_token: bool,
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(suite()).expect("suite dir") {
        let dir = entry.expect("entry").path();
        let Ok(context) = std::fs::read_to_string(dir.join("context.json")) else {
            continue;
        };
        let context: serde_json::Value = serde_json::from_str(&context).expect("context");
        let stamp = context["timestamp"].as_str().expect("timestamp");
        let compact: String = stamp.chars().filter(|c| *c != '-' && *c != ':').collect();
        cases.push(Case {
            name: dir
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned(),
            secret: context["credentials"]["secret_access_key"]
                .as_str()
                .expect("secret")
                .to_string(),
            now: parse_amz_date(&compact).expect("suite timestamp"),
            rules: PathRules {
                normalize: context["normalize"].as_bool().unwrap_or(true),
                double_encode: false,
            },
            unsigned_token: context["omit_session_token"].as_bool().unwrap_or(false),
            dir,
        });
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(cases.len() >= 35, "only {} suite cases found", cases.len());
    cases
}

fn expected(case: &Case, file: &str) -> String {
    std::fs::read_to_string(case.dir.join(file)).expect("expected file")
}

#[test]
fn every_case_of_the_suite_canonicalises_and_verifies_in_both_forms() {
    for case in cases() {
        for form in ["header", "query"] {
            if form == "query" && case.unsigned_token {
                continue;
            }
            let request = RawRequest::read(&case.dir.join(format!("{form}-signed-request.txt")));
            request.with(|parts| {
                let signed = Signed::parse(parts)
                    .unwrap_or_else(|e| panic!("{} {form}: parse: {e:?}", case.name));
                assert_eq!(signed.expires.is_some(), form == "query", "{}", case.name);
                let payload = signed.payload_hash(parts).expect("payload hash");
                let canonical =
                    canonical_request(parts, &signed.signed_headers, &payload, case.rules)
                        .expect("canonical request");
                assert_eq!(
                    canonical,
                    expected(&case, &format!("{form}-canonical-request.txt")),
                    "{} {form}: canonical request",
                    case.name
                );
                assert_eq!(
                    string_to_sign(&signed.amz_date, &signed.scope(), &canonical),
                    expected(&case, &format!("{form}-string-to-sign.txt")),
                    "{} {form}: string to sign",
                    case.name
                );
                signed
                    .verify(parts, &case.secret, case.now, case.rules)
                    .unwrap_or_else(|e| panic!("{} {form}: verify: {e:?}", case.name));
                let wrong = format!("{}x", case.secret);
                assert!(
                    matches!(
                        signed.verify(parts, &wrong, case.now, case.rules),
                        Err(Refusal::Invalid(_))
                    ),
                    "{} {form}: another secret must not verify",
                    case.name
                );
                let late = case.now + MAX_SKEW_SECONDS + 3600 + 1;
                assert!(
                    matches!(
                        signed.verify(parts, &case.secret, late, case.rules),
                        Err(Refusal::Invalid(_))
                    ),
                    "{} {form}: a request outside its window must not verify",
                    case.name
                );
            });
            let mut tampered = request;
            tampered.body.extend_from_slice(b" ");
            tampered.with(|parts| {
                let signed = Signed::parse(parts).expect("parse");
                assert!(
                    signed
                        .verify(parts, &case.secret, case.now, case.rules)
                        .is_err(),
                    "{} {form}: a changed body must not verify",
                    case.name
                );
            });
        }
    }
}

#[test]
fn the_double_encoded_path_case_matches_aws() {
    // The one case without a context: services other than S3 encode the sent path again.
    let dir = suite().join("double-encode-path");
    let request = RawRequest::read(&dir.join("header-signed-request.txt"));
    let expected = std::fs::read_to_string(dir.join("header-canonical-request.txt")).expect("file");
    let canonical = request.with(|parts| {
        let names = vec!["host".to_string(), "x-amz-date".to_string()];
        canonical_request(parts, &names, EMPTY_PAYLOAD_SHA256, PathRules::SERVICES)
            .expect("canonical")
    });
    // The suite's file carries another date than its request; the rest must agree.
    let strip_date = |text: &str| {
        text.lines()
            .filter(|l| !l.starts_with("x-amz-date:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip_date(&canonical), strip_date(&expected));
}

#[test]
fn what_sign_writes_the_verifier_accepts_and_matches_the_suite() {
    let case = cases()
        .into_iter()
        .find(|c| c.name == "post-vanilla")
        .expect("case");
    let request = RawRequest::read(&case.dir.join("request.txt"));
    let credentials = Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: case.secret.clone(),
        session_token: None,
    };
    let added = request.with(|parts| sign(parts, &credentials, "us-east-1", "service", case.now));
    let mut signed = request;
    signed
        .headers
        .extend(added.iter().map(|(k, v)| (k.to_string(), v.clone())));
    signed.with(|parts| {
        let parsed = Signed::parse(parts).expect("parse");
        parsed
            .verify(parts, &case.secret, case.now, PathRules::SERVICES)
            .expect("verifies");
    });
    // With the suite's signed headers, the signature is the suite's.
    let authorization = &added.last().expect("authorization").1;
    let suite_signature = expected(&case, "header-signature.txt");
    assert!(
        authorization.ends_with(&format!("Signature={}", suite_signature.trim())),
        "{authorization}"
    );
}

#[test]
fn a_session_token_is_signed_and_travels_with_the_request() {
    let credentials = Credentials {
        access_key_id: "ASIAEXAMPLE".into(),
        secret_access_key: "secret".into(),
        session_token: Some("token/with+chars=".into()),
    };
    let headers = [
        ("host", "127.0.0.1:7700"),
        ("content-type", "application/json"),
    ];
    let parts = RequestParts {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body: b"{}",
    };
    let added = sign(&parts, &credentials, "us-east-1", "ecs", 1_800_000_000);
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    all.extend(added.iter().map(|(k, v)| (*k, v.as_str())));
    let parts = RequestParts {
        headers: &all,
        ..parts
    };
    let signed = Signed::parse(&parts).expect("parse");
    assert_eq!(signed.session_token.as_deref(), Some("token/with+chars="));
    assert!(signed
        .signed_headers
        .contains(&"x-amz-security-token".to_string()));
    signed
        .verify(&parts, "secret", 1_800_000_000 + 60, PathRules::SERVICES)
        .expect("verifies a minute later");
}

#[test]
fn malformed_signatures_are_incomplete_and_none_is_missing() {
    let parse = |authorization: Option<&str>, query: &str| {
        let mut headers = vec![("host", "h"), ("x-amz-date", "20150830T123600Z")];
        if let Some(a) = authorization {
            headers.push(("authorization", a));
        }
        Signed::parse(&RequestParts {
            method: "GET",
            path: "/",
            query,
            headers: &headers,
            body: b"",
        })
    };
    assert_eq!(parse(None, ""), Err(Refusal::Missing));
    assert_eq!(parse(None, "cluster=x"), Err(Refusal::Missing));
    let good = "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/ecs/aws4_request, \
                SignedHeaders=host;x-amz-date, Signature=";
    let sig = "a".repeat(64);
    assert!(parse(Some(&format!("{good}{sig}")), "").is_ok());
    for bad in [
        "Bearer abc".to_string(),
        "AWS4-HMAC-SHA256".to_string(),
        format!("AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/ecs/aws4_request, Signature={sig}"),
        format!("AWS4-HMAC-SHA256 Credential=AK/20150830/ecs/aws4_request, SignedHeaders=host, Signature={sig}"),
        format!("AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/ecs/aws4_request, SignedHeaders=x-amz-date, Signature={sig}"),
        format!("{good}xyz"),
    ] {
        assert!(
            matches!(parse(Some(&bad), ""), Err(Refusal::Incomplete(_))),
            "{bad}"
        );
    }
    assert!(matches!(
        parse(
            None,
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20150830T123600Z"
        ),
        Err(Refusal::Incomplete(_))
    ));
}

#[test]
fn a_profile_is_read_from_a_shared_credentials_file() {
    let text = "# comment\n[default]\naws_access_key_id = A\naws_secret_access_key = B\n\n\
                [berth]\naws_access_key_id=AKIAX\n aws_secret_access_key = s/e+c=\n\
                aws_session_token = T\n";
    let berth = Credentials::from_profile(text, "berth").expect("berth");
    assert_eq!(berth.access_key_id, "AKIAX");
    assert_eq!(berth.secret_access_key, "s/e+c=");
    assert_eq!(berth.session_token.as_deref(), Some("T"));
    let default = Credentials::from_profile(text, "default").expect("default");
    assert_eq!(
        (default.access_key_id.as_str(), default.session_token),
        ("A", None)
    );
    assert_eq!(Credentials::from_profile(text, "other"), None);
    assert_eq!(
        Credentials::from_profile("[x]\naws_access_key_id = A\n", "x"),
        None
    );
}
