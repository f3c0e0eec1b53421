//! Verified notifications, as every generation reports them.

use serde::Serialize;

use crate::crypto::sign::Fields;

/// A verified payment notification: the 2014 flow's query string, API v2's
/// XML, or API v3's decrypted transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct PaymentNotification {
    /// True when the payment succeeded (2014 `trade_state` 0, API v2
    /// `result_code` SUCCESS, API v3 `trade_state` SUCCESS); a verified
    /// failure is still acknowledged with the success reply.
    pub paid: bool,
    /// The merchant's trade number.
    pub out_trade_no: String,
    /// WeChat's transaction id.
    pub transaction_id: String,
    /// The amount in fen.
    pub total_fee: u32,
    /// When the payment completed, if given: 2014 and API v2
    /// `yyyyMMddHHmmss` (Beijing time), API v3 RFC 3339 (`success_time`,
    /// e.g. `2018-06-08T10:34:56+08:00`).
    pub time_end: Option<String>,
    /// The merchant's attached data, if any.
    pub attach: Option<String>,
    /// Every field of the message, verified (API v3: the string fields of
    /// the decrypted transaction).
    pub fields: Fields,
}

/// A verified (decrypted) API v2 refund notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
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
    pub fields: Fields,
}
