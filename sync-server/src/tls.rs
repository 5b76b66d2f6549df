//! The relay's own TLS: the certificate chain and key it serves `wss://` with when the
//! operator gives `--tls-cert` and `--tls-key`, so that a relay needs no proxy in front of
//! it. The files are read at start (a bad one stops the relay with a message naming it)
//! and again on [`RelayTls::reload`] (the binary calls it on SIGHUP, after a renewal):
//! a new pair that does not load is refused and the certificate in use is kept, so a
//! botched renewal never takes a running relay off the air. Connections already open keep
//! the certificate they were made with; each new one gets the current one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Why the relay's certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read the TLS {what} file {path}: check the path given with --tls-{what}")]
    Read {
        /// `cert` or `key`.
        what: &'static str,
        /// The path as given.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// The certificate file holds no PEM certificate.
    #[error(
        "{path} holds no PEM certificate (a -----BEGIN CERTIFICATE----- block): give the \
         certificate chain, the relay's own certificate first (e.g. Let's Encrypt's \
         fullchain.pem)"
    )]
    NoCertificate {
        /// The certificate file.
        path: PathBuf,
    },
    /// The key file holds no PEM private key.
    #[error(
        "{path} holds no PEM private key (a -----BEGIN PRIVATE KEY----- block, or RSA or EC): \
         give the key the certificate was issued for (e.g. Let's Encrypt's privkey.pem)"
    )]
    NoKey {
        /// The key file.
        path: PathBuf,
    },
    /// A file is PEM but does not decode.
    #[error("{path} is not a readable PEM file ({reason}): check that it was copied whole")]
    BadPem {
        /// The file.
        path: PathBuf,
        /// What the PEM reader said.
        reason: String,
    },
    /// The key does not fit the certificate, or either is not usable by TLS.
    #[error(
        "the TLS key {key} does not go with the certificate {cert} ({reason}): give the \
         key the certificate was issued for"
    )]
    Unusable {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        reason: String,
    },
}

/// The relay's certificate, swappable while it runs.
#[derive(Debug)]
pub struct RelayTls {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<ServerConfig>>,
}

impl RelayTls {
    /// Reads the PEM certificate chain at `cert` and the private key at `key`.
    ///
    /// # Errors
    /// A [`TlsError`] naming the file at fault.
    pub fn load(cert: &Path, key: &Path) -> Result<RelayTls, TlsError> {
        let config = server_config(cert, key)?;
        Ok(RelayTls {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: RwLock::new(Arc::new(config)),
        })
    }

    /// Reads the files again; new connections get the new certificate. On an error the
    /// certificate in use stays.
    ///
    /// # Errors
    /// As [`RelayTls::load`].
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = server_config(&self.cert, &self.key)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(config);
        Ok(())
    }

    /// The certificate file.
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    /// An acceptor with the certificate in use now.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        let config = Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner));
        TlsAcceptor::from(config)
    }
}

fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, TlsError> {
    let chain = read_chain(cert)?;
    let private = read_key(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let unusable = |e: rustls::Error| TlsError::Unusable {
        cert: cert.to_owned(),
        key: key.to_owned(),
        reason: e.to_string(),
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(unusable)?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(unusable)?;
    // The relay speaks HTTP/1.1 only (the websocket upgrade).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

fn bad_pem(path: &Path, e: &rustls::pki_types::pem::Error) -> TlsError {
    TlsError::BadPem {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read("cert", path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_pem(path, &e))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read("key", path)?;
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Ok(key),
        Err(rustls::pki_types::pem::Error::NoItemsFound) => Err(TlsError::NoKey {
            path: path.to_owned(),
        }),
        Err(e) => Err(bad_pem(path, &e)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A self-signed certificate for 127.0.0.1 in `dir`, as `(cert path, key path)`.
    pub(crate) fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        (cert, key)
    }

    fn in_use(tls: &RelayTls) -> Arc<ServerConfig> {
        Arc::clone(&tls.current.read().unwrap())
    }

    #[test]
    fn a_key_that_does_not_go_with_the_certificate_is_refused_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = self_signed(dir.path(), "a");
        let (_, other_key) = self_signed(dir.path(), "b");
        let err = RelayTls::load(&cert, &other_key).unwrap_err();
        assert!(matches!(err, TlsError::Unusable { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("a.crt") && message.contains("b.key"),
            "{message}"
        );
    }

    #[test]
    fn a_certificate_given_as_the_key_and_an_empty_file_say_what_they_lack() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path(), "a");
        assert!(matches!(
            RelayTls::load(&cert, &cert).unwrap_err(),
            TlsError::NoKey { .. }
        ));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        assert!(matches!(
            RelayTls::load(&empty, &key).unwrap_err(),
            TlsError::NoCertificate { .. }
        ));
        let err = RelayTls::load(&dir.path().join("nowhere.pem"), &key).unwrap_err();
        assert!(err.to_string().contains("--tls-cert"), "{err}");
    }

    #[test]
    fn a_reload_that_fails_keeps_the_certificate_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path(), "a");
        let tls = RelayTls::load(&cert, &key).unwrap();
        let before = in_use(&tls);
        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
        assert!(tls.reload().is_err());
        assert!(Arc::ptr_eq(&in_use(&tls), &before));
        let (new_cert, new_key) = self_signed(dir.path(), "b");
        std::fs::copy(new_cert, &cert).unwrap();
        std::fs::copy(new_key, &key).unwrap();
        tls.reload().unwrap();
        assert!(!Arc::ptr_eq(&in_use(&tls), &before));
    }
}
