//! The 2014 gateway's JSON answers (`/cgi-bin/token`, `/pay/genprepay`):
//! any body, with status 200 and others, gives a typed result, never a panic.
//!
//! Input: the response body. Its first byte also picks the non-200 status.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxpay::api::legacy::requests::{parse_genprepay_response, parse_token_response};
use wxpay::http::HttpResponse;
use wxpay::Error;
use wxpay_fuzz::NOW;

const OTHER_STATUSES: [u16; 12] = [
    0,
    100,
    201,
    204,
    302,
    400,
    401,
    429,
    500,
    502,
    599,
    u16::MAX,
];

fuzz_target!(|data: &[u8]| {
    let ok = HttpResponse::new(200, data.to_vec());
    for now in [0, NOW, u64::MAX] {
        match parse_token_response(&ok, now) {
            Ok(token) => {
                let value = token.value().expose();
                assert!(!value.is_empty() && value.len() <= 1024);
                // Due for refresh after `now`, and at most a day later.
                assert!(token.refresh_after() >= now || now == u64::MAX);
                assert!(token.refresh_after() <= now.saturating_add(86_400));
            }
            Err(e) => check_error(&e, 200),
        }
    }
    match parse_genprepay_response(&ok) {
        Ok(id) => {
            assert!(!id.is_empty() && id.len() <= 64);
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
        Err(e) => check_error(&e, 200),
    }

    let status =
        OTHER_STATUSES[usize::from(data.first().copied().unwrap_or(0)) % OTHER_STATUSES.len()];
    let other = HttpResponse::new(status, data.to_vec());
    for result in [
        parse_token_response(&other, NOW).map(drop),
        parse_genprepay_response(&other).map(drop),
    ] {
        assert_eq!(result, Err(Error::HttpStatus { status }));
    }
});

/// The errors a 200 answer may give.
fn check_error(e: &Error, status: u16) {
    match e {
        Error::MalformedResponse(_) => {}
        Error::Gateway { errcode, errmsg } => {
            assert_ne!(*errcode, 0, "errcode 0 is success");
            assert!(errmsg.chars().count() <= 512);
        }
        other => panic!("status {status}: unexpected error {other:?}"),
    }
}
