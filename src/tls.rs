//! TLS both ways, with rustls and its ring provider (no OpenSSL): the client side of https hook
//! URLs ([`ClientTls`], used by [`crate::client::HttpClient`]), the server side of
//! `serve --tls-cert/--tls-key` and `--tls-self-signed` ([`ServerTls`]), and the sentences a
//! person reads when a handshake fails ([`describe`]).
//!
//! Trust, as curl and Go decide it: the platform's trust store (`/etc/ssl/certs` and the like,
//! read by `rustls-native-certs`), plus every `--ca-cert` PEM file; `--insecure-skip-verify`
//! takes any certificate (the handshake's signatures are still checked, so the peer holds the
//! key of the certificate it showed).

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// The ALPN protocols hubmock accepts when it serves https, preferred first.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// How hubmock's outbound requests (deliveries, scenario and fuzzer requests) trust `https://`
/// receivers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// More certificate authorities (PEM, one or more certificates each), trusted beside the
    /// platform's: a team's own CA, or a receiver's self-signed certificate.
    pub ca_certs: Vec<Vec<u8>>,
    /// Take any certificate (`--insecure-skip-verify`).
    pub insecure_skip_verify: bool,
}

impl ClientTls {
    /// Trust as the command line says: the PEM files of `--ca-cert` (read and checked here; the
    /// error names the file) and `--insecure-skip-verify`.
    pub fn from_files(
        ca_files: &[std::path::PathBuf],
        insecure_skip_verify: bool,
    ) -> Result<ClientTls, String> {
        let mut tls = ClientTls {
            insecure_skip_verify,
            ..ClientTls::default()
        };
        for path in ca_files {
            tls.add_ca_file(path)?;
        }
        Ok(tls)
    }

    /// Adds the PEM certificates of `path` (`--ca-cert FILE`); the error names the file and what
    /// is wrong with it.
    pub fn add_ca_file(&mut self, path: &Path) -> Result<(), String> {
        let pem = std::fs::read(path)
            .map_err(|err| format!("cannot read the CA certificate {}: {err}", path.display()))?;
        certificates(&pem).map_err(|err| format!("{}: {err}", path.display()))?;
        self.ca_certs.push(pem);
        Ok(())
    }

    /// Checks that every CA certificate parses, without reading the platform's trust store
    /// (cheap: for a start that must stay fast).
    pub fn check(&self) -> Result<(), String> {
        for pem in &self.ca_certs {
            for cert in certificates(pem)? {
                webpki_anchor(&cert)?;
            }
        }
        Ok(())
    }

    /// The rustls configuration: the platform's roots and `ca_certs` (or no verification).
    pub fn config(&self) -> Result<rustls::ClientConfig, String> {
        let provider = provider();
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|err| format!("TLS setup failed: {err}"))?;
        // No ALPN here: the connector offers HTTP/2 and HTTP/1.1 itself.
        let config = if self.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth()
        } else {
            let mut roots = rustls::RootCertStore::empty();
            // The platform's store: certificates it cannot parse are skipped, as curl does.
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
            for pem in &self.ca_certs {
                for cert in certificates(pem)? {
                    roots
                        .add(cert)
                        .map_err(|err| format!("a --ca-cert certificate is not usable: {err}"))?;
                }
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        Ok(config)
    }
}

/// Whether `cert` can serve as a trust anchor (what [`rustls::RootCertStore::add`] asks).
fn webpki_anchor(cert: &CertificateDer<'_>) -> Result<(), String> {
    rustls::RootCertStore::empty()
        .add(cert.clone().into_owned())
        .map_err(|err| format!("a --ca-cert certificate is not usable: {err}"))
}

/// The crypto provider: ring (built with `cc` alone: no cmake, no OpenSSL). rustls 0.23.48
/// deprecates `ring::default_provider` for want of post-quantum key exchange, which a test
/// double's TLS does not need; the allow keeps a lock-file update from failing clippy.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM document; an error when it holds none or one is malformed.
fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| format!("not a PEM certificate: {err}"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned());
    }
    Ok(certs)
}

/// `--insecure-skip-verify`: every certificate is taken; the handshake's signatures are still
/// verified with the provider's algorithms.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS failure in words a person understands, if `err` (or one of its causes) is one:
/// `certificate for 127.0.0.1 is not valid for receiver.local`, `unknown issuer: ...`.
pub fn describe(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(err);
    while let Some(error) = next {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(words(tls));
        }
        // io::Error's source() skips the error it wraps (and hyper-rustls wraps tokio-rustls's
        // io::Error in another): look inside.
        next = match error.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => error.source(),
        };
    }
    None
}

fn words(error: &rustls::Error) -> String {
    let rustls::Error::InvalidCertificate(cert) = error else {
        return match error {
            rustls::Error::AlertReceived(alert) => {
                format!("TLS handshake failed: the receiver sent the alert {alert:?}")
            }
            rustls::Error::NoApplicationProtocol => {
                "TLS handshake failed: no HTTP version both sides speak (ALPN)".to_owned()
            }
            other => format!("TLS handshake failed: {other}"),
        };
    };
    let skip = "(trust it with --ca-cert FILE, or --insecure-skip-verify)";
    match cert {
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => {
            let presented = if presented.is_empty() {
                "no name".to_owned()
            } else {
                presented
                    .iter()
                    .map(|name| bare_name(name))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!(
                "certificate for {presented} is not valid for {}",
                expected.to_str()
            )
        }
        CertificateError::NotValidForName => {
            "the receiver's certificate is not valid for the hook URL's host".to_owned()
        }
        CertificateError::ExpiredContext { not_after, .. } => format!(
            "certificate expired: not valid after {}",
            unix_time(*not_after)
        ),
        CertificateError::Expired => "certificate expired".to_owned(),
        CertificateError::NotValidYetContext { not_before, .. } => format!(
            "certificate not valid yet: not valid before {}",
            unix_time(*not_before)
        ),
        CertificateError::NotValidYet => "certificate not valid yet".to_owned(),
        CertificateError::UnknownIssuer => format!(
            "unknown issuer: the receiver's certificate is not signed by a certificate \
             authority hubmock trusts {skip}"
        ),
        CertificateError::BadSignature => "certificate has a bad signature".to_owned(),
        other => format!("invalid certificate: {other}"),
    }
}

/// A subject name as rustls shows it (`DnsName("receiver.local")`), bare: `receiver.local`.
fn bare_name(name: &str) -> &str {
    match (name.find('('), name.rfind(')')) {
        (Some(open), Some(close)) if open < close => name[open + 1..close].trim_matches('"'),
        _ => name,
    }
}

/// RFC 3339, as hubmock writes every time.
fn unix_time(time: UnixTime) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(time.as_secs());
    humantime::format_rfc3339_seconds(at).to_string()
}

/// How hubmock serves https (`serve --tls-cert/--tls-key` or `--tls-self-signed`).
#[derive(Clone, Debug)]
pub struct ServerTls {
    /// The certificate chain (PEM), the server's certificate first.
    pub cert_pem: Vec<u8>,
    /// The private key of the first certificate (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_pem: Vec<u8>,
    /// The certificate authority a client trusts to take `cert_pem` (PEM), when hubmock made
    /// it (`--tls-self-signed`); `None` for a given certificate.
    pub ca_pem: Option<String>,
}

impl ServerTls {
    /// A certificate and key read from PEM files; the error names the file and what is wrong.
    pub fn from_files(cert: &Path, key: &Path) -> Result<ServerTls, String> {
        let read = |path: &Path, what: &str| {
            std::fs::read(path)
                .map_err(|err| format!("cannot read the {what} {}: {err}", path.display()))
        };
        let tls = ServerTls {
            cert_pem: read(cert, "TLS certificate")?,
            key_pem: read(key, "TLS key")?,
            ca_pem: None,
        };
        certificates(&tls.cert_pem).map_err(|err| format!("{}: {err}", cert.display()))?;
        PrivateKeyDer::from_pem_slice(&tls.key_pem)
            .map_err(|err| format!("{}: not a PEM private key: {err}", key.display()))?;
        Ok(tls)
    }

    /// A new certificate authority and a certificate it signs for `hosts` (names or IP
    /// addresses; `localhost` and `127.0.0.1` are always among them), valid from a day ago for
    /// a year. The CA is what a client trusts ([`ServerTls::ca_pem`]).
    pub fn self_signed(hosts: &[String]) -> Result<ServerTls, String> {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let fail = |err: rcgen::Error| format!("cannot make a self-signed certificate: {err}");
        let now = time::OffsetDateTime::now_utc();
        let (from, until) = (
            now - time::Duration::days(1),
            now + time::Duration::days(365),
        );
        let mut ca_params = CertificateParams::default();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "hubmock test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        (ca_params.not_before, ca_params.not_after) = (from, until);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(fail)?)
            .map_err(fail)?;

        let mut names: Vec<String> = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        for host in hosts {
            if !names.contains(host) {
                names.push(host.clone());
            }
        }
        let mut params = CertificateParams::new(names).map_err(fail)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "hubmock");
        (params.not_before, params.not_after) = (from, until);
        let key = KeyPair::generate().map_err(fail)?;
        let cert = params.signed_by(&key, &ca).map_err(fail)?;
        Ok(ServerTls {
            cert_pem: cert.pem().into_bytes(),
            key_pem: key.serialize_pem().into_bytes(),
            ca_pem: Some(ca.pem()),
        })
    }

    /// The rustls configuration: this certificate, HTTP/2 and HTTP/1.1 by ALPN.
    pub fn config(&self) -> Result<Arc<rustls::ServerConfig>, String> {
        let provider = provider();
        let chain = certificates(&self.cert_pem)?;
        let key = PrivateKeyDer::from_pem_slice(&self.key_pem)
            .map_err(|err| format!("not a PEM private key: {err}"))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| format!("TLS setup failed: {err}"))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|err| format!("the TLS certificate and key do not go together: {err}"))?;
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}
