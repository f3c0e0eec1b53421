//! API v2 against the sandbox on loopback, the whole life cycle on one
//! machine: order, app parameters, the user pays, the sandbox notifies the
//! merchant's endpoint (which verifies with libwxpay), query, refund, refund
//! notification, refund query, close.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use wxpay::crypto::sign::{sign_v2, Fields, SignType};
use wxpay::model::{OrderRef, RefundRequest, TradeState};
use wxpay::sandbox::{Sandbox, SandboxConfig};
use wxpay::{Client, Config, Error, ErrorKind, Fen, Order};

/// The merchant's notification endpoint: verifies every notification with
/// its own libwxpay client and answers as a merchant must.
struct Merchant {
    client: Mutex<Option<Arc<Client>>>,
    payments: Mutex<Vec<wxpay::model::PaymentNotification>>,
    refunds: Mutex<Vec<wxpay::model::RefundNotification>>,
    /// Answer this many notifications with a failure first.
    fail_first: AtomicU32,
    expected_fee: Mutex<Option<Fen>>,
    /// Why notifications were refused (the payment verifier's reason).
    rejections: Mutex<Vec<String>>,
    /// Refund notifications that reached the payment handler.
    misrouted_refunds: AtomicU32,
}

async fn receive(State(m): State<Arc<Merchant>>, body: Bytes) -> String {
    let client = m.client.lock().expect("lock").clone().expect("client set");
    if m.fail_first.load(Ordering::SeqCst) > 0 {
        m.fail_first.fetch_sub(1, Ordering::SeqCst);
        return client.notification_failure_reply("busy, try again");
    }
    let expected = *m.expected_fee.lock().expect("lock");
    let payment = match client.verify_payment_notification(&body, expected) {
        Ok(n) => {
            m.payments.lock().expect("lock").push(n);
            return client.notification_success_reply();
        }
        Err(e) => e,
    };
    match client.verify_refund_notification(&body, None) {
        Ok(n) => {
            m.misrouted_refunds.fetch_add(1, Ordering::SeqCst);
            m.refunds.lock().expect("lock").push(n);
            client.notification_success_reply()
        }
        Err(_) => {
            m.rejections.lock().expect("lock").push(payment.to_string());
            client.notification_failure_reply(&payment.to_string())
        }
    }
}

/// The merchant's refund notification endpoint (`refund_notify_url`).
async fn receive_refund(State(m): State<Arc<Merchant>>, body: Bytes) -> String {
    let client = m.client.lock().expect("lock").clone().expect("client set");
    match client.verify_refund_notification(&body, None) {
        Ok(n) => {
            m.refunds.lock().expect("lock").push(n);
            client.notification_success_reply()
        }
        Err(e) => client.notification_failure_reply(&e.to_string()),
    }
}

/// Starts the merchant endpoint; returns it and its URL.
fn merchant_endpoint() -> (Arc<Merchant>, String) {
    let merchant = Arc::new(Merchant {
        client: Mutex::new(None),
        payments: Mutex::new(Vec::new()),
        refunds: Mutex::new(Vec::new()),
        fail_first: AtomicU32::new(0),
        expected_fee: Mutex::new(None),
        rejections: Mutex::new(Vec::new()),
        misrouted_refunds: AtomicU32::new(0),
    });
    let app = Router::new()
        .route("/notify", post(receive))
        .route("/refund", post(receive_refund))
        .with_state(Arc::clone(&merchant));
    let url = common::serve_notify_endpoint(app);
    (merchant, url)
}

fn setup(sign_type: SignType, simulation: bool) -> (Sandbox, Arc<Client>, Arc<Merchant>) {
    let sandbox = Sandbox::start(SandboxConfig {
        sign_type,
        notify_retry_ms: 50,
        ..SandboxConfig::default()
    })
    .expect("sandbox");
    let (merchant, url) = merchant_endpoint();
    let mut config: Config = sandbox.client_config_v2();
    config.refund_notify_url = Some(url.replace("/notify", "/refund"));
    config.notify_url = url;
    config.sandbox = simulation;
    let client = Arc::new(Client::new(config).expect("client"));
    *merchant.client.lock().expect("lock") = Some(Arc::clone(&client));
    (sandbox, client, merchant)
}

fn order(no: &str, fen: i64) -> Order {
    common::order(no, fen, "支付测试 & <test>")
}

#[test]
fn the_whole_life_cycle_runs_on_one_machine() {
    for sign_type in [SignType::Md5, SignType::HmacSha256] {
        let (sandbox, client, merchant) = setup(sign_type, false);
        let params = client
            .build_pay_params(&order("V2A1", 1999))
            .expect("unifiedorder");
        assert_eq!(params.partnerid, "10000100");
        assert_eq!(params.package, "Sign=WXPay");
        assert!(params.prepayid.starts_with("wx"));
        // The app's signature, recomputed with the merchant's algorithm.
        let f: Fields = [
            ("appid", params.appid.as_str()),
            ("noncestr", &params.noncestr),
            ("package", "Sign=WXPay"),
            ("partnerid", "10000100"),
            ("prepayid", &params.prepayid),
            ("timestamp", &params.timestamp),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let key = client.config().api_key.clone().expect("api key");
        assert_eq!(params.sign, sign_v2(&f, &key, sign_type).signature());

        let unpaid = client
            .query_order(&OrderRef::OutTradeNo("V2A1".into()))
            .expect("query");
        assert_eq!(unpaid.trade_state, TradeState::Notpay);

        *merchant.expected_fee.lock().expect("lock") = Fen::new(1999).ok();
        sandbox.pay("V2A1").expect("the user pays");
        common::wait_until("the payment notification", || {
            !merchant.payments.lock().expect("lock").is_empty()
        });
        let paid = merchant.payments.lock().expect("lock")[0].clone();
        assert!(paid.paid);
        assert_eq!(paid.total_fee, 1999);
        assert_eq!(paid.out_trade_no, "V2A1");

        let status = client
            .query_order(&OrderRef::TransactionId(paid.transaction_id.clone()))
            .expect("query");
        assert_eq!(status.trade_state, TradeState::Success);
        assert_eq!(status.total_fee, Some(1999));

        let refund = RefundRequest {
            order: OrderRef::OutTradeNo("V2A1".into()),
            out_refund_no: "R1".into(),
            total_fee: 1999,
            refund_fee: 999,
            refund_desc: Some("退一半".into()),
        };
        let receipt = client.refund(&refund).expect("refund");
        assert_eq!(receipt.refund_fee, 999);
        // A retried refund is not paid twice.
        assert_eq!(
            client.refund(&refund).expect("retry").refund_id,
            receipt.refund_id
        );
        common::wait_until("the refund notification", || {
            !merchant.refunds.lock().expect("lock").is_empty()
        });
        let notified = merchant.refunds.lock().expect("lock")[0].clone();
        assert_eq!(notified.refund_id, receipt.refund_id);
        assert_eq!(
            merchant.misrouted_refunds.load(Ordering::SeqCst),
            0,
            "a refund notification reached the payment handler"
        );
        assert_eq!(notified.refund_fee, 999);

        let too_much = client
            .refund(&RefundRequest {
                out_refund_no: "R2".into(),
                refund_fee: 1001,
                ..refund.clone()
            })
            .expect_err("more than what is left");
        assert_eq!(too_much.code(), Some("NOTENOUGH"));

        let refunds = client
            .query_refunds(&OrderRef::OutTradeNo("V2A1".into()))
            .expect("refund query");
        assert_eq!(refunds.len(), 1);
        assert_eq!(refunds[0].out_refund_no, "R1");
        assert_eq!(
            client
                .query_order(&OrderRef::OutTradeNo("V2A1".into()))
                .expect("query")
                .trade_state,
            TradeState::Refund
        );
        let closing_paid = client
            .close_order("V2A1")
            .expect_err("paid orders do not close");
        assert_eq!(closing_paid.code(), Some("ORDERPAID"));

        let stats = sandbox.stats();
        assert_eq!(stats.notifications_acknowledged, 2, "{stats:?}");
    }
}

#[test]
fn notifications_are_repeated_until_acknowledged() {
    let (sandbox, client, merchant) = setup(SignType::Md5, false);
    merchant.fail_first.store(2, Ordering::SeqCst);
    client.build_pay_params(&order("V2N1", 1)).expect("order");
    sandbox.pay("V2N1").expect("pays");
    common::wait_until("acknowledgement", || {
        sandbox
            .notifications()
            .first()
            .is_some_and(|n| n.acknowledged)
    });
    let record = &sandbox.notifications()[0];
    assert_eq!(record.attempts, 3, "{record:?}");
    assert_eq!(merchant.payments.lock().expect("lock").len(), 1);
}

#[test]
fn a_notification_with_the_wrong_amount_is_refused_and_repeated() {
    let (sandbox, client, merchant) = setup(SignType::HmacSha256, false);
    client.build_pay_params(&order("V2W1", 100)).expect("order");
    // The merchant believes the order was for 1.01 yuan.
    *merchant.expected_fee.lock().expect("lock") = Fen::new(101).ok();
    sandbox.pay("V2W1").expect("pays");
    common::wait_until("every attempt", || {
        sandbox
            .notifications()
            .first()
            .is_some_and(|n| n.attempts >= 3)
    });
    assert!(merchant.payments.lock().expect("lock").is_empty());
    assert!(!sandbox.notifications()[0].acknowledged);
    let rejections = merchant.rejections.lock().expect("lock");
    assert!(rejections.len() >= 3, "{rejections:?}");
    for reason in rejections.iter() {
        assert!(
            reason.contains("total_fee 100 is not the expected 101"),
            "refused for another reason: {reason}"
        );
    }
}

#[test]
fn unpaid_orders_close_and_stay_closed() {
    let (_sandbox, client, _merchant) = setup(SignType::Md5, false);
    client.build_pay_params(&order("V2C1", 5)).expect("order");
    client.close_order("V2C1").expect("closes");
    let status = client
        .query_order(&OrderRef::OutTradeNo("V2C1".into()))
        .expect("query");
    assert_eq!(status.trade_state, TradeState::Closed);
    let again = client
        .build_pay_params(&order("V2C1", 5))
        .expect_err("closed");
    assert_eq!(again.code(), Some("ORDERCLOSED"));
    let missing = client
        .query_order(&OrderRef::OutTradeNo("NOPE".into()))
        .expect_err("unknown");
    assert_eq!(missing.code(), Some("ORDERNOTEXIST"));
    assert_eq!(missing.kind(), ErrorKind::Rejected);
}

#[test]
fn malformed_references_fail_before_any_network_call() {
    let (sandbox, client, _merchant) = setup(SignType::Md5, false);
    let bad = ["", "V2 C1", "../refund", "单号", &"9".repeat(33)];
    for id in bad {
        let errors = [
            client.query_order(&OrderRef::OutTradeNo(id.into())),
            client.query_order(&OrderRef::TransactionId(id.into())),
        ]
        .into_iter()
        .map(|r| r.map(drop))
        .chain([
            client.close_order(id),
            client
                .query_refunds(&OrderRef::OutTradeNo(id.into()))
                .map(drop),
            client
                .refund(&RefundRequest {
                    order: OrderRef::TransactionId(id.into()),
                    out_refund_no: "R1".into(),
                    total_fee: 5,
                    refund_fee: 5,
                    refund_desc: None,
                })
                .map(drop),
        ]);
        for result in errors {
            let err = result.expect_err(id);
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{id:?}: {err}");
        }
    }
    assert_eq!(sandbox.stats().connections, 0, "{:?}", sandbox.stats());
}

#[test]
fn a_wrong_api_key_is_refused() {
    let (sandbox, _client, _merchant) = setup(SignType::Md5, false);
    let mut config = sandbox.client_config_v2();
    config.api_key = Some("0".repeat(32).into());
    let err = Client::new(config)
        .expect("client")
        .build_pay_params(&order("V2K1", 1))
        .expect_err("bad key");
    assert_eq!(
        err,
        Error::Rejected {
            code: "FAIL".into(),
            message: "签名错误".into(),
            http_status: None,
        }
    );
}

#[test]
fn the_simulation_environment_signs_with_its_own_key() {
    let (sandbox, client, merchant) = setup(SignType::Md5, true);
    let params = client
        .build_pay_params(&order("V2S1", 101))
        .expect("simulated unifiedorder");
    assert!(!params.prepayid.is_empty());
    sandbox.pay("V2S1").expect("pays");
    common::wait_until("the notification", || {
        !merchant.payments.lock().expect("lock").is_empty()
    });
    let status = client
        .query_order(&OrderRef::OutTradeNo("V2S1".into()))
        .expect("query");
    assert_eq!(status.trade_state, TradeState::Success);
}

#[test]
fn legacy_clients_refuse_v2_operations() {
    let sandbox = Sandbox::start(SandboxConfig::default()).expect("sandbox");
    let client = Client::new(sandbox.client_config()).expect("client");
    let err = client
        .query_order(&OrderRef::OutTradeNo("A".into()))
        .expect_err("not v2");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}
