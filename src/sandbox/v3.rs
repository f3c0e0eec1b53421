//! The simulated API v3 gateway: it verifies every request's
//! `WECHATPAY2-SHA256-RSA2048` Authorization with the merchant's public key,
//! keeps orders and refunds, answers with the real codes, signs every answer
//! with its platform key (public-key mode or certificate mode), serves
//! `/v3/certificates` encrypted with the API v3 key, rotates its platform
//! certificate on request, and builds the encrypted, signed notification of
//! a simulated payment. Pure: HTTP lives in `server.rs`.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::api::v3::auth::MAX_CLOCK_SKEW_SECS;
use crate::crypto::aead;
use crate::crypto::rsa::{MerchantKey, VerifyingKey};
use crate::util::clock::beijing_rfc3339;
use crate::util::nonce::{NonceSource, RandomNonce};

use super::v2::Outgoing;
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

fn platform(key: &str, cert: &'static str) -> Platform {
    let (serial, _) =
        VerifyingKey::from_certificate_pem(cert).expect("the embedded sandbox certificate parses");
    Platform {
        key: MerchantKey::from_pem(key).expect("the embedded sandbox key parses"),
        cert_pem: cert,
        serial,
    }
}

#[derive(Debug, Clone)]
struct V3Order {
    out_trade_no: String,
    total: u32,
    description: String,
    notify_url: String,
    attach: Option<String>,
    prepay_id: String,
    state: &'static str,
    transaction_id: Option<String>,
    success_time: Option<String>,
    refunded: u32,
    refunds: Vec<(String, String, u32)>,
}

/// The state of the simulated v3 gateway.
pub struct GatewayV3 {
    config: SandboxConfig,
    merchant_public: Option<VerifyingKey>,
    platforms: Vec<Platform>,
    orders: HashMap<String, V3Order>,
    by_transaction: HashMap<String, String>,
    /// How many times `/v3/certificates` was served.
    pub(super) certificate_downloads: u64,
}

impl std::fmt::Debug for GatewayV3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayV3")
            .field("orders", &self.orders.len())
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
            platforms: vec![platform(PLATFORM_KEY, PLATFORM_CERT)],
            orders: HashMap::new(),
            by_transaction: HashMap::new(),
            certificate_downloads: 0,
        }
    }

    /// Signs with a new platform certificate from now on (certificate mode);
    /// the old one stays listed in `/v3/certificates`.
    pub fn rotate(&mut self) {
        if self.platforms.len() == 1 {
            self.platforms.push(platform(PLATFORM2_KEY, PLATFORM2_CERT));
        }
    }

    fn current(&self) -> &Platform {
        self.platforms
            .last()
            .expect("there is always a platform key")
    }

    /// Signs `body` at `now`: the `Wechatpay-*` headers.
    fn sign(&self, body: &str, now: u64) -> Vec<(String, String)> {
        let nonce = RandomNonce.nonce();
        let message = format!("{now}\n{nonce}\n{body}\n");
        let serial = if self.config.v3_certificate_mode {
            self.current().serial.clone()
        } else {
            self.config.wechatpay_public_key_id.clone()
        };
        vec![
            ("Wechatpay-Serial".into(), serial),
            (
                "Wechatpay-Signature".into(),
                self.current().key.sign(message.as_bytes()),
            ),
            ("Wechatpay-Timestamp".into(), now.to_string()),
            ("Wechatpay-Nonce".into(), nonce),
            (
                "Wechatpay-Signature-Type".into(),
                "WECHATPAY2-SHA256-RSA2048".into(),
            ),
        ]
    }

    /// Handles one request; `path_and_query` as sent.
    pub fn handle(
        &mut self,
        method: &str,
        path_and_query: &str,
        authorization: Option<&str>,
        body: &[u8],
        now: u64,
    ) -> V3Answer {
        let (status, value) =
            match self.check_authorization(method, path_and_query, authorization, body, now) {
                Err(e) => e,
                Ok(()) => self.route(method, path_and_query, body, now),
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

    fn route(&mut self, method: &str, path_and_query: &str, body: &[u8], now: u64) -> (u16, Value) {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mchid_ok = query
            .split('&')
            .any(|p| p == format!("mchid={}", self.config.mchid));
        match (method, segments.as_slice()) {
            ("POST", ["v3", "pay", "transactions", "app"]) => self.create(body, now),
            ("GET", ["v3", "pay", "transactions", "out-trade-no", no]) if mchid_ok => {
                self.query(&decode(no))
            }
            ("GET", ["v3", "pay", "transactions", "id", id]) if mchid_ok => {
                match self.by_transaction.get(&decode(id)).cloned() {
                    Some(no) => self.query(&no),
                    None => error(404, "ORDER_NOT_EXIST", "订单不存在"),
                }
            }
            ("GET", ["v3", "pay", "transactions", ..]) => {
                error(400, "PARAM_ERROR", "mchid is missing or not this merchant")
            }
            ("POST", ["v3", "pay", "transactions", "out-trade-no", no, "close"]) => {
                self.close(&decode(no))
            }
            ("POST", ["v3", "refund", "domestic", "refunds"]) => self.refund(body, now),
            ("GET", ["v3", "certificates"]) => self.certificates(),
            _ => error(404, "NOT_FOUND", "no such API"),
        }
    }

    fn create(&mut self, body: &[u8], now: u64) -> (u16, Value) {
        let param = |why: &str| error(400, "PARAM_ERROR", why);
        let Ok(request) = serde_json::from_slice::<Value>(body) else {
            return param("body is not JSON");
        };
        let text = |k: &str| request.get(k).and_then(Value::as_str).unwrap_or_default();
        if text("appid") != self.config.appid || text("mchid") != self.config.mchid {
            return param("appid and mchid do not match");
        }
        let no = text("out_trade_no");
        if no.is_empty()
            || no.len() > 32
            || text("description").is_empty()
            || text("description").len() > 127
        {
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
        if let Some(seen) = self.orders.get(no) {
            return match seen.state {
                "SUCCESS" | "REFUND" => error(403, "ORDER_PAID", "该订单已支付"),
                "CLOSED" => error(400, "ORDER_CLOSED", "该订单已关闭"),
                _ if seen.total == total && seen.description == text("description") => {
                    (200, json!({ "prepay_id": seen.prepay_id }))
                }
                _ => error(400, "INVALID_REQUEST", "商户订单号重复"),
            };
        }
        let prepay_id = format!(
            "wx{}{}",
            crate::util::clock::beijing_timestamp(now),
            &RandomNonce.nonce()[..20]
        );
        self.orders.insert(
            no.to_owned(),
            V3Order {
                out_trade_no: no.to_owned(),
                total,
                description: text("description").to_owned(),
                notify_url: notify_url.to_owned(),
                attach: request
                    .get("attach")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                prepay_id: prepay_id.clone(),
                state: "NOTPAY",
                transaction_id: None,
                success_time: None,
                refunded: 0,
                refunds: Vec::new(),
            },
        );
        (200, json!({ "prepay_id": prepay_id }))
    }

    fn transaction(&self, order: &V3Order) -> Value {
        let mut t = json!({
            "appid": self.config.appid,
            "mchid": self.config.mchid,
            "out_trade_no": order.out_trade_no,
            "trade_type": "APP",
            "trade_state": order.state,
            "trade_state_desc": match order.state { "SUCCESS" => "支付成功", "NOTPAY" => "未支付", "CLOSED" => "已关闭", _ => "转入退款" },
            "amount": { "total": order.total, "currency": "CNY" },
        });
        if let Some(id) = &order.transaction_id {
            t["transaction_id"] = id.as_str().into();
            t["bank_type"] = "OTHERS".into();
            t["payer"] = json!({ "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" });
            t["amount"]["payer_total"] = order.total.into();
            t["amount"]["payer_currency"] = "CNY".into();
        }
        if let Some(at) = &order.success_time {
            t["success_time"] = at.as_str().into();
        }
        if let Some(attach) = &order.attach {
            t["attach"] = attach.as_str().into();
        }
        t
    }

    fn query(&self, no: &str) -> (u16, Value) {
        match self.orders.get(no) {
            Some(order) => (200, self.transaction(order)),
            None => error(404, "ORDER_NOT_EXIST", "订单不存在"),
        }
    }

    fn close(&mut self, no: &str) -> (u16, Value) {
        match self.orders.get_mut(no) {
            None => error(404, "ORDER_NOT_EXIST", "订单不存在"),
            Some(order) if matches!(order.state, "SUCCESS" | "REFUND") => {
                error(400, "ORDER_PAID", "订单已支付")
            }
            Some(order) => {
                order.state = "CLOSED";
                (204, Value::Null)
            }
        }
    }

    fn refund(&mut self, body: &[u8], now: u64) -> (u16, Value) {
        let param = |why: &str| error(400, "PARAM_ERROR", why);
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
            (_, id) if !id.is_empty() => match self.by_transaction.get(&id) {
                Some(no) => no.clone(),
                None => return error(404, "RESOURCE_NOT_EXISTS", "订单不存在"),
            },
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
        let Some(order) = self.orders.get_mut(&no) else {
            return error(404, "RESOURCE_NOT_EXISTS", "订单不存在");
        };
        if !matches!(order.state, "SUCCESS" | "REFUND") {
            return error(403, "TRADE_STATE_ERROR", "订单状态错误");
        }
        if total != order.total {
            return param("amount.total is not the order's amount");
        }
        if let Some((_, id, fee)) = order.refunds.iter().find(|(n, _, _)| *n == out_refund_no) {
            if *fee != refund {
                return param("out_refund_no already used with another amount");
            }
            let id = id.clone();
            return (200, refund_answer(order, &out_refund_no, &id, refund, now));
        }
        if refund > order.total - order.refunded {
            return error(403, "NOT_ENOUGH", "可退金额不足");
        }
        let id = format!(
            "50300{}{}",
            &crate::util::clock::beijing_timestamp(now)[..8],
            &RandomNonce.nonce()[..15]
        );
        order.refunded += refund;
        order.state = "REFUND";
        order
            .refunds
            .push((out_refund_no.clone(), id.clone(), refund));
        (200, refund_answer(order, &out_refund_no, &id, refund, now))
    }

    fn certificates(&mut self) -> (u16, Value) {
        self.certificate_downloads += 1;
        let key = self.config.api_v3_key.expose().as_bytes().to_vec();
        let data: Vec<Value> = self
            .platforms
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

    /// True when `out_trade_no` is a v3 order.
    pub fn has_order(&self, out_trade_no: &str) -> bool {
        self.orders.contains_key(out_trade_no)
    }

    /// The user pays `out_trade_no`: the signed, encrypted notification to send.
    pub fn pay(&mut self, out_trade_no: &str, now: u64) -> Result<Outgoing, String> {
        let order = self
            .orders
            .get_mut(out_trade_no)
            .ok_or_else(|| format!("no v3 order {out_trade_no:?}"))?;
        match order.state {
            "NOTPAY" => {
                let id = format!(
                    "4200{}{}",
                    &crate::util::clock::beijing_timestamp(now)[..8],
                    &RandomNonce.nonce()[..16]
                );
                order.state = "SUCCESS";
                order.transaction_id = Some(id.clone());
                order.success_time = Some(beijing_rfc3339(now));
                self.by_transaction.insert(id, out_trade_no.to_owned());
            }
            "SUCCESS" | "REFUND" => {}
            other => return Err(format!("order {out_trade_no} is {other}")),
        }
        let order = self.orders[out_trade_no].clone();
        let nonce = &RandomNonce.nonce()[..12];
        let plain = self.transaction(&order).to_string();
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
        Ok(Outgoing {
            kind: "payment",
            out_trade_no: out_trade_no.to_owned(),
            url: order.notify_url.clone(),
            headers: self.sign(&envelope, now),
            body: envelope,
            content_type: "application/json",
        })
    }
}

fn refund_answer(
    order: &V3Order,
    out_refund_no: &str,
    refund_id: &str,
    refund: u32,
    now: u64,
) -> Value {
    json!({
        "refund_id": refund_id,
        "out_refund_no": out_refund_no,
        "transaction_id": order.transaction_id,
        "out_trade_no": order.out_trade_no,
        "channel": "ORIGINAL",
        "user_received_account": "支付用户零钱",
        "create_time": beijing_rfc3339(now),
        "status": "SUCCESS",
        "amount": { "total": order.total, "refund": refund, "payer_total": order.total, "payer_refund": refund, "currency": "CNY" },
    })
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}
