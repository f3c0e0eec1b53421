//! API v3 against the sandbox on loopback: RSA-signed requests the sandbox
//! verifies, answers the client verifies (public-key mode and certificate
//! mode with rotation), the order life cycle, and encrypted, signed
//! notifications verified by a merchant endpoint.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use wxpay::crypto::rsa::VerifyingKey;
use wxpay::http::{HttpRequest, HttpResponse, HttpTransport, Transport};
use wxpay::model::{OrderRef, RefundRequest, TradeState};
use wxpay::sandbox::{defaults, Sandbox, SandboxConfig};
use wxpay::util::clock::{Clock, SystemClock};
use wxpay::{Client, Error, Fen, Order};

struct Merchant {
    client: Mutex<Option<Arc<Client>>>,
    payments: Mutex<Vec<wxpay::model::PaymentNotification>>,
    rejections: Mutex<Vec<String>>,
}

async fn receive(
    State(m): State<Arc<Merchant>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let client = m.client.lock().expect("lock").clone().expect("client set");
    let pairs: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    match client.verify_signed_notification(&pairs, &body, Fen::new(2999).ok()) {
        Ok(n) => {
            m.payments.lock().expect("lock").push(n);
            (StatusCode::NO_CONTENT, client.notification_success_reply())
        }
        Err(e) => {
            m.rejections.lock().expect("lock").push(e.to_string());
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                client.notification_failure_reply(&e.to_string()),
            )
        }
    }
}

fn merchant_endpoint() -> (Arc<Merchant>, String) {
    let merchant = Arc::new(Merchant {
        client: Mutex::new(None),
        payments: Mutex::new(Vec::new()),
        rejections: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/notify", post(receive))
        .with_state(Arc::clone(&merchant));
    let url = common::serve_notify_endpoint(app);
    (merchant, url)
}

fn order(no: &str, fen: i64) -> Order {
    common::order(no, fen, "支付测试")
}

fn sandbox(certificate_mode: bool) -> Sandbox {
    Sandbox::start(SandboxConfig {
        v3_certificate_mode: certificate_mode,
        notify_retry_ms: 50,
        ..SandboxConfig::default()
    })
    .expect("sandbox")
}

#[test]
fn the_v3_life_cycle_in_public_key_mode() {
    let sandbox = sandbox(false);
    let (merchant, url) = merchant_endpoint();
    let mut config = sandbox.client_config_v3();
    config.notify_url = url;
    let client = Arc::new(Client::new(config).expect("client"));
    *merchant.client.lock().expect("lock") = Some(Arc::clone(&client));

    let params = client
        .build_pay_params(&order("V3A1", 2999))
        .expect("app order");
    assert_eq!(params.partnerid, defaults::MCHID);
    let message = format!(
        "{}\n{}\n{}\n{}\n",
        params.appid, params.timestamp, params.noncestr, params.prepayid
    );
    VerifyingKey::from_public_key_pem(defaults::MERCHANT_PUBLIC_KEY)
        .expect("key")
        .verify(message.as_bytes(), &params.sign)
        .expect("the app parameters are RSA-signed by the merchant key");

    let unpaid = client
        .query_order(&OrderRef::OutTradeNo("V3A1".into()))
        .expect("query");
    assert_eq!(unpaid.trade_state, TradeState::Notpay);

    sandbox.pay("V3A1").expect("the user pays");
    common::wait_until("the notification", || {
        !merchant.payments.lock().expect("lock").is_empty()
    });
    let paid = merchant.payments.lock().expect("lock")[0].clone();
    assert!(paid.paid);
    assert_eq!(paid.total_fee, 2999);
    common::wait_until("the acknowledgement", || {
        sandbox.notifications()[0].acknowledged
    });

    let status = client
        .query_order(&OrderRef::TransactionId(paid.transaction_id.clone()))
        .expect("query by id");
    assert_eq!(status.trade_state, TradeState::Success);
    assert_eq!(status.total_fee, Some(2999));

    let refund = RefundRequest {
        order: OrderRef::OutTradeNo("V3A1".into()),
        out_refund_no: "V3R1".into(),
        total_fee: 2999,
        refund_fee: 1000,
        refund_desc: Some("退一部分".into()),
    };
    let receipt = client.refund(&refund).expect("refund");
    assert_eq!(receipt.refund_fee, 1000);
    let too_much = client
        .refund(&RefundRequest {
            out_refund_no: "V3R2".into(),
            refund_fee: 2000,
            ..refund
        })
        .expect_err("more than what is left");
    assert_eq!(too_much.code(), Some("NOT_ENOUGH"));
    assert_eq!(too_much.http_status(), Some(403));

    let paid_close = client
        .close_order("V3A1")
        .expect_err("paid orders do not close");
    assert_eq!(paid_close.code(), Some("ORDER_PAID"));
    client
        .build_pay_params(&order("V3C1", 1))
        .expect("another order");
    client.close_order("V3C1").expect("closes (204)");
    assert_eq!(
        client
            .query_order(&OrderRef::OutTradeNo("V3C1".into()))
            .expect("query")
            .trade_state,
        TradeState::Closed
    );
    assert_eq!(
        sandbox.stats().certificate_downloads,
        0,
        "public-key mode downloads nothing"
    );
}

/// The system time, moved on by hand.
#[derive(Default)]
struct LaterClock(AtomicU64);

impl Clock for LaterClock {
    fn now_unix(&self) -> u64 {
        SystemClock.now_unix() + self.0.load(Ordering::SeqCst)
    }
}

#[test]
fn certificate_mode_downloads_once_and_again_for_an_unknown_serial() {
    let sandbox = sandbox(true);
    let clock = Arc::new(LaterClock::default());
    let client = Client::builder(sandbox.client_config_v3())
        .clock(Arc::clone(&clock) as Arc<dyn Clock>)
        .build()
        .expect("client");
    client
        .build_pay_params(&order("V3B1", 1))
        .expect("first order");
    client
        .build_pay_params(&order("V3B2", 1))
        .expect("second order");
    assert_eq!(sandbox.stats().certificate_downloads, 1);

    sandbox.rotate_platform_certificate();
    // Within a minute of the last download, an unknown serial is refused
    // without another download.
    let err = client
        .build_pay_params(&order("V3B3", 1))
        .expect_err("an unknown serial right after a download");
    assert!(err.to_string().contains("unknown key serial"), "{err}");
    assert_eq!(sandbox.stats().certificate_downloads, 1);

    clock.0.store(61, Ordering::SeqCst);
    client
        .build_pay_params(&order("V3B4", 1))
        .expect("signed with the new certificate");
    assert_eq!(
        sandbox.stats().certificate_downloads,
        2,
        "exactly one more download"
    );
    client
        .build_pay_params(&order("V3B5", 1))
        .expect("and again");
    assert_eq!(sandbox.stats().certificate_downloads, 2);
}

/// A transport that hands the client the answer with its JSON re-serialised.
struct Reserialising(HttpTransport);

impl Transport for Reserialising {
    fn send(&self, request: &HttpRequest) -> wxpay::Result<HttpResponse> {
        let mut response = self.0.send(request)?;
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&response.body) {
            response.body = serde_json::to_vec_pretty(&value).expect("json");
        }
        Ok(response)
    }
}

#[test]
fn a_re_serialised_answer_is_refused() {
    let sandbox = sandbox(false);
    let client = Client::builder(sandbox.client_config_v3())
        .transport(Arc::new(Reserialising(
            HttpTransport::new(Duration::from_secs(5)).expect("transport"),
        )))
        .build()
        .expect("client");
    let err = client
        .build_pay_params(&order("V3S1", 1))
        .expect_err("signature over other bytes");
    assert!(
        matches!(&err, Error::MalformedResponse(m) if m.contains("signature")),
        "{err:?}"
    );
}

/// A clock `offset` seconds ahead of the system's.
struct Ahead(u64);

impl Clock for Ahead {
    fn now_unix(&self) -> u64 {
        SystemClock.now_unix() + self.0
    }
}

#[test]
fn clocks_five_minutes_apart_are_refused() {
    let sandbox = sandbox(false);
    let at = |offset| {
        Client::builder(sandbox.client_config_v3())
            .clock(Arc::new(Ahead(offset)))
            .build()
            .expect("client")
    };
    at(200)
        .build_pay_params(&order("V3T1", 1))
        .expect("200 s of skew is tolerated");
    let err = at(400)
        .build_pay_params(&order("V3T2", 1))
        .expect_err("400 s is not");
    // The gateway refuses the request's timestamp, or the client the
    // answer's: a signature error either way, never any other failure.
    let signature_refused = match &err {
        Error::Rejected { code, .. } => code == "SIGN_ERROR",
        Error::MalformedResponse(m) => m.contains("five minutes"),
        _ => false,
    };
    assert!(signature_refused, "{err:?}");
}

#[test]
fn keys_are_checked_when_the_client_is_built() {
    let sandbox = sandbox(false);
    let mut config = sandbox.client_config_v3();
    config.merchant_private_key =
        Some("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into());
    let err = Client::new(config).expect_err("bad key");
    assert!(
        matches!(&err, Error::InvalidConfig { field, .. } if field == "merchant_private_key"),
        "{err}"
    );
    let mut config = sandbox.client_config_v3();
    config.api_v3_key = Some("short".into());
    let err = Client::new(config).expect_err("bad v3 key");
    assert!(
        matches!(&err, Error::InvalidConfig { field, .. } if field == "api_v3_key"),
        "{err}"
    );
    let mut config = sandbox.client_config_v3();
    config.merchant_private_key = Some(defaults::MERCHANT_PUBLIC_KEY.into());
    assert!(Client::new(config).is_err());
}

#[test]
fn a_wrong_merchant_key_is_refused_by_the_gateway() {
    let sandbox = sandbox(false);
    let mut config = sandbox.client_config_v3();
    config.merchant_private_key = Some(include_str!("../src/sandbox/keys/platform_key.pem").into());
    let err = Client::new(config)
        .expect("client")
        .build_pay_params(&order("V3K1", 1))
        .expect_err("bad signature");
    assert_eq!(err.code(), Some("SIGN_ERROR"));
}

/// Headers of a notification signed, it claims, with a certificate of
/// serial `serial`: what anyone who knows the time can send.
fn forged_headers(serial: &str, now: u64) -> Vec<(String, String)> {
    [
        ("Wechatpay-Serial", serial.to_owned()),
        ("Wechatpay-Signature", "Zm9yZ2Vk".to_owned()),
        ("Wechatpay-Timestamp", now.to_string()),
        ("Wechatpay-Nonce", "forged".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[test]
fn forty_forged_notifications_cause_at_most_one_certificate_download() {
    let sandbox = sandbox(true);
    let client = Client::new(sandbox.client_config_v3()).expect("client");
    std::thread::scope(|s| {
        for i in 0..40 {
            let client = &client;
            s.spawn(move || {
                let headers = forged_headers(&format!("{i:040X}"), SystemClock.now_unix());
                let err = client
                    .verify_signed_notification(&headers, b"{}", None)
                    .expect_err("forged");
                assert!(matches!(err, Error::InvalidNotification(_)), "{err:?}");
            });
        }
    });
    assert_eq!(sandbox.stats().certificate_downloads, 1);
}

/// A transport whose first `GET /v3/certificates` after `arm` waits until the
/// test lets it go; every other request passes at once.
struct GatedCertificates {
    inner: HttpTransport,
    armed: std::sync::atomic::AtomicBool,
    entered: Mutex<std::sync::mpsc::Sender<()>>,
    release: Mutex<std::sync::mpsc::Receiver<()>>,
}

impl Transport for GatedCertificates {
    fn send(&self, request: &HttpRequest) -> wxpay::Result<HttpResponse> {
        if request.url.path() == "/v3/certificates" && self.armed.swap(false, Ordering::SeqCst) {
            self.entered
                .lock()
                .expect("lock")
                .send(())
                .expect("test waits");
            let released = self
                .release
                .lock()
                .expect("lock")
                .recv_timeout(Duration::from_secs(20));
            released.expect("released by the test");
        }
        self.inner.send(request)
    }
}

#[test]
fn a_call_never_waits_behind_a_download_a_notification_caused() {
    let sandbox = sandbox(true);
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel();
    let transport = Arc::new(GatedCertificates {
        inner: HttpTransport::new(Duration::from_secs(5)).expect("transport"),
        armed: Default::default(),
        entered: Mutex::new(entered_tx),
        release: Mutex::new(release_rx),
    });
    let clock = Arc::new(LaterClock::default());
    let mut config = sandbox.client_config_v3();
    config.platform_cert_refresh_secs = Some(60);
    let client = Client::builder(config)
        .transport(Arc::clone(&transport) as Arc<dyn Transport>)
        .clock(Arc::clone(&clock) as Arc<dyn Clock>)
        .build()
        .expect("client");
    client.build_pay_params(&order("V3G1", 1)).expect("order");
    // A minute later the certificates are due, and a forged notification's
    // download hangs at the gate.
    clock.0.store(61, Ordering::SeqCst);
    transport.armed.store(true, Ordering::SeqCst);
    std::thread::scope(|s| {
        let forged = s.spawn(|| {
            let headers = forged_headers("0123456789ABCDEF", clock.now_unix());
            client.verify_signed_notification(&headers, b"{}", None)
        });
        entered
            .recv_timeout(Duration::from_secs(10))
            .expect("the notification's download started");
        // The call downloads the due certificates and orders meanwhile.
        client
            .build_pay_params(&order("V3G2", 1))
            .expect("an order while the notification's download hangs");
        release.send(()).expect("release");
        assert!(forged.join().expect("thread").is_err());
    });
    assert_eq!(sandbox.stats().certificate_downloads, 3);
}
