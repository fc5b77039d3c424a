//! Reading cookies from request headers (the console's session, the load balancers'
//! stickiness cookies).

use hyper::header::{self, HeaderMap};

/// The value of cookie `name` among the `Cookie` headers of `headers` (HTTP/2 may send
/// several), without the quotes a quoted value has.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"'))
}
