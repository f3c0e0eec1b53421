//! Helpers the integration tests share: a merchant's notification endpoint
//! on a loopback port, orders, and waiting for what the sandbox does in the
//! background. Each test file includes it with `mod common;` and uses what
//! it needs.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use axum::Router;
use wxpay::{Fen, Order};

/// Serves `app` on a loopback port from a thread of its own (a
/// current-thread runtime); `http://ADDR/notify`, the URL of its `/notify`
/// route. The server runs until the test process exits.
pub fn serve_notify_endpoint(app: Router) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}/notify", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            axum::serve(listener, app).await.expect("serve");
        });
    });
    url
}

/// An order of `fen` for `body`, from a fixed client IP.
pub fn order(no: &str, fen: i64, body: &str) -> Order {
    Order::new(no, Fen::new(fen).expect("fen"), body, "196.168.1.1").expect("order")
}

/// Waits up to 10 s for `done`; fails the test naming `what` after that.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
