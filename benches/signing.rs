//! Signing cost per order: the package MD5, the two SHA1 signatures, and the
//! whole pure part of the flow (everything but the two network calls).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use wxpay::api::legacy::flow::{pay_params, prepay_body};
use wxpay::api::legacy::merchant::LegacyMerchant;
use wxpay::api::legacy::package::build_package;
use wxpay::crypto::sign::{sign_sha1, Fields};
use wxpay::{Charset, Config, Order, Secret};

fn config(charset: &str) -> LegacyMerchant {
    Config::from_json(&format!(
        r#"{{"appid":"wxd930ea5d5a258f4f","app_secret":"s",
            "app_key":"L8LrMqqeGRxST5reouB0K66CaYAWpqhAVsq7ggKkxHCOastWksvuX1uvmvQclxaHoYd3ElNBrNO2DHnnzgfVG9Qs473M3DTOZug5er46FhuGofumV8H2FVR9qkjSlC5K",
            "partner_id":"1900000109","partner_key":"8934e7d15453e97507ef794cf7b0519d",
            "notify_url":"http://weixin.qq.com","input_charset":"{charset}"}}"#
    ))
    .and_then(|c| c.legacy_merchant())
    .expect("valid config")
}

fn order() -> Order {
    Order::from_json(
        r#"{"out_trade_no":"7240b65810859cbf2a8d9f76a638c0a3","total_yuan":"19.99","body":"支付测试","client_ip":"196.168.1.1"}"#,
    )
    .expect("valid order")
}

fn signing(c: &mut Criterion) {
    let utf8 = config("UTF-8");
    let gbk = config("GBK");
    let order = order();
    let fields = wxpay::api::legacy::flow::package_fields(&utf8, &order, 1_399_514_976);
    let key = Secret::new("8934e7d15453e97507ef794cf7b0519d");

    c.bench_function("package (MD5, UTF-8)", |b| {
        b.iter(|| build_package(black_box(&fields), &key, Charset::Utf8))
    });
    let gbk_fields = wxpay::api::legacy::flow::package_fields(&gbk, &order, 1_399_514_976);
    c.bench_function("package (MD5, GBK)", |b| {
        b.iter(|| build_package(black_box(&gbk_fields), &key, Charset::Gbk))
    });
    let sha1_fields: Fields = [
        ("appid", "wxd930ea5d5a258f4f"),
        ("noncestr", "e7d161ac8d8a76529d39d9f5b4249ccb"),
        ("package", "Sign=WXPay"),
        ("partnerid", "1900000109"),
        ("prepayid", "1101000000140429eb40476f8896f4c9"),
        ("timestamp", "1399514976"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    c.bench_function("app sign (SHA1)", |b| {
        b.iter(|| sign_sha1(black_box(&sha1_fields), &utf8.app_key))
    });
    c.bench_function("all signing for one order", |b| {
        b.iter(|| {
            let body = prepay_body(
                &utf8,
                black_box(&order),
                1_399_514_976,
                "e7d161ac8d8a76529d39d9f5b4249ccb",
            )
            .expect("signs");
            let params = pay_params(
                &utf8,
                &order,
                "1101000000140429eb40476f8896f4c9",
                1_399_514_976,
                &body.noncestr,
            )
            .expect("signs");
            black_box((body, params))
        })
    });
}

criterion_group!(benches, signing);
criterion_main!(benches);
