//! Where a server keeps its store, as `--store` names it: `sqlite://DIR` (or a bare
//! directory) for the embedded SQLite database, `etcd://h1:2379,h2:2379[/prefix]` or
//! `etcds://…` for an etcd cluster.

use std::path::PathBuf;

/// Where the etcd cluster is and how to reach it: `etcd://h1:2379,h2:2379[/prefix]`
/// (`etcds://` for TLS), with the TLS and auth options of `berth server`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcdConfig {
    /// `http://host:port` (or `https://`) of each member.
    pub endpoints: Vec<String>,
    /// Prepended to every key (the URL's path, without a trailing `/`; empty for none).
    pub prefix: String,
    /// The CA that signs the members' certificates (turns TLS on).
    pub ca: Option<PathBuf>,
    /// A client certificate and key, for members that ask for one.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// etcd auth: user and password.
    pub user: Option<(String, String)>,
}

impl EtcdConfig {
    /// Reads an `etcd://` or `etcds://` URL; a host without a port gets 2379.
    pub fn from_url(url: &str) -> Result<Self, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("etcds://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("etcd://") {
            (false, rest)
        } else {
            return Err(format!("{url:?} is not an etcd:// or etcds:// URL"));
        };
        let (hosts, path) = rest.split_once('/').unwrap_or((rest, ""));
        let scheme = if tls { "https" } else { "http" };
        let endpoints = hosts
            .split(',')
            .map(str::trim)
            .filter(|host| !host.is_empty())
            .map(|host| {
                if host.rsplit_once(':').is_some_and(|(_, port)| {
                    !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
                }) {
                    format!("{scheme}://{host}")
                } else {
                    format!("{scheme}://{host}:2379")
                }
            })
            .collect::<Vec<_>>();
        if endpoints.is_empty() {
            return Err(format!(
                "{url:?} names no etcd member (etcd://HOST:PORT,...)"
            ));
        }
        let path = path.trim_end_matches('/');
        Ok(Self {
            endpoints,
            prefix: if path.is_empty() {
                String::new()
            } else {
                format!("/{path}")
            },
            ..Self::default()
        })
    }
}

/// A store's place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The SQLite database in this data directory.
    Sqlite(PathBuf),
    /// An etcd cluster.
    Etcd(EtcdConfig),
}

impl Location {
    /// Reads a `--store` value.
    pub fn parse(value: &str) -> Result<Self, String> {
        if value.starts_with("etcd://") || value.starts_with("etcds://") {
            return EtcdConfig::from_url(value).map(Self::Etcd);
        }
        if let Some(dir) = value.strip_prefix("sqlite://") {
            if dir.is_empty() {
                return Err("sqlite:// needs a directory (sqlite:///var/lib/berth)".into());
            }
            return Ok(Self::Sqlite(PathBuf::from(dir)));
        }
        if value.contains("://") {
            return Err(format!(
                "{value:?} is not a store: use sqlite://DIR or etcd://HOST:PORT[,HOST:PORT...]"
            ));
        }
        if value.is_empty() {
            return Err("the store is empty: use sqlite://DIR or etcd://HOST:PORT".into());
        }
        Ok(Self::Sqlite(PathBuf::from(value)))
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(dir) => write!(f, "sqlite://{}", dir.display()),
            Self::Etcd(config) => {
                let tls = config.endpoints.iter().any(|e| e.starts_with("https://"));
                let hosts = config
                    .endpoints
                    .iter()
                    .map(|e| e.split_once("://").map_or(e.as_str(), |(_, host)| host))
                    .collect::<Vec<_>>()
                    .join(",");
                let scheme = if tls { "etcds" } else { "etcd" };
                write!(f, "{scheme}://{hosts}{}", config.prefix)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_members_prefix_and_tls() {
        let config = EtcdConfig::from_url("etcd://h1:2379,h2,10.0.0.3:32379/prod/").expect("url");
        assert_eq!(
            config.endpoints,
            vec!["http://h1:2379", "http://h2:2379", "http://10.0.0.3:32379"]
        );
        assert_eq!(config.prefix, "/prod");
        let tls = EtcdConfig::from_url("etcds://h1").expect("url");
        assert_eq!(tls.endpoints, vec!["https://h1:2379"]);
        assert_eq!(tls.prefix, "");
        assert!(EtcdConfig::from_url("etcd://").is_err());
        assert!(EtcdConfig::from_url("sqlite:///x").is_err());
    }

    #[test]
    fn store_values_name_a_backend() {
        assert_eq!(
            Location::parse("sqlite:///var/lib/berth"),
            Ok(Location::Sqlite("/var/lib/berth".into()))
        );
        assert_eq!(
            Location::parse("/data"),
            Ok(Location::Sqlite("/data".into()))
        );
        let etcd = Location::parse("etcd://a:2379,b/p").expect("etcd");
        assert_eq!(etcd.to_string(), "etcd://a:2379,b:2379/p");
        assert!(Location::parse("redis://x").is_err());
        assert!(Location::parse("sqlite://").is_err());
        assert!(Location::parse("").is_err());
    }
}
