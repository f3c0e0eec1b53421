//! The client: runs a merchant's payments against WeChat's gateway (or the
//! sandbox) in the API generation its configuration names, with the
//! access_token cache, transports, clock and nonce source.
//!
//! A [`Client`] is `Send + Sync`: share one (behind an `Arc` or a `static`)
//! between all the threads of a process, so they share one access_token (each
//! thread keeps a keep-alive connection of its own).

mod generation;
mod legacy;
mod v2;
mod v3;

use std::fmt;
use std::sync::{Arc, Mutex};

use crate::api::legacy::token;
use crate::api::legacy::token::TokenStore;
use crate::api::notify::NotifyError;
use crate::api::v2::xml::XmlError;
use crate::api::v3::auth::{SignatureError, SignedHeaders};
use crate::config::{Api, Config};
use crate::error::{Error, Result};
use crate::http::{HttpTransport, Transport};
use crate::model::{
    Order, OrderRef, OrderStatus, PayParams, PaymentNotification, RefundNotification,
    RefundReceipt, RefundRequest, RefundStatus,
};
use crate::util::clock::{Clock, SystemClock};
use crate::util::money::Fen;
use crate::util::nonce::{NonceSource, RandomNonce};
use generation::{Context, Generation};

/// A WeChat Pay client for one merchant configuration.
pub struct Client {
    config: Config,
    cx: Context,
    /// The configured generation's operations: chosen once, in
    /// [`ClientBuilder::build`].
    generation: Box<dyn Generation>,
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
    /// once) and builds the client. This is where the configured API
    /// generation is chosen.
    pub fn build(self) -> Result<Client> {
        self.config.validate()?;
        let api_base = self.config.api_base_url()?;
        let proxy = self.config.proxy_url()?;
        let transport: Arc<dyn Transport> = match self.transport {
            Some(t) => t,
            None => {
                Arc::new(HttpTransport::new(self.config.timeout())?.with_proxy(proxy.as_ref())?)
            }
        };
        let generation: Box<dyn Generation> = match self.config.api {
            Api::Legacy => Box::new(legacy::LegacyClient {
                merchant: self.config.legacy_merchant()?,
                tokens: match self.tokens {
                    Some(store) => store,
                    None => token::store_for(&self.config)?,
                },
            }),
            Api::V2 => {
                let refund_transport = match (self.refund_transport, &self.config.client_cert) {
                    (Some(t), _) => Some(t),
                    (None, Some(cert)) => Some(Arc::new(
                        HttpTransport::with_client_cert(self.config.timeout(), cert)?
                            .with_proxy(proxy.as_ref())?,
                    ) as Arc<dyn Transport>),
                    // A loopback gateway (the sandbox) takes refunds over plain HTTP.
                    (None, None) if api_base.scheme() == "http" => Some(Arc::clone(&transport)),
                    (None, None) => None,
                };
                Box::new(v2::V2Client {
                    merchant: self.config.v2_merchant()?,
                    refund_transport,
                    sandbox_key: self.config.sandbox.then(|| Mutex::new(None)),
                })
            }
            Api::V3 => Box::new(v3::V3Client::new(self.config.v3_merchant()?)),
        };
        log::debug!(
            "client ready: api {}, gateway {}://{}{}",
            self.config.api.as_str(),
            api_base.scheme(),
            api_base.host_str().unwrap_or_default(),
            api_base.port().map(|p| format!(":{p}")).unwrap_or_default()
        );
        Ok(Client {
            cx: Context {
                api_base,
                transport,
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                nonces: self.nonces.unwrap_or_else(|| Arc::new(RandomNonce)),
            },
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
    /// `genprepay`, SHA1-signed parameters. When `genprepay` answers 40001, 40014 or
    /// 42001 the token is refreshed once and the identical request sent once
    /// more; any other error is returned as it is.
    ///
    /// API v2: `unifiedorder` (its answer verified), then the parameters
    /// signed with the merchant's algorithm. API v3: `/v3/pay/transactions/app`
    /// (its answer verified), then the parameters signed with RSA.
    pub fn build_pay_params(&self, order: &Order) -> Result<PayParams> {
        log::trace!(
            "build_pay_params: out_trade_no {}, {} fen, api {}",
            order.out_trade_no(),
            order.total_fee(),
            self.config.api.as_str()
        );
        self.generation.build_pay_params(&self.cx, order)
    }

    /// The state of an order (API v2 `orderquery`; API v3 the order query).
    pub fn query_order(&self, order: &OrderRef) -> Result<OrderStatus> {
        order.validate()?;
        self.generation.query_order(&self.cx, order)
    }

    /// Closes an unpaid order (API v2 `closeorder`; API v3 `.../close`).
    pub fn close_order(&self, out_trade_no: &str) -> Result<()> {
        let order = OrderRef::out_trade_no(out_trade_no)?;
        self.generation.close_order(&self.cx, &order)
    }

    /// Refunds all or part of a paid order (API v2 `secapi/pay/refund`, over
    /// mutual TLS with the merchant's certificate; API v3
    /// `/v3/refund/domestic/refunds`). The refund is checked before any
    /// network call.
    pub fn refund(&self, refund: &RefundRequest) -> Result<RefundReceipt> {
        refund.validate()?;
        self.generation.refund(&self.cx, refund)
    }

    /// The refunds of an order (API v2 `refundquery`).
    pub fn query_refunds(&self, order: &OrderRef) -> Result<Vec<RefundStatus>> {
        order.validate()?;
        self.generation.query_refunds(&self.cx, order)
    }

    /// Downloads WeChat Pay's platform certificates (API v3, certificate
    /// mode) and keeps them; returns how many there are. Clients do this by
    /// themselves: before the first call, on the configured schedule, and
    /// once when an answer names an unknown serial.
    pub fn download_certificates(&self) -> Result<usize> {
        self.generation.download_certificates(&self.cx)
    }

    /// Verifies an API v3 payment notification: the `Wechatpay-*` headers
    /// (as received; a name given twice is refused) over the raw body, then
    /// the decrypted transaction, the merchant's ids and `expected_total_fee`.
    /// Answer an empty 200/204 on success, or a 4xx/5xx with
    /// [`Client::notification_failure_reply`].
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
        self.generation
            .verify_signed_notification(&self.cx, headers, body, expected_total_fee)
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
        self.generation
            .verify_payment_notification(&self.cx, body, expected_total_fee)
    }

    /// Decrypts and checks an API v2 refund notification.
    pub fn verify_refund_notification(
        &self,
        body: &[u8],
        expected_refund_fee: Option<Fen>,
    ) -> Result<RefundNotification> {
        self.generation
            .verify_refund_notification(&self.cx, body, expected_refund_fee)
    }

    /// The body that acknowledges a verified notification (`success`, the
    /// v2 SUCCESS XML, or for API v3 an empty body).
    pub fn notification_success_reply(&self) -> String {
        self.generation.success_reply()
    }

    /// The body that refuses a notification (WeChat will send it again).
    pub fn notification_failure_reply(&self, reason: &str) -> String {
        self.generation.failure_reply(reason)
    }

    /// The HTTP status to send a notification reply with, where the
    /// generation prescribes one: API v3 answers a verified notification 204
    /// and a refused one 500. `None` for the 2014 flow and API v2, whose
    /// replies are bodies only (sent with 200).
    pub fn notification_reply_status(&self, verified: bool) -> Option<u16> {
        self.generation.reply_status(verified)
    }
}

/// Logs a notification's verification outcome, the order it verified for or
/// which check refused it (never what the notification carried), and turns a
/// refusal into [`Error::InvalidNotification`].
fn log_notification<T>(
    kind: &str,
    verified: std::result::Result<T, NotifyError>,
    id: impl Fn(&T) -> &str,
) -> Result<T> {
    match &verified {
        Ok(n) => log::debug!("{kind} notification verified for {}", id(n)),
        Err(e) => log::debug!("{kind} notification refused: {}", refused_by(e)),
    }
    verified.map_err(|e| Error::InvalidNotification(e.to_string()))
}

/// The check that refused a notification. The variants whose text quotes the
/// notification (an element, a key, a serial, a JSON value) are named without
/// it; the others name only fields this library knows, or amounts.
fn refused_by(e: &NotifyError) -> String {
    use NotifyError as N;
    match e {
        N::Xml(XmlError::Entity(_)) => "the XML has an undeclared entity reference".into(),
        N::Xml(XmlError::Duplicate(_)) => "an XML element appears more than once".into(),
        N::Xml(XmlError::Shape(_)) => "the XML is not a flat <xml> message".into(),
        N::Query(_) => "the query string is malformed".into(),
        N::Signature(SignatureError::UnknownSerial(_)) => {
            "signed with a key serial this client does not know".into()
        }
        N::Json(_) => "the body is not the documented JSON".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::http::{HttpRequest, HttpResponse};

    /// Counts what would have gone to the gateway, and answers nothing.
    #[derive(Default)]
    struct Unreachable(AtomicUsize);

    impl Transport for Unreachable {
        fn send(&self, _request: &HttpRequest) -> Result<HttpResponse> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(HttpResponse::new(599, Vec::new()))
        }
    }

    fn client(api: &str, transport: &Arc<Unreachable>) -> Client {
        let json = format!(
            r#"{{"api":"{api}","appid":"wxd930ea5d5a258f4f","app_secret":"s","app_key":"k",
               "partner_id":"1900000109","partner_key":"p","mch_id":"1900000109",
               "api_key":"192006250b4c09247ec02edce69f6a2d",
               "notify_url":"https://example.com/notify","api_base":"http://127.0.0.1:9"}}"#
        );
        Client::builder(Config::from_json(&json).expect("config"))
            .transport(Arc::clone(transport) as Arc<dyn Transport>)
            .build()
            .expect("client")
    }

    fn refused(result: Result<impl fmt::Debug>, api: &str, offered_by: &str) {
        match result {
            Err(Error::InvalidArgument(message)) => {
                assert!(message.contains(&format!("api \"{api}\"")), "{message}");
                assert!(message.contains(&format!("API {offered_by}")), "{message}");
            }
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn an_operation_the_generation_lacks_names_it_and_sends_nothing() {
        let transport = Arc::new(Unreachable::default());
        let legacy = client("legacy", &transport);
        let order = OrderRef::out_trade_no("A1001").expect("ref");
        let refund = RefundRequest {
            order: order.clone(),
            out_refund_no: "R1".into(),
            total_fee: 2,
            refund_fee: 1,
            refund_desc: None,
        };
        refused(legacy.query_order(&order), "legacy", "v2 and v3");
        refused(legacy.close_order("A1001"), "legacy", "v2 and v3");
        refused(legacy.refund(&refund), "legacy", "v2 and v3");
        refused(legacy.query_refunds(&order), "legacy", "v2");
        refused(legacy.download_certificates(), "legacy", "v3");
        refused(
            legacy.verify_signed_notification(&[], b"{}", None),
            "legacy",
            "v3",
        );
        refused(
            legacy.verify_refund_notification(b"<xml/>", None),
            "legacy",
            "v2",
        );
        let v2 = client("v2", &transport);
        refused(v2.download_certificates(), "v2", "v3");
        refused(v2.verify_signed_notification(&[], b"{}", None), "v2", "v3");
        assert_eq!(transport.0.load(Ordering::SeqCst), 0);
        // An operation the generation has does reach the gateway.
        assert!(v2.query_order(&order).is_err());
        assert_eq!(transport.0.load(Ordering::SeqCst), 1);
    }
}
