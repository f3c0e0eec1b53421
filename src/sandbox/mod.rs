//! A local WeChat Pay gateway for tests, benchmarks and app developers: it
//! speaks `/cgi-bin/token` and `/pay/genprepay` as the real one does, checks
//! every signature with its own copy of the merchant's keys, answers with the
//! real error codes, records the orders it accepts, and has fault switches.
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
//! (`{"ms": N}`), `POST /sandbox/expire-token`, `POST /sandbox/reset`.

mod faults;
mod gateway;
mod server;

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
pub use gateway::RecordedOrder;

use crate::charset::Charset;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::secret::Secret;
use faults::Faults;
use gateway::Gateway;

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
}

/// The merchant account the sandbox serves.
///
/// Read from the same JSON as a client [`Config`] (so one file serves both):
/// the client-only keys (`notify_url`, `api_base`, `input_charset`,
/// `timeout_ms`) are accepted and ignored, `token_ttl_secs` is the sandbox's
/// own, and every key left out takes its value from [`defaults`].
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// The app id.
    pub appid: String,
    /// The app secret the token call must present.
    pub app_secret: Secret,
    /// The app key of the SHA1 signatures.
    pub app_key: Secret,
    /// The partner id the package must name.
    pub partner_id: String,
    /// The partner key of the package MD5.
    pub partner_key: Secret,
    /// The lifetime of issued tokens, in seconds.
    pub token_ttl_secs: u64,
    /// The charset for [`Sandbox::client_config`] (a package says its own).
    pub input_charset: Charset,
    #[serde(rename = "notify_url")]
    _notify_url: Option<String>,
    #[serde(rename = "api_base")]
    _api_base: Option<String>,
    #[serde(rename = "timeout_ms")]
    _timeout_ms: Option<u64>,
}

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
            _notify_url: None,
            _api_base: None,
            _timeout_ms: None,
        }
    }
}

impl SandboxConfig {
    /// Parses a JSON account (see the type's documentation).
    pub fn from_json(json: &str) -> crate::Result<SandboxConfig> {
        let config: SandboxConfig =
            serde_json::from_str(json).map_err(|e| crate::Error::InvalidConfig {
                field: "sandbox".into(),
                reason: e.to_string(),
            })?;
        if config.token_ttl_secs == 0 {
            return Err(crate::Error::config("token_ttl_secs", "must be positive"));
        }
        Ok(config)
    }
}

impl SandboxConfig {
    /// A client configuration for this account against a sandbox at
    /// `base_url`, as JSON (with the account's keys in clear).
    pub fn client_config_json(&self, base_url: &str) -> Value {
        let base_url = base_url.trim_end_matches('/');
        json!({
            "appid": self.appid,
            "app_secret": self.app_secret.expose(),
            "app_key": self.app_key.expose(),
            "partner_id": self.partner_id,
            "partner_key": self.partner_key.expose(),
            "notify_url": format!("{base_url}/sandbox/notify"),
            "api_base": base_url,
            "input_charset": self.input_charset.as_str(),
        })
    }

    /// A client configuration for this account against a sandbox at `base_url`.
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
}

/// State shared by the handle and the server.
struct Shared {
    config: SandboxConfig,
    base_url: String,
    gateway: Mutex<Gateway>,
    faults: Mutex<Faults>,
    requests: AtomicU64,
    connections: AtomicU64,
    clock: Arc<dyn Clock>,
}

impl Shared {
    fn gateway(&self) -> MutexGuard<'_, Gateway> {
        self.gateway.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stats(&self) -> Stats {
        let gateway = self.gateway();
        Stats {
            token_fetches: gateway.token_fetches,
            orders: gateway.orders().len() as u64,
            requests: self.requests.load(Ordering::Relaxed),
            connections: self.connections.load(Ordering::Relaxed),
            conflicts: gateway.conflicts,
        }
    }

    fn client_config_json(&self) -> Value {
        self.config.client_config_json(&self.base_url)
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
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let host = match addr {
            SocketAddr::V4(v4) => v4.ip().to_string(),
            SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
        };
        let shared = Arc::new(Shared {
            base_url: format!("http://{host}:{}", addr.port()),
            gateway: Mutex::new(Gateway::new(config.clone())),
            config,
            faults: Mutex::new(Faults::default()),
            requests: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            clock,
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("wxpay-sandbox")
            .enable_all()
            .build()?;
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
        self.shared.client_config_json().to_string()
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
