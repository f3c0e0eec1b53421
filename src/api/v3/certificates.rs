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
        if item
            .get("serial_no")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.eq_ignore_ascii_case(&serial))
        {
            return Err(Error::MalformedResponse(
                "a platform certificate's serial_no is not its own".into(),
            ));
        }
        keys.insert(serial, key);
    }
    Ok(keys)
}
