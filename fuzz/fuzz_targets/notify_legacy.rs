//! The 2014 payment notification (a query string, PROTOCOL.md 1.6).
//!
//! - `verify_legacy_payment` on the input as a query string never panics, and
//!   what it accepts is this merchant's, positive and consistent with the
//!   expected amount.
//! - The input read as fields (`key 0xFF value 0xFF ...`, keys reduced to
//!   field-name characters, charset by the first byte's low bit), signed with
//!   the partner key and percent-encoded as WeChat sends them, always passes
//!   the query and signature checks: only the merchant, amount and required
//!   fields may refuse it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxpay::api::legacy::notify::{verify_legacy_payment, MAX_QUERY_BYTES};
use wxpay::api::legacy::package::percent_encode;
use wxpay::api::notify::NotifyError;
use wxpay::crypto::sign::sign_package;
use wxpay::model::PaymentNotification;
use wxpay::util::charset::Charset;
use wxpay::util::money::Fen;
use wxpay_fuzz::{legacy_merchant, named_fields, text, PARTNER_ID};

fuzz_target!(|data: &[u8]| {
    let merchant = legacy_merchant();
    let query = text(data);
    if let Ok(n) = verify_legacy_payment(&query, &merchant, None) {
        check(&n);
        // The expected amount is the only difference an expectation makes.
        let same = Fen::new(i64::from(n.total_fee)).expect("a notified amount is a Fen");
        assert_eq!(
            verify_legacy_payment(&query, &merchant, Some(same)),
            Ok(n.clone())
        );
        let other = Fen::new(i64::from(n.total_fee % 1000 + 1001)).expect("in range");
        assert!(matches!(
            verify_legacy_payment(&query, &merchant, Some(other)),
            Err(NotifyError::WrongAmount { .. })
        ));
    }

    let charset = if data.first().is_some_and(|b| b & 1 == 1) {
        Charset::Gbk
    } else {
        Charset::Utf8
    };
    let mut fields = named_fields(data.get(1..).unwrap_or_default());
    if charset == Charset::Gbk || fields.contains_key("input_charset") {
        fields.insert("input_charset".into(), charset.as_str().into());
    }
    fields
        .entry("partner".into())
        .or_insert_with(|| PARTNER_ID.into());
    fields.remove("sign");
    let Ok(sign) = sign_package(&fields, &merchant.partner_key, charset) else {
        return; // a value GBK cannot represent: WeChat could not have sent it
    };
    fields.insert("sign".into(), sign.into_signature());
    let mut signed = String::new();
    for (k, v) in &fields {
        let bytes = charset.encode(v).expect("signed values encode");
        if !signed.is_empty() {
            signed.push('&');
        }
        signed.push_str(k);
        signed.push('=');
        signed.push_str(&percent_encode(&bytes));
    }
    if signed.len() > MAX_QUERY_BYTES {
        return;
    }
    match verify_legacy_payment(&signed, &merchant, None) {
        Ok(n) => check(&n),
        Err(NotifyError::WrongMerchant("partner") | NotifyError::Field(_)) => {}
        Err(e) => panic!("a genuine notification was refused: {e:?}\nquery: {signed:?}"),
    }
});

fn check(n: &PaymentNotification) {
    assert_eq!(
        n.fields.get("partner").map(String::as_str),
        Some(PARTNER_ID)
    );
    assert!(n.total_fee > 0 && Fen::new(i64::from(n.total_fee)).is_ok());
    assert_eq!(n.fields.get("total_fee"), Some(&n.total_fee.to_string()));
    assert!(!n.out_trade_no.is_empty() && n.out_trade_no.len() <= 64);
    assert!(!n.transaction_id.is_empty() && n.transaction_id.len() <= 64);
    assert_eq!(
        n.paid,
        n.fields.get("trade_state").map(String::as_str) == Some("0")
    );
}
