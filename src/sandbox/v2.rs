//! The simulated API v2 gateway: the merchant's orders and refunds and every
//! check the real one makes on `unifiedorder`, `orderquery`, `closeorder`,
//! `refund`, `refundquery` and `sandboxnew/pay/getsignkey`. Answers are
//! signed like the real ones; a simulated payment or refund yields the signed
//! (or encrypted) notification to deliver. Pure: HTTP lives in `server.rs`,
//! delivery in `notifier.rs`.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use md5::{Digest, Md5};
use serde::Serialize;

use crate::api::v2::req_info;
use crate::api::v2::xml;
use crate::crypto::sign::{sign_v2, signatures_match, Fields, SignType};
use crate::model::TradeState;
use crate::util::clock::beijing_timestamp;
use crate::util::nonce::{NonceSource, RandomNonce};
use crate::util::secret::Secret;

use super::SandboxConfig;

/// A notification the gateway wants delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// What it is about (`payment` or `refund`).
    pub kind: &'static str,
    /// The order's trade number.
    pub out_trade_no: String,
    /// Where to POST it.
    pub url: String,
    /// The body (XML for v2, JSON for v3).
    pub body: String,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Further headers (v3's `Wechatpay-*` signature).
    pub headers: Vec<(String, String)>,
}

impl Outgoing {
    /// True when `status` and `reply` acknowledge this notification: any 2xx
    /// for v3 (JSON), the SUCCESS XML for v2 (or plain `success`).
    pub fn acknowledged_by(&self, status: u16, reply: &[u8]) -> bool {
        if !(200..300).contains(&status) {
            return false;
        }
        if self.content_type == "application/json" {
            return true;
        }
        if reply.trim_ascii().eq_ignore_ascii_case(b"success") {
            return true;
        }
        xml::parse(reply).is_ok_and(|f| f.get("return_code").map(String::as_str) == Some("SUCCESS"))
    }
}

/// An API v2 order as the sandbox keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct V2Order {
    /// The merchant's trade number.
    pub out_trade_no: String,
    /// The amount in fen.
    pub total_fee: u32,
    /// The product description.
    pub body: String,
    /// The prepay id issued.
    pub prepay_id: String,
    /// The order's state.
    pub trade_state: TradeState,
    /// WeChat's transaction id, once paid.
    pub transaction_id: Option<String>,
    /// When it was paid.
    pub time_end: Option<String>,
    /// Where its notifications go.
    pub notify_url: String,
    /// Its refunds, oldest first.
    pub refunds: Vec<V2Refund>,
    #[serde(skip)]
    terms: Fields,
    /// Created under `sandboxnew/` (signed with the simulation key).
    #[serde(skip)]
    simulation: bool,
}

/// A refund as the sandbox keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct V2Refund {
    /// The merchant's refund number.
    pub out_refund_no: String,
    /// The refund id issued.
    pub refund_id: String,
    /// The refunded amount in fen.
    pub refund_fee: u32,
    /// `SUCCESS` (the sandbox settles refunds at once).
    pub refund_status: String,
}

/// The state of the simulated v2 gateway.
#[derive(Debug)]
pub struct GatewayV2 {
    config: SandboxConfig,
    orders: HashMap<String, V2Order>,
    by_transaction: HashMap<String, String>,
    simulation_key: Secret,
}

type Outcome = Result<Fields, (String, String)>;

fn business(code: &str, description: &str) -> (String, String) {
    (code.to_owned(), description.to_owned())
}

impl GatewayV2 {
    /// A gateway for the merchant in `config`.
    pub fn new(config: SandboxConfig) -> GatewayV2 {
        let simulation_key = Secret::new(hex::encode(Md5::digest(
            format!("sandboxnew:{}", config.api_key.expose()).as_bytes(),
        )));
        GatewayV2 {
            config,
            orders: HashMap::new(),
            by_transaction: HashMap::new(),
            simulation_key,
        }
    }

    /// The orders, by trade number.
    pub fn orders(&self) -> Vec<V2Order> {
        let mut list: Vec<V2Order> = self.orders.values().cloned().collect();
        list.sort_by(|a, b| a.prepay_id.cmp(&b.prepay_id));
        list
    }

    /// Handles a POST to `path` (without any `sandboxnew/` prefix;
    /// `simulation` says whether it had one); the XML answer, and any
    /// notification to send.
    pub fn handle(
        &mut self,
        path: &str,
        simulation: bool,
        body: &[u8],
        now: u64,
    ) -> (String, Option<Outgoing>) {
        let fail = |msg: &str| {
            (
                xml::write([("return_code", "FAIL"), ("return_msg", msg)]),
                None,
            )
        };
        let Ok(request) = xml::parse(body) else {
            return fail("XML格式错误");
        };
        let get = |k: &str| request.get(k).map(String::as_str).unwrap_or_default();
        // The request says which algorithm it used; the simulation
        // environment knows MD5 only.
        let sign_type = match get("sign_type") {
            "" | "MD5" => SignType::Md5,
            "HMAC-SHA256" if !simulation => SignType::HmacSha256,
            _ => return fail("sign_type参数错误"),
        };
        let key = if simulation {
            self.simulation_key.clone()
        } else {
            self.config.api_key.clone()
        };
        if path == "pay/getsignkey" {
            // Signed with the real key, answered with the simulation key.
            return match self.check_signature(&request, &self.config.api_key, SignType::Md5) {
                Ok(()) if get("mch_id") == self.config.mch_id => (
                    xml::write([
                        ("return_code", "SUCCESS"),
                        ("return_msg", "ok"),
                        ("mch_id", self.config.mch_id.as_str()),
                        ("sandbox_signkey", self.simulation_key.expose()),
                    ]),
                    None,
                ),
                Ok(()) => fail("mch_id参数错误"),
                Err(msg) => fail(msg),
            };
        }
        if let Err(msg) = self.check_signature(&request, &key, sign_type) {
            return fail(msg);
        }
        if get("appid") != self.config.appid || get("mch_id") != self.config.mch_id {
            return fail("appid和mch_id不匹配");
        }
        if get("nonce_str").is_empty() || get("nonce_str").len() > 32 {
            return fail("nonce_str参数错误");
        }
        let (outcome, outgoing) = match path {
            "pay/unifiedorder" => (self.unifiedorder(&request, now, simulation), None),
            "pay/orderquery" => (self.orderquery(&request), None),
            "pay/closeorder" => (self.closeorder(&request), None),
            "secapi/pay/refund" => match self.refund(&request, now) {
                Ok((fields, outgoing)) => (Ok(fields), outgoing),
                Err(e) => (Err(e), None),
            },
            "pay/refundquery" => (self.refundquery(&request), None),
            _ => return fail("接口不存在"),
        };
        (self.answer(outcome, &key, sign_type), outgoing)
    }

    fn check_signature(
        &self,
        request: &Fields,
        key: &Secret,
        sign_type: SignType,
    ) -> Result<(), &'static str> {
        let sign = request.get("sign").ok_or("缺少参数sign")?;
        if signatures_match(sign_v2(request, key, sign_type).signature(), sign) {
            Ok(())
        } else {
            Err("签名错误")
        }
    }

    /// A signed answer.
    fn answer(&self, outcome: Outcome, key: &Secret, sign_type: SignType) -> String {
        let mut fields = Fields::new();
        let mut put = |k: &str, v: &str| {
            fields.insert(k.to_owned(), v.to_owned());
        };
        put("return_code", "SUCCESS");
        put("return_msg", "OK");
        put("appid", &self.config.appid);
        put("mch_id", &self.config.mch_id);
        put("nonce_str", &RandomNonce.nonce());
        match outcome {
            Ok(extra) => {
                put("result_code", "SUCCESS");
                fields.extend(extra);
            }
            Err((code, description)) => {
                put("result_code", "FAIL");
                put("err_code", &code);
                put("err_code_des", &description);
            }
        }
        let sign = sign_v2(&fields, key, sign_type).into_signature();
        fields.insert("sign".into(), sign);
        xml::write(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    fn unifiedorder(&mut self, request: &Fields, now: u64, simulation: bool) -> Outcome {
        let get = |k: &str| request.get(k).map(String::as_str).unwrap_or_default();
        let param = |what: &str| Err(business("PARAM_ERROR", what));
        if get("trade_type") != "APP" {
            return param("trade_type must be APP");
        }
        let body = get("body");
        if body.is_empty() || body.len() > 128 {
            return param("body missing or longer than 128 bytes");
        }
        let no = get("out_trade_no");
        if no.is_empty() || no.len() > 32 {
            return param("out_trade_no missing or longer than 32 characters");
        }
        let Some(total_fee) = positive_fen(get("total_fee")) else {
            return param("total_fee must be a positive integer of fen");
        };
        if get("spbill_create_ip").parse::<Ipv4Addr>().is_err() {
            return param("spbill_create_ip is not an IPv4 address");
        }
        let notify_url = get("notify_url");
        if !(notify_url.starts_with("http://") || notify_url.starts_with("https://"))
            || notify_url.len() > 256
        {
            return param("notify_url must be an http(s) URL");
        }
        for k in ["time_start", "time_expire"] {
            let t = get(k);
            if !t.is_empty() && (t.len() != 14 || !t.bytes().all(|b| b.is_ascii_digit())) {
                return param(&format!("{k} must be yyyyMMddHHmmss"));
            }
        }
        let terms: Fields = request
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "nonce_str" | "sign" | "sign_type" | "time_start" | "time_expire"
                )
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(seen) = self.orders.get(no) {
            return match seen.trade_state {
                TradeState::Success | TradeState::Refund => {
                    Err(business("ORDERPAID", "该订单已支付"))
                }
                TradeState::Closed => Err(business("ORDERCLOSED", "该订单已关")),
                _ if seen.terms == terms => Ok(prepay_fields(&seen.prepay_id)),
                _ => Err(business("INVALID_REQUEST", "201 商户订单号重复")),
            };
        }
        let prepay_id = format!("wx{}{}", beijing_timestamp(now), &RandomNonce.nonce()[..20]);
        self.orders.insert(
            no.to_owned(),
            V2Order {
                out_trade_no: no.to_owned(),
                total_fee,
                body: body.to_owned(),
                prepay_id: prepay_id.clone(),
                trade_state: TradeState::Notpay,
                transaction_id: None,
                time_end: None,
                notify_url: notify_url.to_owned(),
                refunds: Vec::new(),
                terms,
                simulation,
            },
        );
        Ok(prepay_fields(&prepay_id))
    }

    fn find(&self, request: &Fields) -> Result<&V2Order, (String, String)> {
        let by_no = request.get("out_trade_no").filter(|v| !v.is_empty());
        let by_id = request.get("transaction_id").filter(|v| !v.is_empty());
        let no = match (by_id, by_no) {
            (Some(id), _) => self.by_transaction.get(id),
            (None, Some(no)) => Some(no),
            (None, None) => {
                return Err(business(
                    "PARAM_ERROR",
                    "out_trade_no or transaction_id is required",
                ))
            }
        };
        no.and_then(|no| self.orders.get(no))
            .ok_or_else(|| business("ORDERNOTEXIST", "此交易订单号不存在"))
    }

    fn orderquery(&self, request: &Fields) -> Outcome {
        let order = self.find(request)?;
        let mut f = Fields::new();
        f.insert("out_trade_no".into(), order.out_trade_no.clone());
        f.insert("trade_state".into(), order.trade_state.as_str().into());
        f.insert("total_fee".into(), order.total_fee.to_string());
        f.insert("trade_type".into(), "APP".into());
        if let Some(id) = &order.transaction_id {
            f.insert("transaction_id".into(), id.clone());
        }
        if let Some(t) = &order.time_end {
            f.insert("time_end".into(), t.clone());
        }
        Ok(f)
    }

    fn closeorder(&mut self, request: &Fields) -> Outcome {
        let no = self.find(request)?.out_trade_no.clone();
        let order = self
            .orders
            .get_mut(&no)
            .ok_or_else(|| business("ORDERNOTEXIST", "此交易订单号不存在"))?;
        match order.trade_state {
            TradeState::Success | TradeState::Refund => {
                Err(business("ORDERPAID", "订单已支付，不能发起关单"))
            }
            _ => {
                order.trade_state = TradeState::Closed;
                Ok(Fields::new())
            }
        }
    }

    fn refund(
        &mut self,
        request: &Fields,
        now: u64,
    ) -> Result<(Fields, Option<Outgoing>), (String, String)> {
        let get = |k: &str| request.get(k).map(String::as_str).unwrap_or_default();
        let no = self.find(request)?.out_trade_no.clone();
        let out_refund_no = get("out_refund_no").to_owned();
        if out_refund_no.is_empty() || out_refund_no.len() > 64 {
            return Err(business("PARAM_ERROR", "out_refund_no is required"));
        }
        let (Some(total_fee), Some(refund_fee)) = (
            positive_fen(get("total_fee")),
            positive_fen(get("refund_fee")),
        ) else {
            return Err(business(
                "PARAM_ERROR",
                "total_fee and refund_fee must be positive integers of fen",
            ));
        };
        let notify_url = request.get("notify_url").cloned();
        let key = self.config.api_key.clone();
        let order = self
            .orders
            .get_mut(&no)
            .ok_or_else(|| business("ORDERNOTEXIST", "此交易订单号不存在"))?;
        if !matches!(order.trade_state, TradeState::Success | TradeState::Refund) {
            return Err(business("TRADE_STATE_ERROR", "订单状态错误"));
        }
        if total_fee != order.total_fee {
            return Err(business(
                "PARAM_ERROR",
                "total_fee is not the order's amount",
            ));
        }
        if let Some(seen) = order
            .refunds
            .iter()
            .find(|r| r.out_refund_no == out_refund_no)
        {
            // A retried refund is answered again, not paid twice.
            return if seen.refund_fee == refund_fee {
                Ok((refund_fields(order, seen), None))
            } else {
                Err(business(
                    "PARAM_ERROR",
                    "out_refund_no already used with another amount",
                ))
            };
        }
        let refunded: u32 = order.refunds.iter().map(|r| r.refund_fee).sum();
        if refund_fee > order.total_fee - refunded {
            return Err(business("NOTENOUGH", "退款金额大于可退金额"));
        }
        let refund = V2Refund {
            out_refund_no,
            refund_id: format!(
                "5000{}{}",
                &beijing_timestamp(now)[..8],
                &RandomNonce.nonce()[..17]
            ),
            refund_fee,
            refund_status: "SUCCESS".into(),
        };
        order.trade_state = TradeState::Refund;
        order.refunds.push(refund.clone());
        let fields = refund_fields(order, &refund);
        let url = notify_url.unwrap_or_else(|| order.notify_url.clone());
        let outgoing = refund_notification(&self.config, order, &refund, &key, now, url);
        Ok((fields, Some(outgoing)))
    }

    fn refundquery(&self, request: &Fields) -> Outcome {
        let order = self.find(request)?;
        if order.refunds.is_empty() {
            return Err(business("REFUNDNOTEXIST", "退款订单查询失败"));
        }
        let mut f = Fields::new();
        f.insert("out_trade_no".into(), order.out_trade_no.clone());
        f.insert("total_fee".into(), order.total_fee.to_string());
        f.insert("refund_count".into(), order.refunds.len().to_string());
        for (n, r) in order.refunds.iter().enumerate() {
            f.insert(format!("out_refund_no_{n}"), r.out_refund_no.clone());
            f.insert(format!("refund_id_{n}"), r.refund_id.clone());
            f.insert(format!("refund_fee_{n}"), r.refund_fee.to_string());
            f.insert(format!("refund_status_{n}"), r.refund_status.clone());
        }
        Ok(f)
    }

    /// The user pays `out_trade_no`: the order becomes SUCCESS and its signed
    /// payment notification is returned for delivery. Paying a paid order
    /// sends the same notification again.
    pub fn pay(&mut self, out_trade_no: &str, now: u64) -> Result<Outgoing, String> {
        let order = self
            .orders
            .get_mut(out_trade_no)
            .ok_or_else(|| format!("no v2 order {out_trade_no:?}"))?;
        match order.trade_state {
            TradeState::Notpay | TradeState::Userpaying => {
                let id = format!(
                    "4200{}{}",
                    &beijing_timestamp(now)[..8],
                    &RandomNonce.nonce()[..16]
                );
                order.trade_state = TradeState::Success;
                order.transaction_id = Some(id.clone());
                order.time_end = Some(beijing_timestamp(now));
                self.by_transaction.insert(id, out_trade_no.to_owned());
            }
            TradeState::Success | TradeState::Refund => {}
            ref other => return Err(format!("order {out_trade_no} is {}", other.as_str())),
        }
        let order = &self.orders[out_trade_no];
        let mut f = Fields::new();
        let mut put = |k: &str, v: &str| {
            f.insert(k.to_owned(), v.to_owned());
        };
        put("return_code", "SUCCESS");
        put("result_code", "SUCCESS");
        put("appid", &self.config.appid);
        put("mch_id", &self.config.mch_id);
        put("nonce_str", &RandomNonce.nonce());
        put("openid", "oUpF8uMEb4qRXf22hE3X68TekukE");
        put("is_subscribe", "N");
        put("trade_type", "APP");
        put("bank_type", "CMC");
        put("fee_type", "CNY");
        put("total_fee", &order.total_fee.to_string());
        put("cash_fee", &order.total_fee.to_string());
        put("out_trade_no", &order.out_trade_no);
        put(
            "transaction_id",
            order.transaction_id.as_deref().unwrap_or_default(),
        );
        put("time_end", order.time_end.as_deref().unwrap_or_default());
        if let Some(attach) = order.terms.get("attach") {
            put("attach", attach);
        }
        // Notifications are signed with the merchant's chosen algorithm.
        let (key, sign_type) = if order.simulation {
            (self.simulation_key.clone(), SignType::Md5)
        } else {
            (self.config.api_key.clone(), self.config.sign_type)
        };
        if sign_type != SignType::Md5 {
            put("sign_type", sign_type.as_str());
        }
        let sign = sign_v2(&f, &key, sign_type).into_signature();
        f.insert("sign".into(), sign);
        Ok(Outgoing {
            kind: "payment",
            out_trade_no: out_trade_no.to_owned(),
            url: order.notify_url.clone(),
            body: xml::write(f.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            content_type: "text/xml; charset=utf-8",
            headers: Vec::new(),
        })
    }
}

fn prepay_fields(prepay_id: &str) -> Fields {
    let mut f = Fields::new();
    f.insert("trade_type".into(), "APP".into());
    f.insert("prepay_id".into(), prepay_id.to_owned());
    f
}

fn refund_fields(order: &V2Order, refund: &V2Refund) -> Fields {
    let mut f = Fields::new();
    f.insert("out_trade_no".into(), order.out_trade_no.clone());
    f.insert(
        "transaction_id".into(),
        order.transaction_id.clone().unwrap_or_default(),
    );
    f.insert("out_refund_no".into(), refund.out_refund_no.clone());
    f.insert("refund_id".into(), refund.refund_id.clone());
    f.insert("refund_fee".into(), refund.refund_fee.to_string());
    f.insert("total_fee".into(), order.total_fee.to_string());
    f.insert("cash_fee".into(), order.total_fee.to_string());
    f
}

fn refund_notification(
    config: &SandboxConfig,
    order: &V2Order,
    refund: &V2Refund,
    key: &Secret,
    now: u64,
    url: String,
) -> Outgoing {
    let inner: BTreeMap<&str, String> = [
        ("out_refund_no", refund.out_refund_no.clone()),
        ("out_trade_no", order.out_trade_no.clone()),
        ("refund_account", "REFUND_SOURCE_RECHARGE_FUNDS".into()),
        ("refund_fee", refund.refund_fee.to_string()),
        ("refund_id", refund.refund_id.clone()),
        ("refund_recv_accout", "支付用户零钱".into()),
        ("refund_request_source", "API".into()),
        ("refund_status", refund.refund_status.clone()),
        ("settlement_refund_fee", refund.refund_fee.to_string()),
        ("settlement_total_fee", order.total_fee.to_string()),
        ("success_time", beijing_timestamp(now)),
        ("total_fee", order.total_fee.to_string()),
        (
            "transaction_id",
            order.transaction_id.clone().unwrap_or_default(),
        ),
    ]
    .into_iter()
    .collect();
    let plain = xml::write(inner.iter().map(|(k, v)| (*k, v.as_str())))
        .replacen("<xml>", "<root>", 1)
        .replacen("</xml>", "</root>", 1);
    let body = xml::write([
        ("return_code", "SUCCESS"),
        ("appid", config.appid.as_str()),
        ("mch_id", config.mch_id.as_str()),
        ("nonce_str", &RandomNonce.nonce()),
        ("req_info", &req_info::encrypt(&plain, key)),
    ]);
    Outgoing {
        kind: "refund",
        out_trade_no: order.out_trade_no.clone(),
        url,
        body,
        content_type: "text/xml; charset=utf-8",
        headers: Vec::new(),
    }
}

fn positive_fen(text: &str) -> Option<u32> {
    if text.is_empty() || text.starts_with('0') || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u32>().ok().filter(|f| *f <= i32::MAX as u32)
}
