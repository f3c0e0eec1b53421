//! Faults and load against the sandbox's fault switches, on loopback, for
//! every API generation: each scenario runs 1000 orders and checks that none
//! is lost (each ends with pay params or a typed error of the expected kind)
//! and none is sent twice with different parameters. Then 8 threads x 1000
//! orders on one client, counting token fetches and TCP connections.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use wxpay::config::Api;
use wxpay::sandbox::{Endpoint, FaultAction, FaultRule, Sandbox, SandboxConfig};
use wxpay::{Client, Config, Error, Fen, Order};

const ORDERS: usize = 1000;

fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig::default()).expect("sandbox")
}

fn config(sandbox: &Sandbox, api: Api) -> Config {
    match api {
        Api::Legacy => sandbox.client_config(),
        Api::V2 => sandbox.client_config_v2(),
        Api::V3 => sandbox.client_config_v3(),
    }
}

/// The endpoint an order's create call goes to.
fn create_endpoint(api: Api) -> Endpoint {
    match api {
        Api::Legacy => Endpoint::Genprepay,
        Api::V2 => Endpoint::V2,
        Api::V3 => Endpoint::V3,
    }
}

/// Runs `ORDERS` orders over `threads` threads on `client`; every outcome.
/// A client of `api` with a total timeout of `timeout_ms`, warmed up (token,
/// certificates) by one order, so that a fault armed next hits an order.
fn warm_client(sandbox: &Sandbox, api: Api, timeout_ms: u64) -> Client {
    let mut c = config(sandbox, api);
    c.timeout_ms = timeout_ms;
    let client = Client::new(c).expect("client");
    client
        .build_pay_params(
            &Order::new("WARM", Fen::new(1).expect("fen"), "w", "10.0.0.1").expect("order"),
        )
        .expect("warm");
    client
}

fn run(client: &Client, prefix: &str, threads: usize) -> Vec<Result<(), Error>> {
    let next = AtomicUsize::new(0);
    let amount = Fen::new(1999).expect("fen");
    thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= ORDERS {
                            break mine;
                        }
                        let order =
                            Order::new(&format!("{prefix}{i}"), amount, "fault test", "10.0.0.1")
                                .expect("order");
                        mine.push(client.build_pay_params(&order).map(drop));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker"))
            .collect()
    })
}

/// Counts outcomes by kind (`ok`, or the error kind with its code).
fn tally(outcomes: &[Result<(), Error>]) -> BTreeMap<String, usize> {
    let mut t = BTreeMap::new();
    for outcome in outcomes {
        let key = match outcome {
            Ok(()) => "ok".to_owned(),
            Err(Error::Network { timeout: true, .. }) => "network:timeout".to_owned(),
            Err(e) => match (e.errcode(), e.code()) {
                (Some(code), _) => format!("{}:{code}", e.kind()),
                (_, Some(code)) => format!("{}:{code}", e.kind()),
                _ => e.kind().to_string(),
            },
        };
        *t.entry(key).or_default() += 1;
    }
    t
}

fn assert_tally(what: &str, outcomes: &[Result<(), Error>], expected: &[(&str, usize)]) {
    assert_eq!(outcomes.len(), ORDERS, "{what}: an order was lost");
    let got = tally(outcomes);
    let want: BTreeMap<String, usize> = expected
        .iter()
        .map(|(k, v)| ((*k).to_owned(), *v))
        .collect();
    assert_eq!(got, want, "{what}");
}

#[test]
fn connection_refused_fails_every_order_as_a_network_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    for api in [Api::Legacy, Api::V2, Api::V3] {
        let sandbox = sandbox();
        let mut c = config(&sandbox, api);
        c.api_base = Some(format!("http://127.0.0.1:{port}"));
        let client = Client::new(c).expect("client");
        let outcomes = run(&client, "REF", 8);
        assert_tally(
            &format!("{api:?} refused"),
            &outcomes,
            &[("network", ORDERS)],
        );
    }
}

#[test]
fn injected_faults_end_as_typed_errors_and_nothing_is_lost() {
    // (name, action, how many calls it hits, the outcome those orders get)
    let scenarios: [(&str, FaultAction, usize, &str); 7] = [
        (
            "stall past the timeout",
            FaultAction::DelayMs(6000),
            16,
            "network:timeout",
        ),
        ("500", FaultAction::Status(500), 100, "http_status"),
        ("502", FaultAction::Status(502), 100, "http_status"),
        ("503", FaultAction::Status(503), 100, "http_status"),
        (
            "truncated JSON",
            FaultAction::MalformedJson,
            100,
            "malformed_response",
        ),
        (
            "an HTML body",
            FaultAction::Body("<html>502 Bad Gateway</html>".into()),
            100,
            "malformed_response",
        ),
        (
            "a dribbling body",
            FaultAction::DribbleMs(200),
            16,
            "network:timeout",
        ),
    ];
    for api in [Api::Legacy, Api::V2, Api::V3] {
        for (name, action, count, outcome) in scenarios.clone() {
            let sandbox = sandbox();
            // Generous for a debug build on a loaded machine (an RSA
            // signature alone takes tens of milliseconds there); the stalls
            // and the dribble run far past it.
            let client = warm_client(&sandbox, api, 2000);
            sandbox.push_fault(FaultRule {
                endpoint: create_endpoint(api),
                action,
                count: u32::try_from(count).expect("count"),
            });
            let outcomes = run(&client, "F", 8);
            assert_tally(
                &format!("{api:?}: {name}"),
                &outcomes,
                &[("ok", ORDERS - count), (outcome, count)],
            );
            assert_eq!(
                sandbox.stats().conflicts,
                0,
                "{api:?}: {name}: an order was sent twice with other terms"
            );
        }
    }
}

#[test]
fn rejected_tokens_are_refreshed_once_and_retried_once() {
    for errcode in [40001, 42001] {
        let sandbox = sandbox();
        let client = Client::new(sandbox.client_config()).expect("client");
        // Every 10th genprepay meets the errcode once.
        let injected = 100;
        for _ in 0..injected {
            sandbox.push_fault(FaultRule {
                endpoint: Endpoint::Genprepay,
                action: FaultAction::Errcode {
                    errcode,
                    errmsg: "token rejected".into(),
                },
                count: 1,
            });
            // Nine good calls between two faults: the next nine orders pass.
            sandbox.push_fault(FaultRule {
                endpoint: Endpoint::Genprepay,
                action: FaultAction::DelayMs(0),
                count: 9,
            });
        }
        let outcomes = run(&client, "T", 1);
        assert_tally(
            &format!("{errcode} then success"),
            &outcomes,
            &[("ok", ORDERS)],
        );
        let stats = sandbox.stats();
        assert_eq!(
            stats.token_fetches,
            1 + injected as u64,
            "one refresh per rejected call"
        );
        assert_eq!(
            stats.requests,
            (ORDERS + 2 * injected + 1) as u64,
            "one retry per rejected call"
        );
        assert_eq!(stats.orders, ORDERS as u64);
        assert_eq!(stats.conflicts, 0);
    }
}

#[test]
fn a_second_40001_fails_the_order_without_a_loop() {
    let sandbox = sandbox();
    let client = Client::new(sandbox.client_config()).expect("client");
    sandbox.errcode_next(Endpoint::Genprepay, u32::MAX, 40001, "invalid credential");
    let outcomes = run(&client, "L", 1);
    assert_tally("40001 twice", &outcomes, &[("gateway:40001", ORDERS)]);
    let stats = sandbox.stats();
    // Per order: genprepay, token, genprepay. Never more.
    assert_eq!(stats.token_fetches, 1 + ORDERS as u64);
    assert_eq!(stats.requests, 1 + 3 * ORDERS as u64);
}

#[test]
fn the_daily_quota_fails_fast_without_a_refresh_storm() {
    let sandbox = sandbox();
    let client = Client::new(sandbox.client_config()).expect("client");
    sandbox.errcode_next(
        Endpoint::Token,
        u32::MAX,
        45009,
        "reach max api daily quota limit",
    );
    let outcomes = run(&client, "Q", 8);
    assert_tally("45009", &outcomes, &[("gateway:45009", ORDERS)]);
    let stats = sandbox.stats();
    assert!(
        stats.requests <= ORDERS as u64,
        "at most one token call per order: {stats:?}"
    );
    assert_eq!(stats.orders, 0);
}

#[test]
fn the_total_timeout_stops_a_dribbling_body_on_time() {
    for api in [Api::Legacy, Api::V2, Api::V3] {
        let sandbox = sandbox();
        let client = warm_client(&sandbox, api, 3000);
        sandbox.push_fault(FaultRule {
            endpoint: create_endpoint(api),
            action: FaultAction::DribbleMs(50),
            count: 1,
        });
        let started = Instant::now();
        let err = client
            .build_pay_params(
                &Order::new("D1", Fen::new(1).expect("fen"), "d", "10.0.0.1").expect("order"),
            )
            .expect_err("times out");
        let took = started.elapsed();
        assert!(
            matches!(err, Error::Network { timeout: true, .. }),
            "{api:?}: {err:?}"
        );
        assert!(
            took >= Duration::from_millis(2700) && took <= Duration::from_millis(3300),
            "{api:?}: the 3000 ms timeout fired after {took:?}"
        );
    }
}

/// The threads that share one client; each holds at most one connection.
const THREADS: u64 = 8;

#[test]
fn eight_threads_share_one_token_and_one_connection_each() {
    for api in [Api::Legacy, Api::V2, Api::V3] {
        let sandbox = sandbox();
        let client = Client::new(config(&sandbox, api)).expect("client");
        let outcomes: Vec<_> = thread::scope(|s| {
            let workers: Vec<_> = (0..THREADS)
                .map(|t| {
                    let client = &client;
                    s.spawn(move || {
                        (0..ORDERS)
                            .map(|i| {
                                let order = Order::new(
                                    &format!("C{t}x{i}"),
                                    Fen::new(1).expect("fen"),
                                    "c",
                                    "10.0.0.1",
                                )
                                .expect("order");
                                client.build_pay_params(&order).map(drop)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("worker"))
                .collect()
        });
        assert_eq!(outcomes.len(), THREADS as usize * ORDERS);
        assert!(
            outcomes.iter().all(Result::is_ok),
            "{api:?}: {:?}",
            tally(&outcomes)
        );
        let stats = sandbox.stats();
        if api == Api::Legacy {
            assert_eq!(stats.token_fetches, 1, "{stats:?}");
        }
        assert!(
            stats.connections <= THREADS,
            "{api:?}: {} TCP connections for {THREADS} threads",
            stats.connections
        );
    }
}
