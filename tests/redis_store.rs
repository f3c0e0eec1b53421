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
            let server = start_redis_server(&["--port", &port]);
            let url = format!("redis://127.0.0.1:{port}/0");
            wait_for_redis(&url);
            RedisServer {
                url,
                _watchdog: Some(server),
            }
        })
        .url
}

/// Starts a redis-server (no persistence, loopback only) with `args`.
fn start_redis_server(args: &[&str]) -> (Child, ChildStdin) {
    let mut watchdog = Command::new("sh")
        .args([
            "-c",
            r#"redis-server "$@" & server=$!; read -r _; kill "$server""#,
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sh runs redis-server (Debian package redis-server; .ci/run installs it)");
    let stdin = watchdog.stdin.take().expect("piped stdin");
    (watchdog, stdin)
}

fn wait_for_redis(url: &str) {
    wait_for(redis::Client::open(url).expect("redis url"), url);
}

fn wait_for(client: redis::Client, url: &str) {
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

/// A "Redis" that accepts connections and never answers: the kernel queues
/// them on a listener nobody reads.
fn hung_redis() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "redis://127.0.0.1:{}/0",
        listener.local_addr().expect("addr").port()
    );
    (listener, url)
}

#[test]
fn a_hung_redis_stalls_no_caller_past_twice_the_timeout() {
    let sandbox = sandbox();
    let (_hung, url) = hung_redis();
    let mut config = sandbox.client_config();
    config.token_store = Some(url);
    config.timeout_ms = 500;
    let client = Client::new(config.clone()).expect("client");
    let order = |no: String| {
        Order::from_json(&format!(
            r#"{{"out_trade_no":"{no}","total_fee":1,"body":"b","client_ip":"1.2.3.4"}}"#
        ))
        .expect("order")
    };
    std::thread::scope(|s| {
        for i in 0..6 {
            let (client, order) = (&client, &order);
            s.spawn(move || {
                let started = Instant::now();
                let err = client
                    .build_pay_params(&order(format!("H{i}")))
                    .expect_err("Redis never answers");
                assert_eq!(err.kind(), ErrorKind::TokenStore, "{err}");
                let took = started.elapsed();
                assert!(took < Duration::from_millis(1000), "call {i} took {took:?}");
            });
        }
    });
    assert_eq!(sandbox.stats().token_fetches, 0);

    // With the fallback, the process's own token serves warm calls without
    // waiting on Redis again.
    config.token_store_fallback = true;
    let client = Client::new(config).expect("client");
    client
        .build_pay_params(&order("F0".into()))
        .expect("falls back");
    let started = Instant::now();
    for i in 1..=20 {
        client
            .build_pay_params(&order(format!("F{i}")))
            .expect("warm call on the fallback token");
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(500),
        "twenty warm calls took {took:?}"
    );
    assert_eq!(sandbox.stats().token_fetches, 1);
}

#[test]
fn values_written_without_the_app_secret_are_ignored() {
    let sandbox = sandbox();
    let mut config: Config = sandbox.client_config();
    config.token_store = Some(redis_url().to_owned());
    let appid = config.appid.clone();
    let redis = redis::Client::open(redis_url()).expect("url");
    let mut con = redis.get_connection().expect("redis");
    // Someone with write access to Redis plants a token and holds the lock.
    redis::cmd("SET")
        .arg(format!("wxpay:{appid}:access_token"))
        .arg("planted-token")
        .arg("EX")
        .arg(600)
        .query::<()>(&mut con)
        .expect("SET");
    redis::cmd("SET")
        .arg(format!("wxpay:{appid}:refresh_lock"))
        .arg("planted-owner")
        .arg("EX")
        .arg(600)
        .query::<()>(&mut con)
        .expect("SET");
    let client = Client::new(config).expect("client");
    let order =
        Order::from_json(r#"{"out_trade_no":"P1","total_fee":1,"body":"b","client_ip":"1.2.3.4"}"#)
            .expect("order");
    let started = Instant::now();
    client
        .build_pay_params(&order)
        .expect("the planted token is ignored, the planted lock taken over");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(sandbox.stats().token_fetches, 1, "its own token");
    let stored: String = redis::cmd("GET")
        .arg(format!("wxpay:{appid}:access_token"))
        .query(&mut con)
        .expect("GET");
    assert!(stored.starts_with("v1:"), "stored sealed");
    assert!(!stored.contains("planted"));
}

#[test]
fn rediss_verifies_the_server_against_the_configured_ca() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
    let dir = std::env::temp_dir().join(format!("wxpay-rediss-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("key")).expect("CA");
    let server_key = KeyPair::generate().expect("key");
    let mut server = CertificateParams::new(Vec::<String>::new()).expect("params");
    server.subject_alt_names = vec![SanType::IpAddress([127, 0, 0, 1].into())];
    let server = server
        .signed_by(&server_key, &ca)
        .expect("server certificate");
    let file = |name: &str, pem: String| {
        let path = dir.join(name);
        std::fs::write(&path, pem).expect("write");
        path.to_str().expect("UTF-8 path").to_owned()
    };
    let (ca_file, cert_file, key_file) = (
        file("ca.pem", ca.pem()),
        file("server.pem", server.pem()),
        file("server-key.pem", server_key.serialize_pem()),
    );
    let port = free_port().to_string();
    let _server = start_redis_server(&[
        "--port",
        "0",
        "--tls-port",
        &port,
        "--tls-cert-file",
        &cert_file,
        "--tls-key-file",
        &key_file,
        "--tls-ca-cert-file",
        &ca_file,
        "--tls-auth-clients",
        "no",
    ]);
    let url = format!("rediss://127.0.0.1:{port}/0");
    let certificates = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(std::fs::read(&ca_file).expect("CA")),
    };
    wait_for(
        redis::Client::build_with_tls(url.as_str(), certificates).expect("client"),
        &url,
    );

    let sandbox = sandbox();
    let mut config: Config = sandbox.client_config();
    config.token_store = Some(url);
    config.token_store_ca_file = Some(ca_file.into());
    let order = |no: &str| {
        Order::from_json(&format!(
            r#"{{"out_trade_no":"{no}","total_fee":1,"body":"b","client_ip":"1.2.3.4"}}"#
        ))
        .expect("order")
    };
    Client::new(config.clone())
        .expect("a")
        .build_pay_params(&order("T1"))
        .expect("over TLS");
    Client::new(config.clone())
        .expect("b")
        .build_pay_params(&order("T2"))
        .expect("shared");
    assert_eq!(
        sandbox.stats().token_fetches,
        1,
        "one token through TLS Redis"
    );

    // The webpki roots do not know the test CA: the server is refused.
    config.token_store_ca_file = None;
    let err = Client::new(config)
        .expect("c")
        .build_pay_params(&order("T3"))
        .expect_err("an unknown CA");
    assert_eq!(err.kind(), ErrorKind::TokenStore, "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
