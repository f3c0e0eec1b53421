//! The 2014 APP flow's client: the access_token (cached in its store and
//! refreshed once when the gateway refuses it), `genprepay`, and payment
//! notifications.

use std::sync::Arc;

use super::generation::{Context, Generation};
use super::log_notification;
use crate::api::legacy::flow::{pay_params, prepay_body};
use crate::api::legacy::merchant::LegacyMerchant;
use crate::api::legacy::notify::{verify_legacy_payment, LEGACY_SUCCESS_REPLY};
use crate::api::legacy::requests::{
    genprepay_request, parse_genprepay_response, parse_token_response, token_request, PrepayBody,
    TOKEN_REJECTED_ERRCODES,
};
use crate::api::legacy::token::{AccessToken, TokenStore};
use crate::config::Api;
use crate::error::{Error, Result};
use crate::model::{Order, PayParams, PaymentNotification};
use crate::util::money::Fen;

/// A 2014-flow merchant and where its access_token is kept.
pub(crate) struct LegacyClient {
    pub merchant: LegacyMerchant,
    pub tokens: Arc<dyn TokenStore>,
}

impl Generation for LegacyClient {
    fn api(&self) -> Api {
        Api::Legacy
    }

    /// Access_token (cached), signed package, `app_signature`, `genprepay`,
    /// SHA1-signed parameters.
    fn build_pay_params(&self, cx: &Context, order: &Order) -> Result<PayParams> {
        let now = cx.clock.now_unix();
        let nonce = cx.nonces.nonce();
        let body = prepay_body(&self.merchant, order, now, &nonce)?;
        let prepayid = self.genprepay(cx, &body)?;
        pay_params(&self.merchant, order, &prepayid, now, &nonce)
    }

    fn verify_payment_notification(
        &self,
        _cx: &Context,
        body: &[u8],
        expected_total_fee: Option<Fen>,
    ) -> Result<PaymentNotification> {
        let query = std::str::from_utf8(body)
            .map_err(|_| Error::InvalidNotification("query string is not UTF-8".into()))?;
        let verified = verify_legacy_payment(query, &self.merchant, expected_total_fee);
        log_notification("2014 payment", verified, |n| &n.out_trade_no)
    }

    fn success_reply(&self) -> String {
        LEGACY_SUCCESS_REPLY.to_owned()
    }

    fn failure_reply(&self, _reason: &str) -> String {
        "fail".to_owned()
    }
}

impl LegacyClient {
    /// `genprepay` with the current token; when the gateway answers 40001, 40014 or
    /// 42001 the token is refreshed once and the identical request sent once
    /// more. Any other error is returned as it is.
    fn genprepay(&self, cx: &Context, body: &PrepayBody) -> Result<String> {
        let token = self.access_token(cx)?;
        match send_genprepay(cx, &token, body) {
            Err(Error::Gateway { errcode, .. }) if TOKEN_REJECTED_ERRCODES.contains(&errcode) => {
                log::debug!("genprepay rejected the access_token ({errcode}); refreshing it once");
                self.tokens.invalidate(&token);
                let token = self.access_token(cx)?;
                send_genprepay(cx, &token, body)
            }
            other => other,
        }
    }

    /// The current access_token, fetched when there is none or it is due.
    fn access_token(&self, cx: &Context) -> Result<AccessToken> {
        let merchant = &self.merchant;
        let fetch = || {
            log::debug!("fetching an access_token for appid {}", merchant.appid);
            let request = token_request(&cx.api_base, &merchant.appid, &merchant.app_secret);
            let response = cx.transport.send(&request)?;
            // The token lives from when it was issued: read the clock after.
            parse_token_response(&response, cx.clock.now_unix())
        };
        self.tokens.get_or_fetch(cx.clock.now_unix(), &fetch)
    }
}

fn send_genprepay(cx: &Context, token: &AccessToken, body: &PrepayBody) -> Result<String> {
    let request = genprepay_request(&cx.api_base, token, body)?;
    let response = cx.transport.send(&request)?;
    let prepayid = parse_genprepay_response(&response);
    match &prepayid {
        Ok(_) => log::trace!("genprepay issued a prepayid (traceid {})", body.traceid),
        Err(e) => log::debug!("genprepay failed (traceid {}): {e}", body.traceid),
    }
    prepayid
}
