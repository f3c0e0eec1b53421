//! One access_token for every process: several `wxpay load` processes share a
//! Redis token store against one sandbox.
//!
//! Uses the Redis at `WXPAY_TEST_REDIS_URL` when set (`.ci/run` starts one),
//! else starts its own `redis-server` on a free loopback port.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use wxpay::sandbox::{Endpoint, FaultAction, FaultRule, Sandbox, SandboxConfig};
use wxpay::{Client, Config, ErrorKind, Order};

/// A redis-server this test process started (no persistence). It runs
/// under a shell that waits for its standard input to close, which happens
/// when this process exits however it exits, and then stops the server.
struct RedisServer {
    url: String,
    _watchdog: Option<(Child, ChildStdin)>,
}

fn redis_url() -> &'static str {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    &SERVER
        .get_or_init(|| {
            if let Ok(url) = std::env::var("WXPAY_TEST_REDIS_URL") {
                return RedisServer {
                    url,
                    _watchdog: None,
                };
            }
            let port = free_port().to_string();
            let mut watchdog = Command::new("sh")
                .args([
                    "-c",
                    r#"redis-server "$@" & server=$!; read -r _; kill "$server""#,
                    "redis-server",
                    "--port",
                    &port,
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("sh runs redis-server (Debian package redis-server; .ci/run installs it)");
            let stdin = watchdog.stdin.take().expect("piped stdin");
            let url = format!("redis://127.0.0.1:{port}/0");
            wait_for_redis(&url);
            RedisServer {
                url,
                _watchdog: Some((watchdog, stdin)),
            }
        })
        .url
}

fn wait_for_redis(url: &str) {
    let client = redis::Client::open(url).expect("redis url");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut con) = client.get_connection() {
            if redis::cmd("PING").query::<String>(&mut con).is_ok() {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "redis-server did not come up at {url}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A sandbox whose appid is unique to the calling test, so tests sharing one
/// Redis never share keys.
fn sandbox() -> Sandbox {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let config = SandboxConfig {
        appid: format!(
            "wxredis{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ),
        ..SandboxConfig::default()
    };
    Sandbox::start(config).expect("sandbox starts")
}

/// The sandbox's client config with the Redis store, written to a file.
fn config_file(sandbox: &Sandbox, extra: &[(&str, serde_json::Value)]) -> PathBuf {
    let mut json: serde_json::Value =
        serde_json::from_str(&sandbox.client_config_json()).expect("json");
    json["token_store"] = redis_url().into();
    for (k, v) in extra {
        json[*k] = v.clone();
    }
    let path = std::env::temp_dir().join(format!(
        "wxpay-redis-{}-{}.json",
        std::process::id(),
        sandbox.addr().port()
    ));
    std::fs::write(&path, json.to_string()).expect("write config");
    path
}

fn load(config: &PathBuf, prefix: &str, orders: u32, threads: u32) -> Child {
    Command::new(env!("CARGO_BIN_EXE_wxpay"))
        .args([
            "load",
            "--orders",
            &orders.to_string(),
            "--threads",
            &threads.to_string(),
        ])
        .args(["--prefix", prefix, "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        // With `WXPAY_LOG`, the log lines go straight to the test's standard
        // error: a pipe read only at exit could fill and stall a child that
        // holds the refresh lock.
        .stderr(if std::env::var_os("WXPAY_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::piped()
        })
        .spawn()
        .expect("wxpay load runs")
}

/// Waits for a `wxpay load` and passes on what it printed to the test's own
/// output (shown on failure, or always with `--nocapture`), log lines included.
fn wait(child: Child) -> Output {
    let output = child.wait_with_output().expect("wxpay load exits");
    print!("{}", String::from_utf8_lossy(&output.stdout));
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    output
}

/// Waits for a `wxpay load` and returns its JSON summary; fails on failure.
fn summary(child: Child) -> serde_json::Value {
    let output = wait(child);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "wxpay load failed: {stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("summary JSON")
}

#[test]
fn four_processes_of_eight_threads_make_one_token_fetch() {
    let sandbox = sandbox();
    let config = config_file(&sandbox, &[]);
    let run_all = |round: &str| {
        let children: Vec<Child> = (0..4)
            .map(|p| load(&config, &format!("{round}p{p}x"), 80, 8))
            .collect();
        for child in children {
            assert_eq!(summary(child)["ok"], 80);
        }
    };
    run_all("a");
    assert_eq!(sandbox.stats().token_fetches, 1, "{:?}", sandbox.stats());
    assert_eq!(sandbox.stats().orders, 320);

    // Every process meets 42001 with its cached token; one refresh serves all.
    sandbox.expire_token();
    run_all("b");
    assert_eq!(sandbox.stats().token_fetches, 2, "{:?}", sandbox.stats());
    assert_eq!(sandbox.stats().orders, 640);
    std::fs::remove_file(&config).ok();
}

#[test]
fn a_killed_lock_holder_stalls_the_others_no_longer_than_the_lock_ttl() {
    let sandbox = sandbox();
    // timeout 1 s: the refresh lock lives timeout + 2 s = 3 s.
    let config = config_file(&sandbox, &[("timeout_ms", 1000.into())]);
    let lock_ttl = Duration::from_secs(3);
    // The first token fetch stalls, so its process sits in the lock.
    sandbox.push_fault(FaultRule {
        endpoint: Endpoint::Token,
        action: FaultAction::DelayMs(20_000),
        count: 1,
    });
    let mut holder = load(&config, "holder", 1, 1);
    let appid = sandbox.client_config().appid;
    let lock_key = format!("wxpay:{appid}:refresh_lock");
    let mut con = redis::Client::open(redis_url())
        .and_then(|c| c.get_connection())
        .expect("redis connection");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !redis::cmd("EXISTS")
        .arg(&lock_key)
        .query::<bool>(&mut con)
        .expect("EXISTS")
    {
        assert!(Instant::now() < deadline, "the holder never took the lock");
        std::thread::sleep(Duration::from_millis(10));
    }
    let locked_at = Instant::now();
    // Kill it mid-refresh: once its token request is stalled at the gateway
    // (which also spends the one stalling fault on it).
    while sandbox.stats().requests == 0 {
        assert!(
            Instant::now() < deadline,
            "the holder never asked for a token"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    holder.kill().expect("kill the holder");
    holder.wait().expect("reap the holder");

    let others: Vec<Child> = (0..3)
        .map(|p| load(&config, &format!("o{p}x"), 10, 4))
        .collect();
    for child in others {
        assert_eq!(summary(child)["ok"], 10);
    }
    let waited = locked_at.elapsed();
    assert!(
        waited < lock_ttl + Duration::from_secs(2),
        "the others waited {waited:?}"
    );
    std::fs::remove_file(&config).ok();
}

#[test]
fn invalidation_deletes_only_the_token_that_failed() {
    let sandbox = sandbox();
    let mut config: Config = sandbox.client_config();
    config.token_store = Some(redis_url().to_owned());
    let a = Client::new(config.clone()).expect("client a");
    let b = Client::new(config).expect("client b");
    let order = |no: &str| {
        Order::from_json(&format!(
            r#"{{"out_trade_no":"{no}","total_fee":1,"body":"b","client_ip":"1.2.3.4"}}"#
        ))
        .expect("order")
    };
    a.build_pay_params(&order("I1")).expect("a");
    b.build_pay_params(&order("I2"))
        .expect("b shares a's token");
    assert_eq!(sandbox.stats().token_fetches, 1);
    // Both hit 40001 once with the same token: a single refresh.
    sandbox.errcode_next(Endpoint::Genprepay, 1, 40001, "invalid credential");
    a.build_pay_params(&order("I3")).expect("a refreshes");
    sandbox.errcode_next(Endpoint::Genprepay, 1, 40001, "invalid credential");
    b.build_pay_params(&order("I4"))
        .expect("b reuses a's refresh");
    assert_eq!(sandbox.stats().token_fetches, 2, "{:?}", sandbox.stats());
}

#[test]
fn unreachable_redis_is_a_quick_clear_error_or_falls_back() {
    let sandbox = sandbox();
    let mut config = sandbox.client_config();
    config.token_store = Some(format!("redis://127.0.0.1:{}/0", free_port()));
    config.timeout_ms = 500;
    let order =
        Order::from_json(r#"{"out_trade_no":"R1","total_fee":1,"body":"b","client_ip":"1.2.3.4"}"#)
            .expect("order");

    let started = Instant::now();
    let err = Client::new(config.clone())
        .expect("client builds without touching Redis")
        .build_pay_params(&order)
        .expect_err("no Redis");
    assert_eq!(err.kind(), ErrorKind::TokenStore, "{err}");
    assert!(err.is_retryable());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(sandbox.stats().token_fetches, 0);

    config.token_store_fallback = true;
    Client::new(config)
        .expect("client builds")
        .build_pay_params(&order)
        .expect("falls back to its own token");
    assert_eq!(sandbox.stats().token_fetches, 1);
}

#[test]
fn a_quota_error_is_shared_not_retried_by_every_waiter() {
    let sandbox = sandbox();
    let config = config_file(&sandbox, &[]);
    // Every token fetch fails with 45009, slowly, so the others queue on the lock.
    sandbox.set_delay(Duration::from_millis(300));
    sandbox.errcode_next(
        Endpoint::Token,
        100,
        45009,
        "reach max api daily quota limit",
    );
    let children: Vec<Child> = (0..4)
        .map(|p| load(&config, &format!("q{p}x"), 1, 1))
        .collect();
    for child in children {
        let output = wait(child);
        assert!(!output.status.success());
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("gateway:45009"), "{stdout}");
    }
    // One fetch reached the gateway; the waiters took its error.
    assert!(sandbox.stats().requests <= 2, "{:?}", sandbox.stats());
    std::fs::remove_file(&config).ok();
}
