//! The client: runs a merchant's payments against WeChat's gateway (or the
//! sandbox) in the API generation its configuration names, with the
//! access_token cache, transports, clock and nonce source.
//!
//! A [`Client`] is `Send + Sync`: share one (behind an `Arc` or a `static`)
//! between all the threads of a process, so they share one access_token and
//! one pool of keep-alive connections.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use url::Url;

use crate::api::legacy::flow::{pay_params, prepay_body};
use crate::api::legacy::merchant::LegacyMerchant;
use crate::api::legacy::requests::{
    genprepay_request, parse_genprepay_response, parse_token_response, token_request, PrepayBody,
    TOKEN_REJECTED_ERRCODES,
};
use crate::api::legacy::token::{self, AccessToken, TokenStore};
use crate::api::v2::merchant::V2Merchant;
use crate::api::v2::notify as v2_notify;
use crate::api::v2::xml;
use crate::api::v2::{self, Signer};
use crate::api::v3;
use crate::api::v3::auth::{SignatureError, SignedHeaders};
use crate::api::v3::merchant::{V3Merchant, V3Verification};
use crate::api::v3::notify as v3_notify;
use crate::api::{legacy, notify};
use crate::config::{Api, Config};
use crate::crypto::rsa::VerifyingKey;
use crate::crypto::sign::{Fields, SignType};
use crate::error::{Error, Result};
use crate::http::Method;
use crate::http::{HttpTransport, Transport};
use crate::model::Order;
use crate::model::PayParams;
use crate::model::{OrderRef, OrderStatus, RefundReceipt, RefundRequest, RefundStatus};
use crate::model::{PaymentNotification, RefundNotification};
use crate::util::clock::{Clock, SystemClock};
use crate::util::money::Fen;
use crate::util::nonce::{NonceSource, RandomNonce};
use crate::util::secret::Secret;

/// A WeChat Pay client for one merchant configuration.
pub struct Client {
    config: Config,
    api_base: Url,
    transport: Arc<dyn Transport>,
    clock: Arc<dyn Clock>,
    nonces: Arc<dyn NonceSource>,
    generation: Generation,
}

/// What differs between API generations.
enum Generation {
    Legacy {
        merchant: LegacyMerchant,
        tokens: Arc<dyn TokenStore>,
    },
    V2 {
        merchant: V2Merchant,
        /// The transport with the merchant's client certificate, for refunds.
        refund_transport: Option<Arc<dyn Transport>>,
        /// In WeChat's simulation environment, the key it signs with.
        sandbox_key: Option<Mutex<Option<Secret>>>,
    },
    V3 {
        merchant: V3Merchant,
        /// Certificate mode: the platform certificates downloaded so far.
        certs: RwLock<PlatformCerts>,
        /// Held while certificates download, so concurrent callers wait for one.
        downloading: Mutex<()>,
    },
}

/// The platform certificates a v3 client knows.
#[derive(Default)]
struct PlatformCerts {
    keys: HashMap<String, VerifyingKey>,
    fetched_at: Option<u64>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Client`] with injected parts; each part left unset gets the
/// production default.
pub struct ClientBuilder {
    config: Config,
    transport: Option<Arc<dyn Transport>>,
    refund_transport: Option<Arc<dyn Transport>>,
    tokens: Option<Arc<dyn TokenStore>>,
    clock: Option<Arc<dyn Clock>>,
    nonces: Option<Arc<dyn NonceSource>>,
}

impl ClientBuilder {
    /// Sends requests through `transport` instead of the HTTPS client.
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Sends API v2 refunds through `transport` instead of an HTTPS client
    /// with the configuration's `client_cert`.
    pub fn refund_transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.refund_transport = Some(transport);
        self
    }

    /// Keeps the access_token in `store` instead of where the configuration's
    /// `token_store` says.
    pub fn token_store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.tokens = Some(store);
        self
    }

    /// Reads the time from `clock`.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Takes nonces from `nonces`.
    pub fn nonce_source(mut self, nonces: Arc<dyn NonceSource>) -> Self {
        self.nonces = Some(nonces);
        self
    }

    /// Validates the configuration (keys and certificates are read here,
    /// once) and builds the client.
    pub fn build(self) -> Result<Client> {
        self.config.validate()?;
        let api_base = self.config.api_base_url()?;
        let transport: Arc<dyn Transport> = match self.transport {
            Some(t) => t,
            None => Arc::new(HttpTransport::new(self.config.timeout())?),
        };
        let generation = match self.config.api {
            Api::Legacy => Generation::Legacy {
                merchant: self.config.legacy_merchant()?,
                tokens: match self.tokens {
                    Some(store) => store,
                    None => token::store_for(&self.config)?,
                },
            },
            Api::V2 => {
                let refund_transport = match (self.refund_transport, &self.config.client_cert) {
                    (Some(t), _) => Some(t),
                    (None, Some(cert)) => Some(Arc::new(HttpTransport::with_client_cert(
                        self.config.timeout(),
                        cert,
                    )?) as Arc<dyn Transport>),
                    // A loopback gateway (the sandbox) takes refunds over plain HTTP.
                    (None, None) if api_base.scheme() == "http" => Some(Arc::clone(&transport)),
                    (None, None) => None,
                };
                Generation::V2 {
                    merchant: self.config.v2_merchant()?,
                    refund_transport,
                    sandbox_key: self.config.sandbox.then(|| Mutex::new(None)),
                }
            }
            Api::V3 => Generation::V3 {
                merchant: self.config.v3_merchant()?,
                certs: RwLock::new(PlatformCerts::default()),
                downloading: Mutex::new(()),
            },
        };
        log::debug!(
            "client ready: api {}, gateway {}://{}{}",
            self.config.api.as_str(),
            api_base.scheme(),
            api_base.host_str().unwrap_or_default(),
            api_base.port().map(|p| format!(":{p}")).unwrap_or_default()
        );
        Ok(Client {
            api_base,
            transport,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            nonces: self.nonces.unwrap_or_else(|| Arc::new(RandomNonce)),
            config: self.config,
            generation,
        })
    }
}

impl Client {
    /// A client with the production transports, clock and nonces, and the
    /// token store the configuration names (in-process by default).
    pub fn new(config: Config) -> Result<Client> {
        Client::builder(config).build()
    }

    /// A builder, for injecting a transport, token store, clock or nonce source.
    pub fn builder(config: Config) -> ClientBuilder {
        ClientBuilder {
            config,
            transport: None,
            refund_transport: None,
            tokens: None,
            clock: None,
            nonces: None,
        }
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Creates the order and returns the signed parameters for the app.
    ///
    /// 2014 flow: access_token (cached), signed package, `app_signature`,
    /// `genprepay`, SHA1-signed parameters. When `genprepay` answers 40001 or
    /// 42001 the token is refreshed once and the identical request sent once
    /// more; any other error is returned as it is.
    ///
    /// API v2: `unifiedorder` (its answer verified), then the parameters
    /// signed with the merchant's algorithm.
    pub fn build_pay_params(&self, order: &Order) -> Result<PayParams> {
        log::trace!(
            "build_pay_params: out_trade_no {}, {} fen, api {}",
            order.out_trade_no(),
            order.total_fee(),
            self.config.api.as_str()
        );
        let now = self.clock.now_unix();
        let nonce = self.nonces.nonce();
        match &self.generation {
            Generation::Legacy { merchant, tokens } => {
                let body = prepay_body(merchant, order, now, &nonce)?;
                let prepayid = self.genprepay(merchant, tokens.as_ref(), &body)?;
                pay_params(merchant, order, &prepayid, now, &nonce)
            }
            Generation::V2 { merchant, .. } => {
                let fields = v2::unifiedorder_fields(merchant, order, now, &nonce);
                let answer = self.v2_call(v2::UNIFIEDORDER, fields, false)?;
                let prepay_id = v2::prepay_id(&answer)?;
                let key = self.v2_key()?;
                let signer = self.v2_signer(&key);
                Ok(v2::app_params(
                    merchant, &signer, order, &prepay_id, now, &nonce,
                ))
            }
            Generation::V3 { merchant, .. } => {
                let body = v3::app_order_body(merchant, order, now);
                let answer = self.v3_call(Method::Post, v3::APP_ORDER_PATH, Some(&body))?;
                let prepay_id = v3::prepay_id(&answer.unwrap_or_default())?;
                Ok(v3::app_params(merchant, order, &prepay_id, now, &nonce))
            }
        }
    }

    /// The state of an order (API v2 `orderquery`).
    pub fn query_order(&self, order: &OrderRef) -> Result<OrderStatus> {
        order.validate()?;
        if let Generation::V3 { merchant, .. } = &self.generation {
            let answer = self.v3_call(Method::Get, &v3::query_path(merchant, order), None)?;
            return v3::order_status(&answer.unwrap_or_default());
        }
        let fields = v2::order_ref_fields(self.v2_merchant("query")?, order, &self.nonces.nonce());
        v2::order_status(&self.v2_call(v2::ORDERQUERY, fields, false)?)
    }

    /// Closes an unpaid order (API v2 `closeorder`; API v3 `.../close`).
    pub fn close_order(&self, out_trade_no: &str) -> Result<()> {
        let order = OrderRef::out_trade_no(out_trade_no)?;
        if let Generation::V3 { merchant, .. } = &self.generation {
            let body = serde_json::json!({ "mchid": merchant.mchid });
            return self
                .v3_call(Method::Post, &v3::close_path(out_trade_no), Some(&body))
                .map(drop);
        }
        let fields = v2::order_ref_fields(self.v2_merchant("close")?, &order, &self.nonces.nonce());
        self.v2_call(v2::CLOSEORDER, fields, false).map(drop)
    }

    /// Refunds all or part of a paid order (API v2 `secapi/pay/refund`, over
    /// mutual TLS with the merchant's certificate; API v3
    /// `/v3/refund/domestic/refunds`).
    pub fn refund(&self, refund: &RefundRequest) -> Result<RefundReceipt> {
        if let Generation::V3 { merchant, .. } = &self.generation {
            let body = v3::refund_body(merchant, refund)?;
            let answer = self.v3_call(Method::Post, v3::REFUND_PATH, Some(&body))?;
            return v3::refund_receipt(&answer.unwrap_or_default());
        }
        let fields = v2::refund_fields(self.v2_merchant("refund")?, refund, &self.nonces.nonce())?;
        v2::refund_receipt(&self.v2_call(v2::REFUND, fields, true)?)
    }

    /// Downloads WeChat Pay's platform certificates (API v3, certificate
    /// mode) and keeps them; returns how many there are. Clients do this by
    /// themselves: before the first call, on the configured schedule, and
    /// once when an answer names an unknown serial.
    pub fn download_certificates(&self) -> Result<usize> {
        let Generation::V3 {
            merchant,
            certs,
            downloading,
            ..
        } = &self.generation
        else {
            return Err(Error::InvalidArgument(
                "certificates are an API v3 matter".into(),
            ));
        };
        let _one_at_a_time = downloading.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.clock.now_unix();
        let request = v3::auth::request(
            &self.api_base,
            merchant,
            Method::Get,
            v3::CERTIFICATES_PATH,
            None,
            now,
            &self.nonces.nonce(),
        )?;
        log::debug!("downloading the platform certificates");
        let response = self.transport.send(&request)?;
        if !(200..300).contains(&response.status) {
            let err = v3::error_of(&response);
            log::debug!("certificate download refused: {err}");
            return Err(err);
        }
        let keys = v3::certificates::platform_certificates(
            &v3::json_body(&response)?,
            merchant.api_v3_key.expose().as_bytes(),
        )?;
        // Decrypting them with the API v3 key authenticates the certificates;
        // the answer must then verify with one of them.
        let headers = SignedHeaders::from_response(&response).ok_or_else(|| {
            Error::MalformedResponse("the certificates answer is not signed".into())
        })?;
        v3::auth::verify_signed(&headers, &response.body, self.clock.now_unix(), |serial| {
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
        let mut store = certs.write().unwrap_or_else(PoisonError::into_inner);
        store.keys = keys;
        store.fetched_at = Some(now);
        Ok(count)
    }

    /// Verifies an API v3 payment notification: the `Wechatpay-*` headers
    /// (as received) over the raw body, then the decrypted transaction, the
    /// merchant's ids and `expected_total_fee`. Answer an empty 200/204 on
    /// success, or a 4xx/5xx with [`Client::notification_failure_reply`].
    pub fn verify_signed_notification(
        &self,
        headers: &[(String, String)],
        body: &[u8],
        expected_total_fee: Option<Fen>,
    ) -> Result<PaymentNotification> {
        if let Some(name) = SignedHeaders::repeated_name(headers) {
            return Err(Error::InvalidArgument(format!(
                "headers: header {:?} appears more than once (names are case-insensitive)",
                name.chars().take(40).collect::<String>()
            )));
        }
        let Generation::V3 { merchant, .. } = &self.generation else {
            return Err(Error::InvalidArgument(
                "signed-header notifications are API v3; use verify_payment_notification".into(),
            ));
        };
        let invalid = |e: notify::NotifyError| Error::InvalidNotification(e.to_string());
        let signed =
            SignedHeaders::from_pairs(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .ok_or_else(|| {
                    Error::InvalidNotification("a Wechatpay-* header is missing".into())
                })?;
        let verify = || {
            v3_notify::verify_v3_payment(
                &signed,
                body,
                merchant,
                self.clock.now_unix(),
                |s| self.v3_key(s),
                expected_total_fee,
            )
        };
        let verified = match verify() {
            Err(notify::NotifyError::Signature(SignatureError::UnknownSerial(_)))
                if self.v3_uses_certificates() =>
            {
                log::debug!(
                    "v3 notification signed with a key serial this client does not know: downloading the platform certificates once"
                );
                self.download_certificates()?;
                verify()
            }
            other => other,
        };
        log_notification("v3 payment", &verified, |n| &n.out_trade_no);
        verified.map_err(invalid)
    }

    /// The refunds of an order (API v2 `refundquery`).
    pub fn query_refunds(&self, order: &OrderRef) -> Result<Vec<RefundStatus>> {
        order.validate()?;
        let fields = v2::order_ref_fields(
            self.v2_merchant("refund query")?,
            order,
            &self.nonces.nonce(),
        );
        v2::refund_statuses(&self.v2_call(v2::REFUNDQUERY, fields, false)?)
    }

    /// Verifies a payment notification: for the 2014 flow the query string
    /// WeChat called `notify_url` with, for API v2 the XML body. Pass the
    /// order's amount as `expected_total_fee` to have it checked.
    ///
    /// On success, act on it (idempotently per `out_trade_no`) and answer
    /// [`Client::notification_success_reply`]; on error, answer
    /// [`Client::notification_failure_reply`] and act on nothing.
    pub fn verify_payment_notification(
        &self,
        body: &[u8],
        expected_total_fee: Option<Fen>,
    ) -> Result<PaymentNotification> {
        let verified = match &self.generation {
            Generation::Legacy { merchant, .. } => {
                let query = std::str::from_utf8(body)
                    .map_err(|_| Error::InvalidNotification("query string is not UTF-8".into()))?;
                legacy::notify::verify_legacy_payment(query, merchant, expected_total_fee)
            }
            Generation::V3 { .. } => Err(notify::NotifyError::Json(
                "API v3 notifications are verified with their Wechatpay-* headers: use verify_signed_notification".into(),
            )),
            Generation::V2 {
                merchant,
                sandbox_key,
                ..
            } => {
                // In WeChat's simulation environment notifications are
                // signed with its key too.
                let merchant = match sandbox_key {
                    Some(_) => &V2Merchant {
                        api_key: self.v2_key()?,
                        ..merchant.clone()
                    },
                    None => merchant,
                };
                v2_notify::verify_v2_payment(body, merchant, expected_total_fee)
            }
        };
        log_notification(
            match self.generation {
                Generation::Legacy { .. } => "2014 payment",
                Generation::V2 { .. } => "v2 payment",
                Generation::V3 { .. } => "v3 payment",
            },
            &verified,
            |n| &n.out_trade_no,
        );
        verified.map_err(|e| Error::InvalidNotification(e.to_string()))
    }

    /// Decrypts and checks an API v2 refund notification.
    pub fn verify_refund_notification(
        &self,
        body: &[u8],
        expected_refund_fee: Option<Fen>,
    ) -> Result<RefundNotification> {
        let verified = v2_notify::verify_v2_refund(
            body,
            self.v2_merchant("refund notification")?,
            expected_refund_fee,
        );
        log_notification("v2 refund", &verified, |n| &n.out_refund_no);
        verified.map_err(|e| Error::InvalidNotification(e.to_string()))
    }

    /// The body that acknowledges a verified notification (`success`, or the
    /// v2 SUCCESS XML).
    pub fn notification_success_reply(&self) -> String {
        match self.generation {
            Generation::Legacy { .. } => legacy::notify::LEGACY_SUCCESS_REPLY.to_owned(),
            Generation::V2 { .. } => v2_notify::V2_SUCCESS_REPLY.to_owned(),
            // API v3: an empty body with status 200 or 204.
            Generation::V3 { .. } => String::new(),
        }
    }

    /// The body that refuses a notification (WeChat will send it again).
    pub fn notification_failure_reply(&self, reason: &str) -> String {
        match self.generation {
            Generation::Legacy { .. } => "fail".to_owned(),
            Generation::V2 { .. } => v2_notify::v2_failure_reply(reason),
            Generation::V3 { .. } => v3_notify::v3_failure_reply(reason),
        }
    }

    /// The HTTP status to send a notification reply with, where the
    /// generation prescribes one: API v3 answers a verified notification 204
    /// and a refused one 500. `None` for the 2014 flow and API v2, whose
    /// replies are bodies only (sent with 200).
    pub fn notification_reply_status(&self, verified: bool) -> Option<u16> {
        match (&self.generation, verified) {
            (Generation::V3 { .. }, true) => Some(v3_notify::SUCCESS_STATUS),
            (Generation::V3 { .. }, false) => Some(v3_notify::FAILURE_STATUS),
            _ => None,
        }
    }

    // ---- 2014 flow ----

    fn genprepay(
        &self,
        merchant: &LegacyMerchant,
        tokens: &dyn TokenStore,
        body: &PrepayBody,
    ) -> Result<String> {
        let token = self.access_token(merchant, tokens)?;
        match self.send_genprepay(&token, body) {
            Err(Error::Gateway { errcode, .. }) if TOKEN_REJECTED_ERRCODES.contains(&errcode) => {
                log::debug!("genprepay rejected the access_token ({errcode}); refreshing it once");
                tokens.invalidate(&token);
                let token = self.access_token(merchant, tokens)?;
                self.send_genprepay(&token, body)
            }
            other => other,
        }
    }

    fn send_genprepay(&self, token: &AccessToken, body: &PrepayBody) -> Result<String> {
        let request = genprepay_request(&self.api_base, token, body)?;
        let response = self.transport.send(&request)?;
        let prepayid = parse_genprepay_response(&response);
        match &prepayid {
            Ok(_) => log::trace!("genprepay issued a prepayid (traceid {})", body.traceid),
            Err(e) => log::debug!("genprepay failed (traceid {}): {e}", body.traceid),
        }
        prepayid
    }

    /// The current access_token, fetched when there is none or it is due.
    fn access_token(
        &self,
        merchant: &LegacyMerchant,
        tokens: &dyn TokenStore,
    ) -> Result<AccessToken> {
        let fetch = || {
            log::debug!("fetching an access_token for appid {}", merchant.appid);
            let request = token_request(&self.api_base, &merchant.appid, &merchant.app_secret);
            let response = self.transport.send(&request)?;
            // The token lives from when it was issued: read the clock after.
            parse_token_response(&response, self.clock.now_unix())
        };
        tokens.get_or_fetch(self.clock.now_unix(), &fetch)
    }

    // ---- API v2 ----

    fn v2_merchant(&self, operation: &str) -> Result<&V2Merchant> {
        match &self.generation {
            Generation::V2 { merchant, .. } => Ok(merchant),
            Generation::V3 { .. } => Err(Error::InvalidArgument(format!(
                "{operation} is not available for api \"v3\" in this version"
            ))),
            Generation::Legacy { .. } => Err(Error::InvalidArgument(format!(
                "{operation} is an API v2 operation; this client is configured with api \"legacy\""
            ))),
        }
    }

    /// The key requests and answers are signed with: the API key, or in
    /// WeChat's simulation environment the key fetched from `getsignkey`.
    fn v2_key(&self) -> Result<Secret> {
        let Generation::V2 {
            merchant,
            sandbox_key,
            ..
        } = &self.generation
        else {
            return Err(Error::InvalidArgument("not an API v2 client".into()));
        };
        let Some(slot) = sandbox_key else {
            return Ok(merchant.api_key.clone());
        };
        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(key) = slot.as_ref() {
            log::trace!("simulation environment: sign key cached");
            return Ok(key.clone());
        }
        log::debug!("simulation environment: fetching the sign key (getsignkey)");
        let mut fields = Fields::new();
        fields.insert("mch_id".into(), merchant.mch_id.clone());
        fields.insert("nonce_str".into(), self.nonces.nonce());
        let signer = Signer {
            key: &merchant.api_key,
            sign_type: SignType::Md5,
        };
        let request = v2::request(&self.api_base, v2::GETSIGNKEY, false, fields, &signer);
        let response = self.transport.send(&request)?;
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

    fn v2_signer<'a>(&self, key: &'a Secret) -> Signer<'a> {
        let sign_type = match &self.generation {
            // The simulation environment signs with MD5 only.
            Generation::V2 {
                sandbox_key: Some(_),
                ..
            } => SignType::Md5,
            Generation::V2 { merchant, .. } => merchant.sign_type,
            Generation::V3 { .. } => SignType::Md5,
            Generation::Legacy { .. } => SignType::Md5,
        };
        Signer { key, sign_type }
    }

    // ---- API v3 ----

    fn v3_uses_certificates(&self) -> bool {
        matches!(
            &self.generation,
            Generation::V3 { merchant, .. } if matches!(merchant.verification, V3Verification::Certificates { .. })
        )
    }

    /// The key for `serial`: WeChat Pay's public key, or a platform certificate.
    fn v3_key(&self, serial: &str) -> Option<VerifyingKey> {
        let Generation::V3 {
            merchant, certs, ..
        } = &self.generation
        else {
            return None;
        };
        match &merchant.verification {
            V3Verification::PublicKey { id, key } => (serial == id).then(|| key.clone()),
            V3Verification::Certificates { .. } => certs
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .keys
                .get(serial)
                .cloned(),
        }
    }

    /// Certificate mode: downloads certificates when there are none or they
    /// are due.
    fn v3_ensure_certificates(&self) -> Result<()> {
        let Generation::V3 {
            merchant, certs, ..
        } = &self.generation
        else {
            return Ok(());
        };
        let V3Verification::Certificates { refresh_secs } = merchant.verification else {
            return Ok(());
        };
        let fetched_at = certs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .fetched_at;
        let now = self.clock.now_unix();
        let due = fetched_at.is_none_or(|at| now >= at + refresh_secs);
        if due {
            match fetched_at {
                None => log::debug!("no platform certificate yet: downloading them"),
                Some(at) => log::debug!(
                    "platform certificates {} s old (refresh every {refresh_secs} s): downloading them",
                    now.saturating_sub(at)
                ),
            }
            self.download_certificates()?;
        }
        Ok(())
    }

    /// Signs and sends one v3 request and verifies its answer; the JSON
    /// object of a 2xx answer with a body.
    fn v3_call(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>> {
        let Generation::V3 { merchant, .. } = &self.generation else {
            return Err(Error::InvalidArgument("not an API v3 client".into()));
        };
        self.v3_ensure_certificates()?;
        let request = v3::auth::request(
            &self.api_base,
            merchant,
            method,
            path,
            body,
            self.clock.now_unix(),
            &self.nonces.nonce(),
        )?;
        // The path without its query (which names the merchant).
        let shown = path.split('?').next().unwrap_or_default();
        let response = self.transport.send(&request)?;
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
            v3::auth::verify_signed(&headers, &response.body, self.clock.now_unix(), |s| {
                self.v3_key(s)
            })
        };
        let verified = match verify() {
            Err(SignatureError::UnknownSerial(serial)) if self.v3_uses_certificates() => {
                log::debug!(
                    "v3 {shown}: answer signed with unknown serial {serial}: downloading the platform certificates once"
                );
                self.download_certificates()?;
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

    /// Signs and sends one v2 request, and verifies its answer.
    fn v2_call(&self, path: &str, fields: Fields, refund: bool) -> Result<Fields> {
        let Generation::V2 {
            refund_transport,
            sandbox_key,
            ..
        } = &self.generation
        else {
            return Err(Error::InvalidArgument("not an API v2 client".into()));
        };
        let transport = if refund {
            refund_transport.as_ref().ok_or_else(|| {
                Error::config(
                    "client_cert",
                    "refunds need the merchant's client certificate",
                )
            })?
        } else {
            &self.transport
        };
        let key = self.v2_key()?;
        let signer = self.v2_signer(&key);
        let request = v2::request(&self.api_base, path, sandbox_key.is_some(), fields, &signer);
        let response = transport.send(&request)?;
        let answer = v2::parse_response(&response, &signer);
        match &answer {
            Ok(_) => log::trace!("v2 {path}: answer verified ({})", signer.sign_type.as_str()),
            Err(e) => log::debug!("v2 {path}: {e}"),
        }
        answer
    }
}

/// Logs a notification's verification outcome: the order it verified for, or
/// which check refused it (never what the notification carried).
fn log_notification<T>(
    kind: &str,
    verified: &std::result::Result<T, notify::NotifyError>,
    id: impl Fn(&T) -> &str,
) {
    match verified {
        Ok(n) => log::debug!("{kind} notification verified for {}", id(n)),
        Err(e) => log::debug!("{kind} notification refused: {}", refused_by(e)),
    }
}

/// The check that refused a notification. The variants whose text quotes the
/// notification (an element, a key, a serial, a JSON value) are named without
/// it; the others name only fields this library knows, or amounts.
fn refused_by(e: &notify::NotifyError) -> String {
    use notify::NotifyError as N;
    match e {
        N::Xml(xml::XmlError::Entity(_)) => "the XML has an undeclared entity reference".into(),
        N::Xml(xml::XmlError::Duplicate(_)) => "an XML element appears more than once".into(),
        N::Xml(xml::XmlError::Shape(_)) => "the XML is not a flat <xml> message".into(),
        N::Query(_) => "the query string is malformed".into(),
        N::Signature(SignatureError::UnknownSerial(_)) => {
            "signed with a key serial this client does not know".into()
        }
        N::Json(_) => "the body is not the documented JSON".into(),
        other => other.to_string(),
    }
}
