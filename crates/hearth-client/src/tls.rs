//! What this device trusts a relay's certificate by, and why a `wss://` connection failed
//! in words a person can act on.
//!
//! Trust is the machine's, as curl and git read it: the files `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` name when set, else the platform's store, else (a machine whose store is
//! empty, like a bare container) the public roots compiled in; plus the private CA a person
//! gave with `--ca-file`, which the profile keeps ([`RelayCa`]) so the file may later move.
//! A profile builds one [`RelayTrust`] and uses it for every connection, which also lets a
//! reconnect resume its TLS session.
//!
//! A certificate the relay shows that this trust refuses is not "try again later": it
//! fails the same way every time until someone changes something, so it becomes
//! [`SyncError::Tls`](crate::sync::SyncError::Tls) with a [`TlsFault`] that says what.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::{CertificateError, ClientConfig, RootCertStore};

use crate::Error;

/// The CA certificates a person gave for their relay (a private CA), checked to be
/// certificates a TLS client can trust. Only the certificates are kept: a file that also
/// holds a private key loses it here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayCa {
    certs: Vec<CertificateDer<'static>>,
}

impl RelayCa {
    /// Reads the PEM file at `path` (one or more `-----BEGIN CERTIFICATE-----` blocks).
    ///
    /// # Errors
    /// [`Error::CaFile`] if it cannot be read, holds no certificate, or one of them is not
    /// a certificate a TLS client can trust.
    pub fn read(path: &Path) -> Result<RelayCa, Error> {
        let refuse = |reason: String| Error::CaFile {
            path: path.to_owned(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| refuse(format!("it cannot be read ({e})")))?;
        RelayCa::from_pem(&bytes).map_err(refuse)
    }

    /// Certificates from PEM text; `Err` says what is wrong with it.
    pub(crate) fn from_pem(bytes: &[u8]) -> Result<RelayCa, String> {
        let certs = CertificateDer::pem_slice_iter(bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("it is not a readable PEM file ({e})"))?;
        if certs.is_empty() {
            return Err(
                "it holds no PEM certificate (a -----BEGIN CERTIFICATE----- block): \
                 give the certificate of the authority that signed the relay's \
                 certificate, e.g. ca.crt"
                    .into(),
            );
        }
        for (i, cert) in certs.iter().enumerate() {
            RootCertStore::empty()
                .add(cert.clone())
                .map_err(|e| format!("certificate {} in it cannot be trusted ({e})", i + 1))?;
        }
        Ok(RelayCa { certs })
    }

    /// The certificates as PEM, as the profile keeps them.
    pub fn to_pem(&self) -> String {
        let mut pem = String::new();
        for cert in &self.certs {
            let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
            pem.push_str("-----BEGIN CERTIFICATE-----\n");
            for line in b64.as_bytes().chunks(64) {
                pem.push_str(&String::from_utf8_lossy(line));
                pem.push('\n');
            }
            pem.push_str("-----END CERTIFICATE-----\n");
        }
        pem
    }

    /// How many certificates it holds.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// Whether it holds none (never, for one that was read).
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }
}

/// The TLS settings of one profile's relay connections: the machine's roots, plus its
/// [`RelayCa`] if it has one.
#[derive(Debug, Clone)]
pub struct RelayTrust {
    config: Arc<ClientConfig>,
}

/// The machine's roots, read once per process (reading them can mean parsing a few
/// hundred files).
static SYSTEM_ROOTS: OnceLock<RootCertStore> = OnceLock::new();

fn system_roots() -> &'static RootCertStore {
    SYSTEM_ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::warn!(%error, "a trusted certificate of this machine could not be read");
        }
        let mut roots = RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(found.certs);
        if roots.is_empty() {
            tracing::debug!("no trusted certificates on this machine; using the public roots");
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        } else {
            tracing::debug!(added, ignored, "the machine's trusted certificates");
        }
        roots
    })
}

impl RelayTrust {
    /// Trusts the machine's roots, and `ca` besides.
    pub fn new(ca: Option<&RelayCa>) -> RelayTrust {
        let mut roots = system_roots().clone();
        if let Some(ca) = ca {
            // Checked when the RelayCa was made.
            roots.add_parsable_certificates(ca.certs.iter().cloned());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring offers every safe protocol version")
            .with_root_certificates(roots)
            .with_no_client_auth();
        RelayTrust {
            config: Arc::new(config),
        }
    }

    /// The connector tokio-tungstenite connects `wss://` with.
    pub(crate) fn connector(&self) -> tokio_tungstenite::Connector {
        tokio_tungstenite::Connector::Rustls(Arc::clone(&self.config))
    }
}

/// What is wrong with a relay connection at the TLS layer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsFault {
    /// The certificate is signed by an authority this device does not trust.
    UnknownIssuer,
    /// The certificate is for other names than the host in the relay's address.
    WrongName {
        /// The names it is for, as far as it says.
        presented: Vec<String>,
    },
    /// The certificate expired.
    Expired {
        /// When, in Unix seconds, if known.
        not_after: Option<u64>,
    },
    /// The certificate is not valid yet.
    NotYetValid {
        /// From when, in Unix seconds, if known.
        not_before: Option<u64>,
    },
    /// `wss://` reached a port that does not speak TLS (a relay serving plain `ws://`).
    NotTls,
    /// `ws://` reached a port that expects TLS.
    ExpectsTls,
    /// Another refusal of the certificate or the handshake, as rustls words it.
    Other(String),
}

impl TlsFault {
    /// What went wrong and what to do, for the relay at `relay`.
    pub(crate) fn explain(&self, relay: &str) -> String {
        match self {
            TlsFault::UnknownIssuer => format!(
                "the relay's certificate ({relay}) is signed by an authority this computer \
                 does not trust: if the relay uses a private CA, give its certificate with \
                 --ca-file PATH (or SSL_CERT_FILE); otherwise check that the address is your \
                 relay's"
            ),
            TlsFault::WrongName { presented } => {
                let host = host_of(relay);
                let names = if presented.is_empty() {
                    String::new()
                } else {
                    format!(" (it is for {})", presented.join(", "))
                };
                format!(
                    "the relay's certificate is not for {host}{names}: check the address \
                     ({relay}), or ask the relay's operator for a certificate that names {host}"
                )
            }
            TlsFault::Expired { not_after } => format!(
                "the relay's certificate ({relay}) expired{}: the relay's operator must renew \
                 it (if it looks current, check this computer's clock)",
                not_after
                    .map(|t| format!(" on {}", day(t)))
                    .unwrap_or_default()
            ),
            TlsFault::NotYetValid { not_before } => format!(
                "the relay's certificate ({relay}) is not valid yet{}: check this computer's \
                 clock",
                not_before
                    .map(|t| format!(" (from {})", day(t)))
                    .unwrap_or_default()
            ),
            TlsFault::NotTls => format!(
                "the relay at {relay} does not speak TLS on that port: use ws:// if it has no \
                 certificate of its own, or the address of the TLS proxy in front of it"
            ),
            TlsFault::ExpectsTls => format!(
                "the relay at {relay} expects TLS on that port: use wss:// instead of ws://"
            ),
            TlsFault::Other(reason) => format!(
                "the TLS connection to the relay ({relay}) failed: {reason}; check the relay's \
                 certificate and address"
            ),
        }
    }
}

/// The host part of a relay URL, for a message.
fn host_of(relay: &str) -> &str {
    let rest = relay.split_once("://").map_or(relay, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    }
}

fn day(unix_seconds: u64) -> String {
    let ms = i64::try_from(unix_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    hearth_doc::Millis(ms).to_utc().date_naive().to_string()
}

fn seconds(t: UnixTime) -> u64 {
    t.as_secs()
}

/// The TLS fault behind a failed websocket connection to a relay at a `tls` (wss://) or
/// plain address, if the failure is one; `None` for anything else (a refused connection,
/// a timeout, a relay that is down), which is worth retrying.
pub(crate) fn fault_of(
    tls: bool,
    error: &tokio_tungstenite::tungstenite::Error,
) -> Option<TlsFault> {
    use tokio_tungstenite::tungstenite::Error as WsError;
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    match error {
        WsError::Io(io) => {
            let rustls = io.get_ref()?.downcast_ref::<rustls::Error>()?;
            Some(fault_of_rustls(rustls))
        }
        WsError::Tls(e) => Some(TlsFault::Other(e.to_string())),
        // What a plain request to a TLS port gets back: a TLS alert instead of HTTP, or
        // (nginx) a 400 that says so.
        WsError::Protocol(ProtocolError::HttparseError(_)) if !tls => Some(TlsFault::ExpectsTls),
        WsError::Http(response) if !tls && response.status().as_u16() == 400 => {
            let body = response.body().as_deref().unwrap_or_default();
            String::from_utf8_lossy(body)
                .contains("HTTPS port")
                .then_some(TlsFault::ExpectsTls)
        }
        _ => None,
    }
}

/// A DNS name as webpki lists a certificate's names (`DnsName("relay.lan")`); other kinds
/// of name are left out of the message.
fn dns_name(listed: &str) -> Option<String> {
    let quoted = listed.strip_prefix("DnsName(\"")?.strip_suffix("\")")?;
    Some(quoted.to_owned())
}

fn fault_of_rustls(error: &rustls::Error) -> TlsFault {
    match error {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => TlsFault::UnknownIssuer,
            CertificateError::NotValidForName => TlsFault::WrongName {
                presented: Vec::new(),
            },
            CertificateError::NotValidForNameContext { presented, .. } => TlsFault::WrongName {
                presented: presented.iter().filter_map(|n| dns_name(n)).collect(),
            },
            CertificateError::Expired => TlsFault::Expired { not_after: None },
            CertificateError::ExpiredContext { not_after, .. } => TlsFault::Expired {
                not_after: Some(seconds(*not_after)),
            },
            CertificateError::NotValidYet => TlsFault::NotYetValid { not_before: None },
            CertificateError::NotValidYetContext { not_before, .. } => TlsFault::NotYetValid {
                not_before: Some(seconds(*not_before)),
            },
            other => TlsFault::Other(format!("its certificate was refused: {other}")),
        },
        // Bytes that are not TLS records: a server answering in plain HTTP.
        rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType
            | rustls::InvalidMessage::UnknownProtocolVersion,
        ) => TlsFault::NotTls,
        other => TlsFault::Other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tokio_tungstenite::tungstenite::Error as WsError;

    fn through_tungstenite(e: rustls::Error) -> WsError {
        // What tokio-tungstenite hands back for a failed rustls handshake.
        WsError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    #[test]
    fn an_unknown_issuer_says_to_give_the_private_ca() {
        let fault = fault_of(
            true,
            &through_tungstenite(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
        );
        assert_eq!(fault, Some(TlsFault::UnknownIssuer));
        let message = TlsFault::UnknownIssuer.explain("wss://relay.lan/v1/sync");
        assert!(
            message.starts_with(
                "the relay's certificate (wss://relay.lan/v1/sync) is signed by an authority \
                 this computer does not trust: if the relay uses a private CA, give its \
                 certificate with --ca-file PATH (or SSL_CERT_FILE)"
            ),
            "{message}"
        );
    }

    #[test]
    fn a_name_mismatch_names_the_host_and_what_the_certificate_is_for() {
        let fault = fault_of_rustls(&rustls::Error::InvalidCertificate(
            CertificateError::NotValidForNameContext {
                expected: rustls::pki_types::ServerName::try_from("relay.lan")
                    .unwrap()
                    .to_owned(),
                presented: vec!["DnsName(\"other.lan\")".into(), "IpAddress(..)".into()],
            },
        ));
        let message = fault.explain("wss://relay.lan:8443/v1/sync");
        assert!(
            message
                .starts_with("the relay's certificate is not for relay.lan (it is for other.lan)"),
            "{message}"
        );
    }

    #[test]
    fn an_expired_certificate_says_when_and_who_renews_it() {
        let fault = fault_of_rustls(&rustls::Error::InvalidCertificate(
            CertificateError::ExpiredContext {
                time: UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_800_000_000)),
                not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                    1_796_644_800,
                )),
            },
        ));
        assert_eq!(
            fault,
            TlsFault::Expired {
                not_after: Some(1_796_644_800)
            }
        );
        let message = fault.explain("wss://relay.lan/v1/sync");
        assert!(message.contains("expired on 2026-12-07"), "{message}");
        assert!(message.contains("operator must renew it"), "{message}");
        let early = fault_of_rustls(&rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet,
        ));
        assert!(
            early
                .explain("wss://r/v1/sync")
                .contains("check this computer's clock")
        );
    }

    #[test]
    fn plain_http_where_tls_was_expected_and_the_reverse_are_named() {
        assert_eq!(
            fault_of_rustls(&rustls::Error::InvalidMessage(
                rustls::InvalidMessage::InvalidContentType
            )),
            TlsFault::NotTls
        );
        assert!(
            TlsFault::ExpectsTls
                .explain("ws://relay.lan/v1/sync")
                .contains("use wss:// instead of ws://")
        );
    }

    #[test]
    fn a_refused_connection_is_not_a_tls_fault() {
        let refused = WsError::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(fault_of(true, &refused), None);
        assert_eq!(fault_of(false, &WsError::ConnectionClosed), None);
    }

    #[test]
    fn a_ca_file_keeps_only_its_certificates() {
        assert!(
            RelayCa::from_pem(b"not pem")
                .unwrap_err()
                .contains("no PEM certificate")
        );
        let key_only = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(
            RelayCa::from_pem(key_only)
                .unwrap_err()
                .contains("no PEM certificate")
        );
    }

    #[test]
    fn the_host_of_an_address() {
        assert_eq!(host_of("wss://relay.lan:8443/v1/sync"), "relay.lan");
        assert_eq!(host_of("wss://relay.lan/v1/sync"), "relay.lan");
        assert_eq!(host_of("wss://[::1]:8443/v1/sync"), "::1");
        assert_eq!(host_of("wss://127.0.0.1:8443/v1/sync"), "127.0.0.1");
    }
}
