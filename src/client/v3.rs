//! API v3's client: RSA-signed JSON calls whose answers are verified, the
//! platform certificates (certificate mode), and signed notifications.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, RwLock};

use serde_json::{Map, Value};

use super::generation::{Context, Generation};
use super::log_notification;
use crate::api::notify::NotifyError;
use crate::api::v3::auth::{self, SignatureError, SignedHeaders};
use crate::api::v3::certificates::platform_certificates;
use crate::api::v3::merchant::{V3Merchant, V3Verification};
use crate::api::v3::notify::{v3_failure_reply, verify_v3_payment};
use crate::api::v3::{self as v3};
use crate::config::Api;
use crate::crypto::rsa::VerifyingKey;
use crate::error::{Error, Result};
use crate::http::Method;
use crate::model::{
    Order, OrderRef, OrderStatus, PayParams, PaymentNotification, RefundReceipt, RefundRequest,
};
use crate::util::money::Fen;

/// An API v3 merchant and the platform certificates it knows.
pub(crate) struct V3Client {
    pub merchant: V3Merchant,
    /// Certificate mode: the platform certificates downloaded so far.
    pub certs: RwLock<PlatformCerts>,
    /// Held while certificates download, so concurrent callers wait for one.
    pub downloading: Mutex<()>,
}

/// The platform certificates a v3 client knows.
#[derive(Default)]
pub(crate) struct PlatformCerts {
    keys: HashMap<String, VerifyingKey>,
    fetched_at: Option<u64>,
}

impl V3Client {
    /// A client for `merchant` with no certificate yet.
    pub fn new(merchant: V3Merchant) -> V3Client {
        V3Client {
            merchant,
            certs: RwLock::new(PlatformCerts::default()),
            downloading: Mutex::new(()),
        }
    }
}

impl Generation for V3Client {
    fn api(&self) -> Api {
        Api::V3
    }

    fn build_pay_params(&self, cx: &Context, order: &Order) -> Result<PayParams> {
        let now = cx.clock.now_unix();
        let nonce = cx.nonces.nonce();
        let body = v3::app_order_body(&self.merchant, order, now);
        let answer = self.call(cx, Method::Post, v3::APP_ORDER_PATH, Some(&body))?;
        let prepay_id = v3::prepay_id(&answer.unwrap_or_default())?;
        Ok(v3::app_params(
            &self.merchant,
            order,
            &prepay_id,
            now,
            &nonce,
        ))
    }

    fn query_order(&self, cx: &Context, order: &OrderRef) -> Result<OrderStatus> {
        let path = v3::query_path(&self.merchant, order);
        let answer = self.call(cx, Method::Get, &path, None)?;
        v3::order_status(&answer.unwrap_or_default())
    }

    fn close_order(&self, cx: &Context, order: &OrderRef) -> Result<()> {
        let (_, out_trade_no) = order.field();
        let body = serde_json::json!({ "mchid": self.merchant.mchid });
        self.call(cx, Method::Post, &v3::close_path(out_trade_no), Some(&body))
            .map(drop)
    }

    fn refund(&self, cx: &Context, refund: &RefundRequest) -> Result<RefundReceipt> {
        let body = v3::refund_body(&self.merchant, refund)?;
        let answer = self.call(cx, Method::Post, v3::REFUND_PATH, Some(&body))?;
        v3::refund_receipt(&answer.unwrap_or_default())
    }

    fn download_certificates(&self, cx: &Context) -> Result<usize> {
        let _one_at_a_time = self
            .downloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = cx.clock.now_unix();
        let request = auth::request(
            &cx.api_base,
            &self.merchant,
            Method::Get,
            v3::CERTIFICATES_PATH,
            None,
            now,
            &cx.nonces.nonce(),
        )?;
        log::debug!("downloading the platform certificates");
        let response = cx.transport.send(&request)?;
        if !(200..300).contains(&response.status) {
            let err = v3::error_of(&response);
            log::debug!("certificate download refused: {err}");
            return Err(err);
        }
        let keys = platform_certificates(
            &v3::json_body(&response)?,
            self.merchant.api_v3_key.expose().as_bytes(),
        )?;
        // Decrypting them with the API v3 key authenticates the certificates;
        // the answer must then verify with one of them.
        let headers = SignedHeaders::from_response(&response).ok_or_else(|| {
            Error::MalformedResponse("the certificates answer is not signed".into())
        })?;
        auth::verify_signed(&headers, &response.body, cx.clock.now_unix(), |serial| {
            keys.get(serial).cloned()
        })
        .map_err(|e| {
            log::debug!("the certificates answer does not verify: {e}");
            Error::MalformedResponse(format!("the certificates answer: {e}"))
        })?;
        let mut serials: Vec<&str> = keys.keys().map(String::as_str).collect();
        serials.sort_unstable();
        log::debug!(
            "downloaded {} platform certificate(s): serial {}",
            keys.len(),
            serials.join(", ")
        );
        let count = keys.len();
        let mut store = self.certs.write().unwrap_or_else(PoisonError::into_inner);
        store.keys = keys;
        store.fetched_at = Some(now);
        Ok(count)
    }

    /// API v3 notifications are signed in their headers: a body alone is
    /// refused as a notification that does not verify.
    fn verify_payment_notification(
        &self,
        _cx: &Context,
        _body: &[u8],
        _expected_total_fee: Option<Fen>,
    ) -> Result<PaymentNotification> {
        let refused = Err(NotifyError::Json(
            "API v3 notifications are verified with their Wechatpay-* headers: use verify_signed_notification".into(),
        ));
        log_notification("v3 payment", refused, |n: &PaymentNotification| {
            &n.out_trade_no
        })
    }

    fn verify_signed_notification(
        &self,
        cx: &Context,
        headers: &[(String, String)],
        body: &[u8],
        expected_total_fee: Option<Fen>,
    ) -> Result<PaymentNotification> {
        let signed =
            SignedHeaders::from_pairs(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .ok_or_else(|| {
                    Error::InvalidNotification("a Wechatpay-* header is missing".into())
                })?;
        let verify = || {
            verify_v3_payment(
                &signed,
                body,
                &self.merchant,
                cx.clock.now_unix(),
                |s| self.key(s),
                expected_total_fee,
            )
        };
        let verified = match verify() {
            Err(NotifyError::Signature(SignatureError::UnknownSerial(_)))
                if self.uses_certificates() =>
            {
                log::debug!(
                    "v3 notification signed with a key serial this client does not know: downloading the platform certificates once"
                );
                self.download_certificates(cx)?;
                verify()
            }
            other => other,
        };
        log_notification("v3 payment", verified, |n| &n.out_trade_no)
    }

    fn success_reply(&self) -> String {
        // An empty body with status 200 or 204.
        String::new()
    }

    fn failure_reply(&self, reason: &str) -> String {
        v3_failure_reply(reason)
    }
}

impl V3Client {
    fn uses_certificates(&self) -> bool {
        matches!(
            self.merchant.verification,
            V3Verification::Certificates { .. }
        )
    }

    /// The key for `serial`: WeChat Pay's public key, or a platform certificate.
    fn key(&self, serial: &str) -> Option<VerifyingKey> {
        match &self.merchant.verification {
            V3Verification::PublicKey { id, key } => (serial == id).then(|| key.clone()),
            V3Verification::Certificates { .. } => self
                .certs
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .keys
                .get(serial)
                .cloned(),
        }
    }

    /// Certificate mode: downloads certificates when there are none or they
    /// are due.
    fn ensure_certificates(&self, cx: &Context) -> Result<()> {
        let V3Verification::Certificates { refresh_secs } = self.merchant.verification else {
            return Ok(());
        };
        let fetched_at = self
            .certs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .fetched_at;
        let now = cx.clock.now_unix();
        let due = fetched_at.is_none_or(|at| now >= at + refresh_secs);
        if due {
            match fetched_at {
                None => log::debug!("no platform certificate yet: downloading them"),
                Some(at) => log::debug!(
                    "platform certificates {} s old (refresh every {refresh_secs} s): downloading them",
                    now.saturating_sub(at)
                ),
            }
            self.download_certificates(cx)?;
        }
        Ok(())
    }

    /// Signs and sends one v3 request and verifies its answer; the JSON
    /// object of a 2xx answer with a body.
    fn call(
        &self,
        cx: &Context,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Map<String, Value>>> {
        self.ensure_certificates(cx)?;
        let request = auth::request(
            &cx.api_base,
            &self.merchant,
            method,
            path,
            body,
            cx.clock.now_unix(),
            &cx.nonces.nonce(),
        )?;
        // The path without its query (which names the merchant).
        let shown = path.split('?').next().unwrap_or_default();
        let response = cx.transport.send(&request)?;
        if !(200..300).contains(&response.status) {
            let err = v3::error_of(&response);
            log::debug!("v3 {shown}: {err}");
            return Err(err);
        }
        let headers = SignedHeaders::from_response(&response).ok_or_else(|| {
            log::debug!("v3 {shown}: HTTP {} answer is not signed", response.status);
            Error::MalformedResponse(
                "a 2xx answer without Wechatpay-* signature headers (forged?)".into(),
            )
        })?;
        let verify = || {
            auth::verify_signed(&headers, &response.body, cx.clock.now_unix(), |s| {
                self.key(s)
            })
        };
        let verified = match verify() {
            Err(SignatureError::UnknownSerial(serial)) if self.uses_certificates() => {
                log::debug!(
                    "v3 {shown}: answer signed with unknown serial {serial}: downloading the platform certificates once"
                );
                self.download_certificates(cx)?;
                verify()
            }
            other => other,
        };
        verified.map_err(|e| {
            log::debug!("v3 {shown}: answer signature refused: {e}");
            Error::MalformedResponse(format!("answer signature: {e}"))
        })?;
        log::trace!(
            "v3 {shown}: HTTP {} answer verified (serial {})",
            response.status,
            headers.serial
        );
        if response.body.is_empty() {
            return Ok(None);
        }
        v3::json_body(&response).map(Some)
    }
}
