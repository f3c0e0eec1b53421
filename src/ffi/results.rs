//! The result codes of the C API: their numbers, names and messages, and the
//! conventions every function follows (stated once, on [`WxPayResult`], so
//! that the header states them once too).

use std::ffi::{c_char, CStr};

use super::boundary::static_str;
use crate::ErrorKind;

/// The result codes of every `int32_t` function of this API, and the
/// conventions every function follows.
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
///
/// Arguments. A string argument is a NUL-terminated UTF-8 string of at most
/// `WXPAY_MAX_INPUT_BYTES` bytes; a byte buffer (`body`, `body_len`) needs no
/// terminator and is at most as long. Both are only read during the call (a
/// client keeps its own copies). A pointer argument must not be NULL unless
/// its function says otherwise: NULL fails with `WXPAY_ERR_NULL_ARGUMENT`, a
/// string that is not UTF-8 with `WXPAY_ERR_INVALID_UTF8`, a longer one with
/// `WXPAY_ERR_INPUT_TOO_LONG`. A JSON document argument that is not JSON
/// fails with `WXPAY_ERR_INVALID_JSON`; a document of the wrong shape with the
/// code its function names. `client` is a client from `wxpay_client_new()`
/// not freed yet.
///
/// Outputs. An output pointer (`out_client`, `out_json`, `out_sign`,
/// `out_reply`, `out_count`) must not be NULL. `*out_...` is set to NULL (0
/// for a count) on entry, receives the result on success, and stays NULL (or
/// 0) on failure. A string output belongs to the caller, who frees it with
/// `wxpay_string_free()`, never with `free()`.
///
/// Errors. `out_error` may be NULL when the caller only wants the code.
/// Otherwise `*out_error` is set to NULL on entry, and on failure receives a
/// JSON document `{"code": N, "kind": "...", "message": "...", "retryable":
/// bool}`, plus `"errcode"` and `"errmsg"` when the gateway answered with an
/// errcode, `"http_status"` for `WXPAY_ERR_HTTP_STATUS`, and `"gateway_code"`
/// and `"gateway_message"` for `WXPAY_ERR_REJECTED` (with `"http_status"` too
/// when an API v3 gateway answered an error status); the notification
/// verifiers add the failure `"reply"` (see
/// `wxpay_verify_payment_notification()`). The caller owns that string and
/// frees it with `wxpay_string_free()`. The message names the argument or
/// field at fault and never contains a secret.
///
/// Safety. Each pointer is NULL or valid for its use: a string readable up to
/// its terminator (or for at least `WXPAY_MAX_INPUT_BYTES + 1` bytes), a byte
/// buffer readable for `body_len` bytes, an output pointer writable; none of
/// it is changed by another thread during the call.
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
const ALL: [WxPayResult; 17] = {
    use WxPayResult as R;
    [
        R::WXPAY_OK,
        R::WXPAY_ERR_NULL_ARGUMENT,
        R::WXPAY_ERR_INVALID_UTF8,
        R::WXPAY_ERR_INPUT_TOO_LONG,
        R::WXPAY_ERR_INVALID_JSON,
        R::WXPAY_ERR_INVALID_CONFIG,
        R::WXPAY_ERR_INVALID_ORDER,
        R::WXPAY_ERR_INVALID_ARGUMENT,
        R::WXPAY_ERR_INVALID_NOTIFICATION,
        R::WXPAY_ERR_NETWORK,
        R::WXPAY_ERR_HTTP_STATUS,
        R::WXPAY_ERR_GATEWAY,
        R::WXPAY_ERR_MALFORMED_RESPONSE,
        R::WXPAY_ERR_TOKEN_STORE,
        R::WXPAY_ERR_REJECTED,
        R::WXPAY_ERR_PANIC,
        R::WXPAY_ERR_INTERNAL,
    ]
};

/// The name of a number that is not a code.
const UNKNOWN_NAME: &CStr = c"unknown";
/// The message of a number that is not a code.
const UNKNOWN_MESSAGE: &CStr = c"unknown result code";

impl WxPayResult {
    /// The code for a number, if it is one.
    pub fn from_code(code: i32) -> Option<WxPayResult> {
        ALL.into_iter().find(|r| *r as i32 == code)
    }

    /// The snake_case name (the error document's `"kind"`). For the kinds of
    /// [`ErrorKind`] it is the same string as [`ErrorKind::as_str`].
    pub fn name(self) -> &'static str {
        self.c_name().to_str().unwrap_or("unknown")
    }

    /// A one-line description of the code.
    pub fn message(self) -> &'static str {
        self.c_message().to_str().unwrap_or("unknown result code")
    }

    fn c_name(self) -> &'static CStr {
        use WxPayResult as R;
        match self {
            R::WXPAY_OK => c"ok",
            R::WXPAY_ERR_NULL_ARGUMENT => c"null_argument",
            R::WXPAY_ERR_INVALID_UTF8 => c"invalid_utf8",
            R::WXPAY_ERR_INPUT_TOO_LONG => c"input_too_long",
            R::WXPAY_ERR_INVALID_JSON => c"invalid_json",
            R::WXPAY_ERR_INVALID_CONFIG => c"invalid_config",
            R::WXPAY_ERR_INVALID_ORDER => c"invalid_order",
            R::WXPAY_ERR_INVALID_ARGUMENT => c"invalid_argument",
            R::WXPAY_ERR_INVALID_NOTIFICATION => c"invalid_notification",
            R::WXPAY_ERR_NETWORK => c"network",
            R::WXPAY_ERR_HTTP_STATUS => c"http_status",
            R::WXPAY_ERR_GATEWAY => c"gateway",
            R::WXPAY_ERR_MALFORMED_RESPONSE => c"malformed_response",
            R::WXPAY_ERR_TOKEN_STORE => c"token_store",
            R::WXPAY_ERR_REJECTED => c"rejected",
            R::WXPAY_ERR_PANIC => c"panic",
            R::WXPAY_ERR_INTERNAL => c"internal",
        }
    }

    fn c_message(self) -> &'static CStr {
        use WxPayResult as R;
        match self {
            R::WXPAY_OK => c"success",
            R::WXPAY_ERR_NULL_ARGUMENT => c"a required pointer argument was NULL",
            R::WXPAY_ERR_INVALID_UTF8 => c"a string argument is not valid UTF-8",
            R::WXPAY_ERR_INPUT_TOO_LONG => {
                c"a string argument is longer than WXPAY_MAX_INPUT_BYTES"
            }
            R::WXPAY_ERR_INVALID_JSON => c"a JSON argument is not valid JSON",
            R::WXPAY_ERR_INVALID_CONFIG => c"the configuration is invalid",
            R::WXPAY_ERR_INVALID_ORDER => c"the order is invalid",
            R::WXPAY_ERR_INVALID_ARGUMENT => c"an argument is invalid",
            R::WXPAY_ERR_INVALID_NOTIFICATION => c"a payment notification failed verification",
            R::WXPAY_ERR_NETWORK => c"the gateway could not be reached in time",
            R::WXPAY_ERR_HTTP_STATUS => c"the gateway answered an HTTP error status",
            R::WXPAY_ERR_GATEWAY => c"the gateway answered a non-zero errcode",
            R::WXPAY_ERR_MALFORMED_RESPONSE => c"the gateway's answer is malformed",
            R::WXPAY_ERR_TOKEN_STORE => c"the shared access_token store failed",
            R::WXPAY_ERR_REJECTED => c"the gateway refused the request with its own code",
            R::WXPAY_ERR_PANIC => c"a panic inside libwxpay was caught (a bug)",
            R::WXPAY_ERR_INTERNAL => c"libwxpay produced an output it cannot return",
        }
    }

    /// The C boundary's code for a library error kind. Exhaustive on purpose:
    /// a new [`ErrorKind`] does not compile until it has a code here.
    pub fn from_kind(kind: ErrorKind) -> WxPayResult {
        use ErrorKind as K;
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

/// The version of libwxpay, e.g. `"0.1.0"`.
///
/// Returns a static NUL-terminated string: never NULL, never to be freed.
#[unsafe(no_mangle)]
pub extern "C" fn wxpay_version() -> *const c_char {
    const VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(version) => version,
            Err(_) => panic!("the package version is one C string"),
        };
    static_str(UNKNOWN_NAME, || VERSION)
}

/// The snake_case name of a result code: `"ok"`, `"null_argument"`,
/// `"invalid_order"`, `"gateway"`... (the same string as the `"kind"` of the
/// error document), or `"unknown"` for a number that is not a code.
///
/// Returns a static NUL-terminated string: never NULL, never to be freed.
#[unsafe(no_mangle)]
pub extern "C" fn wxpay_result_name(code: i32) -> *const c_char {
    static_str(UNKNOWN_NAME, || {
        WxPayResult::from_code(code).map_or(UNKNOWN_NAME, WxPayResult::c_name)
    })
}

/// A one-line English description of a result code, or
/// `"unknown result code"` for a number that is not a code.
///
/// Returns a static NUL-terminated string: never NULL, never to be freed.
#[unsafe(no_mangle)]
pub extern "C" fn wxpay_result_message(code: i32) -> *const c_char {
    static_str(UNKNOWN_MESSAGE, || {
        WxPayResult::from_code(code).map_or(UNKNOWN_MESSAGE, WxPayResult::c_message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: *const c_char) -> &'static str {
        // SAFETY: the functions under test return static C strings.
        unsafe { CStr::from_ptr(s) }.to_str().expect("utf-8")
    }

    #[test]
    fn codes_are_distinct_named_and_round_trip() {
        let numbers: Vec<i32> = ALL.iter().map(|r| *r as i32).collect();
        let mut sorted = numbers.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(numbers, sorted, "in numeric order, no number twice");
        for result in ALL {
            assert_eq!(WxPayResult::from_code(result as i32), Some(result));
            assert_eq!(text(wxpay_result_name(result as i32)), result.name());
            assert_eq!(text(wxpay_result_message(result as i32)), result.message());
        }
        let names: std::collections::HashSet<_> = ALL.iter().map(|r| r.name()).collect();
        assert_eq!(names.len(), ALL.len());
        for unknown in [7, -1, i32::MIN, i32::MAX, 1904] {
            assert_eq!(text(wxpay_result_name(unknown)), "unknown");
            assert_eq!(text(wxpay_result_message(unknown)), "unknown result code");
        }
        assert_eq!(text(wxpay_version()), env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn kinds_map_to_codes_with_the_same_name() {
        use ErrorKind as K;
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
}
