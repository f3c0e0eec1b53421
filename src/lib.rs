//! # libwxpay
//!
//! The WeChat Pay (微信支付) APP-payment flow, in-process, for any host: Rust
//! directly, C through the C ABI, Kotlin, Swift and Python through bindings.
//!
//! The flow (the 2014 APP API): fetch an access_token (cached and shared),
//! build and MD5-sign the order `package`, SHA1-sign the `app_signature`,
//! `POST /pay/genprepay` for a `prepayid`, and SHA1-sign the parameters the
//! app hands to the WeChat SDK.
//!
//! ```no_run
//! use wxpay::{Client, Config, Order};
//!
//! let config = Config::from_json(&std::fs::read_to_string("merchant.json")?)?;
//! let client = Client::new(config)?;
//! let order = Order::from_json(
//!     r#"{"out_trade_no":"A1001","total_yuan":"19.99","body":"支付测试","client_ip":"196.168.1.1"}"#,
//! )?;
//! let params = client.build_pay_params(&order)?;
//! println!("{}", serde_json::to_string(&params)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! With the `sandbox` feature, [`sandbox::Sandbox`] runs a local gateway that
//! speaks the same protocol and checks every signature.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod client;
pub mod config;
pub mod crypto;
pub mod error;
#[allow(unsafe_code)]
pub mod ffi;
pub mod http;
pub mod model;
#[cfg(feature = "sandbox")]
pub mod sandbox;
// The uniffi bindings (Kotlin, Swift, Python): safe Rust only. uniffi's
// generated `#[no_mangle] extern "C"` scaffolding comes from its macros and
// needs no `allow(unsafe_code)`; `setup_scaffolding!` sits at the crate root,
// where the derives look for `crate::UniFfiTag`.
#[cfg(feature = "uniffi")]
mod uniffi;
#[cfg(feature = "uniffi")]
::uniffi::setup_scaffolding!("wxpay");
#[cfg(test)]
mod test_vectors;
pub mod util;

pub use client::{Client, ClientBuilder};
pub use config::Config;
pub use crypto::sign::Scheme;
pub use error::{Error, ErrorKind, Result};
pub use model::{
    Order, OrderFields, OrderRef, OrderStatus, PayParams, PaymentNotification, RefundNotification,
    RefundReceipt, RefundRequest, RefundStatus, TradeState,
};
pub use util::charset::Charset;
pub use util::money::Fen;
pub use util::secret::Secret;
