//! The exported C functions, fed raw bytes as a C host would.
//!
//! Input: `flags piece0 NUL piece1 NUL piece2 NUL piece3`; each piece becomes
//! a NUL-terminated copy (any bytes, invalid UTF-8 included). Flag bit 0x80
//! passes NULL for empty pieces; bit 0x40 passes NULL for `out_error`.
//!
//! - `wxpay_sign(piece0, piece1, piece2)`: the same answer as the Rust API.
//! - `wxpay_client_new(piece3)`: a client it makes is freed at once.
//! - `wxpay_build_pay_params(client, piece2)` on a 2014 client whose gateway
//!   is a closed loopback port (50 ms timeout): an invalid order fails before
//!   any network call; a valid one fails to connect, fast, and goes nowhere.
//! - `wxpay_verify_payment_notification` / `wxpay_verify_refund_notification`
//!   of an API v2 client on the whole input, and
//!   `wxpay_notification_failure_reply(piece0)`.
//!
//! Every call returns a known code, never `WXPAY_ERR_PANIC` or
//! `WXPAY_ERR_INTERNAL`; on success the output is set and no error, on
//! failure no output and (when asked for) an error document whose `code` is
//! the code returned. Every string returned is freed with
//! `wxpay_string_free`.
#![no_main]

use std::ffi::{c_char, CStr, CString};
use std::ptr;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use wxpay::crypto::sign::{fields_from_json, sign, Scheme};
use wxpay::ffi::{
    wxpay_build_pay_params, wxpay_client_free, wxpay_client_new, wxpay_notification_failure_reply,
    wxpay_sign, wxpay_string_free, wxpay_verify_payment_notification,
    wxpay_verify_refund_notification, WxPayClient, WxPayResult,
};
use wxpay::util::secret::Secret;
use wxpay::Order;
use wxpay_fuzz::{pieces, APPID, MCH_ID, PARTNER_ID, PARTNER_KEY, V2_API_KEY};

/// A client shared by every run (a raw pointer is not `Sync`; the C API
/// says a client may be used from any thread).
struct Shared(*mut WxPayClient);
// SAFETY: WxPayClient is documented thread-safe; the pointer is never freed.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

fn new_client(config: &str) -> Shared {
    let config = CString::new(config).expect("no NUL in the fixed config");
    let mut client = ptr::null_mut();
    let mut error = ptr::null_mut();
    // SAFETY: valid C string and out-pointers.
    let rc = unsafe { wxpay_client_new(config.as_ptr(), &mut client, &mut error) };
    assert_eq!(
        rc,
        0,
        "the fixed config is valid: {}",
        take(error).unwrap_or_default()
    );
    Shared(client)
}

/// A 2014 client whose gateway is a loopback port nobody listens on.
fn legacy_client() -> *const WxPayClient {
    static CLIENT: OnceLock<Shared> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            // A port the kernel just gave out and took back: closed, so a
            // connection attempt is refused at once.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free loopback port")
                .port();
            new_client(&format!(
                r#"{{"appid":"{APPID}","app_secret":"app-secret","app_key":"app-key",
                    "partner_id":"{PARTNER_ID}","partner_key":"{PARTNER_KEY}",
                    "notify_url":"https://example.com/notify",
                    "api_base":"http://127.0.0.1:{port}","timeout_ms":50}}"#
            ))
        })
        .0
}

/// An API v2 client (notifications are verified offline).
fn v2_client() -> *const WxPayClient {
    static CLIENT: OnceLock<Shared> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            new_client(&format!(
                r#"{{"api":"v2","appid":"{APPID}","mch_id":"{MCH_ID}","api_key":"{V2_API_KEY}",
                    "notify_url":"https://example.com/notify",
                    "api_base":"http://127.0.0.1:9","timeout_ms":50}}"#
            ))
        })
        .0
}

/// Takes ownership of a string from the library: its text, then frees it.
fn take(s: *mut c_char) -> Option<String> {
    if s.is_null() {
        return None;
    }
    // SAFETY: a live NUL-terminated string from the library.
    let text = unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned();
    // SAFETY: returned by the library, freed once.
    unsafe { wxpay_string_free(s) };
    Some(text)
}

/// Checks one call's outcome and frees what it returned; the output text on success.
fn outcome(
    call: &str,
    rc: i32,
    out: *mut c_char,
    error: *mut c_char,
    wants_error: bool,
) -> Option<String> {
    let out = take(out);
    let error = take(error);
    let kind = WxPayResult::from_code(rc).unwrap_or_else(|| panic!("{call}: unknown code {rc}"));
    assert!(
        !matches!(
            kind,
            WxPayResult::WXPAY_ERR_PANIC | WxPayResult::WXPAY_ERR_INTERNAL
        ),
        "{call}: {kind:?}: {error:?}"
    );
    if kind == WxPayResult::WXPAY_OK {
        assert!(error.is_none(), "{call}: OK with an error: {error:?}");
        return Some(out.unwrap_or_else(|| panic!("{call}: OK without output")));
    }
    assert!(out.is_none(), "{call}: {kind:?} with an output");
    if wants_error {
        let error = error.unwrap_or_else(|| panic!("{call}: {kind:?} without an error document"));
        let doc: serde_json::Value = serde_json::from_str(&error)
            .unwrap_or_else(|e| panic!("{call}: error document is not JSON ({e}): {error}"));
        assert_eq!(doc["code"], serde_json::json!(rc), "{call}: {error}");
        assert!(doc["message"].is_string(), "{call}: {error}");
    } else {
        assert!(error.is_none());
    }
    None
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let null_empty = flags & 0x80 != 0;
    let wants_error = flags & 0x40 == 0;
    // Each piece is a C string: it ends at its first NUL (the last piece may hold more).
    let p: Vec<&[u8]> = pieces(rest, 0, 4)
        .into_iter()
        .map(|piece| piece.split(|b| *b == 0).next().unwrap_or_default())
        .collect();
    let owned: Vec<CString> = p
        .iter()
        .map(|piece| CString::new(*piece).expect("cut at the first NUL"))
        .collect();
    let arg = |i: usize| {
        if null_empty && p[i].is_empty() {
            ptr::null()
        } else {
            owned[i].as_ptr()
        }
    };
    let mut error: *mut c_char = ptr::null_mut();
    let error_ptr = |e: &mut *mut c_char| -> *mut *mut c_char {
        if wants_error {
            e
        } else {
            ptr::null_mut()
        }
    };

    // wxpay_sign: the Rust API's answer.
    let mut out: *mut c_char = ptr::null_mut();
    // SAFETY: C strings or NULL; valid out-pointers or NULL.
    let rc = unsafe { wxpay_sign(arg(0), arg(1), arg(2), &mut out, error_ptr(&mut error)) };
    let signed = outcome("wxpay_sign", rc, out, error, wants_error);
    let expected = (|| {
        let scheme: Scheme = std::str::from_utf8(p[0]).ok()?.parse().ok()?;
        let key = std::str::from_utf8(p[1]).ok().filter(|k| !k.is_empty())?;
        let fields = fields_from_json(std::str::from_utf8(p[2]).ok()?).ok()?;
        sign(scheme, &Secret::new(key), &fields)
            .ok()
            .map(|s| s.into_signature())
    })();
    assert_eq!(
        signed, expected,
        "wxpay_sign disagrees with wxpay::crypto::sign::sign"
    );

    // wxpay_client_new: whatever it makes is freed.
    let mut client: *mut WxPayClient = ptr::null_mut();
    error = ptr::null_mut();
    // SAFETY: a C string or NULL; valid out-pointers or NULL.
    let rc = unsafe { wxpay_client_new(arg(3), &mut client, error_ptr(&mut error)) };
    if rc == 0 {
        assert!(!client.is_null());
        // SAFETY: a client from wxpay_client_new, freed once.
        unsafe { wxpay_client_free(client) };
        assert!(take(error).is_none());
    } else {
        assert!(client.is_null());
        outcome("wxpay_client_new", rc, ptr::null_mut(), error, wants_error);
    }

    // wxpay_build_pay_params on a client whose gateway is closed.
    let order_ok = std::str::from_utf8(p[2])
        .ok()
        .is_some_and(|o| Order::from_json(o).is_ok());
    let mut out: *mut c_char = ptr::null_mut();
    error = ptr::null_mut();
    // SAFETY: a live client; a C string or NULL; valid out-pointers or NULL.
    let rc =
        unsafe { wxpay_build_pay_params(legacy_client(), arg(2), &mut out, error_ptr(&mut error)) };
    outcome("wxpay_build_pay_params", rc, out, error, wants_error);
    if order_ok {
        assert_eq!(
            rc,
            WxPayResult::WXPAY_ERR_NETWORK as i32,
            "a valid order reaches the (closed) gateway"
        );
    } else {
        assert_ne!(
            rc,
            WxPayResult::WXPAY_ERR_NETWORK as i32,
            "an invalid order made a network call"
        );
    }

    // Notifications and replies of an API v2 client: the whole input as the body.
    let expected_fee = i64::from(flags & 0x3f) - 1;
    for verify in [
        wxpay_verify_payment_notification,
        wxpay_verify_refund_notification,
    ] {
        let mut out: *mut c_char = ptr::null_mut();
        error = ptr::null_mut();
        // SAFETY: a live client; `rest` is readable for its length.
        let rc = unsafe {
            verify(
                v2_client(),
                rest.as_ptr(),
                rest.len() as u64,
                expected_fee,
                &mut out,
                error_ptr(&mut error),
            )
        };
        if let Some(json) = outcome("wxpay_verify_*_notification", rc, out, error, wants_error) {
            serde_json::from_str::<serde_json::Value>(&json).expect("a notification is JSON");
        }
    }
    let mut out: *mut c_char = ptr::null_mut();
    error = ptr::null_mut();
    // SAFETY: a live client; a C string or NULL; valid out-pointers or NULL.
    let rc = unsafe {
        wxpay_notification_failure_reply(v2_client(), arg(0), &mut out, error_ptr(&mut error))
    };
    outcome(
        "wxpay_notification_failure_reply",
        rc,
        out,
        error,
        wants_error,
    );
});
