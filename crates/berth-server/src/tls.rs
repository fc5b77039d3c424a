//! TLS for the endpoint (rustls). Either the operator's certificate and key
//! (`--tls-cert`/`--tls-key`), or Berth's own: a CA made once in `DATA_DIR/tls/` (its key
//! readable by the owner only) that signs a server certificate on every start, for
//! `localhost`, the loopback addresses, the listen address, the host name and any `--tls-san`.
//! Agents and clients trust `DATA_DIR/tls/ca.pem`.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the endpoint's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// Plain HTTP.
    Off,
    /// The operator's certificate chain and private key (PEM files).
    Files { cert: PathBuf, key: PathBuf },
    /// Berth's own CA in the data dir, with extra names for the server certificate.
    OwnCa { extra_names: Vec<String> },
}

/// The CA's certificate in the data dir: what agents and clients are given to trust.
pub const CA_FILE: &str = "tls/ca.pem";
const CA_KEY_FILE: &str = "tls/ca-key.pem";
const SERVER_CERT_FILE: &str = "tls/server.pem";
const SERVER_KEY_FILE: &str = "tls/server-key.pem";

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no usable {what}: {why}")]
    Pem {
        path: PathBuf,
        what: &'static str,
        why: String,
    },
    #[error("making a certificate failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("Berth's own CA needs a data dir to keep it in")]
    NoDataDir,
}

/// The acceptor for `tls` (`None` when it is off).
pub fn acceptor(
    tls: &Tls,
    data_dir: Option<&Path>,
    listen: SocketAddr,
) -> Result<Option<tokio_rustls::TlsAcceptor>, TlsError> {
    let (certs, key) = match tls {
        Tls::Off => return Ok(None),
        Tls::Files { cert, key } => (read_certs(cert)?, read_key(key)?),
        Tls::OwnCa { extra_names } => {
            let dir = data_dir.ok_or(TlsError::NoDataDir)?;
            own_certificate(dir, listen, extra_names)?;
            (
                read_certs(&dir.join(SERVER_CERT_FILE))?,
                read_key(&dir.join(SERVER_KEY_FILE))?,
            )
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = |why: String| TlsError::Pem {
        path: path.to_path_buf(),
        what: "certificate",
        why,
    };
    let bytes = std::fs::read(path).map_err(io(path))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(pem("no CERTIFICATE block".into()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::Pem {
        path: path.to_path_buf(),
        what: "private key",
        why: e.to_string(),
    })
}

/// The CA's parameters: the same every time, so a CA key kept on disk signs certificates
/// that chain to the CA certificate made with it.
fn ca_params() -> Result<rcgen::CertificateParams, rcgen::Error> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Berth CA");
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

/// Makes the CA if the data dir has none, then a server certificate signed by it.
fn own_certificate(dir: &Path, listen: SocketAddr, extra: &[String]) -> Result<(), TlsError> {
    let tls_dir = dir.join("tls");
    std::fs::create_dir_all(&tls_dir).map_err(io(&tls_dir))?;
    let (ca_path, ca_key_path) = (dir.join(CA_FILE), dir.join(CA_KEY_FILE));
    let ca_key = match std::fs::read_to_string(&ca_key_path) {
        Ok(pem) => rcgen::KeyPair::from_pem(&pem)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = rcgen::KeyPair::generate()?;
            let cert = ca_params()?.self_signed(&key)?;
            crate::auth::keys::write_private(&ca_key_path, key.serialize_pem().as_bytes())
                .map_err(io(&ca_key_path))?;
            std::fs::write(&ca_path, cert.pem()).map_err(io(&ca_path))?;
            tracing::info!(ca = %ca_path.display(), "made Berth's TLS CA; agents and clients trust this file");
            key
        }
        Err(e) => return Err(io(&ca_key_path)(e)),
    };
    let issuer = ca_params()?.self_signed(&ca_key)?;
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if !listen.ip().is_unspecified() {
        names.push(listen.ip().to_string());
    }
    if let Some(host) = host_name() {
        names.push(host);
    }
    names.extend(extra.iter().cloned());
    names.sort();
    names.dedup();
    let mut params = rcgen::CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Berth server");
    let key = rcgen::KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer, &ca_key)?;
    let (cert_path, key_path) = (dir.join(SERVER_CERT_FILE), dir.join(SERVER_KEY_FILE));
    crate::auth::keys::write_private(&key_path, key.serialize_pem().as_bytes())
        .map_err(io(&key_path))?;
    std::fs::write(&cert_path, cert.pem()).map_err(io(&cert_path))?;
    Ok(())
}

/// This host's name, as the kernel knows it.
fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_own_ca_is_made_once_and_signs_a_fresh_server_certificate_each_start() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let listen: SocketAddr = "127.0.0.1:7700".parse().expect("addr");
        let tls = Tls::OwnCa {
            extra_names: vec!["berth.example".into()],
        };
        acceptor(&tls, Some(dir.path()), listen)
            .expect("tls")
            .expect("an acceptor");
        let ca = std::fs::read(dir.path().join(CA_FILE)).expect("ca");
        let first = std::fs::read(dir.path().join(SERVER_CERT_FILE)).expect("cert");
        let key_mode = std::fs::metadata(dir.path().join(CA_KEY_FILE))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(key_mode & 0o777, 0o600, "the CA key is the owner's only");
        acceptor(&tls, Some(dir.path()), listen).expect("again");
        assert_eq!(std::fs::read(dir.path().join(CA_FILE)).expect("ca"), ca);
        assert_ne!(
            std::fs::read(dir.path().join(SERVER_CERT_FILE)).expect("cert"),
            first
        );
        assert!(acceptor(&Tls::Off, None, listen).expect("off").is_none());
        let missing = Tls::Files {
            cert: dir.path().join("none.pem"),
            key: dir.path().join("none-key.pem"),
        };
        assert!(matches!(
            acceptor(&missing, None, listen),
            Err(TlsError::Io { .. })
        ));
    }
}
