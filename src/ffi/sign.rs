//! Signing without a client: `wxpay_sign`, the C form of `wxpay sign`.

use std::ffi::c_char;

use super::boundary::{arg, ffi_call};
use super::documents::Document;
use crate::crypto::sign::{sign, Fields, Scheme};
use crate::Secret;

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
/// Every argument is read and checked for NULL, size and UTF-8 before any is
/// judged.
///
/// On success `*out_sign` receives the hex signature. Pure: no network,
/// thread-safe.
///
/// # Safety
///
/// `scheme`, `key`, `params_json`, `out_sign` and `out_error`: as `WxPayResult`
/// states.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wxpay_sign(
    scheme: *const c_char,
    key: *const c_char,
    params_json: *const c_char,
    out_sign: *mut *mut c_char,
    out_error: *mut *mut c_char,
) -> i32 {
    ffi_call!(out_error, out_sign, {
        let (scheme, key, params) = (arg!(scheme), arg!(key), arg!(params_json));
        let scheme: Scheme = scheme.parse()?;
        let fields = Fields::from_json(params, "params_json")?;
        sign(scheme, &Secret::new(key), &fields)?.into_signature()
    })
}

#[cfg(test)]
mod tests {
    use std::ptr;

    use super::*;
    use crate::ffi::boundary::tests::{parse, take};
    use crate::ffi::WxPayResult;

    fn signed(
        scheme: &std::ffi::CStr,
        key: &std::ffi::CStr,
        params: &std::ffi::CStr,
    ) -> Result<String, serde_json::Value> {
        let mut out = ptr::null_mut();
        let mut error = ptr::null_mut();
        // SAFETY: C strings and writable out-pointers.
        let code = unsafe {
            wxpay_sign(
                scheme.as_ptr(),
                key.as_ptr(),
                params.as_ptr(),
                &mut out,
                &mut error,
            )
        };
        match take(out) {
            Some(signature) if code == 0 && error.is_null() => Ok(signature),
            _ => Err(parse(take(error).expect("an error document"))),
        }
    }

    #[test]
    fn sign_matches_the_public_package_vector() {
        let params = c"{\"bank_type\":\"WX\",\"body\":\"\xe6\x94\xaf\xe4\xbb\x98\xe6\xb5\x8b\xe8\xaf\x95\",\"fee_type\":\"1\",\"input_charset\":\"UTF-8\",\"notify_url\":\"http://weixin.qq.com\",\"out_trade_no\":\"7240b65810859cbf2a8d9f76a638c0a3\",\"partner\":\"1900000109\",\"spbill_create_ip\":\"196.168.1.1\",\"total_fee\":\"1\"}";
        let signature = signed(
            c"legacy-package",
            c"8934e7d15453e97507ef794cf7b0519d",
            params,
        );
        assert_eq!(signature.as_deref(), Ok("7F77B507B755B3262884291517E380F8"));
    }

    #[test]
    fn bad_arguments_are_named() {
        let params = c"{\"a\":\"b\"}";
        for (scheme, key, params, code, needle) in [
            (
                c"md5",
                c"K",
                params,
                WxPayResult::WXPAY_ERR_INVALID_ARGUMENT,
                "legacy-sha1",
            ),
            (
                c"legacy-sha1",
                c"",
                params,
                WxPayResult::WXPAY_ERR_INVALID_ARGUMENT,
                "key",
            ),
            (
                c"legacy-sha1",
                c"K",
                c"{\"a\":",
                WxPayResult::WXPAY_ERR_INVALID_JSON,
                "params",
            ),
            (
                c"legacy-sha1",
                c"K",
                c"[1]",
                WxPayResult::WXPAY_ERR_INVALID_ARGUMENT,
                "params",
            ),
            (
                c"legacy-\xff",
                c"K",
                params,
                WxPayResult::WXPAY_ERR_INVALID_UTF8,
                "scheme",
            ),
        ] {
            let doc = signed(scheme, key, params).expect_err("refused");
            assert_eq!(doc["code"], code as i32, "{doc}");
            assert!(
                doc["message"].as_str().expect("message").contains(needle),
                "{doc}"
            );
        }
    }
}
