//! HTML output: escaping and the page frame. Every piece of text that came from a user, the
//! API or the store goes through [`esc`] (or [`Html::text`]) before it reaches a page.

use std::fmt::Write as _;

/// Escapes `text` for HTML element content and double-quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_escaped(&mut out, text);
    out
}

fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// Percent-encodes `segment` for one path segment or query value of a console URL.
pub fn url(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A page being written: raw markup pushed by the console's own code, text escaped.
#[derive(Debug, Default)]
pub struct Html(String);

impl Html {
    /// An empty page body.
    pub fn new() -> Html {
        Html(String::with_capacity(16 * 1024))
    }

    /// Appends markup written by the console itself (never user data).
    pub fn raw(&mut self, markup: &str) -> &mut Html {
        self.0.push_str(markup);
        self
    }

    /// Appends `text`, escaped.
    pub fn text(&mut self, text: &str) -> &mut Html {
        push_escaped(&mut self.0, text);
        self
    }

    /// Appends `<tag>text</tag>` with `text` escaped.
    pub fn el(&mut self, tag: &str, text: &str) -> &mut Html {
        let _ = write!(self.0, "<{tag}>");
        self.text(text);
        let _ = write!(self.0, "</{tag}>");
        self
    }

    /// Appends a link to the console path `href` (already built from [`url`]-encoded parts).
    pub fn link(&mut self, href: &str, text: &str) -> &mut Html {
        self.raw("<a href=\"")
            .text(href)
            .raw("\">")
            .text(text)
            .raw("</a>")
    }

    /// Appends a table row of escaped cells.
    pub fn row(&mut self, cells: &[&str]) -> &mut Html {
        self.raw("<tr>");
        for cell in cells {
            self.el("td", cell);
        }
        self.raw("</tr>");
        self
    }

    /// Appends a table header row.
    pub fn head(&mut self, cells: &[&str]) -> &mut Html {
        self.raw("<thead><tr>");
        for cell in cells {
            self.el("th", cell);
        }
        self.raw("</tr></thead>");
        self
    }

    /// Appends an error box naming the API error (an access denial reads as one).
    pub fn error(&mut self, name: &str, message: &str) -> &mut Html {
        self.raw("<div class=\"error\" role=\"alert\"><strong>")
            .text(name)
            .raw("</strong>: ")
            .text(message)
            .raw("</div>")
    }

    /// Appends a hidden CSRF field for a form of the signed-in user.
    pub fn csrf(&mut self, token: &str) -> &mut Html {
        self.raw("<input type=\"hidden\" name=\"csrf\" value=\"")
            .text(token)
            .raw("\">")
    }

    /// The markup written so far.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// A console page as an HTTP answer: never cached (it carries the session's CSRF token), never
/// framed, and allowed only this server's own script and stylesheet.
pub fn respond(status: axum::http::StatusCode, markup: String) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
            ),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "same-origin"),
        ],
        markup,
    )
        .into_response()
}

/// Who the page is shown to, for the frame's header.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub title: &'a str,
    /// The signed-in principal's ARN and CSRF token; `None` on the sign-in page.
    pub viewer: Option<(&'a str, &'a str)>,
}

/// Wraps `body` in the console's page: header, navigation, stylesheet and live-update script.
pub fn page(frame: Frame<'_>, body: &str) -> String {
    let mut h = Html::new();
    h.raw("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">")
        .raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
        .raw("<title>")
        .text(frame.title)
        .raw(" · Berth</title>")
        .raw("<link rel=\"stylesheet\" href=\"/console/assets/console.css\">")
        .raw("<script src=\"/console/assets/console.js\" defer></script></head><body>")
        .raw("<header><a class=\"brand\" href=\"/console/clusters\">Berth</a>");
    if let Some((arn, csrf)) = frame.viewer {
        h.raw("<nav><a href=\"/console/clusters\">Clusters</a>")
            .raw("<a href=\"/console/task-definitions\">Task definitions</a></nav>")
            .raw("<form class=\"signout\" method=\"post\" action=\"/console/sign-out\">")
            .raw("<span class=\"who\">")
            .text(arn)
            .raw("</span>")
            .csrf(csrf)
            .raw("<button type=\"submit\">Sign out</button></form>");
    }
    h.raw("</header><main>").el("h1", frame.title);
    h.raw(body).raw("</main></body></html>");
    h.into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_neutralises_markup_and_quotes() {
        assert_eq!(
            esc(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
        assert_eq!(esc("plain ünïcode"), "plain ünïcode");
    }

    #[test]
    fn url_segments_are_percent_encoded() {
        assert_eq!(url("my-svc_1.a~"), "my-svc_1.a~");
        assert_eq!(url("a/b c?\"<"), "a%2Fb%20c%3F%22%3C");
    }

    #[test]
    fn page_frame_escapes_title_and_viewer() {
        let html = page(
            Frame {
                title: "<b>t</b>",
                viewer: Some(("arn:<x>", "tok\"en")),
            },
            "<p>body</p>",
        );
        assert!(html.contains("<h1>&lt;b&gt;t&lt;/b&gt;</h1>"));
        assert!(html.contains("arn:&lt;x&gt;"));
        assert!(html.contains("value=\"tok&quot;en\""));
        assert!(html.contains("<p>body</p>"));
    }
}
