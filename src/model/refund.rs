//! Refunds: the request, the gateway's receipt, and a refund's state.

use serde::{Deserialize, Serialize};

use super::trade::OrderRef;
use crate::error::{Error, Result};
use crate::util::money::Fen;

/// A refund to request (API v2 and v3). The order, `out_refund_no`, the
/// amounts and `refund_desc` are checked before any network call
/// (`InvalidArgument`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct RefundRequest {
    /// The order to refund.
    pub order: OrderRef,
    /// The merchant's refund number (1 to 64 of `A-Z a-z 0-9 _ - | * @`,
    /// unique per refund); the same number retried is not paid twice.
    pub out_refund_no: String,
    /// The order's total amount in fen.
    pub total_fee: u32,
    /// The amount to refund in fen (at most `total_fee`).
    pub refund_fee: u32,
    /// A reason shown to the user (at most 80 characters).
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub refund_desc: Option<String>,
}

/// The gateway's receipt for a refund request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct RefundReceipt {
    /// The merchant's refund number.
    pub out_refund_no: String,
    /// WeChat's refund id.
    pub refund_id: String,
    /// The refunded amount in fen.
    pub refund_fee: u32,
}

/// One refund of an order, from a refund query (API v2 `refundquery`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct RefundStatus {
    /// The merchant's refund number.
    pub out_refund_no: String,
    /// WeChat's refund id.
    pub refund_id: String,
    /// The refunded amount in fen.
    pub refund_fee: u32,
    /// `SUCCESS`, `PROCESSING`, `REFUNDCLOSE` or `CHANGE`.
    pub refund_status: String,
}

/// The longest `refund_desc` WeChat takes, in characters.
pub const MAX_REFUND_DESC_CHARS: usize = 80;

impl RefundRequest {
    /// Checks the order, the refund number, the amounts and the description;
    /// the client calls this before any network call.
    pub fn validate(&self) -> Result<()> {
        self.order.validate()?;
        if let Some(desc) = &self.refund_desc {
            if desc.chars().count() > MAX_REFUND_DESC_CHARS {
                return Err(Error::InvalidArgument(format!(
                    "refund_desc must be at most {MAX_REFUND_DESC_CHARS} characters"
                )));
            }
        }
        let total = Fen::new(i64::from(self.total_fee))
            .map_err(|e| Error::InvalidArgument(format!("total_fee {e}")))?;
        let part = Fen::new(i64::from(self.refund_fee))
            .map_err(|e| Error::InvalidArgument(format!("refund_fee {e}")))?;
        if part > total {
            return Err(Error::InvalidArgument(
                "refund_fee is larger than total_fee".into(),
            ));
        }
        let no = &self.out_refund_no;
        if no.is_empty()
            || no.len() > 64
            || !no
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-|*@".contains(&b))
        {
            return Err(Error::InvalidArgument(
                "out_refund_no must be 1 to 64 characters of A-Z a-z 0-9 _ - | * @".into(),
            ));
        }
        Ok(())
    }
}
