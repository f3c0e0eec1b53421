//! Canonical strings and the signature schemes of the 2014 APP flow and of
//! API v2.
//!
//! The 2014 flow has two schemes (PROTOCOL.md 1.2 and 1.3):
//!
//! - **legacy-package**: MD5 over the sorted `key=value` pairs with non-empty
//!   values (excluding `sign`), `&key=PARTNER_KEY` appended, hashed in the
//!   package's `input_charset`; upper-case hex.
//! - **legacy-sha1**: SHA1 over the sorted `key=value` pairs of the signed
//!   fields plus `appkey=APP_KEY`; lower-case hex. The signature fields
//!   themselves (`sign`, `app_signature`, `sign_method`) are never part of the
//!   string, and the `appkey` field is never accepted from the caller.
//!
//! API v2 (PROTOCOL.md 4) signs requests, responses and notifications alike:
//! the package's canonical string with `&key=API_KEY` appended, then
//! **v2-md5** (MD5) or **v2-hmac-sha256** (HMAC-SHA256 keyed with the API
//! key), upper-case hex.
//!
//! Keys are sorted by byte order (a `BTreeMap<String, _>` iterates that way);
//! values go into the string raw, not percent-encoded. Everything here is pure.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use md5::{Digest, Md5};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::util::charset::Charset;
use crate::util::secret::Secret;

/// Fields to sign, sorted by key in byte order.
pub type Fields = BTreeMap<String, String>;

// uniffi has no `BTreeMap`; its map is bridged, so a message's fields keep
// one Rust type (sorted, for canonical strings and stable JSON) everywhere.
#[cfg(feature = "uniffi")]
uniffi::custom_type!(
    /// A message's fields by name: the parameters to sign, or every field of
    /// a verified notification.
    Fields,
    std::collections::HashMap<String, String>,
    {
        remote,
        lower: |fields| fields.into_iter().collect(),
        try_lift: |map| Ok(map.into_iter().collect()),
    }
);

/// Fields that are never part of a legacy-sha1 canonical string.
const SHA1_SIGNATURE_FIELDS: [&str; 3] = ["sign", "app_signature", "sign_method"];

/// The field under which the SHA1 schemes append the app key.
const APPKEY_FIELD: &str = "appkey";

/// A signature scheme known to [`sign`] and the `wxpay sign` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// The package MD5 (upper-case hex) keyed with the partner key.
    LegacyPackage,
    /// The SHA1 `app_signature` / app `sign` (lower-case hex) keyed with the app key.
    LegacySha1,
    /// API v2 MD5 (upper-case hex) keyed with the API key.
    V2Md5,
    /// API v2 HMAC-SHA256 (upper-case hex) keyed with the API key.
    V2HmacSha256,
}

impl Scheme {
    /// Every scheme, in the order they are documented.
    pub const ALL: [Scheme; 4] = [
        Scheme::LegacyPackage,
        Scheme::LegacySha1,
        Scheme::V2Md5,
        Scheme::V2HmacSha256,
    ];

    /// The scheme's name as the CLI and the bindings spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::LegacyPackage => "legacy-package",
            Scheme::LegacySha1 => "legacy-sha1",
            Scheme::V2Md5 => "v2-md5",
            Scheme::V2HmacSha256 => "v2-hmac-sha256",
        }
    }
}

/// The signature type of an API v2 merchant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum SignType {
    /// `MD5` (the default; not sent as `sign_type`).
    #[default]
    #[serde(rename = "MD5")]
    Md5,
    /// `HMAC-SHA256` (sent as `sign_type`).
    #[serde(rename = "HMAC-SHA256")]
    HmacSha256,
}

impl SignType {
    /// The name the protocol uses (`MD5`, `HMAC-SHA256`).
    pub fn as_str(self) -> &'static str {
        match self {
            SignType::Md5 => "MD5",
            SignType::HmacSha256 => "HMAC-SHA256",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scheme {
    type Err = Error;

    fn from_str(name: &str) -> Result<Scheme> {
        Scheme::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Scheme::ALL.iter().map(|s| s.as_str()).collect();
                Error::InvalidArgument(format!(
                    "unknown signature scheme {:?}; known: {}",
                    name.chars().take(40).collect::<String>(),
                    known.join(", ")
                ))
            })
    }
}

/// The string a scheme hashes, and the signature over it.
///
/// The canonical string contains the key: it is for [`SignedString::masked`]
/// and the hash only, never for a log.
#[derive(Clone)]
pub struct SignedString {
    canonical: Secret,
    key_range: Range<usize>,
    signature: String,
}

impl SignedString {
    /// The signature (hex).
    pub fn signature(&self) -> &str {
        &self.signature
    }

    /// The signature, consuming `self`.
    pub fn into_signature(self) -> String {
        self.signature
    }

    /// The canonical string with the key replaced by `*` (one per byte, so a
    /// truncated key shows), for diagnosing a signature mismatch.
    pub fn masked(&self) -> String {
        let text = self.canonical.expose();
        format!(
            "{}{}{}",
            &text[..self.key_range.start],
            "*".repeat(self.key_range.len()),
            &text[self.key_range.end..]
        )
    }
}

impl fmt::Debug for SignedString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedString")
            .field("signature", &self.signature)
            .finish_non_exhaustive()
    }
}

/// `key=value` pairs of `fields` joined with `&`, in key order, skipping
/// empty values and the `sign` field (the package rule, PROTOCOL.md 1.2).
pub fn package_canonical_string(fields: &Fields) -> String {
    join_pairs(
        fields
            .iter()
            .filter(|(k, v)| !v.is_empty() && k.as_str() != "sign"),
    )
}

/// Signs package fields: MD5 over the canonical string with `&key=PARTNER_KEY`
/// appended, in `charset`; upper-case hex.
///
/// Fails when a value cannot be represented in `charset` (GBK).
pub fn sign_package(
    fields: &Fields,
    partner_key: &Secret,
    charset: Charset,
) -> Result<SignedString> {
    let mut canonical = package_canonical_string(fields);
    append_key_separator(&mut canonical);
    let key_start = canonical.len();
    canonical.push_str(partner_key.expose());
    let canonical = Secret::new(canonical);
    let bytes = charset
        .encode(canonical.expose())
        .map_err(|e| Error::InvalidArgument(format!("a package value {e}")))?;
    let signature = hex::encode_upper(Md5::digest(&bytes));
    Ok(SignedString {
        key_range: key_start..canonical.expose().len(),
        canonical,
        signature,
    })
}

/// Signs with SHA1 over the fields plus `appkey=APP_KEY` (PROTOCOL.md 1.3);
/// lower-case hex. The fields `sign`, `app_signature` and `sign_method` are
/// left out; empty values stay in. A caller-supplied `appkey` field is an error:
/// the key only ever comes from the configuration.
pub fn sign_sha1(fields: &Fields, app_key: &Secret) -> Result<SignedString> {
    if fields.contains_key(APPKEY_FIELD) {
        return Err(Error::InvalidArgument(
            "the fields must not contain `appkey`: the app key is passed separately".into(),
        ));
    }
    let mut pairs: Vec<(&str, &str)> = fields
        .iter()
        .filter(|(k, _)| !SHA1_SIGNATURE_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.push((APPKEY_FIELD, app_key.expose()));
    pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));

    let mut canonical = String::new();
    let mut key_range = 0..0;
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            canonical.push('&');
        }
        canonical.push_str(k);
        canonical.push('=');
        let start = canonical.len();
        canonical.push_str(v);
        if *k == APPKEY_FIELD {
            key_range = start..canonical.len();
        }
    }
    let signature = hex::encode(Sha1::digest(canonical.as_bytes()));
    Ok(SignedString {
        canonical: Secret::new(canonical),
        key_range,
        signature,
    })
}

/// Signs API v2 fields: the canonical string (non-empty values, `sign` left
/// out) with `&key=API_KEY` appended, MD5 or HMAC-SHA256; upper-case hex.
pub fn sign_v2(fields: &Fields, api_key: &Secret, sign_type: SignType) -> SignedString {
    let mut canonical = package_canonical_string(fields);
    append_key_separator(&mut canonical);
    let key_start = canonical.len();
    canonical.push_str(api_key.expose());
    let signature = match sign_type {
        SignType::Md5 => hex::encode_upper(Md5::digest(canonical.as_bytes())),
        SignType::HmacSha256 => {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, api_key.expose().as_bytes());
            hex::encode_upper(ring::hmac::sign(&key, canonical.as_bytes()).as_ref())
        }
    };
    SignedString {
        key_range: key_start..canonical.len(),
        canonical: Secret::new(canonical),
        signature,
    }
}

/// Signs `fields` with `scheme` and `key`, as the `wxpay sign` command does.
/// For `legacy-package` the charset is taken from an `input_charset` field
/// (UTF-8 when absent). An empty key is refused: anybody could make that
/// signature.
pub fn sign(scheme: Scheme, key: &Secret, fields: &Fields) -> Result<SignedString> {
    if key.is_empty() {
        return Err(Error::InvalidArgument("the signing key is empty".into()));
    }
    match scheme {
        Scheme::LegacyPackage => {
            let charset = match fields.get("input_charset") {
                None => Charset::Utf8,
                Some(name) => Charset::from_name(name).ok_or_else(|| {
                    Error::InvalidArgument("input_charset must be UTF-8 or GBK".into())
                })?,
            };
            sign_package(fields, key, charset)
        }
        Scheme::LegacySha1 => sign_sha1(fields, key),
        Scheme::V2Md5 => Ok(sign_v2(fields, key, SignType::Md5)),
        Scheme::V2HmacSha256 => Ok(sign_v2(fields, key, SignType::HmacSha256)),
    }
}

/// Parses a flat JSON object whose values are strings or integers (integers
/// become their decimal text) into [`Fields`].
pub fn fields_from_json(json: &str) -> Result<Fields> {
    let map = crate::util::json::unique_object(json, "params", |reason| {
        Error::InvalidArgument(format!(
            "params must be a JSON object of string fields with distinct keys ({reason})"
        ))
    })?;
    map.into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k, s)),
            serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => Ok((k, n.to_string())),
            _ => Err(Error::InvalidArgument(format!(
                "params field {:?} must be a string or an integer",
                k.chars().take(40).collect::<String>()
            ))),
        })
        .collect()
}

/// Appends `&key=` (just `key=` when no field was signed, as WeChat's own
/// SDKs and wechatpy do).
fn append_key_separator(canonical: &mut String) {
    if !canonical.is_empty() {
        canonical.push('&');
    }
    canonical.push_str("key=");
}

/// Compares two signatures in constant time (for equal lengths).
pub fn signatures_match(expected: &str, given: &str) -> bool {
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

fn join_pairs<'a>(pairs: impl Iterator<Item = (&'a String, &'a String)>) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_vectors::public_package_fields;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn public_package_vector() {
        let key = Secret::new("8934e7d15453e97507ef794cf7b0519d");
        let signed = sign_package(&public_package_fields(), &key, Charset::Utf8).expect("signs");
        assert_eq!(signed.signature(), "7F77B507B755B3262884291517E380F8");
    }

    #[test]
    fn package_canonical_string_skips_empty_and_sign() {
        let f = fields(&[
            ("b", "2"),
            ("a", "1"),
            ("empty", ""),
            ("sign", "X"),
            ("B", "0"),
        ]);
        assert_eq!(package_canonical_string(&f), "B=0&a=1&b=2");
    }

    #[test]
    fn masked_hides_the_key_only() {
        let key = Secret::new("8934e7d15453e97507ef794cf7b0519d");
        let signed = sign_package(&fields(&[("a", "1")]), &key, Charset::Utf8).expect("signs");
        assert_eq!(signed.masked(), format!("a=1&key={}", "*".repeat(32)));
        let signed =
            sign_sha1(&fields(&[("b", "2"), ("zz", "9")]), &Secret::new("KEY")).expect("signs");
        assert_eq!(signed.masked(), "appkey=***&b=2&zz=9");
    }

    #[test]
    fn sha1_sorts_in_the_appkey_and_is_lower_hex() {
        // SHA1("appid=wx1&appkey=K&noncestr=n") computed independently:
        // printf 'appid=wx1&appkey=K&noncestr=n' | sha1sum
        let f = fields(&[("noncestr", "n"), ("appid", "wx1")]);
        let signed = sign_sha1(&f, &Secret::new("K")).expect("signs");
        assert_eq!(
            signed.signature(),
            hex::encode(Sha1::digest(b"appid=wx1&appkey=K&noncestr=n"))
        );
        assert_eq!(signed.signature(), signed.signature().to_lowercase());
        assert_eq!(signed.signature().len(), 40);
    }

    #[test]
    fn sha1_leaves_out_signature_fields_and_rejects_appkey() {
        let key = Secret::new("K");
        let plain = sign_sha1(&fields(&[("a", "1")]), &key).expect("signs");
        let with_sig = sign_sha1(
            &fields(&[
                ("a", "1"),
                ("sign", "x"),
                ("app_signature", "y"),
                ("sign_method", "sha1"),
            ]),
            &key,
        )
        .expect("signs");
        assert_eq!(plain.signature(), with_sig.signature());
        assert!(sign_sha1(&fields(&[("appkey", "leak")]), &key).is_err());
    }

    #[test]
    fn gbk_package_hashes_gbk_bytes() {
        let mut f = public_package_fields();
        f.insert("input_charset".into(), "GBK".into());
        let key = Secret::new("8934e7d15453e97507ef794cf7b0519d");
        let signed = sign_package(&f, &key, Charset::Gbk).expect("signs");
        let mut text = package_canonical_string(&f);
        text.push_str("&key=8934e7d15453e97507ef794cf7b0519d");
        let gbk = Charset::Gbk.encode(&text).expect("GBK");
        assert_ne!(gbk.as_ref(), text.as_bytes());
        assert_eq!(signed.signature(), hex::encode_upper(Md5::digest(&gbk)));
    }

    /// The official API v2 example (PROTOCOL.md 4).
    #[test]
    fn public_v2_md5_vector() {
        let f = fields(&[
            ("appid", "wxd930ea5d5a258f4f"),
            ("body", "test"),
            ("device_info", "1000"),
            ("mch_id", "10000100"),
            ("nonce_str", "ibuaiVcKdpRxkhJA"),
        ]);
        let key = Secret::new("192006250b4c09247ec02edce69f6a2d");
        assert_eq!(
            sign_v2(&f, &key, SignType::Md5).signature(),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
        // HMAC-SHA256 over the same string, checked against RFC 2104 HMAC
        // computed independently with Python's hmac module:
        // hmac.new(key, b"appid=...&key=...", sha256).hexdigest().upper()
        let hmac = sign_v2(&f, &key, SignType::HmacSha256);
        assert_eq!(
            hmac.signature(),
            "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
        );
        assert_eq!(
            hmac.masked(),
            format!("appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100&nonce_str=ibuaiVcKdpRxkhJA&key={}", "*".repeat(32))
        );
    }

    #[test]
    fn an_empty_field_set_signs_the_key_alone() {
        let key = Secret::new("K");
        let empty = fields(&[("a", "")]);
        assert_eq!(
            sign_v2(&empty, &key, SignType::Md5).signature(),
            hex::encode_upper(Md5::digest(b"key=K"))
        );
        assert_eq!(sign_v2(&empty, &key, SignType::Md5).masked(), "key=*");
    }

    #[test]
    fn an_empty_key_is_refused_by_every_scheme() {
        // A signature keyed with nothing is one anybody can make.
        let params = fields(&[("appid", "wx1"), ("noncestr", "n")]);
        for scheme in Scheme::ALL {
            let refused = sign(scheme, &Secret::new(""), &params);
            assert!(
                matches!(refused, Err(Error::InvalidArgument(ref m)) if m.contains("key")),
                "{scheme:?} signed with an empty key"
            );
            assert!(sign(scheme, &Secret::new("K"), &params).is_ok());
        }
    }

    #[test]
    fn scheme_names_parse() {
        for s in Scheme::ALL {
            assert_eq!(s.as_str().parse::<Scheme>().expect("known"), s);
        }
        assert!("md5".parse::<Scheme>().is_err());
    }

    #[test]
    fn fields_from_json_takes_strings_and_integers() {
        let f = fields_from_json(r#"{"a":"x","timestamp":1399514976}"#).expect("flat");
        assert_eq!(f["timestamp"], "1399514976");
        assert!(fields_from_json(r#"{"a":1.5}"#).is_err());
        assert!(fields_from_json(r#"{"a":{"b":"c"}}"#).is_err());
        assert!(fields_from_json(r#"["a"]"#).is_err());
        // The last of two equal keys would win silently in serde_json.
        let twice = fields_from_json(r#"{"total_fee":"1","total_fee":"100000"}"#);
        assert!(
            matches!(&twice, Err(Error::InvalidArgument(m)) if m.contains("total_fee")),
            "{twice:?}"
        );
        assert!(matches!(
            fields_from_json("{"),
            Err(Error::InvalidJson {
                document: "params",
                ..
            })
        ));
    }

    #[test]
    fn constant_time_compare() {
        assert!(signatures_match("ABC", "ABC"));
        assert!(!signatures_match("ABC", "ABD"));
        assert!(!signatures_match("ABC", "AB"));
    }
}
