//! A local WeChat Pay gateway for tests, benchmarks and app developers: it
//! speaks the 2014 APP flow (`/cgi-bin/token`, `/pay/genprepay`) and API v2
//! (`unifiedorder`, `orderquery`, `closeorder`, `refund`, `refundquery`, and
//! the `sandboxnew/` simulation paths) as the real one does, checks every
//! signature with its own copy of the merchant's keys, signs its answers,
//! answers with the real error codes, records the orders it accepts, has
//! fault switches, and can simulate the user paying: it then POSTs the signed
//! notification to the order's `notify_url`, again and again until it gets
//! the success reply, like WeChat.
//!
//! ```no_run
//! use wxpay::sandbox::{Sandbox, SandboxConfig};
//! use wxpay::{Client, Order};
//!
//! let sandbox = Sandbox::start(SandboxConfig::default())?;
//! let client = Client::new(sandbox.client_config())?;
//! let order = Order::from_json(r#"{"out_trade_no":"A1","total_fee":1,"body":"b","client_ip":"1.2.3.4"}"#)?;
//! let params = client.build_pay_params(&order)?;
//! assert_eq!(sandbox.orders()[0].prepayid, params.prepayid);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Out of process (`wxpay sandbox`), the same switches are HTTP endpoints:
//! `GET /sandbox/stats`, `GET /sandbox/orders`, `GET /sandbox/config`,
//! `POST /sandbox/faults` (a [`FaultRule`] as JSON), `POST /sandbox/delay`
//! (`{"ms": N}`), `POST /sandbox/expire-token`, `POST /sandbox/reset`, and
//! for API v2 `POST /sandbox/pay` (`{"out_trade_no": ".."}`),
//! `GET /sandbox/v2/orders`, `GET /sandbox/notifications`.

mod faults;
mod legacy;
mod notifier;
mod server;
mod v2;
mod v3;

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::serve::ListenerExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub use faults::{Endpoint, FaultAction, FaultRule};
pub use legacy::RecordedOrder;
pub use notifier::NotificationRecord;
pub use v2::{V2Order, V2Refund};

use crate::config::{Api, Config};
use crate::crypto::sign::SignType;
use crate::util::charset::Charset;
use crate::util::clock::{Clock, SystemClock};
use crate::util::secret::Secret;
use faults::Faults;
use legacy::Gateway;
use v2::GatewayV2;
use v3::GatewayV3;

/// The public example merchant of the 2014 documentation: the sandbox's
/// default account.
pub mod defaults {
    /// The example app id.
    pub const APPID: &str = "wxd930ea5d5a258f4f";
    /// A sandbox-only app secret (the documentation publishes none).
    pub const APP_SECRET: &str = "db426a9829e4b49a0dcac7b4162da6b6";
    /// The example 128-character paySignKey.
    pub const APP_KEY: &str = "L8LrMqqeGRxST5reouB0K66CaYAWpqhAVsq7ggKkxHCOastWksvuX1uvmvQclxaHoYd3ElNBrNO2DHnnzgfVG9Qs473M3DTOZug5er46FhuGofumV8H2FVR9qkjSlC5K";
    /// The example partner (merchant) id.
    pub const PARTNER_ID: &str = "1900000109";
    /// The example partner key.
    pub const PARTNER_KEY: &str = "8934e7d15453e97507ef794cf7b0519d";
    /// The lifetime of the tokens the sandbox issues, in seconds.
    pub const TOKEN_TTL_SECS: u64 = 7200;
    /// How every access_token the sandbox issues begins; 64 random lower-case
    /// hex digits follow. A token is opaque to clients: the prefix only makes
    /// a leaked one easy to find in logs and output.
    pub const ACCESS_TOKEN_PREFIX: &str = "sandboxtoken";
    /// The example API v2 merchant id.
    pub const MCH_ID: &str = "10000100";
    /// The example API v2 key.
    pub const API_KEY: &str = "192006250b4c09247ec02edce69f6a2d";
    /// How many times a notification is sent before the sandbox gives up.
    pub const NOTIFY_ATTEMPTS: u32 = 8;
    /// The pause before the second delivery; each later one waits longer.
    pub const NOTIFY_RETRY_MS: u64 = 200;
    /// The API v3 merchant id.
    pub const MCHID: &str = "1900000109";
    /// The serial number of the v3 merchant's certificate.
    pub const MERCHANT_SERIAL_NO: &str = "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C";
    /// The v3 merchant's private key (a public test key, see `src/sandbox/keys`).
    pub const MERCHANT_PRIVATE_KEY: &str = include_str!("keys/merchant_key.pem");
    /// The v3 merchant's public key.
    pub const MERCHANT_PUBLIC_KEY: &str = include_str!("keys/merchant_public_key.pem");
    /// The API v3 key.
    pub const API_V3_KEY: &str = "sandboxAPIv3Key00000000000000000";
    /// The id of the sandbox's WeChat Pay public key.
    pub const WECHATPAY_PUBLIC_KEY_ID: &str = "PUB_KEY_ID_0119000001092024010100000000000001";
}

/// The merchant account the sandbox serves, for both API generations.
///
/// Read from the same JSON as a client [`Config`] (so one file serves both):
/// the client-only keys (`api`, `notify_url`, `api_base`, `timeout_ms`,
/// `token_store`, `token_store_fallback`, `client_cert`, `sandbox`) are
/// accepted and ignored, `token_ttl_secs`, `notify_attempts` and
/// `notify_retry_ms` are the sandbox's own, and every key left out takes its
/// value from [`defaults`].
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// The app id.
    pub appid: String,
    /// 2014 flow: the app secret the token call must present.
    pub app_secret: Secret,
    /// 2014 flow: the app key of the SHA1 signatures.
    pub app_key: Secret,
    /// 2014 flow: the partner id the package must name.
    pub partner_id: String,
    /// 2014 flow: the partner key of the package MD5.
    pub partner_key: Secret,
    /// 2014 flow: the lifetime of issued tokens, in seconds.
    pub token_ttl_secs: u64,
    /// 2014 flow: the charset for [`Sandbox::client_config`] (a package says its own).
    pub input_charset: Charset,
    /// API v2: the merchant id.
    pub mch_id: String,
    /// API v2: the API key.
    pub api_key: Secret,
    /// API v2: the algorithm the merchant chose, used to sign notifications
    /// (requests say their own with `sign_type`).
    pub sign_type: SignType,
    /// How many times a notification is sent before the sandbox gives up.
    pub notify_attempts: u32,
    /// The pause before the second delivery, in milliseconds; the n-th retry
    /// waits n times this.
    pub notify_retry_ms: u64,
    /// API v3: the merchant id.
    pub mchid: String,
    /// API v3: the serial of the merchant's certificate, as requests must name it.
    pub merchant_serial_no: String,
    /// API v3: the merchant's private key (only for the client configurations
    /// the sandbox hands out).
    pub merchant_private_key: Secret,
    /// API v3: the merchant's public key, which verifies every request.
    pub merchant_public_key: String,
    /// API v3: the API v3 key.
    pub api_v3_key: Secret,
    /// API v3: the id of the sandbox's WeChat Pay public key.
    pub wechatpay_public_key_id: String,
    /// API v3: sign as in certificate mode (serial = platform certificate),
    /// rather than public-key mode.
    pub v3_certificate_mode: bool,
}

/// Client configuration keys a sandbox account file may carry and ignores.
const CLIENT_ONLY_KEYS: [&str; 12] = [
    "api",
    "notify_url",
    "api_base",
    "timeout_ms",
    "token_store",
    "token_store_fallback",
    "client_cert",
    "sandbox",
    "merchant_private_key_file",
    "wechatpay_public_key",
    "wechatpay_public_key_file",
    "platform_cert_refresh_secs",
];

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            appid: defaults::APPID.into(),
            app_secret: defaults::APP_SECRET.into(),
            app_key: defaults::APP_KEY.into(),
            partner_id: defaults::PARTNER_ID.into(),
            partner_key: defaults::PARTNER_KEY.into(),
            token_ttl_secs: defaults::TOKEN_TTL_SECS,
            input_charset: Charset::Utf8,
            mch_id: defaults::MCH_ID.into(),
            api_key: defaults::API_KEY.into(),
            sign_type: SignType::Md5,
            notify_attempts: defaults::NOTIFY_ATTEMPTS,
            notify_retry_ms: defaults::NOTIFY_RETRY_MS,
            mchid: defaults::MCHID.into(),
            merchant_serial_no: defaults::MERCHANT_SERIAL_NO.into(),
            merchant_private_key: defaults::MERCHANT_PRIVATE_KEY.into(),
            merchant_public_key: defaults::MERCHANT_PUBLIC_KEY.into(),
            api_v3_key: defaults::API_V3_KEY.into(),
            wechatpay_public_key_id: defaults::WECHATPAY_PUBLIC_KEY_ID.into(),
            v3_certificate_mode: false,
        }
    }
}

impl SandboxConfig {
    /// Parses a JSON account (see the type's documentation).
    pub fn from_json(json: &str) -> crate::Result<SandboxConfig> {
        let invalid = |reason: String| crate::Error::InvalidConfig {
            field: "sandbox".into(),
            reason,
        };
        let mut value: Value = serde_json::from_str(json).map_err(|e| invalid(e.to_string()))?;
        if let Some(map) = value.as_object_mut() {
            for key in CLIENT_ONLY_KEYS {
                map.remove(key);
            }
        }
        let config: SandboxConfig =
            serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        if config.token_ttl_secs == 0 {
            return Err(crate::Error::config("token_ttl_secs", "must be positive"));
        }
        Ok(config)
    }

    /// A client configuration for this account in API generation `api`
    /// against a sandbox at `base_url`, as JSON (with the keys in clear).
    pub fn client_config_json_for(&self, base_url: &str, api: Api) -> Value {
        let base_url = base_url.trim_end_matches('/');
        let notify_url = format!("{base_url}/sandbox/notify");
        match api {
            Api::Legacy => json!({
                "appid": self.appid,
                "app_secret": self.app_secret.expose(),
                "app_key": self.app_key.expose(),
                "partner_id": self.partner_id,
                "partner_key": self.partner_key.expose(),
                "notify_url": notify_url,
                "api_base": base_url,
                "input_charset": self.input_charset.as_str(),
            }),
            Api::V2 => json!({
                "api": "v2",
                "appid": self.appid,
                "mch_id": self.mch_id,
                "api_key": self.api_key.expose(),
                "sign_type": self.sign_type.as_str(),
                "notify_url": notify_url,
                "api_base": base_url,
            }),
            Api::V3 => {
                let mut config = json!({
                    "api": "v3",
                    "appid": self.appid,
                    "mchid": self.mchid,
                    "merchant_private_key": self.merchant_private_key.expose(),
                    "merchant_serial_no": self.merchant_serial_no,
                    "api_v3_key": self.api_v3_key.expose(),
                    "notify_url": notify_url,
                    "api_base": base_url,
                });
                if !self.v3_certificate_mode {
                    config["wechatpay_public_key"] = v3::PLATFORM_PUBLIC_KEY.into();
                    config["wechatpay_public_key_id"] =
                        self.wechatpay_public_key_id.as_str().into();
                }
                config
            }
        }
    }

    /// The 2014-flow client configuration as JSON (see
    /// [`SandboxConfig::client_config_json_for`]).
    pub fn client_config_json(&self, base_url: &str) -> Value {
        self.client_config_json_for(base_url, Api::Legacy)
    }

    /// A 2014-flow client configuration for this account against a sandbox at `base_url`.
    pub fn client_config_for(&self, base_url: &str) -> crate::Result<Config> {
        Config::from_json(&self.client_config_json(base_url).to_string())
    }
}

impl fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("appid", &self.appid)
            .field("app_secret", &self.app_secret)
            .field("app_key", &self.app_key)
            .field("partner_id", &self.partner_id)
            .field("partner_key", &self.partner_key)
            .field("token_ttl_secs", &self.token_ttl_secs)
            .field("mch_id", &self.mch_id)
            .field("api_key", &self.api_key)
            .field("sign_type", &self.sign_type)
            .field("mchid", &self.mchid)
            .field("merchant_serial_no", &self.merchant_serial_no)
            .field("api_v3_key", &self.api_v3_key)
            .field("v3_certificate_mode", &self.v3_certificate_mode)
            .finish_non_exhaustive()
    }
}

/// Counters the sandbox keeps, for tests and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Tokens issued.
    pub token_fetches: u64,
    /// Orders accepted.
    pub orders: u64,
    /// Gateway calls received (token and genprepay, faulty or not).
    pub requests: u64,
    /// TCP connections accepted.
    pub connections: u64,
    /// Orders refused because their `out_trade_no` was used with other terms.
    pub conflicts: u64,
    /// API v2 orders created.
    pub v2_orders: u64,
    /// Notification deliveries attempted.
    pub notifications_sent: u64,
    /// Notifications the merchant acknowledged with the success reply.
    pub notifications_acknowledged: u64,
    /// Times `/v3/certificates` was served.
    pub certificate_downloads: u64,
}

/// State shared by the handle and the server.
struct Shared {
    config: SandboxConfig,
    base_url: String,
    gateway: Mutex<Gateway>,
    gateway_v2: Mutex<GatewayV2>,
    gateway_v3: Mutex<GatewayV3>,
    notifications: Mutex<Vec<NotificationRecord>>,
    notifications_sent: AtomicU64,
    notifier: notifier::Notifier,
    faults: Mutex<Faults>,
    requests: AtomicU64,
    connections: AtomicU64,
    clock: Arc<dyn Clock>,
}

impl Shared {
    fn gateway(&self) -> MutexGuard<'_, Gateway> {
        self.gateway.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn gateway_v2(&self) -> MutexGuard<'_, GatewayV2> {
        self.gateway_v2
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn gateway_v3(&self) -> MutexGuard<'_, GatewayV3> {
        self.gateway_v3
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn notifications(&self) -> MutexGuard<'_, Vec<NotificationRecord>> {
        self.notifications
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stats(&self) -> Stats {
        let gateway = self.gateway();
        let acknowledged = self
            .notifications()
            .iter()
            .filter(|n| n.acknowledged)
            .count();
        Stats {
            token_fetches: gateway.token_fetches,
            orders: gateway.orders().len() as u64,
            requests: self.requests.load(Ordering::Relaxed),
            connections: self.connections.load(Ordering::Relaxed),
            conflicts: gateway.conflicts,
            v2_orders: self.gateway_v2().orders().len() as u64,
            notifications_sent: self.notifications_sent.load(Ordering::Relaxed),
            notifications_acknowledged: acknowledged as u64,
            certificate_downloads: self.gateway_v3().certificate_downloads,
        }
    }

    fn client_config_json(&self, api: Api) -> Value {
        self.config.client_config_json_for(&self.base_url, api)
    }

    /// The user pays a v2 order: deliver its notification in the background.
    fn pay(self: &Arc<Self>, out_trade_no: &str) -> Result<(), String> {
        let now = self.clock.now_unix();
        let outgoing = if self.gateway_v3().has_order(out_trade_no) {
            self.gateway_v3().pay(out_trade_no, now)?
        } else {
            self.gateway_v2().pay(out_trade_no, now)?
        };
        self.notifier.deliver(Arc::clone(self), outgoing);
        Ok(())
    }
}

/// A running sandbox. It stops when dropped (or with [`Sandbox::stop`]).
pub struct Sandbox {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sandbox")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Starts a sandbox for `config` on a free port of 127.0.0.1.
    ///
    /// Like every way of starting a sandbox, it installs the standard-error
    /// logger when `WXPAY_LOG` asks for one ([`crate::util::logging::init_from_env`]).
    pub fn start(config: SandboxConfig) -> io::Result<Sandbox> {
        Sandbox::bind(config, SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Starts a sandbox for `config` on `addr`, on a thread of its own.
    pub fn bind(config: SandboxConfig, addr: SocketAddr) -> io::Result<Sandbox> {
        Sandbox::bind_with_clock(config, addr, Arc::new(SystemClock))
    }

    /// Like [`Sandbox::bind`], judging token expiry by `clock`.
    pub fn bind_with_clock(
        config: SandboxConfig,
        addr: SocketAddr,
        clock: Arc<dyn Clock>,
    ) -> io::Result<Sandbox> {
        crate::util::logging::init_from_env();
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let host = match addr {
            SocketAddr::V4(v4) => v4.ip().to_string(),
            SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("wxpay-sandbox")
            .enable_all()
            .build()?;
        let shared = Arc::new(Shared {
            base_url: format!("http://{host}:{}", addr.port()),
            gateway: Mutex::new(Gateway::new(config.clone())),
            gateway_v2: Mutex::new(GatewayV2::new(config.clone())),
            gateway_v3: Mutex::new(GatewayV3::new(config.clone())),
            notifications: Mutex::new(Vec::new()),
            notifications_sent: AtomicU64::new(0),
            notifier: notifier::Notifier::new(runtime.handle().clone())?,
            config,
            faults: Mutex::new(Faults::default()),
            requests: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            clock,
        });
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let server_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("wxpay-sandbox".into())
            .spawn(move || {
                let counted = Arc::clone(&server_shared);
                let listener = listener.tap_io(move |tcp| {
                    counted.connections.fetch_add(1, Ordering::Relaxed);
                    // Small answers go out at once, not after a delayed ACK.
                    let _ = tcp.set_nodelay(true);
                });
                let app = server::router(server_shared);
                runtime.block_on(async move {
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = stopped.await;
                        })
                        .await;
                });
                // Connections still open (keep-alive) are dropped with the runtime.
                runtime.shutdown_timeout(Duration::from_millis(100));
            })?;
        Ok(Sandbox {
            addr,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The address the sandbox listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the `api_base` for clients.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// A client configuration for this sandbox's merchant, pointing at it.
    pub fn client_config(&self) -> Config {
        self.shared
            .config
            .client_config_for(&self.shared.base_url)
            .expect(
                "a loopback sandbox URL and the sandbox's own account make a valid client config",
            )
    }

    /// The same configuration as JSON (with the sandbox's keys in clear).
    pub fn client_config_json(&self) -> String {
        self.shared.client_config_json(Api::Legacy).to_string()
    }

    /// An API v2 client configuration for this sandbox's merchant.
    pub fn client_config_v2(&self) -> Config {
        Config::from_json(&self.shared.client_config_json(Api::V2).to_string()).expect(
            "a loopback sandbox URL and the sandbox's own account make a valid client config",
        )
    }

    /// An API v3 client configuration for this sandbox's merchant (public-key
    /// mode, or certificate mode when the sandbox signs as such).
    pub fn client_config_v3(&self) -> Config {
        Config::from_json(&self.shared.client_config_json(Api::V3).to_string()).expect(
            "a loopback sandbox URL and the sandbox's own account make a valid client config",
        )
    }

    /// From now on, signs v3 answers with a new platform certificate (the old
    /// one stays listed by `/v3/certificates`).
    pub fn rotate_platform_certificate(&self) {
        self.shared.gateway_v3().rotate();
    }

    /// The user pays the v2 or v3 order `out_trade_no`: it becomes SUCCESS
    /// and its signed notification is POSTed to its `notify_url` in the
    /// background, repeatedly until acknowledged.
    pub fn pay(&self, out_trade_no: &str) -> Result<(), String> {
        self.shared.pay(out_trade_no)
    }

    /// The API v2 orders.
    pub fn v2_orders(&self) -> Vec<V2Order> {
        self.shared.gateway_v2().orders()
    }

    /// Every notification delivery so far (one record per notification).
    pub fn notifications(&self) -> Vec<NotificationRecord> {
        self.shared.notifications().clone()
    }

    /// The orders accepted so far, oldest first.
    pub fn orders(&self) -> Vec<RecordedOrder> {
        self.shared.gateway().orders().to_vec()
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Expires the current token: the next genprepay with it gets 42001.
    pub fn expire_token(&self) {
        self.shared.gateway().expire_token();
    }

    /// Arms a fault rule.
    pub fn push_fault(&self, rule: FaultRule) {
        self.shared.faults().push(rule);
    }

    /// The next `count` gateway calls answer HTTP `status` with no body.
    pub fn fail_next(&self, count: u32, status: u16) {
        self.push_fault(FaultRule {
            endpoint: Endpoint::Any,
            action: FaultAction::Status(status),
            count,
        });
    }

    /// The next `count` gateway calls answer 200 with a body cut off mid-JSON.
    pub fn malformed_next(&self, count: u32) {
        self.push_fault(FaultRule {
            endpoint: Endpoint::Any,
            action: FaultAction::MalformedJson,
            count,
        });
    }

    /// The next `count` calls to `endpoint` answer `errcode`.
    pub fn errcode_next(&self, endpoint: Endpoint, count: u32, errcode: i64, errmsg: &str) {
        self.push_fault(FaultRule {
            endpoint,
            action: FaultAction::Errcode {
                errcode,
                errmsg: errmsg.into(),
            },
            count,
        });
    }

    /// Delays every gateway answer by `delay` (zero turns it off).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.faults().delay = delay;
    }

    /// Disarms every fault and the delay.
    pub fn reset_faults(&self) {
        self.shared.faults().clear();
    }

    /// Blocks until the server thread ends (for the `wxpay sandbox` command).
    pub fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Stops the server and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}
