//! The flat XML of API v2 (PROTOCOL.md 4) and what reads it.
//!
//! - `xml::parse` never panics; what it accepts, `xml::write` writes back to
//!   a message that parses to the same fields.
//! - `verify_v2_payment`, `verify_v2_refund` and `v2::parse_response` never
//!   panic on the raw input, and what they accept is consistent.
//! - When the input parses, its fields signed with the merchant's key (MD5 or
//!   HMAC-SHA256 by the first byte's low bit) always pass the signature
//!   check, and sealed as a refund's `req_info` always decrypt: only the
//!   business checks may refuse them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxpay::api::notify::NotifyError;
use wxpay::api::v2::notify::{verify_v2_payment, verify_v2_refund};
use wxpay::api::v2::req_info;
use wxpay::api::v2::xml::{self, MAX_XML_BYTES};
use wxpay::api::v2::{parse_response, Signer};
use wxpay::crypto::sign::{sign_v2, Fields, SignType};
use wxpay::http::HttpResponse;
use wxpay::model::PaymentNotification;
use wxpay::Error;
use wxpay_fuzz::{v2_merchant, APPID, MCH_ID};

/// `xml::parse` refuses more fields than this.
const MAX_FIELDS: usize = 256;

fuzz_target!(|data: &[u8]| {
    let sign_type = if data.first().is_some_and(|b| b & 1 == 1) {
        SignType::HmacSha256
    } else {
        SignType::Md5
    };
    let merchant = v2_merchant(sign_type);
    let signer = Signer {
        key: &merchant.api_key,
        sign_type,
    };

    // Raw input.
    if let Ok(n) = verify_v2_payment(data, &merchant, None) {
        check_payment(&n);
    }
    if let Ok(r) = verify_v2_refund(data, &merchant, None) {
        assert!(r.refund_fee > 0 && r.total_fee > 0);
    }
    let response = parse_response(&HttpResponse::new(200, data.to_vec()), &signer);
    if let Ok(fields) = &response {
        assert_eq!(text(fields, "return_code"), "SUCCESS");
        assert_eq!(text(fields, "result_code"), "SUCCESS");
    }
    let status = HttpResponse::new(500, data.to_vec());
    assert_eq!(
        parse_response(&status, &signer),
        Err(Error::HttpStatus { status: 500 })
    );

    let Ok(fields) = xml::parse(data) else {
        return;
    };
    // Written back, the fields parse to themselves.
    let written = write(&fields);
    if written.len() <= MAX_XML_BYTES {
        assert_eq!(
            xml::parse(written.as_bytes()).as_ref(),
            Ok(&fields),
            "written: {written:?}"
        );
    }

    // Signed by the merchant: the signature always verifies.
    let mut signed = fields.clone();
    signed.remove("sign");
    if signed.len() < MAX_FIELDS {
        let sign = sign_v2(&signed, &merchant.api_key, sign_type).into_signature();
        signed.insert("sign".into(), sign);
        let body = write(&signed);
        if body.len() <= MAX_XML_BYTES {
            let success = text(&signed, "return_code") == "SUCCESS";
            match verify_v2_payment(body.as_bytes(), &merchant, None) {
                Ok(n) => check_payment(&n),
                Err(NotifyError::NotSuccess) => assert!(!success),
                Err(NotifyError::WrongMerchant(_) | NotifyError::Field(_)) => {}
                Err(e) => panic!("a genuine notification was refused: {e:?}\nbody: {body:?}"),
            }
            let response = HttpResponse::new(200, body.clone().into_bytes());
            match parse_response(&response, &signer) {
                Ok(_) => {}
                Err(Error::Rejected { .. }) => {}
                Err(Error::MalformedResponse(_)) if !success => {}
                Err(e) => panic!("a genuine answer was refused: {e:?}\nbody: {body:?}"),
            }
        }
    }

    // Sealed as a refund notification's req_info: it always decrypts.
    let inner = write(&fields);
    let inner = format!(
        "<root>{}</root>",
        inner
            .strip_prefix("<xml>")
            .and_then(|s| s.strip_suffix("</xml>"))
            .expect("xml::write wraps in <xml>")
    );
    let sealed = req_info::encrypt(&inner, &merchant.api_key);
    let outer = xml::write([
        ("return_code", "SUCCESS"),
        ("appid", APPID),
        ("mch_id", MCH_ID),
        ("nonce_str", "n"),
        ("req_info", sealed.as_str()),
    ]);
    if inner.len() <= MAX_XML_BYTES && outer.len() <= MAX_XML_BYTES {
        match verify_v2_refund(outer.as_bytes(), &merchant, None) {
            Ok(r) => {
                assert_eq!(r.fields, fields);
                assert!(r.refund_fee > 0 && r.total_fee > 0);
            }
            Err(NotifyError::Field(_)) => {}
            Err(e) => panic!("a genuine refund notification was refused: {e:?}\ninner: {inner:?}"),
        }
    }
});

fn write(fields: &Fields) -> String {
    xml::write(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

fn text<'a>(fields: &'a Fields, key: &str) -> &'a str {
    fields.get(key).map(String::as_str).unwrap_or_default()
}

fn check_payment(n: &PaymentNotification) {
    assert_eq!(text(&n.fields, "return_code"), "SUCCESS");
    assert_eq!(text(&n.fields, "appid"), APPID);
    assert_eq!(text(&n.fields, "mch_id"), MCH_ID);
    assert!(n.total_fee > 0);
    assert_eq!(n.fields.get("total_fee"), Some(&n.total_fee.to_string()));
    assert_eq!(n.paid, text(&n.fields, "result_code") == "SUCCESS");
}
