//! A string that must never be printed: keys, app secrets and access tokens.
//!
//! `Debug` and `Display` show `[redacted]`; the bytes are zeroed when dropped.
//! The only way to read the value is [`Secret::expose`], which makes every use
//! of a secret visible in review.
//!
//! With the `uniffi` feature a `Secret` is a uniffi custom type: a plain
//! string in Kotlin, Swift and Python, wrapped here as soon as it crosses, so
//! the keys of a binding's configuration are redacted and zeroized like the
//! core's own.

use std::fmt;

use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

/// A secret string (a key, an app secret or an access token).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps `value`; from here on it is only shown as `[redacted]`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(Zeroizing::new(value.into()))
    }

    /// The secret value, for signing or sending. Never log what this returns.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value)
    }
}

// uniffi's own conversion, not a hand-written wrapper type: the bindings see
// a string, Rust code sees a `Secret` from the first moment.
#[cfg(feature = "uniffi")]
uniffi::custom_type!(
    /// A secret (a key, a password, PEM text of a private key): a plain
    /// string here, kept redacted and zeroized in the library. Never log it.
    Secret,
    String,
    {
        lower: |secret| secret.expose().to_owned(),
        try_lift: |text| Ok(Secret::new(text)),
    }
);

/// Serializes an optional secret as its plain text, for a document that the
/// library parses straight back (a binding's configuration on its way to
/// [`crate::Config::from_json`]); never for output.
#[cfg(feature = "uniffi")]
pub(crate) fn serialize_exposed<S: serde::Serializer>(
    secret: &Option<Secret>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&secret.as_ref().map(Secret::expose), serializer)
}

impl<'de> Deserialize<'de> for Secret {
    /// Reads a JSON string. Anything else is refused with a message that
    /// does not repeat the value (serde's would: `invalid type: integer
    /// 13333301313`, and a mistyped key is still a key).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecretVisitor;

        impl serde::de::Visitor<'_> for SecretVisitor {
            type Value = Secret;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret::new(v))
            }

            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Secret, E> {
                Ok(Secret::new(v))
            }

            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Secret, E> {
                Err(E::custom("a secret must be a JSON string"))
            }

            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Secret, E> {
                Err(E::custom("a secret must be a JSON string"))
            }

            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Secret, E> {
                Err(E::custom("a secret must be a JSON string"))
            }

            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Secret, E> {
                Err(E::custom("a secret must be a JSON string"))
            }

            fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<Secret, E> {
                Err(E::custom("a secret must be a JSON string"))
            }
        }

        deserializer.deserialize_any(SecretVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mistyped_secret_is_not_repeated_in_the_error() {
        let err = serde_json::from_str::<Secret>("13333301313").expect_err("not a string");
        assert!(!err.to_string().contains("13333301313"), "{err}");
        let ok: Secret = serde_json::from_str("\"k\"").expect("a string");
        assert_eq!(ok.expose(), "k");
    }

    #[test]
    fn debug_and_display_redact() {
        let s = Secret::new("8934e7d15453e97507ef794cf7b0519d");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(s.expose(), "8934e7d15453e97507ef794cf7b0519d");
    }
}
