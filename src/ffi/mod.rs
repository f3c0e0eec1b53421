//! The C ABI of libwxpay: the crate's only hand-written `unsafe` code.
//!
//! cbindgen turns this module into `include/wxpay.h` (the doc comments below
//! are written for C readers and copied into the header). The shape follows
//! rustls-ffi:
//!
//! - every function returns `0` ([`WxPayResult::WXPAY_OK`]) or a stable
//!   non-zero code of the one [`WxPayResult`] enum, and on failure writes an
//!   error document (JSON) to `*out_error` when the caller asked for one;
//! - every function catches panics at the boundary (`ffi_boundary`): a
//!   panic becomes [`WxPayResult::WXPAY_ERR_PANIC`], never an abort of the host;
//! - a client is an opaque, typed handle ([`WxPayClient`]) created by one
//!   function and freed by one NULL-tolerant function;
//! - every string handed to the caller is allocated here and freed only by
//!   [`wxpay_string_free`].
//!
//! Inputs and outputs are JSON in the schemas of [`Config::from_json`],
//! [`Order::from_json`] and [`PayParams`](crate::PayParams), and for API v2
//! the flat order reference and refund documents read here (see
//! [`wxpay_query_order`] and [`wxpay_refund`]) and the serde forms of
//! [`OrderStatus`](crate::model::OrderStatus), [`RefundReceipt`](crate::model::RefundReceipt),
//! [`RefundStatus`](crate::model::RefundStatus) and the verified notifications;
//! nothing here knows the protocol, it only converts and checks.

use std::ffi::{c_char, CString};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::Api;
use crate::crypto::sign::{fields_from_json, sign, Scheme};
use crate::error::Error;
use crate::model::{OrderRef, RefundRequest};
use crate::{Client, Config, Fen, Order, Secret};

/// The longest string argument accepted, in bytes, not counting the NUL
/// terminator (1 MiB). A longer argument fails with
/// `WXPAY_ERR_INPUT_TOO_LONG`; no more than this many bytes (plus one) of it
/// are ever read. Also the longest byte buffer accepted (a notification
/// body): a longer length fails the same way, before any byte is read.
pub const WXPAY_MAX_INPUT_BYTES: usize = 1 << 20;

/// The result codes of every `int32_t` function of this API.
///
/// `WXPAY_OK` (0) is success; every other value is a failure whose number is
/// stable: codes are never renumbered or reused, and new kinds get new
/// numbers. `wxpay_result_name()` gives each code's name (the same string as
/// the `"kind"` of the error document), `wxpay_result_message()` a sentence.
///
/// Ranges: 1001-1099 for arguments refused at the C boundary; 1101-1199 for
/// inputs the library refuses; 1201-1299 for failures of the services the
/// library talks to (the gateway, the token store); 1901-1999 for faults
/// inside the library.
#[repr(i32)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WxPayResult {
    /// Success.
    WXPAY_OK = 0,
    /// A pointer argument that must not be NULL was NULL.
    WXPAY_ERR_NULL_ARGUMENT = 1001,
    /// A string argument is not valid UTF-8.
    WXPAY_ERR_INVALID_UTF8 = 1002,
    /// A string argument is longer than `WXPAY_MAX_INPUT_BYTES`.
    WXPAY_ERR_INPUT_TOO_LONG = 1003,
    /// A JSON argument is not JSON at all (a syntax error).
    WXPAY_ERR_INVALID_JSON = 1101,
    /// The configuration is well-formed JSON but unusable (a missing, unknown
    /// or wrong field); the message names the field.
    WXPAY_ERR_INVALID_CONFIG = 1102,
    /// The order is well-formed JSON but unusable (bad amount, id, body, IP...);
    /// the message names the field.
    WXPAY_ERR_INVALID_ORDER = 1103,
    /// Another argument is unusable: an unknown signature scheme, an empty
    /// key, parameters that are not a flat object of strings and integers.
    WXPAY_ERR_INVALID_ARGUMENT = 1104,
    /// A payment notification failed verification (signature, merchant,
    /// amount...): answer it with the failure reply and do not act on it.
    WXPAY_ERR_INVALID_NOTIFICATION = 1105,
    /// The gateway could not be reached or did not answer in time; retrying
    /// later may succeed.
    WXPAY_ERR_NETWORK = 1201,
    /// The gateway answered with an HTTP status other than 200 (the error
    /// document carries `"http_status"`).
    WXPAY_ERR_HTTP_STATUS = 1202,
    /// The gateway answered with a non-zero `errcode` (the error document
    /// carries `"errcode"` and `"errmsg"` exactly as the gateway sent them).
    WXPAY_ERR_GATEWAY = 1203,
    /// The gateway answered 200 with a body that is not the documented shape.
    WXPAY_ERR_MALFORMED_RESPONSE = 1204,
    /// The shared access_token store (e.g. Redis) could not be used; retrying
    /// later may succeed.
    WXPAY_ERR_TOKEN_STORE = 1205,
    /// The API v2 or v3 gateway refused the request with a code of its own
    /// (the error document carries it as `"gateway_code"`, e.g.
    /// `"ORDERPAID"`, the gateway's description as `"gateway_message"`, and
    /// for API v3 the HTTP status it came with as `"http_status"`).
    WXPAY_ERR_REJECTED = 1206,
    /// A panic (a bug in libwxpay) was caught at the C boundary. The call had
    /// no effect visible to the caller; the process can go on.
    WXPAY_ERR_PANIC = 1901,
    /// The library produced an output it cannot hand over as a C string (a NUL
    /// byte inside it). Not expected to happen; reported instead of truncating.
    WXPAY_ERR_INTERNAL = 1902,
}

/// Every code, in numeric order (private: cbindgen would export a public one).
const ALL_RESULTS: [WxPayResult; 17] = [
    WxPayResult::WXPAY_OK,
    WxPayResult::WXPAY_ERR_NULL_ARGUMENT,
    WxPayResult::WXPAY_ERR_INVALID_UTF8,
    WxPayResult::WXPAY_ERR_INPUT_TOO_LONG,
    WxPayResult::WXPAY_ERR_INVALID_JSON,
    WxPayResult::WXPAY_ERR_INVALID_CONFIG,
    WxPayResult::WXPAY_ERR_INVALID_ORDER,
    WxPayResult::WXPAY_ERR_INVALID_ARGUMENT,
    WxPayResult::WXPAY_ERR_INVALID_NOTIFICATION,
    WxPayResult::WXPAY_ERR_NETWORK,
    WxPayResult::WXPAY_ERR_HTTP_STATUS,
    WxPayResult::WXPAY_ERR_GATEWAY,
    WxPayResult::WXPAY_ERR_MALFORMED_RESPONSE,
    WxPayResult::WXPAY_ERR_TOKEN_STORE,
    WxPayResult::WXPAY_ERR_REJECTED,
    WxPayResult::WXPAY_ERR_PANIC,
    WxPayResult::WXPAY_ERR_INTERNAL,
];

impl WxPayResult {
    /// The code for a number, if it is one.
    pub fn from_code(code: i32) -> Option<WxPayResult> {
        ALL_RESULTS.into_iter().find(|r| *r as i32 == code)
    }

    /// The snake_case name (the error document's `"kind"`). For the kinds of
    /// [`crate::ErrorKind`] it is the same string as [`crate::ErrorKind::as_str`].
    pub fn name(self) -> &'static str {
        without_nul(self.name_nul())
    }

    /// The name with its NUL terminator, for C.
    fn name_nul(self) -> &'static str {
        match self {
            WxPayResult::WXPAY_OK => "ok\0",
            WxPayResult::WXPAY_ERR_NULL_ARGUMENT => "null_argument\0",
            WxPayResult::WXPAY_ERR_INVALID_UTF8 => "invalid_utf8\0",
            WxPayResult::WXPAY_ERR_INPUT_TOO_LONG => "input_too_long\0",
            WxPayResult::WXPAY_ERR_INVALID_JSON => "invalid_json\0",
            WxPayResult::WXPAY_ERR_INVALID_CONFIG => "invalid_config\0",
            WxPayResult::WXPAY_ERR_INVALID_ORDER => "invalid_order\0",
            WxPayResult::WXPAY_ERR_INVALID_ARGUMENT => "invalid_argument\0",
            WxPayResult::WXPAY_ERR_INVALID_NOTIFICATION => "invalid_notification\0",
            WxPayResult::WXPAY_ERR_NETWORK => "network\0",
            WxPayResult::WXPAY_ERR_HTTP_STATUS => "http_status\0",
            WxPayResult::WXPAY_ERR_GATEWAY => "gateway\0",
            WxPayResult::WXPAY_ERR_MALFORMED_RESPONSE => "malformed_response\0",
            WxPayResult::WXPAY_ERR_TOKEN_STORE => "token_store\0",
            WxPayResult::WXPAY_ERR_REJECTED => "rejected\0",
            WxPayResult::WXPAY_ERR_PANIC => "panic\0",
            WxPayResult::WXPAY_ERR_INTERNAL => "internal\0",
        }
    }

    /// A one-line description of the code.
    pub fn message(self) -> &'static str {
        without_nul(self.message_nul())
    }

    /// The message with its NUL terminator, for C.
    fn message_nul(self) -> &'static str {
        match self {
            WxPayResult::WXPAY_OK => "success\0",
            WxPayResult::WXPAY_ERR_NULL_ARGUMENT => "a required pointer argument was NULL\0",
            WxPayResult::WXPAY_ERR_INVALID_UTF8 => "a string argument is not valid UTF-8\0",
            WxPayResult::WXPAY_ERR_INPUT_TOO_LONG => {
                "a string argument is longer than WXPAY_MAX_INPUT_BYTES\0"
            }
            WxPayResult::WXPAY_ERR_INVALID_JSON => "a JSON argument is not valid JSON\0",
            WxPayResult::WXPAY_ERR_INVALID_CONFIG => "the configuration is invalid\0",
            WxPayResult::WXPAY_ERR_INVALID_ORDER => "the order is invalid\0",
            WxPayResult::WXPAY_ERR_INVALID_ARGUMENT => "an argument is invalid\0",
            WxPayResult::WXPAY_ERR_INVALID_NOTIFICATION => {
                "a payment notification failed verification\0"
            }
            WxPayResult::WXPAY_ERR_NETWORK => "the gateway could not be reached in time\0",
            WxPayResult::WXPAY_ERR_HTTP_STATUS => "the gateway answered an HTTP error status\0",
            WxPayResult::WXPAY_ERR_GATEWAY => "the gateway answered a non-zero errcode\0",
            WxPayResult::WXPAY_ERR_MALFORMED_RESPONSE => "the gateway's answer is malformed\0",
            WxPayResult::WXPAY_ERR_TOKEN_STORE => "the shared access_token store failed\0",
            WxPayResult::WXPAY_ERR_REJECTED => {
                "the gateway refused the request with its own code\0"
            }
            WxPayResult::WXPAY_ERR_PANIC => "a panic inside libwxpay was caught (a bug)\0",
            WxPayResult::WXPAY_ERR_INTERNAL => "libwxpay produced an output it cannot return\0",
        }
    }

    /// The C boundary's code for a library error kind. Exhaustive on purpose:
    /// a new [`crate::ErrorKind`] does not compile until it has a code here.
    pub fn from_kind(kind: crate::ErrorKind) -> WxPayResult {
        use crate::ErrorKind as K;
        match kind {
            K::InvalidConfig => WxPayResult::WXPAY_ERR_INVALID_CONFIG,
            K::InvalidOrder => WxPayResult::WXPAY_ERR_INVALID_ORDER,
            K::InvalidJson => WxPayResult::WXPAY_ERR_INVALID_JSON,
            K::InvalidArgument => WxPayResult::WXPAY_ERR_INVALID_ARGUMENT,
            K::Network => WxPayResult::WXPAY_ERR_NETWORK,
            K::HttpStatus => WxPayResult::WXPAY_ERR_HTTP_STATUS,
            K::Gateway => WxPayResult::WXPAY_ERR_GATEWAY,
            K::MalformedResponse => WxPayResult::WXPAY_ERR_MALFORMED_RESPONSE,
            K::TokenStore => WxPayResult::WXPAY_ERR_TOKEN_STORE,
            K::Rejected => WxPayResult::WXPAY_ERR_REJECTED,
            K::InvalidNotification => WxPayResult::WXPAY_ERR_INVALID_NOTIFICATION,
        }
    }
}

/// A WeChat Pay client for one merchant configuration (opaque).
///
/// Created by `wxpay_client_new()`, freed by `wxpay_client_free()`. It owns
/// the configuration (secrets included), a cached access_token shared by
/// every call, and a pool of keep-alive connections.
///
/// Thread safety: a client may be used by many threads at once (calls take a
/// `const WxPayClient *`); share one per merchant and process, so that all
/// threads share one access_token. Only `wxpay_client_free()` must not race
/// with another call on the same client.
pub struct WxPayClient {
    client: Client,
}

// The documented thread safety rests on this.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<WxPayClient>();
};

/// A failure on its way to the caller: the code and the error document.
#[derive(Debug)]
struct Failure {
    code: WxPayResult,
    message: String,
    /// The document's other fields (`errcode`, `errmsg`, `http_status`...).
    extra: Map<String, Value>,
}

impl Failure {
    fn new(code: WxPayResult, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
            extra: Map::new(),
        }
    }

    fn null(argument: &str) -> Failure {
        Failure::new(
            WxPayResult::WXPAY_ERR_NULL_ARGUMENT,
            format!("argument `{argument}` is NULL"),
        )
    }

    /// The error document. Built with serde_json, so any byte of the message
    /// (a NUL included) comes out escaped.
    fn to_json(&self) -> String {
        let mut doc = self.extra.clone();
        doc.insert("code".into(), Value::from(self.code as i32));
        doc.insert("kind".into(), Value::from(self.code.name()));
        doc.insert("message".into(), Value::from(self.message.as_str()));
        doc.entry("retryable").or_insert(Value::Bool(false));
        Value::Object(doc).to_string()
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        let mut failure = Failure::new(WxPayResult::from_kind(error.kind()), error.to_string());
        let extra = &mut failure.extra;
        if let Some(errcode) = error.errcode() {
            extra.insert("errcode".into(), Value::from(errcode));
        }
        if let Some(errmsg) = error.errmsg() {
            extra.insert("errmsg".into(), Value::from(errmsg));
        }
        match &error {
            Error::HttpStatus { status } => {
                extra.insert("http_status".into(), Value::from(*status));
            }
            Error::Rejected {
                code,
                message,
                http_status,
            } => {
                extra.insert("gateway_code".into(), Value::from(code.as_str()));
                extra.insert("gateway_message".into(), Value::from(message.as_str()));
                if let Some(status) = http_status {
                    extra.insert("http_status".into(), Value::from(*status));
                }
            }
            _ => {}
        }
        extra.insert("retryable".into(), Value::from(error.is_retryable()));
        failure
    }
}

/// Runs `body` with panics caught, and turns its outcome into a result code.
///
/// `out_error` must be NULL or valid for a write of one pointer (the caller's
/// contract). It is set to NULL first; on failure it receives the error
/// document.
fn ffi_boundary(out_error: *mut *mut c_char, body: impl FnOnce() -> Result<(), Failure>) -> i32 {
    if !out_error.is_null() {
        // SAFETY: the caller promises `out_error` is NULL or writable.
        unsafe { out_error.write(ptr::null_mut()) };
    }
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return WxPayResult::WXPAY_OK as i32,
        Ok(Err(failure)) => failure,
        Err(_payload) => Failure::new(
            WxPayResult::WXPAY_ERR_PANIC,
            "a panic inside libwxpay was caught at the C boundary (a bug; the panic message went to stderr)",
        ),
    };
    let code = failure.code as i32;
    if !out_error.is_null() {
        // Building the document allocates; a panic here (out of memory is an
        // abort anyway) must not cross the boundary either.
        let document = catch_unwind(AssertUnwindSafe(|| c_string(failure.to_json())));
        if let Ok(Ok(document)) = document {
            // SAFETY: as above.
            unsafe { out_error.write(document) };
        }
    }
    code
}

/// Runs `body` with panics caught, for the functions that return a static
/// NUL-terminated string: a panic gives `fallback`.
fn ffi_boundary_static(
    fallback: &'static str,
    body: impl FnOnce() -> &'static str,
) -> *const c_char {
    let text = catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback);
    debug_assert!(text.ends_with('\0'));
    text.as_ptr().cast()
}

/// `text` without its trailing NUL.
fn without_nul(text: &'static str) -> &'static str {
    text.strip_suffix('\0').unwrap_or(text)
}

/// Hands a string to C: a `char *` that only [`wxpay_string_free`] frees.
fn c_string(text: String) -> Result<*mut c_char, Failure> {
    CString::new(text).map(CString::into_raw).map_err(|_| {
        Failure::new(
            WxPayResult::WXPAY_ERR_INTERNAL,
            "an output string contains a NUL byte",
        )
    })
}

/// Reads a C string argument: not NULL, at most [`WXPAY_MAX_INPUT_BYTES`]
/// bytes (never reading further than that), valid UTF-8. Messages name the
/// argument but never show its content (it may be a key).
///
/// # Safety
///
/// `ptr` is NULL or points to a NUL-terminated string, or to at least
/// `WXPAY_MAX_INPUT_BYTES + 1` readable bytes, that stays unchanged for `'a`.
unsafe fn read_str<'a>(ptr: *const c_char, argument: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::null(argument));
    }
    let start = ptr.cast::<u8>();
    let mut len = 0;
    // SAFETY: reading stops at the terminator, or after MAX + 1 bytes when the
    // string is longer: every byte read is part of the caller's string.
    while unsafe { start.add(len).read() } != 0 {
        len += 1;
        if len > WXPAY_MAX_INPUT_BYTES {
            return Err(Failure::new(
                WxPayResult::WXPAY_ERR_INPUT_TOO_LONG,
                format!("argument `{argument}` is longer than {WXPAY_MAX_INPUT_BYTES} bytes"),
            ));
        }
    }
    // SAFETY: the `len` bytes before the terminator were just read.
    let bytes = unsafe { std::slice::from_raw_parts(start, len) };
    std::str::from_utf8(bytes).map_err(|e| {
        Failure::new(
            WxPayResult::WXPAY_ERR_INVALID_UTF8,
            format!(
                "argument `{argument}` is not valid UTF-8 (at byte {})",
                e.valid_up_to()
            ),
        )
    })
}

/// Checks a required output pointer and sets `*out = NULL`.
///
/// # Safety
///
/// `out` is NULL or valid for a write of one pointer.
unsafe fn clear_out<T>(out: *mut *mut T, argument: &str) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::null(argument));
    }
    // SAFETY: not NULL, and the caller promises it is writable.
    unsafe { out.write(ptr::null_mut()) };
    Ok(())
}

/// The client behind a handle.
///
/// # Safety
///
/// `client` is NULL or a live client from `wxpay_client_new()`.
unsafe fn client_ref<'a>(client: *const WxPayClient) -> Result<&'a Client, Failure> {
    // SAFETY: NULL or a live client; shared access only (it is Sync).
    unsafe { client.as_ref() }
        .map(|handle| &handle.client)
        .ok_or_else(|| Failure::null("client"))
}

/// Reads a byte-buffer argument: not NULL (even when `len` is 0), at most
/// [`WXPAY_MAX_INPUT_BYTES`] long. The length is checked before any byte is
/// read, so a wrong length larger than the limit never leads to a read.
///
/// # Safety
///
/// `ptr` is NULL or points to `len` readable bytes that stay unchanged for `'a`.
unsafe fn read_bytes<'a>(ptr: *const u8, len: u64, argument: &str) -> Result<&'a [u8], Failure> {
    if ptr.is_null() {
        return Err(Failure::null(argument));
    }
    let len = usize::try_from(len)
        .ok()
        .filter(|len| *len <= WXPAY_MAX_INPUT_BYTES)
        .ok_or_else(|| {
            Failure::new(
                WxPayResult::WXPAY_ERR_INPUT_TOO_LONG,
                format!("argument `{argument}` is longer than {WXPAY_MAX_INPUT_BYTES} bytes"),
            )
        })?;
    // SAFETY: not NULL, `len` readable bytes (the caller's contract), and
    // `len` is far below isize::MAX.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Serializes an output and hands it to C through `out`.
///
/// # Safety
///
/// `out` is valid for a write of one pointer.
unsafe fn write_json<T: Serialize + ?Sized>(
    out: *mut *mut c_char,
    value: &T,
    what: &str,
) -> Result<(), Failure> {
    let text = serde_json::to_string(value).map_err(|e| {
        Failure::new(
            WxPayResult::WXPAY_ERR_INTERNAL,
            format!("the {what} could not be serialized ({e})"),
        )
    })?;
    let text = c_string(text)?;
    // SAFETY: the caller's contract.
    unsafe { out.write(text) };
    Ok(())
}

/// An expected amount in fen: `value <= 0` means "not checked".
fn expected_fee(value: i64, argument: &str) -> Result<Option<Fen>, Failure> {
    if value <= 0 {
        return Ok(None);
    }
    Fen::new(value).map(Some).map_err(|e| {
        Failure::new(
            WxPayResult::WXPAY_ERR_INVALID_ARGUMENT,
            format!("argument `{argument}` {e}"),
        )
    })
}

/// A key of an argument's document, shortened for a message (it may be
/// anything the caller sent; serde_json escapes it in the error document).
fn shown_key(key: &str) -> String {
    key.chars().take(40).collect()
}

/// A JSON object whose keys are all distinct. serde_json's `Map` silently
/// keeps the last of two equal keys; a refund must not be read from a
/// document that says two amounts.
struct UniqueKeys(Map<String, Value>);

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<UniqueKeys, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = UniqueKeys;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<UniqueKeys, A::Error> {
                let mut map = Map::new();
                while let Some(key) = access.next_key::<String>()? {
                    if map.contains_key(&key) {
                        return Err(de::Error::custom(format!(
                            "key {:?} appears more than once",
                            shown_key(&key)
                        )));
                    }
                    let value: Value = access.next_value()?;
                    map.insert(key, value);
                }
                Ok(UniqueKeys(map))
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// Parses the JSON object argument `document`: a syntax error is
/// `InvalidJson`; anything but an object with distinct keys is
/// `InvalidArgument`.
fn parse_object(json: &str, document: &'static str) -> Result<Map<String, Value>, Error> {
    // Syntax first, so that broken JSON is reported as such whatever it starts with.
    serde_json::from_str::<IgnoredAny>(json).map_err(|e| Error::InvalidJson {
        document,
        reason: e.to_string(),
    })?;
    serde_json::from_str::<UniqueKeys>(json)
        .map(|object| object.0)
        .map_err(|e| Error::InvalidArgument(format!("{document}: {e}")))
}

/// Refuses the keys of `map` that are not in `known`.
fn refuse_unknown_keys(
    map: &Map<String, Value>,
    known: &[&str],
    document: &str,
) -> Result<(), Error> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(Error::InvalidArgument(format!(
            "{document}: unknown key {:?} (the keys are {})",
            shown_key(unknown),
            known.join(", ")
        ))),
        None => Ok(()),
    }
}

/// Checks an order identifier (`out_trade_no`, `transaction_id`) as
/// [`Order`] checks `out_trade_no`: 1 to 32 characters of `A-Z a-z 0-9 _ - |
/// * @` (WeChat's `transaction_id` is 28 to 32 digits).
fn check_id(value: &str, what: &str) -> Result<(), Error> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"_-|*@".contains(&b);
    if value.is_empty() || value.len() > 32 || !value.bytes().all(allowed) {
        return Err(Error::InvalidArgument(format!(
            "{what} must be 1 to 32 characters of A-Z a-z 0-9 _ - | * @"
        )));
    }
    Ok(())
}

/// Removes `key` from `map`: absent or `null` is `None`, a string is checked
/// with [`check_id`], anything else is refused.
fn take_id(
    map: &mut Map<String, Value>,
    key: &str,
    document: &str,
) -> Result<Option<String>, Error> {
    match map.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) => {
            check_id(&id, &format!("{document}: {key}"))?;
            Ok(Some(id))
        }
        Some(_) => Err(Error::InvalidArgument(format!(
            "{document}: {key} must be a string"
        ))),
    }
}

/// The flat order reference: exactly one of `out_trade_no` and `transaction_id`.
fn order_ref_from_map(map: &mut Map<String, Value>, document: &str) -> Result<OrderRef, Error> {
    let out_trade_no = take_id(map, "out_trade_no", document)?;
    let transaction_id = take_id(map, "transaction_id", document)?;
    match (out_trade_no, transaction_id) {
        (Some(no), None) => Ok(OrderRef::OutTradeNo(no)),
        (None, Some(id)) => Ok(OrderRef::TransactionId(id)),
        (Some(_), Some(_)) => Err(Error::InvalidArgument(format!(
            "{document}: give exactly one of out_trade_no and transaction_id, not both"
        ))),
        (None, None) => Err(Error::InvalidArgument(format!(
            "{document}: give out_trade_no or transaction_id"
        ))),
    }
}

/// The keys of `order_ref_json`.
const ORDER_REF_KEYS: [&str; 2] = ["out_trade_no", "transaction_id"];

/// Reads `order_ref_json`: `{"out_trade_no": ".."}` or `{"transaction_id": ".."}`.
fn order_ref_from_json(json: &str) -> Result<OrderRef, Error> {
    const DOCUMENT: &str = "order_ref_json";
    let mut map = parse_object(json, DOCUMENT)?;
    refuse_unknown_keys(&map, &ORDER_REF_KEYS, DOCUMENT)?;
    order_ref_from_map(&mut map, DOCUMENT)
}

/// The keys of `refund_json`.
const REFUND_KEYS: [&str; 6] = [
    "out_trade_no",
    "transaction_id",
    "out_refund_no",
    "total_fee",
    "refund_fee",
    "refund_desc",
];

/// Removes the amount `key` from `map`: a JSON integer of fen from 1 to
/// [`Fen::MAX`] (no float, no string).
fn take_fen(map: &mut Map<String, Value>, key: &str, document: &str) -> Result<u32, Error> {
    let invalid = || {
        Error::InvalidArgument(format!(
            "{document}: {key} must be a JSON integer of fen from 1 to {}",
            Fen::MAX.get()
        ))
    };
    match map.remove(key) {
        None | Some(Value::Null) => Err(Error::InvalidArgument(format!(
            "{document}: {key} is missing"
        ))),
        Some(value) => value
            .as_u64()
            .and_then(|fen| i64::try_from(fen).ok())
            .and_then(|fen| Fen::new(fen).ok())
            .map(Fen::get)
            .ok_or_else(invalid),
    }
}

/// Reads `refund_json`: the flat order reference plus `out_refund_no`,
/// `total_fee`, `refund_fee` and an optional `refund_desc`.
fn refund_from_json(json: &str) -> Result<RefundRequest, Error> {
    const DOCUMENT: &str = "refund_json";
    let mut map = parse_object(json, DOCUMENT)?;
    refuse_unknown_keys(&map, &REFUND_KEYS, DOCUMENT)?;
    let order = order_ref_from_map(&mut map, DOCUMENT)?;
    let out_refund_no = match map.remove("out_refund_no") {
        Some(Value::String(no)) => no,
        None | Some(Value::Null) => {
            return Err(Error::InvalidArgument(format!(
                "{DOCUMENT}: out_refund_no is missing"
            )))
        }
        Some(_) => {
            return Err(Error::InvalidArgument(format!(
                "{DOCUMENT}: out_refund_no must be a string"
            )))
        }
    };
    let total_fee = take_fen(&mut map, "total_fee", DOCUMENT)?;
    let refund_fee = take_fen(&mut map, "refund_fee", DOCUMENT)?;
    let refund_desc = match map.remove("refund_desc") {
        None | Some(Value::Null) => None,
        Some(Value::String(desc)) => Some(desc),
        Some(_) => {
            return Err(Error::InvalidArgument(format!(
                "{DOCUMENT}: refund_desc must be a string"
            )))
        }
    };
    // out_refund_no and the amounts' relation are checked by the core, also
    // before any network call.
    Ok(RefundRequest {
        order,
        out_refund_no,
        total_fee,
        refund_fee,
        refund_desc,
    })
}

/// Reads `headers_json`: a flat JSON object of a request's headers, names in
/// any case, values strings. Two names that differ only in case are refused
/// (as are two equal ones): which of them was meant cannot be told.
fn headers_from_json(json: &str) -> Result<Vec<(String, String)>, Error> {
    const DOCUMENT: &str = "headers_json";
    let map = parse_object(json, DOCUMENT)?;
    let mut headers: Vec<(String, String)> = Vec::with_capacity(map.len());
    for (name, value) in map {
        if headers
            .iter()
            .any(|(seen, _)| seen.eq_ignore_ascii_case(&name))
        {
            return Err(Error::InvalidArgument(format!(
                "{DOCUMENT}: header {:?} appears more than once (names are case-insensitive)",
                shown_key(&name)
            )));
        }
        match value {
            Value::String(value) => headers.push((name, value)),
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "{DOCUMENT}: the value of header {:?} must be a string",
                    shown_key(&name)
                )))
            }
        }
    }
    Ok(headers)
}

/// The HTTP status an API v3 merchant answers a verified notification with
/// (the body is empty).
const V3_REPLY_SUCCESS_STATUS: u16 = 204;
/// The HTTP status an API v3 merchant answers a refused notification with
/// (the body is the `{"code":"FAIL",...}` reply).
const V3_REPLY_FAILURE_STATUS: u16 = 500;

/// The output of the notification verifiers.
#[derive(Serialize)]
struct Verified<T> {
    notification: T,
    reply: String,
    /// API v3 only: the HTTP status to answer with.
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_status: Option<u16>,
}

/// Runs `call` on the client with one JSON document argument and writes its
/// answer as JSON: `*out_json` cleared first (even when `client` is NULL),
/// then the client and the document read, then the call.
///
/// # Safety
///
/// `client` is NULL or a live client; `json` is NULL or a NUL-terminated
/// string; `out_json` is NULL or valid for writing one pointer.
unsafe fn call_with_json<T: Serialize>(
    client: *const WxPayClient,
    json: *const c_char,
    json_argument: &str,
    out_json: *mut *mut c_char,
    answer_name: &str,
    call: impl FnOnce(&Client, &str) -> Result<T, Error>,
) -> Result<(), Failure> {
    // SAFETY: the caller's contract on each pointer.
    unsafe { clear_out(out_json, "out_json")? };
    let client = unsafe { client_ref(client)? };
    let json = unsafe { read_str(json, json_argument)? };
    let answer = call(client, json)?;
    // SAFETY: checked above.
    unsafe { write_json(out_json, &answer, answer_name) }
}

/// Runs a notification verifier behind the C boundary: every failure once
/// the client is known carries `"reply"`, the failure reply to send, whose
/// `return_msg` is the failure's kind (e.g. `invalid_notification`).
///
/// # Safety
///
/// `client` is NULL or a live client; `body` is NULL or points to `body_len`
/// readable bytes; `out_json` is NULL or valid for writing one pointer.
unsafe fn verify_notification<T: Serialize>(
    client: *const WxPayClient,
    body: *const u8,
    body_len: u64,
    expected_fee_value: i64,
    expected_fee_argument: &str,
    out_json: *mut *mut c_char,
    verify: impl FnOnce(&Client, &[u8], Option<Fen>) -> Result<T, Failure>,
) -> Result<(), Failure> {
    // SAFETY: the caller's contract on each pointer.
    let out_checked = unsafe { clear_out(out_json, "out_json") };
    let client = unsafe { client_ref(client)? };
    // API v3 answers with a status as well as a body.
    let v3 = client.config().api == Api::V3;
    let outcome = (|| {
        out_checked?;
        let body = unsafe { read_bytes(body, body_len, "body")? };
        let expected = expected_fee(expected_fee_value, expected_fee_argument)?;
        let notification = verify(client, body, expected)?;
        let verified = Verified {
            notification,
            reply: client.notification_success_reply(),
            reply_status: v3.then_some(V3_REPLY_SUCCESS_STATUS),
        };
        // SAFETY: `out_json` was checked above.
        unsafe { write_json(out_json, &verified, "notification") }
    })();
    outcome.map_err(|mut failure| {
        // The reply goes back to whoever sent the request: it names the kind
        // of failure only; the details stay in the caller's error document.
        let reply = client.notification_failure_reply(failure.code.name());
        failure.extra.insert("reply".into(), Value::from(reply));
        if v3 {
            failure
                .extra
                .insert("reply_status".into(), Value::from(V3_REPLY_FAILURE_STATUS));
        }
        failure
    })
}

/// The version of libwxpay, e.g. `"0.1.0"`.
///
/// Returns a static NUL-terminated string: never NULL, never to be freed.
#[unsafe(no_mangle)]
pub extern "C" fn wxpay_version() -> *const c_char {
    ffi_boundary_static("unknown\0", || concat!(env!("CARGO_PKG_VERSION"), "\0"))
}

/// The snake_case name of a result code: `"ok"`, `"null_argument"`,
/// `"invalid_order"`, `"gateway"`... (the same string as the `"kind"` of the
/// error document), or `"unknown"` for a number that is not a code.
///
/// Returns a static NUL-terminated string: never NULL, never to be freed.
#[unsafe(no_mangle)]
pub extern "C" fn wxpay_result_name(code: i32) -> *const c_char {
    ffi_boundary_static("unknown\0", || match WxPayResult::from_code(code) {
        Some(result) => result.name_nul(),
        None => "unknown\0",
    })
}

/// A one-line English description of a result code, or
/// `"unknown result code"` for a number that is not a code.
///
/// Returns a static NUL-terminated string: never NULL, never to be freed.
#[unsafe(no_mangle)]
pub extern "C" fn wxpay_result_message(code: i32) -> *const c_char {
    ffi_boundary_static("unknown result code\0", || {
        match WxPayResult::from_code(code) {
            Some(result) => result.message_nul(),
            None => "unknown result code\0",
        }
    })
}

/// Creates a client from a JSON configuration.
///
/// `config_json`: a NUL-terminated UTF-8 JSON object with the keys `appid`,
/// `app_secret`, `app_key`, `partner_id`, `partner_key`, `notify_url`, and
/// optionally `api_base` (default `https://api.weixin.qq.com`; plain `http://`
/// only for loopback hosts), `input_charset` (`"UTF-8"` or `"GBK"`) and
/// `timeout_ms`. With `"api": "v2"`: `appid`, `mch_id`, `api_key`,
/// `notify_url` (optionally `sign_type`, `client_cert`, `sandbox`). With
/// `"api": "v3"`: `appid`, `mchid`, `merchant_private_key` (PEM text) or
/// `merchant_private_key_file`, `merchant_serial_no`, `api_v3_key`,
/// `notify_url`, and either `wechatpay_public_key` (or `_file`) with
/// `wechatpay_public_key_id` (public-key mode) or neither (certificate mode;
/// optionally `platform_cert_refresh_secs`). Unknown keys are an error; a
/// key that does not parse fails here, naming its field. The string is only
/// read during the call; the client keeps its own copy.
///
/// `*out_client` is set to NULL on entry (`out_client` itself must not be
/// NULL). On success returns `WXPAY_OK` and stores a new client in
/// `*out_client`; the caller owns it and frees it with `wxpay_client_free()`.
/// No network call is made here. On failure returns a non-zero `WXPAY_ERR_*`
/// code and `*out_client` stays NULL.
///
/// Logging: when the environment variable `WXPAY_LOG` is `error`, `warn`,
/// `info`, `debug` or `trace` at the first call of this function, the
/// library writes its log lines (`wxpay[LEVEL] target: message`) to standard
/// error from then on. They never contain a key, a secret, a token or a
/// signature.
///
/// Error reporting (the same for every function with `out_error`): on entry
/// `*out_error` is set to NULL (when `out_error` is not NULL); on failure it
/// receives a JSON document `{"code": N, "kind": "...", "message": "...",
/// "retryable": bool}`, plus `"errcode"` and `"errmsg"` when the gateway
/// answered with an errcode, `"http_status"` for `WXPAY_ERR_HTTP_STATUS`, and
/// `"gateway_code"` and `"gateway_message"` for `WXPAY_ERR_REJECTED` (with
/// `"http_status"` too when an API v3 gateway answered an error status).
/// The caller owns that string and frees it with `wxpay_string_free()`.
/// `out_error` may be NULL when the caller only wants the code. Messages never
/// contain a secret or the content of an argument.
///
/// # Safety
///
/// `config_json` is NULL or a NUL-terminated string; `out_client` and
/// `out_error` are NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wxpay_client_new(
    config_json: *const c_char,
    out_client: *mut *mut WxPayClient,
    out_error: *mut *mut c_char,
) -> i32 {
    ffi_boundary(out_error, || {
        crate::util::logging::init_from_env();
        // SAFETY: the caller's contract on each pointer (see the doc).
        unsafe { clear_out(out_client, "out_client")? };
        let json = unsafe { read_str(config_json, "config_json")? };
        let config = Config::from_json(json)?;
        let client = Box::new(WxPayClient {
            client: Client::new(config)?,
        });
        // SAFETY: checked above.
        unsafe { out_client.write(Box::into_raw(client)) };
        Ok(())
    })
}

/// Frees a client made by `wxpay_client_new()`, with its secrets (zeroed) and
/// connections. NULL is a no-op.
///
/// # Safety
///
/// `client` is NULL or a client from `wxpay_client_new()` not freed yet, and
/// no other call uses it during or after this one.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wxpay_client_free(client: *mut WxPayClient) {
    if client.is_null() {
        return;
    }
    // A panic while dropping is swallowed: there is no code to return.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller gives back ownership of a pointer from Box::into_raw.
        drop(unsafe { Box::from_raw(client) });
    }));
}

/// Runs the whole payment flow for one order and returns the parameters the
/// app hands to the WeChat SDK.
///
/// `order_json`: a NUL-terminated UTF-8 JSON object with `out_trade_no`,
/// exactly one of `total_fee` (integer fen, e.g. `1999`) or `total_yuan`
/// (decimal string of yuan, at most two decimals, e.g. `"19.99"`), `body`,
/// `client_ip` (IPv4), and optionally `attach`, `expire_minutes`, `traceid`.
/// Only read during the call.
///
/// `*out_json` is set to NULL on entry (`out_json` itself must not be NULL).
/// On success returns `WXPAY_OK` and stores in `*out_json` a JSON object
/// `{"appid", "partnerid", "prepayid", "package", "noncestr", "timestamp",
/// "sign", "out_trade_no", "total_fee"}` (all strings but `total_fee`, an
/// integer of fen). The caller owns it and frees it with
/// `wxpay_string_free()`.
///
/// On failure returns a non-zero code, `*out_json` stays NULL, and
/// `*out_error` is filled as described at `wxpay_client_new()`. An invalid
/// order fails before any network call.
///
/// This call blocks on the network: an access_token fetch when none is
/// cached, the `genprepay` call, and both once more when the gateway rejects
/// the token; each HTTP exchange is bounded by the configured `timeout_ms`.
/// Thread-safe: any number of
/// threads may call it on the same client at once; they share one cached
/// access_token and one connection pool.
///
/// # Safety
///
/// `client` is NULL or a live client from `wxpay_client_new()`; `order_json`
/// is NULL or a NUL-terminated string; `out_json` and `out_error` are NULL or
/// valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wxpay_build_pay_params(
    client: *const WxPayClient,
    order_json: *const c_char,
    out_json: *mut *mut c_char,
    out_error: *mut *mut c_char,
) -> i32 {
    ffi_boundary(out_error, || {
        // SAFETY: the caller's contract on each pointer (see the doc).
        unsafe {
            call_with_json(
                client,
                order_json,
                "order_json",
                out_json,
                "pay parameters",
                |c, json| c.build_pay_params(&Order::from_json(json)?),
            )
        }
    })
}

/// Signs a flat parameter map, as `wxpay sign` does.
///
/// `scheme`: a scheme name as `wxpay sign` takes it: `"legacy-package"` (MD5
/// of the sorted non-empty fields with `&key=KEY` appended, upper-case hex;
/// charset from an `input_charset` field, UTF-8 when absent),
/// `"legacy-sha1"` (SHA1 of the sorted fields with `appkey=KEY`, lower-case
/// hex), or the API v2 schemes `"v2-md5"` and `"v2-hmac-sha256"`. An unknown
/// name fails with `WXPAY_ERR_INVALID_ARGUMENT`, whose message lists the
/// known ones. `key`: the matching key (partner key, app key or API key), not
/// empty. `params_json`: a JSON object whose values are strings or integers.
/// All three are NUL-terminated UTF-8 strings, only read during the call.
///
/// `*out_sign` is set to NULL on entry (`out_sign` itself must not be NULL).
/// On success returns `WXPAY_OK` and stores the hex signature in `*out_sign`;
/// the caller owns it and frees it with `wxpay_string_free()`. On failure
/// returns a non-zero code, `*out_sign` stays NULL, and `*out_error` is
/// filled as described at `wxpay_client_new()`. Pure: no network,
/// thread-safe.
///
/// # Safety
///
/// `scheme`, `key` and `params_json` are NULL or NUL-terminated strings;
/// `out_sign` and `out_error` are NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wxpay_sign(
    scheme: *const c_char,
    key: *const c_char,
    params_json: *const c_char,
    out_sign: *mut *mut c_char,
    out_error: *mut *mut c_char,
) -> i32 {
    ffi_boundary(out_error, || {
        // SAFETY: the caller's contract on each pointer (see the doc).
        unsafe { clear_out(out_sign, "out_sign")? };
        // Every pointer and string is checked before any value is judged.
        let scheme = unsafe { read_str(scheme, "scheme")? };
        let key = unsafe { read_str(key, "key")? };
        let params = unsafe { read_str(params_json, "params_json")? };
        let scheme: Scheme = scheme.parse()?;
        if key.is_empty() {
            return Err(Failure::new(
                WxPayResult::WXPAY_ERR_INVALID_ARGUMENT,
                "argument `key` is empty",
            ));
        }
        let key = Secret::new(key);
        let fields = fields_from_json(params)?;
        let signature = c_string(sign(scheme, &key, &fields)?.into_signature())?;
        // SAFETY: checked above.
        unsafe { out_sign.write(signature) };
        Ok(())
    })
}

/// The state of an order (API v2 `orderquery`; API v3 `GET
/// /v3/pay/transactions/...`).
///
/// `order_ref_json`: a NUL-terminated UTF-8 JSON object naming the order,
/// either `{"out_trade_no": "A1001"}` or `{"transaction_id": "4200..."}`
/// (exactly one; 1 to 32 characters of `A-Z a-z 0-9 _ - | * @`; no other
/// key, no key twice). Anything else fails with `WXPAY_ERR_INVALID_JSON` (not JSON) or
/// `WXPAY_ERR_INVALID_ARGUMENT` (the message names the key), before any
/// network call. Only read during the call.
///
/// `*out_json` is set to NULL on entry (`out_json` itself must not be NULL).
/// On success returns `WXPAY_OK` and stores in `*out_json` a JSON object
/// `{"out_trade_no", "transaction_id", "trade_state", "trade_state_desc",
/// "total_fee", "time_end"}`: `trade_state` is the gateway's spelling
/// (`"SUCCESS"`, `"REFUND"`, `"NOTPAY"`, `"CLOSED"`, `"REVOKED"`,
/// `"USERPAYING"`, `"PAYERROR"`, or another string as sent), `total_fee` an
/// integer of fen, and every key but `out_trade_no` and `trade_state` may be
/// `null`. The caller owns it and frees it with `wxpay_string_free()`.
///
/// On failure returns a non-zero code, `*out_json` stays NULL, and
/// `*out_error` is filled as described at `wxpay_client_new()`: a business
/// refusal is `WXPAY_ERR_REJECTED` with the gateway's `"gateway_code"` (e.g.
/// `"ORDERNOTEXIST"`; API v3: `"ORDER_NOT_EXIST"` with `"http_status": 404`).
/// A client configured with `"api": "legacy"` fails with
/// `WXPAY_ERR_INVALID_ARGUMENT` (API v2 and v3 only).
///
/// Blocks on one HTTP exchange (bounded by the configured `timeout_ms`); in
/// WeChat's simulation environment (`"sandbox": true`) the first call also
/// fetches the simulation key. The answer's signature is verified before any
/// of it is believed. Thread-safe: any number of threads may call it on the
/// same client at once.
///
/// # Safety
///
/// `client` is NULL or a live client from `wxpay_client_new()`;
/// `order_ref_json` is NULL or a NUL-terminated string; `out_json` and
/// `out_error` are NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wxpay_query_order(
    client: *const WxPayClient,
    order_ref_json: *const c_char,
    out_json: *mut *mut c_char,
    out_error: *mut *mut c_char,
) -> i32 {
    ffi_boundary(out_error, || {
        // SAFETY: the caller's contract on each pointer (see the doc).
        unsafe {
            call_with_json(
                client,
                order_ref_json,
                "order_ref_json",
                out_json,
                "order status",
                |c, json| c.query_order(&order_ref_from_json(json)?),
            )
        }
    })
}

/// Closes an unpaid order (API v2 `closeorder`; API v3 `POST .../close`), so
/// that it can no longer be paid.
///
/// `out_trade_no`: the merchant's trade number, a NUL-terminated string of 1
/// to 32 characters of `A-Z a-z 0-9 _ - | * @` (otherwise
/// `WXPAY_ERR_INVALID_ARGUMENT`, before any network call). Only read during the call.
///
/// Returns `WXPAY_OK` when the gateway closed the order; there is no other
/// output. On failure returns a non-zero code and fills `*out_error` as
/// described at `wxpay_client_new()`: a paid order is `WXPAY_ERR_REJECTED`
/// with `"gateway_code": "ORDERPAID"` (refund it instead). API v2 and v3
/// only.
///
/// Blocks on one HTTP exchange; thread-safe, as `wxpay_query_order()`.
///
/// # Safety
///
/// `client` is NULL or a live client from `wxpay_client_new()`;
/// `out_trade_no` is NULL or a NUL-terminated string; `out_error` is NULL or
/// valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wxpay_close_order(
    client: *const WxPayClient,
    out_trade_no: *const c_char,
    out_error: *mut *mut c_char,
) -> i32 {
    ffi_boundary(out_error, || {
        // SAFETY: the caller's contract on each pointer (see the doc).
        let client = unsafe { client_ref(client)? };
        let out_trade_no = unsafe { read_str(out_trade_no, "out_trade_no")? };
        check_id(out_trade_no, "argument `out_trade_no`")?;
        client.close_order(out_trade_no)?;
        Ok(())
    })
}

/// Refunds all or part of a paid order (API v2 `secapi/pay/refund`, over
/// mutual TLS with the configuration's `client_cert`; API v3 `POST
/// /v3/refund/domestic/refunds`, RSA-signed).
///
/// `refund_json`: a NUL-terminated UTF-8 JSON object with exactly one of
/// `out_trade_no` and `transaction_id` (as in `wxpay_query_order()`),
/// `out_refund_no` (the merchant's refund number: 1 to 64 characters of
/// `A-Z a-z 0-9 _ - | * @`, unique per refund; sending the same one again
/// does not refund twice), `total_fee` (the order's amount) and `refund_fee`
/// (the amount to refund, at most `total_fee`), both JSON integers of fen,
/// and optionally `refund_desc` (a string shown to the user). No other key,
/// no key twice. A malformed document fails with `WXPAY_ERR_INVALID_JSON` or
/// `WXPAY_ERR_INVALID_ARGUMENT` before any network call. Only read during
/// the call.
///
/// `*out_json` is set to NULL on entry (`out_json` itself must not be NULL).
/// On success returns `WXPAY_OK` and stores in `*out_json` the gateway's
/// receipt `{"out_refund_no", "refund_id", "refund_fee"}` (`refund_fee` an
/// integer of fen). The refund itself completes later: its outcome comes as
/// a refund notification (`wxpay_verify_refund_notification()`) and from
/// `wxpay_query_refunds()`. The caller owns the string and frees it with
/// `wxpay_string_free()`.
///
/// On failure returns a non-zero code, `*out_json` stays NULL, and
/// `*out_error` is filled as described at `wxpay_client_new()`: e.g.
/// `WXPAY_ERR_REJECTED` with `"gateway_code": "NOTENOUGH"` when less than
/// `refund_fee` is left to refund, `WXPAY_ERR_INVALID_CONFIG` (naming
/// `client_cert`) when an API v2 client has no certificate. API v2 and v3
/// only (API v3 refund notifications are not verified by this library yet).
///
/// Blocks on one HTTP exchange; thread-safe, as `wxpay_query_order()`.
///
/// # Safety
///
/// `client` is NULL or a live client from `wxpay_client_new()`;
/// `refund_json` is NULL or a NUL-terminated string; `out_json` and
/// `out_error` are NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wxpay_refund(
    client: *const WxPayClient,
    refund_json: *const c_char,
    out_json: *mut *mut c_char,
    out_error: *mut *mut c_char,
) -> i32 {
    ffi_boundary(out_error, || {
        // SAFETY: the caller's contract on each pointer (see the doc).
        unsafe {
            call_with_json(
                client,
                refund_json,
                "refund_json",
                out_json,
                "refund receipt",
                |c, json| c.refund(&refund_from_json(json)?),
            )
        }
    })
}

/// The refunds of an order (API v2 `refundquery`).
///
/// `order_ref_json`: as for `wxpay_query_order()`.
///
/// `*out_json` is set to NULL on entry (`out_json` itself must not be NULL).
/// On success returns `WXPAY_OK` and stores in `*out_json` a JSON array with
/// one object per refund, `{"out_refund_no", "refund_id", "refund_fee",
/// "refund_status"}` (`refund_fee` an integer of fen; `refund_status` one of
/// `"SUCCESS"`, `"PROCESSING"`, `"REFUNDCLOSE"`, `"CHANGE"`). An order
/// without refunds is `WXPAY_ERR_REJECTED` with `"gateway_code":
/// "REFUNDNOTEXIST"`, as the gateway answers it. The caller owns the string
/// and frees it with `wxpay_string_free()`.
///
/// On failure returns a non-zero code, `*out_json` stays NULL, and
/// `*out_error` is filled as described at `wxpay_client_new()`. API v2 only.
///
/// Blocks on one HTTP exchange; thread-safe, as `wxpay_query_order()`.
///
/// # Safety
///
/// `client` is NULL or a live client from `wxpay_client_new()`;
/// `order_ref_json` is NULL or a NUL-terminated string; `out_json` and
/// `out_error` are NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wxpay_query_refunds(
    client: *const WxPayClient,
    order_ref_json: *const c_char,
    out_json: *mut *mut c_char,
    out_error: *mut *mut c_char,
) -> i32 {
    ffi_boundary(out_error, || {
        // SAFETY: the caller's contract on each pointer (see the doc).
        unsafe {
            call_with_json(
                client,
                order_ref_json,
                "order_ref_json",
                out_json,
                "refund list",
                |c, json| c.query_refunds(&order_ref_from_json(json)?),
            )
        }
    })
}

/// Verifies a payment notification: the raw body of the request WeChat sent
/// to your `notify_url` (API v2: the XML POST body; 2014 flow: the query
/// string). Call it from your notification handler before acting on
/// anything the request claims.
///
/// `body`, `body_len`: the bytes exactly as received. They need no NUL
/// terminator and are not required to be UTF-8 (a body that is not is an
/// invalid notification, not a caller error); `body` must not be NULL, even
/// when `body_len` is 0. A `body_len` above `WXPAY_MAX_INPUT_BYTES` fails
/// with `WXPAY_ERR_INPUT_TOO_LONG` without a byte being read; the verifier
/// itself refuses bodies over 64 KiB (XML) or 8 KiB (query string). Only
/// read during the call. (`body_len` is a `uint64_t`, not a `size_t`, so
/// that this header needs nothing but `<stdint.h>`; every `size_t` converts
/// to it without loss.)
///
/// `expected_total_fee`: the order's amount in fen as your records have it;
/// the notification must claim exactly that. `0` or less: not checked (then
/// compare `total_fee` yourself). Above 2147483647:
/// `WXPAY_ERR_INVALID_ARGUMENT`.
///
/// `*out_json` is set to NULL on entry (`out_json` itself must not be NULL).
/// On success returns `WXPAY_OK` and stores in `*out_json` a JSON object
/// `{"notification": {"paid", "out_trade_no", "transaction_id",
/// "total_fee", "time_end", "attach", "fields"}, "reply": "..."}`: `paid` is
/// a boolean (a verified notification of a *failed* payment has `false`:
/// acknowledge it, ship nothing), `time_end` and `attach` may be `null`,
/// `fields` holds every field of the message, verified; `reply` is the body
/// to answer WeChat with (the v2 SUCCESS XML, or `success`), once you have
/// recorded the payment. WeChat repeats a notification until it gets that
/// reply, so the same notification may verify more than once: act on it
/// idempotently per `out_trade_no`. The caller owns the string and frees it
/// with `wxpay_string_free()`.
///
/// On failure returns a non-zero code (`WXPAY_ERR_INVALID_NOTIFICATION` when
/// the body is refused: signature, merchant, amount, shape), `*out_json`
/// stays NULL, and `*out_error` is filled as described at
/// `wxpay_client_new()`. Do not act on the request, and answer it with the
/// error document's `"reply"`: the failure reply (WeChat will send it again),
/// whose message is only the failure's kind (e.g. `invalid_notification`;
/// the details are for your logs, not for the sender). Every failure carries
/// `"reply"` except a NULL `client` and `WXPAY_ERR_PANIC`;
/// `wxpay_notification_failure_reply()` builds one too.
///
/// No network call (except, in WeChat's simulation environment, the one
/// fetch of its signing key); thread-safe.
///
/// # Safety
///
/// `client` is NULL or a live client from `wxpay_client_new()`; `body` is
/// NULL or points to `body_len` readable bytes not modified during the call;
/// `out_json` and `out_error` are NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wxpay_verify_payment_notification(
    client: *const WxPayClient,
    body: *const u8,
    body_len: u64,
    expected_total_fee: i64,
    out_json: *mut *mut c_char,
    out_error: *mut *mut c_char,
) -> i32 {
    ffi_boundary(out_error, || {
        // SAFETY: the caller's contract on each pointer (see the doc).
        unsafe {
            verify_notification(
                client,
                body,
                body_len,
                expected_total_fee,
                "expected_total_fee",
                out_json,
                |client, body, expected| Ok(client.verify_payment_notification(body, expected)?),
            )
        }
    })
}

/// Verifies an API v2 refund notification: the raw XML body WeChat POSTed
/// to your `notify_url` after a refund. Its `req_info` is decrypted with the
/// API key (which is what authenticates it: refund notifications carry no
/// `sign`) and checked.
///
/// `body`, `body_len`: as for `wxpay_verify_payment_notification()`.
/// `expected_refund_fee`: the refunded amount in fen as your records have
/// it; `0` or less: not checked.
///
/// `*out_json` is set to NULL on entry (`out_json` itself must not be NULL).
/// On success returns `WXPAY_OK` and stores in `*out_json` a JSON object
/// `{"notification": {"out_trade_no", "out_refund_no", "refund_id",
/// "total_fee", "refund_fee", "refund_status", "fields"}, "reply": "..."}`
/// (`refund_status`: `"SUCCESS"`, `"CHANGE"` or `"REFUNDCLOSE"`; `fields`:
/// every decrypted field), to be handled idempotently per `out_refund_no`
/// and answered with `reply`. The caller owns the string and frees it with
/// `wxpay_string_free()`.
///
/// Failures are reported as for `wxpay_verify_payment_notification()`, the
/// error document carrying the failure `"reply"`. API v2 only (a client
/// configured with `"api": "legacy"` fails with
/// `WXPAY_ERR_INVALID_ARGUMENT`). No network call; thread-safe.
///
/// # Safety
///
/// `client` is NULL or a live client from `wxpay_client_new()`; `body` is
/// NULL or points to `body_len` readable bytes not modified during the call;
/// `out_json` and `out_error` are NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wxpay_verify_refund_notification(
    client: *const WxPayClient,
    body: *const u8,
    body_len: u64,
    expected_refund_fee: i64,
    out_json: *mut *mut c_char,
    out_error: *mut *mut c_char,
) -> i32 {
    ffi_boundary(out_error, || {
        // SAFETY: the caller's contract on each pointer (see the doc).
        unsafe {
            verify_notification(
                client,
                body,
                body_len,
                expected_refund_fee,
                "expected_refund_fee",
                out_json,
                |client, body, expected| Ok(client.verify_refund_notification(body, expected)?),
            )
        }
    })
}

/// Verifies an API v3 payment notification: the request WeChat Pay POSTed to
/// your `notify_url`, its `Wechatpay-*` headers (`Wechatpay-Serial`,
/// `-Signature`, `-Timestamp`, `-Nonce`) over the raw JSON body, then the
/// `AEAD_AES_256_GCM` resource decrypted with the API v3 key, the merchant's
/// `mchid` and `appid`, and the amount. Call it from your notification
/// handler before acting on anything the request claims. A client
/// configured with another `"api"` fails with `WXPAY_ERR_INVALID_ARGUMENT`
/// (use `wxpay_verify_payment_notification()`).
///
/// `headers_json`: a NUL-terminated UTF-8 JSON object of the request's
/// headers, `{"Wechatpay-Serial": "...", "Wechatpay-Signature": "...", ...}`:
/// names in any case, values strings (other headers may be there and are
/// ignored). A name given twice, in the same or another case, a value that
/// is not a string, or anything but an object fails with
/// `WXPAY_ERR_INVALID_ARGUMENT` (`WXPAY_ERR_INVALID_JSON` when it is not
/// JSON); a missing `Wechatpay-*` header is an invalid notification. Only
/// read during the call.
///
/// `body`, `body_len`, `expected_total_fee`: as for
/// `wxpay_verify_payment_notification()` (`0` or less: the amount is not
/// checked).
///
/// `*out_json` is set to NULL on entry (`out_json` itself must not be NULL).
/// On success returns `WXPAY_OK` and stores in `*out_json` a JSON object
/// `{"notification": {"paid", "out_trade_no", "transaction_id", "total_fee",
/// "time_end", "attach", "fields"}, "reply": "", "reply_status": 204}`: API
/// v3 acknowledges with an empty body (`reply`) and a 200 or 204 status
/// (`reply_status`), once you have recorded the payment. Act on it
/// idempotently per `out_trade_no`: WeChat Pay repeats a notification until
/// acknowledged. The caller owns the string and frees it with
/// `wxpay_string_free()`.
///
/// On failure returns a non-zero code (`WXPAY_ERR_INVALID_NOTIFICATION`
/// when the request is refused: a missing header, the signature, an unknown
/// key serial, a stale timestamp, decryption, merchant, amount), `*out_json`
/// stays NULL, and `*out_error` is filled as described at
/// `wxpay_client_new()`, plus `"reply"`, the body to answer with
/// (`{"code":"FAIL","message":KIND}`, naming only the failure's kind), and
/// `"reply_status"`: `500`, the HTTP status to answer with (WeChat Pay will
/// send the notification again). Do not act on the request. Every failure
/// carries both except a NULL `client` and `WXPAY_ERR_PANIC`. (`"reply_status"`
/// is the status *you* answer with; `"http_status"` in an error document is
/// always one the gateway answered.)
///
/// No network call, except in certificate mode (no `wechatpay_public_key` in
/// the configuration) when the notification names a certificate serial the
/// client does not know yet: the platform certificates are then downloaded
/// once, and a failure of that download is reported as such (e.g.
/// `WXPAY_ERR_NETWORK`), still with `"reply"`. Thread-safe.
///
/// # Safety
///
/// `client` is NULL or a live client from `wxpay_client_new()`;
/// `headers_json` is NULL or a NUL-terminated string; `body` is NULL or
/// points to `body_len` readable bytes not modified during the call;
/// `out_json` and `out_error` are NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wxpay_verify_signed_notification(
    client: *const WxPayClient,
    headers_json: *const c_char,
    body: *const u8,
    body_len: u64,
    expected_total_fee: i64,
    out_json: *mut *mut c_char,
    out_error: *mut *mut c_char,
) -> i32 {
    ffi_boundary(out_error, || {
        // SAFETY: the caller's contract on each pointer (see the doc).
        unsafe {
            verify_notification(
                client,
                body,
                body_len,
                expected_total_fee,
                "expected_total_fee",
                out_json,
                |client, body, expected| {
                    // SAFETY (inside the block above): the caller's
                    // contract on `headers_json`. Read here, so that a bad
                    // argument's error document carries the reply too.
                    let headers = read_str(headers_json, "headers_json")?;
                    let headers = headers_from_json(headers)?;
                    Ok(client.verify_signed_notification(&headers, body, expected)?)
                },
            )
        }
    })
}

/// Downloads WeChat Pay's platform certificates now (API v3, certificate
/// mode: a configuration without `wechatpay_public_key`) and keeps them in
/// the client. Clients do this by themselves (before the first call that
/// needs them, every `platform_cert_refresh_secs`, and when an answer or a
/// notification names an unknown serial); call it to fail early, at start-up,
/// on a wrong API v3 key or an unreachable gateway.
///
/// `*out_count` is set to 0 on entry (`out_count` itself must not be NULL).
/// On success returns `WXPAY_OK` and stores how many certificates the
/// gateway listed in `*out_count`. On failure returns a non-zero code and
/// fills `*out_error` as described at `wxpay_client_new()`: a client of
/// another `"api"` fails with `WXPAY_ERR_INVALID_ARGUMENT`; an answer that
/// does not decrypt with the API v3 key or does not verify with the
/// certificates it lists is `WXPAY_ERR_MALFORMED_RESPONSE`.
///
/// Blocks on one HTTP exchange (bounded by the configured `timeout_ms`);
/// thread-safe (concurrent downloads are made one at a time).
///
/// # Safety
///
/// `client` is NULL or a live client from `wxpay_client_new()`; `out_count`
/// is NULL or valid for writing one `int32_t`; `out_error` is NULL or valid
/// for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wxpay_download_certificates(
    client: *const WxPayClient,
    out_count: *mut i32,
    out_error: *mut *mut c_char,
) -> i32 {
    ffi_boundary(out_error, || {
        if out_count.is_null() {
            return Err(Failure::null("out_count"));
        }
        // SAFETY: not NULL, and the caller promises it is writable.
        unsafe { out_count.write(0) };
        // SAFETY: the caller's contract on `client`.
        let client = unsafe { client_ref(client)? };
        let count = client.download_certificates()?;
        // The gateway lists a handful; saturate rather than wrap.
        let count = i32::try_from(count).unwrap_or(i32::MAX);
        // SAFETY: checked above.
        unsafe { out_count.write(count) };
        Ok(())
    })
}

/// The body that acknowledges a verified notification: the API v2 SUCCESS
/// XML, `success` for a client configured with `"api": "legacy"`, or the
/// empty string for `"api": "v3"` (answered with status 200 or 204). (The
/// verifiers also return it, as `"reply"`.)
///
/// `*out_reply` is set to NULL on entry (`out_reply` itself must not be
/// NULL). On success returns `WXPAY_OK` and stores the reply in
/// `*out_reply`; the caller owns it and frees it with `wxpay_string_free()`.
/// On failure returns a non-zero code and fills `*out_error` as described at
/// `wxpay_client_new()`. Pure: no network, thread-safe.
///
/// # Safety
///
/// `client` is NULL or a live client from `wxpay_client_new()`; `out_reply`
/// and `out_error` are NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wxpay_notification_success_reply(
    client: *const WxPayClient,
    out_reply: *mut *mut c_char,
    out_error: *mut *mut c_char,
) -> i32 {
    ffi_boundary(out_error, || {
        // SAFETY: the caller's contract on each pointer (see the doc).
        unsafe { clear_out(out_reply, "out_reply")? };
        let client = unsafe { client_ref(client)? };
        let reply = c_string(client.notification_success_reply())?;
        // SAFETY: checked above.
        unsafe { out_reply.write(reply) };
        Ok(())
    })
}

/// The body that refuses a notification, so that WeChat sends it again: the
/// API v2 FAIL XML carrying `reason` as its `return_msg`, `fail` for a
/// client configured with `"api": "legacy"`, or for `"api": "v3"` the JSON
/// `{"code":"FAIL","message":REASON}` (answered with status 500). For a notification that
/// verified but that you could not record (say, your database is down);
/// the verifiers' error documents already carry one as `"reply"`.
///
/// `reason`: a NUL-terminated UTF-8 string (may be empty), sent to WeChat as
/// it is: put no secret in it. Only read during the call.
///
/// `*out_reply` is set to NULL on entry (`out_reply` itself must not be
/// NULL). On success returns `WXPAY_OK` and stores the reply in
/// `*out_reply`; the caller owns it and frees it with `wxpay_string_free()`.
/// On failure returns a non-zero code and fills `*out_error` as described at
/// `wxpay_client_new()`. Pure: no network, thread-safe.
///
/// # Safety
///
/// `client` is NULL or a live client from `wxpay_client_new()`; `reason` is
/// NULL or a NUL-terminated string; `out_reply` and `out_error` are NULL or
/// valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wxpay_notification_failure_reply(
    client: *const WxPayClient,
    reason: *const c_char,
    out_reply: *mut *mut c_char,
    out_error: *mut *mut c_char,
) -> i32 {
    ffi_boundary(out_error, || {
        // SAFETY: the caller's contract on each pointer (see the doc).
        unsafe { clear_out(out_reply, "out_reply")? };
        let client = unsafe { client_ref(client)? };
        let reason = unsafe { read_str(reason, "reason")? };
        let reply = c_string(client.notification_failure_reply(reason))?;
        // SAFETY: checked above.
        unsafe { out_reply.write(reply) };
        Ok(())
    })
}

/// Frees a string returned by this library (`*out_json`, `*out_sign`,
/// `*out_reply`, `*out_error`). NULL is a no-op. Never pass it a string from
/// anywhere else, nor the static strings of `wxpay_version()` and
/// `wxpay_result_name()`; and never free a libwxpay string with `free()`.
///
/// # Safety
///
/// `s` is NULL or a string returned by this library and not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wxpay_string_free(s: *mut c_char) {
    if s.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller gives back a pointer from CString::into_raw.
        drop(unsafe { CString::from_raw(s) });
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn take(s: *mut c_char) -> String {
        assert!(!s.is_null());
        let text = unsafe { CStr::from_ptr(s) }
            .to_str()
            .expect("utf-8")
            .to_owned();
        unsafe { wxpay_string_free(s) };
        text
    }

    fn error_doc(s: *mut c_char) -> Value {
        serde_json::from_str(&take(s)).expect("the error document is JSON")
    }

    #[test]
    fn codes_are_distinct_named_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for r in ALL_RESULTS {
            assert!(seen.insert(r as i32), "{r:?} reuses a number");
            assert_eq!(WxPayResult::from_code(r as i32), Some(r));
            let name = unsafe { CStr::from_ptr(wxpay_result_name(r as i32)) };
            assert_eq!(name.to_str().expect("utf-8"), r.name());
            let message = unsafe { CStr::from_ptr(wxpay_result_message(r as i32)) };
            assert_eq!(message.to_str().expect("utf-8"), r.message());
        }
        let unknown = unsafe { CStr::from_ptr(wxpay_result_name(7)) };
        assert_eq!(unknown.to_bytes(), b"unknown");
        let mut numbers: Vec<i32> = ALL_RESULTS.iter().map(|r| *r as i32).collect();
        let sorted = {
            let mut s = numbers.clone();
            s.sort_unstable();
            s
        };
        assert_eq!(numbers, sorted, "ALL is in numeric order");
        numbers.dedup();
        assert_eq!(numbers.len(), ALL_RESULTS.len());
    }

    #[test]
    fn kinds_map_to_codes_with_the_same_name() {
        use crate::ErrorKind as K;
        for kind in [
            K::InvalidConfig,
            K::InvalidOrder,
            K::InvalidJson,
            K::InvalidArgument,
            K::Network,
            K::HttpStatus,
            K::Gateway,
            K::MalformedResponse,
            K::TokenStore,
            K::Rejected,
            K::InvalidNotification,
        ] {
            assert_eq!(WxPayResult::from_kind(kind).name(), kind.as_str());
        }
    }

    #[test]
    fn a_panic_becomes_a_code_and_a_document() {
        let mut error = ptr::null_mut();
        let code = ffi_boundary(&mut error, || panic!("boom"));
        assert_eq!(code, WxPayResult::WXPAY_ERR_PANIC as i32);
        let doc = error_doc(error);
        assert_eq!(doc["kind"], "panic");
        assert_eq!(doc["code"], 1901);
        // Without an out_error the code still comes back.
        let code = ffi_boundary(ptr::null_mut(), || panic!("boom"));
        assert_eq!(code, WxPayResult::WXPAY_ERR_PANIC as i32);
    }

    #[test]
    fn gateway_errors_carry_errcode_and_errmsg() {
        let mut error = ptr::null_mut();
        let code = ffi_boundary(&mut error, || {
            Err(Error::Gateway {
                errcode: 45009,
                errmsg: "quota\0x".into(),
            }
            .into())
        });
        assert_eq!(code, WxPayResult::WXPAY_ERR_GATEWAY as i32);
        let doc = error_doc(error);
        assert_eq!(doc["errcode"], 45009);
        assert_eq!(doc["errmsg"], "quota\0x");
        assert_eq!(doc["kind"], "gateway");
        assert_eq!(doc["retryable"], false);
        assert!(doc.get("http_status").is_none());

        let code = ffi_boundary(&mut error, || Err(Error::HttpStatus { status: 503 }.into()));
        assert_eq!(code, WxPayResult::WXPAY_ERR_HTTP_STATUS as i32);
        let doc = error_doc(error);
        assert_eq!(doc["http_status"], 503);
        assert_eq!(doc["retryable"], true);
        assert!(doc.get("errcode").is_none());
    }

    #[test]
    fn rejections_carry_the_gateway_code() {
        let mut error = ptr::null_mut();
        let code = ffi_boundary(&mut error, || {
            Err(Error::Rejected {
                code: "ORDERPAID".into(),
                message: "already paid".into(),
                http_status: None,
            }
            .into())
        });
        assert_eq!(code, WxPayResult::WXPAY_ERR_REJECTED as i32);
        let doc = error_doc(error);
        assert_eq!(doc["kind"], "rejected");
        assert_eq!(doc["gateway_code"], "ORDERPAID");
        assert_eq!(doc["gateway_message"], "already paid");
        assert!(doc.get("errcode").is_none());
    }

    #[test]
    fn interior_nul_in_an_output_is_an_error_not_a_truncation() {
        let failure = c_string("a\0b".into()).expect_err("NUL inside");
        assert_eq!(failure.code, WxPayResult::WXPAY_ERR_INTERNAL);
    }

    #[test]
    fn inputs_are_bounded_and_checked() {
        let long = vec![b'a'; WXPAY_MAX_INPUT_BYTES + 10]
            .into_iter()
            .chain([0])
            .collect::<Vec<u8>>();
        let err = unsafe { read_str(long.as_ptr().cast(), "x") }.expect_err("too long");
        assert_eq!(err.code, WxPayResult::WXPAY_ERR_INPUT_TOO_LONG);
        let exact = vec![b'a'; WXPAY_MAX_INPUT_BYTES]
            .into_iter()
            .chain([0])
            .collect::<Vec<u8>>();
        let text = unsafe { read_str(exact.as_ptr().cast(), "x") }.expect("at the limit");
        assert_eq!(text.len(), WXPAY_MAX_INPUT_BYTES);
        let bad = b"ok\xff\0";
        let err = unsafe { read_str(bad.as_ptr().cast(), "x") }.expect_err("utf-8");
        assert_eq!(err.code, WxPayResult::WXPAY_ERR_INVALID_UTF8);
        assert!(!err.message.contains("ok\u{fffd}"));
    }

    #[test]
    fn sign_matches_the_public_package_vector() {
        let params = c"{\"bank_type\":\"WX\",\"body\":\"\xe6\x94\xaf\xe4\xbb\x98\xe6\xb5\x8b\xe8\xaf\x95\",\"fee_type\":\"1\",\"input_charset\":\"UTF-8\",\"notify_url\":\"http://weixin.qq.com\",\"out_trade_no\":\"7240b65810859cbf2a8d9f76a638c0a3\",\"partner\":\"1900000109\",\"spbill_create_ip\":\"196.168.1.1\",\"total_fee\":\"1\"}";
        let mut out = ptr::null_mut();
        let mut error = ptr::null_mut();
        let code = unsafe {
            wxpay_sign(
                c"legacy-package".as_ptr(),
                c"8934e7d15453e97507ef794cf7b0519d".as_ptr(),
                params.as_ptr(),
                &mut out,
                &mut error,
            )
        };
        assert_eq!(code, 0);
        assert!(error.is_null());
        assert_eq!(take(out), "7F77B507B755B3262884291517E380F8");
    }

    const V2_CONFIG: &CStr = c"{\"api\":\"v2\",\"appid\":\"wxd930ea5d5a258f4f\",\"mch_id\":\"10000100\",\"api_key\":\"192006250b4c09247ec02edce69f6a2d\",\"notify_url\":\"https://example.com/notify\",\"api_base\":\"http://127.0.0.1:1\",\"timeout_ms\":1000}";
    const LEGACY_CONFIG: &CStr = c"{\"appid\":\"wx1\",\"app_secret\":\"s\",\"app_key\":\"k\",\"partner_id\":\"1\",\"partner_key\":\"p\",\"notify_url\":\"https://example.com/n\",\"api_base\":\"http://127.0.0.1:1\"}";

    /// A client for `config`, freed when dropped.
    struct Handle(*mut WxPayClient);

    impl Handle {
        fn new(config: &CStr) -> Handle {
            let mut client = ptr::null_mut();
            let code = unsafe { wxpay_client_new(config.as_ptr(), &mut client, ptr::null_mut()) };
            assert_eq!(code, 0);
            Handle(client)
        }
    }

    impl Drop for Handle {
        fn drop(&mut self) {
            unsafe { wxpay_client_free(self.0) };
        }
    }

    /// A payment notification for the V2_CONFIG merchant, signed with its key.
    fn signed_payment(total_fee: &str) -> Vec<u8> {
        let mut fields: crate::crypto::sign::Fields = [
            ("return_code", "SUCCESS"),
            ("result_code", "SUCCESS"),
            ("appid", "wxd930ea5d5a258f4f"),
            ("mch_id", "10000100"),
            ("nonce_str", "n1"),
            ("out_trade_no", "FFI1"),
            ("transaction_id", "4200000001"),
            ("total_fee", total_fee),
            ("time_end", "20240101120000"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let key = Secret::new("192006250b4c09247ec02edce69f6a2d");
        let sign = crate::crypto::sign::sign_v2(&fields, &key, crate::crypto::sign::SignType::Md5);
        fields.insert("sign".into(), sign.into_signature());
        crate::api::v2::xml::write(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .into_bytes()
    }

    fn kind_of(result: Result<impl fmt::Debug, Error>) -> crate::ErrorKind {
        result.expect_err("refused").kind()
    }

    #[test]
    fn order_refs_are_flat_and_strict() {
        assert_eq!(
            order_ref_from_json(r#"{"out_trade_no":"A1"}"#).expect("valid"),
            OrderRef::OutTradeNo("A1".into())
        );
        assert_eq!(
            order_ref_from_json(r#"{"transaction_id":"4200","out_trade_no":null}"#).expect("valid"),
            OrderRef::TransactionId("4200".into())
        );
        use crate::ErrorKind as K;
        for (json, kind) in [
            ("{", K::InvalidJson),
            ("[1,", K::InvalidJson),
            ("{} x", K::InvalidJson),
            ("[]", K::InvalidArgument),
            ("\"A1\"", K::InvalidArgument),
            ("{}", K::InvalidArgument),
            (
                r#"{"out_trade_no":"A1","transaction_id":"4200"}"#,
                K::InvalidArgument,
            ),
            (r#"{"out_trade_no":5}"#, K::InvalidArgument),
            (r#"{"out_trade_no":""}"#, K::InvalidArgument),
            (r#"{"out_trade_no":"A 1"}"#, K::InvalidArgument),
            (r#"{"out_trade_no":"A1","x":1}"#, K::InvalidArgument),
            (
                r#"{"out_trade_no":"A1","out_trade_no":"A2"}"#,
                K::InvalidArgument,
            ),
            // serde's enum form is not the C API's.
            (r#"{"OutTradeNo":"A1"}"#, K::InvalidArgument),
        ] {
            assert_eq!(kind_of(order_ref_from_json(json)), kind, "{json}");
        }
        let long = format!(r#"{{"out_trade_no":"{}"}}"#, "A".repeat(33));
        assert_eq!(kind_of(order_ref_from_json(&long)), K::InvalidArgument);
        let message = order_ref_from_json(r#"{"out_trade_no":"A1","out_trade_no":"A2"}"#)
            .expect_err("duplicated")
            .to_string();
        assert!(message.contains("more than once"), "{message}");
    }

    #[test]
    fn refunds_are_flat_and_strict() {
        let refund = refund_from_json(
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
        let minimal = refund_from_json(
            r#"{"out_trade_no":"A1","out_refund_no":"R1","total_fee":1,"refund_fee":1}"#,
        )
        .expect("valid");
        assert_eq!(minimal.refund_desc, None);
        const BASE: &str = r#""out_trade_no":"A1","out_refund_no":"R1""#;
        for (rest, needle) in [
            (r#""total_fee":1"#, "refund_fee is missing"),
            (r#""total_fee":0,"refund_fee":1"#, "total_fee"),
            (r#""total_fee":-1,"refund_fee":1"#, "total_fee"),
            (r#""total_fee":1.5,"refund_fee":1"#, "total_fee"),
            (r#""total_fee":1e2,"refund_fee":1"#, "total_fee"),
            (r#""total_fee":"100","refund_fee":1"#, "total_fee"),
            (r#""total_fee":2147483648,"refund_fee":1"#, "total_fee"),
            (
                r#""total_fee":18446744073709551616,"refund_fee":1"#,
                "total_fee",
            ),
            (
                r#""total_fee":1,"refund_fee":1,"refund_desc":5"#,
                "refund_desc",
            ),
            (
                r#""total_fee":1,"refund_fee":1,"refund_fee":100"#,
                "more than once",
            ),
            (r#""total_fee":1,"refund_fee":1,"amount":1"#, "amount"),
        ] {
            let json = format!("{{{BASE},{rest}}}");
            let error = refund_from_json(&json).expect_err("refused");
            assert_eq!(error.kind(), crate::ErrorKind::InvalidArgument, "{json}");
            assert!(error.to_string().contains(needle), "{json}: {error}");
        }
        let no_refund_no =
            refund_from_json(r#"{"out_trade_no":"A1","total_fee":1,"refund_fee":1}"#);
        assert_eq!(kind_of(no_refund_no), crate::ErrorKind::InvalidArgument);
    }

    #[test]
    fn payment_notifications_verify_and_carry_the_reply() {
        let client = Handle::new(V2_CONFIG);
        let body = signed_payment("1999");
        let mut out = ptr::dangling_mut::<c_char>();
        let mut error = ptr::dangling_mut::<c_char>();
        let code = unsafe {
            wxpay_verify_payment_notification(
                client.0,
                body.as_ptr(),
                body.len() as u64,
                1999,
                &mut out,
                &mut error,
            )
        };
        assert_eq!(code, 0);
        assert!(error.is_null());
        let doc: Value = serde_json::from_str(&take(out)).expect("JSON");
        assert_eq!(doc["notification"]["paid"], true);
        assert_eq!(doc["notification"]["total_fee"], 1999);
        assert_eq!(doc["notification"]["out_trade_no"], "FFI1");
        assert_eq!(doc["notification"]["fields"]["mch_id"], "10000100");
        assert_eq!(doc["reply"], crate::api::v2::notify::V2_SUCCESS_REPLY);

        // Unchecked amount.
        let code = unsafe {
            wxpay_verify_payment_notification(
                client.0,
                body.as_ptr(),
                body.len() as u64,
                0,
                &mut out,
                ptr::null_mut(),
            )
        };
        assert_eq!(code, 0);
        take(out);

        let refused = |body: &[u8], len: u64, fee: i64| {
            let mut out = ptr::dangling_mut::<c_char>();
            let mut error = ptr::dangling_mut::<c_char>();
            let code = unsafe {
                wxpay_verify_payment_notification(
                    client.0,
                    body.as_ptr(),
                    len,
                    fee,
                    &mut out,
                    &mut error,
                )
            };
            assert!(out.is_null());
            (code, error_doc(error))
        };
        let (code, doc) = refused(&body, body.len() as u64, 1998);
        assert_eq!(code, WxPayResult::WXPAY_ERR_INVALID_NOTIFICATION as i32);
        let reply = doc["reply"].as_str().expect("a failure reply");
        assert_eq!(
            reply,
            crate::api::v2::notify::v2_failure_reply("invalid_notification"),
            "the reply names the kind, not the details"
        );
        assert!(doc["message"].as_str().expect("message").contains("1998"));

        let tampered = String::from_utf8(body.clone())
            .expect("utf-8")
            .replace("1999", "1")
            .into_bytes();
        let (code, doc) = refused(&tampered, tampered.len() as u64, 0);
        assert_eq!(code, WxPayResult::WXPAY_ERR_INVALID_NOTIFICATION as i32);
        assert!(doc["message"]
            .as_str()
            .expect("message")
            .contains("signature"));

        let (code, doc) = refused(b"\xff\xfe<xml>", 7, 0);
        assert_eq!(code, WxPayResult::WXPAY_ERR_INVALID_NOTIFICATION as i32);
        assert!(doc["reply"].is_string());
        let (code, doc) = refused(b"", 0, 0);
        assert_eq!(code, WxPayResult::WXPAY_ERR_INVALID_NOTIFICATION as i32);
        assert!(doc["reply"].is_string());

        // A length over the limit is refused before any byte is read: the
        // one-byte buffer would otherwise be overrun.
        let (code, doc) = refused(b"x", WXPAY_MAX_INPUT_BYTES as u64 + 1, 0);
        assert_eq!(code, WxPayResult::WXPAY_ERR_INPUT_TOO_LONG as i32);
        assert!(doc["reply"].is_string());
        let (code, _) = refused(b"x", u64::MAX, 0);
        assert_eq!(code, WxPayResult::WXPAY_ERR_INPUT_TOO_LONG as i32);

        let (code, doc) = refused(&body, body.len() as u64, i64::from(i32::MAX) + 1);
        assert_eq!(code, WxPayResult::WXPAY_ERR_INVALID_ARGUMENT as i32);
        assert!(doc["message"]
            .as_str()
            .expect("message")
            .contains("expected_total_fee"));
        assert!(doc["reply"].is_string());

        // NULLs: a NULL client leaves no way to build a reply.
        let mut error = ptr::null_mut();
        let code = unsafe {
            wxpay_verify_payment_notification(
                ptr::null(),
                body.as_ptr(),
                body.len() as u64,
                0,
                &mut out,
                &mut error,
            )
        };
        assert_eq!(code, WxPayResult::WXPAY_ERR_NULL_ARGUMENT as i32);
        assert!(error_doc(error).get("reply").is_none());
        let code = unsafe {
            wxpay_verify_payment_notification(client.0, ptr::null(), 0, 0, &mut out, &mut error)
        };
        assert_eq!(code, WxPayResult::WXPAY_ERR_NULL_ARGUMENT as i32);
        let doc = error_doc(error);
        assert!(doc["message"].as_str().expect("message").contains("body"));
        assert!(doc["reply"].is_string());
        let code = unsafe {
            wxpay_verify_payment_notification(
                client.0,
                body.as_ptr(),
                body.len() as u64,
                0,
                ptr::null_mut(),
                &mut error,
            )
        };
        assert_eq!(code, WxPayResult::WXPAY_ERR_NULL_ARGUMENT as i32);
        assert!(error_doc(error)["message"]
            .as_str()
            .expect("message")
            .contains("out_json"));
    }

    #[test]
    fn refund_notifications_need_their_encrypted_req_info() {
        let client = Handle::new(V2_CONFIG);
        // A payment notification is not a refund notification.
        let body = signed_payment("1");
        let mut out = ptr::dangling_mut::<c_char>();
        let mut error = ptr::null_mut();
        let code = unsafe {
            wxpay_verify_refund_notification(
                client.0,
                body.as_ptr(),
                body.len() as u64,
                0,
                &mut out,
                &mut error,
            )
        };
        assert_eq!(code, WxPayResult::WXPAY_ERR_INVALID_NOTIFICATION as i32);
        assert!(out.is_null());
        assert!(error_doc(error)["reply"].is_string());
    }

    #[test]
    fn v2_operations_check_their_arguments_before_the_network() {
        let v2 = Handle::new(V2_CONFIG);
        let legacy = Handle::new(LEGACY_CONFIG);
        let mut out = ptr::dangling_mut::<c_char>();
        let mut error = ptr::null_mut();
        let code = unsafe { wxpay_query_order(v2.0, c"{\"id\":1}".as_ptr(), &mut out, &mut error) };
        assert_eq!(code, WxPayResult::WXPAY_ERR_INVALID_ARGUMENT as i32);
        assert!(out.is_null());
        assert!(error_doc(error)["message"]
            .as_str()
            .expect("message")
            .contains("order_ref_json"));
        // A legacy client refuses API v2 operations, without a network call.
        let code = unsafe {
            wxpay_query_refunds(
                legacy.0,
                c"{\"out_trade_no\":\"A1\"}".as_ptr(),
                &mut out,
                &mut error,
            )
        };
        assert_eq!(code, WxPayResult::WXPAY_ERR_INVALID_ARGUMENT as i32);
        assert!(error_doc(error)["message"]
            .as_str()
            .expect("message")
            .contains("API v2"));
        let code = unsafe { wxpay_close_order(legacy.0, c"A1".as_ptr(), &mut error) };
        assert_eq!(code, WxPayResult::WXPAY_ERR_INVALID_ARGUMENT as i32);
        take(error);
        let code = unsafe { wxpay_close_order(v2.0, c"".as_ptr(), &mut error) };
        assert_eq!(code, WxPayResult::WXPAY_ERR_INVALID_ARGUMENT as i32);
        take(error);
        let code = unsafe {
            wxpay_refund(
                v2.0,
                c"{\"out_trade_no\":\"A1\",\"out_refund_no\":\"R 1\",\"total_fee\":2,\"refund_fee\":1}"
                    .as_ptr(),
                &mut out,
                &mut error,
            )
        };
        assert_eq!(code, WxPayResult::WXPAY_ERR_INVALID_ARGUMENT as i32);
        assert!(error_doc(error)["message"]
            .as_str()
            .expect("message")
            .contains("out_refund_no"));
        // A valid query reaches the (closed) gateway port.
        let code = unsafe {
            wxpay_query_order(
                v2.0,
                c"{\"out_trade_no\":\"A1\"}".as_ptr(),
                &mut out,
                &mut error,
            )
        };
        assert_eq!(code, WxPayResult::WXPAY_ERR_NETWORK as i32);
        assert!(out.is_null());
        assert_eq!(error_doc(error)["retryable"], true);
    }

    #[test]
    fn notification_replies() {
        let v2 = Handle::new(V2_CONFIG);
        let legacy = Handle::new(LEGACY_CONFIG);
        let mut reply = ptr::null_mut();
        let code = unsafe { wxpay_notification_success_reply(v2.0, &mut reply, ptr::null_mut()) };
        assert_eq!(code, 0);
        assert_eq!(take(reply), crate::api::v2::notify::V2_SUCCESS_REPLY);
        let code =
            unsafe { wxpay_notification_success_reply(legacy.0, &mut reply, ptr::null_mut()) };
        assert_eq!(code, 0);
        assert_eq!(take(reply), "success");
        let code = unsafe {
            wxpay_notification_failure_reply(
                v2.0,
                c"busy ]]> now".as_ptr(),
                &mut reply,
                ptr::null_mut(),
            )
        };
        assert_eq!(code, 0);
        let fields = crate::api::v2::xml::parse(take(reply).as_bytes()).expect("XML");
        assert_eq!(fields["return_code"], "FAIL");
        assert_eq!(fields["return_msg"], "busy ]]> now");
        let mut error = ptr::null_mut();
        let code =
            unsafe { wxpay_notification_failure_reply(v2.0, ptr::null(), &mut reply, &mut error) };
        assert_eq!(code, WxPayResult::WXPAY_ERR_NULL_ARGUMENT as i32);
        assert!(reply.is_null());
        take(error);
        let code = unsafe { wxpay_notification_success_reply(ptr::null(), &mut reply, &mut error) };
        assert_eq!(code, WxPayResult::WXPAY_ERR_NULL_ARGUMENT as i32);
        take(error);
    }

    #[test]
    fn outputs_are_null_on_failure() {
        // Sentinels a failed call must overwrite with NULL (never dereferenced).
        let mut client = ptr::dangling_mut::<WxPayClient>();
        let mut error = ptr::dangling_mut::<c_char>();
        let code = unsafe { wxpay_client_new(c"{".as_ptr(), &mut client, &mut error) };
        assert_eq!(code, WxPayResult::WXPAY_ERR_INVALID_JSON as i32);
        assert!(client.is_null());
        assert_eq!(error_doc(error)["kind"], "invalid_json");
        let code = unsafe { wxpay_client_new(c"{}".as_ptr(), ptr::null_mut(), ptr::null_mut()) };
        assert_eq!(code, WxPayResult::WXPAY_ERR_NULL_ARGUMENT as i32);
    }

    #[test]
    fn headers_are_a_flat_object_of_strings_with_distinct_names() {
        let headers = headers_from_json(r#"{"Wechatpay-Nonce":"n","content-type":"a/b"}"#)
            .expect("flat strings");
        assert_eq!(
            headers,
            [
                ("Wechatpay-Nonce".to_owned(), "n".to_owned()),
                ("content-type".to_owned(), "a/b".to_owned())
            ]
        );
        for (json, kind) in [
            (r#"{"a":"#, crate::ErrorKind::InvalidJson),
            (r#"[["a","b"]]"#, crate::ErrorKind::InvalidArgument),
            (r#"{"a":1}"#, crate::ErrorKind::InvalidArgument),
            (r#"{"a":{"b":"c"}}"#, crate::ErrorKind::InvalidArgument),
            (r#"{"a":"x","a":"y"}"#, crate::ErrorKind::InvalidArgument),
            (
                r#"{"Wechatpay-Nonce":"x","WECHATPAY-NONCE":"y"}"#,
                crate::ErrorKind::InvalidArgument,
            ),
        ] {
            assert_eq!(kind_of(headers_from_json(json)), kind, "{json}");
        }
    }

    #[test]
    fn signed_notifications_carry_the_v3_reply_and_its_status() {
        let config = serde_json::json!({
            "api": "v3", "appid": "wxd930ea5d5a258f4f", "mchid": "1900000109",
            "merchant_private_key": include_str!("../sandbox/keys/merchant_key.pem"),
            "merchant_serial_no": "S1", "api_v3_key": "0123456789abcdef0123456789abcdef",
            "wechatpay_public_key": include_str!("../sandbox/keys/platform_public_key.pem"),
            "wechatpay_public_key_id": "PUB_KEY_ID_1",
            "notify_url": "https://example.com/n", "api_base": "http://127.0.0.1:1",
        })
        .to_string();
        let config = CString::new(config).expect("no NUL");
        let v3 = Handle::new(&config);
        let v2 = Handle::new(V2_CONFIG);
        let body = br#"{"id":"EV-1"}"#;
        let verify = |client: *const WxPayClient, headers: &CStr| {
            let mut out = ptr::null_mut();
            let mut error = ptr::null_mut();
            let code = unsafe {
                wxpay_verify_signed_notification(
                    client,
                    headers.as_ptr(),
                    body.as_ptr(),
                    body.len() as u64,
                    0,
                    &mut out,
                    &mut error,
                )
            };
            assert!(out.is_null());
            (code, error_doc(error))
        };
        let forged = c"{\"Wechatpay-Serial\":\"PUB_KEY_ID_1\",\"Wechatpay-Signature\":\"AAAA\",\"Wechatpay-Timestamp\":\"1700000000\",\"Wechatpay-Nonce\":\"n\"}";
        let (code, doc) = verify(v3.0, forged);
        assert_eq!(code, WxPayResult::WXPAY_ERR_INVALID_NOTIFICATION as i32);
        assert_eq!(doc["reply_status"], 500);
        assert!(doc.get("http_status").is_none(), "{doc}");
        let reply: Value =
            serde_json::from_str(doc["reply"].as_str().expect("a reply")).expect("JSON reply");
        assert_eq!(reply["code"], "FAIL");
        assert_eq!(reply["message"], "invalid_notification");

        let (code, doc) = verify(v3.0, c"{\"a\":\"x\",\"A\":\"y\"}");
        assert_eq!(code, WxPayResult::WXPAY_ERR_INVALID_ARGUMENT as i32);
        assert_eq!(doc["reply_status"], 500);

        // Another generation: its own reply, no status.
        let (code, doc) = verify(v2.0, forged);
        assert_eq!(code, WxPayResult::WXPAY_ERR_INVALID_ARGUMENT as i32);
        assert!(doc["reply"].as_str().expect("reply").starts_with("<xml>"));
        assert!(doc.get("reply_status").is_none());

        let mut count = 5;
        let mut error = ptr::null_mut();
        let code = unsafe { wxpay_download_certificates(v2.0, &mut count, &mut error) };
        assert_eq!(code, WxPayResult::WXPAY_ERR_INVALID_ARGUMENT as i32);
        assert_eq!(count, 0);
        let _ = error_doc(error);
    }

    #[test]
    fn v3_rejections_carry_the_http_status() {
        let mut error = ptr::null_mut();
        let code = ffi_boundary(&mut error, || {
            Err(Error::Rejected {
                code: "ORDER_NOT_EXIST".into(),
                message: "none".into(),
                http_status: Some(404),
            }
            .into())
        });
        assert_eq!(code, WxPayResult::WXPAY_ERR_REJECTED as i32);
        let doc = error_doc(error);
        assert_eq!(doc["gateway_code"], "ORDER_NOT_EXIST");
        assert_eq!(doc["http_status"], 404);
    }
}
