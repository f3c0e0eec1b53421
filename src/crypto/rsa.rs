//! The RSA signatures of API v3 (SHA256-RSA2048, PKCS#1 v1.5, base64):
//! the merchant's private key signs requests and app parameters; WeChat
//! Pay's public key, or a platform certificate, verifies answers and
//! notifications.
//!
//! All of it is ring (already in the tree through rustls) and
//! rustls-webpki for reading public keys and certificates: no second RSA
//! implementation. Keys are parsed once, when a client is built; a key that
//! does not parse is an error then, never a panic later.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, SubjectPublicKeyInfoDer};

/// Why a key, certificate or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RsaError {
    /// The PEM holds no usable private key.
    #[error(
        "no usable RSA private key in the PEM (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`)"
    )]
    PrivateKey,
    /// The PEM holds no usable public key.
    #[error("no usable RSA public key in the PEM (`PUBLIC KEY`)")]
    PublicKey,
    /// The certificate does not parse.
    #[error("the certificate does not parse")]
    Certificate,
    /// The signature is not base64, or does not verify.
    #[error("the signature does not verify")]
    BadSignature,
}

/// The merchant's private key, ready to sign.
pub struct MerchantKey {
    pair: RsaKeyPair,
    rng: SystemRandom,
}

impl fmt::Debug for MerchantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MerchantKey([redacted])")
    }
}

impl MerchantKey {
    /// Parses a PEM private key, PKCS#8 or PKCS#1.
    pub fn from_pem(pem: &str) -> Result<MerchantKey, RsaError> {
        let der =
            PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| RsaError::PrivateKey)?;
        let pair = match &der {
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            _ => return Err(RsaError::PrivateKey),
        }
        .map_err(|_| RsaError::PrivateKey)?;
        Ok(MerchantKey {
            pair,
            rng: SystemRandom::new(),
        })
    }

    /// Signs `message`: base64 of RSA PKCS#1 v1.5 over its SHA-256.
    pub fn sign(&self, message: &[u8]) -> String {
        let mut signature = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut signature)
            .expect("signing with a parsed RSA key and a buffer of its modulus length cannot fail");
        BASE64.encode(signature)
    }
}

/// A key that verifies WeChat Pay's signatures: its public key (public-key
/// mode) or one of its platform certificates (certificate mode).
#[derive(Clone)]
pub struct VerifyingKey {
    spki: SubjectPublicKeyInfoDer<'static>,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VerifyingKey")
    }
}

impl VerifyingKey {
    /// A PEM public key (`-----BEGIN PUBLIC KEY-----`).
    pub fn from_public_key_pem(pem: &str) -> Result<VerifyingKey, RsaError> {
        let spki = SubjectPublicKeyInfoDer::from_pem_slice(pem.as_bytes())
            .map_err(|_| RsaError::PublicKey)?;
        webpki::RawPublicKeyEntity::try_from(&spki).map_err(|_| RsaError::PublicKey)?;
        Ok(VerifyingKey { spki })
    }

    /// A PEM certificate; also returns its serial number in upper-case hex,
    /// as `Wechatpay-Serial` names it.
    pub fn from_certificate_pem(pem: &str) -> Result<(String, VerifyingKey), RsaError> {
        let der =
            CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|_| RsaError::Certificate)?;
        let cert = webpki::EndEntityCert::try_from(&der).map_err(|_| RsaError::Certificate)?;
        // DER writes a leading zero byte when the serial's top bit is set;
        // WeChat names the serial without it.
        let serial = cert.serial();
        let significant = serial.iter().position(|&b| b != 0).unwrap_or(serial.len());
        let serial = hex::encode_upper(&serial[significant.min(serial.len().saturating_sub(1))..]);
        Ok((
            serial,
            VerifyingKey {
                spki: cert.subject_public_key_info(),
            },
        ))
    }

    /// Verifies a base64 signature over `message`.
    pub fn verify(&self, message: &[u8], signature_b64: &str) -> Result<(), RsaError> {
        let signature = BASE64
            .decode(signature_b64.trim())
            .map_err(|_| RsaError::BadSignature)?;
        let entity =
            webpki::RawPublicKeyEntity::try_from(&self.spki).map_err(|_| RsaError::PublicKey)?;
        entity
            .verify_signature(
                webpki::ring::RSA_PKCS1_2048_8192_SHA256,
                message,
                &signature,
            )
            .map_err(|_| RsaError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MERCHANT_KEY: &str = include_str!("../sandbox/keys/merchant_key.pem");
    const MERCHANT_KEY_PKCS1: &str = include_str!("../sandbox/keys/merchant_key_pkcs1.pem");
    const MERCHANT_PUBLIC: &str = include_str!("../sandbox/keys/merchant_public_key.pem");
    const PLATFORM_KEY: &str = include_str!("../sandbox/keys/platform_key.pem");
    const PLATFORM_CERT: &str = include_str!("../sandbox/keys/platform_cert.pem");

    #[test]
    fn sign_then_verify_and_a_changed_byte_fails() {
        let public = VerifyingKey::from_public_key_pem(MERCHANT_PUBLIC).expect("public key");
        for pem in [MERCHANT_KEY, MERCHANT_KEY_PKCS1] {
            let key = MerchantKey::from_pem(pem).expect("private key");
            let message = b"POST\n/v3/pay/transactions/app\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n{}\n";
            let signature = key.sign(message);
            public.verify(message, &signature).expect("verifies");
            let mut changed = message.to_vec();
            changed[0] ^= 1;
            assert_eq!(
                public.verify(&changed, &signature),
                Err(RsaError::BadSignature)
            );
            assert_eq!(
                public.verify(message, "not base64!"),
                Err(RsaError::BadSignature)
            );
        }
    }

    #[test]
    fn certificates_give_their_serial_and_key() {
        let (serial, cert) =
            VerifyingKey::from_certificate_pem(PLATFORM_CERT).expect("certificate");
        assert_eq!(serial, "5157F09EFDC096DE15EBE81A47057A7232F1B8E1");
        let signature = MerchantKey::from_pem(PLATFORM_KEY).expect("key").sign(b"m");
        cert.verify(b"m", &signature)
            .expect("verifies with the certificate's key");
        let other = MerchantKey::from_pem(MERCHANT_KEY).expect("key").sign(b"m");
        assert!(cert.verify(b"m", &other).is_err());
    }

    #[test]
    fn bad_keys_are_errors() {
        assert_eq!(
            MerchantKey::from_pem("nope").err(),
            Some(RsaError::PrivateKey)
        );
        assert_eq!(
            MerchantKey::from_pem(MERCHANT_PUBLIC).err(),
            Some(RsaError::PrivateKey)
        );
        assert_eq!(
            VerifyingKey::from_public_key_pem(MERCHANT_KEY).err(),
            Some(RsaError::PublicKey)
        );
        assert_eq!(
            VerifyingKey::from_certificate_pem(MERCHANT_PUBLIC).err(),
            Some(RsaError::Certificate)
        );
        assert!(
            !format!("{:?}", MerchantKey::from_pem(MERCHANT_KEY).expect("key")).contains("BEGIN")
        );
    }
}
