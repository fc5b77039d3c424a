//! The AWS query protocol (IAM, STS): a form-encoded body `Action=...&Version=...&Name=...`,
//! lists flattened as `Name.member.N`, structures as `Name.Field`; answers in XML,
//! `<ActionResponse><ActionResult>...</ActionResult><ResponseMetadata>...` and errors as
//! `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`.

use crate::error::ApiError;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Content type of query requests.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";
/// Content type of query answers.
pub const XML_CONTENT_TYPE: &str = "text/xml";

/// A query request's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRequest {
    pub action: String,
    params: BTreeMap<String, String>,
}

impl QueryRequest {
    /// Every parameter but `Action` and `Version`, by name (for protocols, like EC2's, that
    /// name list members their own way).
    pub fn into_params(self) -> BTreeMap<String, String> {
        self.params
    }

    /// Reads a form body. Without `Action` it is not a query request.
    pub fn parse(body: &[u8]) -> Result<QueryRequest, ApiError> {
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::new("MalformedQueryString", "The request body is not UTF-8."))?;
        let mut params = BTreeMap::new();
        for pair in text.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            params.insert(form_decode(k), form_decode(v));
        }
        let action = params
            .remove("Action")
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    "MissingAction",
                    "The request must contain the parameter Action.",
                )
            })?;
        params.remove("Version");
        Ok(QueryRequest { action, params })
    }

    /// A parameter, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// A parameter that must be given (IAM's `ValidationError` otherwise).
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name).ok_or_else(|| {
            ApiError::new(
                "ValidationError",
                format!("1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null", lower_first(name)),
            )
        })
    }

    /// An integer parameter, if given.
    pub fn integer(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.get(name)
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError::new(
                        "ValidationError",
                        format!("Value '{v}' at '{}' is not an integer.", lower_first(name)),
                    )
                })
            })
            .transpose()
    }

    /// The structures of list `name` (`name.member.N.Field`), in N order, each as its fields.
    pub fn structures(&self, name: &str) -> Vec<BTreeMap<String, String>> {
        members(&self.params, name)
    }
}

/// The structures of list `name` in `params` (`name.member.N.Field`), in N order, each as
/// its fields (also for a list nested in a structure already taken out of a request).
pub fn members(params: &BTreeMap<String, String>, name: &str) -> Vec<BTreeMap<String, String>> {
    indexed_structures(params, &format!("{name}.member."))
}

/// The structures whose keys in `params` are `{prefix}N.Field`, in N order, each as its
/// fields with `{prefix}N.` taken off: the query protocol's `name.member.` lists and EC2's
/// `Name.` lists.
pub fn indexed_structures(
    params: &BTreeMap<String, String>,
    prefix: &str,
) -> Vec<BTreeMap<String, String>> {
    let mut items: BTreeMap<u32, BTreeMap<String, String>> = BTreeMap::new();
    for (key, value) in params.range(prefix.to_string()..) {
        let Some(rest) = key.strip_prefix(prefix) else {
            break;
        };
        let Some((index, field)) = rest.split_once('.') else {
            continue;
        };
        if let Ok(index) = index.parse::<u32>() {
            items
                .entry(index)
                .or_default()
                .insert(field.to_string(), value.clone());
        }
    }
    items.into_values().collect()
}

fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_ascii_lowercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// Decodes one form-encoded component (`+` is a space).
fn form_decode(text: &str) -> String {
    berth_core::sigv4::decode(&text.replace('+', " "))
}

/// An XML fragment being written.
#[derive(Debug, Default)]
pub struct Xml(String);

impl Xml {
    pub fn new() -> Xml {
        Xml::default()
    }

    /// `<name>text</name>`, escaped.
    pub fn field(&mut self, name: &str, text: &str) -> &mut Xml {
        let _ = write!(self.0, "<{name}>{}</{name}>", escape(text));
        self
    }

    /// `<name>text</name>` when there is a text.
    pub fn optional(&mut self, name: &str, text: Option<&str>) -> &mut Xml {
        if let Some(text) = text {
            self.field(name, text);
        }
        self
    }

    /// `<name>...</name>` around what `inner` writes.
    pub fn nest(&mut self, name: &str, inner: impl FnOnce(&mut Xml)) -> &mut Xml {
        let _ = write!(self.0, "<{name}>");
        inner(self);
        let _ = write!(self.0, "</{name}>");
        self
    }

    /// `<name><member>...</member>...</name>`, one member per item.
    pub fn list<T>(
        &mut self,
        name: &str,
        items: &[T],
        mut member: impl FnMut(&mut Xml, &T),
    ) -> &mut Xml {
        self.nest(name, |xml| {
            for item in items {
                xml.nest("member", |xml| member(xml, item));
            }
        })
    }

    /// Escaped text where the writer stands (a list member that is a plain string).
    pub fn text(&mut self, text: &str) -> &mut Xml {
        self.0.push_str(&escape(text));
        self
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Escapes text for an XML element. Characters XML 1.0 cannot carry at all (NUL and the
/// other C0 controls but tab, line feed and carriage return; U+FFFE, U+FFFF), which a
/// request may hold and an error message quote, become U+FFFD; a carriage return is written
/// as a reference so parsing keeps it.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The answer to `action` of the service with XML namespace `namespace`, with its result.
pub fn response(action: &str, namespace: &str, result: Option<Xml>, request_id: &str) -> String {
    let mut out = format!("<{action}Response xmlns=\"{namespace}\">");
    if let Some(result) = result {
        let _ = write!(out, "<{action}Result>{}</{action}Result>", result.0);
    }
    let _ = write!(
        out,
        "<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
        escape(request_id)
    );
    out
}

/// An error answer.
pub fn error_response(namespace: &str, error: &ApiError, request_id: &str) -> String {
    let kind = if error.status().is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    format!(
        "<ErrorResponse xmlns=\"{namespace}\"><Error><Type>{kind}</Type><Code>{}</Code>\
         <Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        escape(query_code(error.name)),
        escape(&error.message),
        escape(request_id)
    )
}

/// The query-protocol name of an error: the authentication errors are named differently there.
pub fn query_code(name: &str) -> &str {
    match name {
        "MissingAuthenticationTokenException" => "MissingAuthenticationToken",
        "UnrecognizedClientException" => "InvalidClientTokenId",
        "InvalidSignatureException" => "SignatureDoesNotMatch",
        "IncompleteSignatureException" => "IncompleteSignature",
        "AccessDeniedException" => "AccessDenied",
        "ExpiredTokenException" => "ExpiredToken",
        "ThrottlingException" => "Throttling",
        "ServerException" => "ServiceFailure",
        other => other,
    }
}

/// Epoch seconds as the ISO 8601 time query answers carry (`2026-11-30T17:00:00Z`).
pub fn timestamp(epoch_seconds: f64) -> String {
    berth_core::civil::iso8601(epoch_seconds.max(0.0) as i64, None)
}

/// Percent-encodes a policy document, as IAM returns them (botocore decodes them back).
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_xml_cannot_carry_is_replaced_and_markup_is_escaped() {
        assert_eq!(escape("a<b>&'\""), "a&lt;b&gt;&amp;&apos;&quot;");
        assert_eq!(escape("\u{e9}\u{0}\u{1b}x"), "\u{e9}\u{FFFD}\u{FFFD}x");
        assert_eq!(escape("one\ttwo\nthree\rfour"), "one\ttwo\nthree&#13;four");
        assert_eq!(escape("\u{FFFF}"), "\u{FFFD}");
    }

    #[test]
    fn a_form_body_reads_as_action_parameters_and_member_lists() {
        let body = b"Action=CreateUser&Version=2010-05-08&UserName=alice&Path=%2Fteam%2F\
                     &Tags.member.1.Key=env&Tags.member.1.Value=prod+eu&Tags.member.2.Key=x&Tags.member.2.Value=";
        let request = QueryRequest::parse(body).expect("parses");
        assert_eq!(request.action, "CreateUser");
        assert_eq!(request.get("UserName"), Some("alice"));
        assert_eq!(request.get("Path"), Some("/team/"));
        assert_eq!(request.get("Version"), None);
        let tags = request.structures("Tags");
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0]["Value"], "prod eu");
        assert_eq!(tags[1]["Key"], "x");
        assert_eq!(
            request.required("MaxItems").expect_err("missing").name,
            "ValidationError"
        );
        assert_eq!(
            QueryRequest::parse(b"Version=1")
                .expect_err("no action")
                .name,
            "MissingAction"
        );
    }

    #[test]
    fn answers_and_errors_are_aws_xml() {
        let mut result = Xml::new();
        result.nest("User", |x| {
            x.field("UserName", "a<b");
        });
        let xml = response("GetUser", "ns", Some(result), "r1");
        assert_eq!(
            xml,
            "<GetUserResponse xmlns=\"ns\"><GetUserResult><User><UserName>a&lt;b</UserName></User>\
             </GetUserResult><ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata></GetUserResponse>"
        );
        let error = ApiError::new("NoSuchEntity", "The user with name x cannot be found.");
        let xml = error_response("ns", &error, "r2");
        assert!(
            xml.contains("<Type>Sender</Type><Code>NoSuchEntity</Code>"),
            "{xml}"
        );
        assert_eq!(timestamp(1_440_938_160.0), "2015-08-30T12:36:00Z");
        assert_eq!(url_encode("{\"a\": 1}"), "%7B%22a%22%3A%201%7D");
    }
}
