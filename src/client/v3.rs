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
use crate::api::v3::notify::{self as v3_notify, v3_failure_reply, verify_v3_payment};
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
    merchant: V3Merchant,
    /// The platform certificates downloaded so far (certificate mode, and in
    /// public-key mode those that answers signed by a certificate named).
    certs: RwLock<PlatformCerts>,
    /// Held by a download that a call (an order, a query...) is waiting for,
    /// so that concurrent callers share one.
    call_download: Mutex<()>,
    /// Held by a download that a notification's unknown serial caused: a
    /// call never waits behind one.
    notification_download: Mutex<()>,
}

/// The platform certificates a v3 client knows.
#[derive(Default)]
struct PlatformCerts {
    keys: HashMap<String, VerifyingKey>,
    /// When the last download finished.
    fetched_at: Option<u64>,
    /// How many downloads finished: a caller that waited for a download
    /// sees it change and needs none of its own.
    downloads: u64,
}

/// Why a download is wanted: a call waits for one at a time, a notification
/// only ever behind other notifications.
#[derive(Clone, Copy)]
enum Cause {
    Call,
    Notification,
}

impl V3Client {
    /// A client for `merchant` with no certificate yet.
    pub fn new(merchant: V3Merchant) -> V3Client {
        V3Client {
            merchant,
            certs: RwLock::new(PlatformCerts::default()),
            call_download: Mutex::new(()),
            notification_download: Mutex::new(()),
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
        self.download(cx, Cause::Call)
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
                if self.refresh_for_unknown_serial(cx, Cause::Notification)? =>
            {
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

    fn reply_status(&self, verified: bool) -> Option<u16> {
        Some(if verified {
            v3_notify::SUCCESS_STATUS
        } else {
            v3_notify::FAILURE_STATUS
        })
    }
}

impl V3Client {
    /// The key for `serial`: WeChat Pay's public key, or a platform
    /// certificate. During WeChat's move from certificates to the public key
    /// answers of both kinds arrive, so a public-key client knows the
    /// certificates that such an answer made it download too.
    fn key(&self, serial: &str) -> Option<VerifyingKey> {
        if let V3Verification::PublicKey { id, key } = &self.merchant.verification {
            if serial == id {
                return Some(key.clone());
            }
        }
        self.certs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys
            .get(serial)
            .cloned()
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
        let due = fetched_at.is_none_or(|at| now >= at.saturating_add(refresh_secs));
        if due {
            match fetched_at {
                None => log::debug!("no platform certificate yet: downloading them"),
                Some(at) => log::debug!(
                    "platform certificates {} s old (refresh every {refresh_secs} s): downloading them",
                    now.saturating_sub(at)
                ),
            }
            self.download(cx, Cause::Call)?;
        }
        Ok(())
    }

    /// After a signature named a serial this client does not know: whether
    /// to verify again, the certificates having been downloaded since. A
    /// download is made only when none finished in the last
    /// `unknown_serial_interval_secs`: forged serials cannot make a client
    /// download on every request, and a serial still unknown right after a
    /// download is refused without one.
    ///
    /// In public-key mode only answers to this client's own calls download
    /// certificates: a notification is anyone's request, and its serial
    /// alone never makes such a client reach the gateway.
    fn refresh_for_unknown_serial(&self, cx: &Context, cause: Cause) -> Result<bool> {
        let public_key_mode =
            matches!(self.merchant.verification, V3Verification::PublicKey { .. });
        if public_key_mode && matches!(cause, Cause::Notification) {
            return Ok(false);
        }
        let (seen, fetched_at) = {
            let certs = self.certs.read().unwrap_or_else(PoisonError::into_inner);
            (certs.downloads, certs.fetched_at)
        };
        let now = cx.clock.now_unix();
        let interval = self.merchant.unknown_serial_interval_secs;
        if fetched_at.is_some_and(|at| now < at.saturating_add(interval)) {
            log::debug!(
                "a key serial this client does not know, {} s after a download: refused without another",
                now.saturating_sub(fetched_at.unwrap_or(now))
            );
            return Ok(false);
        }
        log::debug!(
            "a key serial this client does not know: downloading the platform certificates"
        );
        self.download_unless(cx, cause, seen).map(|_| true)
    }

    /// Downloads the platform certificates, unless a download finished while
    /// this caller waited for its turn.
    fn download(&self, cx: &Context, cause: Cause) -> Result<usize> {
        let seen = self
            .certs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .downloads;
        self.download_unless(cx, cause, seen)
    }

    /// Downloads the platform certificates unless the count of finished
    /// downloads moved past `seen` while this caller waited; how many
    /// certificates the client knows.
    fn download_unless(&self, cx: &Context, cause: Cause, seen: u64) -> Result<usize> {
        let lock = match cause {
            Cause::Call => &self.call_download,
            Cause::Notification => &self.notification_download,
        };
        let _one_at_a_time = lock.lock().unwrap_or_else(PoisonError::into_inner);
        {
            let certs = self.certs.read().unwrap_or_else(PoisonError::into_inner);
            if certs.downloads != seen {
                log::trace!("platform certificates downloaded while waiting: using them");
                return Ok(certs.keys.len());
            }
        }
        let keys = self.fetch_certificates(cx)?;
        let count = keys.len();
        let mut certs = self.certs.write().unwrap_or_else(PoisonError::into_inner);
        certs.keys = keys;
        certs.fetched_at = Some(cx.clock.now_unix());
        certs.downloads += 1;
        Ok(count)
    }

    /// One signed `GET /v3/certificates`: the certificates, decrypted with
    /// the API v3 key and the answer verified with one of them (or with
    /// WeChat Pay's public key, in public-key mode).
    fn fetch_certificates(&self, cx: &Context) -> Result<HashMap<String, VerifyingKey>> {
        let request = auth::request(
            &cx.api_base,
            &self.merchant,
            Method::Get,
            v3::CERTIFICATES_PATH,
            None,
            cx.clock.now_unix(),
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
        let public_key = match &self.merchant.verification {
            V3Verification::PublicKey { id, key } => Some((id, key)),
            V3Verification::Certificates { .. } => None,
        };
        auth::verify_signed(&headers, &response.body, cx.clock.now_unix(), |serial| {
            keys.get(serial).cloned().or_else(|| {
                public_key
                    .filter(|(id, _)| *id == serial)
                    .map(|(_, key)| key.clone())
            })
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
        Ok(keys)
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
            Err(SignatureError::UnknownSerial(serial))
                if self.refresh_for_unknown_serial(cx, Cause::Call)? =>
            {
                log::debug!("v3 {shown}: answer signed with serial {serial}, unknown until now");
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
