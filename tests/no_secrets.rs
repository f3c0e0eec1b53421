//! No secret leaks: every API generation's flows, failures and notifications
//! run with a logger capturing everything at trace level, and neither the
//! log, nor any error message, nor any `Debug` of a configuration, client or
//! error contains a key, an app secret, a private key or an access_token.

use std::sync::{Arc, Mutex, OnceLock};

use wxpay::http::{HttpRequest, HttpResponse, HttpTransport, Transport};
use wxpay::model::{OrderRef, RefundRequest};
use wxpay::sandbox::{defaults, Endpoint, Sandbox, SandboxConfig};
use wxpay::{Client, Config, Fen, Order};

/// Everything logged, at every level.
struct Capture(Mutex<String>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {} {}\n", record.level(), record.target(), record.args());
        self.0.lock().expect("log lock").push_str(&line);
    }

    fn flush(&self) {}
}

fn capture() -> &'static Capture {
    static LOGGER: OnceLock<&'static Capture> = OnceLock::new();
    LOGGER.get_or_init(|| {
        let logger: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(String::new()))));
        log::set_logger(logger).expect("the only logger");
        log::set_max_level(log::LevelFilter::Trace);
        logger
    })
}

/// A transport that remembers every access_token the gateway hands out.
struct TokenSpy {
    inner: HttpTransport,
    tokens: Mutex<Vec<String>>,
}

impl Transport for TokenSpy {
    fn send(&self, request: &HttpRequest) -> wxpay::Result<HttpResponse> {
        let response = self.inner.send(request)?;
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&response.body) {
            if let Some(token) = value.get("access_token").and_then(|t| t.as_str()) {
                self.tokens.lock().expect("lock").push(token.to_owned());
            }
        }
        Ok(response)
    }
}

fn order(no: &str) -> Order {
    Order::new(no, Fen::new(29).expect("fen"), "支付测试", "196.168.1.1").expect("order")
}

#[test]
fn nothing_secret_reaches_logs_errors_or_debug_output() {
    let log = capture();
    let mut shown = String::new();
    let mut note = |text: String| {
        shown.push_str(&text);
        shown.push('\n');
    };
    let sandbox = Sandbox::start(SandboxConfig::default()).expect("sandbox");
    let spy = Arc::new(TokenSpy {
        inner: HttpTransport::new(std::time::Duration::from_secs(5)).expect("transport"),
        tokens: Mutex::new(Vec::new()),
    });

    // The 2014 flow: success, a refresh after expiry, a quota failure, a bad key.
    let legacy = Client::builder(sandbox.client_config())
        .transport(spy.clone())
        .build()
        .expect("client");
    note(format!("{legacy:?}"));
    legacy.build_pay_params(&order("S1")).expect("flow");
    sandbox.expire_token();
    legacy
        .build_pay_params(&order("S2"))
        .expect("flow after refresh");
    sandbox.errcode_next(Endpoint::Token, 1, 45009, "quota");
    sandbox.expire_token();
    let err = legacy.build_pay_params(&order("S3")).expect_err("quota");
    note(format!("{err} {err:?}"));
    let mut bad = sandbox.client_config();
    bad.partner_key = Some("0123456789abcdef0123456789abcdef".into());
    let err = Client::builder(bad)
        .transport(spy.clone())
        .build()
        .expect("client")
        .build_pay_params(&order("S4"))
        .expect_err("bad key");
    note(format!("{err} {err:?}"));
    let err = legacy
        .verify_payment_notification(b"partner=1&sign=X&total_fee=1", None)
        .expect_err("forged");
    note(format!("{err} {err:?}"));

    // API v2: order, query, refund, a forged notification, a bad config.
    let v2 = Client::new(sandbox.client_config_v2()).expect("client");
    note(format!("{v2:?}"));
    v2.build_pay_params(&order("S5")).expect("v2 order");
    sandbox.pay("S5").expect("pays");
    v2.query_order(&OrderRef::OutTradeNo("S5".into()))
        .expect("query");
    v2.refund(&RefundRequest {
        order: OrderRef::OutTradeNo("S5".into()),
        out_refund_no: "SR5".into(),
        total_fee: 29,
        refund_fee: 1,
        refund_desc: None,
    })
    .expect("refund");
    let err = v2
        .verify_payment_notification(
            b"<xml><return_code>SUCCESS</return_code><sign>X</sign></xml>",
            None,
        )
        .expect_err("forged");
    note(format!("{err} {err:?}"));
    let mut bad = sandbox.client_config_v2();
    bad.api_key = Some("ffffffffffffffffffffffffffffffff".into());
    let err = Client::new(bad)
        .expect("client")
        .build_pay_params(&order("S6"))
        .expect_err("bad key");
    note(format!("{err} {err:?}"));

    // API v3: order, query, a forged notification, a bad key.
    let v3_config = sandbox.client_config_v3();
    note(format!("{v3_config:?}"));
    let v3 = Client::new(v3_config).expect("client");
    v3.build_pay_params(&order("S7")).expect("v3 order");
    v3.query_order(&OrderRef::OutTradeNo("S7".into()))
        .expect("query");
    let headers = vec![
        (
            "Wechatpay-Serial".to_owned(),
            defaults::WECHATPAY_PUBLIC_KEY_ID.to_owned(),
        ),
        ("Wechatpay-Signature".to_owned(), "AAAA".to_owned()),
        ("Wechatpay-Timestamp".to_owned(), "1".to_owned()),
        ("Wechatpay-Nonce".to_owned(), "n".to_owned()),
    ];
    let err = v3
        .verify_signed_notification(&headers, b"{}", None)
        .expect_err("forged");
    note(format!("{err} {err:?}"));
    let mut bad = sandbox.client_config_v3();
    bad.merchant_private_key =
        Some("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n".into());
    let err = Client::new(bad).expect_err("bad key");
    note(format!("{err} {err:?}"));
    let err = Config::from_json(
        &sandbox
            .client_config_json()
            .replace("\"appid\"", "\"app_id\""),
    )
    .expect_err("typo");
    note(format!("{err} {err:?}"));

    let tokens = spy.tokens.lock().expect("lock").clone();
    assert!(
        tokens.len() >= 2,
        "the spy saw the tokens: {}",
        tokens.len()
    );
    let private_key_line = defaults::MERCHANT_PRIVATE_KEY
        .lines()
        .nth(1)
        .expect("a PEM body line")
        .to_owned();
    let secrets: Vec<(&str, String)> = [
        ("app_secret", defaults::APP_SECRET.to_owned()),
        ("app_key", defaults::APP_KEY.to_owned()),
        ("partner_key", defaults::PARTNER_KEY.to_owned()),
        ("api_key", defaults::API_KEY.to_owned()),
        ("api_v3_key", defaults::API_V3_KEY.to_owned()),
        ("merchant private key", private_key_line),
        (
            "wrong partner key",
            "0123456789abcdef0123456789abcdef".to_owned(),
        ),
        (
            "wrong api key",
            "ffffffffffffffffffffffffffffffff".to_owned(),
        ),
    ]
    .into_iter()
    .chain(tokens.into_iter().map(|t| ("access_token", t)))
    .collect();
    let logged = log.0.lock().expect("log lock").clone();
    assert!(
        !logged.is_empty(),
        "the library logged nothing at trace level"
    );
    for (what, secret) in &secrets {
        assert!(
            !logged.contains(secret.as_str()),
            "the {what} appears in the log"
        );
        assert!(
            !shown.contains(secret.as_str()),
            "the {what} appears in an error or Debug output"
        );
    }
}
