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

mod config;
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
use serde_json::Value;

pub use config::{defaults, SandboxConfig};
pub use faults::{Endpoint, FaultAction, FaultRule};
pub use legacy::RecordedOrder;
pub use notifier::NotificationRecord;
pub use v2::{V2Order, V2Refund};

use crate::config::{Api, Config};
use crate::util::clock::{Clock, SystemClock};
use faults::Faults;
use legacy::Gateway;
use v2::GatewayV2;
use v3::GatewayV3;

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
