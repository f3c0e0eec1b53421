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
//! (`{"ms": N}`), `POST /sandbox/expire-token`, `POST /sandbox/reset` (a
//! [`Reset`] as JSON, or no body for everything), and for API v2 and v3
//! `POST /sandbox/pay` (`{"out_trade_no": ".."}`), `GET /sandbox/v2/orders`,
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
    /// Orders accepted, every generation (`legacy_orders + v2_orders + v3_orders`).
    pub orders: u64,
    /// Gateway calls received (every generation's, faulty or not).
    pub requests: u64,
    /// TCP connections accepted.
    pub connections: u64,
    /// Orders refused because their `out_trade_no` was used with other
    /// terms, every generation.
    pub conflicts: u64,
    /// 2014-flow orders accepted.
    pub legacy_orders: u64,
    /// API v2 orders created.
    pub v2_orders: u64,
    /// API v3 orders created.
    pub v3_orders: u64,
    /// API v2 refunds made.
    pub v2_refunds: u64,
    /// API v3 refunds made.
    pub v3_refunds: u64,
    /// Notification deliveries attempted.
    pub notifications_sent: u64,
    /// Notifications the merchant acknowledged with the success reply.
    pub notifications_acknowledged: u64,
    /// Times `/v3/certificates` was served.
    pub certificate_downloads: u64,
}

/// What [`Sandbox::reset`] and `POST /sandbox/reset` clear. Tokens, the
/// platform certificate and the traffic counters (`token_fetches`,
/// `requests`, `connections`, `certificate_downloads`) are never reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Reset {
    /// Disarm every fault rule and the delay.
    pub faults: bool,
    /// Forget the orders of every generation, their refunds, and the count
    /// of conflicts.
    pub orders: bool,
    /// Forget the notification records and the count of deliveries;
    /// deliveries still retrying stop.
    pub notifications: bool,
}

impl Reset {
    /// Everything.
    pub const ALL: Reset = Reset {
        faults: true,
        orders: true,
        notifications: true,
    };
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
            orders: counts.orders.total(),
            requests: self.requests.load(Ordering::Relaxed),
            connections: self.connections.load(Ordering::Relaxed),
            conflicts: counts.conflicts,
            legacy_orders: counts.orders.of(Generation::Legacy),
            v2_orders: counts.orders.of(Generation::V2),
            v3_orders: counts.orders.of(Generation::V3),
            v2_refunds: counts.refunds.of(Generation::V2),
            v3_refunds: counts.refunds.of(Generation::V3),
            notifications_sent: counts.notifications_sent,
            notifications_acknowledged: counts.notifications_acknowledged,
            certificate_downloads: self.v3.certificate_downloads(),
        }
    }

    fn reset(&self, what: Reset) {
        if what.faults {
            self.faults().clear();
        }
        if what.orders {
            self.ledger.clear_orders();
        }
        if what.notifications {
            self.ledger.clear_notifications();
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
        self.reset(Reset {
            faults: true,
            ..Reset::default()
        });
    }

    /// Clears what `what` names (see [`Reset`]).
    pub fn reset(&self, what: Reset) {
        self.shared.reset(what);
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::model::{OrderRef, RefundRequest};
    use crate::{Client, Fen, Order};

    fn order(no: &str, fen: i64) -> Order {
        Order::new(no, Fen::new(fen).expect("fen"), "b", "1.2.3.4").expect("order")
    }

    /// `POST /sandbox/reset` with `body`, as bytes on the wire; the status.
    fn post_reset(sandbox: &Sandbox, body: &str) -> u16 {
        use std::io::{Read, Write};
        let mut tcp = std::net::TcpStream::connect(sandbox.addr()).expect("connect");
        let head = "POST /sandbox/reset HTTP/1.1\r\nHost: sandbox\r\nConnection: close";
        write!(
            tcp,
            "{head}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("send");
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).expect("answer");
        answer
            .get(9..12)
            .and_then(|status| status.parse().ok())
            .expect("an HTTP status line")
    }

    #[test]
    fn stats_count_every_generation_and_reset_clears_what_it_names() {
        let sandbox = Sandbox::start(SandboxConfig::default()).expect("sandbox");
        let legacy = Client::new(sandbox.client_config()).expect("client");
        let v2 = Client::new(sandbox.client_config_v2()).expect("client");
        let v3 = Client::new(sandbox.client_config_v3()).expect("client");
        // One number, an order in each generation.
        for client in [&legacy, &v2, &v3] {
            client.build_pay_params(&order("S1", 100)).expect("order");
        }
        let conflict = v2.build_pay_params(&order("S1", 200));
        assert_eq!(
            conflict.expect_err("other terms").code(),
            Some("INVALID_REQUEST")
        );
        sandbox.pay("S1").expect("pays the v3 order");
        let refund = RefundRequest {
            order: OrderRef::OutTradeNo("S1".into()),
            out_refund_no: "R1".into(),
            total_fee: 100,
            refund_fee: 40,
            refund_desc: None,
        };
        v3.refund(&refund).expect("refund");
        let deadline = Instant::now() + Duration::from_secs(10);
        while sandbox.stats().notifications_acknowledged == 0 {
            assert!(Instant::now() < deadline, "no acknowledgement");
            std::thread::sleep(Duration::from_millis(10));
        }
        let stats = sandbox.stats();
        let orders = (
            stats.orders,
            stats.legacy_orders,
            stats.v2_orders,
            stats.v3_orders,
        );
        assert_eq!(orders, (3, 1, 1, 1), "{stats:?}");
        let others = (stats.conflicts, stats.v2_refunds, stats.v3_refunds);
        assert_eq!(others, (1, 0, 1), "{stats:?}");

        // The faults alone.
        sandbox.fail_next(3, 503);
        assert_eq!(post_reset(&sandbox, r#"{"faults": true}"#), 204);
        v2.query_order(&refund.order).expect("no fault left");
        assert_eq!(sandbox.stats().orders, 3);

        // The orders alone.
        assert_eq!(post_reset(&sandbox, r#"{"orders": true}"#), 204);
        let stats = sandbox.stats();
        assert_eq!((stats.orders, stats.conflicts, stats.v3_refunds), (0, 0, 0));
        assert_eq!(sandbox.notifications().len(), 1, "{stats:?}");
        let gone = v3.query_order(&refund.order).expect_err("forgotten");
        assert_eq!(gone.code(), Some("ORDER_NOT_EXIST"));
        assert!(sandbox.pay("S1").is_err());
        // The number is free again.
        v2.build_pay_params(&order("S1", 200)).expect("a new order");

        assert_eq!(post_reset(&sandbox, r#"{"order": true}"#), 400);
        assert_eq!(post_reset(&sandbox, "[]"), 400);
        assert_eq!(
            sandbox.stats().v2_orders,
            1,
            "a refused reset clears nothing"
        );

        // No body: everything.
        sandbox.fail_next(1, 503);
        assert_eq!(post_reset(&sandbox, ""), 204);
        let stats = sandbox.stats();
        assert_eq!(
            (stats.orders, stats.notifications_sent),
            (0, 0),
            "{stats:?}"
        );
        assert!(sandbox.notifications().is_empty());
        legacy
            .build_pay_params(&order("S2", 1))
            .expect("no fault left");
        assert_eq!(sandbox.orders().len(), 1);
    }
}
