//! The simulated API v2 gateway: the XML protocol and every check the real
//! one makes on `unifiedorder`, `orderquery`, `closeorder`, `refund`,
//! `refundquery` and `sandboxnew/pay/getsignkey`. Answers are signed like the
//! real ones, with the algorithm the request names; a payment or refund yields
//! the signed (or encrypted) notification to deliver. Orders and refunds live
//! in the ledger. Pure: HTTP lives in `server.rs`, delivery in `notifier.rs`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use md5::{Digest, Md5};
use serde::Serialize;

use crate::api::v2::req_info;
use crate::api::v2::xml;
use crate::crypto::sign::{sign_v2, signatures_match, Fields, SignType};
use crate::model::{OrderRef, RefundRequest, RefundStatus, TradeState};
use crate::util::clock::beijing_timestamp;
use crate::util::nonce::{NonceSource, RandomNonce};
use crate::util::secret::Secret;

use super::ledger::{positive_fen, Generation, Ledger, Order, Refusal};
use super::notifier::{Event, Format, Outgoing};
use super::SandboxConfig;

/// An API v2 order as the sandbox shows it (`GET /sandbox/v2/orders`).
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
    /// When it was paid (`yyyyMMddHHmmss`, Beijing time).
    pub time_end: Option<String>,
    /// Where its notifications go.
    pub notify_url: String,
    /// Its refunds, oldest first.
    pub refunds: Vec<V2Refund>,
}

/// A refund as the sandbox keeps it (settled at once: `refund_status` is
/// `SUCCESS`).
pub type V2Refund = RefundStatus;

impl From<&Order> for V2Order {
    fn from(order: &Order) -> V2Order {
        V2Order {
            out_trade_no: order.out_trade_no.clone(),
            total_fee: order.total_fee,
            body: order.body.clone(),
            prepay_id: order.prepay_id.clone(),
            trade_state: order.state.clone(),
            transaction_id: order.transaction_id.clone(),
            time_end: order.paid_at.map(beijing_timestamp),
            notify_url: order.notify_url.clone(),
            refunds: order.refunds.clone(),
        }
    }
}

/// The simulated v2 gateway: the merchant account and the simulation key.
#[derive(Debug)]
pub struct GatewayV2 {
    config: SandboxConfig,
    simulation_key: Secret,
}

type Outcome = Result<Fields, (String, String)>;

fn business(code: &str, description: &str) -> (String, String) {
    (code.to_owned(), description.to_owned())
}

/// The `err_code` and `err_code_des` of a ledger refusal.
fn refused(refusal: Refusal) -> (String, String) {
    match refusal {
        Refusal::NotFound => business("ORDERNOTEXIST", "此交易订单号不存在"),
        Refusal::Paid => business("ORDERPAID", "该订单已支付"),
        Refusal::Closed => business("ORDERCLOSED", "该订单已关"),
        Refusal::Conflict => business("INVALID_REQUEST", "201 商户订单号重复"),
        Refusal::NotPaid | Refusal::NotPayable(_) => business("TRADE_STATE_ERROR", "订单状态错误"),
        Refusal::WrongTotal => business("PARAM_ERROR", "total_fee is not the order's amount"),
        Refusal::RefundNumberReused => business(
            "PARAM_ERROR",
            "out_refund_no already used with another amount",
        ),
        Refusal::NotEnough => business("NOTENOUGH", "退款金额大于可退金额"),
    }
}

impl GatewayV2 {
    /// A gateway for the merchant in `config`.
    pub fn new(config: SandboxConfig) -> GatewayV2 {
        let simulation_key = Secret::new(hex::encode(Md5::digest(
            format!("sandboxnew:{}", config.api_key.expose()).as_bytes(),
        )));
        GatewayV2 {
            config,
            simulation_key,
        }
    }

    /// Handles a POST to `path` (without any `sandboxnew/` prefix;
    /// `simulation` says whether it had one) against `ledger`; the XML
    /// answer, and any notification to send.
    pub fn handle(
        &self,
        ledger: &Ledger,
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
            &self.simulation_key
        } else {
            &self.config.api_key
        };
        if path == "pay/getsignkey" {
            // Signed with the real key, answered with the simulation key.
            return match check_signature(&request, &self.config.api_key, SignType::Md5) {
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
        if let Err(msg) = check_signature(&request, key, sign_type) {
            return fail(msg);
        }
        if get("appid") != self.config.appid || get("mch_id") != self.config.mch_id {
            return fail("appid和mch_id不匹配");
        }
        if get("nonce_str").is_empty() || get("nonce_str").len() > 32 {
            return fail("nonce_str参数错误");
        }
        let (outcome, outgoing) = match path {
            "pay/unifiedorder" => (unifiedorder(ledger, &request, now, simulation), None),
            "pay/orderquery" => (find(ledger, &request).map(|o| order_fields(&o)), None),
            "pay/closeorder" => (closeorder(ledger, &request), None),
            "secapi/pay/refund" => match self.refund(ledger, &request, now) {
                Ok((fields, outgoing)) => (Ok(fields), outgoing),
                Err(e) => (Err(e), None),
            },
            "pay/refundquery" => (refundquery(ledger, &request), None),
            _ => return fail("接口不存在"),
        };
        (self.answer(outcome, key, sign_type), outgoing)
    }

    /// A signed answer.
    fn answer(&self, outcome: Outcome, key: &Secret, sign_type: SignType) -> String {
        let mut fields = self.account_fields();
        let mut put = |k: &str, v: &str| {
            fields.insert(k.to_owned(), v.to_owned());
        };
        put("return_code", "SUCCESS");
        put("return_msg", "OK");
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
        signed_xml(fields, key, sign_type)
    }

    /// `appid`, `mch_id` and a fresh `nonce_str`, which every answer and
    /// notification carries.
    fn account_fields(&self) -> Fields {
        [
            ("appid", self.config.appid.clone()),
            ("mch_id", self.config.mch_id.clone()),
            ("nonce_str", RandomNonce.nonce()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    fn refund(
        &self,
        ledger: &Ledger,
        request: &Fields,
        now: u64,
    ) -> Result<(Fields, Option<Outgoing>), (String, String)> {
        let get = |k: &str| request.get(k).map(String::as_str).unwrap_or_default();
        let order = find(ledger, request)?;
        let out_refund_no = get("out_refund_no");
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
        let refunded = ledger
            .refund(
                Generation::V2,
                &RefundRequest {
                    order: OrderRef::OutTradeNo(order.out_trade_no),
                    out_refund_no: out_refund_no.to_owned(),
                    total_fee,
                    refund_fee,
                    refund_desc: None,
                },
                now,
            )
            .map_err(refused)?;
        let fields = refund_fields(&refunded.order, &refunded.refund);
        // A retried refund is answered again, not notified twice.
        let outgoing = refunded.new.then(|| {
            let url = request
                .get("notify_url")
                .unwrap_or(&refunded.order.notify_url);
            self.refund_notification(&refunded.order, &refunded.refund, now, url)
        });
        Ok((fields, outgoing))
    }

    /// The signed payment notification of the paid `order`.
    pub fn payment_notification(&self, order: &Order) -> Outgoing {
        let mut f = self.account_fields();
        let mut put = |k: &str, v: &str| {
            f.insert(k.to_owned(), v.to_owned());
        };
        put("return_code", "SUCCESS");
        put("result_code", "SUCCESS");
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
        put(
            "time_end",
            &order.paid_at.map(beijing_timestamp).unwrap_or_default(),
        );
        if let Some(attach) = &order.attach {
            put("attach", attach);
        }
        // Notifications are signed with the merchant's chosen algorithm.
        let (key, sign_type) = if order.simulation {
            (&self.simulation_key, SignType::Md5)
        } else {
            (&self.config.api_key, self.config.sign_type)
        };
        if sign_type != SignType::Md5 {
            put("sign_type", sign_type.as_str());
        }
        let body = signed_xml(f, key, sign_type);
        Outgoing::new(
            Event::Payment,
            &order.out_trade_no,
            &order.notify_url,
            Format::Xml,
            body,
        )
    }

    /// The refund notification, its `req_info` encrypted with the API key.
    fn refund_notification(
        &self,
        order: &Order,
        refund: &RefundStatus,
        now: u64,
        url: &str,
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
            ("appid", self.config.appid.as_str()),
            ("mch_id", self.config.mch_id.as_str()),
            ("nonce_str", &RandomNonce.nonce()),
            ("req_info", &req_info::encrypt(&plain, &self.config.api_key)),
        ]);
        Outgoing::new(Event::Refund, &order.out_trade_no, url, Format::Xml, body)
    }
}

fn check_signature(
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

/// `fields` with their `sign`, as XML.
fn signed_xml(mut fields: Fields, key: &Secret, sign_type: SignType) -> String {
    let sign = sign_v2(&fields, key, sign_type).into_signature();
    fields.insert("sign".into(), sign);
    xml::write(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

fn unifiedorder(ledger: &Ledger, request: &Fields, now: u64, simulation: bool) -> Outcome {
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
        .filter(|(k, _)| !matches!(k.as_str(), "nonce_str" | "sign" | "sign_type"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut order = Order::new(Generation::V2, no, total_fee, body, notify_url, terms);
    order.attach = request.get("attach").cloned();
    order.simulation = simulation;
    let order = ledger.open(order, now).map_err(refused)?;
    let mut f = Fields::new();
    f.insert("trade_type".into(), "APP".into());
    f.insert("prepay_id".into(), order.prepay_id);
    Ok(f)
}

/// The order the request names by `transaction_id` or `out_trade_no`.
fn find(ledger: &Ledger, request: &Fields) -> Result<Order, (String, String)> {
    let by_no = request.get("out_trade_no").filter(|v| !v.is_empty());
    let by_id = request.get("transaction_id").filter(|v| !v.is_empty());
    let reference = match (by_id, by_no) {
        (Some(id), _) => OrderRef::TransactionId(id.clone()),
        (None, Some(no)) => OrderRef::OutTradeNo(no.clone()),
        (None, None) => {
            return Err(business(
                "PARAM_ERROR",
                "out_trade_no or transaction_id is required",
            ))
        }
    };
    ledger
        .find(Generation::V2, &reference)
        .ok_or_else(|| refused(Refusal::NotFound))
}

/// `orderquery`'s fields.
fn order_fields(order: &Order) -> Fields {
    let mut f = Fields::new();
    f.insert("out_trade_no".into(), order.out_trade_no.clone());
    f.insert("trade_state".into(), order.state.as_str().into());
    f.insert("total_fee".into(), order.total_fee.to_string());
    f.insert("trade_type".into(), "APP".into());
    if let Some(id) = &order.transaction_id {
        f.insert("transaction_id".into(), id.clone());
    }
    if let Some(at) = order.paid_at {
        f.insert("time_end".into(), beijing_timestamp(at));
    }
    f
}

fn closeorder(ledger: &Ledger, request: &Fields) -> Outcome {
    let order = find(ledger, request)?;
    match ledger.close(Generation::V2, &OrderRef::OutTradeNo(order.out_trade_no)) {
        Ok(()) => Ok(Fields::new()),
        Err(Refusal::Paid) => Err(business("ORDERPAID", "订单已支付，不能发起关单")),
        Err(refusal) => Err(refused(refusal)),
    }
}

fn refundquery(ledger: &Ledger, request: &Fields) -> Outcome {
    let order = find(ledger, request)?;
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

fn refund_fields(order: &Order, refund: &RefundStatus) -> Fields {
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
