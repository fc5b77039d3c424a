//! The small languages of listener rules and health checks: `*`/`?` wildcards of host and
//! path conditions, and the status code matcher (`200`, `200-299`, `200,302`).

use std::ops::RangeInclusive;

/// Whether `text` matches `pattern` (`*` any run of bytes, `?` one byte), comparing other
/// bytes with `same`. Bytes, not characters: hosts and paths on the wire are ASCII
/// (punycode, percent-encoding).
fn wildcard(pattern: &[u8], text: &[u8], same: impl Fn(u8, u8) -> bool) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was and where in `text` it currently stops matching.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || same(c, text[t]) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                // Let the last `*` swallow one more byte and try again from there.
                Some((sp, st)) => {
                    star = Some((sp, st + 1));
                    p = sp + 1;
                    t = st + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// A `path-pattern` value against a request path: case-sensitive.
pub(super) fn path_matches(pattern: &str, path: &str) -> bool {
    wildcard(pattern.as_bytes(), path.as_bytes(), |a, b| a == b)
}

/// A `host-header` value against a request's host: case-insensitive.
pub(super) fn host_matches(pattern: &str, host: &str) -> bool {
    wildcard(pattern.as_bytes(), host.as_bytes(), |a, b| {
        a.eq_ignore_ascii_case(&b)
    })
}

/// The HTTP codes a health check accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StatusMatcher(Vec<RangeInclusive<u16>>);

impl StatusMatcher {
    /// Parses `200`, `200-299` or a comma-separated list of either; parts that are not codes
    /// are ignored (the API validated them), so a garbled matcher accepts nothing.
    pub(super) fn parse(matcher: &str) -> Self {
        let ranges = matcher
            .split(',')
            .filter_map(|part| {
                let part = part.trim();
                match part.split_once('-') {
                    Some((low, high)) => Some(low.trim().parse().ok()?..=high.trim().parse().ok()?),
                    None => {
                        let code = part.parse().ok()?;
                        Some(code..=code)
                    }
                }
            })
            .collect();
        Self(ranges)
    }

    /// Whether `status` is accepted.
    pub(super) fn accepts(&self, status: u16) -> bool {
        self.0.iter().any(|range| range.contains(&status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_patterns_take_stars_and_question_marks_and_respect_case() {
        assert!(path_matches("/api/*", "/api/users/1"));
        assert!(path_matches("/api/*", "/api/"));
        assert!(!path_matches("/api/*", "/api"));
        assert!(!path_matches("/api/*", "/API/users"));
        assert!(path_matches("/img/*.png", "/img/a/b.png"));
        assert!(!path_matches("/img/*.png", "/img/a/b.png.txt"));
        assert!(path_matches("/v?/x", "/v2/x"));
        assert!(!path_matches("/v?/x", "/v22/x"));
        assert!(path_matches("*", ""));
        assert!(path_matches("/a*b*c", "/axxbyybzc"));
    }

    #[test]
    fn host_patterns_ignore_case() {
        assert!(host_matches("*.example.com", "WWW.Example.COM"));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(host_matches("api-?.test", "api-1.test"));
        assert!(host_matches("exact.test", "Exact.Test"));
    }

    #[test]
    fn matchers_take_codes_ranges_and_lists() {
        assert!(StatusMatcher::parse("200").accepts(200));
        assert!(!StatusMatcher::parse("200").accepts(201));
        assert!(StatusMatcher::parse("200-299").accepts(204));
        assert!(!StatusMatcher::parse("200-299").accepts(302));
        let list = StatusMatcher::parse("200, 302");
        assert!(list.accepts(302) && list.accepts(200) && !list.accepts(301));
        assert!(!StatusMatcher::parse("garbage").accepts(200));
    }
}
