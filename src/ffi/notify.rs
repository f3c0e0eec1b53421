//! Notifications: the verifiers of what WeChat sends to `notify_url`, and
//! the replies to answer it with.

use std::ffi::c_char;

use serde::Serialize;

use super::boundary::{arg, call_mending, ffi_call, json, Arg, Failure};
use super::client::WxPayClient;
use super::documents::Headers;
use crate::Client;

/// What a verifier hands over: the notification and the reply to answer its
/// sender with.
#[derive(Serialize)]
struct Verified<T> {
    notification: T,
    reply: String,
    /// API v3 only: the HTTP status to answer with.
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_status: Option<u16>,
}

/// Runs a notification verifier behind the boundary: on success
/// `*out_json` receives the [`Verified`] notification; every failure but a
/// NULL `client` and a panic carries the failure reply (and for API v3 its
/// status), whose message is only the failure's kind: the details are for
/// the caller's logs, not for the sender.
///
/// # Safety
///
/// The pointers are as [`super::WxPayResult`] says; `verify`'s own reads are
/// sound.
unsafe fn verified<T: Serialize>(
    client: *const WxPayClient,
    out_json: *mut *mut c_char,
    out_error: *mut *mut c_char,
    verify: impl FnOnce(&Client) -> Result<T, Failure>,
) -> i32 {
    let body = || {
        let client = arg!(client);
        json(&Verified {
            notification: verify(client)?,
            reply: client.notification_success_reply(),
            reply_status: client.notification_reply_status(true),
        })
    };
    let with_reply = |failure: Failure| {
        // SAFETY: the caller's contract on `client`.
        let Ok(client) = (unsafe { Arg::read(client, "client") }) else {
            return failure;
        };
        let reply = client.notification_failure_reply(failure.code.name());
        failure.with_reply(reply, client.notification_reply_status(false))
    };
    // SAFETY: the caller's contract on `out_json` and `out_error`.
    unsafe { call_mending(out_error, out_json, "out_json", body, with_reply) }
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
/// itself refuses bodies over 64 KiB (XML) or 8 KiB (query string).
/// (`body_len` is a `uint64_t`, not a `size_t`, so that this header needs
/// nothing but `<stdint.h>`; every `size_t` converts to it without loss.)
///
/// `expected_total_fee`: the order's amount in fen as your records have it;
/// the notification must claim exactly that. `0` or less: not checked (then
/// compare `total_fee` yourself). Above 2147483647:
/// `WXPAY_ERR_INVALID_ARGUMENT`.
///
/// On success `*out_json` receives a JSON object `{"notification": {"paid",
/// "out_trade_no", "transaction_id", "total_fee", "time_end", "attach",
/// "fields"}, "reply": "..."}`: `paid` is a boolean (a verified notification
/// of a *failed* payment has `false`: acknowledge it, ship nothing),
/// `time_end` and `attach` may be `null`, `fields` holds every field of the
/// message, verified; `reply` is the body to answer WeChat with (the v2
/// SUCCESS XML, or `success`), once you have recorded the payment. WeChat
/// repeats a notification until it gets that reply, so the same notification
/// may verify more than once: act on it idempotently per `out_trade_no`.
///
/// On failure (`WXPAY_ERR_INVALID_NOTIFICATION` when the body is refused:
/// signature, merchant, amount, shape) do not act on the request, and answer
/// it with the error document's `"reply"`: the failure reply (WeChat will
/// send it again), whose message is only the failure's kind (e.g.
/// `invalid_notification`; the details are for your logs, not for the
/// sender). Every failure carries `"reply"` except a NULL `client` and
/// `WXPAY_ERR_PANIC`; `wxpay_notification_failure_reply()` builds one too.
///
/// No network call (except, in WeChat's simulation environment, the one
/// fetch of its signing key); thread-safe.
///
/// # Safety
///
/// `client`, `body`, `out_json` and `out_error`: as `WxPayResult` states.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wxpay_verify_payment_notification(
    client: *const WxPayClient,
    body: *const u8,
    body_len: u64,
    expected_total_fee: i64,
    out_json: *mut *mut c_char,
    out_error: *mut *mut c_char,
) -> i32 {
    let verify = |client: &Client| -> Result<_, Failure> {
        let body = arg!(body, body_len);
        Ok(client.verify_payment_notification(body, arg!(expected_total_fee))?)
    };
    // SAFETY: the caller keeps the contract above.
    unsafe { verified(client, out_json, out_error, verify) }
}

/// Verifies an API v2 refund notification: the raw XML body WeChat POSTed
/// to your `refund_notify_url` (or the URL set on the merchant platform)
/// after a refund. Its `req_info` is decrypted with the
/// API key (which is what authenticates it: refund notifications carry no
/// `sign`) and checked.
///
/// `body`, `body_len`: as for `wxpay_verify_payment_notification()`.
/// `expected_refund_fee`: the refunded amount in fen as your records have
/// it; `0` or less: not checked.
///
/// On success `*out_json` receives a JSON object `{"notification":
/// {"out_trade_no", "out_refund_no", "refund_id", "total_fee", "refund_fee",
/// "refund_status", "fields"}, "reply": "..."}` (`refund_status`:
/// `"SUCCESS"`, `"CHANGE"` or `"REFUNDCLOSE"`; `fields`: every decrypted
/// field), to be handled idempotently per `out_refund_no` and answered with
/// `reply`.
///
/// Failures are reported as for `wxpay_verify_payment_notification()`, the
/// error document carrying the failure `"reply"`. API v2 only (a client
/// configured with `"api": "legacy"` fails with
/// `WXPAY_ERR_INVALID_ARGUMENT`). No network call; thread-safe.
///
/// # Safety
///
/// `client`, `body`, `out_json` and `out_error`: as `WxPayResult` states.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wxpay_verify_refund_notification(
    client: *const WxPayClient,
    body: *const u8,
    body_len: u64,
    expected_refund_fee: i64,
    out_json: *mut *mut c_char,
    out_error: *mut *mut c_char,
) -> i32 {
    let verify = |client: &Client| -> Result<_, Failure> {
        let body = arg!(body, body_len);
        Ok(client.verify_refund_notification(body, arg!(expected_refund_fee))?)
    };
    // SAFETY: the caller keeps the contract above.
    unsafe { verified(client, out_json, out_error, verify) }
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
/// `headers_json`: a JSON object of the request's headers,
/// `{"Wechatpay-Serial": "...", "Wechatpay-Signature": "...", ...}`: names in
/// any case, values strings (other headers may be there and are ignored). A
/// name given twice, in the same or another case, a value that is not a
/// string, or anything but an object fails with `WXPAY_ERR_INVALID_ARGUMENT`;
/// a missing `Wechatpay-*` header is an invalid notification.
///
/// `body`, `body_len`, `expected_total_fee`: as for
/// `wxpay_verify_payment_notification()` (`0` or less: the amount is not
/// checked).
///
/// On success `*out_json` receives a JSON object `{"notification": {"paid",
/// "out_trade_no", "transaction_id", "total_fee", "time_end", "attach",
/// "fields"}, "reply": "", "reply_status": 204}`: API v3 acknowledges with an
/// empty body (`reply`) and a 200 or 204 status (`reply_status`), once you
/// have recorded the payment. Act on it idempotently per `out_trade_no`:
/// WeChat Pay repeats a notification until acknowledged.
///
/// On failure (`WXPAY_ERR_INVALID_NOTIFICATION` when the request is refused:
/// a missing header, the signature, an unknown key serial, a stale
/// timestamp, decryption, merchant, amount) the error document carries, as
/// for `wxpay_verify_payment_notification()`, `"reply"`, the body to answer
/// with (`{"code":"FAIL","message":KIND}`), and `"reply_status"`: `500`, the
/// HTTP status to answer with (WeChat Pay will send the notification again).
/// Do not act on the request. (`"reply_status"` is the status *you* answer
/// with; `"http_status"` in an error document is always one the gateway
/// answered.)
///
/// No network call, except in certificate mode (no `wechatpay_public_key` in
/// the configuration) when the notification names a certificate serial the
/// client does not know yet: the platform certificates are then downloaded,
/// at most once per `platform_cert_min_interval_secs`, and a failure of that
/// download is reported as such (e.g. `WXPAY_ERR_NETWORK`), still with
/// `"reply"`. Thread-safe.
///
/// # Safety
///
/// `client`, `headers_json`, `body`, `out_json` and `out_error`: as
/// `WxPayResult` states.
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
    let verify = |client: &Client| -> Result<_, Failure> {
        let body = arg!(body, body_len);
        let expected = arg!(expected_total_fee);
        let headers = arg!(headers_json as Headers).into_pairs();
        Ok(client.verify_signed_notification(&headers, body, expected)?)
    };
    // SAFETY: the caller keeps the contract above.
    unsafe { verified(client, out_json, out_error, verify) }
}

/// The body that acknowledges a verified notification: the API v2 SUCCESS
/// XML, `success` for a client configured with `"api": "legacy"`, or the
/// empty string for `"api": "v3"` (answered with status 200 or 204). (The
/// verifiers also return it, as `"reply"`.)
///
/// On success `*out_reply` receives the reply. Pure: no network,
/// thread-safe.
///
/// # Safety
///
/// `client`, `out_reply` and `out_error`: as `WxPayResult` states.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wxpay_notification_success_reply(
    client: *const WxPayClient,
    out_reply: *mut *mut c_char,
    out_error: *mut *mut c_char,
) -> i32 {
    ffi_call!(out_error, out_reply, {
        arg!(client).notification_success_reply()
    })
}

/// The body that refuses a notification, so that WeChat sends it again: the
/// API v2 FAIL XML carrying `reason` as its `return_msg`, `fail` for a
/// client configured with `"api": "legacy"`, or for `"api": "v3"` the JSON
/// `{"code":"FAIL","message":REASON}` (answered with status 500). For a
/// notification that verified but that you could not record (say, your
/// database is down); the verifiers' error documents already carry one as
/// `"reply"`.
///
/// `reason`: a string (may be empty), sent to WeChat as it is: put no secret
/// in it.
///
/// On success `*out_reply` receives the reply. Pure: no network,
/// thread-safe.
///
/// # Safety
///
/// `client`, `reason`, `out_reply` and `out_error`: as `WxPayResult` states.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wxpay_notification_failure_reply(
    client: *const WxPayClient,
    reason: *const c_char,
    out_reply: *mut *mut c_char,
    out_error: *mut *mut c_char,
) -> i32 {
    ffi_call!(out_error, out_reply, {
        let client = arg!(client);
        client.notification_failure_reply(arg!(reason))
    })
}

#[cfg(test)]
mod tests {
    use std::ffi::{CStr, CString};
    use std::ptr;

    use serde_json::Value;

    use super::*;
    use crate::api::v2::notify::{v2_failure_reply, V2_SUCCESS_REPLY};
    use crate::crypto::sign::{sign_v2, Fields, SignType};
    use crate::ffi::boundary::tests::take;
    use crate::ffi::client::tests::{error_doc, Handle, LEGACY_CONFIG, V2_CONFIG};
    use crate::ffi::{WxPayResult, WXPAY_MAX_INPUT_BYTES};
    use crate::Secret;

    /// A payment notification for the V2_CONFIG merchant, signed with its key.
    fn signed_payment(total_fee: &str) -> Vec<u8> {
        let mut fields: Fields = [
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
        let sign = sign_v2(&fields, &key, SignType::Md5);
        fields.insert("sign".into(), sign.into_signature());
        crate::api::v2::xml::write(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .into_bytes()
    }

    /// `wxpay_verify_payment_notification`: the code, and the output or the
    /// error document.
    fn verify_payment(client: *const WxPayClient, body: &[u8], len: u64, fee: i64) -> (i32, Value) {
        let mut out = ptr::dangling_mut::<c_char>();
        let mut error = ptr::dangling_mut::<c_char>();
        // SAFETY: `body` holds `len` bytes unless `len` is over the limit
        // (refused before any read); writable out-pointers.
        let code = unsafe {
            wxpay_verify_payment_notification(client, body.as_ptr(), len, fee, &mut out, &mut error)
        };
        match take(out) {
            Some(json) => {
                assert!(error.is_null());
                (code, serde_json::from_str(&json).expect("JSON"))
            }
            None => (code, error_doc(error)),
        }
    }

    fn message(doc: &Value) -> &str {
        doc["message"].as_str().expect("a message")
    }

    #[test]
    fn payment_notifications_verify_and_carry_the_reply() {
        let client = Handle::new(V2_CONFIG);
        let body = signed_payment("1999");
        let len = body.len() as u64;
        let (code, doc) = verify_payment(client.0, &body, len, 1999);
        assert_eq!(code, 0);
        assert_eq!(doc["notification"]["paid"], true);
        assert_eq!(doc["notification"]["total_fee"], 1999);
        assert_eq!(doc["notification"]["out_trade_no"], "FFI1");
        assert_eq!(doc["notification"]["fields"]["mch_id"], "10000100");
        assert_eq!(doc["reply"], V2_SUCCESS_REPLY);
        assert!(doc.get("reply_status").is_none());
        // Unchecked amount.
        assert_eq!(verify_payment(client.0, &body, len, 0).0, 0);

        let (code, doc) = verify_payment(client.0, &body, len, 1998);
        assert_eq!(code, WxPayResult::WXPAY_ERR_INVALID_NOTIFICATION as i32);
        assert_eq!(
            doc["reply"],
            v2_failure_reply("invalid_notification"),
            "the reply names the kind, not the details"
        );
        assert!(message(&doc).contains("1998"));

        let tampered = String::from_utf8(body.clone())
            .expect("utf-8")
            .replace("1999", "1")
            .into_bytes();
        let (code, doc) = verify_payment(client.0, &tampered, tampered.len() as u64, 0);
        assert_eq!(code, WxPayResult::WXPAY_ERR_INVALID_NOTIFICATION as i32);
        assert!(message(&doc).contains("signature"));

        for (bytes, len, fee, code, needle) in [
            (
                &b"\xff\xfe<xml>"[..],
                7,
                0,
                WxPayResult::WXPAY_ERR_INVALID_NOTIFICATION,
                "",
            ),
            (b"", 0, 0, WxPayResult::WXPAY_ERR_INVALID_NOTIFICATION, ""),
            // Lengths over the limit are refused before any byte is read:
            // the one-byte buffer would otherwise be overrun.
            (
                b"x",
                WXPAY_MAX_INPUT_BYTES as u64 + 1,
                0,
                WxPayResult::WXPAY_ERR_INPUT_TOO_LONG,
                "body",
            ),
            (
                b"x",
                u64::MAX,
                0,
                WxPayResult::WXPAY_ERR_INPUT_TOO_LONG,
                "body",
            ),
            (
                &body,
                len,
                i64::from(i32::MAX) + 1,
                WxPayResult::WXPAY_ERR_INVALID_ARGUMENT,
                "expected_total_fee",
            ),
        ] {
            let (got, doc) = verify_payment(client.0, bytes, len, fee);
            assert_eq!(got, code as i32, "{doc}");
            assert!(doc["reply"].is_string(), "{doc}");
            assert!(message(&doc).contains(needle), "{doc}");
        }

        // NULLs: a NULL client leaves no way to build a reply.
        let (code, doc) = verify_payment(ptr::null(), &body, len, 0);
        assert_eq!(code, WxPayResult::WXPAY_ERR_NULL_ARGUMENT as i32);
        assert!(doc.get("reply").is_none());
        let mut out = ptr::null_mut();
        let mut error = ptr::null_mut();
        // SAFETY: NULL body and NULL out_json are what is tested.
        unsafe {
            let code = wxpay_verify_payment_notification(
                client.0,
                ptr::null(),
                0,
                0,
                &mut out,
                &mut error,
            );
            assert_eq!(code, WxPayResult::WXPAY_ERR_NULL_ARGUMENT as i32);
            let doc = error_doc(error);
            assert!(message(&doc).contains("body") && doc["reply"].is_string());
            let code = wxpay_verify_payment_notification(
                client.0,
                body.as_ptr(),
                len,
                0,
                ptr::null_mut(),
                &mut error,
            );
            assert_eq!(code, WxPayResult::WXPAY_ERR_NULL_ARGUMENT as i32);
            let doc = error_doc(error);
            assert!(message(&doc).contains("out_json") && doc["reply"].is_string());
        }
    }

    #[test]
    fn refund_notifications_need_their_encrypted_req_info() {
        let client = Handle::new(V2_CONFIG);
        // A payment notification is not a refund notification.
        let body = signed_payment("1");
        let mut out = ptr::dangling_mut::<c_char>();
        let mut error = ptr::null_mut();
        // SAFETY: a live client, a buffer of `body.len()` bytes, writable out-pointers.
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
        let doc = error_doc(error);
        assert!(
            doc["reply"].is_string() && message(&doc).contains("req_info"),
            "{doc}"
        );
    }

    #[test]
    fn notification_replies() {
        let v2 = Handle::new(V2_CONFIG);
        let legacy = Handle::new(LEGACY_CONFIG);
        let success = |client: &Handle| {
            let mut reply = ptr::null_mut();
            // SAFETY: a live client and a writable out-pointer.
            let code =
                unsafe { wxpay_notification_success_reply(client.0, &mut reply, ptr::null_mut()) };
            assert_eq!(code, 0);
            take(reply).expect("a reply")
        };
        assert_eq!(success(&v2), V2_SUCCESS_REPLY);
        assert_eq!(success(&legacy), "success");
        let mut reply = ptr::null_mut();
        let mut error = ptr::null_mut();
        // SAFETY: live clients, C strings or NULL, writable out-pointers.
        unsafe {
            let code = wxpay_notification_failure_reply(
                v2.0,
                c"busy ]]> now".as_ptr(),
                &mut reply,
                ptr::null_mut(),
            );
            assert_eq!(code, 0);
            let fields =
                crate::api::v2::xml::parse(take(reply).expect("a reply").as_bytes()).expect("XML");
            assert_eq!(fields["return_code"], "FAIL");
            assert_eq!(fields["return_msg"], "busy ]]> now");
            let code = wxpay_notification_failure_reply(v2.0, ptr::null(), &mut reply, &mut error);
            assert_eq!(code, WxPayResult::WXPAY_ERR_NULL_ARGUMENT as i32);
            assert!(reply.is_null());
            assert!(message(&error_doc(error)).contains("reason"));
            let code = wxpay_notification_success_reply(ptr::null(), &mut reply, &mut error);
            assert_eq!(code, WxPayResult::WXPAY_ERR_NULL_ARGUMENT as i32);
            assert!(message(&error_doc(error)).contains("client"));
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
            // SAFETY: a live client, a C string, a buffer, writable out-pointers.
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
            serde_json::from_str(doc["reply"].as_str().expect("a reply")).expect("JSON");
        assert_eq!(reply["code"], "FAIL");
        assert_eq!(reply["message"], "invalid_notification");

        for headers in [c"{\"a\":\"x\",\"A\":\"y\"}", c"{\"a\":\"x\",\"a\":\"y\"}"] {
            let (code, doc) = verify(v3.0, headers);
            assert_eq!(code, WxPayResult::WXPAY_ERR_INVALID_ARGUMENT as i32);
            assert!(message(&doc).contains("more than once"), "{doc}");
            assert_eq!(doc["reply_status"], 500);
        }
        let (code, doc) = verify(v3.0, c"{\"a\":1}");
        assert_eq!(code, WxPayResult::WXPAY_ERR_INVALID_ARGUMENT as i32);
        assert!(
            message(&doc).contains("headers_json: a must be a string"),
            "{doc}"
        );

        // Another generation: its own reply, no status.
        let (code, doc) = verify(v2.0, forged);
        assert_eq!(code, WxPayResult::WXPAY_ERR_INVALID_ARGUMENT as i32);
        assert!(doc["reply"].as_str().expect("reply").starts_with("<xml>"));
        assert!(doc.get("reply_status").is_none());
    }
}
