//! API v2 (XML, PROTOCOL.md 4) as data: the signed requests of the order life
//! cycle, the verified parsing of every answer, and the app's parameters.
//!
//! Every SUCCESS response carries a signature over all its fields (those we
//! did not expect included); it is verified with the merchant's algorithm
//! before anything in it is believed. No I/O happens here.

pub mod merchant;
pub mod notify;
pub mod req_info;
pub mod xml;

use url::Url;

use crate::api::v2::merchant::V2Merchant;
use crate::crypto::sign::{sign_v2, signatures_match, Fields, SignType};
use crate::error::{Error, Result};
use crate::http::{HttpRequest, HttpResponse, Method};
use crate::model::{
    Order, OrderRef, OrderStatus, PayParams, RefundReceipt, RefundRequest, RefundStatus, TradeState,
};
use crate::util::clock::beijing_timestamp;
use crate::util::secret::Secret;

/// Create an order.
pub const UNIFIEDORDER: &str = "pay/unifiedorder";
/// Query an order.
pub const ORDERQUERY: &str = "pay/orderquery";
/// Close an unpaid order.
pub const CLOSEORDER: &str = "pay/closeorder";
/// Refund (mutual TLS with the merchant certificate).
pub const REFUND: &str = "secapi/pay/refund";
/// Query refunds.
pub const REFUNDQUERY: &str = "pay/refundquery";
/// WeChat's simulation environment: fetch the key it signs with.
pub const GETSIGNKEY: &str = "sandboxnew/pay/getsignkey";

/// The signing key and algorithm of a request: the merchant's API key, or
/// in WeChat's simulation environment the key fetched from `getsignkey`.
#[derive(Debug, Clone)]
pub struct Signer<'a> {
    /// The key.
    pub key: &'a Secret,
    /// The algorithm.
    pub sign_type: SignType,
}

/// A signed v2 request for `path` (with `sandboxnew/` when `sandbox`).
pub fn request(
    api_base: &Url,
    path: &str,
    sandbox: bool,
    mut fields: Fields,
    signer: &Signer<'_>,
) -> HttpRequest {
    if signer.sign_type != SignType::Md5 {
        fields.insert("sign_type".into(), signer.sign_type.as_str().into());
    }
    let sign = sign_v2(&fields, signer.key, signer.sign_type).into_signature();
    fields.insert("sign".into(), sign);
    let prefix = if sandbox && !path.starts_with("sandboxnew/") {
        "sandboxnew/"
    } else {
        ""
    };
    let mut url = api_base.clone();
    url.set_path(&format!(
        "{}/{prefix}{path}",
        api_base.path().trim_end_matches('/')
    ));
    HttpRequest {
        method: Method::Post,
        url,
        body: xml::write(fields.iter().map(|(k, v)| (k.as_str(), v.as_str()))).into_bytes(),
        content_type: Some("text/xml; charset=utf-8"),
        headers: Vec::new(),
    }
}

/// The common fields of every merchant request.
pub fn base_fields(merchant: &V2Merchant, nonce: &str) -> Fields {
    let mut f = Fields::new();
    f.insert("appid".into(), merchant.appid.clone());
    f.insert("mch_id".into(), merchant.mch_id.clone());
    f.insert("nonce_str".into(), nonce.to_owned());
    f
}

/// `unifiedorder` fields for an APP payment of `order` at `now`.
pub fn unifiedorder_fields(merchant: &V2Merchant, order: &Order, now: u64, nonce: &str) -> Fields {
    let mut f = base_fields(merchant, nonce);
    let expire = now + u64::from(order.expire_minutes()) * 60;
    f.insert("body".into(), order.body().to_owned());
    f.insert("out_trade_no".into(), order.out_trade_no().to_owned());
    f.insert("total_fee".into(), order.total_fee().to_string());
    f.insert("spbill_create_ip".into(), order.client_ip().to_string());
    f.insert("notify_url".into(), merchant.notify_url.clone());
    f.insert("trade_type".into(), "APP".into());
    f.insert("time_start".into(), beijing_timestamp(now));
    f.insert("time_expire".into(), beijing_timestamp(expire));
    if let Some(attach) = order.attach() {
        f.insert("attach".into(), attach.to_owned());
    }
    f
}

/// Fields naming an order (`orderquery`, `closeorder`, `refundquery`).
pub fn order_ref_fields(merchant: &V2Merchant, order: &OrderRef, nonce: &str) -> Fields {
    let mut f = base_fields(merchant, nonce);
    let (k, v) = order.field();
    f.insert(k.into(), v.to_owned());
    f
}

/// `refund` fields; the order, numbers, amounts and description are checked
/// here, before any network call.
pub fn refund_fields(merchant: &V2Merchant, refund: &RefundRequest, nonce: &str) -> Result<Fields> {
    refund.validate()?;
    let no = &refund.out_refund_no;
    let mut f = order_ref_fields(merchant, &refund.order, nonce);
    f.insert("out_refund_no".into(), no.clone());
    f.insert("total_fee".into(), refund.total_fee.to_string());
    f.insert("refund_fee".into(), refund.refund_fee.to_string());
    if let Some(desc) = refund.refund_desc.as_ref().filter(|d| !d.is_empty()) {
        f.insert("refund_desc".into(), desc.clone());
    }
    // Refund results go to the refund URL, or to the one set on the merchant
    // platform: never to the payment handler.
    if let Some(url) = &merchant.refund_notify_url {
        f.insert("notify_url".into(), url.clone());
    }
    Ok(f)
}

/// Reads a v2 answer: HTTP 200, XML, `return_code` SUCCESS, a valid
/// signature, `result_code` SUCCESS; the verified fields.
pub fn parse_response(response: &HttpResponse, signer: &Signer<'_>) -> Result<Fields> {
    if response.status != 200 {
        return Err(Error::HttpStatus {
            status: response.status,
        });
    }
    let fields = xml::parse(&response.body).map_err(|e| Error::MalformedResponse(e.to_string()))?;
    let text = |k: &str| fields.get(k).map(String::as_str).unwrap_or_default();
    if text("return_code") != "SUCCESS" {
        if text("return_code") == "FAIL" {
            return Err(Error::Rejected {
                code: "FAIL".into(),
                message: truncate(text("return_msg")),
                http_status: None,
            });
        }
        return Err(Error::MalformedResponse(
            "response has no return_code".into(),
        ));
    }
    let sign = fields
        .get("sign")
        .ok_or_else(|| Error::MalformedResponse("SUCCESS response is not signed".into()))?;
    let expected = sign_v2(&fields, signer.key, signer.sign_type);
    if !signatures_match(expected.signature(), sign) {
        return Err(Error::MalformedResponse(
            "response signature does not match (forged, or a different API key)".into(),
        ));
    }
    if text("result_code") != "SUCCESS" {
        return Err(Error::Rejected {
            code: truncate(text("err_code")),
            message: truncate(text("err_code_des")),
            http_status: None,
        });
    }
    Ok(fields)
}

/// The answer's `field`, required.
pub fn required(fields: &Fields, field: &str) -> Result<String> {
    fields
        .get(field)
        .filter(|v| !v.is_empty())
        .cloned()
        .ok_or_else(|| Error::MalformedResponse(format!("response has no {field}")))
}

fn optional(fields: &Fields, field: &str) -> Option<String> {
    fields.get(field).filter(|v| !v.is_empty()).cloned()
}

fn fen(fields: &Fields, field: &str) -> Result<u32> {
    let text = required(fields, field)?;
    text.parse::<u32>()
        .ok()
        .filter(|f| *f > 0 && !text.starts_with('0'))
        .ok_or_else(|| Error::MalformedResponse(format!("{field} is not a positive integer")))
}

fn truncate(text: &str) -> String {
    text.chars().take(256).collect()
}

/// The `prepay_id` of a verified `unifiedorder` answer.
pub fn prepay_id(fields: &Fields) -> Result<String> {
    let id = required(fields, "prepay_id")?;
    if id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(Error::MalformedResponse(
            "prepay_id has unexpected characters".into(),
        ));
    }
    Ok(id)
}

/// The order status of a verified `orderquery` answer.
pub fn order_status(fields: &Fields) -> Result<OrderStatus> {
    let trade_state = TradeState::parse(&required(fields, "trade_state")?);
    Ok(OrderStatus {
        out_trade_no: required(fields, "out_trade_no")?,
        transaction_id: optional(fields, "transaction_id"),
        total_fee: match fields.get("total_fee") {
            Some(_) => Some(fen(fields, "total_fee")?),
            None => None,
        },
        time_end: optional(fields, "time_end"),
        trade_state_desc: optional(fields, "trade_state_desc"),
        trade_state,
    })
}

/// The receipt of a verified `refund` answer.
pub fn refund_receipt(fields: &Fields) -> Result<RefundReceipt> {
    Ok(RefundReceipt {
        out_refund_no: required(fields, "out_refund_no")?,
        refund_id: required(fields, "refund_id")?,
        refund_fee: fen(fields, "refund_fee")?,
    })
}

/// The refunds of a verified `refundquery` answer (`refund_count` numbered
/// groups `out_refund_no_$n`, `refund_id_$n`, `refund_fee_$n`, `refund_status_$n`).
pub fn refund_statuses(fields: &Fields) -> Result<Vec<RefundStatus>> {
    let count: usize = required(fields, "refund_count")?
        .parse()
        .ok()
        .filter(|n| *n <= 50)
        .ok_or_else(|| Error::MalformedResponse("refund_count is not a number up to 50".into()))?;
    (0..count)
        .map(|n| {
            Ok(RefundStatus {
                out_refund_no: required(fields, &format!("out_refund_no_{n}"))?,
                refund_id: required(fields, &format!("refund_id_{n}"))?,
                refund_fee: fen(fields, &format!("refund_fee_{n}"))?,
                refund_status: required(fields, &format!("refund_status_{n}"))?,
            })
        })
        .collect()
}

/// The app's parameters for `prepay_id`, signed with the merchant's
/// algorithm: `appid, noncestr, package, partnerid, prepayid, timestamp`.
pub fn app_params(
    merchant: &V2Merchant,
    signer: &Signer<'_>,
    order: &Order,
    prepay_id: &str,
    now: u64,
    nonce: &str,
) -> PayParams {
    let mut params = PayParams::unsigned(
        &merchant.appid,
        &merchant.mch_id,
        prepay_id,
        order,
        now,
        nonce,
    );
    params.sign = sign_v2(&params.signed_fields(), signer.key, signer.sign_type).into_signature();
    params
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MAX_REFUND_DESC_CHARS;
    use crate::test_vectors::v2_merchant as merchant;
    use crate::util::money::Fen;

    fn respond(pairs: &[(&str, &str)], m: &V2Merchant) -> HttpResponse {
        let mut f: Fields = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let sign = sign_v2(&f, &m.api_key, m.sign_type).into_signature();
        f.insert("sign".into(), sign);
        HttpResponse::new(
            200,
            xml::write(f.iter().map(|(k, v)| (k.as_str(), v.as_str()))).into_bytes(),
        )
    }

    #[test]
    fn requests_are_signed_xml_with_sign_type_when_not_md5() {
        let base = Url::parse("https://api.mch.weixin.qq.com").expect("url");
        for sign_type in [SignType::Md5, SignType::HmacSha256] {
            let m = merchant(sign_type);
            let signer = Signer {
                key: &m.api_key,
                sign_type,
            };
            let req = request(&base, ORDERQUERY, false, base_fields(&m, "n"), &signer);
            assert_eq!(
                req.url.as_str(),
                "https://api.mch.weixin.qq.com/pay/orderquery"
            );
            let sent = xml::parse(&req.body).expect("xml");
            assert_eq!(
                sent.contains_key("sign_type"),
                sign_type == SignType::HmacSha256
            );
            let expected = sign_v2(&sent, &m.api_key, sign_type);
            assert_eq!(sent["sign"], expected.signature());
        }
        let m = merchant(SignType::Md5);
        let signer = Signer {
            key: &m.api_key,
            sign_type: SignType::Md5,
        };
        let sandboxed = request(&base, UNIFIEDORDER, true, base_fields(&m, "n"), &signer);
        assert_eq!(sandboxed.url.path(), "/sandboxnew/pay/unifiedorder");
    }

    #[test]
    fn responses_are_verified_before_they_are_believed() {
        let m = merchant(SignType::HmacSha256);
        let signer = Signer {
            key: &m.api_key,
            sign_type: m.sign_type,
        };
        let good = respond(
            &[
                ("return_code", "SUCCESS"),
                ("result_code", "SUCCESS"),
                ("prepay_id", "wx201410272009395522657a690389285100"),
                ("extra", "x"),
            ],
            &m,
        );
        let fields = parse_response(&good, &signer).expect("verified");
        assert_eq!(
            prepay_id(&fields).expect("id"),
            "wx201410272009395522657a690389285100"
        );

        // Signed with another key: forged.
        let forged = respond(
            &[
                ("return_code", "SUCCESS"),
                ("result_code", "SUCCESS"),
                ("prepay_id", "x"),
            ],
            &merchant(SignType::Md5),
        );
        assert!(matches!(
            parse_response(&forged, &signer),
            Err(Error::MalformedResponse(_))
        ));

        // Unsigned SUCCESS: forged.
        let unsigned = HttpResponse::new(
            200,
            xml::write([("return_code", "SUCCESS"), ("result_code", "SUCCESS")]).into_bytes(),
        );
        assert!(matches!(
            parse_response(&unsigned, &signer),
            Err(Error::MalformedResponse(_))
        ));

        // FAIL answers carry their message and need no signature.
        let fail = HttpResponse::new(
            200,
            xml::write([("return_code", "FAIL"), ("return_msg", "签名错误")]).into_bytes(),
        );
        assert_eq!(
            parse_response(&fail, &signer),
            Err(Error::Rejected {
                code: "FAIL".into(),
                message: "签名错误".into(),
                http_status: None,
            })
        );

        let business = respond(
            &[
                ("return_code", "SUCCESS"),
                ("result_code", "FAIL"),
                ("err_code", "ORDERPAID"),
                ("err_code_des", "该订单已支付"),
            ],
            &m,
        );
        let err = parse_response(&business, &signer).expect_err("business error");
        assert_eq!(err.code(), Some("ORDERPAID"));
        assert_eq!(
            parse_response(&HttpResponse::new(502, Vec::new()), &signer),
            Err(Error::HttpStatus { status: 502 })
        );
    }

    #[test]
    fn order_status_and_refunds_are_typed() {
        let m = merchant(SignType::Md5);
        let signer = Signer {
            key: &m.api_key,
            sign_type: m.sign_type,
        };
        let answer = respond(
            &[
                ("return_code", "SUCCESS"),
                ("result_code", "SUCCESS"),
                ("trade_state", "SUCCESS"),
                ("out_trade_no", "A1"),
                ("transaction_id", "42"),
                ("total_fee", "29"),
                ("time_end", "20141030133525"),
            ],
            &m,
        );
        let status = order_status(&parse_response(&answer, &signer).expect("ok")).expect("status");
        assert_eq!(status.trade_state, TradeState::Success);
        assert_eq!(status.total_fee, Some(29));
        assert_eq!(
            TradeState::parse("NEWSTATE"),
            TradeState::Other("NEWSTATE".into())
        );

        let refunds = respond(
            &[
                ("return_code", "SUCCESS"),
                ("result_code", "SUCCESS"),
                ("refund_count", "2"),
                ("out_refund_no_0", "R1"),
                ("refund_id_0", "1"),
                ("refund_fee_0", "10"),
                ("refund_status_0", "SUCCESS"),
                ("out_refund_no_1", "R2"),
                ("refund_id_1", "2"),
                ("refund_fee_1", "19"),
                ("refund_status_1", "PROCESSING"),
            ],
            &m,
        );
        let list = refund_statuses(&parse_response(&refunds, &signer).expect("ok")).expect("list");
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].refund_status, "PROCESSING");
    }

    #[test]
    fn refund_amounts_are_checked_before_sending() {
        let m = merchant(SignType::Md5);
        let mut r = RefundRequest {
            order: OrderRef::OutTradeNo("A1".into()),
            out_refund_no: "R1".into(),
            total_fee: 29,
            refund_fee: 30,
            refund_desc: None,
        };
        assert!(refund_fields(&m, &r, "n").is_err());
        r.refund_fee = 0;
        assert!(refund_fields(&m, &r, "n").is_err());
        r.refund_fee = 29;
        let f = refund_fields(&m, &r, "n").expect("valid");
        assert_eq!(f["refund_fee"], "29");
        // The payment URL is never a refund's: without a refund URL, none.
        assert!(!f.contains_key("notify_url"), "{f:?}");
        let with_url = V2Merchant {
            refund_notify_url: Some("https://example.com/refunds".into()),
            ..m.clone()
        };
        let f = refund_fields(&with_url, &r, "n").expect("valid");
        assert_eq!(f["notify_url"], "https://example.com/refunds");
        r.out_refund_no = "bad no".into();
        assert!(refund_fields(&m, &r, "n").is_err());
    }

    #[test]
    fn refund_orders_and_descriptions_are_checked_before_sending() {
        let m = merchant(SignType::Md5);
        let mut r = RefundRequest {
            order: OrderRef::OutTradeNo("A1".into()),
            out_refund_no: "R1".into(),
            total_fee: 29,
            refund_fee: 29,
            refund_desc: Some("退".repeat(MAX_REFUND_DESC_CHARS)),
        };
        assert!(refund_fields(&m, &r, "n").is_ok());
        r.refund_desc = Some("退".repeat(MAX_REFUND_DESC_CHARS + 1));
        let err = refund_fields(&m, &r, "n").expect_err("too long");
        assert!(err.to_string().contains("refund_desc"), "{err}");
        r.refund_desc = None;
        r.order = OrderRef::TransactionId("42/../close".into());
        let err = refund_fields(&m, &r, "n").expect_err("not an id");
        assert!(err.to_string().contains("transaction_id"), "{err}");
    }

    #[test]
    fn order_references_are_checked() {
        assert_eq!(
            OrderRef::out_trade_no("A1-x_y|z*@9").map(|o| o.field().1.to_owned()),
            Ok("A1-x_y|z*@9".to_owned())
        );
        assert!(OrderRef::transaction_id("4".repeat(32)).is_ok());
        for bad in ["", "a b", "a/b", "单号", "a\0b", &"1".repeat(33)] {
            assert!(
                matches!(OrderRef::out_trade_no(bad), Err(Error::InvalidArgument(_))),
                "{bad:?}"
            );
            assert!(
                OrderRef::TransactionId(bad.into()).validate().is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn app_params_use_the_merchant_algorithm() {
        let order = Order::new("A1", Fen::new(29).expect("fen"), "b", "1.2.3.4").expect("order");
        for sign_type in [SignType::Md5, SignType::HmacSha256] {
            let m = merchant(sign_type);
            let signer = Signer {
                key: &m.api_key,
                sign_type,
            };
            let p = app_params(&m, &signer, &order, "wx2014", 1_414_411_779, "n");
            assert_eq!(p.partnerid, "10000100");
            assert_eq!(p.package, "Sign=WXPay");
            let f: Fields = [
                ("appid", p.appid.as_str()),
                ("noncestr", "n"),
                ("package", "Sign=WXPay"),
                ("partnerid", "10000100"),
                ("prepayid", "wx2014"),
                ("timestamp", "1414411779"),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
            assert_eq!(p.sign, sign_v2(&f, &m.api_key, sign_type).signature());
        }
    }
}
