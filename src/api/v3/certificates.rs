//! API v3 platform certificates: the `/v3/certificates` answer, decrypted
//! with the API v3 key, as a map of serial to verifying key.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::crypto::aead;
use crate::crypto::rsa::VerifyingKey;
use crate::error::{Error, Result};

/// The platform certificates of a `/v3/certificates` answer, decrypted with
/// the API v3 key: serial to key.
pub fn platform_certificates(
    map: &Map<String, Value>,
    api_v3_key: &[u8],
) -> Result<HashMap<String, VerifyingKey>> {
    let list = map
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::MalformedResponse("the certificates answer has no data".into()))?;
    let mut keys = HashMap::new();
    for item in list {
        let sealed = item.get("encrypt_certificate").ok_or_else(|| {
            Error::MalformedResponse("a certificate has no encrypt_certificate".into())
        })?;
        let field = |k: &str| sealed.get(k).and_then(Value::as_str).unwrap_or_default();
        let pem = aead::decrypt(
            api_v3_key,
            field("nonce"),
            field("associated_data"),
            field("ciphertext"),
        )
        .map_err(|e| Error::MalformedResponse(format!("a platform certificate: {e}")))?;
        let (serial, key) = VerifyingKey::from_certificate_pem(&pem)
            .map_err(|e| Error::MalformedResponse(format!("a platform certificate: {e}")))?;
        // Keyed by the serial_no WeChat gives (the spelling its
        // Wechatpay-Serial headers use), once it is the certificate's own.
        let serial = match item.get("serial_no").and_then(Value::as_str) {
            Some(given) if given.eq_ignore_ascii_case(&serial) => given.to_owned(),
            Some(_) => {
                return Err(Error::MalformedResponse(
                    "a platform certificate's serial_no is not its own".into(),
                ))
            }
            None => serial,
        };
        keys.insert(serial, key);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLATFORM_KEY: &str = include_str!("../../sandbox/keys/platform_key.pem");
    const API_V3_KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    /// A certificate for the sandbox's platform key with serial `serial`.
    fn certificate(serial: &[u8]) -> String {
        let key = rcgen::KeyPair::from_pem(PLATFORM_KEY).expect("RSA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.serial_number = Some(rcgen::SerialNumber::from_slice(serial));
        params.self_signed(&key).expect("certificate").pem()
    }

    fn answer(serial_no: &str, pem: &str) -> Map<String, Value> {
        let ciphertext =
            aead::encrypt(API_V3_KEY, "0123456789ab", "certificate", pem).expect("seals");
        serde_json::json!({ "data": [{
            "serial_no": serial_no,
            "encrypt_certificate": {
                "algorithm": "AEAD_AES_256_GCM",
                "nonce": "0123456789ab",
                "associated_data": "certificate",
                "ciphertext": ciphertext,
            },
        }]})
        .as_object()
        .cloned()
        .expect("object")
    }

    #[test]
    fn a_serial_with_its_top_bit_set_is_named_without_the_der_zero() {
        let pem = certificate(&[0x80, 0x1a, 0x2b, 0x3c]);
        let (serial, _) = VerifyingKey::from_certificate_pem(&pem).expect("certificate");
        assert_eq!(serial, "801A2B3C");
        let keys = platform_certificates(&answer("801A2B3C", &pem), API_V3_KEY).expect("accepted");
        assert!(keys.contains_key("801A2B3C"));
        // WeChat's spelling is the key, whatever its case.
        let keys = platform_certificates(&answer("801a2b3c", &pem), API_V3_KEY).expect("accepted");
        assert!(keys.contains_key("801a2b3c"));
    }

    #[test]
    fn a_serial_that_is_not_the_certificates_own_is_refused() {
        let pem = certificate(&[0x11, 0x22]);
        assert!(platform_certificates(&answer("1122", &pem), API_V3_KEY).is_ok());
        assert!(platform_certificates(&answer("001122", &pem), API_V3_KEY).is_err());
        assert!(platform_certificates(&answer("1123", &pem), API_V3_KEY).is_err());
    }
}
