//! The legacy order `package` (PROTOCOL.md 1.2).
//!
//! - `ParsedPackage::parse` and `verify` (with the public partner key) on
//!   arbitrary text never panic; a package that parses rebuilds to one that
//!   parses to the same fields, and verifies exactly when the original did.
//! - `build_package` on arbitrary field values (a `key 0xFF value 0xFF ...`
//!   list, keys reduced to field-name characters, charset UTF-8 or GBK by the
//!   first byte's low bit): when it succeeds, the text parses back to exactly
//!   the non-empty fields, the same signature and charset, and verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxpay::api::legacy::package::{build_package, PackageError, ParsedPackage};
use wxpay::crypto::sign::Fields;
use wxpay::util::charset::Charset;
use wxpay::util::secret::Secret;
use wxpay_fuzz::{named_fields, text, PARTNER_KEY};

fuzz_target!(|data: &[u8]| {
    let key = Secret::new(PARTNER_KEY);
    parse_then_rebuild(&text(data), &key);
    build_then_parse(data, &key);
});

fn parse_then_rebuild(input: &str, key: &Secret) {
    let Ok(parsed) = ParsedPackage::parse(input) else {
        return;
    };
    assert!(!parsed.fields.contains_key("sign"));
    let verified = parsed.verify(key);
    assert!(matches!(verified, Ok(()) | Err(PackageError::BadSignature)));
    let rebuilt = match build_package(&parsed.fields, key, parsed.charset) {
        Ok(rebuilt) => rebuilt,
        Err(_) => {
            // Only GBK holds text it cannot write back: keys are taken raw
            // (U+FFFD from invalid input, or any character GBK lacks), and the
            // GBK decoder also reads GB18030's four-byte sequences. Such a
            // package cannot be signed, so it never verifies.
            assert_eq!(parsed.charset, Charset::Gbk);
            assert_eq!(verified, Err(PackageError::BadSignature));
            return;
        }
    };
    let again = ParsedPackage::parse(&rebuilt.text).expect("a built package parses");
    assert_eq!(again.fields, non_empty(&parsed.fields));
    assert_eq!(again.charset, parsed.charset);
    assert_eq!(again.sign, rebuilt.sign);
    again.verify(key).expect("a built package verifies");
    // `verify` accepted the original exactly when its sign is the one we compute.
    assert_eq!(verified.is_ok(), parsed.sign == rebuilt.sign);
}

fn build_then_parse(data: &[u8], key: &Secret) {
    let charset = if data.first().is_some_and(|b| b & 1 == 1) {
        Charset::Gbk
    } else {
        Charset::Utf8
    };
    let mut fields = named_fields(data.get(1..).unwrap_or_default());
    // The package names its charset, as the flow writes it (absent means UTF-8).
    if charset == Charset::Gbk || fields.contains_key("input_charset") {
        fields.insert("input_charset".into(), charset.as_str().into());
    }
    let Ok(package) = build_package(&fields, key, charset) else {
        return;
    };
    let parsed = ParsedPackage::parse(&package.text)
        .unwrap_or_else(|e| panic!("built package does not parse: {e}: {:?}", package.text));
    let mut expected = non_empty(&fields);
    expected.remove("sign");
    assert_eq!(
        parsed.fields, expected,
        "package {:?} does not parse back to its fields",
        package.text
    );
    assert_eq!(parsed.sign, package.sign);
    assert_eq!(parsed.charset, charset);
    parsed.verify(key).expect("a built package verifies");
}

fn non_empty(fields: &Fields) -> Fields {
    fields
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
