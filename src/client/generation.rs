//! The seam between [`Client`](super::Client) and the API generations: what
//! every generation's client does, over one shared [`Context`]. An operation a
//! generation lacks answers [`unsupported`], a clear `InvalidArgument` naming
//! the configured generation and the ones that have it.

use std::sync::Arc;

use url::Url;

use crate::config::Api;
use crate::error::{Error, Result};
use crate::http::Transport;
use crate::model::{
    Order, OrderRef, OrderStatus, PayParams, PaymentNotification, RefundNotification,
    RefundReceipt, RefundRequest, RefundStatus,
};
use crate::util::clock::Clock;
use crate::util::money::Fen;
use crate::util::nonce::NonceSource;

/// What every generation's operations run over: the gateway, the transport,
/// the clock and the nonces.
pub(crate) struct Context {
    /// The gateway's base URL.
    pub api_base: Url,
    /// The transport of every call but v2 refunds.
    pub transport: Arc<dyn Transport>,
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// The nonces.
    pub nonces: Arc<dyn NonceSource>,
}

/// The refusal of an operation the configured generation lacks.
pub(crate) fn unsupported(api: Api, operation: &str, offered_by: &str) -> Error {
    Error::InvalidArgument(format!(
        "{operation} is not available for api \"{}\": it is an API {offered_by} operation",
        api.as_str()
    ))
}

/// One API generation's operations. The defaults refuse, naming the
/// generations that have the operation.
pub(crate) trait Generation: Send + Sync {
    /// Which generation this is.
    fn api(&self) -> Api;

    /// Creates the order and returns the signed parameters for the app.
    fn build_pay_params(&self, cx: &Context, order: &Order) -> Result<PayParams>;

    /// The state of an order.
    fn query_order(&self, _cx: &Context, _order: &OrderRef) -> Result<OrderStatus> {
        Err(unsupported(self.api(), "query_order", "v2 and v3"))
    }

    /// Closes an unpaid order.
    fn close_order(&self, _cx: &Context, _order: &OrderRef) -> Result<()> {
        Err(unsupported(self.api(), "close_order", "v2 and v3"))
    }

    /// Refunds all or part of a paid order.
    fn refund(&self, _cx: &Context, _refund: &RefundRequest) -> Result<RefundReceipt> {
        Err(unsupported(self.api(), "refund", "v2 and v3"))
    }

    /// The refunds of an order.
    fn query_refunds(&self, _cx: &Context, _order: &OrderRef) -> Result<Vec<RefundStatus>> {
        Err(unsupported(self.api(), "query_refunds", "v2"))
    }

    /// Downloads the platform certificates; how many there are.
    fn download_certificates(&self, _cx: &Context) -> Result<usize> {
        Err(unsupported(self.api(), "download_certificates", "v3"))
    }

    /// Verifies a payment notification of a body alone (2014, v2).
    fn verify_payment_notification(
        &self,
        cx: &Context,
        body: &[u8],
        expected_total_fee: Option<Fen>,
    ) -> Result<PaymentNotification>;

    /// Verifies a payment notification signed in its headers (v3).
    fn verify_signed_notification(
        &self,
        _cx: &Context,
        _headers: &[(String, String)],
        _body: &[u8],
        _expected_total_fee: Option<Fen>,
    ) -> Result<PaymentNotification> {
        Err(unsupported(
            self.api(),
            "verify_signed_notification",
            "v3 (use verify_payment_notification)",
        ))
    }

    /// Decrypts and checks a refund notification.
    fn verify_refund_notification(
        &self,
        _cx: &Context,
        _body: &[u8],
        _expected_refund_fee: Option<Fen>,
    ) -> Result<RefundNotification> {
        Err(unsupported(self.api(), "verify_refund_notification", "v2"))
    }

    /// The body that acknowledges a verified notification.
    fn success_reply(&self) -> String;

    /// The body that refuses a notification (WeChat will send it again).
    fn failure_reply(&self, reason: &str) -> String;

    /// The HTTP status a notification reply is sent with, where the
    /// generation prescribes one.
    fn reply_status(&self, _verified: bool) -> Option<u16> {
        None
    }
}
