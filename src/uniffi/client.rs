//! [`WxPayClient`], the bindings' client object: one method per operation
//! of [`crate::Client`], taking and returning the core's own records. Each
//! method converts its arguments, calls the core inside [`guard`] and maps
//! the error; what is checked, and how, is the core's.

use std::collections::HashMap;
use std::sync::Arc;

use super::{guard, Config, WxPayError};
use crate::model::{
    Order, OrderFields, OrderRef, OrderStatus, PayParams, PaymentNotification, RefundNotification,
    RefundReceipt, RefundRequest, RefundStatus,
};
use crate::Fen;

/// Runs a verifier inside [`guard`] with its expected amount: `None` stays
/// `None`; zero (or more than the gateway's maximum) is `InvalidArgument`
/// naming `argument`, before the verifier runs.
fn verify_expecting<T>(
    argument: &str,
    fee: Option<u32>,
    verify: impl FnOnce(Option<Fen>) -> crate::Result<T>,
) -> Result<T, WxPayError> {
    guard(|| {
        let expected = fee
            .map(|fee| Fen::new(i64::from(fee)))
            .transpose()
            .map_err(|e| crate::Error::InvalidArgument(format!("{argument} {e}")))?;
        Ok(verify(expected)?)
    })
}

/// A WeChat Pay client for one merchant configuration.
///
/// Thread-safe: share one instance between all threads, so they share one
/// cached access_token and one pool of keep-alive connections. Calls block
/// (they make HTTP requests): call them off the UI thread.
#[derive(Debug, uniffi::Object)]
pub struct WxPayClient {
    inner: crate::Client,
}

#[uniffi::export]
impl WxPayClient {
    /// Validates `config` and builds a client; raises `InvalidConfig`.
    #[uniffi::constructor]
    pub fn new(config: Config) -> Result<Arc<Self>, WxPayError> {
        guard(|| {
            crate::util::logging::init_from_env();
            let inner = crate::Client::new(config.into_core()?)?;
            Ok(Arc::new(WxPayClient { inner }))
        })
    }

    /// Creates the order and returns the signed parameters for the app
    /// (2014 flow: access_token, signed package, `genprepay`; API v2
    /// `unifiedorder`; API v3 `/v3/pay/transactions/app`). An order that
    /// does not check raises `InvalidOrder` before any network call.
    pub fn build_pay_params(&self, order: OrderFields) -> Result<PayParams, WxPayError> {
        guard(|| Ok(self.inner.build_pay_params(&Order::try_from(order)?)?))
    }

    /// API v2 and v3: the state of an order (v2 `orderquery`).
    pub fn query_order(&self, order: OrderRef) -> Result<OrderStatus, WxPayError> {
        guard(|| Ok(self.inner.query_order(&order)?))
    }

    /// API v2 and v3: closes an unpaid order (v2 `closeorder`); a paid one
    /// raises `Rejected` with code `ORDERPAID` (v3: `ORDER_PAID`, with its
    /// `http_status`).
    pub fn close_order(&self, out_trade_no: String) -> Result<(), WxPayError> {
        guard(|| Ok(self.inner.close_order(&out_trade_no)?))
    }

    /// API v2 and v3: refunds all or part of a paid order (v2
    /// `secapi/pay/refund`, over mutual TLS with `client_cert`; v3
    /// RSA-signed). An unpaid order raises `Rejected` with code
    /// `TRADE_STATE_ERROR`; more than is left, `NOTENOUGH` (v3 `NOT_ENOUGH`).
    pub fn refund(&self, refund: RefundRequest) -> Result<RefundReceipt, WxPayError> {
        guard(|| Ok(self.inner.refund(&refund)?))
    }

    /// API v2: the refunds of an order (`refundquery`); an order without
    /// refunds raises `Rejected` with code `REFUNDNOTEXIST`.
    pub fn query_refunds(&self, order: OrderRef) -> Result<Vec<RefundStatus>, WxPayError> {
        guard(|| Ok(self.inner.query_refunds(&order)?))
    }

    /// Verifies a payment notification: the raw body WeChat POSTed to
    /// `notify_url` (API v2: the XML; 2014 flow: the query string). Pass the
    /// order's amount as `expected_total_fee` to have it checked.
    ///
    /// Raises `InvalidNotification` for anything that does not verify: answer
    /// it with `notification_failure_reply` and act on nothing. On success,
    /// act on it idempotently per `out_trade_no` (WeChat repeats it until it
    /// gets `notification_success_reply`).
    pub fn verify_payment_notification(
        &self,
        body: Vec<u8>,
        expected_total_fee: Option<u32>,
    ) -> Result<PaymentNotification, WxPayError> {
        verify_expecting("expected_total_fee", expected_total_fee, |expected| {
            self.inner.verify_payment_notification(&body, expected)
        })
    }

    /// API v2: decrypts and checks a refund notification (its `req_info`,
    /// under the API key). Raises `InvalidNotification` when it does not
    /// verify.
    pub fn verify_refund_notification(
        &self,
        body: Vec<u8>,
        expected_refund_fee: Option<u32>,
    ) -> Result<RefundNotification, WxPayError> {
        verify_expecting("expected_refund_fee", expected_refund_fee, |expected| {
            self.inner.verify_refund_notification(&body, expected)
        })
    }

    /// Verifies an API v3 payment notification: `headers` are the request's
    /// headers (names in any case; the `Wechatpay-Serial`, `-Signature`,
    /// `-Timestamp` and `-Nonce` ones are used, over the raw `body`), then
    /// the decrypted transaction, the merchant's ids and
    /// `expected_total_fee`. Two names that differ only in case raise
    /// `InvalidArgument`.
    ///
    /// Raises `InvalidNotification` for anything that does not verify:
    /// answer it with status 500 and `notification_failure_reply`, and act on
    /// nothing. On success, act on it idempotently per `out_trade_no` and
    /// answer with status 204 and an empty body.
    pub fn verify_signed_notification(
        &self,
        headers: HashMap<String, String>,
        body: Vec<u8>,
        expected_total_fee: Option<u32>,
    ) -> Result<PaymentNotification, WxPayError> {
        verify_expecting("expected_total_fee", expected_total_fee, |expected| {
            let headers: Vec<(String, String)> = headers.into_iter().collect();
            self.inner
                .verify_signed_notification(&headers, &body, expected)
        })
    }

    /// API v3, certificate mode: downloads WeChat Pay's platform certificates
    /// now and returns how many there are (clients also do it by
    /// themselves when needed).
    pub fn download_certificates(&self) -> Result<u32, WxPayError> {
        guard(|| {
            let count = self.inner.download_certificates()?;
            Ok(u32::try_from(count).unwrap_or(u32::MAX))
        })
    }

    /// The body that acknowledges a verified notification (the v2 SUCCESS
    /// XML, `success` for the 2014 flow, the empty string for API v3, sent
    /// with status 204).
    pub fn notification_success_reply(&self) -> Result<String, WxPayError> {
        guard(|| Ok(self.inner.notification_success_reply()))
    }

    /// The body that refuses a notification, so WeChat sends it again (the
    /// v2 FAIL XML carrying `reason`, `fail` for the 2014 flow, or for API v3
    /// `{"code":"FAIL","message":reason}`, sent with status 500). Do not
    /// put secrets in `reason`: it goes back to the sender.
    pub fn notification_failure_reply(&self, reason: String) -> Result<String, WxPayError> {
        guard(|| Ok(self.inner.notification_failure_reply(&reason)))
    }
}

#[cfg(test)]
mod tests {
    //! The glue only: records reach the core, errors come back mapped. The
    //! flow itself is tested in the core and `tests/flow.rs`.

    use super::*;
    use crate::config::ClientCertConfig;
    use crate::crypto::sign::Fields;
    use crate::uniffi::config::tests::{config, no_cert, v2_config, v3_config};

    /// An order of 19.99 yuan, given in yuan.
    fn order() -> OrderFields {
        let order = Order::new("A1", Fen::new(1999).expect("fen"), "b", "1.2.3.4").expect("order");
        OrderFields {
            total_fee: None,
            total_yuan: Some("19.99".into()),
            ..order.into()
        }
    }

    #[test]
    fn order_errors_name_the_field_before_any_call() {
        // api_base points nowhere: an attempt to send would be a Network error.
        let client = WxPayClient::new(Config {
            api_base: Some("http://127.0.0.1:1".into()),
            ..config()
        })
        .expect("legacy client");
        for (fee, yuan, field) in [
            (None, Some("0.001"), "total_yuan"),
            (None, Some("0"), "total_yuan"),
            (Some(0), None, "total_fee"),
            (None, None, "total_fee"),
            (Some(1), Some("0.01"), "total_fee"),
        ] {
            let err = client
                .build_pay_params(OrderFields {
                    total_fee: fee,
                    total_yuan: yuan.map(str::to_owned),
                    ..order()
                })
                .err();
            assert!(
                matches!(&err, Some(WxPayError::InvalidOrder { field: f, message })
                    if f == field && message.starts_with(&format!("invalid order: {field}"))),
                "{fee:?} {yuan:?}: {err:?}"
            );
        }
        assert!(matches!(
            client.build_pay_params(order()),
            Err(WxPayError::Network { .. })
        ));
    }

    #[test]
    fn client_certificates_are_read_when_the_client_is_built() {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        WxPayClient::new(Config {
            client_cert: Some(ClientCertConfig {
                pkcs12_file: Some(format!("{fixtures}/apiclient_cert.p12").into()),
                pkcs12_password: Some("10000100".into()),
                ..no_cert()
            }),
            ..v2_config()
        })
        .expect("client with a PKCS#12 certificate");
        let field_of = |cert: ClientCertConfig| match WxPayClient::new(Config {
            client_cert: Some(cert),
            ..v2_config()
        })
        .err()
        {
            Some(WxPayError::InvalidConfig { field, message }) => {
                assert!(!message.contains("SECRET"), "{message}");
                field
            }
            other => panic!("expected InvalidConfig, got {other:?}"),
        };
        assert_eq!(field_of(no_cert()), "client_cert");
        assert_eq!(
            field_of(ClientCertConfig {
                pkcs12_file: Some("/nonexistent/apiclient_cert.p12".into()),
                pkcs12_password: Some("SECRET-PASSWORD".into()),
                ..no_cert()
            }),
            "client_cert.pkcs12_file"
        );
    }

    /// An API v2 payment notification for `v2_config()`, signed with its key.
    fn v2_notification(total_fee: &str) -> Vec<u8> {
        let mut fields: Fields = [
            ("return_code", "SUCCESS"),
            ("result_code", "SUCCESS"),
            ("appid", "wxd930ea5d5a258f4f"),
            ("mch_id", "10000100"),
            ("nonce_str", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"),
            ("out_trade_no", "A1"),
            ("transaction_id", "4200000001202401010000000001"),
            ("total_fee", total_fee),
            ("time_end", "20240101120000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let key = crate::Secret::new("192006250b4c09247ec02edce69f6a2d".to_owned());
        let sign = crate::crypto::sign::sign_v2(&fields, &key, crate::crypto::sign::SignType::Md5);
        fields.insert("sign".into(), sign.into_signature());
        crate::api::v2::xml::write(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .into_bytes()
    }

    #[test]
    fn notifications_verify_through_the_client() {
        let client = WxPayClient::new(v2_config()).expect("v2 client");
        let body = v2_notification("1999");
        let n = client
            .verify_payment_notification(body.clone(), Some(1999))
            .expect("verifies");
        assert!(n.paid);
        assert_eq!(n.out_trade_no, "A1");
        assert_eq!(n.total_fee, 1999);
        assert_eq!(n.time_end.as_deref(), Some("20240101120000"));
        assert_eq!(n.fields["mch_id"], "10000100");
        assert!(n.fields.contains_key("sign"));

        let invalid = |r: Result<PaymentNotification, WxPayError>| {
            matches!(r, Err(WxPayError::InvalidNotification { .. }))
        };
        // The wrong amount, and a body altered after signing.
        assert!(invalid(
            client.verify_payment_notification(body.clone(), Some(1))
        ));
        let tampered = String::from_utf8(body.clone())
            .expect("utf-8")
            .replace("1999", "2999");
        assert!(invalid(
            client.verify_payment_notification(tampered.into_bytes(), None)
        ));
        assert!(matches!(
            client.verify_payment_notification(body, Some(0)),
            Err(WxPayError::InvalidArgument { message }) if message.contains("expected_total_fee")
        ));
        assert!(matches!(
            client.verify_refund_notification(b"<xml></xml>".to_vec(), None),
            Err(WxPayError::InvalidNotification { .. })
        ));

        assert_eq!(
            client.notification_success_reply().as_deref(),
            Ok(crate::api::v2::notify::V2_SUCCESS_REPLY)
        );
        let fail = client
            .notification_failure_reply("busy".into())
            .expect("reply");
        assert!(fail.contains("FAIL") && fail.contains("busy"), "{fail}");
    }

    #[test]
    fn a_legacy_client_refuses_v2_operations_before_any_call() {
        // api_base points nowhere: an attempt to send would be a Network error.
        let client = WxPayClient::new(Config {
            api_base: Some("http://127.0.0.1:1".into()),
            ..config()
        })
        .expect("legacy client");
        let order = || OrderRef::OutTradeNo("A1".into());
        let refused = |r: Result<(), WxPayError>| matches!(&r, Err(WxPayError::InvalidArgument { message }) if message.contains("legacy"));
        assert!(refused(client.query_order(order()).map(drop)));
        assert!(refused(client.close_order("A1".into())));
        assert!(refused(client.query_refunds(order()).map(drop)));
        assert!(refused(
            client
                .refund(RefundRequest {
                    order: order(),
                    out_refund_no: "R1".into(),
                    total_fee: 2,
                    refund_fee: 1,
                    refund_desc: None,
                })
                .map(drop)
        ));
        assert!(refused(
            client
                .verify_refund_notification(Vec::new(), None)
                .map(drop)
        ));
        assert!(matches!(
            client.verify_payment_notification(b"sign=x".to_vec(), None),
            Err(WxPayError::InvalidNotification { .. })
        ));
        assert_eq!(
            client.notification_success_reply().as_deref(),
            Ok("success")
        );
        assert_eq!(
            client.notification_failure_reply("x".into()).as_deref(),
            Ok("fail")
        );
    }

    #[test]
    fn signed_notifications_check_their_headers() {
        let client = WxPayClient::new(v3_config()).expect("a v3 client");
        let twice = HashMap::from([
            ("Wechatpay-Nonce".to_owned(), "a".to_owned()),
            ("wechatpay-nonce".to_owned(), "b".to_owned()),
        ]);
        let err = client
            .verify_signed_notification(twice, b"{}".to_vec(), None)
            .expect_err("a header twice");
        assert!(
            matches!(&err, WxPayError::InvalidArgument { message } if message.contains("more than once")),
            "{err:?}"
        );
        let err = client
            .verify_signed_notification(HashMap::new(), b"{}".to_vec(), Some(1))
            .expect_err("no headers");
        assert!(
            matches!(&err, WxPayError::InvalidNotification { .. }),
            "{err:?}"
        );
        assert_eq!(client.notification_success_reply().expect("reply"), "");

        let v2 = WxPayClient::new(v2_config()).expect("a v2 client");
        let err = v2
            .verify_signed_notification(HashMap::new(), b"{}".to_vec(), None)
            .expect_err("v3 only");
        assert!(
            matches!(&err, WxPayError::InvalidArgument { .. }),
            "{err:?}"
        );
        assert!(matches!(
            v2.download_certificates(),
            Err(WxPayError::InvalidArgument { .. })
        ));
    }
}
