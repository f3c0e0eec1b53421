//! What the fuzz targets share: the public test merchants (the WeChat
//! documentation's examples and the sandbox's test keys), and the ways an
//! input is cut into pieces.
//!
//! Input conventions (the seed corpora under `fuzz/corpus/` follow them):
//! - [`pieces`] cuts at a separator byte into a fixed number of pieces: the
//!   last piece keeps the rest, separators included; missing pieces are empty.
//! - [`field_list`] reads `key 0xFF value 0xFF key 0xFF value ...`; 0xFF never
//!   occurs in UTF-8, so keys and values may hold any text, NUL included.

use std::sync::Arc;

use wxpay::api::legacy::merchant::LegacyMerchant;
use wxpay::api::v2::merchant::V2Merchant;
use wxpay::api::v3::merchant::{V3Merchant, V3Verification};
use wxpay::crypto::rsa::{MerchantKey, VerifyingKey};
use wxpay::crypto::sign::{Fields, SignType};
use wxpay::util::charset::Charset;
use wxpay::util::secret::Secret;

/// The public app id of the WeChat documentation.
pub const APPID: &str = "wxd930ea5d5a258f4f";
/// The 2014 example's partner id (PROTOCOL.md 1.2).
pub const PARTNER_ID: &str = "1900000109";
/// The 2014 example's partner key (PROTOCOL.md 1.2).
pub const PARTNER_KEY: &str = "8934e7d15453e97507ef794cf7b0519d";
/// The API v2 example's merchant id (PROTOCOL.md 4).
pub const MCH_ID: &str = "10000100";
/// The API v2 example's API key (PROTOCOL.md 4).
pub const V2_API_KEY: &str = "192006250b4c09247ec02edce69f6a2d";
/// The API v3 merchant id of the unit tests.
pub const V3_MCHID: &str = "1900000109";
/// The 32-byte API v3 key of the unit tests.
pub const API_V3_KEY: &str = "0123456789abcdef0123456789abcdef";
/// The id the v3 notifications of the seeds are signed under.
pub const PUBLIC_KEY_ID: &str = "PUB_KEY_ID_1";
/// The `now` of every time check (the v3 seeds are signed at this time).
pub const NOW: u64 = 1_700_000_000;

/// The sandbox's test keys (they protect nothing).
pub const MERCHANT_KEY_PEM: &str = include_str!("../../src/sandbox/keys/merchant_key.pem");
/// The public half of [`MERCHANT_KEY_PEM`].
pub const MERCHANT_PUBLIC_PEM: &str =
    include_str!("../../src/sandbox/keys/merchant_public_key.pem");
/// The sandbox platform's private key (signs notifications).
pub const PLATFORM_KEY_PEM: &str = include_str!("../../src/sandbox/keys/platform_key.pem");
/// The public half of [`PLATFORM_KEY_PEM`].
pub const PLATFORM_PUBLIC_PEM: &str =
    include_str!("../../src/sandbox/keys/platform_public_key.pem");

/// Cuts `data` at `sep` into exactly `n` pieces (`n` >= 1).
pub fn pieces(data: &[u8], sep: u8, n: usize) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = data.splitn(n, |b| *b == sep).collect();
    out.resize(n, &[]);
    out
}

/// `bytes` as text, invalid UTF-8 replaced.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `key 0xFF value 0xFF ...` as (key, value) pairs in input order; a key
/// without a value gets an empty one.
pub fn field_list(data: &[u8]) -> Vec<(String, String)> {
    let mut parts = data.split(|b| *b == 0xFF);
    let mut out = Vec::new();
    while let Some(key) = parts.next() {
        let value = parts.next().unwrap_or_default();
        out.push((text(key), text(value)));
    }
    out
}

/// Keeps the characters a protocol field name may have (`A-Z a-z 0-9 _`).
pub fn field_name(key: &str) -> String {
    key.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// [`field_list`] as [`Fields`], keys reduced by [`field_name`] (empty keys
/// dropped; a later key wins).
pub fn named_fields(data: &[u8]) -> Fields {
    field_list(data)
        .into_iter()
        .map(|(k, v)| (field_name(&k), v))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

/// The 2014 example merchant.
pub fn legacy_merchant() -> LegacyMerchant {
    LegacyMerchant {
        appid: APPID.into(),
        app_secret: Secret::new("app-secret"),
        app_key: Secret::new("app-key"),
        partner_id: PARTNER_ID.into(),
        partner_key: Secret::new(PARTNER_KEY),
        notify_url: "https://example.com/notify".into(),
        input_charset: Charset::Utf8,
    }
}

/// The API v2 example merchant, with `sign_type`.
pub fn v2_merchant(sign_type: SignType) -> V2Merchant {
    V2Merchant {
        appid: APPID.into(),
        mch_id: MCH_ID.into(),
        api_key: Secret::new(V2_API_KEY),
        sign_type,
        notify_url: "https://example.com/notify".into(),
        refund_notify_url: None,
    }
}

/// The API v3 merchant of the unit tests, verifying with the sandbox
/// platform's public key.
pub fn v3_merchant() -> V3Merchant {
    V3Merchant {
        appid: APPID.into(),
        mchid: V3_MCHID.into(),
        serial_no: "SERIAL".into(),
        key: Arc::new(MerchantKey::from_pem(MERCHANT_KEY_PEM).expect("the sandbox merchant key")),
        api_v3_key: Secret::new(API_V3_KEY),
        notify_url: "https://example.com/notify".into(),
        refund_notify_url: None,
        verification: V3Verification::PublicKey {
            id: PUBLIC_KEY_ID.into(),
            key: platform_public_key(),
        },
        unknown_serial_interval_secs: 60,
    }
}

/// The sandbox platform's public key.
pub fn platform_public_key() -> VerifyingKey {
    VerifyingKey::from_public_key_pem(PLATFORM_PUBLIC_PEM).expect("the sandbox platform key")
}
