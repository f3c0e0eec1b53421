//! The two JSON documents a host hands over, and amounts of yuan.
//!
//! The input as UTF-8 (invalid bytes replaced) goes to:
//! - `Config::from_json`: never panics; a config it accepts validates again,
//!   and neither its `Debug` nor any error message shows a secret's value
//!   (a secret of 8 bytes or more that appears nowhere else in the input;
//!   numbers count: a mistyped secret must not be quoted either).
//! - `Order::from_json`: never panics; an order it accepts serializes to JSON
//!   that reads back to the same order.
//! - `Fen::from_yuan_str`: never panics; agrees with a plain reference
//!   reading of decimal text, and `to_yuan_string()` reads back to the same
//!   amount.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use wxpay::util::money::Fen;
use wxpay::{Config, Order};
use wxpay_fuzz::text;

/// The configuration keys whose values are secrets. Besides these, every
/// `*_file` value (an operator may paste a key where its path belongs) and
/// everything inside `client_cert`, whatever its shape.
const SECRET_KEYS: [&str; 7] = [
    "app_secret",
    "app_key",
    "partner_key",
    "api_key",
    "merchant_private_key",
    "wechatpay_public_key",
    "api_v3_key",
];

/// Whether the value of top-level key `key` may hold key material.
fn is_secret_key(key: &str) -> bool {
    SECRET_KEYS.contains(&key) || key.ends_with("_file") || key == "client_cert"
}

/// Secrets shorter than this are too likely to occur in other text by chance.
const MIN_SECRET_LEN: usize = 8;

fuzz_target!(|data: &[u8]| {
    let input = text(data);

    let shown = shown(&input);
    for secret in secrets(&input) {
        if !shown.contains(&secret) || !input.contains(&secret) {
            continue;
        }
        // The text may be in the message by chance (the fuzzer learns the
        // messages' words): the secret is shown only if a disguised secret
        // (found nowhere else in the input) is shown disguised.
        let marker = disguise(&secret);
        if marker != secret && !input.contains(&marker) {
            let again = self::shown(&input.replace(&secret, &marker));
            assert!(
                !again.contains(&marker),
                "a secret value ({} bytes) is shown: {shown:?}",
                secret.len()
            );
        }
    }

    if let Ok(order) = Order::from_json(&input) {
        let json = serde_json::to_string(&order).expect("an order serializes");
        assert_eq!(Order::from_json(&json).as_ref(), Ok(&order), "json: {json}");
    }

    let reference = reference_fen(&input);
    match Fen::from_yuan_str(&input) {
        Ok(fen) => {
            assert_eq!(reference, Some(u128::from(fen.get())), "{input:?}");
            assert_eq!(Fen::from_yuan_str(&fen.to_yuan_string()), Ok(fen));
            assert_eq!(Fen::new(i64::from(fen.get())), Ok(fen));
        }
        Err(_) => {
            if let Some(fen) = reference {
                assert!(
                    fen == 0 || fen > u128::from(Fen::MAX.get()),
                    "{input:?} is {fen} fen"
                );
            }
        }
    }
});

/// What a config shows: its `Debug` when it is accepted, else the error message.
fn shown(input: &str) -> String {
    match Config::from_json(input) {
        Ok(config) => {
            config
                .validate()
                .expect("an accepted config validates again");
            format!("{config:?}")
        }
        Err(e) => e.to_string(),
    }
}

/// `s` with every ASCII letter and digit moved to the next one (never to
/// `0`, so a number stays a number): same length, same JSON shape.
fn disguise(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'z' => 'a',
            'Z' => 'A',
            '9' => '1',
            'a'..='y' | 'A'..='Y' | '0'..='8' => char::from(c as u8 + 1),
            c => c,
        })
        .collect()
}

/// The secret values of a JSON config (strings, and numbers as text), that
/// appear nowhere else in it: keys and other values may be shown.
fn secrets(input: &str) -> Vec<String> {
    let Ok(Value::Object(top)) = serde_json::from_str::<Value>(input) else {
        return Vec::new();
    };
    let mut secret = Vec::new();
    let mut other = Vec::new();
    for (k, v) in &top {
        other.push(k.clone());
        match v {
            Value::Object(inner) => {
                // Keys name fields and may be shown; values inside a secret
                // key (client_cert) are secret.
                other.extend(inner.keys().cloned());
                let into = if is_secret_key(k) { &mut secret } else { &mut other };
                inner.values().for_each(|iv| scalars(iv, into));
            }
            v if is_secret_key(k) => scalars(v, &mut secret),
            v => scalars(v, &mut other),
        }
    }
    secret
        .into_iter()
        .filter(|s| s.len() >= MIN_SECRET_LEN)
        .filter(|s| !other.iter().any(|o| o.contains(s.as_str())))
        .collect()
}

/// Every string and number inside `v`, as text (object keys too).
fn scalars(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(items) => items.iter().for_each(|i| scalars(i, out)),
        Value::Object(map) => map.iter().for_each(|(k, i)| {
            out.push(k.clone());
            scalars(i, out)
        }),
        Value::Bool(_) | Value::Null => {}
    }
}

/// Decimal yuan text (`12`, `12.3`, `.5`, `012.30`; trimmed; no sign) as
/// fen, read the plain way; `None` when it is not such text.
fn reference_fen(input: &str) -> Option<u128> {
    let t = input.trim();
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(frac) || frac.len() > 2 || t.ends_with('.') || t.is_empty() {
        return None;
    }
    let whole = whole.trim_start_matches('0');
    if whole.len() > 30 {
        return Some(u128::MAX);
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac: u128 = format!("{frac:0<2}").parse().ok()?;
    Some(whole * 100 + frac)
}
