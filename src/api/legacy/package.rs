//! The legacy order `package` string (PROTOCOL.md 1.2): built from order
//! fields by a merchant, parsed and checked by a gateway.
//!
//! A package is the signed fields in key order, each value percent-encoded
//! from its bytes in the package's charset (keep `A-Z a-z 0-9 - _ . ~`, every
//! other byte as `%XX` in upper-case hex, space as `%20`), then `&sign=SIGN`.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::crypto::sign::{sign_package, signatures_match, Fields};
use crate::error::{Error, Result};
use crate::util::charset::Charset;
use crate::util::secret::Secret;

/// Bytes that stay as they are in a package value: RFC 3986's unreserved set.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A signed package, ready to go into the `genprepay` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// The full package text, `...&sign=SIGN`.
    pub text: String,
    /// The package's MD5 signature (upper-case hex).
    pub sign: String,
}

/// Percent-encodes `bytes` the way the package wants it.
pub fn percent_encode(bytes: &[u8]) -> String {
    percent_encoding::percent_encode(bytes, UNRESERVED).to_string()
}

/// Builds and signs a package from `fields` (empty values are left out, as in
/// the signature) with the partner key, in `charset`.
pub fn build_package(fields: &Fields, partner_key: &Secret, charset: Charset) -> Result<Package> {
    let signed = sign_package(fields, partner_key, charset)?;
    let mut text = String::with_capacity(512);
    for (key, value) in fields
        .iter()
        .filter(|(k, v)| !v.is_empty() && k.as_str() != "sign")
    {
        let bytes = charset
            .encode(value)
            .map_err(|e| Error::InvalidArgument(format!("package field {key} {e}")))?;
        text.push_str(key);
        text.push('=');
        match charset {
            // Fast path: UTF-8 text encodes straight from the str.
            Charset::Utf8 => text.extend(utf8_percent_encode(value, UNRESERVED)),
            Charset::Gbk => text.push_str(&percent_encode(&bytes)),
        }
        text.push('&');
    }
    text.push_str("sign=");
    text.push_str(signed.signature());
    Ok(Package {
        text,
        sign: signed.into_signature(),
    })
}

/// Why a package failed to parse or verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageError {
    /// Not `key=value&...&sign=SIGN`, a duplicated key, or bad percent-encoding.
    #[error("malformed package: {0}")]
    Malformed(String),
    /// The `input_charset` names a charset the protocol does not have.
    #[error("unsupported input_charset")]
    UnsupportedCharset,
    /// The MD5 signature does not match.
    #[error("package signature does not match")]
    BadSignature,
}

/// A package taken apart: its decoded fields and its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedPackage {
    /// The decoded fields, without `sign`.
    pub fields: Fields,
    /// The `sign` value as sent.
    pub sign: String,
    /// The charset named by `input_charset` (UTF-8 when absent).
    pub charset: Charset,
}

impl ParsedPackage {
    /// Parses `text`; every key must appear once, `sign` must be present, and
    /// every value must decode in the package's `input_charset`.
    pub fn parse(text: &str) -> Result<ParsedPackage, PackageError> {
        let mut raw: Vec<(&str, &str)> = Vec::new();
        for pair in text.split('&') {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| PackageError::Malformed("a pair without `=`".into()))?;
            if k.is_empty() {
                return Err(PackageError::Malformed("an empty key".into()));
            }
            if raw.iter().any(|(seen, _)| *seen == k) {
                return Err(PackageError::Malformed(format!("duplicated key {k:?}")));
            }
            raw.push((k, v));
        }
        let charset = match raw.iter().find(|(k, _)| *k == "input_charset") {
            None => Charset::Utf8,
            Some((_, v)) => Charset::from_name(v).ok_or(PackageError::UnsupportedCharset)?,
        };
        let mut fields = Fields::new();
        let mut sign = None;
        for (k, v) in raw {
            let bytes: Vec<u8> = percent_decode_str(v).collect();
            let value = charset
                .decode(&bytes)
                .ok_or_else(|| PackageError::Malformed(format!("{k} is not valid {charset}")))?;
            if k == "sign" {
                sign = Some(value);
            } else {
                fields.insert(k.to_owned(), value);
            }
        }
        let sign = sign.ok_or_else(|| PackageError::Malformed("no sign".into()))?;
        Ok(ParsedPackage {
            fields,
            sign,
            charset,
        })
    }

    /// Checks the signature against `partner_key` in constant time.
    pub fn verify(&self, partner_key: &Secret) -> Result<(), PackageError> {
        let expected = sign_package(&self.fields, partner_key, self.charset)
            .map_err(|_| PackageError::BadSignature)?;
        if signatures_match(expected.signature(), &self.sign) {
            Ok(())
        } else {
            Err(PackageError::BadSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_vectors::public_package_fields;

    const PUBLIC_PACKAGE: &str = "bank_type=WX&body=%E6%94%AF%E4%BB%98%E6%B5%8B%E8%AF%95&fee_type=1&input_charset=UTF-8&notify_url=http%3A%2F%2Fweixin.qq.com&out_trade_no=7240b65810859cbf2a8d9f76a638c0a3&partner=1900000109&spbill_create_ip=196.168.1.1&total_fee=1&sign=7F77B507B755B3262884291517E380F8";

    fn key() -> Secret {
        Secret::new("8934e7d15453e97507ef794cf7b0519d")
    }

    #[test]
    fn public_package_vector() {
        let package =
            build_package(&public_package_fields(), &key(), Charset::Utf8).expect("builds");
        assert_eq!(package.text, PUBLIC_PACKAGE);
        assert_eq!(package.sign, "7F77B507B755B3262884291517E380F8");
    }

    #[test]
    fn percent_encoding_rules() {
        assert_eq!(percent_encode(b"a b"), "a%20b");
        assert_eq!(percent_encode(b"A-z_0.9~"), "A-z_0.9~");
        assert_eq!(percent_encode(b"+/?&=:"), "%2B%2F%3F%26%3D%3A");
        assert_eq!(percent_encode("支".as_bytes()), "%E6%94%AF");
        assert_eq!(percent_encode(&[0xd6, 0xa7]), "%D6%A7");
    }

    #[test]
    fn gbk_package_encodes_gbk_bytes() {
        let mut f = public_package_fields();
        f.insert("input_charset".into(), "GBK".into());
        let package = build_package(&f, &key(), Charset::Gbk).expect("builds");
        assert!(
            package.text.contains("body=%D6%A7%B8%B6%B2%E2%CA%D4&"),
            "{}",
            package.text
        );
        let parsed = ParsedPackage::parse(&package.text).expect("parses");
        assert_eq!(parsed.fields["body"], "支付测试");
        parsed.verify(&key()).expect("verifies");
    }

    #[test]
    fn parse_and_verify_the_public_package() {
        let parsed = ParsedPackage::parse(PUBLIC_PACKAGE).expect("parses");
        assert_eq!(parsed.fields, public_package_fields());
        parsed.verify(&key()).expect("verifies");
        assert_eq!(
            parsed.verify(&Secret::new("wrong")),
            Err(PackageError::BadSignature)
        );
    }

    #[test]
    fn tampering_fails_verification() {
        let tampered = PUBLIC_PACKAGE.replace("total_fee=1", "total_fee=2");
        let parsed = ParsedPackage::parse(&tampered).expect("parses");
        assert_eq!(parsed.verify(&key()), Err(PackageError::BadSignature));
    }

    #[test]
    fn malformed_packages() {
        assert!(matches!(
            ParsedPackage::parse("a=1&a=2&sign=X"),
            Err(PackageError::Malformed(_))
        ));
        assert!(matches!(
            ParsedPackage::parse("a=1"),
            Err(PackageError::Malformed(_))
        ));
        assert!(matches!(
            ParsedPackage::parse("a&sign=X"),
            Err(PackageError::Malformed(_))
        ));
        assert_eq!(
            ParsedPackage::parse("input_charset=latin1&sign=X"),
            Err(PackageError::UnsupportedCharset)
        );
        assert!(matches!(
            ParsedPackage::parse("body=%FF&sign=X"),
            Err(PackageError::Malformed(_))
        ));
    }
}
