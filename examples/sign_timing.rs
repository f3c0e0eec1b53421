//! Signing cost per order and the cost of crossing the C ABI, timed in plain
//! loops (no criterion, so it builds with the release binaries in seconds).
//! Prints one JSON line per measurement: the median over 7 batches of the
//! mean ns per operation.
//!
//! - all signing for one order: the package MD5 and the two SHA1 signatures
//!   (`prepay_body` + `pay_params`, the pure part of `build_pay_params`), for
//!   a UTF-8 and a GBK merchant (the article declares GBK);
//! - `sign(legacy-sha1)` on ready `Fields`: the Rust call under `wxpay_sign`;
//! - the same from JSON text (parse + sign): what `wxpay_sign` must do;
//! - `wxpay_sign` + `wxpay_string_free` called from Rust through the crate
//!   (the C ABI's own work, without dynamic linking).
//!
//! `scripts/bench.sh` times the same `wxpay_sign` from C (benches/c/sign_loop.c)
//! and from Python (`wxpay_ctypes.sign`) with the same parameters.
//!
//! ```sh
//! cargo run --release --example sign_timing
//! ```

use std::collections::BTreeMap;
use std::ffi::{c_char, CString};
use std::hint::black_box;
use std::time::Instant;

use wxpay::api::legacy::flow::{pay_params, prepay_body};
use wxpay::api::legacy::merchant::LegacyMerchant;
use wxpay::crypto::sign::{sign, Fields};
use wxpay::{Config, Order, Scheme, Secret};

const APP_KEY: &str = "L8LrMqqeGRxST5reouB0K66CaYAWpqhAVsq7ggKkxHCOastWksvuX1uvmvQclxaHoYd3ElNBrNO2DHnnzgfVG9Qs473M3DTOZug5er46FhuGofumV8H2FVR9qkjSlC5K";

/// The parameters of the app's final `sign` (PROTOCOL.md 1.5), as JSON: the
/// same text the C and Python loops sign.
const PARAMS_JSON: &str = r#"{"appid":"wxd930ea5d5a258f4f","noncestr":"e7d161ac8d8a76529d39d9f5b4249ccb","package":"Sign=WXPay","partnerid":"1900000109","prepayid":"1101000000140429eb40476f8896f4c9","timestamp":"1399514976"}"#;

fn merchant(charset: &str) -> LegacyMerchant {
    Config::from_json(&format!(
        r#"{{"appid":"wxd930ea5d5a258f4f","app_secret":"s","app_key":"{APP_KEY}",
            "partner_id":"1900000109","partner_key":"8934e7d15453e97507ef794cf7b0519d",
            "notify_url":"http://weixin.qq.com","input_charset":"{charset}"}}"#
    ))
    .and_then(|c| c.legacy_merchant())
    .expect("valid config")
}

/// Median over 7 batches of the mean ns per call of `op`; each batch lasts
/// about 50 ms.
fn time_ns(mut op: impl FnMut()) -> f64 {
    let probe = Instant::now();
    let mut n = 0u64;
    while probe.elapsed().as_millis() < 20 {
        op();
        n += 1;
    }
    let per_batch = (n * 50 / 20).max(1);
    let mut means: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_batch {
                op();
            }
            t.elapsed().as_nanos() as f64 / per_batch as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    means[3]
}

fn report(name: &str, ns: f64) {
    println!(
        "{}",
        serde_json::json!({ "impl": name, "ns_per_op": ns.round() as u64 })
    );
}

fn main() {
    let order = Order::from_json(
        r#"{"out_trade_no":"7240b65810859cbf2a8d9f76a638c0a3","total_yuan":"19.99","body":"支付测试","client_ip":"196.168.1.1"}"#,
    )
    .expect("valid order");
    for charset in ["UTF-8", "GBK"] {
        let m = merchant(charset);
        let ns = time_ns(|| {
            let body = prepay_body(
                &m,
                black_box(&order),
                1_399_514_976,
                "e7d161ac8d8a76529d39d9f5b4249ccb",
            )
            .expect("signs");
            let params = pay_params(
                &m,
                &order,
                "1101000000140429eb40476f8896f4c9",
                1_399_514_976,
                &body.noncestr,
            )
            .expect("signs");
            black_box((body, params));
        });
        report(
            &format!("Rust: all signing for one order ({charset}: package MD5 + 2 SHA1)"),
            ns,
        );
    }

    let key = Secret::new(APP_KEY);
    let fields: Fields = serde_json::from_str(PARAMS_JSON).expect("flat JSON");
    let expected = sign(Scheme::LegacySha1, &key, &fields)
        .expect("signs")
        .into_signature();
    report(
        "Rust: sign(legacy-sha1) on ready Fields",
        time_ns(|| {
            black_box(sign(Scheme::LegacySha1, &key, black_box(&fields)).expect("signs"));
        }),
    );
    report(
        "Rust: parse JSON + sign(legacy-sha1)",
        time_ns(|| {
            let fields: BTreeMap<String, String> =
                serde_json::from_str(black_box(PARAMS_JSON)).expect("flat JSON");
            black_box(sign(Scheme::LegacySha1, &key, &fields).expect("signs"));
        }),
    );

    let scheme = CString::new("legacy-sha1").expect("no NUL");
    let c_key = CString::new(APP_KEY).expect("no NUL");
    let c_params = CString::new(PARAMS_JSON).expect("no NUL");
    let call = || -> String {
        let mut out: *mut c_char = std::ptr::null_mut();
        // SAFETY: NUL-terminated strings that outlive the call, a valid out
        // pointer, and no error out-pointer.
        let rc = unsafe {
            wxpay::ffi::wxpay_sign(
                scheme.as_ptr(),
                c_key.as_ptr(),
                c_params.as_ptr(),
                &mut out,
                std::ptr::null_mut(),
            )
        };
        assert_eq!(rc, 0, "wxpay_sign fails");
        // SAFETY: `out` is the library's NUL-terminated string, freed once below.
        let text = unsafe { std::ffi::CStr::from_ptr(out) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: returned by wxpay_sign, not used after.
        unsafe { wxpay::ffi::wxpay_string_free(out) };
        text
    };
    assert_eq!(call(), expected, "the C ABI signs as the Rust call does");
    report(
        "Rust -> C ABI: wxpay_sign + wxpay_string_free (static, in-crate)",
        time_ns(|| {
            let mut out: *mut c_char = std::ptr::null_mut();
            // SAFETY: as above.
            let rc = unsafe {
                wxpay::ffi::wxpay_sign(
                    scheme.as_ptr(),
                    c_key.as_ptr(),
                    c_params.as_ptr(),
                    &mut out,
                    std::ptr::null_mut(),
                )
            };
            black_box(rc);
            // SAFETY: as above.
            unsafe { wxpay::ffi::wxpay_string_free(out) };
        }),
    );
    eprintln!("sign_timing: legacy-sha1 of the test parameters = {expected}");
}
