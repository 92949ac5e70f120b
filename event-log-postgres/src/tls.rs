//! TLS from the URL, as libpq reads it: `sslmode`, `sslrootcert`, `sslcert`, `sslkey`
//! (see the crate docs, "TLS"), with rustls and the AWS-LC provider.
//!
//! | `sslmode`     | TLS                         | server certificate                              |
//! |---------------|-----------------------------|-------------------------------------------------|
//! | `disable`     | never                       | –                                               |
//! | `prefer`      | if the server offers it     | not checked, unless `sslrootcert` (as verify-ca) |
//! | `require`     | always (else an error)      | not checked, unless `sslrootcert` (as verify-ca) |
//! | `verify-ca`   | always                      | chain to `sslrootcert`                          |
//! | `verify-full` | always                      | chain to `sslrootcert`, and the host name (or IP) |
//!
//! Certificate files are read when the store is opened; a missing or unreadable one
//! is `Invalid`, naming the parameter and the path (never a file's content).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use event_log_core::StoreError;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode as DriverSslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::invalid;

/// libpq's `sslmode` values (`allow` is not supported: it is plain text first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum SslMode {
    Disable,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(v: &str) -> Result<Self, StoreError> {
        Ok(match v {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => {
                return Err(invalid(
                    "URL parameter sslmode: expected disable, prefer, require, verify-ca or \
                     verify-full",
                ));
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// The TLS parameters of a URL.
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsParams {
    pub mode: SslMode,
    pub rootcert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl TlsParams {
    /// Reads the TLS parameters out of this crate's parameters `own` (last one wins).
    pub(crate) fn from_params(own: &[(String, String)]) -> Result<Self, StoreError> {
        let mut p = TlsParams::default();
        for (k, v) in own {
            match k.as_str() {
                "sslmode" => p.mode = SslMode::parse(v)?,
                "sslrootcert" => p.rootcert = Some(PathBuf::from(v)),
                "sslcert" => p.cert = Some(PathBuf::from(v)),
                "sslkey" => p.key = Some(PathBuf::from(v)),
                _ => {}
            }
        }
        if p.cert.is_some() != p.key.is_some() {
            return Err(invalid(
                "URL parameters sslcert and sslkey: a client certificate needs both",
            ));
        }
        Ok(p)
    }

    /// What the driver is told: whether TLS is tried, and required.
    pub(crate) fn driver_mode(&self) -> DriverSslMode {
        match self.mode {
            SslMode::Disable => DriverSslMode::Disable,
            SslMode::Prefer => DriverSslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => DriverSslMode::Require,
        }
    }

    /// True if the URL asks for something only this crate's own connector does.
    pub(crate) fn needs_own_connector(&self) -> bool {
        matches!(self.mode, SslMode::VerifyCa | SslMode::VerifyFull)
            || self.rootcert.is_some()
            || self.cert.is_some()
    }

    /// The rustls connector for these parameters, its files read now.
    pub(crate) fn connector(&self) -> Result<MakeRustlsConnect, StoreError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(format!("TLS configuration: {e}")))?;
        let verify = match (self.mode, &self.rootcert) {
            (SslMode::VerifyFull, _) => Some(Verify::Full),
            (SslMode::VerifyCa, _) | (_, Some(_)) => Some(Verify::Chain),
            _ => None,
        };
        let lenient = |chain| {
            Arc::new(Lenient {
                algorithms: provider.signature_verification_algorithms,
                chain,
            })
        };
        let builder = match verify {
            None => builder
                .dangerous()
                .with_custom_certificate_verifier(lenient(None)),
            Some(verify) => {
                let path = self.rootcert.clone().unwrap_or_else(default_root_cert);
                let roots = read_roots(&path)?;
                let webpki =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|e| {
                            invalid(format!(
                                "URL parameter sslrootcert: {}: {e}",
                                path.display()
                            ))
                        })?;
                match verify {
                    Verify::Full => builder.with_webpki_verifier(webpki),
                    Verify::Chain => builder
                        .dangerous()
                        .with_custom_certificate_verifier(lenient(Some(webpki))),
                }
            }
        };
        let config = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let certs = read_certs("sslcert", cert)?;
                let key = read_key(key)?;
                builder.with_client_auth_cert(certs, key).map_err(|e| {
                    invalid(format!(
                        "URL parameters sslcert and sslkey ({}): {e}",
                        cert.display()
                    ))
                })?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(MakeRustlsConnect::new(config))
    }

    /// A one-line description for messages: `sslmode=verify-full`.
    pub(crate) fn describe(&self) -> String {
        format!("sslmode={}", self.mode.name())
    }
}

#[derive(Clone, Copy)]
enum Verify {
    /// The chain only (verify-ca).
    Chain,
    /// The chain and the host name (verify-full).
    Full,
}

/// libpq's default `sslrootcert`: `~/.postgresql/root.crt`.
fn default_root_cert() -> PathBuf {
    let home = std::env::var_os("HOME").unwrap_or_default();
    Path::new(&home).join(".postgresql").join("root.crt")
}

fn read_file(param: &str, path: &Path) -> Result<Vec<u8>, StoreError> {
    std::fs::read(path).map_err(|e| {
        invalid(format!(
            "URL parameter {param}: cannot read {}: {e}",
            path.display()
        ))
    })
}

fn read_certs(param: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, StoreError> {
    let bytes = read_file(param, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            invalid(format!(
                "URL parameter {param}: {} is not PEM certificates: {e}",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(invalid(format!(
            "URL parameter {param}: {} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

fn read_roots(path: &Path) -> Result<RootCertStore, StoreError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs("sslrootcert", path)? {
        roots.add(cert).map_err(|e| {
            invalid(format!(
                "URL parameter sslrootcert: {}: a certificate is not usable: {e}",
                path.display()
            ))
        })?;
    }
    Ok(roots)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, StoreError> {
    let bytes = read_file("sslkey", path)?;
    // The parse error names no content; it is not shown all the same.
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| {
        invalid(format!(
            "URL parameter sslkey: {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1; \
             unencrypted)",
            path.display()
        ))
    })
}

/// The server certificate check of `sslmode=prefer|require` without `sslrootcert`
/// (none: encryption without authentication, as libpq does) and of `verify-ca` (the
/// chain to `sslrootcert` and the validity dates, not the name). `verify-full` uses
/// rustls's own verifier. Handshake signatures are always checked, with the
/// provider's algorithms (as rustls's verifier does).
#[derive(Debug)]
struct Lenient {
    algorithms: WebPkiSupportedAlgorithms,
    /// `verify-ca`'s verifier; `None` checks no certificate.
    chain: Option<Arc<WebPkiServerVerifier>>,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            // webpki checks the name last: any other failure comes first.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(url: &str) -> Result<TlsParams, StoreError> {
        let p = crate::url::parse(url)?;
        TlsParams::from_params(&p.own)
    }

    #[test]
    fn sslmode_values_and_files_are_read_and_taken_out() {
        let p = crate::url::parse(
            "postgres://u@h/db?sslmode=verify-full&sslrootcert=/x/ca.pem&application_name=a",
        )
        .unwrap();
        assert_eq!(p.driver, "postgres://u@h/db?application_name=a");
        let t = TlsParams::from_params(&p.own).unwrap();
        assert_eq!(t.mode, SslMode::VerifyFull);
        assert_eq!(t.rootcert.as_deref(), Some(Path::new("/x/ca.pem")));
        assert_eq!(t.driver_mode(), DriverSslMode::Require);
        assert_eq!(params("postgres://u@h/db").unwrap().mode, SslMode::Prefer);
        assert_eq!(
            params("host=h sslmode=disable").unwrap().driver_mode(),
            DriverSslMode::Disable
        );
    }

    #[test]
    fn bad_values_and_missing_files_are_invalid_and_named() {
        let e = params("postgres://u@h/db?sslmode=verify-everything").unwrap_err();
        assert!(e.to_string().contains("sslmode"), "{e}");
        let e = params("postgres://u@h/db?sslcert=/c.pem").unwrap_err();
        assert!(e.to_string().contains("sslkey"), "{e}");
        let e = params("postgres://u@h/db?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem")
            .unwrap()
            .connector()
            .err()
            .unwrap();
        let text = e.to_string();
        assert!(
            text.contains("sslrootcert") && text.contains("/nonexistent/ca.pem"),
            "{text}"
        );
    }
}
