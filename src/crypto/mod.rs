//! The cryptography every generation uses: canonical strings and their
//! MD5 / SHA1 / HMAC-SHA256 signatures, RSA, and AES-GCM.

pub mod aead;
pub mod rsa;
pub mod sign;
