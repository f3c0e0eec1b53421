//! The floor under `build_pay_params`: one keep-alive HTTP POST round trip to
//! the same sandbox, without any of the payment flow.
//!
//! A warm libwxpay client spends one `POST /pay/genprepay` per order (the
//! access_token is cached), so an order cannot cost less than one round trip.
//! This posts a fixed body of the size of a genprepay request to
//! `{base}/sandbox/notify` (which answers `success`) N times, three ways, and
//! prints one JSON line for each (orders/s, p50/p99 latency in µs):
//!
//! - `reqwest`: one `reqwest::Client` (keep-alive), driven on a current-thread
//!   tokio runtime on the calling thread;
//! - `wxpay transport`: `wxpay::http::HttpTransport`, the transport
//!   `build_pay_params` sends through;
//! - `std TcpStream`: hand-written HTTP/1.1 on one kept-alive socket, the
//!   floor of the sandbox itself.
//!
//! ```sh
//! cargo run --release --example raw_roundtrip --features sandbox -- --api-base http://127.0.0.1:PORT --orders 300
//! ```
//!
//! Part of `scripts/bench.sh`; numbers, not assertions.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wxpay::http::{HttpRequest, HttpTransport, Method, Transport};

/// Roughly the size and shape of a genprepay body (the flow's is ~560 bytes).
const BODY: &str = concat!(
    r#"{"appid":"wxd930ea5d5a258f4f","traceid":"B0000000001","noncestr":"e7d161ac8d8a76529d39d9f5b4249ccb","#,
    r#""package":"bank_type=WX&body=%D6%A7%B8%B6%B2%E2%CA%D4&fee_type=1&input_charset=GBK&notify_url=http%3A%2F%2F127.0.0.1%3A40000%2Fsandbox%2Fnotify"#,
    r#"&out_trade_no=B0000000001&partner=1900000109&spbill_create_ip=196.168.1.1&time_expire=20260101122000&time_start=20260101120000"#,
    r#"&total_fee=1999&sign=7F77B507B755B3262884291517E380F8","timestamp":"1399514976","#,
    r#""app_signature":"7ffecb600d7157c5aa49810d2d8f28bc2811827b","sign_method":"sha1"}"#
);

const WARMUP: usize = 20;

struct Args {
    api_base: String,
    orders: usize,
}

fn args() -> Result<Args, String> {
    let mut api_base = None;
    let mut orders = 300;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--api-base" => api_base = it.next(),
            "--orders" => {
                orders = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("--orders takes a number")?;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let api_base = api_base.ok_or("usage: raw_roundtrip --api-base URL [--orders N]")?;
    Ok(Args {
        api_base: api_base.trim_end_matches('/').to_owned(),
        orders,
    })
}

/// Runs `one` WARMUP times, then `orders` times timed; prints the summary.
fn measure(name: &str, orders: usize, mut one: impl FnMut() -> Result<(), String>) {
    for _ in 0..WARMUP {
        if let Err(e) = one() {
            eprintln!("{name}: {e}");
            std::process::exit(1);
        }
    }
    let mut latencies = Vec::with_capacity(orders);
    let started = Instant::now();
    for _ in 0..orders {
        let t = Instant::now();
        if let Err(e) = one() {
            eprintln!("{name}: {e}");
            std::process::exit(1);
        }
        latencies.push(t.elapsed().as_micros());
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    // The same rule as `wxpay load`: the value at index len*p/100.
    let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    let per_sec = orders as f64 / elapsed.as_secs_f64().max(1e-9);
    println!(
        "{}",
        serde_json::json!({
            "impl": name,
            "orders": orders,
            "elapsed_ms": elapsed.as_millis(),
            "orders_per_sec": (per_sec * 10.0).round() / 10.0,
            "latency_us": { "p50": pct(50), "p99": pct(99), "max": latencies[latencies.len() - 1] },
        })
    );
}

fn check(status: u16, body: &[u8]) -> Result<(), String> {
    if status == 200 && body == b"success" {
        Ok(())
    } else {
        Err(format!(
            "unexpected answer {status} {:?}",
            String::from_utf8_lossy(body)
        ))
    }
}

fn reqwest_client() -> Result<reqwest::Client, String> {
    // The crate builds reqwest without a default TLS provider: give it ring's,
    // as the library's transport does (plain http here, so no roots needed).
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .tcp_nodelay(true)
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())
}

fn with_reqwest(url: &str, orders: usize) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let client = reqwest_client()?;
    measure("raw POST: reqwest, one keep-alive client", orders, || {
        runtime.block_on(async {
            let answer = client
                .post(url)
                .header("content-type", "application/json")
                .body(BODY)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = answer.status().as_u16();
            let body = answer.bytes().await.map_err(|e| e.to_string())?;
            check(status, &body)
        })
    });
    Ok(())
}

fn with_wxpay_transport(url: &str, orders: usize) -> Result<(), String> {
    let transport = HttpTransport::new(Duration::from_secs(10)).map_err(|e| e.to_string())?;
    let request = HttpRequest {
        method: Method::Post,
        url: url.parse().map_err(|e| format!("{url}: {e}"))?,
        body: BODY.as_bytes().to_vec(),
        content_type: Some("application/json"),
        headers: Vec::new(),
    };
    measure("raw POST: wxpay::http::HttpTransport", orders, || {
        let answer = transport.send(&request).map_err(|e| e.to_string())?;
        check(answer.status, &answer.body)
    });
    Ok(())
}

fn with_tcp(api_base: &str, orders: usize) -> Result<(), String> {
    let authority = api_base
        .strip_prefix("http://")
        .ok_or("the TCP floor needs an http:// base")?;
    let stream = TcpStream::connect(authority).map_err(|e| format!("{authority}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let request = format!(
        "POST /sandbox/notify HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let mut line = String::new();
    let mut body = Vec::new();
    measure(
        "raw POST: std TcpStream, hand-written HTTP/1.1",
        orders,
        || {
            writer
                .write_all(request.as_bytes())
                .map_err(|e| e.to_string())?;
            let mut status = 0;
            let mut length = 0usize;
            loop {
                line.clear();
                if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                    return Err("connection closed".into());
                }
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                if let Some(code) = l.strip_prefix("HTTP/1.1 ") {
                    status = code.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
                } else if let Some((k, v)) = l.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        length = v.trim().parse().map_err(|_| "bad content-length")?;
                    }
                }
            }
            body.resize(length, 0);
            reader.read_exact(&mut body).map_err(|e| e.to_string())?;
            check(status, &body)
        },
    );
    Ok(())
}

fn main() {
    let run = || -> Result<(), String> {
        let args = args()?;
        let url = format!("{}/sandbox/notify", args.api_base);
        with_reqwest(&url, args.orders)?;
        with_wxpay_transport(&url, args.orders)?;
        with_tcp(&args.api_base, args.orders)
    };
    if let Err(e) = run() {
        eprintln!("raw_roundtrip: {e}");
        std::process::exit(2);
    }
}
