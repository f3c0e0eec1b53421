//! API v2's client: signed XML calls (refunds over mutual TLS), WeChat's
//! simulation environment and its sign key, and the v2 notifications.

use std::sync::{Arc, Mutex, PoisonError};

use super::generation::{Context, Generation};
use super::log_notification;
use crate::api::v2::merchant::V2Merchant;
use crate::api::v2::notify::{
    v2_failure_reply, verify_v2_payment, verify_v2_refund, V2_SUCCESS_REPLY,
};
use crate::api::v2::{self, xml, Signer};
use crate::config::Api;
use crate::crypto::sign::{Fields, SignType};
use crate::error::{Error, Result};
use crate::http::Transport;
use crate::model::{
    Order, OrderRef, OrderStatus, PayParams, PaymentNotification, RefundNotification,
    RefundReceipt, RefundRequest, RefundStatus,
};
use crate::util::money::Fen;
use crate::util::secret::Secret;

/// An API v2 merchant, its refund transport and, in WeChat's simulation
/// environment, the key it signs with.
pub(crate) struct V2Client {
    pub merchant: V2Merchant,
    /// The transport with the merchant's client certificate, for refunds.
    pub refund_transport: Option<Arc<dyn Transport>>,
    /// In WeChat's simulation environment, the key it signs with (fetched once).
    pub sandbox_key: Option<Mutex<Option<Secret>>>,
}

impl Generation for V2Client {
    fn api(&self) -> Api {
        Api::V2
    }

    /// `unifiedorder` (its answer verified), then the parameters signed with
    /// the merchant's algorithm.
    fn build_pay_params(&self, cx: &Context, order: &Order) -> Result<PayParams> {
        let now = cx.clock.now_unix();
        let nonce = cx.nonces.nonce();
        let fields = v2::unifiedorder_fields(&self.merchant, order, now, &nonce);
        let answer = self.call(cx, v2::UNIFIEDORDER, fields, false)?;
        let prepay_id = v2::prepay_id(&answer)?;
        let key = self.key(cx)?;
        let signer = self.signer(&key);
        Ok(v2::app_params(
            &self.merchant,
            &signer,
            order,
            &prepay_id,
            now,
            &nonce,
        ))
    }

    fn query_order(&self, cx: &Context, order: &OrderRef) -> Result<OrderStatus> {
        let fields = v2::order_ref_fields(&self.merchant, order, &cx.nonces.nonce());
        v2::order_status(&self.call(cx, v2::ORDERQUERY, fields, false)?)
    }

    fn close_order(&self, cx: &Context, order: &OrderRef) -> Result<()> {
        let fields = v2::order_ref_fields(&self.merchant, order, &cx.nonces.nonce());
        self.call(cx, v2::CLOSEORDER, fields, false).map(drop)
    }

    fn refund(&self, cx: &Context, refund: &RefundRequest) -> Result<RefundReceipt> {
        let fields = v2::refund_fields(&self.merchant, refund, &cx.nonces.nonce())?;
        v2::refund_receipt(&self.call(cx, v2::REFUND, fields, true)?)
    }

    fn query_refunds(&self, cx: &Context, order: &OrderRef) -> Result<Vec<RefundStatus>> {
        let fields = v2::order_ref_fields(&self.merchant, order, &cx.nonces.nonce());
        v2::refund_statuses(&self.call(cx, v2::REFUNDQUERY, fields, false)?)
    }

    fn verify_payment_notification(
        &self,
        cx: &Context,
        body: &[u8],
        expected_total_fee: Option<Fen>,
    ) -> Result<PaymentNotification> {
        // In WeChat's simulation environment notifications are signed with
        // its key too.
        let simulated;
        let merchant = match &self.sandbox_key {
            Some(_) => {
                simulated = V2Merchant {
                    api_key: self.key(cx)?,
                    ..self.merchant.clone()
                };
                &simulated
            }
            None => &self.merchant,
        };
        let verified = verify_v2_payment(body, merchant, expected_total_fee);
        log_notification("v2 payment", verified, |n| &n.out_trade_no)
    }

    fn verify_refund_notification(
        &self,
        _cx: &Context,
        body: &[u8],
        expected_refund_fee: Option<Fen>,
    ) -> Result<RefundNotification> {
        let verified = verify_v2_refund(body, &self.merchant, expected_refund_fee);
        log_notification("v2 refund", verified, |n| &n.out_refund_no)
    }

    fn success_reply(&self) -> String {
        V2_SUCCESS_REPLY.to_owned()
    }

    fn failure_reply(&self, reason: &str) -> String {
        v2_failure_reply(reason)
    }
}

impl V2Client {
    /// The key requests and answers are signed with: the API key, or in
    /// WeChat's simulation environment the key fetched from `getsignkey`.
    fn key(&self, cx: &Context) -> Result<Secret> {
        let Some(slot) = &self.sandbox_key else {
            return Ok(self.merchant.api_key.clone());
        };
        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(key) = slot.as_ref() {
            log::trace!("simulation environment: sign key cached");
            return Ok(key.clone());
        }
        log::debug!("simulation environment: fetching the sign key (getsignkey)");
        let mut fields = Fields::new();
        fields.insert("mch_id".into(), self.merchant.mch_id.clone());
        fields.insert("nonce_str".into(), cx.nonces.nonce());
        let signer = Signer {
            key: &self.merchant.api_key,
            sign_type: SignType::Md5,
        };
        let request = v2::request(&cx.api_base, v2::GETSIGNKEY, false, fields, &signer);
        let response = cx.transport.send(&request)?;
        if response.status != 200 {
            return Err(Error::HttpStatus {
                status: response.status,
            });
        }
        let answer =
            xml::parse(&response.body).map_err(|e| Error::MalformedResponse(e.to_string()))?;
        if answer.get("return_code").map(String::as_str) != Some("SUCCESS") {
            return Err(Error::Rejected {
                code: "FAIL".into(),
                message: answer.get("return_msg").cloned().unwrap_or_default(),
                http_status: None,
            });
        }
        let key = Secret::new(v2::required(&answer, "sandbox_signkey")?);
        *slot = Some(key.clone());
        Ok(key)
    }

    /// The simulation environment signs with MD5 only; otherwise the
    /// merchant's algorithm.
    fn signer<'a>(&self, key: &'a Secret) -> Signer<'a> {
        let sign_type = match self.sandbox_key {
            Some(_) => SignType::Md5,
            None => self.merchant.sign_type,
        };
        Signer { key, sign_type }
    }

    /// Signs and sends one v2 request, and verifies its answer.
    fn call(&self, cx: &Context, path: &str, fields: Fields, refund: bool) -> Result<Fields> {
        let transport = if refund {
            self.refund_transport.as_ref().ok_or_else(|| {
                Error::config(
                    "client_cert",
                    "refunds need the merchant's client certificate",
                )
            })?
        } else {
            &cx.transport
        };
        let key = self.key(cx)?;
        let signer = self.signer(&key);
        let request = v2::request(
            &cx.api_base,
            path,
            self.sandbox_key.is_some(),
            fields,
            &signer,
        );
        let response = transport.send(&request)?;
        let answer = v2::parse_response(&response, &signer);
        match &answer {
            Ok(_) => log::trace!("v2 {path}: answer verified ({})", signer.sign_type.as_str()),
            Err(e) => log::debug!("v2 {path}: {e}"),
        }
        answer
    }
}
