//! API v3 (RSA-signed JSON, PROTOCOL.md 5) as data: requests with the
//! `WECHATPAY2-SHA256-RSA2048` Authorization over the exact bytes sent, the
//! verification of every signed answer and notification (serial, signature
//! over the raw body, timestamp within five minutes), typed answers, the
//! platform certificates, and the app's parameters. No I/O happens here.

pub mod auth;
pub mod certificates;
pub mod merchant;
pub mod notify;

use serde_json::{json, Map, Value};

use crate::api::v3::merchant::V3Merchant;
use crate::error::{Error, Result};
use crate::http::HttpResponse;
use crate::model::Order;
use crate::model::PayParams;
use crate::model::{OrderRef, OrderStatus, RefundReceipt, RefundRequest, TradeState};
use crate::util::clock::beijing_rfc3339;

/// Create an APP order.
pub const APP_ORDER_PATH: &str = "/v3/pay/transactions/app";
/// Refund.
pub const REFUND_PATH: &str = "/v3/refund/domestic/refunds";
/// Download the platform certificates.
pub const CERTIFICATES_PATH: &str = "/v3/certificates";

/// A non-2xx answer as an error: WeChat's `code` and `message` with the
/// HTTP status, or the bare status when the body says nothing.
pub fn error_of(response: &HttpResponse) -> Error {
    let parsed: Option<Map<String, Value>> = serde_json::from_slice(&response.body).ok();
    let field = |k: &str| {
        parsed
            .as_ref()
            .and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .map(|s| s.chars().take(256).collect::<String>())
    };
    match field("code") {
        Some(code) => Error::Rejected {
            code,
            message: field("message").unwrap_or_default(),
            http_status: Some(response.status),
        },
        None => Error::HttpStatus {
            status: response.status,
        },
    }
}

/// The body of an APP order.
pub fn app_order_body(merchant: &V3Merchant, order: &Order, now: u64) -> Value {
    let expire = now + u64::from(order.expire_minutes()) * 60;
    let mut body = json!({
        "appid": merchant.appid,
        "mchid": merchant.mchid,
        "description": order.body(),
        "out_trade_no": order.out_trade_no(),
        "time_expire": beijing_rfc3339(expire),
        "notify_url": merchant.notify_url,
        "amount": { "total": order.total_fee().get(), "currency": "CNY" },
        "scene_info": { "payer_client_ip": order.client_ip().to_string() },
    });
    if let Some(attach) = order.attach() {
        body["attach"] = attach.into();
    }
    body
}

/// The path of an order query.
pub fn query_path(merchant: &V3Merchant, order: &OrderRef) -> String {
    let (kind, id) = match order {
        OrderRef::OutTradeNo(no) => ("out-trade-no", no),
        OrderRef::TransactionId(id) => ("id", id),
    };
    format!(
        "/v3/pay/transactions/{kind}/{}?mchid={}",
        percent_path(id),
        percent_path(&merchant.mchid)
    )
}

/// The path of a close.
pub fn close_path(out_trade_no: &str) -> String {
    format!(
        "/v3/pay/transactions/out-trade-no/{}/close",
        percent_path(out_trade_no)
    )
}

fn percent_path(segment: &str) -> String {
    crate::api::legacy::package::percent_encode(segment.as_bytes())
}

/// The body of a refund.
pub fn refund_body(merchant: &V3Merchant, refund: &RefundRequest) -> Result<Value> {
    refund.validate()?;
    let mut body = json!({
        "out_refund_no": refund.out_refund_no,
        "amount": { "refund": refund.refund_fee, "total": refund.total_fee, "currency": "CNY" },
    });
    // Refund results go to the refund URL, or to the one set on the merchant
    // platform: never to the payment handler.
    if let Some(url) = &merchant.refund_notify_url {
        body["notify_url"] = url.as_str().into();
    }
    match &refund.order {
        OrderRef::OutTradeNo(no) => body["out_trade_no"] = no.as_str().into(),
        OrderRef::TransactionId(id) => body["transaction_id"] = id.as_str().into(),
    }
    if let Some(reason) = refund.refund_desc.as_ref().filter(|r| !r.is_empty()) {
        body["reason"] = reason.as_str().into();
    }
    Ok(body)
}

/// A verified 2xx body as a JSON object.
pub fn json_body(response: &HttpResponse) -> Result<Map<String, Value>> {
    match serde_json::from_slice(&response.body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Error::MalformedResponse(
            "the answer is not a JSON object".into(),
        )),
    }
}

fn text(map: &Map<String, Value>, key: &str) -> Result<String> {
    map.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| Error::MalformedResponse(format!("the answer has no {key}")))
}

fn fen(value: Option<&Value>, what: &str) -> Result<u32> {
    value
        .and_then(Value::as_u64)
        .filter(|f| *f > 0 && *f <= i32::MAX as u64)
        .and_then(|f| u32::try_from(f).ok())
        .ok_or_else(|| Error::MalformedResponse(format!("{what} is not a positive integer of fen")))
}

/// The `prepay_id` of a verified order answer.
pub fn prepay_id(map: &Map<String, Value>) -> Result<String> {
    let id = text(map, "prepay_id")?;
    if id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(Error::MalformedResponse(
            "prepay_id has unexpected characters".into(),
        ));
    }
    Ok(id)
}

/// The order status of a verified query answer.
pub fn order_status(map: &Map<String, Value>) -> Result<OrderStatus> {
    let optional = |k: &str| {
        map.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Ok(OrderStatus {
        out_trade_no: text(map, "out_trade_no")?,
        transaction_id: optional("transaction_id"),
        trade_state: TradeState::parse(&text(map, "trade_state")?),
        trade_state_desc: optional("trade_state_desc"),
        total_fee: match map.get("amount").and_then(|a| a.get("total")) {
            Some(total) => Some(fen(Some(total), "amount.total")?),
            None => None,
        },
        time_end: optional("success_time"),
    })
}

/// The receipt of a verified refund answer.
pub fn refund_receipt(map: &Map<String, Value>) -> Result<RefundReceipt> {
    Ok(RefundReceipt {
        out_refund_no: text(map, "out_refund_no")?,
        refund_id: text(map, "refund_id")?,
        refund_fee: fen(
            map.get("amount").and_then(|a| a.get("refund")),
            "amount.refund",
        )?,
    })
}

/// The app's parameters for `prepay_id`: RSA over
/// `APPID\nTIMESTAMP\nNONCESTR\nPREPAY_ID\n`.
pub fn app_params(
    merchant: &V3Merchant,
    order: &Order,
    prepay_id: &str,
    now: u64,
    nonce: &str,
) -> PayParams {
    let message = format!("{}\n{now}\n{nonce}\n{prepay_id}\n", merchant.appid);
    let mut params = PayParams::unsigned(
        &merchant.appid,
        &merchant.mchid,
        prepay_id,
        order,
        now,
        nonce,
    );
    params.sign = merchant.key.sign(message.as_bytes());
    params
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::v3::auth::{request, verify_signed, SignatureError, SignedHeaders};
    use crate::crypto::rsa::MerchantKey;
    use crate::crypto::rsa::VerifyingKey;
    use crate::http::Method;
    use crate::util::secret::Secret;
    use std::sync::Arc;
    use url::Url;

    const MERCHANT_KEY: &str = include_str!("../../sandbox/keys/merchant_key.pem");
    const MERCHANT_PUBLIC: &str = include_str!("../../sandbox/keys/merchant_public_key.pem");
    const PLATFORM_KEY: &str = include_str!("../../sandbox/keys/platform_key.pem");
    const PLATFORM_PUBLIC: &str = include_str!("../../sandbox/keys/platform_public_key.pem");

    fn merchant() -> V3Merchant {
        V3Merchant {
            appid: "wxd930ea5d5a258f4f".into(),
            mchid: "1900000109".into(),
            serial_no: "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C".into(),
            key: Arc::new(MerchantKey::from_pem(MERCHANT_KEY).expect("key")),
            api_v3_key: Secret::new("0123456789abcdef0123456789abcdef"),
            notify_url: "https://example.com/notify".into(),
            refund_notify_url: None,
            verification: crate::api::v3::merchant::V3Verification::Certificates {
                refresh_secs: 3600,
            },
            unknown_serial_interval_secs: 60,
        }
    }

    /// A response signed by the platform key at `timestamp`.
    fn signed(body: &str, timestamp: u64) -> HttpResponse {
        let message = format!("{timestamp}\nnonce1\n{body}\n");
        let signature = MerchantKey::from_pem(PLATFORM_KEY)
            .expect("key")
            .sign(message.as_bytes());
        HttpResponse {
            status: 200,
            headers: vec![
                ("wechatpay-serial".into(), "PUB_KEY_ID_01".into()),
                ("wechatpay-signature".into(), signature),
                ("wechatpay-timestamp".into(), timestamp.to_string()),
                ("wechatpay-nonce".into(), "nonce1".into()),
            ],
            body: body.as_bytes().to_vec(),
        }
    }

    fn platform(serial: &str) -> Option<VerifyingKey> {
        (serial == "PUB_KEY_ID_01")
            .then(|| VerifyingKey::from_public_key_pem(PLATFORM_PUBLIC).expect("key"))
    }

    fn check(response: &HttpResponse, now: u64) -> std::result::Result<(), SignatureError> {
        let headers = SignedHeaders::from_response(response).ok_or(SignatureError::Unsigned)?;
        verify_signed(&headers, &response.body, now, platform)
    }

    #[test]
    fn answers_verify_over_the_raw_body() {
        let body = r#"{"prepay_id": "wx2014",  "extra":1}"#;
        let response = signed(body, 1_700_000_000);
        check(&response, 1_700_000_000).expect("verifies");
        // Re-serialised (same JSON, other bytes): refused.
        let reserialised =
            serde_json::to_vec(&serde_json::from_str::<Value>(body).expect("json")).expect("json");
        assert_ne!(reserialised, response.body);
        let mut other = response.clone();
        other.body = reserialised;
        assert_eq!(check(&other, 1_700_000_000), Err(SignatureError::Bad));
    }

    #[test]
    fn timestamps_within_five_minutes_only() {
        let response = signed("{}", 1_700_000_000);
        assert!(check(&response, 1_700_000_000 + 299).is_ok());
        assert_eq!(
            check(&response, 1_700_000_000 + 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check(&response, 1_700_000_000 + 301),
            Err(SignatureError::Stale)
        );
        assert!(check(&response, 1_700_000_000 - 299).is_ok());
        assert_eq!(
            check(&response, 1_700_000_000 - 301),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn unsigned_and_unknown_serials_are_refused() {
        let mut response = signed("{}", 1_700_000_000);
        response.headers.retain(|(k, _)| k != "wechatpay-signature");
        assert_eq!(
            check(&response, 1_700_000_000),
            Err(SignatureError::Unsigned)
        );
        let mut response = signed("{}", 1_700_000_000);
        response.headers[0].1 = "OTHER".into();
        assert_eq!(
            check(&response, 1_700_000_000),
            Err(SignatureError::UnknownSerial("OTHER".into()))
        );
    }

    #[test]
    fn requests_sign_the_bytes_they_send() {
        let base = Url::parse("https://api.mch.weixin.qq.com").expect("url");
        let order =
            Order::new("A1", crate::Fen::new(1).expect("fen"), "支付", "1.2.3.4").expect("order");
        let body = app_order_body(&merchant(), &order, 1_554_208_460);
        let req = request(
            &base,
            &merchant(),
            Method::Post,
            APP_ORDER_PATH,
            Some(&body),
            1_554_208_460,
            "593BEC0C930BF1AFEB40B4A08C8FB242",
        )
        .expect("request");
        let auth = &req.headers[0].1;
        assert!(auth.starts_with("WECHATPAY2-SHA256-RSA2048 mchid=\"1900000109\",nonce_str=\"593BEC0C930BF1AFEB40B4A08C8FB242\",signature=\""), "{auth}");
        let signature = auth
            .split("signature=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("signature");
        let mut message =
            b"POST\n/v3/pay/transactions/app\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n"
                .to_vec();
        message.extend_from_slice(&req.body);
        message.push(b'\n');
        VerifyingKey::from_public_key_pem(MERCHANT_PUBLIC)
            .expect("key")
            .verify(&message, signature)
            .expect("signed over the sent bytes");
        let sent: Value = serde_json::from_slice(&req.body).expect("json");
        assert_eq!(sent["amount"]["total"], 1);
        assert_eq!(sent["time_expire"], "2019-04-02T20:54:20+08:00");

        let get = request(
            &base,
            &merchant(),
            Method::Get,
            &query_path(&merchant(), &OrderRef::OutTradeNo("A 1".into())),
            None,
            1,
            "n",
        )
        .expect("request");
        assert_eq!(
            get.url.as_str(),
            "https://api.mch.weixin.qq.com/v3/pay/transactions/out-trade-no/A%201?mchid=1900000109"
        );
        assert!(get.body.is_empty());
    }

    #[test]
    fn errors_carry_code_message_and_status() {
        let err = error_of(&HttpResponse::new(
            400,
            r#"{"code":"PARAM_ERROR","message":"out_trade_no too long"}"#,
        ));
        assert_eq!(err.code(), Some("PARAM_ERROR"));
        assert_eq!(err.http_status(), Some(400));
        assert!(err.to_string().contains("out_trade_no too long"), "{err}");
        assert_eq!(
            error_of(&HttpResponse::new(502, "")),
            Error::HttpStatus { status: 502 }
        );
    }

    #[test]
    fn app_params_are_rsa_signed() {
        let order =
            Order::new("A1", crate::Fen::new(1).expect("fen"), "b", "1.2.3.4").expect("order");
        let p = app_params(&merchant(), &order, "wx2014", 1_554_208_460, "n1");
        assert_eq!(p.partnerid, "1900000109");
        VerifyingKey::from_public_key_pem(MERCHANT_PUBLIC)
            .expect("key")
            .verify(b"wxd930ea5d5a258f4f\n1554208460\nn1\nwx2014\n", &p.sign)
            .expect("verifies");
    }

    #[test]
    fn a_refund_names_the_refund_url_or_none() {
        let refund = RefundRequest {
            order: OrderRef::OutTradeNo("A1".into()),
            out_refund_no: "R1".into(),
            total_fee: 29,
            refund_fee: 10,
            refund_desc: None,
        };
        let body = refund_body(&merchant(), &refund).expect("valid");
        assert!(body.get("notify_url").is_none(), "{body}");
        let with_url = V3Merchant {
            refund_notify_url: Some("https://example.com/refunds".into()),
            ..merchant()
        };
        let body = refund_body(&with_url, &refund).expect("valid");
        assert_eq!(body["notify_url"], "https://example.com/refunds");
    }
}
