//! The C ABI of libwxpay: the crate's only hand-written `unsafe` code.
//!
//! cbindgen turns this module and the files below into `include/wxpay.h`;
//! the doc comments of the exported items are written for C readers and
//! copied into the header. The shape follows rustls-ffi:
//!
//! - `results.rs`: the one [`WxPayResult`] enum of stable codes, their names
//!   and messages, and the conventions every function follows (stated once,
//!   on that enum);
//! - `boundary.rs`: the glue every export runs through, written once: panics
//!   caught, pointers checked for NULL, strings bounded by
//!   [`WXPAY_MAX_INPUT_BYTES`] and checked for UTF-8, out-pointers cleared
//!   and written, the error document; and [`wxpay_string_free`], the one way
//!   to free a string this library returns;
//! - `documents.rs`: the JSON document arguments, read strictly into the
//!   model's types (no unsafe code);
//! - `client.rs`: the opaque, typed [`WxPayClient`] handle, created by one
//!   function and freed by one NULL-tolerant function, and the gateway
//!   operations;
//! - `sign.rs`: signing without a client;
//! - `notify.rs`: verifying notifications, and the replies to answer them
//!   with.
//!
//! Nothing here knows the protocol: an export reads its arguments, calls the
//! core ([`Client`](crate::Client) and the model), and serialises its answer.

// The order of these modules is the order of the functions in the header.
mod results;

mod client;

mod sign;

mod notify;

mod boundary;
mod documents;

pub use boundary::{wxpay_string_free, WXPAY_MAX_INPUT_BYTES};
pub use client::{
    wxpay_build_pay_params, wxpay_client_free, wxpay_client_new, wxpay_close_order,
    wxpay_download_certificates, wxpay_query_order, wxpay_query_refunds, wxpay_refund, WxPayClient,
};
pub use notify::{
    wxpay_notification_failure_reply, wxpay_notification_success_reply,
    wxpay_verify_payment_notification, wxpay_verify_refund_notification,
    wxpay_verify_signed_notification,
};
pub use results::{wxpay_result_message, wxpay_result_name, wxpay_version, WxPayResult};
pub use sign::wxpay_sign;
