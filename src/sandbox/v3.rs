//! The simulated API v3 gateway: the JSON protocol. It verifies every
//! request's `WECHATPAY2-SHA256-RSA2048` Authorization with the merchant's
//! public key, answers with the real codes, signs every answer with its
//! platform key (public-key mode or certificate mode), serves
//! `/v3/certificates` encrypted with the API v3 key, rotates its platform
//! certificate on request, and builds the encrypted, signed notification of
//! a payment. Orders and refunds live in the ledger. Pure: HTTP lives in
//! `server.rs`, delivery in `notifier.rs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{json, Value};

use crate::api::v3::auth::MAX_CLOCK_SKEW_SECS;
use crate::crypto::aead;
use crate::crypto::rsa::{MerchantKey, VerifyingKey};
use crate::crypto::sign::Fields;
use crate::model::{OrderRef, RefundRequest, TradeState};
use crate::util::clock::beijing_rfc3339;
use crate::util::nonce::{NonceSource, RandomNonce};

use super::ledger::{Generation, Ledger, Order, Refusal};
use super::notifier::{Event, Format, Outgoing};
use super::SandboxConfig;

/// The sandbox's platform key, certificate and public key.
pub const PLATFORM_KEY: &str = include_str!("keys/platform_key.pem");
/// The platform certificate (serial `5157F09E...`).
pub const PLATFORM_CERT: &str = include_str!("keys/platform_cert.pem");
/// The platform public key (public-key mode).
pub const PLATFORM_PUBLIC_KEY: &str = include_str!("keys/platform_public_key.pem");
const PLATFORM2_KEY: &str = include_str!("keys/platform2_key.pem");
const PLATFORM2_CERT: &str = include_str!("keys/platform2_cert.pem");

/// An answer: status, JSON body (empty for 204), and the signature headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V3Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body bytes, exactly as signed.
    pub body: String,
    /// The `Wechatpay-*` headers.
    pub headers: Vec<(String, String)>,
}

struct Platform {
    key: MerchantKey,
    cert_pem: &'static str,
    serial: String,
}

fn platform(key: &str, cert: &'static str) -> Arc<Platform> {
    let (serial, _) =
        VerifyingKey::from_certificate_pem(cert).expect("the embedded sandbox certificate parses");
    Arc::new(Platform {
        key: MerchantKey::from_pem(key).expect("the embedded sandbox key parses"),
        cert_pem: cert,
        serial,
    })
}

/// The simulated v3 gateway: the merchant account and the platform keys.
pub struct GatewayV3 {
    config: SandboxConfig,
    merchant_public: Option<VerifyingKey>,
    /// The platform certificates, the current one last.
    platforms: Mutex<Vec<Arc<Platform>>>,
    certificate_downloads: AtomicU64,
}

impl std::fmt::Debug for GatewayV3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayV3")
            .field("mchid", &self.config.mchid)
            .finish_non_exhaustive()
    }
}

fn error(status: u16, code: &str, message: &str) -> (u16, Value) {
    (status, json!({ "code": code, "message": message }))
}

impl GatewayV3 {
    /// A gateway for the merchant in `config`.
    pub fn new(config: SandboxConfig) -> GatewayV3 {
        let merchant_public = VerifyingKey::from_public_key_pem(&config.merchant_public_key).ok();
        GatewayV3 {
            config,
            merchant_public,
            platforms: Mutex::new(vec![platform(PLATFORM_KEY, PLATFORM_CERT)]),
            certificate_downloads: AtomicU64::new(0),
        }
    }

    /// How many times `/v3/certificates` was served.
    pub fn certificate_downloads(&self) -> u64 {
        self.certificate_downloads.load(Ordering::Relaxed)
    }

    /// Signs with a new platform certificate from now on (certificate mode);
    /// the old one stays listed in `/v3/certificates`.
    pub fn rotate(&self) {
        let mut platforms = self.platforms();
        if platforms.len() == 1 {
            platforms.push(platform(PLATFORM2_KEY, PLATFORM2_CERT));
        }
    }

    fn platforms(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Platform>>> {
        self.platforms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn current(&self) -> Arc<Platform> {
        let platforms = self.platforms();
        Arc::clone(platforms.last().expect("there is always a platform key"))
    }

    /// Signs `body` at `now`: the `Wechatpay-*` headers.
    fn sign(&self, body: &str, now: u64) -> Vec<(String, String)> {
        let nonce = RandomNonce.nonce();
        let message = format!("{now}\n{nonce}\n{body}\n");
        let current = self.current();
        let serial = if self.config.v3_certificate_mode {
            current.serial.clone()
        } else {
            self.config.wechatpay_public_key_id.clone()
        };
        vec![
            ("Wechatpay-Serial".into(), serial),
            (
                "Wechatpay-Signature".into(),
                current.key.sign(message.as_bytes()),
            ),
            ("Wechatpay-Timestamp".into(), now.to_string()),
            ("Wechatpay-Nonce".into(), nonce),
            (
                "Wechatpay-Signature-Type".into(),
                "WECHATPAY2-SHA256-RSA2048".into(),
            ),
        ]
    }

    /// Handles one request against `ledger`; `path_and_query` as sent.
    pub fn handle(
        &self,
        ledger: &Ledger,
        method: &str,
        path_and_query: &str,
        authorization: Option<&str>,
        body: &[u8],
        now: u64,
    ) -> V3Answer {
        let (status, value) =
            match self.check_authorization(method, path_and_query, authorization, body, now) {
                Err(e) => e,
                Ok(()) => self.route(ledger, method, path_and_query, body, now),
            };
        let text = if status == 204 {
            String::new()
        } else {
            value.to_string()
        };
        V3Answer {
            status,
            headers: self.sign(&text, now),
            body: text,
        }
    }

    fn check_authorization(
        &self,
        method: &str,
        path_and_query: &str,
        header: Option<&str>,
        body: &[u8],
        now: u64,
    ) -> Result<(), (u16, Value)> {
        let unauthorized = |why: &str| error(401, "SIGN_ERROR", why);
        let header = header.ok_or_else(|| unauthorized("Authorization header missing"))?;
        let params = header
            .strip_prefix("WECHATPAY2-SHA256-RSA2048 ")
            .ok_or_else(|| unauthorized("Authorization must be WECHATPAY2-SHA256-RSA2048"))?;
        let mut fields: HashMap<&str, &str> = HashMap::new();
        for part in params.split(',') {
            let (k, v) = part
                .trim()
                .split_once('=')
                .ok_or_else(|| unauthorized("malformed Authorization"))?;
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .ok_or_else(|| unauthorized("malformed Authorization"))?;
            if fields.insert(k, v).is_some() {
                return Err(unauthorized("duplicated Authorization parameter"));
            }
        }
        let get = |k: &str| {
            fields
                .get(k)
                .copied()
                .ok_or_else(|| unauthorized(&format!("Authorization has no {k}")))
        };
        if get("mchid")? != self.config.mchid {
            return Err(unauthorized("mchid is not this merchant"));
        }
        if get("serial_no")? != self.config.merchant_serial_no {
            return Err(unauthorized("serial_no is not the merchant certificate's"));
        }
        let timestamp: u64 = get("timestamp")?
            .parse()
            .map_err(|_| unauthorized("bad timestamp"))?;
        if timestamp.abs_diff(now) >= MAX_CLOCK_SKEW_SECS {
            return Err(unauthorized("timestamp is five minutes or more away"));
        }
        let nonce = get("nonce_str")?;
        let mut message =
            format!("{method}\n{path_and_query}\n{timestamp}\n{nonce}\n").into_bytes();
        message.extend_from_slice(body);
        message.push(b'\n');
        let key = self
            .merchant_public
            .as_ref()
            .ok_or_else(|| unauthorized("the sandbox has no merchant public key"))?;
        key.verify(&message, get("signature")?)
            .map_err(|_| unauthorized("signature does not verify"))
    }

    fn route(
        &self,
        ledger: &Ledger,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        now: u64,
    ) -> (u16, Value) {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mchid_ok = query
            .split('&')
            .any(|p| p == format!("mchid={}", self.config.mchid));
        let query = |reference| match ledger.find(Generation::V3, &reference) {
            Some(order) => (200, self.transaction(&order)),
            None => error(404, "ORDER_NOT_EXIST", "订单不存在"),
        };
        match (method, segments.as_slice()) {
            ("POST", ["v3", "pay", "transactions", "app"]) => self.create(ledger, body, now),
            ("GET", ["v3", "pay", "transactions", "out-trade-no", no]) if mchid_ok => {
                query(OrderRef::OutTradeNo(decode(no)))
            }
            ("GET", ["v3", "pay", "transactions", "id", id]) if mchid_ok => {
                query(OrderRef::TransactionId(decode(id)))
            }
            ("GET", ["v3", "pay", "transactions", ..]) => {
                error(400, "PARAM_ERROR", "mchid is missing or not this merchant")
            }
            ("POST", ["v3", "pay", "transactions", "out-trade-no", no, "close"]) => {
                close(ledger, &decode(no))
            }
            ("POST", ["v3", "refund", "domestic", "refunds"]) => refund(ledger, body, now),
            ("GET", ["v3", "certificates"]) => self.certificates(),
            _ => error(404, "NOT_FOUND", "no such API"),
        }
    }

    fn create(&self, ledger: &Ledger, body: &[u8], now: u64) -> (u16, Value) {
        let param = |why: &str| error(400, "PARAM_ERROR", why);
        let Ok(request) = serde_json::from_slice::<Value>(body) else {
            return param("body is not JSON");
        };
        let text = |k: &str| request.get(k).and_then(Value::as_str).unwrap_or_default();
        if text("appid") != self.config.appid || text("mchid") != self.config.mchid {
            return param("appid and mchid do not match");
        }
        let no = text("out_trade_no");
        let description = text("description");
        if no.is_empty() || no.len() > 32 || description.is_empty() || description.len() > 127 {
            return param("out_trade_no or description missing or too long");
        }
        let notify_url = text("notify_url");
        if !notify_url.starts_with("https://") && !notify_url.starts_with("http://") {
            return param("notify_url must be an http(s) URL");
        }
        let Some(total) = request
            .get("amount")
            .and_then(|a| a.get("total"))
            .and_then(Value::as_u64)
            .filter(|t| *t > 0 && *t <= i32::MAX as u64)
            .and_then(|t| u32::try_from(t).ok())
        else {
            return param("amount.total must be a positive integer of fen");
        };
        // A retry must repeat the amount and the description.
        let terms: Fields = [
            ("description".to_owned(), description.to_owned()),
            ("total".to_owned(), total.to_string()),
        ]
        .into();
        let mut order = Order::new(Generation::V3, no, total, description, notify_url, terms);
        order.attach = request
            .get("attach")
            .and_then(Value::as_str)
            .map(str::to_owned);
        match ledger.open(order, now) {
            Ok(order) => (200, json!({ "prepay_id": order.prepay_id })),
            Err(Refusal::Paid) => error(403, "ORDER_PAID", "该订单已支付"),
            Err(Refusal::Closed) => error(400, "ORDER_CLOSED", "该订单已关闭"),
            Err(_) => error(400, "INVALID_REQUEST", "商户订单号重复"),
        }
    }

    /// The transaction resource of `order`, as queries answer it and the
    /// payment notification carries it.
    fn transaction(&self, order: &Order) -> Value {
        let mut t = json!({
            "appid": self.config.appid,
            "mchid": self.config.mchid,
            "out_trade_no": order.out_trade_no,
            "trade_type": "APP",
            "trade_state": order.state.as_str(),
            "trade_state_desc": match order.state {
                TradeState::Success => "支付成功",
                TradeState::Notpay => "未支付",
                TradeState::Closed => "已关闭",
                _ => "转入退款",
            },
            "amount": { "total": order.total_fee, "currency": "CNY" },
        });
        if let Some(id) = &order.transaction_id {
            t["transaction_id"] = id.as_str().into();
            t["bank_type"] = "OTHERS".into();
            t["payer"] = json!({ "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" });
            t["amount"]["payer_total"] = order.total_fee.into();
            t["amount"]["payer_currency"] = "CNY".into();
        }
        if let Some(at) = order.paid_at {
            t["success_time"] = beijing_rfc3339(at).into();
        }
        if let Some(attach) = &order.attach {
            t["attach"] = attach.as_str().into();
        }
        t
    }

    fn certificates(&self) -> (u16, Value) {
        self.certificate_downloads.fetch_add(1, Ordering::Relaxed);
        let key = self.config.api_v3_key.expose().as_bytes().to_vec();
        let platforms = self.platforms().clone();
        let data: Vec<Value> = platforms
            .iter()
            .map(|p| {
                let nonce = &RandomNonce.nonce()[..12];
                let ciphertext =
                    aead::encrypt(&key, nonce, "certificate", p.cert_pem).unwrap_or_default();
                json!({
                    "serial_no": p.serial,
                    "effective_time": "2024-01-01T00:00:00+08:00",
                    "expire_time": "2124-01-01T00:00:00+08:00",
                    "encrypt_certificate": {
                        "algorithm": "AEAD_AES_256_GCM",
                        "nonce": nonce,
                        "associated_data": "certificate",
                        "ciphertext": ciphertext,
                    },
                })
            })
            .collect();
        (200, json!({ "data": data }))
    }

    /// The signed, encrypted payment notification of the paid `order`.
    pub fn payment_notification(&self, order: &Order, now: u64) -> Result<Outgoing, String> {
        let nonce = &RandomNonce.nonce()[..12];
        let plain = self.transaction(order).to_string();
        let ciphertext = aead::encrypt(
            self.config.api_v3_key.expose().as_bytes(),
            nonce,
            "transaction",
            &plain,
        )
        .map_err(|e| e.to_string())?;
        let envelope = json!({
            "id": RandomNonce.nonce(),
            "create_time": beijing_rfc3339(now),
            "resource_type": "encrypt-resource",
            "event_type": "TRANSACTION.SUCCESS",
            "summary": "支付成功",
            "resource": {
                "original_type": "transaction",
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": ciphertext,
                "associated_data": "transaction",
                "nonce": nonce,
            },
        })
        .to_string();
        let mut outgoing = Outgoing::new(
            Event::Payment,
            &order.out_trade_no,
            &order.notify_url,
            Format::Json,
            envelope,
        );
        outgoing.headers = self.sign(&outgoing.body, now);
        Ok(outgoing)
    }
}

fn close(ledger: &Ledger, no: &str) -> (u16, Value) {
    match ledger.close(Generation::V3, &OrderRef::OutTradeNo(no.to_owned())) {
        Ok(()) => (204, Value::Null),
        Err(Refusal::Paid) => error(400, "ORDER_PAID", "订单已支付"),
        Err(_) => error(404, "ORDER_NOT_EXIST", "订单不存在"),
    }
}

fn refund(ledger: &Ledger, body: &[u8], now: u64) -> (u16, Value) {
    let param = |why: &str| error(400, "PARAM_ERROR", why);
    let not_found = || error(404, "RESOURCE_NOT_EXISTS", "订单不存在");
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return param("body is not JSON");
    };
    let text = |k: &str| {
        request
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let no = match (text("out_trade_no"), text("transaction_id")) {
        (no, _) if !no.is_empty() => no,
        (_, id) if !id.is_empty() => {
            match ledger.find(Generation::V3, &OrderRef::TransactionId(id)) {
                Some(order) => order.out_trade_no,
                None => return not_found(),
            }
        }
        _ => return param("out_trade_no or transaction_id is required"),
    };
    let out_refund_no = text("out_refund_no");
    let amount = |k: &str| {
        request
            .get("amount")
            .and_then(|a| a.get(k))
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| *v > 0)
    };
    let (Some(refund), Some(total)) = (amount("refund"), amount("total")) else {
        return param("amount.refund and amount.total must be positive integers of fen");
    };
    if out_refund_no.is_empty() {
        return param("out_refund_no is required");
    }
    let request = RefundRequest {
        order: OrderRef::OutTradeNo(no),
        out_refund_no,
        total_fee: total,
        refund_fee: refund,
        refund_desc: None,
    };
    let refunded = match ledger.refund(Generation::V3, &request, now) {
        Ok(refunded) => refunded,
        Err(Refusal::NotPaid) => return error(403, "TRADE_STATE_ERROR", "订单状态错误"),
        Err(Refusal::WrongTotal) => return param("amount.total is not the order's amount"),
        Err(Refusal::RefundNumberReused) => {
            return param("out_refund_no already used with another amount")
        }
        Err(Refusal::NotEnough) => return error(403, "NOT_ENOUGH", "可退金额不足"),
        Err(_) => return not_found(),
    };
    let (order, refund) = (&refunded.order, &refunded.refund);
    let answer = json!({
        "refund_id": refund.refund_id,
        "out_refund_no": refund.out_refund_no,
        "transaction_id": order.transaction_id,
        "out_trade_no": order.out_trade_no,
        "channel": "ORIGINAL",
        "user_received_account": "支付用户零钱",
        "create_time": beijing_rfc3339(now),
        "status": "SUCCESS",
        "amount": { "total": order.total_fee, "refund": refund.refund_fee, "payer_total": order.total_fee, "payer_refund": refund.refund_fee, "currency": "CNY" },
    });
    (200, answer)
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}
