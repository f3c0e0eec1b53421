//! The encryption of `req_info` in API v2 refund notifications: AES-256-ECB
//! with PKCS#7 padding, keyed with the lower-case hex MD5 of the API key,
//! base64 on the wire (PROTOCOL.md 4).
//!
//! ECB is WeChat's choice, not ours: it hides the refund's fields from
//! onlookers but proves nothing about who made them, so a decrypted refund
//! notification is checked against the merchant's ids like any other.

use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use aes::Aes256;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use md5::{Digest, Md5};

use crate::util::secret::Secret;

const BLOCK: usize = 16;

/// Why `req_info` could not be decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReqInfoError {
    /// Not base64.
    #[error("req_info is not base64")]
    Base64,
    /// Not a whole number of AES blocks, or bad padding (wrong key or tampered).
    #[error("req_info does not decrypt with this API key")]
    Decrypt,
    /// The plaintext is not UTF-8.
    #[error("req_info plaintext is not UTF-8")]
    Utf8,
}

fn cipher(api_key: &Secret) -> Aes256 {
    // The derived key, wiped when dropped (as is the cipher's key schedule:
    // aes's `zeroize` feature).
    let key = zeroize::Zeroizing::new(hex::encode(Md5::digest(api_key.expose().as_bytes())));
    Aes256::new_from_slice(key.as_bytes()).expect("a hex MD5 is 32 bytes, an AES-256 key")
}

fn as_block(chunk: &mut [u8]) -> &mut aes::Block {
    chunk
        .try_into()
        .expect("chunks_exact yields whole 16-byte blocks")
}

/// Decrypts a base64 `req_info` to its XML text.
pub fn decrypt(req_info: &str, api_key: &Secret) -> Result<String, ReqInfoError> {
    let mut data = BASE64
        .decode(req_info.trim())
        .map_err(|_| ReqInfoError::Base64)?;
    if data.is_empty() || data.len() % BLOCK != 0 {
        return Err(ReqInfoError::Decrypt);
    }
    let cipher = cipher(api_key);
    for chunk in data.chunks_exact_mut(BLOCK) {
        cipher.decrypt_block(as_block(chunk));
    }
    let pad = usize::from(*data.last().ok_or(ReqInfoError::Decrypt)?);
    if pad == 0
        || pad > BLOCK
        || !data[data.len() - pad..]
            .iter()
            .all(|&b| usize::from(b) == pad)
    {
        return Err(ReqInfoError::Decrypt);
    }
    data.truncate(data.len() - pad);
    String::from_utf8(data).map_err(|_| ReqInfoError::Utf8)
}

/// Encrypts `plaintext` as WeChat does (for the sandbox and tests).
pub fn encrypt(plaintext: &str, api_key: &Secret) -> String {
    let mut data = plaintext.as_bytes().to_vec();
    let pad = BLOCK - data.len() % BLOCK;
    data.extend(std::iter::repeat_n(u8::try_from(pad).unwrap_or(16), pad));
    let cipher = cipher(api_key);
    for chunk in data.chunks_exact_mut(BLOCK) {
        cipher.encrypt_block(as_block(chunk));
    }
    BASE64.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tampering() {
        let key = Secret::new("192006250b4c09247ec02edce69f6a2d");
        let xml =
            "<root><out_refund_no><![CDATA[R1]]></out_refund_no><refund_fee>29</refund_fee></root>";
        let sealed = encrypt(xml, &key);
        assert_eq!(decrypt(&sealed, &key).as_deref(), Ok(xml));
        assert_eq!(
            decrypt(&sealed, &Secret::new("other")),
            Err(ReqInfoError::Decrypt)
        );
        assert_eq!(decrypt("%%%", &key), Err(ReqInfoError::Base64));
        assert_eq!(
            decrypt(&BASE64.encode([1u8; 15]), &key),
            Err(ReqInfoError::Decrypt)
        );
    }

    /// AES-256-ECB of one block, against FIPS-197 appendix C.3.
    #[test]
    fn aes_256_block_matches_fips_197() {
        let key: Vec<u8> = (0u8..32).collect();
        let cipher = Aes256::new_from_slice(&key).expect("32-byte key");
        let mut block: Vec<u8> = (0u8..16).map(|i| i * 0x11).collect();
        cipher.encrypt_block(as_block(&mut block));
        assert_eq!(hex::encode(&block), "8ea2b7ca516745bfeafc49904b496089");
    }
}
