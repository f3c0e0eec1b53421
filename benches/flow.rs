//! `build_pay_params` end to end against the sandbox on loopback: one order
//! per iteration through a warm client (cached token, keep-alive connection).

use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wxpay::sandbox::{Sandbox, SandboxConfig};
use wxpay::{Client, Fen, Order};

fn flow(c: &mut Criterion) {
    let sandbox = Sandbox::start(SandboxConfig::default()).expect("sandbox starts");
    let client = Client::new(sandbox.client_config()).expect("client builds");
    let counter = AtomicU64::new(0);
    let amount = Fen::from_yuan_str("19.99").expect("amount");
    let mut group = c.benchmark_group("build_pay_params");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sandbox on loopback", |b| {
        b.iter(|| {
            let no = format!("B{}", counter.fetch_add(1, Ordering::Relaxed));
            let order = Order::new(&no, amount, "支付测试", "196.168.1.1").expect("valid order");
            client.build_pay_params(&order).expect("flow succeeds")
        })
    });
    group.finish();
    let stats = sandbox.stats();
    eprintln!(
        "sandbox: {} orders, {} token fetch(es), {} connection(s)",
        stats.orders, stats.token_fetches, stats.connections
    );
}

criterion_group!(benches, flow);
criterion_main!(benches);
