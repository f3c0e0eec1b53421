//! The whole flow against the sandbox on loopback: success, token expiry and
//! refresh, gateway errors, HTTP faults, timeouts, concurrency, and the
//! sandbox's own checks.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use wxpay::crypto::sign::sign_sha1;
use wxpay::http::{HttpRequest, HttpTransport, Method, Transport};
use wxpay::sandbox::{Endpoint, Sandbox, SandboxConfig};
use wxpay::util::clock::FixedClock;
use wxpay::util::nonce::FixedNonce;
use wxpay::{Charset, Client, Config, Error, Order};

fn order(no: &str, yuan: &str) -> Order {
    Order::from_json(&format!(
        r#"{{"out_trade_no":"{no}","total_yuan":"{yuan}","body":"支付测试","client_ip":"196.168.1.1"}}"#
    ))
    .expect("valid order")
}

fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig::default()).expect("sandbox starts")
}

fn client(sandbox: &Sandbox) -> Client {
    Client::new(sandbox.client_config()).expect("client builds")
}

#[test]
fn full_flow_is_signed_and_recorded() {
    let sandbox = sandbox();
    let config = sandbox.client_config();
    let client = Client::builder(config.clone())
        .clock(Arc::new(FixedClock(1_399_514_976)))
        .nonce_source(Arc::new(FixedNonce(
            "e7d161ac8d8a76529d39d9f5b4249ccb".into(),
        )))
        .build()
        .expect("client builds");
    let params = client
        .build_pay_params(&order("A1001", "0.29"))
        .expect("flow succeeds");

    assert_eq!(params.appid, "wxd930ea5d5a258f4f");
    assert_eq!(params.partnerid, "1900000109");
    assert_eq!(params.package, "Sign=WXPay");
    assert_eq!(params.noncestr, "e7d161ac8d8a76529d39d9f5b4249ccb");
    assert_eq!(params.timestamp, "1399514976");
    assert_eq!(params.total_fee, 29);
    assert_eq!(params.out_trade_no, "A1001");

    // The app's signature, recomputed from the documented field list.
    let fields: BTreeMap<String, String> = [
        ("appid", params.appid.as_str()),
        ("noncestr", &params.noncestr),
        ("package", "Sign=WXPay"),
        ("partnerid", &params.partnerid),
        ("prepayid", &params.prepayid),
        ("timestamp", &params.timestamp),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(
        params.sign,
        sign_sha1(&fields, config.app_key.as_ref().expect("legacy config"))
            .expect("signs")
            .signature()
    );

    let orders = sandbox.orders();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].prepayid, params.prepayid);
    assert_eq!(orders[0].total_fee, 29);
    assert_eq!(orders[0].body, "支付测试");
    assert_eq!(orders[0].traceid, "A1001");
    assert_eq!(orders[0].package_fields["time_start"], "20140508100936");
    assert_eq!(orders[0].package_fields["time_expire"], "20140508102936");
}

#[test]
fn the_token_is_fetched_once_for_many_orders() {
    let sandbox = sandbox();
    let client = client(&sandbox);
    for i in 0..5 {
        client
            .build_pay_params(&order(&format!("T{i}"), "1"))
            .expect("flow succeeds");
    }
    let stats = sandbox.stats();
    assert_eq!(stats.token_fetches, 1);
    assert_eq!(stats.orders, 5);
    assert_eq!(stats.requests, 6);
}

#[test]
fn an_expired_token_is_refreshed_once_and_the_call_retried_once() {
    let sandbox = sandbox();
    let client = client(&sandbox);
    client
        .build_pay_params(&order("E1", "1"))
        .expect("first order");
    sandbox.expire_token();
    client
        .build_pay_params(&order("E2", "1"))
        .expect("second order after refresh");
    let stats = sandbox.stats();
    assert_eq!(stats.token_fetches, 2, "exactly one refresh");
    // token, genprepay | genprepay (42001), token, genprepay
    assert_eq!(stats.requests, 5, "exactly one retry");
    assert_eq!(stats.orders, 2);
    assert_eq!(stats.conflicts, 0);
}

#[test]
fn a_second_40001_after_a_refresh_fails_without_looping() {
    let sandbox = sandbox();
    let client = client(&sandbox);
    sandbox.errcode_next(Endpoint::Genprepay, 5, 40001, "invalid credential");
    let err = client
        .build_pay_params(&order("L1", "1"))
        .expect_err("fails");
    assert_eq!(err.errcode(), Some(40001));
    assert_eq!(err.errmsg(), Some("invalid credential"));
    let stats = sandbox.stats();
    assert_eq!(stats.token_fetches, 2, "one refresh, no more");
    assert_eq!(stats.requests, 4, "token, genprepay, token, genprepay");
}

#[test]
fn a_42001_or_40014_is_retried_like_40001() {
    for (errcode, errmsg) in [
        (42001, "access_token expired"),
        (40014, "invalid access_token"),
    ] {
        let sandbox = sandbox();
        let client = client(&sandbox);
        sandbox.errcode_next(Endpoint::Genprepay, 1, errcode, errmsg);
        client
            .build_pay_params(&order("X1", "1"))
            .unwrap_or_else(|e| panic!("{errcode}: does not succeed after one refresh: {e}"));
        assert_eq!(sandbox.stats().token_fetches, 2, "{errcode}");
    }
}

#[test]
fn quota_and_other_errcodes_fail_fast() {
    let sandbox = sandbox();
    let client = client(&sandbox);
    sandbox.errcode_next(Endpoint::Token, 1, 45009, "reach max api daily quota limit");
    let err = client
        .build_pay_params(&order("Q1", "1"))
        .expect_err("quota");
    assert_eq!(err.errcode(), Some(45009));
    assert_eq!(sandbox.stats().requests, 1, "no retry of a quota error");

    sandbox.errcode_next(Endpoint::Genprepay, 1, 48001, "api unauthorized");
    let err = client
        .build_pay_params(&order("Q2", "1"))
        .expect_err("unauthorized");
    assert_eq!(err.errcode(), Some(48001));
    assert!(!err.is_retryable());
    assert_eq!(sandbox.stats().token_fetches, 1, "no refresh for 48001");
}

#[test]
fn http_5xx_is_a_retryable_status_error() {
    let sandbox = sandbox();
    let client = client(&sandbox);
    sandbox.fail_next(1, 503);
    let err = client.build_pay_params(&order("S1", "1")).expect_err("503");
    assert_eq!(err, Error::HttpStatus { status: 503 });
    assert!(err.is_retryable());
    client
        .build_pay_params(&order("S1", "1"))
        .expect("the next call succeeds");
}

#[test]
fn malformed_json_is_reported_as_such() {
    let sandbox = sandbox();
    let client = client(&sandbox);
    client.build_pay_params(&order("M0", "1")).expect("warm");
    sandbox.malformed_next(1);
    let err = client
        .build_pay_params(&order("M1", "1"))
        .expect_err("malformed");
    assert!(matches!(err, Error::MalformedResponse(_)), "{err:?}");
}

#[test]
fn a_stalled_gateway_hits_the_timeout() {
    let sandbox = sandbox();
    let mut config = sandbox.client_config();
    config.timeout_ms = 300;
    let client = Client::new(config).expect("client builds");
    sandbox.set_delay(Duration::from_secs(3));
    let started = Instant::now();
    let err = client
        .build_pay_params(&order("D1", "1"))
        .expect_err("times out");
    let elapsed = started.elapsed();
    assert!(
        matches!(err, Error::Network { timeout: true, .. }),
        "{err:?}"
    );
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    sandbox.set_delay(Duration::ZERO);
}

#[test]
fn connection_refused_is_a_network_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let config = SandboxConfig::default()
        .client_config_for(&format!("http://127.0.0.1:{port}"))
        .expect("config");
    let err = Client::new(config)
        .expect("client builds")
        .build_pay_params(&order("C1", "1"))
        .expect_err("refused");
    assert!(
        matches!(err, Error::Network { timeout: false, .. }),
        "{err:?}"
    );
    assert!(err.is_retryable());
}

#[test]
fn eight_threads_share_one_token_fetch() {
    let sandbox = sandbox();
    let client = client(&sandbox);
    thread::scope(|s| {
        for t in 0..8 {
            let client = &client;
            s.spawn(move || {
                for i in 0..10 {
                    client
                        .build_pay_params(&order(&format!("P{t}x{i}"), "0.01"))
                        .expect("flow succeeds");
                }
            });
        }
    });
    let stats = sandbox.stats();
    assert_eq!(stats.token_fetches, 1);
    assert_eq!(stats.orders, 80);
}

#[test]
fn gbk_packages_round_trip_through_the_gateway() {
    let sandbox = sandbox();
    let mut config = sandbox.client_config();
    config.input_charset = Charset::Gbk;
    let client = Client::new(config).expect("client builds");
    client
        .build_pay_params(&order("G1", "4.35"))
        .expect("GBK flow");
    let recorded = &sandbox.orders()[0];
    assert_eq!(recorded.body, "支付测试");
    assert_eq!(recorded.total_fee, 435);
    assert_eq!(recorded.package_fields["input_charset"], "GBK");
}

#[test]
fn wrong_keys_are_rejected_by_the_gateway() {
    let sandbox = sandbox();
    let with = |edit: &dyn Fn(&mut Config)| {
        let mut config = sandbox.client_config();
        edit(&mut config);
        Client::new(config)
            .expect("client builds")
            .build_pay_params(&order("W1", "1"))
            .expect_err("rejected")
    };
    assert_eq!(
        with(&|c| c.partner_key = Some("0".repeat(32).into())).errcode(),
        Some(49004)
    );
    assert_eq!(
        with(&|c| c.app_key = Some("wrong".into())).errcode(),
        Some(49004)
    );
    assert_eq!(
        with(&|c| c.partner_id = Some("1900000110".into())).errcode(),
        Some(49010)
    );
    assert_eq!(
        with(&|c| c.app_secret = Some("wrong".into())).errcode(),
        Some(40001)
    );
    assert_eq!(
        with(&|c| c.appid = "wx0000000000000000".into()).errcode(),
        Some(40013)
    );
    assert!(sandbox.orders().is_empty());
}

/// Sends a hand-made genprepay body with a valid token.
fn raw_genprepay(sandbox: &Sandbox, body: &serde_json::Value) -> serde_json::Value {
    let transport = HttpTransport::new(Duration::from_secs(5)).expect("transport");
    let config = sandbox.client_config();
    let token_url = format!(
        "{}/cgi-bin/token?grant_type=client_credential&appid={}&secret={}",
        sandbox.base_url(),
        config.appid,
        config.app_secret.as_ref().expect("legacy config").expose()
    );
    let get = |url: &str, body: Vec<u8>, method| {
        let response = transport
            .send(&HttpRequest {
                method,
                url: url.parse().expect("url"),
                body,
                content_type: Some("application/json"),
                headers: Vec::new(),
            })
            .expect("sent");
        serde_json::from_slice::<serde_json::Value>(&response.body).expect("json")
    };
    let token = get(&token_url, Vec::new(), Method::Get)["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let url = format!("{}/pay/genprepay?access_token={token}", sandbox.base_url());
    get(&url, body.to_string().into_bytes(), Method::Post)
}

#[test]
fn the_gateway_refuses_appkey_and_unix_second_times() {
    let sandbox = sandbox();
    let config = sandbox
        .client_config()
        .legacy_merchant()
        .expect("legacy config");
    let good =
        wxpay::api::legacy::flow::prepay_body(&config, &order("R1", "1"), 1_399_514_976, "nonce")
            .expect("body");
    let mut body = serde_json::to_value(&good).expect("json");

    let ok = raw_genprepay(&sandbox, &body);
    assert_eq!(ok["errcode"], 0, "{ok}");

    body["appkey"] = config.app_key.expose().into();
    let refused = raw_genprepay(&sandbox, &body);
    assert_eq!(refused["errcode"], 47001, "{refused}");

    // The article's defect: time_start as Unix seconds. Re-sign a package
    // with that mistake and the gateway still refuses it.
    let mut fields =
        wxpay::api::legacy::flow::package_fields(&config, &order("R2", "1"), 1_399_514_976);
    fields.insert("time_start".into(), "1399514976".into());
    let package =
        wxpay::api::legacy::package::build_package(&fields, &config.partner_key, Charset::Utf8)
            .expect("package");
    let mut signed: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in [
        ("appid", config.appid.as_str()),
        ("noncestr", "n"),
        ("package", &package.text),
        ("timestamp", "1399514976"),
        ("traceid", "R2"),
    ] {
        signed.insert(k.into(), v.into());
    }
    let app_signature = sign_sha1(&signed, &config.app_key)
        .expect("signs")
        .into_signature();
    let body = serde_json::json!({
        "appid": config.appid, "traceid": "R2", "noncestr": "n", "package": package.text,
        "timestamp": 1_399_514_976u64, "app_signature": app_signature, "sign_method": "sha1"
    });
    let refused = raw_genprepay(&sandbox, &body);
    assert_eq!(refused["errcode"], 47001, "{refused}");
    assert!(
        refused["errmsg"]
            .as_str()
            .unwrap_or_default()
            .contains("time_start"),
        "{refused}"
    );
}

#[test]
fn a_reused_trade_number_with_other_terms_is_refused() {
    let sandbox = sandbox();
    let client = client(&sandbox);
    client.build_pay_params(&order("U1", "1")).expect("first");
    let err = client
        .build_pay_params(&order("U1", "2"))
        .expect_err("conflict");
    assert_eq!(err.errcode(), Some(47001));
    assert_eq!(sandbox.stats().conflicts, 1);
}

#[test]
fn the_same_order_again_gets_the_same_prepay_id() {
    let sandbox = sandbox();
    let client = client(&sandbox);
    let first = client.build_pay_params(&order("I1", "1")).expect("first");
    let again = client.build_pay_params(&order("I1", "1")).expect("again");
    assert_eq!(first.prepayid, again.prepayid);
    assert_eq!(sandbox.stats().orders, 1);
}
