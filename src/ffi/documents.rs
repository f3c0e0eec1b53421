//! The JSON documents the C API reads. The configuration, the order and the
//! signing parameters are the core's own documents; the order reference, the
//! refund and the notification headers are serde structs read strictly here
//! ([`strict`]): JSON syntax first, then one object whose keys are distinct
//! (the core's [`unique_object`]), then no unknown key and no value of the
//! wrong type. Each then becomes the model's type through the model's own
//! constructors and checks. Messages name the argument and the key at
//! fault, never a value.

#![deny(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt;

use serde::de::value::StrDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny};
use serde::de::{MapAccess, Unexpected, Visitor};
use serde::forward_to_deserialize_any;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::crypto::sign::{fields_from_json, Fields};
use crate::error::Error;
use crate::model::{OrderRef, RefundRequest};
use crate::util::json::unique_object;
use crate::{Config, Fen, Order};

/// What a JSON document argument of the C API is read into.
pub(super) trait Document: Sized {
    /// Reads `json`, the argument named `argument`.
    fn from_json(json: &str, argument: &'static str) -> Result<Self, Error>;
}

/// `config_json`, as [`Config::from_json`] reads it.
impl Document for Config {
    fn from_json(json: &str, _: &'static str) -> Result<Config, Error> {
        Config::from_json(json)
    }
}

/// `order_json`, as [`Order::from_json`] reads it.
impl Document for Order {
    fn from_json(json: &str, _: &'static str) -> Result<Order, Error> {
        Order::from_json(json)
    }
}

/// `params_json`, as [`fields_from_json`] reads it.
impl Document for Fields {
    fn from_json(json: &str, _: &'static str) -> Result<Fields, Error> {
        fields_from_json(json)
    }
}

/// `order_ref_json`: `{"out_trade_no": "..."}` or `{"transaction_id": "..."}`.
impl Document for OrderRef {
    fn from_json(json: &str, argument: &'static str) -> Result<OrderRef, Error> {
        strict::<OrderRefDocument>(json, argument)?
            .into_order_ref()
            .map_err(|e| naming(argument, e))
    }
}

/// `refund_json`: the order reference's key, `out_refund_no`, `total_fee`,
/// `refund_fee` and optionally `refund_desc`, checked by
/// [`RefundRequest::validate`].
impl Document for RefundRequest {
    fn from_json(json: &str, argument: &'static str) -> Result<RefundRequest, Error> {
        strict::<RefundDocument>(json, argument)?
            .into_request()
            .map_err(|e| naming(argument, e))
    }
}

/// `headers_json`: a request's headers, `{"Name": "value", ...}`. Names in
/// any case (the core refuses two that differ only in case), values strings.
#[derive(Deserialize)]
#[serde(transparent)]
pub(super) struct Headers(BTreeMap<String, String>);

impl Headers {
    /// The headers as name and value pairs, for the core.
    pub(super) fn into_pairs(self) -> Vec<(String, String)> {
        self.0.into_iter().collect()
    }
}

impl Document for Headers {
    fn from_json(json: &str, argument: &'static str) -> Result<Headers, Error> {
        strict(json, argument)
    }
}

/// The flat order reference. `null` is the same as absent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderRefDocument {
    out_trade_no: Option<String>,
    transaction_id: Option<String>,
}

impl OrderRefDocument {
    /// Exactly one of the two keys, checked by the model's constructor.
    fn into_order_ref(self) -> Result<OrderRef, Error> {
        match (self.out_trade_no, self.transaction_id) {
            (Some(no), None) => OrderRef::out_trade_no(no),
            (None, Some(id)) => OrderRef::transaction_id(id),
            (Some(_), Some(_)) => Err(Error::InvalidArgument(
                "give exactly one of out_trade_no and transaction_id, not both".into(),
            )),
            (None, None) => Err(Error::InvalidArgument(
                "give out_trade_no or transaction_id".into(),
            )),
        }
    }
}

/// The flat refund: [`RefundRequest`] with its order reference's key at the
/// top level.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefundDocument {
    out_trade_no: Option<String>,
    transaction_id: Option<String>,
    out_refund_no: String,
    #[serde(deserialize_with = "fen")]
    total_fee: u32,
    #[serde(deserialize_with = "fen")]
    refund_fee: u32,
    refund_desc: Option<String>,
}

impl RefundDocument {
    fn into_request(self) -> Result<RefundRequest, Error> {
        let order = OrderRefDocument {
            out_trade_no: self.out_trade_no,
            transaction_id: self.transaction_id,
        };
        let request = RefundRequest {
            order: order.into_order_ref()?,
            out_refund_no: self.out_refund_no,
            total_fee: self.total_fee,
            refund_fee: self.refund_fee,
            refund_desc: self.refund_desc,
        };
        request.validate()?;
        Ok(request)
    }
}

/// An amount: a JSON integer of fen from 1 to [`Fen::MAX`] (no float, no
/// string).
fn fen<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    struct FenVisitor;

    impl Visitor<'_> for FenVisitor {
        type Value = u32;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a JSON integer of fen from 1 to {}", Fen::MAX.get())
        }

        fn visit_i64<E: de::Error>(self, fen: i64) -> Result<u32, E> {
            Fen::new(fen)
                .map(Fen::get)
                .map_err(|_| E::invalid_value(Unexpected::Signed(fen), &self))
        }

        fn visit_u64<E: de::Error>(self, fen: u64) -> Result<u32, E> {
            i64::try_from(fen)
                .ok()
                .and_then(|fen| Fen::new(fen).ok())
                .map(Fen::get)
                .ok_or_else(|| E::invalid_value(Unexpected::Unsigned(fen), &self))
        }
    }

    deserializer.deserialize_any(FenVisitor)
}

/// Reads the flat JSON object `json`, the argument `argument`, into `T`: a
/// syntax error is `InvalidJson`; anything else that does not fit `T` is
/// `InvalidArgument`, its message naming the argument and the key.
fn strict<T: DeserializeOwned>(json: &str, argument: &'static str) -> Result<T, Error> {
    // Syntax first, so that broken JSON is reported as such whatever it
    // starts with (`[1,` is not JSON, rather than not an object).
    serde_json::from_str::<IgnoredAny>(json).map_err(|e| Error::InvalidJson {
        document: argument,
        reason: e.to_string(),
    })?;
    let object = unique_object(json, argument, |reason| invalid(argument, reason))?;
    T::deserialize(Flat(object)).map_err(|reason| invalid(argument, reason))
}

fn invalid(argument: &str, reason: impl fmt::Display) -> Error {
    Error::InvalidArgument(format!("{argument}: {reason}"))
}

/// `error` with the argument named, when it is about the argument.
fn naming(argument: &str, error: Error) -> Error {
    match error {
        Error::InvalidArgument(reason) => invalid(argument, reason),
        other => other,
    }
}

/// A key, shortened for a message (it may be anything the caller sent;
/// serde_json escapes it in the error document).
fn shown(key: &str) -> String {
    key.chars().take(40).collect()
}

/// Why a document does not fit its struct, in the C API's words: `KEY must be
/// ...`, `KEY is missing`, `unknown key ...`. The value at fault is never
/// shown.
#[derive(Debug)]
struct Reason(String);

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Reason {}

impl de::Error for Reason {
    fn custom<T: fmt::Display>(message: T) -> Reason {
        Reason(message.to_string())
    }

    fn invalid_type(_: Unexpected<'_>, expected: &dyn de::Expected) -> Reason {
        Reason(format!("must be {expected}"))
    }

    fn invalid_value(_: Unexpected<'_>, expected: &dyn de::Expected) -> Reason {
        Reason(format!("must be {expected}"))
    }

    fn unknown_field(key: &str, keys: &'static [&'static str]) -> Reason {
        Reason(format!(
            "unknown key {:?} (the keys are {})",
            shown(key),
            keys.join(", ")
        ))
    }

    fn missing_field(key: &'static str) -> Reason {
        Reason(format!("{key} is missing"))
    }
}

/// An object with distinct keys, as a deserializer of flat structs and maps.
struct Flat(Map<String, Value>);

impl<'de> Deserializer<'de> for Flat {
    type Error = Reason;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Reason> {
        visitor.visit_map(Entries {
            entries: self.0.into_iter(),
            value: None,
        })
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

/// The entries of a [`Flat`] object; a value's failure names its key.
struct Entries {
    entries: serde_json::map::IntoIter,
    value: Option<(String, Value)>,
}

impl<'de> MapAccess<'de> for Entries {
    type Error = Reason;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Reason> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let read = seed.deserialize(StrDeserializer::<Reason>::new(&key))?;
        self.value = Some((key, value));
        Ok(Some(read))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Reason> {
        let (key, value) = self
            .value
            .take()
            .ok_or_else(|| Reason("a value was read before its key".into()))?;
        seed.deserialize(Scalar(value))
            .map_err(|Reason(reason)| Reason(format!("{} {reason}", shown(&key))))
    }
}

/// A value of a flat object: anything but an array or an object.
struct Scalar(Value);

impl<'de> Deserializer<'de> for Scalar {
    type Error = Reason;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Reason> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => visitor.visit_u64(u),
                (None, Some(i)) => visitor.visit_i64(i),
                (None, None) => visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => visitor.visit_string(s),
            Value::Array(_) => Err(de::Error::invalid_type(Unexpected::Seq, &visitor)),
            Value::Object(_) => Err(de::Error::invalid_type(Unexpected::Map, &visitor)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Reason> {
        if self.0.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind as K;

    fn refused<T: Document>(json: &str, argument: &'static str) -> (K, String) {
        let error = T::from_json(json, argument).err().expect("refused");
        (error.kind(), error.to_string())
    }

    #[test]
    fn order_refs_are_flat_and_strict() {
        let read = |json| OrderRef::from_json(json, "order_ref_json");
        assert_eq!(
            read(r#"{"out_trade_no":"A1"}"#).expect("valid"),
            OrderRef::OutTradeNo("A1".into())
        );
        assert_eq!(
            read(r#"{"transaction_id":"4200","out_trade_no":null}"#).expect("valid"),
            OrderRef::TransactionId("4200".into())
        );
        let long = format!(r#"{{"out_trade_no":"{}"}}"#, "A".repeat(33));
        for (json, kind, needle) in [
            ("{", K::InvalidJson, "invalid JSON in order_ref_json"),
            ("[1,", K::InvalidJson, "order_ref_json"),
            ("{} x", K::InvalidJson, "order_ref_json"),
            ("[]", K::InvalidArgument, "JSON object"),
            ("\"A1\"", K::InvalidArgument, "JSON object"),
            (
                "{}",
                K::InvalidArgument,
                "give out_trade_no or transaction_id",
            ),
            (
                r#"{"out_trade_no":"A1","transaction_id":"4200"}"#,
                K::InvalidArgument,
                "not both",
            ),
            (
                r#"{"out_trade_no":5}"#,
                K::InvalidArgument,
                "order_ref_json: out_trade_no must be a string",
            ),
            (
                r#"{"transaction_id":{}}"#,
                K::InvalidArgument,
                "transaction_id must be a string",
            ),
            (
                r#"{"out_trade_no":""}"#,
                K::InvalidArgument,
                "characters of",
            ),
            (
                r#"{"out_trade_no":"A 1"}"#,
                K::InvalidArgument,
                "characters of",
            ),
            (&long, K::InvalidArgument, "characters of"),
            (
                r#"{"out_trade_no":"A1","x":1}"#,
                K::InvalidArgument,
                r#"unknown key "x" (the keys are out_trade_no, transaction_id)"#,
            ),
            (
                r#"{"out_trade_no":"A1","out_trade_no":"A2"}"#,
                K::InvalidArgument,
                "more than once",
            ),
            // serde's enum form is not the C API's.
            (r#"{"OutTradeNo":"A1"}"#, K::InvalidArgument, "unknown key"),
        ] {
            let (got, message) = refused::<OrderRef>(json, "order_ref_json");
            assert_eq!(got, kind, "{json}");
            assert!(message.contains(needle), "{json}: {message}");
        }
    }

    #[test]
    fn refunds_are_flat_and_strict() {
        let read = |json| RefundRequest::from_json(json, "refund_json");
        let refund = read(
            r#"{"transaction_id":"4200","out_refund_no":"R1","total_fee":1999,"refund_fee":999,"refund_desc":"half"}"#,
        )
        .expect("valid");
        assert_eq!(
            refund,
            RefundRequest {
                order: OrderRef::TransactionId("4200".into()),
                out_refund_no: "R1".into(),
                total_fee: 1999,
                refund_fee: 999,
                refund_desc: Some("half".into()),
            }
        );
        let minimal =
            read(r#"{"out_trade_no":"A1","out_refund_no":"R1","total_fee":1,"refund_fee":1}"#)
                .expect("valid");
        assert_eq!(minimal.refund_desc, None);
        const BASE: &str = r#""out_trade_no":"A1","out_refund_no":"R1""#;
        const AMOUNT: &str = "total_fee must be a JSON integer of fen from 1 to 2147483647";
        for (rest, needle) in [
            (r#""total_fee":1"#, "refund_json: refund_fee is missing"),
            (r#""refund_fee":1"#, "refund_json: total_fee is missing"),
            (r#""total_fee":0,"refund_fee":1"#, AMOUNT),
            (r#""total_fee":-1,"refund_fee":1"#, AMOUNT),
            (r#""total_fee":1.5,"refund_fee":1"#, AMOUNT),
            (r#""total_fee":1e2,"refund_fee":1"#, AMOUNT),
            (r#""total_fee":"100","refund_fee":1"#, AMOUNT),
            (r#""total_fee":null,"refund_fee":1"#, AMOUNT),
            (r#""total_fee":2147483648,"refund_fee":1"#, AMOUNT),
            (r#""total_fee":18446744073709551616,"refund_fee":1"#, AMOUNT),
            (r#""total_fee":1,"refund_fee":2"#, "larger than total_fee"),
            (
                r#""total_fee":1,"refund_fee":1,"refund_desc":5"#,
                "refund_desc must be a string",
            ),
            (
                r#""total_fee":1,"refund_fee":1,"refund_fee":100"#,
                "more than once",
            ),
            (
                r#""total_fee":1,"refund_fee":1,"amount":1"#,
                "unknown key \"amount\"",
            ),
        ] {
            let json = format!("{{{BASE},{rest}}}");
            let (kind, message) = refused::<RefundRequest>(&json, "refund_json");
            assert_eq!(kind, K::InvalidArgument, "{json}");
            assert!(message.contains(needle), "{json}: {message}");
        }
        for (json, needle) in [
            (
                r#"{"out_trade_no":"A1","total_fee":1,"refund_fee":1}"#,
                "out_refund_no is missing",
            ),
            (
                r#"{"out_trade_no":"A1","out_refund_no":"R 1","total_fee":1,"refund_fee":1}"#,
                "out_refund_no must be 1 to 64 characters",
            ),
            (
                r#"{"out_refund_no":"R1","total_fee":1,"refund_fee":1}"#,
                "give out_trade_no or transaction_id",
            ),
        ] {
            let (kind, message) = refused::<RefundRequest>(json, "refund_json");
            assert_eq!(kind, K::InvalidArgument, "{json}");
            assert!(message.contains(needle), "{json}: {message}");
        }
    }

    #[test]
    fn headers_are_a_flat_object_of_strings() {
        let headers = Headers::from_json(r#"{"content-type":"a/b","Wechatpay-Nonce":"n"}"#, "h")
            .expect("flat strings")
            .into_pairs();
        assert_eq!(
            headers,
            [
                ("Wechatpay-Nonce".to_owned(), "n".to_owned()),
                ("content-type".to_owned(), "a/b".to_owned())
            ]
        );
        for (json, kind, needle) in [
            (r#"{"a":"#, K::InvalidJson, "headers_json"),
            (r#"[["a","b"]]"#, K::InvalidArgument, "headers_json: "),
            (
                r#"{"a":1}"#,
                K::InvalidArgument,
                "headers_json: a must be a string",
            ),
            (r#"{"a":null}"#, K::InvalidArgument, "a must be a string"),
            (
                r#"{"a":{"b":"c"}}"#,
                K::InvalidArgument,
                "a must be a string",
            ),
            (r#"{"a":"x","a":"y"}"#, K::InvalidArgument, "more than once"),
        ] {
            let (got, message) = refused::<Headers>(json, "headers_json");
            assert_eq!(got, kind, "{json}");
            assert!(message.contains(needle), "{json}: {message}");
        }
        // Two names in two cases are the core's to refuse.
        assert!(Headers::from_json(r#"{"A":"x","a":"y"}"#, "h").is_ok());
    }

    #[test]
    fn keys_in_messages_are_shortened_and_values_never_shown() {
        let key = "k".repeat(100);
        let (_, message) = refused::<OrderRef>(&format!(r#"{{"{key}":"secret"}}"#), "o");
        assert!(message.contains(&"k".repeat(40)) && !message.contains(&"k".repeat(41)));
        let (_, message) = refused::<OrderRef>(r#"{"out_trade_no":["secret"]}"#, "o");
        assert!(!message.contains("secret"), "{message}");
    }
}
