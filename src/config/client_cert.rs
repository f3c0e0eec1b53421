//! API v2's client certificate in the configuration: where the merchant's
//! certificate and key for mutual TLS come from.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use crate::util::secret::Secret;

/// API v2: the merchant's client certificate for refunds (mutual TLS), read
/// once when the client is built (a bad file or password is `InvalidConfig`
/// naming `client_cert`).
///
/// Give one of: `pem` (the certificate and private key as inline PEM text);
/// `cert_pem_file` (with `key_pem_file` when the key is in a file of its
/// own); or `pkcs12_file` with `pkcs12_password` (WeChat's
/// `apiclient_cert.p12`, whose password is the `mch_id`; its legacy RC2/3DES
/// encryption is supported).
///
/// Holds secrets (`pem`, `pkcs12_password`): never log it.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    feature = "uniffi",
    derive(serde::Serialize, uniffi::Record),
    uniffi(name = "ClientCert")
)]
pub struct ClientCertConfig {
    /// A PEM file holding the certificate (`apiclient_cert.pem`), and the key
    /// unless `key_pem_file` is given.
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub cert_pem_file: Option<PathBuf>,
    /// A PEM file holding the private key (`apiclient_key.pem`).
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub key_pem_file: Option<PathBuf>,
    /// The certificate and private key as inline PEM text.
    #[serde(default)]
    #[cfg_attr(
        feature = "uniffi",
        serde(serialize_with = "crate::util::secret::serialize_exposed")
    )]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub pem: Option<Secret>,
    /// A PKCS#12 file (`apiclient_cert.p12`).
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub pkcs12_file: Option<PathBuf>,
    /// The PKCS#12 password (the `mch_id` for WeChat's files).
    #[serde(default)]
    #[cfg_attr(
        feature = "uniffi",
        serde(serialize_with = "crate::util::secret::serialize_exposed")
    )]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub pkcs12_password: Option<Secret>,
}

// A file name is a string in the bindings. Lowering is lossy only for a path
// that is not UTF-8, which a binding never gave.
#[cfg(feature = "uniffi")]
uniffi::custom_type!(
    /// A file's path.
    PathBuf,
    String,
    {
        remote,
        lower: |path| path.to_string_lossy().into_owned(),
        try_lift: |text| Ok(PathBuf::from(text)),
    }
);

impl fmt::Debug for ClientCertConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertConfig")
            .field("cert_pem_file", &self.cert_pem_file)
            .field("key_pem_file", &self.key_pem_file)
            .field("pem", &self.pem.as_ref().map(|_| "[redacted]"))
            .field("pkcs12_file", &self.pkcs12_file)
            .finish_non_exhaustive()
    }
}
