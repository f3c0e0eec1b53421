//! Payment and refund notifications: parse, verify, check, and the exact
//! replies WeChat expects.
//!
//! A notification is a request from the internet that claims money moved, so
//! it is trusted only after every check passes:
//!
//! - the body parses under strict rules (see [`crate::xml`]; query strings
//!   refuse duplicated keys and oversized input);
//! - the signature is recomputed with the algorithm the **merchant
//!   configured**, never one the message names (a `sign_type` field is just
//!   another signed field), and compared in constant time;
//! - `appid` / `mch_id` / `partner` are the merchant's own;
//! - `total_fee` is a positive integer and equals the amount the caller
//!   expects for the order, when the caller passes one.
//!
//! WeChat repeats a notification until it gets the success reply, so the same
//! notification verifies every time it comes: handle it idempotently per
//! `out_trade_no` ([`SeenNotifications`] helps within one process).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Mutex, PoisonError};

use percent_encoding::percent_decode;
use serde::Serialize;

use crate::aead::{self, AeadError};
use crate::charset::Charset;
use crate::merchant::{LegacyMerchant, V2Merchant, V3Merchant};
use crate::money::Fen;
use crate::req_info::{self, ReqInfoError};
use crate::rsa::VerifyingKey;
use crate::sign::{sign_package, sign_v2, signatures_match, Fields};
use crate::v3::{verify_signed, SignatureError, SignedHeaders};
use crate::xml::{self, XmlError};

/// The reply that stops WeChat from repeating a 2014 notification.
pub const LEGACY_SUCCESS_REPLY: &str = "success";

/// The reply that stops WeChat from repeating an API v2 notification.
pub const V2_SUCCESS_REPLY: &str =
    "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>";

/// The largest 2014 notification query string accepted.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;

/// The longest failure message a reply carries, in characters (WeChat's
/// `return_msg` is at most 128).
pub const MAX_REPLY_MESSAGE_CHARS: usize = 128;

/// `message` fit for a reply: control characters (which XML cannot carry)
/// turned into spaces, and cut at [`MAX_REPLY_MESSAGE_CHARS`].
fn reply_message(message: &str) -> String {
    message
        .chars()
        .take(MAX_REPLY_MESSAGE_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// An API v2 failure reply (WeChat will send the notification again).
pub fn v2_failure_reply(message: &str) -> String {
    xml::write([
        ("return_code", "FAIL"),
        ("return_msg", &reply_message(message)),
    ])
}

/// Why a notification was refused. None of these may be answered with the
/// success reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// The XML body is refused by the parser.
    #[error("notification XML refused: {0}")]
    Xml(#[from] XmlError),
    /// The query string is malformed (duplicated key, bad encoding, too long).
    #[error("notification query string refused: {0}")]
    Query(String),
    /// No `sign` field.
    #[error("notification is not signed")]
    Unsigned,
    /// The signature does not match under the merchant's key and algorithm.
    #[error("notification signature does not match")]
    BadSignature,
    /// A merchant id in the message is not this merchant's.
    #[error("notification {0} is not this merchant's")]
    WrongMerchant(&'static str),
    /// The amount is not the order's.
    #[error("notification total_fee {got} is not the expected {expected}")]
    WrongAmount {
        /// The amount the caller expects, in fen.
        expected: u32,
        /// The amount the message claims, in fen.
        got: u32,
    },
    /// A required field is missing or not of its format.
    #[error("notification field {0} is missing or malformed")]
    Field(&'static str),
    /// `return_code` is not SUCCESS: the message carries no result.
    #[error("notification return_code is not SUCCESS")]
    NotSuccess,
    /// A refund notification's `req_info` did not decrypt.
    #[error("refund notification: {0}")]
    ReqInfo(#[from] ReqInfoError),
    /// An API v3 notification's signature headers do not verify.
    #[error("notification signature: {0}")]
    Signature(#[from] SignatureError),
    /// An API v3 notification's resource does not decrypt.
    #[error("notification resource: {0}")]
    Resource(#[from] AeadError),
    /// An API v3 notification is not the documented JSON.
    #[error("notification JSON: {0}")]
    Json(String),
}

/// The largest API v3 notification body accepted.
pub const MAX_JSON_BYTES: usize = 64 * 1024;

/// The failure answer of an API v3 notification (sent with a 4xx/5xx status;
/// WeChat will send it again). Success is an empty 200 or 204.
pub fn v3_failure_reply(message: &str) -> String {
    serde_json::json!({ "code": "FAIL", "message": reply_message(message) }).to_string()
}

/// Verifies an API v3 payment notification: the `Wechatpay-*` headers'
/// signature over the raw body (with the key `key_for` gives for the
/// serial, at `now`), then the `AEAD_AES_256_GCM` resource decrypted with
/// the API v3 key, then the merchant's ids and the expected amount.
pub fn verify_v3_payment(
    headers: &SignedHeaders,
    body: &[u8],
    merchant: &V3Merchant,
    now: u64,
    key_for: impl Fn(&str) -> Option<VerifyingKey>,
    expected_total_fee: Option<Fen>,
) -> Result<PaymentNotification, NotifyError> {
    if body.len() > MAX_JSON_BYTES {
        return Err(NotifyError::Json(format!(
            "body larger than {MAX_JSON_BYTES} bytes"
        )));
    }
    verify_signed(headers, body, now, key_for)?;
    let envelope: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| NotifyError::Json(e.to_string()))?;
    let resource = envelope
        .get("resource")
        .ok_or_else(|| NotifyError::Json("no resource".into()))?;
    let field = |k: &str| {
        resource
            .get(k)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
    };
    if field("algorithm") != "AEAD_AES_256_GCM" {
        return Err(NotifyError::Json(
            "resource algorithm is not AEAD_AES_256_GCM".into(),
        ));
    }
    let plain = aead::decrypt(
        merchant.api_v3_key.expose().as_bytes(),
        field("nonce"),
        field("associated_data"),
        field("ciphertext"),
    )?;
    let transaction: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&plain).map_err(|e| NotifyError::Json(e.to_string()))?;
    let text = |k: &str| {
        transaction
            .get(k)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    if text("mchid").as_deref() != Some(merchant.mchid.as_str()) {
        return Err(NotifyError::WrongMerchant("mchid"));
    }
    if text("appid").as_deref() != Some(merchant.appid.as_str()) {
        return Err(NotifyError::WrongMerchant("appid"));
    }
    let total = transaction
        .get("amount")
        .and_then(|a| a.get("total"))
        .and_then(serde_json::Value::as_u64)
        .and_then(|t| i64::try_from(t).ok())
        .and_then(|t| Fen::new(t).ok())
        .ok_or(NotifyError::Field("amount.total"))?;
    if let Some(expected) = expected_total_fee {
        if expected != total {
            return Err(NotifyError::WrongAmount {
                expected: expected.get(),
                got: total.get(),
            });
        }
    }
    let fields: Fields = transaction
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
        .collect();
    Ok(PaymentNotification {
        paid: text("trade_state").as_deref() == Some("SUCCESS"),
        out_trade_no: required(&fields, "out_trade_no")?,
        transaction_id: required(&fields, "transaction_id")?,
        total_fee: total.get(),
        time_end: text("success_time"),
        attach: text("attach").filter(|a| !a.is_empty()),
        fields,
    })
}

/// A verified payment notification (2014 or v2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentNotification {
    /// True when the payment succeeded (`result_code` SUCCESS, or 2014's
    /// `trade_state` 0); a verified failure is still acknowledged.
    pub paid: bool,
    /// The merchant's trade number.
    pub out_trade_no: String,
    /// WeChat's transaction id.
    pub transaction_id: String,
    /// The amount in fen.
    pub total_fee: u32,
    /// When the payment completed (`yyyyMMddHHmmss`), if given.
    pub time_end: Option<String>,
    /// The merchant's attached data, if any.
    pub attach: Option<String>,
    /// Every field of the message, verified.
    pub fields: BTreeMap<String, String>,
}

/// A verified (decrypted) API v2 refund notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefundNotification {
    /// The merchant's trade number.
    pub out_trade_no: String,
    /// The merchant's refund number.
    pub out_refund_no: String,
    /// WeChat's refund id.
    pub refund_id: String,
    /// The order's amount in fen.
    pub total_fee: u32,
    /// The refunded amount in fen.
    pub refund_fee: u32,
    /// `SUCCESS`, `CHANGE` or `REFUNDCLOSE`.
    pub refund_status: String,
    /// Every decrypted field.
    pub fields: BTreeMap<String, String>,
}

/// Verifies an API v2 payment notification (the XML POST body).
pub fn verify_v2_payment(
    body: &[u8],
    merchant: &V2Merchant,
    expected_total_fee: Option<Fen>,
) -> Result<PaymentNotification, NotifyError> {
    let fields = xml::parse(body)?;
    if fields.get("return_code").map(String::as_str) != Some("SUCCESS") {
        return Err(NotifyError::NotSuccess);
    }
    let sign = fields.get("sign").ok_or(NotifyError::Unsigned)?;
    // The merchant's algorithm, whatever `sign_type` the message claims.
    let expected = sign_v2(&fields, &merchant.api_key, merchant.sign_type);
    if !signatures_match(expected.signature(), sign) {
        return Err(NotifyError::BadSignature);
    }
    check_id(&fields, "appid", &merchant.appid)?;
    check_id(&fields, "mch_id", &merchant.mch_id)?;
    let paid = fields.get("result_code").map(String::as_str) == Some("SUCCESS");
    payment(fields, paid, expected_total_fee)
}

/// Verifies a 2014 payment notification: the query string WeChat calls
/// `notify_url` with, MD5-signed with the partner key in its `input_charset`.
pub fn verify_legacy_payment(
    query: &str,
    merchant: &LegacyMerchant,
    expected_total_fee: Option<Fen>,
) -> Result<PaymentNotification, NotifyError> {
    let fields = parse_query(query)?;
    let sign = fields.get("sign").ok_or(NotifyError::Unsigned)?;
    let charset = charset_of(&fields)?;
    let expected = sign_package(&fields, &merchant.partner_key, charset)
        .map_err(|_| NotifyError::BadSignature)?;
    if !signatures_match(expected.signature(), sign) {
        return Err(NotifyError::BadSignature);
    }
    check_id(&fields, "partner", &merchant.partner_id)?;
    let paid = fields.get("trade_state").map(String::as_str) == Some("0");
    payment(fields, paid, expected_total_fee)
}

/// Decrypts and checks an API v2 refund notification. Refund notifications
/// carry no `sign`: the `req_info` decrypting under the API key is what
/// authenticates them.
pub fn verify_v2_refund(
    body: &[u8],
    merchant: &V2Merchant,
    expected_refund_fee: Option<Fen>,
) -> Result<RefundNotification, NotifyError> {
    let outer = xml::parse(body)?;
    if outer.get("return_code").map(String::as_str) != Some("SUCCESS") {
        return Err(NotifyError::NotSuccess);
    }
    check_id(&outer, "appid", &merchant.appid)?;
    check_id(&outer, "mch_id", &merchant.mch_id)?;
    let sealed = outer
        .get("req_info")
        .ok_or(NotifyError::Field("req_info"))?;
    let plain = req_info::decrypt(sealed, &merchant.api_key)?;
    let fields = xml::parse_with_root(plain.as_bytes(), "root")?;
    let refund_fee = fen_field(&fields, "refund_fee")?;
    if let Some(expected) = expected_refund_fee {
        if expected.get() != refund_fee {
            return Err(NotifyError::WrongAmount {
                expected: expected.get(),
                got: refund_fee,
            });
        }
    }
    Ok(RefundNotification {
        out_trade_no: required(&fields, "out_trade_no")?,
        out_refund_no: required(&fields, "out_refund_no")?,
        refund_id: required(&fields, "refund_id")?,
        total_fee: fen_field(&fields, "total_fee")?,
        refund_fee,
        refund_status: required(&fields, "refund_status")?,
        fields,
    })
}

fn payment(
    fields: Fields,
    paid: bool,
    expected: Option<Fen>,
) -> Result<PaymentNotification, NotifyError> {
    let total_fee = fen_field(&fields, "total_fee")?;
    if let Some(expected) = expected {
        if expected.get() != total_fee {
            return Err(NotifyError::WrongAmount {
                expected: expected.get(),
                got: total_fee,
            });
        }
    }
    let optional = |k: &str| fields.get(k).filter(|v| !v.is_empty()).cloned();
    Ok(PaymentNotification {
        paid,
        out_trade_no: required(&fields, "out_trade_no")?,
        transaction_id: required(&fields, "transaction_id")?,
        total_fee,
        time_end: optional("time_end"),
        attach: optional("attach"),
        fields,
    })
}

fn check_id(fields: &Fields, field: &'static str, ours: &str) -> Result<(), NotifyError> {
    match fields.get(field) {
        Some(theirs) if theirs == ours => Ok(()),
        _ => Err(NotifyError::WrongMerchant(field)),
    }
}

fn required(fields: &Fields, field: &'static str) -> Result<String, NotifyError> {
    fields
        .get(field)
        .filter(|v| !v.is_empty() && v.len() <= 64)
        .cloned()
        .ok_or(NotifyError::Field(field))
}

/// A positive integer of fen, in plain digits.
fn fen_field(fields: &Fields, field: &'static str) -> Result<u32, NotifyError> {
    let text = fields.get(field).ok_or(NotifyError::Field(field))?;
    if text.is_empty()
        || text.len() > 10
        || !text.bytes().all(|b| b.is_ascii_digit())
        || text.starts_with('0')
    {
        return Err(NotifyError::Field(field));
    }
    let fen = text.parse::<i64>().map_err(|_| NotifyError::Field(field))?;
    Fen::new(fen)
        .map(Fen::get)
        .map_err(|_| NotifyError::Field(field))
}

fn charset_of(fields: &Fields) -> Result<Charset, NotifyError> {
    match fields.get("input_charset") {
        None => Ok(Charset::Utf8),
        Some(name) => Charset::from_name(name).ok_or(NotifyError::Field("input_charset")),
    }
}

/// Splits a 2014 notification query string; `+` is a space, every key once,
/// values decoded in the charset the `input_charset` field names.
fn parse_query(query: &str) -> Result<Fields, NotifyError> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(NotifyError::Query(format!(
            "longer than {MAX_QUERY_BYTES} bytes"
        )));
    }
    let query = query.strip_prefix('?').unwrap_or(query);
    let mut raw: Vec<(String, Vec<u8>)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode =
            |s: &str| -> Vec<u8> { percent_decode(s.replace('+', " ").as_bytes()).collect() };
        let key = String::from_utf8(decode(k))
            .map_err(|_| NotifyError::Query("a key is not UTF-8".into()))?;
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(NotifyError::Query("a key is not a field name".into()));
        }
        if raw.iter().any(|(seen, _)| *seen == key) {
            return Err(NotifyError::Query(format!("duplicated key {key}")));
        }
        raw.push((key, decode(v)));
    }
    let charset = match raw.iter().find(|(k, _)| k == "input_charset") {
        None => Charset::Utf8,
        Some((_, v)) => std::str::from_utf8(v)
            .ok()
            .and_then(Charset::from_name)
            .ok_or(NotifyError::Field("input_charset"))?,
    };
    raw.into_iter()
        .map(|(k, v)| {
            let value = charset
                .decode(&v)
                .ok_or_else(|| NotifyError::Query(format!("{k} is not valid {charset}")))?;
            Ok((k, value))
        })
        .collect()
}

/// Remembers which notifications this process has handled, so a repeat can
/// be acknowledged without being processed twice. Bounded: the oldest entries
/// are forgotten first. Across processes, use the merchant's database (a
/// unique key on `out_trade_no`).
#[derive(Debug)]
pub struct SeenNotifications {
    capacity: usize,
    seen: Mutex<(HashSet<String>, VecDeque<String>)>,
}

impl SeenNotifications {
    /// Remembers at most `capacity` notifications.
    pub fn new(capacity: usize) -> Self {
        SeenNotifications {
            capacity: capacity.max(1),
            seen: Mutex::new((HashSet::new(), VecDeque::new())),
        }
    }

    /// True the first time a payment of this `out_trade_no` and
    /// `transaction_id` is seen, false for every repeat.
    pub fn first_delivery(&self, notification: &PaymentNotification) -> bool {
        let key = format!(
            "{}\n{}",
            notification.out_trade_no, notification.transaction_id
        );
        let mut guard = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let (set, order) = &mut *guard;
        if !set.insert(key.clone()) {
            return false;
        }
        order.push_back(key);
        if order.len() > self.capacity {
            if let Some(oldest) = order.pop_front() {
                set.remove(&oldest);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_replies_carry_short_printable_messages() {
        let reason = format!("bad\0sign]]>\n{}", "长".repeat(10_000));
        let v2 = xml::parse(v2_failure_reply(&reason).as_bytes()).expect("well-formed XML");
        assert_eq!(v2["return_code"], "FAIL");
        let msg = &v2["return_msg"];
        assert!(msg.starts_with("bad sign]]> 长"), "{msg:?}");
        assert_eq!(msg.chars().count(), MAX_REPLY_MESSAGE_CHARS);
        let v3: serde_json::Value = serde_json::from_str(&v3_failure_reply(&reason)).expect("JSON");
        let msg = v3["message"].as_str().expect("message");
        assert!(msg.starts_with("bad sign]]> 长"), "{msg:?}");
        assert_eq!(msg.chars().count(), MAX_REPLY_MESSAGE_CHARS);
        assert_eq!(
            v2_failure_reply("quota"),
            xml::write([("return_code", "FAIL"), ("return_msg", "quota")])
        );
    }
    use crate::package::percent_encode;
    use crate::secret::Secret;
    use crate::sign::SignType;

    fn v2(sign_type: SignType) -> V2Merchant {
        V2Merchant {
            appid: "wxd930ea5d5a258f4f".into(),
            mch_id: "10000100".into(),
            api_key: Secret::new("192006250b4c09247ec02edce69f6a2d"),
            sign_type,
            notify_url: "https://example.com/notify".into(),
        }
    }

    fn payment_fields() -> Vec<(&'static str, String)> {
        vec![
            ("appid", "wxd930ea5d5a258f4f".into()),
            ("bank_type", "CFT".into()),
            ("cash_fee", "29".into()),
            ("fee_type", "CNY".into()),
            ("is_subscribe", "N".into()),
            ("mch_id", "10000100".into()),
            ("nonce_str", "5d2b6c2a8db53831f7eda20af46e531c".into()),
            ("openid", "oUpF8uMEb4qRXf22hE3X68TekukE".into()),
            ("out_trade_no", "A1001".into()),
            ("result_code", "SUCCESS".into()),
            ("return_code", "SUCCESS".into()),
            ("time_end", "20140903131540".into()),
            ("total_fee", "29".into()),
            ("trade_type", "APP".into()),
            ("transaction_id", "1004400740201409030005092168".into()),
        ]
    }

    /// A notification body signed with `sign_type`, after `edit`.
    fn signed_body(
        sign_type: SignType,
        edit: impl FnOnce(&mut Vec<(&'static str, String)>),
    ) -> String {
        let mut list = payment_fields();
        edit(&mut list);
        let fields: Fields = list
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let sign = sign_v2(&fields, &v2(sign_type).api_key, sign_type).into_signature();
        list.push(("sign", sign));
        xml::write(list.iter().map(|(k, v)| (*k, v.as_str())))
    }

    #[test]
    fn a_genuine_v2_notification_verifies() {
        for sign_type in [SignType::Md5, SignType::HmacSha256] {
            let body = signed_body(sign_type, |_| {});
            let n = verify_v2_payment(body.as_bytes(), &v2(sign_type), Fen::new(29).ok())
                .expect("verifies");
            assert!(n.paid);
            assert_eq!(n.out_trade_no, "A1001");
            assert_eq!(n.total_fee, 29);
            assert_eq!(n.time_end.as_deref(), Some("20140903131540"));
        }
    }

    #[test]
    fn a_forged_sign_type_does_not_choose_the_algorithm() {
        // Signed with MD5 and claiming MD5, sent to an HMAC-SHA256 merchant.
        let body = signed_body(SignType::Md5, |f| f.push(("sign_type", "MD5".into())));
        assert_eq!(
            verify_v2_payment(body.as_bytes(), &v2(SignType::HmacSha256), None),
            Err(NotifyError::BadSignature)
        );
        // The same message verifies for the MD5 merchant it was made for.
        assert!(verify_v2_payment(body.as_bytes(), &v2(SignType::Md5), None).is_ok());
    }

    #[test]
    fn a_duplicated_total_fee_is_refused_before_any_signature_check() {
        let body = signed_body(SignType::Md5, |_| {});
        let forged = body.replace(
            "<total_fee>",
            "<total_fee><![CDATA[1]]></total_fee><total_fee>",
        );
        assert_eq!(
            verify_v2_payment(forged.as_bytes(), &v2(SignType::Md5), None),
            Err(NotifyError::Xml(XmlError::Duplicate("total_fee".into())))
        );
        let two_signs = body.replace("<sign>", "<sign><![CDATA[X]]></sign><sign>");
        assert!(matches!(
            verify_v2_payment(two_signs.as_bytes(), &v2(SignType::Md5), None),
            Err(NotifyError::Xml(XmlError::Duplicate(_)))
        ));
    }

    #[test]
    fn xxe_and_billion_laughs_are_refused() {
        let xxe = format!(
            "<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>{}",
            signed_body(SignType::Md5, |f| f.push(("attach", "&xxe;".into())))
        );
        assert_eq!(
            verify_v2_payment(xxe.as_bytes(), &v2(SignType::Md5), None),
            Err(NotifyError::Xml(XmlError::DocType))
        );
        let laughs = "<!DOCTYPE xml [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]><xml><attach>&c;</attach></xml>";
        assert_eq!(
            verify_v2_payment(laughs.as_bytes(), &v2(SignType::Md5), None),
            Err(NotifyError::Xml(XmlError::DocType))
        );
    }

    #[test]
    fn a_wrong_amount_or_merchant_is_refused() {
        let body = signed_body(SignType::Md5, |_| {});
        assert_eq!(
            verify_v2_payment(body.as_bytes(), &v2(SignType::Md5), Fen::new(2900).ok()),
            Err(NotifyError::WrongAmount {
                expected: 2900,
                got: 29
            })
        );
        let other = signed_body(SignType::Md5, |f| {
            f.retain(|(k, _)| *k != "mch_id");
            f.push(("mch_id", "10000101".into()));
        });
        assert_eq!(
            verify_v2_payment(other.as_bytes(), &v2(SignType::Md5), None),
            Err(NotifyError::WrongMerchant("mch_id"))
        );
        // Changing a signed value breaks the signature.
        let tampered = body.replace("<![CDATA[29]]></total_fee>", "<![CDATA[1]]></total_fee>");
        assert_eq!(
            verify_v2_payment(tampered.as_bytes(), &v2(SignType::Md5), None),
            Err(NotifyError::BadSignature)
        );
    }

    #[test]
    fn a_replayed_notification_verifies_again_but_is_seen_once() {
        let body = signed_body(SignType::HmacSha256, |_| {});
        let seen = SeenNotifications::new(16);
        let first = verify_v2_payment(
            body.as_bytes(),
            &v2(SignType::HmacSha256),
            Fen::new(29).ok(),
        )
        .expect("ok");
        let again = verify_v2_payment(
            body.as_bytes(),
            &v2(SignType::HmacSha256),
            Fen::new(29).ok(),
        )
        .expect("ok");
        assert_eq!(first, again);
        assert!(seen.first_delivery(&first));
        assert!(!seen.first_delivery(&again));
    }

    #[test]
    fn seen_notifications_are_bounded() {
        let seen = SeenNotifications::new(2);
        let n = |no: &str| PaymentNotification {
            paid: true,
            out_trade_no: no.into(),
            transaction_id: "t".into(),
            total_fee: 1,
            time_end: None,
            attach: None,
            fields: Fields::new(),
        };
        assert!(seen.first_delivery(&n("a")));
        assert!(seen.first_delivery(&n("b")));
        assert!(seen.first_delivery(&n("c")));
        assert!(seen.first_delivery(&n("a")), "the oldest was forgotten");
        assert!(!seen.first_delivery(&n("c")));
    }

    fn legacy() -> LegacyMerchant {
        LegacyMerchant {
            appid: "wxd930ea5d5a258f4f".into(),
            app_secret: Secret::new("s"),
            app_key: Secret::new("k"),
            partner_id: "1900000109".into(),
            partner_key: Secret::new("8934e7d15453e97507ef794cf7b0519d"),
            notify_url: "https://example.com/notify".into(),
            input_charset: Charset::Utf8,
        }
    }

    fn legacy_query(charset: Charset, total_fee: &str) -> String {
        let mut fields: Fields = [
            ("attach", "支付测试"),
            ("bank_type", "0"),
            ("fee_type", "1"),
            ("input_charset", charset.as_str()),
            ("notify_id", "KeKmCz0tPAGwfJRsYPHrVg"),
            ("out_trade_no", "A1001"),
            ("partner", "1900000109"),
            ("sign_type", "MD5"),
            ("time_end", "20140508100936"),
            ("total_fee", total_fee),
            ("trade_mode", "1"),
            ("trade_state", "0"),
            ("transaction_id", "1900000109201405083199982386"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let sign = sign_package(&fields, &legacy().partner_key, charset)
            .expect("signs")
            .into_signature();
        fields.insert("sign".into(), sign);
        fields
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    percent_encode(&charset.encode(v).expect("encodes"))
                )
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    #[test]
    fn legacy_notifications_verify_in_either_charset() {
        for charset in [Charset::Utf8, Charset::Gbk] {
            let query = legacy_query(charset, "1999");
            let n =
                verify_legacy_payment(&query, &legacy(), Fen::new(1999).ok()).expect("verifies");
            assert!(n.paid);
            assert_eq!(n.attach.as_deref(), Some("支付测试"));
            assert_eq!(n.total_fee, 1999);
        }
    }

    #[test]
    fn legacy_notifications_refuse_tampering_duplicates_and_wrong_amounts() {
        let query = legacy_query(Charset::Utf8, "1999");
        assert_eq!(
            verify_legacy_payment(
                &query.replace("total_fee=1999", "total_fee=1"),
                &legacy(),
                None
            ),
            Err(NotifyError::BadSignature)
        );
        assert!(matches!(
            verify_legacy_payment(&format!("{query}&total_fee=1"), &legacy(), None),
            Err(NotifyError::Query(_))
        ));
        assert_eq!(
            verify_legacy_payment(&query, &legacy(), Fen::new(1).ok()),
            Err(NotifyError::WrongAmount {
                expected: 1,
                got: 1999
            })
        );
        let unsigned: String = query
            .split('&')
            .filter(|p| !p.starts_with("sign="))
            .collect::<Vec<_>>()
            .join("&");
        assert_eq!(
            verify_legacy_payment(&unsigned, &legacy(), None),
            Err(NotifyError::Unsigned)
        );
        let zero = legacy_query(Charset::Utf8, "0");
        assert_eq!(
            verify_legacy_payment(&zero, &legacy(), None),
            Err(NotifyError::Field("total_fee"))
        );
    }

    #[test]
    fn refund_notifications_decrypt_and_check() {
        let merchant = v2(SignType::Md5);
        let inner = xml::write([
            ("out_refund_no", "R1"),
            ("out_trade_no", "A1001"),
            ("refund_fee", "29"),
            ("refund_id", "50000408942018111907145868882"),
            ("refund_status", "SUCCESS"),
            ("total_fee", "29"),
            ("transaction_id", "1004400740201409030005092168"),
        ])
        .replace("<xml>", "<root>")
        .replace("</xml>", "</root>");
        let body = |mch_id: &str, key: &Secret| {
            xml::write([
                ("return_code", "SUCCESS"),
                ("appid", "wxd930ea5d5a258f4f"),
                ("mch_id", mch_id),
                ("nonce_str", "n"),
                ("req_info", &req_info::encrypt(&inner, key)),
            ])
        };
        let ok = verify_v2_refund(
            body("10000100", &merchant.api_key).as_bytes(),
            &merchant,
            Fen::new(29).ok(),
        )
        .expect("decrypts");
        assert_eq!(ok.out_refund_no, "R1");
        assert_eq!(ok.refund_fee, 29);
        assert_eq!(ok.refund_status, "SUCCESS");
        assert_eq!(
            verify_v2_refund(
                body("10000100", &Secret::new("forger")).as_bytes(),
                &merchant,
                None
            ),
            Err(NotifyError::ReqInfo(ReqInfoError::Decrypt))
        );
        assert_eq!(
            verify_v2_refund(
                body("10000101", &merchant.api_key).as_bytes(),
                &merchant,
                None
            ),
            Err(NotifyError::WrongMerchant("mch_id"))
        );
        assert_eq!(
            verify_v2_refund(
                body("10000100", &merchant.api_key).as_bytes(),
                &merchant,
                Fen::new(1).ok()
            ),
            Err(NotifyError::WrongAmount {
                expected: 1,
                got: 29
            })
        );
    }

    mod v3 {
        use super::super::*;
        use crate::merchant::V3Verification;
        use crate::rsa::MerchantKey;
        use crate::secret::Secret;
        use std::sync::Arc;

        const PLATFORM_KEY: &str = include_str!("sandbox/keys/platform_key.pem");
        const PLATFORM_PUBLIC: &str = include_str!("sandbox/keys/platform_public_key.pem");
        const API_V3_KEY: &str = "0123456789abcdef0123456789abcdef";

        fn merchant() -> V3Merchant {
            V3Merchant {
                appid: "wxd930ea5d5a258f4f".into(),
                mchid: "1900000109".into(),
                serial_no: "S".into(),
                key: Arc::new(
                    MerchantKey::from_pem(include_str!("sandbox/keys/merchant_key.pem"))
                        .expect("key"),
                ),
                api_v3_key: Secret::new(API_V3_KEY),
                notify_url: "https://example.com/n".into(),
                verification: V3Verification::Certificates { refresh_secs: 60 },
            }
        }

        /// A notification whose resource is `transaction`, sealed, then
        /// `tamper`ed, then signed by the platform key at `now`.
        fn notification(transaction: &str, tamper: bool, now: u64) -> (SignedHeaders, Vec<u8>) {
            let mut ciphertext = aead::encrypt(
                API_V3_KEY.as_bytes(),
                "0123456789ab",
                "transaction",
                transaction,
            )
            .expect("seals");
            if tamper {
                let flipped = if ciphertext.starts_with('A') {
                    "B"
                } else {
                    "A"
                };
                ciphertext.replace_range(0..1, flipped);
            }
            let body = serde_json::json!({
                "id": "EV-2018022511223320873",
                "event_type": "TRANSACTION.SUCCESS",
                "resource_type": "encrypt-resource",
                "resource": {"algorithm": "AEAD_AES_256_GCM", "ciphertext": ciphertext,
                             "nonce": "0123456789ab", "associated_data": "transaction",
                             "original_type": "transaction"},
            })
            .to_string();
            let signature = MerchantKey::from_pem(PLATFORM_KEY)
                .expect("key")
                .sign(format!("{now}\nn1\n{body}\n").as_bytes());
            let headers = SignedHeaders {
                serial: "PUB_KEY_ID_1".into(),
                signature,
                timestamp: now.to_string(),
                nonce: "n1".into(),
            };
            (headers, body.into_bytes())
        }

        fn key(serial: &str) -> Option<VerifyingKey> {
            (serial == "PUB_KEY_ID_1")
                .then(|| VerifyingKey::from_public_key_pem(PLATFORM_PUBLIC).expect("key"))
        }

        const PAID: &str = r#"{"mchid":"1900000109","appid":"wxd930ea5d5a258f4f","out_trade_no":"A1","transaction_id":"42","trade_state":"SUCCESS","success_time":"2018-06-08T10:34:56+08:00","amount":{"total":29,"payer_total":29,"currency":"CNY"}}"#;

        #[test]
        fn a_genuine_notification_decrypts_to_a_typed_transaction() {
            let (headers, body) = notification(PAID, false, 1_700_000_000);
            let n = verify_v3_payment(
                &headers,
                &body,
                &merchant(),
                1_700_000_000,
                key,
                Fen::new(29).ok(),
            )
            .expect("verifies");
            assert!(n.paid);
            assert_eq!(n.total_fee, 29);
            assert_eq!(n.out_trade_no, "A1");
            assert_eq!(n.time_end.as_deref(), Some("2018-06-08T10:34:56+08:00"));
        }

        #[test]
        fn a_tampered_ciphertext_fails_even_when_signed() {
            let (headers, body) = notification(PAID, true, 1_700_000_000);
            assert_eq!(
                verify_v3_payment(&headers, &body, &merchant(), 1_700_000_000, key, None),
                Err(NotifyError::Resource(AeadError::Tag))
            );
        }

        #[test]
        fn signature_time_merchant_and_amount_are_checked() {
            let (headers, body) = notification(PAID, false, 1_700_000_000);
            let mut changed = body.clone();
            changed.push(b' ');
            assert_eq!(
                verify_v3_payment(&headers, &changed, &merchant(), 1_700_000_000, key, None),
                Err(NotifyError::Signature(SignatureError::Bad))
            );
            assert_eq!(
                verify_v3_payment(&headers, &body, &merchant(), 1_700_000_300, key, None),
                Err(NotifyError::Signature(SignatureError::Stale))
            );
            assert_eq!(
                verify_v3_payment(
                    &headers,
                    &body,
                    &merchant(),
                    1_700_000_000,
                    key,
                    Fen::new(30).ok()
                ),
                Err(NotifyError::WrongAmount {
                    expected: 30,
                    got: 29
                })
            );
            let other = PAID.replace("1900000109", "1900000110");
            let (headers, body) = notification(&other, false, 1_700_000_000);
            assert_eq!(
                verify_v3_payment(&headers, &body, &merchant(), 1_700_000_000, key, None),
                Err(NotifyError::WrongMerchant("mchid"))
            );
        }
    }

    #[test]
    fn replies() {
        assert_eq!(
            xml::parse(V2_SUCCESS_REPLY.as_bytes()).expect("parses")["return_code"],
            "SUCCESS"
        );
        let fail = v2_failure_reply("bad sign");
        let parsed = xml::parse(fail.as_bytes()).expect("parses");
        assert_eq!(parsed["return_code"], "FAIL");
        assert_eq!(parsed["return_msg"], "bad sign");
    }
}
