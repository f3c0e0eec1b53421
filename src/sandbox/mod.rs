//! A local WeChat Pay gateway for tests, benchmarks and app developers: it
//! speaks the 2014 APP flow (`/cgi-bin/token`, `/pay/genprepay`), API v2
//! (`unifiedorder`, `orderquery`, `closeorder`, `refund`, `refundquery`, and
//! the `sandboxnew/` simulation paths) and API v3 (`/v3/pay/transactions/app`,
//! the queries, close, refunds, `/v3/certificates`) as the real one does,
//! checks every signature with its own copy of the merchant's keys, signs its
//! answers, answers with the real error codes, records the orders it accepts,
//! has fault switches, and can simulate the user paying: it then POSTs the
//! signed notification to the order's `notify_url`, again and again until it
//! gets the success reply, like WeChat.
//!
//! The files: `config.rs` (the merchant account), `ledger.rs` (the orders,
//! refunds and notifications of every generation, and the payment state
//! machine), one file per protocol (`legacy.rs`, `v2.rs`, `v3.rs`: parsing,
//! signature checks, answer formats), `notifier.rs` (delivery), `faults.rs`
//! and `server.rs` (the HTTP routes).
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
//! (`{"ms": N}`), `POST /sandbox/expire-token`, `POST /sandbox/reset` (the
//! faults), and for API v2 and v3 `POST /sandbox/pay`
//! (`{"out_trade_no": ".."}`), `GET /sandbox/v2/orders`,
//! `GET /sandbox/notifications`.

mod config;
mod faults;
mod ledger;
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
pub use ledger::NotificationRecord;
pub use legacy::RecordedOrder;
pub use v2::{V2Order, V2Refund};

use crate::config::{Api, Config};
use crate::util::clock::{Clock, SystemClock};
use faults::Faults;
use ledger::{Generation, Ledger, Refusal};
use legacy::Gateway;
use v2::GatewayV2;
use v3::GatewayV3;

/// Counters the sandbox keeps, for tests and benchmarks (`GET /sandbox/stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Tokens issued.
    pub token_fetches: u64,
    /// 2014-flow orders accepted.
    pub orders: u64,
    /// Gateway calls received (every generation's, faulty or not).
    pub requests: u64,
    /// TCP connections accepted.
    pub connections: u64,
    /// Orders refused because their `out_trade_no` was used with other
    /// terms, every generation.
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
    legacy: Gateway,
    v2: GatewayV2,
    v3: GatewayV3,
    ledger: Ledger,
    notifier: notifier::Notifier,
    faults: Mutex<Faults>,
    requests: AtomicU64,
    connections: AtomicU64,
    clock: Arc<dyn Clock>,
}

impl Shared {
    fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stats(&self) -> Stats {
        let counts = self.ledger.counts();
        Stats {
            token_fetches: self.legacy.token_fetches(),
            orders: counts.orders.of(Generation::Legacy),
            requests: self.requests.load(Ordering::Relaxed),
            connections: self.connections.load(Ordering::Relaxed),
            conflicts: counts.conflicts,
            v2_orders: counts.orders.of(Generation::V2),
            notifications_sent: counts.notifications_sent,
            notifications_acknowledged: counts.notifications_acknowledged,
            certificate_downloads: self.v3.certificate_downloads(),
        }
    }

    fn client_config_json(&self, api: Api) -> Value {
        self.config.client_config_json_for(&self.base_url, api)
    }

    /// The user pays the v3 or else v2 order `out_trade_no`: deliver its
    /// notification in the background.
    fn pay(self: &Arc<Self>, out_trade_no: &str) -> Result<(), String> {
        let now = self.clock.now_unix();
        let paid = match self.ledger.pay(Generation::V3, out_trade_no, now) {
            Err(Refusal::NotFound) => self.ledger.pay(Generation::V2, out_trade_no, now),
            other => other,
        };
        let order = paid.map_err(|refusal| match refusal {
            Refusal::NotPayable(state) => format!("order {out_trade_no} is {}", state.as_str()),
            _ => format!("no v2 order {out_trade_no:?}"),
        })?;
        // Only v3 and v2 orders were asked for.
        let outgoing = match order.generation {
            Generation::V3 => self.v3.payment_notification(&order, now)?,
            Generation::V2 | Generation::Legacy => self.v2.payment_notification(&order),
        };
        self.notifier.deliver(Arc::clone(self), outgoing);
        Ok(())
    }

    fn legacy_orders(&self) -> Vec<RecordedOrder> {
        let orders = self.ledger.orders(Generation::Legacy);
        orders.iter().map(RecordedOrder::from).collect()
    }

    fn v2_orders(&self) -> Vec<V2Order> {
        let orders = self.ledger.orders(Generation::V2);
        orders.iter().map(V2Order::from).collect()
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
            legacy: Gateway::new(config.clone()),
            v2: GatewayV2::new(config.clone()),
            v3: GatewayV3::new(config.clone()),
            ledger: Ledger::default(),
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
        self.shared.v3.rotate();
    }

    /// The user pays the v2 or v3 order `out_trade_no`: it becomes SUCCESS
    /// and its signed notification is POSTed to its `notify_url` in the
    /// background, repeatedly until acknowledged.
    pub fn pay(&self, out_trade_no: &str) -> Result<(), String> {
        self.shared.pay(out_trade_no)
    }

    /// The API v2 orders, oldest first.
    pub fn v2_orders(&self) -> Vec<V2Order> {
        self.shared.v2_orders()
    }

    /// Every notification delivery so far (one record per notification).
    pub fn notifications(&self) -> Vec<NotificationRecord> {
        self.shared.ledger.notifications()
    }

    /// The 2014-flow orders accepted so far, oldest first.
    pub fn orders(&self) -> Vec<RecordedOrder> {
        self.shared.legacy_orders()
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Expires the current token: the next genprepay with it gets 42001.
    pub fn expire_token(&self) {
        self.shared.legacy.expire_token();
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
