//! Verified notifications, as every generation reports them.

use std::collections::BTreeMap;

use serde::Serialize;

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
