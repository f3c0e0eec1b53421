//! Nonce strings, from a cryptographic random source, injectable for tests.

use rand::Rng;

/// A source of `noncestr` values.
pub trait NonceSource: Send + Sync {
    /// A fresh nonce of at most 32 characters.
    fn nonce(&self) -> String;
}

/// 32 lower-case hex characters (128 bits) from rand's thread-local CSPRNG
/// (ChaCha, seeded and periodically reseeded from the operating system).
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomNonce;

impl NonceSource for RandomNonce {
    fn nonce(&self) -> String {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        hex::encode(bytes)
    }
}

/// Always the same nonce (for tests and reproducible examples).
#[derive(Debug, Clone)]
pub struct FixedNonce(pub String);

impl NonceSource for FixedNonce {
    fn nonce(&self) -> String {
        self.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_nonces_are_hex_and_differ() {
        let a = RandomNonce.nonce();
        let b = RandomNonce.nonce();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
