//! Nonce strings, from a cryptographic random source, injectable for tests.

use std::cell::RefCell;

use rand::Rng;

/// A source of `noncestr` values.
pub trait NonceSource: Send + Sync {
    /// A fresh nonce of at most 32 characters.
    fn nonce(&self) -> String;
}

/// 32 lower-case hex characters (128 bits) from rand's thread-local CSPRNG
/// (ChaCha, seeded and periodically reseeded from the operating system),
/// reseeded from the operating system in a process forked from this one: a
/// prefork server's workers never draw the same nonces, request nonces or
/// Redis lock owners.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomNonce;

thread_local! {
    /// Notices that this thread now runs in a forked child. rand's generator
    /// does not (rand 0.9 dropped its fork protection); forkguard's `atfork`
    /// flavour costs an atomic load per check, not a `getpid` system call.
    static FORKS: RefCell<forkguard::Guard> = RefCell::new(forkguard::new());
}

impl NonceSource for RandomNonce {
    fn nonce(&self) -> String {
        let mut rng = rand::rng();
        if FORKS.with(|forks| forks.borrow_mut().detected_fork()) {
            // The inherited state must never be drawn from again: without
            // the OS generator there is no nonce to give (the C and uniffi
            // boundaries turn this panic into an error).
            rng.reseed()
                .expect("the operating system's random generator answers after a fork");
        }
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
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
