//! `AEAD_AES_256_GCM`, the encryption of API v3 notification resources and
//! downloaded platform certificates: AES-GCM keyed with the API v3 key, a
//! 12-byte nonce, associated data, base64 ciphertext whose last 16 bytes are
//! the tag (PROTOCOL.md 5). ring does the cryptography.
//!
//! Keys are 32 bytes (AES-256), as an API v3 key is; the tests use the GCM
//! specification's own AES-256 test case.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};

/// Why a resource did not decrypt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AeadError {
    /// The key is not 32 bytes.
    #[error("the AES-GCM key must be 32 bytes")]
    KeyLength,
    /// The nonce is not 12 bytes.
    #[error("the AES-GCM nonce must be 12 bytes")]
    NonceLength,
    /// The ciphertext is not base64.
    #[error("the ciphertext is not base64")]
    Base64,
    /// The tag does not match: wrong key, or the ciphertext, nonce or
    /// associated data were changed.
    #[error("the ciphertext does not authenticate under the API v3 key")]
    Tag,
    /// The plaintext is not UTF-8.
    #[error("the plaintext is not UTF-8")]
    Utf8,
}

fn key(key: &[u8]) -> Result<LessSafeKey, AeadError> {
    if key.len() != 32 {
        return Err(AeadError::KeyLength);
    }
    Ok(LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, key).map_err(|_| AeadError::KeyLength)?,
    ))
}

fn nonce(nonce: &str) -> Result<Nonce, AeadError> {
    Nonce::try_assume_unique_for_key(nonce.as_bytes()).map_err(|_| AeadError::NonceLength)
}

/// Decrypts a base64 `ciphertext` (tag appended) to text.
pub fn decrypt(
    api_v3_key: &[u8],
    nonce_text: &str,
    associated_data: &str,
    ciphertext: &str,
) -> Result<String, AeadError> {
    let key = key(api_v3_key)?;
    let nonce = nonce(nonce_text)?;
    let mut data = BASE64
        .decode(ciphertext.trim())
        .map_err(|_| AeadError::Base64)?;
    let plain = key
        .open_in_place(nonce, Aad::from(associated_data.as_bytes()), &mut data)
        .map_err(|_| AeadError::Tag)?;
    String::from_utf8(plain.to_vec()).map_err(|_| AeadError::Utf8)
}

/// Encrypts `plaintext` as WeChat does (for the sandbox and tests).
pub fn encrypt(
    api_v3_key: &[u8],
    nonce_text: &str,
    associated_data: &str,
    plaintext: &str,
) -> Result<String, AeadError> {
    let key = key(api_v3_key)?;
    let nonce = nonce(nonce_text)?;
    let mut data = plaintext.as_bytes().to_vec();
    key.seal_in_place_append_tag(nonce, Aad::from(associated_data.as_bytes()), &mut data)
        .map_err(|_| AeadError::Tag)?;
    Ok(BASE64.encode(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test case 14 of the GCM specification (McGrew and Viega, "The
    /// Galois/Counter Mode of Operation", appendix B): a 256-bit zero key, a
    /// 96-bit zero IV, 16 zero bytes of plaintext, no associated data.
    #[test]
    fn gcm_specification_test_case_14() {
        let key = [0u8; 32];
        let nonce = "\0".repeat(12);
        let plain = "\0".repeat(16);
        let expected =
            hex::decode("cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919")
                .expect("hex");
        let sealed = encrypt(&key, &nonce, "", &plain).expect("seals");
        assert_eq!(BASE64.decode(&sealed).expect("base64"), expected);
        assert_eq!(
            decrypt(&key, &nonce, "", &sealed).as_deref(),
            Ok(plain.as_str())
        );
    }

    /// The public example of PROTOCOL.md 5 uses a 16-byte key, which is not
    /// an API v3 key: refused.
    #[test]
    fn a_16_byte_key_is_refused() {
        let plain = decrypt(
            b"testAPIv3Key0000",
            "wCq51qZv4Yfg",
            "Dl56FrqWQJF1t9LtC3vEUsniZKvbqdR8",
            "FsdXzxryWfKwvLJKf8LG/ToRPTRh8RN9wROC",
        );
        assert_eq!(plain, Err(AeadError::KeyLength));
    }

    #[test]
    fn tampering_fails() {
        let key = b"0123456789abcdef0123456789abcdef";
        let sealed = encrypt(
            key,
            "wCq51qZv4Yfg",
            "transaction",
            "{\"amount\":{\"total\":29}}",
        )
        .expect("seals");
        assert_eq!(
            decrypt(key, "wCq51qZv4Yfg", "transaction", &sealed).as_deref(),
            Ok("{\"amount\":{\"total\":29}}")
        );
        let mut bytes = BASE64.decode(&sealed).expect("base64");
        bytes[3] ^= 1;
        assert_eq!(
            decrypt(key, "wCq51qZv4Yfg", "transaction", &BASE64.encode(&bytes)),
            Err(AeadError::Tag)
        );
        assert_eq!(
            decrypt(key, "wCq51qZv4Yfh", "transaction", &sealed),
            Err(AeadError::Tag)
        );
        assert_eq!(
            decrypt(key, "wCq51qZv4Yfg", "certificate", &sealed),
            Err(AeadError::Tag)
        );
        assert_eq!(
            decrypt(b"short", "wCq51qZv4Yfg", "", &sealed),
            Err(AeadError::KeyLength)
        );
        assert_eq!(
            decrypt(key, "short", "", &sealed),
            Err(AeadError::NonceLength)
        );
    }
}
