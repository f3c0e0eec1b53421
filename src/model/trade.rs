//! Which order an operation is about, and the state the gateway reports.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The state of an order, as an order query reports it (API v2
/// `orderquery`, API v3 `/v3/pay/transactions/...`; both spell the states
/// alike).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TradeState {
    /// `SUCCESS`: paid.
    Success,
    /// `REFUND`: paid, then (partly) refunded.
    Refund,
    /// `NOTPAY`: not paid yet.
    Notpay,
    /// `CLOSED`: closed unpaid.
    Closed,
    /// `REVOKED`: revoked (card payments).
    Revoked,
    /// `USERPAYING`: the user is paying (entering a password).
    Userpaying,
    /// `PAYERROR`: the payment failed.
    Payerror,
    /// A state this library does not know.
    #[serde(untagged)]
    Other(
        /// The gateway's spelling, as sent.
        #[cfg_attr(feature = "uniffi", uniffi(name = "value"))]
        String,
    ),
}

impl TradeState {
    /// Parses the gateway's `trade_state`.
    pub fn parse(text: &str) -> TradeState {
        match text {
            "SUCCESS" => TradeState::Success,
            "REFUND" => TradeState::Refund,
            "NOTPAY" => TradeState::Notpay,
            "CLOSED" => TradeState::Closed,
            "REVOKED" => TradeState::Revoked,
            "USERPAYING" => TradeState::Userpaying,
            "PAYERROR" => TradeState::Payerror,
            other => TradeState::Other(other.to_owned()),
        }
    }

    /// The gateway's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            TradeState::Success => "SUCCESS",
            TradeState::Refund => "REFUND",
            TradeState::Notpay => "NOTPAY",
            TradeState::Closed => "CLOSED",
            TradeState::Revoked => "REVOKED",
            TradeState::Userpaying => "USERPAYING",
            TradeState::Payerror => "PAYERROR",
            TradeState::Other(s) => s,
        }
    }
}

/// Which order a query, close or refund is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum OrderRef {
    /// The merchant's trade number.
    OutTradeNo(
        /// E.g. `A1001`: 1 to 32 of `A-Z a-z 0-9 _ - | * @`.
        #[cfg_attr(feature = "uniffi", uniffi(name = "value"))]
        String,
    ),
    /// WeChat's transaction id (in the payment notification and
    /// `OrderStatus`).
    TransactionId(
        /// E.g. `4200000001202401011234567890`.
        #[cfg_attr(feature = "uniffi", uniffi(name = "value"))]
        String,
    ),
}

impl OrderRef {
    /// The order with the merchant's trade number `no`, checked.
    pub fn out_trade_no(no: impl Into<String>) -> Result<OrderRef> {
        let order = OrderRef::OutTradeNo(no.into());
        order.validate()?;
        Ok(order)
    }

    /// The order with WeChat's transaction id `id`, checked.
    pub fn transaction_id(id: impl Into<String>) -> Result<OrderRef> {
        let order = OrderRef::TransactionId(id.into());
        order.validate()?;
        Ok(order)
    }

    /// Checks the number or id: 1 to 32 characters of A-Z a-z 0-9 _ - | * @.
    /// The client checks every reference before any network call.
    pub fn validate(&self) -> Result<()> {
        let (name, value) = self.field();
        if super::order::is_trade_id(value) {
            Ok(())
        } else {
            Err(Error::InvalidArgument(format!(
                "{name} must be 1 to 32 characters of A-Z a-z 0-9 _ - | * @"
            )))
        }
    }

    /// The protocol's name of the reference and its value.
    pub fn field(&self) -> (&'static str, &str) {
        match self {
            OrderRef::OutTradeNo(no) => ("out_trade_no", no),
            OrderRef::TransactionId(id) => ("transaction_id", id),
        }
    }
}

/// An order's state, from an order query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct OrderStatus {
    /// The merchant's trade number.
    pub out_trade_no: String,
    /// WeChat's transaction id, once paid.
    pub transaction_id: Option<String>,
    /// The state.
    pub trade_state: TradeState,
    /// The gateway's description of the state.
    pub trade_state_desc: Option<String>,
    /// The amount in fen, when the gateway reports it.
    pub total_fee: Option<u32>,
    /// When it was paid: API v2 `yyyyMMddHHmmss` (Beijing time), API v3
    /// RFC 3339 (e.g. `2018-06-08T10:34:56+08:00`).
    pub time_end: Option<String>,
}
