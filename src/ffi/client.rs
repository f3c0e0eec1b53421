//! The client handle: its lifetime (`wxpay_client_new`, `wxpay_client_free`)
//! and the operations that call the gateway.

use std::ffi::c_char;
use std::ptr;

use super::boundary::{arg, ffi_call, put, release, Arg, Failure, Output};
use crate::model::{OrderRef, RefundRequest};
use crate::{Client, Config, Order};

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

/// The client behind a handle (shared access only: it is `Sync`).
impl Arg for *const WxPayClient {
    type Value<'a> = &'a Client;

    unsafe fn read<'a>(self, name: &'static str) -> Result<&'a Client, Failure> {
        // SAFETY: NULL or a live client (the caller's contract).
        unsafe { self.as_ref() }
            .map(|handle| &handle.client)
            .ok_or_else(|| Failure::null(name))
    }
}

/// A new handle, owned by the caller until `wxpay_client_free()`.
impl Output for *mut *mut WxPayClient {
    type Value = Client;

    unsafe fn clear(self, name: &'static str) -> Result<(), Failure> {
        // SAFETY: the caller's contract.
        unsafe { put(self, ptr::null_mut(), name) }
    }

    unsafe fn write(self, client: Client) -> Result<(), Failure> {
        let handle = Box::into_raw(Box::new(WxPayClient { client }));
        // SAFETY: checked by `clear`.
        unsafe { ptr::write(self, handle) };
        Ok(())
    }
}

/// Creates a client from a JSON configuration.
///
/// `config_json`: a JSON object with the keys `appid`, `app_secret`,
/// `app_key`, `partner_id`, `partner_key`, `notify_url`, and optionally
/// `api_base` (default `https://api.weixin.qq.com`; plain `http://` only for
/// loopback hosts), `input_charset` (`"UTF-8"` or `"GBK"`) and `timeout_ms`.
/// With `"api": "v2"`: `appid`, `mch_id`, `api_key`, `notify_url`
/// (optionally `sign_type`, `client_cert`, `sandbox`). With `"api": "v3"`:
/// `appid`, `mchid`, `merchant_private_key` (PEM text) or
/// `merchant_private_key_file`, `merchant_serial_no`, `api_v3_key`,
/// `notify_url`, and either `wechatpay_public_key` (or `_file`) with
/// `wechatpay_public_key_id` (public-key mode) or neither (certificate mode;
/// optionally `platform_cert_refresh_secs`). Unknown keys are an error
/// (`WXPAY_ERR_INVALID_CONFIG`, as is a key that does not parse, naming its
/// field).
///
/// On success `*out_client` receives a new client, which the caller owns and
/// frees with `wxpay_client_free()`. No network call is made here.
///
/// Logging: when the environment variable `WXPAY_LOG` is `error`, `warn`,
/// `info`, `debug` or `trace` at the first call of this function, the
/// library writes its log lines (`wxpay[LEVEL] target: message`) to standard
/// error from then on. They never contain a key, a secret, a token or a
/// signature.
///
/// # Safety
///
/// `config_json`, `out_client` and `out_error`: as `WxPayResult` states.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wxpay_client_new(
    config_json: *const c_char,
    out_client: *mut *mut WxPayClient,
    out_error: *mut *mut c_char,
) -> i32 {
    ffi_call!(out_error, out_client, {
        crate::util::logging::init_from_env();
        Client::new(arg!(config_json as Config))?
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
    if !client.is_null() {
        // SAFETY: the caller gives back ownership of a pointer from Box::into_raw.
        release(|| drop(unsafe { Box::from_raw(client) }));
    }
}

/// Runs the whole payment flow for one order and returns the parameters the
/// app hands to the WeChat SDK.
///
/// `order_json`: a JSON object with `out_trade_no`, exactly one of
/// `total_fee` (integer fen, e.g. `1999`) or `total_yuan` (decimal string of
/// yuan, at most two decimals, e.g. `"19.99"`), `body`, `client_ip` (IPv4),
/// and optionally `attach`, `expire_minutes`, `traceid`. An invalid order
/// fails with `WXPAY_ERR_INVALID_ORDER`, naming the field, before any network
/// call.
///
/// On success `*out_json` receives a JSON object `{"appid", "partnerid",
/// "prepayid", "package", "noncestr", "timestamp", "sign", "out_trade_no",
/// "total_fee"}` (all strings but `total_fee`, an integer of fen).
///
/// This call blocks on the network: an access_token fetch when none is
/// cached, the `genprepay` call, and both once more when the gateway rejects
/// the token; each HTTP exchange is bounded by the configured `timeout_ms`.
/// Thread-safe: any number of threads may call it on the same client at
/// once; they share one cached access_token, and each uses a keep-alive
/// connection of its own.
///
/// # Safety
///
/// `client`, `order_json`, `out_json` and `out_error`: as `WxPayResult` states.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wxpay_build_pay_params(
    client: *const WxPayClient,
    order_json: *const c_char,
    out_json: *mut *mut c_char,
    out_error: *mut *mut c_char,
) -> i32 {
    ffi_call!(out_error, json out_json, {
        let client = arg!(client);
        client.build_pay_params(&arg!(order_json as Order))?
    })
}

/// The state of an order (API v2 `orderquery`; API v3 `GET
/// /v3/pay/transactions/...`).
///
/// `order_ref_json`: a JSON object naming the order, either
/// `{"out_trade_no": "A1001"}` or `{"transaction_id": "4200..."}` (exactly
/// one; 1 to 32 characters of `A-Z a-z 0-9 _ - | * @`; `null` is the same as
/// absent; no other key, no key twice). Anything else fails with
/// `WXPAY_ERR_INVALID_ARGUMENT` (the message names the key) before any
/// network call.
///
/// On success `*out_json` receives a JSON object `{"out_trade_no",
/// "transaction_id", "trade_state", "trade_state_desc", "total_fee",
/// "time_end"}`: `trade_state` is the gateway's spelling (`"SUCCESS"`,
/// `"REFUND"`, `"NOTPAY"`, `"CLOSED"`, `"REVOKED"`, `"USERPAYING"`,
/// `"PAYERROR"`, or another string as sent), `total_fee` an integer of fen,
/// and every key but `out_trade_no` and `trade_state` may be `null`.
///
/// A business refusal is `WXPAY_ERR_REJECTED` with the gateway's
/// `"gateway_code"` (e.g. `"ORDERNOTEXIST"`; API v3: `"ORDER_NOT_EXIST"` with
/// `"http_status": 404`). A client configured with `"api": "legacy"` fails
/// with `WXPAY_ERR_INVALID_ARGUMENT` (API v2 and v3 only).
///
/// Blocks on one HTTP exchange (bounded by the configured `timeout_ms`); in
/// WeChat's simulation environment (`"sandbox": true`) the first call also
/// fetches the simulation key. The answer's signature is verified before any
/// of it is believed. Thread-safe: any number of threads may call it on the
/// same client at once.
///
/// # Safety
///
/// `client`, `order_ref_json`, `out_json` and `out_error`: as `WxPayResult`
/// states.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wxpay_query_order(
    client: *const WxPayClient,
    order_ref_json: *const c_char,
    out_json: *mut *mut c_char,
    out_error: *mut *mut c_char,
) -> i32 {
    ffi_call!(out_error, json out_json, {
        let client = arg!(client);
        client.query_order(&arg!(order_ref_json as OrderRef))?
    })
}

/// Closes an unpaid order (API v2 `closeorder`; API v3 `POST .../close`), so
/// that it can no longer be paid.
///
/// `out_trade_no`: the merchant's trade number, 1 to 32 characters of `A-Z
/// a-z 0-9 _ - | * @` (otherwise `WXPAY_ERR_INVALID_ARGUMENT`, before any
/// network call).
///
/// Returns `WXPAY_OK` when the gateway closed the order; there is no other
/// output. A paid order is `WXPAY_ERR_REJECTED` with `"gateway_code":
/// "ORDERPAID"` (refund it instead). API v2 and v3 only.
///
/// Blocks on one HTTP exchange; thread-safe, as `wxpay_query_order()`.
///
/// # Safety
///
/// `client`, `out_trade_no` and `out_error`: as `WxPayResult` states.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wxpay_close_order(
    client: *const WxPayClient,
    out_trade_no: *const c_char,
    out_error: *mut *mut c_char,
) -> i32 {
    ffi_call!(out_error, {
        let client = arg!(client);
        client.close_order(arg!(out_trade_no))?
    })
}

/// Refunds all or part of a paid order (API v2 `secapi/pay/refund`, over
/// mutual TLS with the configuration's `client_cert`; API v3 `POST
/// /v3/refund/domestic/refunds`, RSA-signed).
///
/// `refund_json`: a JSON object with exactly one of `out_trade_no` and
/// `transaction_id` (as in `wxpay_query_order()`), `out_refund_no` (the
/// merchant's refund number: 1 to 64 characters of `A-Z a-z 0-9 _ - | * @`,
/// unique per refund; sending the same one again does not refund twice),
/// `total_fee` (the order's amount) and `refund_fee` (the amount to refund,
/// at most `total_fee`), both JSON integers of fen, and optionally
/// `refund_desc` (a string shown to the user). No other key, no key twice. A
/// malformed document fails with `WXPAY_ERR_INVALID_ARGUMENT` (the message
/// names the key) before any network call.
///
/// On success `*out_json` receives the gateway's receipt `{"out_refund_no",
/// "refund_id", "refund_fee"}` (`refund_fee` an integer of fen). The refund
/// itself completes later: its outcome comes as a refund notification
/// (`wxpay_verify_refund_notification()`) and from `wxpay_query_refunds()`.
///
/// Failures include `WXPAY_ERR_REJECTED` with `"gateway_code": "NOTENOUGH"`
/// when less than `refund_fee` is left to refund, and
/// `WXPAY_ERR_INVALID_CONFIG` (naming `client_cert`) when an API v2 client
/// has no certificate. API v2 and v3 only (API v3 refund notifications are
/// not verified by this library yet).
///
/// Blocks on one HTTP exchange; thread-safe, as `wxpay_query_order()`.
///
/// # Safety
///
/// `client`, `refund_json`, `out_json` and `out_error`: as `WxPayResult`
/// states.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wxpay_refund(
    client: *const WxPayClient,
    refund_json: *const c_char,
    out_json: *mut *mut c_char,
    out_error: *mut *mut c_char,
) -> i32 {
    ffi_call!(out_error, json out_json, {
        let client = arg!(client);
        client.refund(&arg!(refund_json as RefundRequest))?
    })
}

/// The refunds of an order (API v2 `refundquery`).
///
/// `order_ref_json`: as for `wxpay_query_order()`.
///
/// On success `*out_json` receives a JSON array with one object per refund,
/// `{"out_refund_no", "refund_id", "refund_fee", "refund_status"}`
/// (`refund_fee` an integer of fen; `refund_status` one of `"SUCCESS"`,
/// `"PROCESSING"`, `"REFUNDCLOSE"`, `"CHANGE"`). An order without refunds is
/// `WXPAY_ERR_REJECTED` with `"gateway_code": "REFUNDNOTEXIST"`, as the
/// gateway answers it. API v2 only.
///
/// Blocks on one HTTP exchange; thread-safe, as `wxpay_query_order()`.
///
/// # Safety
///
/// `client`, `order_ref_json`, `out_json` and `out_error`: as `WxPayResult`
/// states.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wxpay_query_refunds(
    client: *const WxPayClient,
    order_ref_json: *const c_char,
    out_json: *mut *mut c_char,
    out_error: *mut *mut c_char,
) -> i32 {
    ffi_call!(out_error, json out_json, {
        let client = arg!(client);
        client.query_refunds(&arg!(order_ref_json as OrderRef))?
    })
}

/// Downloads WeChat Pay's platform certificates now (API v3, certificate
/// mode: a configuration without `wechatpay_public_key`) and keeps them in
/// the client. Clients do this by themselves (before the first call that
/// needs them, every `platform_cert_refresh_secs`, and when an answer or a
/// notification names an unknown serial); call it to fail early, at start-up,
/// on a wrong API v3 key or an unreachable gateway.
///
/// On success `*out_count` receives how many certificates the gateway
/// listed. A client of another `"api"` fails with
/// `WXPAY_ERR_INVALID_ARGUMENT`; an answer that does not decrypt with the API
/// v3 key or does not verify with the certificates it lists is
/// `WXPAY_ERR_MALFORMED_RESPONSE`.
///
/// Blocks on one HTTP exchange (bounded by the configured `timeout_ms`);
/// thread-safe (concurrent downloads are made one at a time).
///
/// # Safety
///
/// `client`, `out_count` and `out_error`: as `WxPayResult` states.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wxpay_download_certificates(
    client: *const WxPayClient,
    out_count: *mut i32,
    out_error: *mut *mut c_char,
) -> i32 {
    ffi_call!(out_error, out_count, {
        let count = arg!(client).download_certificates()?;
        // The gateway lists a handful; saturate rather than wrap.
        i32::try_from(count).unwrap_or(i32::MAX)
    })
}

#[cfg(test)]
pub(super) mod tests {
    use std::ffi::CStr;

    use serde_json::Value;

    use super::*;
    use crate::ffi::boundary::tests::{parse, take};
    use crate::ffi::WxPayResult;

    pub(crate) const V2_CONFIG: &CStr = c"{\"api\":\"v2\",\"appid\":\"wxd930ea5d5a258f4f\",\"mch_id\":\"10000100\",\"api_key\":\"192006250b4c09247ec02edce69f6a2d\",\"notify_url\":\"https://example.com/notify\",\"api_base\":\"http://127.0.0.1:1\",\"timeout_ms\":1000}";
    pub(crate) const LEGACY_CONFIG: &CStr = c"{\"appid\":\"wx1\",\"app_secret\":\"s\",\"app_key\":\"k\",\"partner_id\":\"1\",\"partner_key\":\"p\",\"notify_url\":\"https://example.com/n\",\"api_base\":\"http://127.0.0.1:1\"}";

    /// A client for `config`, freed when dropped.
    pub(crate) struct Handle(pub(crate) *mut WxPayClient);

    impl Handle {
        pub(crate) fn new(config: &CStr) -> Handle {
            let mut client = ptr::null_mut();
            // SAFETY: a C string and a writable out-pointer.
            let code = unsafe { wxpay_client_new(config.as_ptr(), &mut client, ptr::null_mut()) };
            assert_eq!(code, 0);
            Handle(client)
        }
    }

    impl Drop for Handle {
        fn drop(&mut self) {
            // SAFETY: a client of wxpay_client_new, freed once.
            unsafe { wxpay_client_free(self.0) };
        }
    }

    /// The error document of a failed call, freed.
    pub(crate) fn error_doc(error: *mut c_char) -> Value {
        parse(take(error).expect("an error document"))
    }

    type JsonCall = unsafe extern "C" fn(
        *const WxPayClient,
        *const c_char,
        *mut *mut c_char,
        *mut *mut c_char,
    ) -> i32;

    /// Calls `call` with `json`; returns the code and the error document.
    fn refused(call: JsonCall, client: &Handle, json: &CStr) -> (i32, Value) {
        let mut out = ptr::dangling_mut::<c_char>();
        let mut error = ptr::dangling_mut::<c_char>();
        // SAFETY: a live client, a C string, writable out-pointers.
        let code = unsafe { call(client.0, json.as_ptr(), &mut out, &mut error) };
        assert!(out.is_null(), "the output is NULL after a failure");
        (code, error_doc(error))
    }

    fn message(doc: &Value) -> &str {
        doc["message"].as_str().expect("a message")
    }

    #[test]
    fn v2_operations_check_their_arguments_before_the_network() {
        let v2 = Handle::new(V2_CONFIG);
        let legacy = Handle::new(LEGACY_CONFIG);
        let (code, doc) = refused(wxpay_query_order, &v2, c"{\"id\":1}");
        assert_eq!(code, WxPayResult::WXPAY_ERR_INVALID_ARGUMENT as i32);
        assert!(message(&doc).contains("order_ref_json"), "{doc}");
        // A legacy client refuses API v2 operations, without a network call.
        let (code, doc) = refused(wxpay_query_refunds, &legacy, c"{\"out_trade_no\":\"A1\"}");
        assert_eq!(code, WxPayResult::WXPAY_ERR_INVALID_ARGUMENT as i32);
        assert!(message(&doc).contains("API v2"), "{doc}");
        let refund =
            c"{\"out_trade_no\":\"A1\",\"out_refund_no\":\"R 1\",\"total_fee\":2,\"refund_fee\":1}";
        let (code, doc) = refused(wxpay_refund, &v2, refund);
        assert_eq!(code, WxPayResult::WXPAY_ERR_INVALID_ARGUMENT as i32);
        assert!(message(&doc).contains("out_refund_no"), "{doc}");
        let (code, doc) = refused(wxpay_build_pay_params, &v2, c"{\"out_trade_no\":\"A\"}");
        assert_eq!(code, WxPayResult::WXPAY_ERR_INVALID_ORDER as i32);
        assert_eq!(doc["kind"], "invalid_order");
        // A valid query reaches the (closed) gateway port.
        let (code, doc) = refused(wxpay_query_order, &v2, c"{\"out_trade_no\":\"A1\"}");
        assert_eq!(code, WxPayResult::WXPAY_ERR_NETWORK as i32);
        assert_eq!(doc["retryable"], true);

        let mut error = ptr::null_mut();
        for (client, no, code) in [
            (&legacy, c"A1", WxPayResult::WXPAY_ERR_INVALID_ARGUMENT),
            (&v2, c"", WxPayResult::WXPAY_ERR_INVALID_ARGUMENT),
            (&v2, c"A 1", WxPayResult::WXPAY_ERR_INVALID_ARGUMENT),
            (&v2, c"A1", WxPayResult::WXPAY_ERR_NETWORK),
        ] {
            // SAFETY: a live client, a C string, a writable out_error.
            let got = unsafe { wxpay_close_order(client.0, no.as_ptr(), &mut error) };
            assert_eq!(got, code as i32, "{no:?}");
            take(error);
        }
        let mut count = 5;
        // SAFETY: a live client and writable out-pointers.
        let code = unsafe { wxpay_download_certificates(v2.0, &mut count, &mut error) };
        assert_eq!(code, WxPayResult::WXPAY_ERR_INVALID_ARGUMENT as i32);
        assert_eq!(count, 0);
        assert!(message(&error_doc(error)).contains("v3"));
    }

    #[test]
    fn null_arguments_are_named() {
        let v2 = Handle::new(V2_CONFIG);
        let good = c"{\"out_trade_no\":\"A1\"}".as_ptr();
        let mut out = ptr::dangling_mut::<c_char>();
        let mut error = ptr::null_mut();
        let named = |code: i32, error: *mut c_char, argument: &str| {
            assert_eq!(code, WxPayResult::WXPAY_ERR_NULL_ARGUMENT as i32);
            let expected = format!("argument `{argument}` is NULL");
            assert_eq!(message(&error_doc(error)), expected);
        };
        // SAFETY: every pointer is NULL or valid.
        unsafe {
            named(
                wxpay_query_order(ptr::null(), good, &mut out, &mut error),
                error,
                "client",
            );
            named(
                wxpay_query_order(v2.0, ptr::null(), &mut out, &mut error),
                error,
                "order_ref_json",
            );
            named(
                wxpay_query_order(v2.0, good, ptr::null_mut(), &mut error),
                error,
                "out_json",
            );
            named(
                wxpay_close_order(v2.0, ptr::null(), &mut error),
                error,
                "out_trade_no",
            );
            named(
                wxpay_download_certificates(v2.0, ptr::null_mut(), &mut error),
                error,
                "out_count",
            );
            let config = V2_CONFIG.as_ptr();
            named(
                wxpay_client_new(config, ptr::null_mut(), &mut error),
                error,
                "out_client",
            );
            assert_eq!(
                wxpay_query_order(ptr::null(), ptr::null(), ptr::null_mut(), ptr::null_mut()),
                WxPayResult::WXPAY_ERR_NULL_ARGUMENT as i32
            );
        }
        assert!(out.is_null());
    }

    #[test]
    fn outputs_are_null_on_failure() {
        // Sentinels a failed call must overwrite with NULL (never dereferenced).
        let mut client = ptr::dangling_mut::<WxPayClient>();
        let mut error = ptr::dangling_mut::<c_char>();
        // SAFETY: a C string and writable out-pointers.
        let code = unsafe { wxpay_client_new(c"{".as_ptr(), &mut client, &mut error) };
        assert_eq!(code, WxPayResult::WXPAY_ERR_INVALID_JSON as i32);
        assert!(client.is_null());
        assert_eq!(error_doc(error)["kind"], "invalid_json");
        let mut error = ptr::dangling_mut::<c_char>();
        // SAFETY: as above.
        let code = unsafe { wxpay_client_new(c"{}".as_ptr(), &mut client, &mut error) };
        assert_eq!(code, WxPayResult::WXPAY_ERR_INVALID_CONFIG as i32);
        assert!(client.is_null());
        take(error);
        // SAFETY: NULL is a no-op.
        unsafe { wxpay_client_free(ptr::null_mut()) };
    }
}
