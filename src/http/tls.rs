//! TLS for the production transport: rustls with the ring provider and the
//! Mozilla roots, and the merchant's client certificate (PEM or PKCS#12) for
//! mutual TLS.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::Zeroizing;

use crate::config::ClientCertConfig;
use crate::error::{Error, Result};
use crate::util::key_file;
use crate::util::secret::Secret;

/// rustls with ring and the Mozilla roots, without touching the process-wide
/// default provider (the host may have chosen its own).
pub(crate) fn tls_config() -> Result<rustls::ClientConfig> {
    Ok(tls_builder(mozilla_roots())?.with_no_client_auth())
}

/// The Mozilla root store, the only roots a production transport trusts.
pub(crate) fn mozilla_roots() -> rustls::RootCertStore {
    rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

pub(crate) fn tls_builder(
    roots: rustls::RootCertStore,
) -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config("api_base", format!("TLS setup failed: {e}")))?
        .with_root_certificates(roots))
}

/// The merchant's certificate chain and key from the configuration, read and
/// parsed once.
pub(crate) fn client_identity(
    cert: &ClientCertConfig,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let bad = |reason: String| Error::config("client_cert", reason);
    if let Some(path) = &cert.pkcs12_file {
        let data = key_file::read_bytes("client_cert.pkcs12_file", path, "client_cert.pem")?;
        let password = cert
            .pkcs12_password
            .as_ref()
            .map(Secret::expose)
            .unwrap_or_default();
        return pkcs12_identity(&data, password).map_err(bad);
    }
    let read =
        |field: &str, path: &std::path::Path| key_file::read_bytes(field, path, "client_cert.pem");
    let inline = |pem: &Secret| Zeroizing::new(pem.expose().as_bytes().to_vec());
    let (cert_pem, key_pem): (Zeroizing<Vec<u8>>, Zeroizing<Vec<u8>>) = match (&cert.pem, &cert.cert_pem_file, &cert.key_pem_file) {
        (Some(pem), None, None) => (inline(pem), inline(pem)),
        (None, Some(cert_file), None) => {
            let both = read("client_cert.cert_pem_file", cert_file)?;
            (both.clone(), both)
        }
        (None, Some(cert_file), Some(key_file)) => (
            read("client_cert.cert_pem_file", cert_file)?,
            read("client_cert.key_pem_file", key_file)?,
        ),
        _ => {
            return Err(bad(
                "give either pem, or cert_pem_file (with key_pem_file when the key is apart), or pkcs12_file with pkcs12_password".into(),
            ))
        }
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad(format!("the certificate PEM does not parse ({e})")))?;
    if chain.is_empty() {
        return Err(bad("no CERTIFICATE block in the PEM".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| bad(format!("no usable PRIVATE KEY block in the PEM ({e})")))?;
    Ok((chain, key))
}

/// The first key and its certificate chain of a PKCS#12 file (WeChat's
/// `apiclient_cert.p12` uses the legacy RC2/3DES encryption; AES works too).
fn pkcs12_identity(
    data: &[u8],
    password: &str,
) -> std::result::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let store = p12_keystore::KeyStore::from_pkcs12(
        data,
        password,
        p12_keystore::Pkcs12ImportPolicy::Relaxed,
    )
    .map_err(|e| format!("the PKCS#12 file does not open with this password ({e})"))?;
    let (_, chain) = store
        .private_key_chain()
        .ok_or_else(|| "the PKCS#12 file holds no private key".to_owned())?;
    let certs: Vec<CertificateDer<'static>> = chain
        .certs()
        .iter()
        .map(|c| CertificateDer::from(c.as_der().to_vec()))
        .collect();
    if certs.is_empty() {
        return Err("the PKCS#12 file holds no certificate for its key".into());
    }
    let key = PrivateKeyDer::Pkcs8(chain.key().as_der().to_vec().into());
    Ok((certs, key))
}
