//! An order to pay: what the merchant's server knows when the app asks to pay.
//!
//! An [`Order`] is valid by construction: every field is checked when it is
//! built, from JSON, from [`OrderFields`] or from Rust, so a bad amount or id
//! fails before any network call, with an error naming the field.
//! [`OrderFields`] is the order as given, before those checks: a JSON
//! document is read into it, and it is the bindings' `Order` record.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::util::money::Fen;

/// How long an order stays payable when the order says nothing.
pub const DEFAULT_EXPIRE_MINUTES: u32 = 20;

/// The range of `expire_minutes` the library accepts (5 minutes to 7 days).
pub const EXPIRE_MINUTES_RANGE: std::ops::RangeInclusive<u32> = 5..=10_080;

/// A validated order.
///
/// In JSON, the amount is exactly one of `total_fee` (an integer of fen) or
/// `total_yuan` (a decimal string of yuan with at most two decimals):
///
/// ```json
/// {"out_trade_no": "A1001", "total_yuan": "19.99", "body": "支付测试",
///  "client_ip": "196.168.1.1", "attach": "x", "expire_minutes": 30}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Map<String, Value>", into = "OrderFields")]
pub struct Order {
    out_trade_no: String,
    total_fee: Fen,
    body: String,
    client_ip: Ipv4Addr,
    attach: Option<String>,
    expire_minutes: u32,
    traceid: Option<String>,
}

impl Order {
    /// An order with the required fields; see [`Order::with_attach`] and the
    /// other `with_` methods for the optional ones.
    pub fn new(out_trade_no: &str, total_fee: Fen, body: &str, client_ip: &str) -> Result<Order> {
        check_out_trade_no(out_trade_no)?;
        check_body(body)?;
        Ok(Order {
            out_trade_no: out_trade_no.to_owned(),
            total_fee,
            body: body.to_owned(),
            client_ip: parse_client_ip(client_ip)?,
            attach: None,
            expire_minutes: DEFAULT_EXPIRE_MINUTES,
            traceid: None,
        })
    }

    /// Parses and validates a JSON order.
    pub fn from_json(json: &str) -> Result<Order> {
        let map = crate::util::json::unique_object(json, "order", |reason| {
            Error::order("order", reason)
        })?;
        Order::try_from(map)
    }

    /// Sets `attach`, the merchant's data echoed in the notification (at most 127 bytes).
    pub fn with_attach(mut self, attach: &str) -> Result<Order> {
        check_text("attach", attach, 127)?;
        self.attach = Some(attach.to_owned());
        Ok(self)
    }

    /// Sets how many minutes the order stays payable (5 to 10080).
    pub fn with_expire_minutes(mut self, minutes: u32) -> Result<Order> {
        if !EXPIRE_MINUTES_RANGE.contains(&minutes) {
            return Err(Error::order(
                "expire_minutes",
                format!(
                    "must be between {} and {}",
                    EXPIRE_MINUTES_RANGE.start(),
                    EXPIRE_MINUTES_RANGE.end()
                ),
            ));
        }
        self.expire_minutes = minutes;
        Ok(self)
    }

    /// Sets the `traceid` sent with `genprepay` (printable ASCII, 1 to 64 characters).
    pub fn with_traceid(mut self, traceid: &str) -> Result<Order> {
        if traceid.is_empty()
            || traceid.len() > 64
            || !traceid.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(Error::order(
                "traceid",
                "must be 1 to 64 printable ASCII characters",
            ));
        }
        self.traceid = Some(traceid.to_owned());
        Ok(self)
    }

    /// The merchant's trade number.
    pub fn out_trade_no(&self) -> &str {
        &self.out_trade_no
    }

    /// The amount.
    pub fn total_fee(&self) -> Fen {
        self.total_fee
    }

    /// The product description.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The paying phone's IPv4 address.
    pub fn client_ip(&self) -> Ipv4Addr {
        self.client_ip
    }

    /// The merchant's attached data, if any.
    pub fn attach(&self) -> Option<&str> {
        self.attach.as_deref()
    }

    /// Minutes the order stays payable.
    pub fn expire_minutes(&self) -> u32 {
        self.expire_minutes
    }

    /// The `traceid`: the one set, else the `out_trade_no`.
    pub fn traceid(&self) -> &str {
        self.traceid.as_deref().unwrap_or(&self.out_trade_no)
    }
}

/// An order to pay, as the merchant gives it: its fields before they are
/// checked. `build_pay_params` checks every field before any network call;
/// an error names the field at fault.
///
/// The amount is exactly one of `total_fee` (integer fen) or `total_yuan` (a
/// decimal string of yuan with at most two decimals, e.g. `"19.99"`); there
/// is no floating point anywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record), uniffi(name = "Order"))]
pub struct OrderFields {
    /// The merchant's trade number (1 to 32 of `A-Z a-z 0-9 _ - | * @`).
    pub out_trade_no: String,
    /// The amount in fen, or `None` when `total_yuan` is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub total_fee: Option<u32>,
    /// The amount as a decimal string of yuan, or `None` when `total_fee` is
    /// given.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub total_yuan: Option<String>,
    /// The product description (at most 128 bytes of UTF-8).
    pub body: String,
    /// The paying phone's IPv4 address, dotted decimal.
    pub client_ip: String,
    /// Merchant data echoed in the payment notification (at most 127 bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub attach: Option<String>,
    /// How long the order stays payable, 5 to 10080 minutes; default 20.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub expire_minutes: Option<u32>,
    /// The `traceid` sent with the 2014 flow's `genprepay` (1 to 64
    /// printable ASCII characters); default the `out_trade_no`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub traceid: Option<String>,
}

impl TryFrom<OrderFields> for Order {
    type Error = Error;

    /// Checks every field, the amount first; the error names the first
    /// field at fault.
    fn try_from(fields: OrderFields) -> Result<Order> {
        let total_fee = amount(fields.total_fee, fields.total_yuan)?;
        let mut order = Order::new(
            &fields.out_trade_no,
            total_fee,
            &fields.body,
            &fields.client_ip,
        )?;
        if let Some(attach) = &fields.attach {
            order = order.with_attach(attach)?;
        }
        if let Some(traceid) = &fields.traceid {
            order = order.with_traceid(traceid)?;
        }
        if let Some(minutes) = fields.expire_minutes {
            order = order.with_expire_minutes(minutes)?;
        }
        Ok(order)
    }
}

/// The amount of an order given as exactly one of fen and yuan.
fn amount(total_fee: Option<u32>, total_yuan: Option<String>) -> Result<Fen> {
    match (total_fee, total_yuan) {
        (Some(fen), None) => {
            Fen::new(i64::from(fen)).map_err(|e| Error::order("total_fee", e.to_string()))
        }
        (None, Some(yuan)) => {
            Fen::from_yuan_str(&yuan).map_err(|e| Error::order("total_yuan", e.to_string()))
        }
        (Some(_), Some(_)) => Err(Error::order(
            "total_fee",
            "give exactly one of total_fee (fen) and total_yuan, not both",
        )),
        (None, None) => Err(Error::order(
            "total_fee",
            "is missing: give total_fee (integer fen) or total_yuan (decimal string)",
        )),
    }
}

impl From<Order> for OrderFields {
    /// The order's fields, the amount in fen (the shape an `Order`
    /// serializes to).
    fn from(o: Order) -> OrderFields {
        OrderFields {
            out_trade_no: o.out_trade_no,
            total_fee: Some(o.total_fee.get()),
            total_yuan: None,
            body: o.body,
            client_ip: o.client_ip.to_string(),
            attach: o.attach,
            expire_minutes: Some(o.expire_minutes),
            traceid: o.traceid,
        }
    }
}

const ORDER_KEYS: [&str; 8] = [
    "out_trade_no",
    "total_fee",
    "total_yuan",
    "body",
    "client_ip",
    "attach",
    "expire_minutes",
    "traceid",
];

impl TryFrom<Map<String, Value>> for Order {
    type Error = Error;

    /// Reads a JSON order into [`OrderFields`], refusing unknown keys and
    /// values of the wrong JSON type, then checks it as those are checked.
    fn try_from(mut map: Map<String, Value>) -> Result<Order> {
        if let Some(unknown) = map.keys().find(|k| !ORDER_KEYS.contains(&k.as_str())) {
            let shown: String = unknown.chars().take(40).collect();
            return Err(Error::order(&shown, "is not an order field"));
        }
        let total_fee = map.remove("total_fee").map(fen_from_json).transpose()?;
        let total_yuan = map.remove("total_yuan").map(yuan_from_json).transpose()?;
        let mut required = |field: &str| {
            take_string(&mut map, field)?.ok_or_else(|| Error::order(field, "is missing"))
        };
        let (out_trade_no, body, client_ip) = (
            required("out_trade_no")?,
            required("body")?,
            required("client_ip")?,
        );
        let expire_minutes = match map.remove("expire_minutes") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(
                n.as_u64()
                    .and_then(|m| u32::try_from(m).ok())
                    .ok_or_else(|| {
                        Error::order("expire_minutes", "must be a whole number of minutes")
                    })?,
            ),
            Some(_) => return Err(Error::order("expire_minutes", "must be a JSON integer")),
        };
        Order::try_from(OrderFields {
            out_trade_no,
            total_fee: total_fee.map(Fen::get),
            total_yuan,
            body,
            client_ip,
            attach: take_string(&mut map, "attach")?,
            expire_minutes,
            traceid: take_string(&mut map, "traceid")?,
        })
    }
}

fn take_string(map: &mut Map<String, Value>, field: &str) -> Result<Option<String>> {
    match map.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Error::order(field, "must be a JSON string")),
    }
}

fn fen_from_json(value: Value) -> Result<Fen> {
    let field = "total_fee";
    match value {
        Value::Number(n) => {
            let fen = if let Some(u) = n.as_u64() {
                i64::try_from(u).unwrap_or(i64::MAX)
            } else if let Some(i) = n.as_i64() {
                i
            } else {
                return Err(Error::order(
                    field,
                    format!("must be an integer number of fen (got {n}); for yuan use total_yuan with a decimal string"),
                ));
            };
            Fen::new(fen).map_err(|e| Error::order(field, e.to_string()))
        }
        Value::String(_) => Err(Error::order(
            field,
            "must be a JSON integer of fen, not a string; for a decimal string of yuan use total_yuan",
        )),
        _ => Err(Error::order(field, "must be a JSON integer of fen")),
    }
}

/// The text of `total_yuan`; [`Fen::from_yuan_str`] reads it.
fn yuan_from_json(value: Value) -> Result<String> {
    let field = "total_yuan";
    match value {
        Value::String(text) => Ok(text),
        Value::Number(_) => Err(Error::order(
            field,
            "must be a decimal string like \"19.99\", not a JSON number (JSON numbers become binary floating point in most hosts)",
        )),
        _ => Err(Error::order(field, "must be a decimal string like \"19.99\"")),
    }
}

/// Whether `id` may be an `out_trade_no` or a `transaction_id`: 1 to 32
/// characters of A-Z a-z 0-9 _ - | * @.
pub(crate) fn is_trade_id(id: &str) -> bool {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"_-|*@".contains(&b);
    !id.is_empty() && id.len() <= 32 && id.bytes().all(allowed)
}

fn check_out_trade_no(no: &str) -> Result<()> {
    if !is_trade_id(no) {
        return Err(Error::order(
            "out_trade_no",
            "must be 1 to 32 characters of A-Z a-z 0-9 _ - | * @",
        ));
    }
    Ok(())
}

fn check_body(body: &str) -> Result<()> {
    if body.is_empty() {
        return Err(Error::order("body", "must not be empty"));
    }
    check_text("body", body, 128)
}

fn check_text(field: &str, text: &str, max_bytes: usize) -> Result<()> {
    if text.len() > max_bytes {
        return Err(Error::order(
            field,
            format!(
                "is {} bytes in UTF-8; at most {max_bytes} are allowed",
                text.len()
            ),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(Error::order(field, "must not contain control characters"));
    }
    Ok(())
}

fn parse_client_ip(ip: &str) -> Result<Ipv4Addr> {
    ip.parse::<Ipv4Addr>().map_err(|_| {
        Error::order(
            "client_ip",
            "must be the paying phone's IPv4 address in dotted decimal (e.g. 196.168.1.1)",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(result: Result<Order>) -> String {
        match result {
            Err(Error::InvalidOrder { field, .. }) => field,
            other => panic!("expected an invalid-order error, got {other:?}"),
        }
    }

    fn with_amount(amount: &str) -> String {
        format!(r#"{{"out_trade_no":"A1","body":"b","client_ip":"1.2.3.4",{amount}}}"#)
    }

    #[test]
    fn amounts_from_json() {
        let fen = |a: &str| Order::from_json(&with_amount(a)).map(|o| o.total_fee().get());
        assert_eq!(fen(r#""total_fee":1"#).ok(), Some(1));
        assert_eq!(fen(r#""total_yuan":"0.29""#).ok(), Some(29));
        assert_eq!(fen(r#""total_yuan":"19.99""#).ok(), Some(1999));
        for (bad, field) in [
            (r#""total_fee":0"#, "total_fee"),
            (r#""total_fee":-1"#, "total_fee"),
            (r#""total_fee":1e2"#, "total_fee"),
            (r#""total_fee":1.5"#, "total_fee"),
            (r#""total_fee":"100""#, "total_fee"),
            (r#""total_fee":99999999999999999999"#, "total_fee"),
            (r#""total_fee":2147483648"#, "total_fee"),
            (r#""total_yuan":"NaN""#, "total_yuan"),
            (r#""total_yuan":"1e2""#, "total_yuan"),
            (r#""total_yuan":"0.001""#, "total_yuan"),
            (r#""total_yuan":"""#, "total_yuan"),
            (r#""total_yuan":"0""#, "total_yuan"),
            (r#""total_yuan":"-1""#, "total_yuan"),
            (r#""total_yuan":0.29"#, "total_yuan"),
            (r#""total_fee":1,"total_yuan":"0.01""#, "total_fee"),
            (r#""attach":"x""#, "total_fee"),
        ] {
            assert_eq!(
                field_of(Order::from_json(&with_amount(bad))),
                field,
                "{bad}"
            );
        }
    }

    #[test]
    fn fields_are_checked() {
        let cases = [
            (
                r#"{"out_trade_no":"","total_fee":1,"body":"b","client_ip":"1.2.3.4"}"#,
                "out_trade_no",
            ),
            (
                r#"{"out_trade_no":"012345678901234567890123456789012","total_fee":1,"body":"b","client_ip":"1.2.3.4"}"#,
                "out_trade_no",
            ),
            (
                r#"{"out_trade_no":"a b","total_fee":1,"body":"b","client_ip":"1.2.3.4"}"#,
                "out_trade_no",
            ),
            (
                r#"{"total_fee":1,"body":"b","client_ip":"1.2.3.4"}"#,
                "out_trade_no",
            ),
            (
                r#"{"out_trade_no":"A","total_fee":1,"body":"","client_ip":"1.2.3.4"}"#,
                "body",
            ),
            (
                r#"{"out_trade_no":"A","total_fee":1,"body":5,"client_ip":"1.2.3.4"}"#,
                "body",
            ),
            (
                r#"{"out_trade_no":"A","total_fee":1,"body":"b","client_ip":"::1"}"#,
                "client_ip",
            ),
            (
                r#"{"out_trade_no":"A","total_fee":1,"body":"b","client_ip":"1.2.3.256"}"#,
                "client_ip",
            ),
            (
                r#"{"out_trade_no":"A","total_fee":1,"body":"b","client_ip":"1.2.3.4","expire_minutes":1}"#,
                "expire_minutes",
            ),
            (
                r#"{"out_trade_no":"A","total_fee":1,"body":"b","client_ip":"1.2.3.4","expire_minutes":"20"}"#,
                "expire_minutes",
            ),
            (
                r#"{"out_trade_no":"A","total_fee":1,"body":"b","client_ip":"1.2.3.4","price":1}"#,
                "price",
            ),
            (r#"[1]"#, "order"),
            (
                r#"{"out_trade_no":"A","total_fee":1,"total_fee":100000,"body":"b","client_ip":"1.2.3.4"}"#,
                "order",
            ),
        ];
        for (json, field) in cases {
            assert_eq!(field_of(Order::from_json(json)), field, "{json}");
        }
        let long_body = format!(
            r#"{{"out_trade_no":"A","total_fee":1,"body":"{}","client_ip":"1.2.3.4"}}"#,
            "支".repeat(43)
        );
        assert_eq!(field_of(Order::from_json(&long_body)), "body");
        assert!(matches!(
            Order::from_json("{"),
            Err(Error::InvalidJson {
                document: "order",
                ..
            })
        ));
    }

    fn fields(total_fee: Option<u32>, total_yuan: Option<&str>) -> OrderFields {
        OrderFields {
            out_trade_no: "A1".into(),
            total_fee,
            total_yuan: total_yuan.map(str::to_owned),
            body: "b".into(),
            client_ip: "1.2.3.4".into(),
            attach: None,
            expire_minutes: None,
            traceid: None,
        }
    }

    #[test]
    fn fields_are_checked_like_json() {
        let order = Order::try_from(fields(None, Some("19.99"))).expect("valid");
        assert_eq!(order.total_fee().get(), 1999);
        assert_eq!(order.expire_minutes(), DEFAULT_EXPIRE_MINUTES);
        assert_eq!(order.traceid(), "A1");
        let full = Order::try_from(OrderFields {
            attach: Some("a".into()),
            expire_minutes: Some(30),
            traceid: Some("T-1".into()),
            ..fields(Some(7), None)
        })
        .expect("valid");
        assert_eq!(
            (full.total_fee().get(), full.attach(), full.expire_minutes()),
            (7, Some("a"), 30)
        );
        assert_eq!(
            OrderFields::from(full),
            OrderFields {
                attach: Some("a".into()),
                expire_minutes: Some(30),
                traceid: Some("T-1".into()),
                ..fields(Some(7), None)
            }
        );
        for (fee, yuan, field) in [
            (None, Some("0.001"), "total_yuan"),
            (None, Some("0"), "total_yuan"),
            (Some(0), None, "total_fee"),
            (Some(1 << 31), None, "total_fee"),
            (None, None, "total_fee"),
            (Some(1), Some("0.01"), "total_fee"),
        ] {
            assert_eq!(
                field_of(Order::try_from(fields(fee, yuan))),
                field,
                "{fee:?} {yuan:?}"
            );
        }
        let bad = |change: fn(&mut OrderFields)| {
            let mut f = fields(Some(1), None);
            change(&mut f);
            field_of(Order::try_from(f))
        };
        assert_eq!(bad(|f| f.client_ip = "::1".into()), "client_ip");
        assert_eq!(bad(|f| f.attach = Some("a\u{1}".into())), "attach");
        assert_eq!(bad(|f| f.expire_minutes = Some(1)), "expire_minutes");
        assert_eq!(bad(|f| f.traceid = Some(String::new())), "traceid");
    }

    #[test]
    fn serde_round_trip_uses_fen() {
        let order =
            Order::from_json(&with_amount(r#""total_yuan":"8.2","attach":"a""#)).expect("valid");
        let json = serde_json::to_string(&order).expect("serializes");
        assert!(json.contains(r#""total_fee":820"#), "{json}");
        let back: Order = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, order);
        assert_eq!(back.traceid(), "A1");
    }
}
