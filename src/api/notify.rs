//! What the notification verifiers of every generation share: why a
//! notification was refused, the field checks of flat (XML or query)
//! messages, reply text, and the in-process record of deliveries.
//!
//! A notification is a request from the internet that claims money moved, so
//! it is trusted only after every check passes:
//!
//! - the body parses under strict rules (XML refuses entities and repeated
//!   elements; query strings refuse duplicated keys and oversized input);
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

use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, PoisonError};

use crate::api::v2::req_info::ReqInfoError;
use crate::api::v2::xml::XmlError;
use crate::api::v3::auth::SignatureError;
use crate::crypto::aead::AeadError;
use crate::crypto::sign::Fields;
use crate::model::PaymentNotification;
use crate::util::money::Fen;

/// The longest failure message a reply carries, in characters (WeChat's
/// `return_msg` is at most 128).
pub const MAX_REPLY_MESSAGE_CHARS: usize = 128;

/// `message` fit for a reply: control characters (which XML cannot carry)
/// turned into spaces, and cut at [`MAX_REPLY_MESSAGE_CHARS`].
pub(crate) fn reply_message(message: &str) -> String {
    message
        .chars()
        .take(MAX_REPLY_MESSAGE_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
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

/// The payment a verified flat message reports, its amount checked.
pub(crate) fn payment(
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

/// Checks that `field` names this merchant.
pub(crate) fn check_id(
    fields: &Fields,
    field: &'static str,
    ours: &str,
) -> Result<(), NotifyError> {
    match fields.get(field) {
        Some(theirs) if theirs == ours => Ok(()),
        _ => Err(NotifyError::WrongMerchant(field)),
    }
}

/// A required, non-empty field of at most 64 bytes.
pub(crate) fn required(fields: &Fields, field: &'static str) -> Result<String, NotifyError> {
    fields
        .get(field)
        .filter(|v| !v.is_empty() && v.len() <= 64)
        .cloned()
        .ok_or(NotifyError::Field(field))
}

/// A positive integer of fen, in plain digits.
pub(crate) fn fen_field(fields: &Fields, field: &'static str) -> Result<u32, NotifyError> {
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
    use crate::api::v2::notify::v2_failure_reply;
    use crate::api::v2::xml;
    use crate::api::v3::notify::v3_failure_reply;

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
}
