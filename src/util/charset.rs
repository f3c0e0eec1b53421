//! The character sets a legacy package may be hashed and percent-encoded in.
//!
//! The 2014 protocol lets the merchant choose `input_charset=UTF-8` or `GBK`;
//! with GBK the MD5 is taken over the GBK bytes and every value is
//! percent-encoded byte by byte from its GBK form.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The charset of the values in a legacy package. Read from a name by
/// [`Charset::from_name`] wherever a name is read (a configuration, a
/// signing call, a notification): one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub enum Charset {
    /// `UTF-8` (the default).
    #[default]
    #[serde(rename = "UTF-8")]
    Utf8,
    /// `GBK`, the simplified-Chinese code page.
    #[serde(rename = "GBK")]
    Gbk,
}

/// A text that has a character the charset cannot represent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("has a character that {charset} cannot represent")]
pub struct UnmappableCharacter {
    /// The charset that was asked for.
    pub charset: Charset,
}

impl TryFrom<String> for Charset {
    type Error = String;

    fn try_from(name: String) -> Result<Charset, String> {
        Charset::from_name(&name).ok_or_else(|| "must be UTF-8 or GBK".to_owned())
    }
}

impl Charset {
    /// The name the protocol uses for this charset (`UTF-8`, `GBK`).
    pub fn as_str(self) -> &'static str {
        match self {
            Charset::Utf8 => "UTF-8",
            Charset::Gbk => "GBK",
        }
    }

    /// Parses a protocol name, ignoring ASCII case (`utf-8`, `GBK`, `gbk`).
    pub fn from_name(name: &str) -> Option<Charset> {
        if name.eq_ignore_ascii_case("UTF-8") || name.eq_ignore_ascii_case("UTF8") {
            Some(Charset::Utf8)
        } else if name.eq_ignore_ascii_case("GBK") {
            Some(Charset::Gbk)
        } else {
            None
        }
    }

    /// The bytes of `text` in this charset; fails rather than substituting `?`.
    pub fn encode<'a>(self, text: &'a str) -> Result<Cow<'a, [u8]>, UnmappableCharacter> {
        match self {
            Charset::Utf8 => Ok(Cow::Borrowed(text.as_bytes())),
            Charset::Gbk => {
                let (bytes, _, had_errors) = encoding_rs::GBK.encode(text);
                // Eighteen private-use characters (U+E78D..U+E796,
                // U+E81E..U+E864) encode to the bytes of other characters
                // (U+FE10.., U+9FB4..): WeChat would read a different text.
                // Only a text that decodes back to itself is representable.
                let exact = !had_errors
                    && (text.is_ascii() || self.decode(&bytes).as_deref() == Some(text));
                if exact {
                    Ok(bytes)
                } else {
                    Err(UnmappableCharacter { charset: self })
                }
            }
        }
    }

    /// Decodes `bytes` from this charset; fails on any malformed sequence.
    pub fn decode(self, bytes: &[u8]) -> Option<String> {
        let encoding = match self {
            Charset::Utf8 => encoding_rs::UTF_8,
            Charset::Gbk => encoding_rs::GBK,
        };
        encoding
            .decode_without_bom_handling_and_without_replacement(bytes)
            .map(Cow::into_owned)
    }
}

impl fmt::Display for Charset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gbk_round_trip() {
        let bytes = Charset::Gbk.encode("支付测试").expect("GBK has these");
        assert_eq!(hex::encode_upper(&bytes), "D6A7B8B6B2E2CAD4");
        assert_eq!(Charset::Gbk.decode(&bytes).as_deref(), Some("支付测试"));
    }

    #[test]
    fn gbk_rejects_what_it_cannot_represent() {
        assert!(Charset::Gbk.encode("pay 😀").is_err());
        assert!(Charset::Utf8.encode("pay 😀").is_ok());
    }

    #[test]
    fn gbk_rejects_private_use_characters_it_would_turn_into_others() {
        // U+E78D encodes to A6D9, which GBK decoders read as U+FE10.
        assert!(Charset::Gbk.encode("\u{E78D}").is_err());
        assert!(Charset::Gbk.encode("a\u{E81E}b").is_err());
        assert_eq!(
            Charset::Gbk.encode("\u{FE10}").map(|b| b.into_owned()),
            Ok(vec![0xA6, 0xD9])
        );
        // Other private-use characters have bytes of their own.
        let bytes = Charset::Gbk.encode("\u{E000}").expect("user-defined area");
        assert_eq!(Charset::Gbk.decode(&bytes).as_deref(), Some("\u{E000}"));
    }

    #[test]
    fn names() {
        assert_eq!(Charset::from_name("gbk"), Some(Charset::Gbk));
        assert_eq!(Charset::from_name("utf-8"), Some(Charset::Utf8));
        assert_eq!(Charset::from_name("latin1"), None);
        // A configuration reads names by the same rule.
        let read = |name: &str| serde_json::from_value::<Charset>(serde_json::json!(name));
        assert_eq!(read("utf8").ok(), Some(Charset::Utf8));
        assert_eq!(read("gbk").ok(), Some(Charset::Gbk));
        assert!(read("latin1").is_err());
        assert_eq!(
            serde_json::to_value(Charset::Utf8).ok(),
            Some(serde_json::json!("UTF-8"))
        );
    }
}
