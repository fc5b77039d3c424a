//! The servers a client may talk to — several replicas of one control plane
//! (`berth agent --server URL1,URL2,URL3`) — and the one in use: a call or a stream that fails
//! at the transport level moves every clone of the client on to the next one, round robin.
//! A DNS name that resolves to several addresses is one server here: the connector tries its
//! addresses in turn on every new connection.

use super::ClientError;
use hyper::Uri;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One server URL, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Endpoint {
    /// `scheme://authority`, without a trailing slash.
    pub base: String,
    /// `host:port` as the `Host` header (and the signature) names it.
    pub authority: String,
}

impl Endpoint {
    /// Parses `url`: `http://HOST:PORT` or `https://HOST:PORT`, no path.
    pub fn parse(url: &str) -> Result<Endpoint, ClientError> {
        let invalid = |why: &str| ClientError::InvalidUrl {
            url: url.to_string(),
            why: why.to_string(),
        };
        let uri: Uri = url
            .trim_end_matches('/')
            .parse()
            .map_err(|_| invalid("it is not a URL; use http://HOST:PORT"))?;
        let scheme = match uri.scheme_str() {
            Some(scheme @ ("http" | "https")) => scheme.to_string(),
            _ => return Err(invalid("use http://HOST:PORT or https://HOST:PORT")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| invalid("it names no host; use http://HOST:PORT"))?
            .to_string();
        if uri.path() != "/" && !uri.path().is_empty() {
            return Err(invalid("it must not have a path; use http://HOST:PORT"));
        }
        Ok(Endpoint {
            base: format!("{scheme}://{authority}"),
            authority,
        })
    }
}

/// The servers of one client and the index of the one in use, shared by its clones so that
/// the stream, the heartbeats and the reports move together.
#[derive(Debug)]
pub(super) struct Endpoints {
    list: Vec<Endpoint>,
    current: AtomicUsize,
}

impl Endpoints {
    /// The servers `urls` name, in order (blank entries skipped); the first is used first.
    pub fn parse<S: AsRef<str>>(urls: &[S]) -> Result<Endpoints, ClientError> {
        let list = urls
            .iter()
            .map(|url| url.as_ref().trim())
            .filter(|url| !url.is_empty())
            .map(Endpoint::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if list.is_empty() {
            return Err(ClientError::InvalidUrl {
                url: String::new(),
                why: "no server URL given; use http://HOST:PORT".into(),
            });
        }
        Ok(Endpoints {
            list,
            current: AtomicUsize::new(0),
        })
    }

    /// The server in use and its index (to pass to [`Endpoints::failed`]).
    pub fn current(&self) -> (usize, &Endpoint) {
        let index = self.current.load(Ordering::Acquire) % self.list.len();
        (index, &self.list[index])
    }

    /// Every server, in order.
    pub fn all(&self) -> &[Endpoint] {
        &self.list
    }

    /// Server `index` could not be reached: the next one is used from now on, unless another
    /// caller has already moved on from it (so that several calls failing on one dead server
    /// move on once, not once each).
    pub fn failed(&self, index: usize) {
        if self.list.len() < 2 {
            return;
        }
        let next = (index + 1) % self.list.len();
        if self
            .current
            .compare_exchange(index, next, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            tracing::warn!(
                from = %self.list[index].base,
                to = %self.list[next].base,
                "the server does not answer; moving to the next one"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(endpoints: &Endpoints) -> Vec<&str> {
        endpoints.all().iter().map(|e| e.base.as_str()).collect()
    }

    #[test]
    fn a_list_keeps_its_order_and_skips_blank_entries() {
        let endpoints = Endpoints::parse(&["http://a:1/", " http://b:2", "", "https://c:3"])
            .expect("valid list");
        assert_eq!(
            urls(&endpoints),
            ["http://a:1", "http://b:2", "https://c:3"]
        );
        assert_eq!(endpoints.current().1.authority, "a:1");
    }

    #[test]
    fn an_empty_list_or_one_bad_url_is_refused() {
        let empty: [&str; 0] = [];
        for bad in [&empty[..], &[" "], &["http://a:1", "b:2"]] {
            let err = Endpoints::parse(bad).expect_err("refused");
            assert!(matches!(err, ClientError::InvalidUrl { .. }), "{err}");
        }
    }

    #[test]
    fn a_failure_moves_on_round_robin_once_per_dead_server() {
        let endpoints =
            Endpoints::parse(&["http://a:1", "http://b:2", "http://c:3"]).expect("valid list");
        let (a, _) = endpoints.current();
        endpoints.failed(a);
        assert_eq!(endpoints.current().1.authority, "b:2");
        // A second call that failed on a has nothing more to say: b is in use already.
        endpoints.failed(a);
        assert_eq!(endpoints.current().1.authority, "b:2");
        endpoints.failed(endpoints.current().0);
        assert_eq!(endpoints.current().1.authority, "c:3");
        endpoints.failed(endpoints.current().0);
        assert_eq!(endpoints.current().1.authority, "a:1", "back to the first");
    }

    #[test]
    fn a_single_server_stays_in_use_whatever_fails() {
        let endpoints = Endpoints::parse(&["http://a:1"]).expect("valid");
        endpoints.failed(0);
        assert_eq!(endpoints.current(), (0, &endpoints.all()[0]));
    }
}
