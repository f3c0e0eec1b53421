//! Sign, verify, change one byte, and the check must fail.
//!
//! Input: `choice key 0xFF field list`, the field list as
//! `key 0xFF value 0xFF ...` (keys reduced to field-name characters; empty
//! values are never signed, so the changes go to non-empty ones). `choice`
//! picks the sign type, charset, the byte changed and how.
//! - API v2 (`sign_v2`, MD5 and HMAC-SHA256): the recomputed signature
//!   matches; changing one character of a signed value, or of the key, or
//!   adding a field, makes it differ.
//! - The legacy package (`build_package`, then `ParsedPackage::parse` and
//!   `verify` with the public partner key): it verifies; with one byte of
//!   the text changed it fails to parse or to verify, unless the change
//!   decodes to exactly the same fields and sign (e.g. `%2f` for `%2F`).
//! - RSA (`MerchantKey::sign`, `VerifyingKey::verify`, the sandbox keys) on
//!   one input in 16: the signature over the input verifies; with one byte
//!   of the message or one character of the signature changed it does not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxpay::api::legacy::package::{build_package, ParsedPackage};
use wxpay::crypto::rsa::{MerchantKey, VerifyingKey};
use wxpay::crypto::sign::{sign_v2, signatures_match, Fields, SignType};
use wxpay::util::charset::Charset;
use wxpay::util::secret::Secret;
use wxpay_fuzz::{named_fields, pieces, text, MERCHANT_KEY_PEM, MERCHANT_PUBLIC_PEM, PARTNER_KEY};

struct Rsa {
    private: MerchantKey,
    public: VerifyingKey,
}

fn rsa() -> &'static Rsa {
    static RSA: std::sync::OnceLock<Rsa> = std::sync::OnceLock::new();
    RSA.get_or_init(|| Rsa {
        private: MerchantKey::from_pem(MERCHANT_KEY_PEM).expect("the sandbox merchant key"),
        public: VerifyingKey::from_public_key_pem(MERCHANT_PUBLIC_PEM)
            .expect("the sandbox merchant public key"),
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let p = pieces(rest, 0xFF, 2);
    let key = text(p[0]);
    let fields = named_fields(p[1]);
    let position = usize::from(choice) * 7919;

    v2_round_trip(&fields, &key, choice, position);
    package_round_trip(&fields, choice, position);
    if choice & 0x0F == 0 {
        rsa_round_trip(rest, position);
    }
});

fn v2_round_trip(fields: &Fields, key: &str, choice: u8, position: usize) {
    let sign_type = if choice & 1 == 1 {
        SignType::HmacSha256
    } else {
        SignType::Md5
    };
    let api_key = Secret::new(key);
    let signature = sign_v2(fields, &api_key, sign_type).into_signature();
    let verifies = |f: &Fields, k: &Secret| {
        signatures_match(&sign_v2(f, k, sign_type).into_signature(), &signature)
    };
    assert!(verifies(fields, &api_key));

    // One character of one signed value changed.
    let signed: Vec<&String> = fields
        .iter()
        .filter(|(k, v)| !v.is_empty() && k.as_str() != "sign")
        .map(|(k, _)| k)
        .collect();
    if !signed.is_empty() {
        let name = signed[position % signed.len()];
        let mut changed = fields.clone();
        let value = changed.get_mut(name).expect("a signed field");
        *value = change_char(value, position);
        assert!(
            !verifies(&changed, &api_key),
            "{sign_type:?}: changed {name}"
        );
    }
    // One character of the key changed.
    if !key.is_empty() {
        let other = Secret::new(change_char(key, position));
        assert!(!verifies(fields, &other), "{sign_type:?}: changed key");
    }
    // A field added.
    let mut added = fields.clone();
    if !added.contains_key("zz_added") {
        added.insert("zz_added".into(), "1".into());
        assert!(!verifies(&added, &api_key), "{sign_type:?}: added field");
    }
}

fn package_round_trip(fields: &Fields, choice: u8, position: usize) {
    let charset = if choice & 2 == 2 {
        Charset::Gbk
    } else {
        Charset::Utf8
    };
    let mut fields = fields.clone();
    if charset == Charset::Gbk || fields.contains_key("input_charset") {
        fields.insert("input_charset".into(), charset.as_str().into());
    }
    let key = Secret::new(PARTNER_KEY);
    let Ok(package) = build_package(&fields, &key, charset) else {
        return;
    };
    let original = ParsedPackage::parse(&package.text).expect("a built package parses");
    original.verify(&key).expect("a built package verifies");

    // One byte of the text changed, to another ASCII byte (the text is ASCII).
    let mut bytes = package.text.clone().into_bytes();
    assert!(bytes.is_ascii(), "a package is percent-encoded ASCII");
    let i = position % bytes.len();
    let flip = (choice >> 2) % 0x7F + 1; // 1..=0x7F
    bytes[i] ^= flip;
    let changed = String::from_utf8(bytes).expect("still ASCII");
    if let Ok(parsed) = ParsedPackage::parse(&changed) {
        let same = parsed.fields == original.fields
            && parsed.sign == original.sign
            && parsed.charset == original.charset;
        if !same {
            assert!(
                parsed.verify(&key).is_err(),
                "a changed package verifies:\n{}\n{changed}",
                package.text
            );
        }
    }
}

fn rsa_round_trip(message: &[u8], position: usize) {
    let rsa = rsa();
    let signature = rsa.private.sign(message);
    rsa.public
        .verify(message, &signature)
        .expect("the signature verifies");
    if !message.is_empty() {
        let mut changed = message.to_vec();
        let i = position % changed.len();
        changed[i] ^= 1 << (position % 8);
        assert!(rsa.public.verify(&changed, &signature).is_err());
    }
    let changed = change_char(&signature, position);
    assert!(
        rsa.public.verify(message, &changed).is_err(),
        "a changed signature verifies: {changed}"
    );
}

/// `s` with the character at `position` (mod its length) replaced by another.
fn change_char(s: &str, position: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    let i = position % chars.len();
    chars
        .iter()
        .enumerate()
        .map(|(j, c)| {
            if j != i {
                *c
            } else if *c == 'A' {
                'B'
            } else {
                'A'
            }
        })
        .collect()
}
