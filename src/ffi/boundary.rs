//! The C boundary, written once for every export: panics caught, pointer
//! arguments checked for NULL, strings bounded by [`WXPAY_MAX_INPUT_BYTES`]
//! and checked for UTF-8, out-pointers cleared on entry and written on
//! success, failures turned into a result code and an error document, and
//! every string handed to C freed only by [`wxpay_string_free`].
//!
//! An export is one [`ffi_call!`] whose body reads its arguments with
//! [`arg!`] (a JSON document argument through
//! [`Document`](super::documents::Document)), calls the core and returns the
//! answer:
//!
//! ```ignore
//! ffi_call!(out_error, json out_json, {
//!     let client = arg!(client);
//!     let order = arg!(order_ref_json as OrderRef);
//!     client.query_order(&order)?
//! })
//! ```

use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use serde::Serialize;

use super::results::WxPayResult;
use crate::error::Error;
use crate::Fen;

/// The longest string argument accepted, in bytes, not counting the NUL
/// terminator (1 MiB). A longer argument fails with
/// `WXPAY_ERR_INPUT_TOO_LONG`; no more than this many bytes (plus one) of it
/// are ever read. Also the longest byte buffer accepted (a notification
/// body): a longer length fails the same way, before any byte is read.
pub const WXPAY_MAX_INPUT_BYTES: usize = 1 << 20;

/// A failure on its way to the caller: its code and its error document.
#[derive(Debug)]
pub(super) struct Failure {
    /// The result code returned.
    pub(super) code: WxPayResult,
    message: String,
    retryable: bool,
    /// The library error it came from, whose gateway details the document
    /// carries.
    error: Option<Error>,
    /// A notification's failure reply, and the HTTP status to send it with.
    reply: Option<(String, Option<u16>)>,
}

impl Failure {
    /// A failure of the boundary itself (not of the library).
    pub(super) fn new(code: WxPayResult, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
            retryable: false,
            error: None,
            reply: None,
        }
    }

    /// A NULL `argument`.
    pub(super) fn null(argument: &str) -> Failure {
        Failure::new(
            WxPayResult::WXPAY_ERR_NULL_ARGUMENT,
            format!("argument `{argument}` is NULL"),
        )
    }

    fn too_long(argument: &str) -> Failure {
        Failure::new(
            WxPayResult::WXPAY_ERR_INPUT_TOO_LONG,
            format!("argument `{argument}` is longer than {WXPAY_MAX_INPUT_BYTES} bytes"),
        )
    }

    /// Adds the reply a notification's sender is to be answered with.
    pub(super) fn with_reply(mut self, reply: String, status: Option<u16>) -> Failure {
        self.reply = Some((reply, status));
        self
    }

    /// The error document, as a string for C.
    fn document(&self) -> Option<*mut c_char> {
        let error = self.error.as_ref();
        let rejected = match error {
            Some(Error::Rejected { code, message, .. }) => Some((code.as_str(), message.as_str())),
            _ => None,
        };
        let document = ErrorDocument {
            code: self.code as i32,
            errcode: error.and_then(Error::errcode),
            errmsg: error.and_then(Error::errmsg),
            gateway_code: rejected.map(|r| r.0),
            gateway_message: rejected.map(|r| r.1),
            http_status: error.and_then(Error::http_status),
            kind: self.code.name(),
            message: &self.message,
            reply: self.reply.as_ref().map(|r| r.0.as_str()),
            reply_status: self.reply.as_ref().and_then(|r| r.1),
            retryable: self.retryable,
        };
        // serde_json escapes every byte of the message (a NUL included).
        c_string(serde_json::to_string(&document).ok()?).ok()
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure {
            code: WxPayResult::from_kind(error.kind()),
            message: error.to_string(),
            retryable: error.is_retryable(),
            error: Some(error),
            reply: None,
        }
    }
}

/// The error document; its keys in alphabetical order, `"code"` first.
#[derive(Serialize)]
struct ErrorDocument<'a> {
    code: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    errcode: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errmsg: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gateway_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gateway_message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_status: Option<u16>,
    kind: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_status: Option<u16>,
    retryable: bool,
}

/// Runs an export's `body` behind the boundary and returns its result code:
/// `*out_error` (when not NULL) and the output `out` are cleared first (a
/// NULL `out` fails, naming `out_name`), then `body` runs with panics caught,
/// and its value goes to `out`. On failure `*out_error` receives the error
/// document.
///
/// # Safety
///
/// `out_error` is NULL or writable; `out` is NULL or writable; `body`'s own
/// reads are sound.
pub(super) unsafe fn call<O: Output>(
    out_error: *mut *mut c_char,
    out: O,
    out_name: &'static str,
    body: impl FnOnce() -> Result<O::Value, Failure>,
) -> i32 {
    // SAFETY: the caller's contract.
    unsafe { call_mending(out_error, out, out_name, body, |failure| failure) }
}

/// [`call`], with every failure but a panic passed through `mend` before it
/// is reported (the notification functions add their failure reply).
///
/// # Safety
///
/// As for [`call`].
pub(super) unsafe fn call_mending<O: Output>(
    out_error: *mut *mut c_char,
    out: O,
    out_name: &'static str,
    body: impl FnOnce() -> Result<O::Value, Failure>,
    mend: impl FnOnce(Failure) -> Failure,
) -> i32 {
    if !out_error.is_null() {
        // SAFETY: not NULL, and the caller promises it is writable.
        unsafe { out_error.write(ptr::null_mut()) };
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller's contract on `out`; `clear` refuses NULL, so
        // `write` runs on a checked pointer.
        unsafe { out.clear(out_name) }
            .and_then(|()| body())
            .and_then(|value| unsafe { out.write(value) })
            .map_err(mend)
    }));
    let failure = match outcome {
        Ok(Ok(())) => return WxPayResult::WXPAY_OK as i32,
        Ok(Err(failure)) => failure,
        Err(_panic) => Failure::new(
            WxPayResult::WXPAY_ERR_PANIC,
            "a panic inside libwxpay was caught at the C boundary (a bug; the panic message went to stderr)",
        ),
    };
    if !out_error.is_null() {
        // Building the document allocates; a panic there must not cross the
        // boundary either.
        if let Ok(Some(document)) = catch_unwind(AssertUnwindSafe(|| failure.document())) {
            // SAFETY: as above.
            unsafe { out_error.write(document) };
        }
    }
    failure.code as i32
}

/// Runs an export's body behind the boundary with [`call`].
///
/// - `ffi_call!(out_error, { body })`: no output but the result code;
/// - `ffi_call!(out_error, out, { body })`: the body's value goes to `out`;
/// - `ffi_call!(out_error, json out, { body })`: the body's value goes to
///   `out` as JSON.
///
/// The body reads its arguments with [`arg!`] and may use `?` on any error
/// that converts into a [`Failure`]. Only for the body of an export: the
/// export's caller vouches for every pointer (its Safety section).
macro_rules! ffi_call {
    ($out_error:ident, $body:block) => {
        $crate::ffi::boundary::ffi_call!(@run $out_error, $crate::ffi::boundary::NoOutput, "", Ok($body))
    };
    ($out_error:ident, json $out:ident, $body:block) => {
        $crate::ffi::boundary::ffi_call!(
            @run $out_error, $out, stringify!($out), $crate::ffi::boundary::json(&$body)
        )
    };
    ($out_error:ident, $out:ident, $body:block) => {
        $crate::ffi::boundary::ffi_call!(@run $out_error, $out, stringify!($out), Ok($body))
    };
    (@run $out_error:ident, $out:expr, $name:expr, $answer:expr) => {{
        let body = || -> Result<_, $crate::ffi::boundary::Failure> { $answer };
        // SAFETY: the export's caller vouches for `out_error` and the output.
        unsafe { $crate::ffi::boundary::call($out_error, $out, $name, body) }
    }};
}
pub(super) use ffi_call;

/// Reads the export's parameter `name` with [`Arg`], named in messages, and
/// returns its failure from the enclosing [`ffi_call!`] body:
///
/// - `arg!(name)`: a string, a client, an expected amount;
/// - `arg!(ptr, len)`: a byte buffer;
/// - `arg!(name as T)`: the JSON document `T` in a string argument.
///
/// Only in the body of an export: its caller vouches for the pointers.
macro_rules! arg {
    ($name:ident) => {
        $crate::ffi::boundary::arg!(@read $name, stringify!($name))
    };
    ($ptr:ident, $len:ident) => {
        $crate::ffi::boundary::arg!(@read ($ptr, $len), stringify!($ptr))
    };
    ($name:ident as $document:ty) => {
        <$document as $crate::ffi::documents::Document>::from_json(
            $crate::ffi::boundary::arg!($name),
            stringify!($name),
        )?
    };
    (@read $raw:expr, $name:expr) => {
        // SAFETY: the export's caller vouches for its arguments.
        unsafe { $crate::ffi::boundary::Arg::read($raw, $name)? }
    };
}
pub(super) use arg;

/// An argument as C passes it, and what it is read as.
pub(super) trait Arg {
    /// The argument, read.
    type Value<'a>;

    /// Reads the argument named `name`; the failure's message names it but
    /// never shows its content (it may be a key).
    ///
    /// # Safety
    ///
    /// The pointers are NULL or valid as [`WxPayResult`]'s Safety says, and
    /// stay so for `'a`.
    unsafe fn read<'a>(self, name: &'static str) -> Result<Self::Value<'a>, Failure>;
}

/// A string: not NULL, at most [`WXPAY_MAX_INPUT_BYTES`] bytes (never
/// reading further than that), valid UTF-8.
impl Arg for *const c_char {
    type Value<'a> = &'a str;

    unsafe fn read<'a>(self, name: &'static str) -> Result<&'a str, Failure> {
        if self.is_null() {
            return Err(Failure::null(name));
        }
        let start = self.cast::<u8>();
        let mut len = 0;
        // SAFETY: reading stops at the terminator, or after MAX + 1 bytes
        // when the string is longer: every byte read is part of the string.
        while unsafe { start.add(len).read() } != 0 {
            len += 1;
            if len > WXPAY_MAX_INPUT_BYTES {
                return Err(Failure::too_long(name));
            }
        }
        // SAFETY: the `len` bytes before the terminator were just read.
        let bytes = unsafe { std::slice::from_raw_parts(start, len) };
        std::str::from_utf8(bytes).map_err(|e| {
            Failure::new(
                WxPayResult::WXPAY_ERR_INVALID_UTF8,
                format!(
                    "argument `{name}` is not valid UTF-8 (at byte {})",
                    e.valid_up_to()
                ),
            )
        })
    }
}

/// A byte buffer: not NULL (even when the length is 0), at most
/// [`WXPAY_MAX_INPUT_BYTES`] long. The length is checked before any byte is
/// read, so a wrong length larger than the limit never leads to a read.
impl Arg for (*const u8, u64) {
    type Value<'a> = &'a [u8];

    unsafe fn read<'a>(self, name: &'static str) -> Result<&'a [u8], Failure> {
        let (start, len) = self;
        if start.is_null() {
            return Err(Failure::null(name));
        }
        let len = usize::try_from(len)
            .ok()
            .filter(|len| *len <= WXPAY_MAX_INPUT_BYTES)
            .ok_or_else(|| Failure::too_long(name))?;
        // SAFETY: not NULL, `len` readable bytes (the caller's contract), and
        // `len` is far below isize::MAX.
        Ok(unsafe { std::slice::from_raw_parts(start, len) })
    }
}

/// An expected amount in fen: `0` or less means "not checked"; above
/// [`Fen::MAX`] is refused.
impl Arg for i64 {
    type Value<'a> = Option<Fen>;

    unsafe fn read<'a>(self, name: &'static str) -> Result<Self::Value<'a>, Failure> {
        if self <= 0 {
            return Ok(None);
        }
        Fen::new(self).map(Some).map_err(|e| {
            Failure::new(
                WxPayResult::WXPAY_ERR_INVALID_ARGUMENT,
                format!("argument `{name}` {e}"),
            )
        })
    }
}

/// An output of an export: cleared on entry, written on success.
pub(super) trait Output: Copy {
    /// What the export produces for it.
    type Value;

    /// Refuses a NULL output (naming it `name`) and sets it to "nothing".
    ///
    /// # Safety
    ///
    /// The output is NULL or writable.
    unsafe fn clear(self, name: &'static str) -> Result<(), Failure>;

    /// Hands `value` over.
    ///
    /// # Safety
    ///
    /// [`Output::clear`] succeeded on this output.
    unsafe fn write(self, value: Self::Value) -> Result<(), Failure>;
}

/// Writes `value` through `out`, refusing a NULL `out` named `name`.
///
/// # Safety
///
/// `out` is NULL or writable.
pub(super) unsafe fn put<T>(out: *mut T, value: T, name: &str) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::null(name));
    }
    // SAFETY: not NULL, and the caller promises it is writable.
    unsafe { out.write(value) };
    Ok(())
}

/// The output of the exports that only return a code.
#[derive(Clone, Copy)]
pub(super) struct NoOutput;

impl Output for NoOutput {
    type Value = ();

    unsafe fn clear(self, _: &'static str) -> Result<(), Failure> {
        Ok(())
    }

    unsafe fn write(self, (): ()) -> Result<(), Failure> {
        Ok(())
    }
}

/// A string for the caller, freed with [`wxpay_string_free`].
impl Output for *mut *mut c_char {
    type Value = String;

    unsafe fn clear(self, name: &'static str) -> Result<(), Failure> {
        // SAFETY: the caller's contract.
        unsafe { put(self, ptr::null_mut(), name) }
    }

    unsafe fn write(self, value: String) -> Result<(), Failure> {
        let text = c_string(value)?;
        // SAFETY: checked by `clear`.
        unsafe { ptr::write(self, text) };
        Ok(())
    }
}

/// A count.
impl Output for *mut i32 {
    type Value = i32;

    unsafe fn clear(self, name: &'static str) -> Result<(), Failure> {
        // SAFETY: the caller's contract.
        unsafe { put(self, 0, name) }
    }

    unsafe fn write(self, value: i32) -> Result<(), Failure> {
        // SAFETY: checked by `clear`.
        unsafe { ptr::write(self, value) };
        Ok(())
    }
}

/// An answer as JSON text.
pub(super) fn json<T: Serialize + ?Sized>(value: &T) -> Result<String, Failure> {
    serde_json::to_string(value).map_err(|e| {
        Failure::new(
            WxPayResult::WXPAY_ERR_INTERNAL,
            format!("the answer could not be serialized ({e})"),
        )
    })
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

/// Runs `body` with panics caught, for the functions that return a static C
/// string: a panic gives `fallback`.
pub(super) fn static_str(
    fallback: &'static CStr,
    body: impl FnOnce() -> &'static CStr,
) -> *const c_char {
    catch_unwind(AssertUnwindSafe(body))
        .unwrap_or(fallback)
        .as_ptr()
}

/// Runs `free` with panics caught, for the NULL-tolerant frees: they return
/// nothing a panic could be reported with, so it is swallowed.
pub(super) fn release(free: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(free));
}

/// Frees a string returned by this library (`*out_json`, `*out_sign`,
/// `*out_reply`, `*out_error`). NULL is a no-op. Never pass it a string from
/// anywhere else, nor the static strings of `wxpay_version()`,
/// `wxpay_result_name()` and `wxpay_result_message()`; and never free a
/// libwxpay string with `free()`.
///
/// # Safety
///
/// `s` is NULL or a string returned by this library and not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wxpay_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: the caller gives back a pointer from CString::into_raw.
        release(|| drop(unsafe { CString::from_raw(s) }));
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::Value;

    /// Runs `body` behind the boundary with a string output; returns the
    /// code, the output and the error document.
    fn run(body: impl FnOnce() -> Result<String, Failure>) -> (i32, Option<String>, Value) {
        let mut out = ptr::dangling_mut::<c_char>();
        let mut error = ptr::dangling_mut::<c_char>();
        // SAFETY: both out-pointers are writable.
        let code = unsafe { call(&mut error, &mut out as *mut _, "out", body) };
        (code, take(out), take(error).map_or(Value::Null, parse))
    }

    /// The text of a string from this library, freed; `None` for NULL.
    pub(crate) fn take(s: *mut c_char) -> Option<String> {
        if s.is_null() {
            return None;
        }
        // SAFETY: a string of this library, freed once.
        let text = unsafe { CStr::from_ptr(s) }
            .to_str()
            .expect("utf-8")
            .to_owned();
        unsafe { wxpay_string_free(s) };
        Some(text)
    }

    /// An error document, parsed.
    pub(crate) fn parse(document: String) -> Value {
        serde_json::from_str(&document).expect("the error document is JSON")
    }

    #[test]
    fn success_writes_the_output_and_no_document() {
        let (code, out, doc) = run(|| Ok("answer".into()));
        assert_eq!(
            (code, out.as_deref(), doc),
            (0, Some("answer"), Value::Null)
        );
    }

    #[test]
    fn a_panic_becomes_a_code_and_a_document() {
        let (code, out, doc) = run(|| panic!("boom"));
        assert_eq!(code, WxPayResult::WXPAY_ERR_PANIC as i32);
        assert_eq!(out, None);
        assert_eq!(doc["kind"], "panic");
        assert_eq!(doc["code"], 1901);
        // Without an out_error the code still comes back.
        let mut out = ptr::null_mut::<c_char>();
        // SAFETY: `out` is writable; no out_error.
        let code = unsafe {
            call(ptr::null_mut(), &mut out as *mut _, "out", || {
                panic!("boom")
            })
        };
        assert_eq!(code, WxPayResult::WXPAY_ERR_PANIC as i32);
    }

    #[test]
    fn a_null_output_is_refused_before_the_body_runs() {
        let mut error = ptr::null_mut();
        // SAFETY: a NULL output is what is tested.
        let code = unsafe {
            call(
                &mut error,
                ptr::null_mut::<*mut c_char>(),
                "out_json",
                || panic!("the body must not run"),
            )
        };
        assert_eq!(code, WxPayResult::WXPAY_ERR_NULL_ARGUMENT as i32);
        let doc = parse(take(error).expect("a document"));
        assert_eq!(doc["message"], "argument `out_json` is NULL");
    }

    #[test]
    fn gateway_errors_carry_errcode_and_errmsg() {
        let (code, _, doc) = run(|| {
            Err(Error::Gateway {
                errcode: 45009,
                errmsg: "quota\0x".into(),
            }
            .into())
        });
        assert_eq!(code, WxPayResult::WXPAY_ERR_GATEWAY as i32);
        assert_eq!(doc["errcode"], 45009);
        assert_eq!(doc["errmsg"], "quota\0x");
        assert_eq!(doc["kind"], "gateway");
        assert_eq!(doc["retryable"], false);
        assert!(doc.get("http_status").is_none());

        let (code, _, doc) = run(|| Err(Error::HttpStatus { status: 503 }.into()));
        assert_eq!(code, WxPayResult::WXPAY_ERR_HTTP_STATUS as i32);
        assert_eq!(doc["http_status"], 503);
        assert_eq!(doc["retryable"], true);
        assert!(doc.get("errcode").is_none());
    }

    #[test]
    fn rejections_carry_the_gateway_code_and_the_v3_status() {
        let (code, _, doc) = run(|| {
            Err(Error::Rejected {
                code: "ORDERPAID".into(),
                message: "already paid".into(),
                http_status: None,
            }
            .into())
        });
        assert_eq!(code, WxPayResult::WXPAY_ERR_REJECTED as i32);
        assert_eq!(doc["kind"], "rejected");
        assert_eq!(doc["gateway_code"], "ORDERPAID");
        assert_eq!(doc["gateway_message"], "already paid");
        assert!(doc.get("errcode").is_none() && doc.get("http_status").is_none());
        let (_, _, doc) = run(|| {
            Err(Error::Rejected {
                code: "ORDER_NOT_EXIST".into(),
                message: "none".into(),
                http_status: Some(404),
            }
            .into())
        });
        assert_eq!(doc["gateway_code"], "ORDER_NOT_EXIST");
        assert_eq!(doc["http_status"], 404);
    }

    #[test]
    fn the_document_starts_with_its_code_and_carries_a_reply() {
        let mut error = ptr::null_mut();
        // SAFETY: writable out_error, no output.
        let code = unsafe {
            call_mending(
                &mut error,
                NoOutput,
                "",
                || Err(Failure::null("body")),
                |f| f.with_reply("fail".into(), Some(500)),
            )
        };
        assert_eq!(code, WxPayResult::WXPAY_ERR_NULL_ARGUMENT as i32);
        assert_eq!(
            take(error).expect("a document"),
            r#"{"code":1001,"kind":"null_argument","message":"argument `body` is NULL","reply":"fail","reply_status":500,"retryable":false}"#
        );
    }

    #[test]
    fn interior_nul_in_an_output_is_an_error_not_a_truncation() {
        let (code, out, doc) = run(|| Ok("a\0b".into()));
        assert_eq!(code, WxPayResult::WXPAY_ERR_INTERNAL as i32);
        assert_eq!(out, None);
        assert_eq!(doc["kind"], "internal");
    }

    #[test]
    fn strings_are_bounded_and_checked() {
        let read = |bytes: &[u8]| {
            // SAFETY: NUL-terminated buffers that outlive the call.
            unsafe { Arg::read(bytes.as_ptr().cast::<c_char>(), "x") }.map(str::len)
        };
        let mut long = vec![b'a'; WXPAY_MAX_INPUT_BYTES + 10];
        long.push(0);
        let err = read(&long).expect_err("too long");
        assert_eq!(err.code, WxPayResult::WXPAY_ERR_INPUT_TOO_LONG);
        long.truncate(WXPAY_MAX_INPUT_BYTES);
        long.push(0);
        assert_eq!(read(&long).expect("at the limit"), WXPAY_MAX_INPUT_BYTES);
        let err = read(b"ok\xff\0").expect_err("utf-8");
        assert_eq!(err.code, WxPayResult::WXPAY_ERR_INVALID_UTF8);
        assert_eq!(err.message, "argument `x` is not valid UTF-8 (at byte 2)");
        // SAFETY: NULL is refused before any read.
        let err = unsafe { Arg::read(ptr::null::<c_char>(), "x") }.expect_err("NULL");
        assert_eq!(err.code, WxPayResult::WXPAY_ERR_NULL_ARGUMENT);
    }

    #[test]
    fn buffers_and_amounts_are_bounded_before_any_read() {
        let one = [b'x'];
        // SAFETY: the lengths over the limit are refused before any read.
        let read = |len: u64| unsafe { Arg::read((one.as_ptr(), len), "body") }.map(<[u8]>::len);
        assert_eq!(read(1).expect("one byte"), 1);
        for len in [WXPAY_MAX_INPUT_BYTES as u64 + 1, u64::MAX] {
            let err = read(len).expect_err("over the limit");
            assert_eq!(err.code, WxPayResult::WXPAY_ERR_INPUT_TOO_LONG);
            assert!(err.message.contains("body"));
        }
        // SAFETY: integers only.
        let fee = |value: i64| unsafe { Arg::read(value, "expected_total_fee") };
        assert_eq!(fee(0).expect("unchecked"), None);
        assert_eq!(fee(i64::MIN).expect("unchecked"), None);
        assert_eq!(
            fee(1999).expect("checked"),
            Some(Fen::new(1999).expect("fen"))
        );
        let err = fee(i64::from(i32::MAX) + 1).expect_err("too large");
        assert_eq!(err.code, WxPayResult::WXPAY_ERR_INVALID_ARGUMENT);
        assert!(err.message.contains("expected_total_fee"));
    }
}
