//! The domain types every generation and every surface shares, defined once:
//! orders, order references and states, refunds, the app's parameters, and
//! verified notifications.

mod notification;
mod order;
mod pay_params;
mod refund;
mod trade;

pub use notification::{PaymentNotification, RefundNotification};
pub use order::{Order, OrderFields};
pub use pay_params::{PayParams, APP_PACKAGE};
pub use refund::{RefundReceipt, RefundRequest, RefundStatus, MAX_REFUND_DESC_CHARS};
pub use trade::{OrderRef, OrderStatus, TradeState};
