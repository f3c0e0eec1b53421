//! API v3 payment notifications (PROTOCOL.md 5): `Wechatpay-*` headers
//! over a JSON body whose resource is AES-256-GCM sealed; and `aead::decrypt`.
//!
//! The first byte picks a mode; the rest is cut at NUL bytes:
//! - 0, raw: `serial NUL signature NUL timestamp NUL nonce NUL body`, verified
//!   as sent at [`NOW`] (only a seed's genuine signature passes); the same
//!   pieces also go to `aead::decrypt` as key, nonce, associated data and
//!   ciphertext. Never panics.
//! - 1, signed: `nonce NUL body`, signed by the sandbox platform key at
//!   [`NOW`]: the signature check always passes.
//! - 2, sealed: `nonce NUL associated_data NUL transaction`, the transaction
//!   sealed with the API v3 key into the documented envelope and signed: the
//!   signature and the decryption always pass, so the transaction's own
//!   checks run on arbitrary JSON. Sealing then opening gives the plaintext.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxpay::api::notify::NotifyError;
use wxpay::api::v3::auth::SignedHeaders;
use wxpay::api::v3::merchant::V3Merchant;
use wxpay::api::v3::notify::{verify_v3_payment, MAX_JSON_BYTES};
use wxpay::crypto::aead;
use wxpay::crypto::rsa::{MerchantKey, VerifyingKey};
use wxpay::model::PaymentNotification;
use wxpay_fuzz::{
    pieces, platform_public_key, text, v3_merchant, API_V3_KEY, APPID, NOW, PLATFORM_KEY_PEM,
    PUBLIC_KEY_ID, V3_MCHID,
};

struct Keys {
    merchant: V3Merchant,
    platform: MerchantKey,
    public: VerifyingKey,
}

fn keys() -> &'static Keys {
    static KEYS: std::sync::OnceLock<Keys> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| Keys {
        merchant: v3_merchant(),
        platform: MerchantKey::from_pem(PLATFORM_KEY_PEM).expect("the sandbox platform key"),
        public: platform_public_key(),
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let keys = keys();
    let key_for = |serial: &str| (serial == PUBLIC_KEY_ID).then(|| keys.public.clone());
    match mode % 3 {
        0 => {
            let p = pieces(rest, 0, 5);
            let headers = SignedHeaders {
                serial: text(p[0]),
                signature: text(p[1]),
                timestamp: text(p[2]),
                nonce: text(p[3]),
            };
            if let Ok(n) = verify_v3_payment(&headers, p[4], &keys.merchant, NOW, key_for, None) {
                check(&n);
            }
            for key in [p[0], API_V3_KEY.as_bytes()] {
                let _ = aead::decrypt(key, &text(p[1]), &text(p[2]), &text(p[4]));
            }
        }
        1 => {
            let p = pieces(rest, 0, 2);
            let (headers, body) = sign(keys, &text(p[0]), p[1].to_vec());
            match verify_v3_payment(&headers, &body, &keys.merchant, NOW, key_for, None) {
                Ok(n) => check(&n),
                Err(NotifyError::Signature(e)) if body.len() <= MAX_JSON_BYTES => {
                    panic!("a genuinely signed notification was refused: {e:?}")
                }
                Err(_) => {}
            }
        }
        _ => {
            let p = pieces(rest, 0, 3);
            let nonce = match text(p[0]) {
                n if n.len() == 12 => n,
                _ => "0123456789ab".to_owned(),
            };
            let associated_data = text(p[1]);
            let transaction = text(p[2]);
            let ciphertext = aead::encrypt(
                API_V3_KEY.as_bytes(),
                &nonce,
                &associated_data,
                &transaction,
            )
            .expect("a 32-byte key and a 12-byte nonce seal anything");
            assert_eq!(
                aead::decrypt(API_V3_KEY.as_bytes(), &nonce, &associated_data, &ciphertext),
                Ok(transaction.clone())
            );
            let body = serde_json::json!({
                "id": "EV-2018022511223320873",
                "create_time": "2018-06-08T10:34:56+08:00",
                "event_type": "TRANSACTION.SUCCESS",
                "resource_type": "encrypt-resource",
                "summary": "支付成功",
                "resource": {
                    "algorithm": "AEAD_AES_256_GCM",
                    "ciphertext": ciphertext,
                    "nonce": nonce,
                    "associated_data": associated_data,
                    "original_type": "transaction",
                },
            })
            .to_string()
            .into_bytes();
            if body.len() > MAX_JSON_BYTES {
                return;
            }
            let (headers, body) = sign(keys, "n1", body);
            match verify_v3_payment(&headers, &body, &keys.merchant, NOW, key_for, None) {
                Ok(n) => check(&n),
                Err(NotifyError::Json(_))
                    if serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(
                        &transaction,
                    )
                    .is_err() => {}
                Err(NotifyError::WrongMerchant(_) | NotifyError::Field(_)) => {}
                Err(e @ (NotifyError::Signature(_) | NotifyError::Resource(_))) => {
                    panic!("a genuine notification was refused: {e:?}")
                }
                Err(e) => panic!("unexpected refusal: {e:?}\ntransaction: {transaction:?}"),
            }
        }
    }
});

/// `body` signed by the platform key at [`NOW`] with `nonce`.
fn sign(keys: &Keys, nonce: &str, body: Vec<u8>) -> (SignedHeaders, Vec<u8>) {
    let mut message = format!("{NOW}\n{nonce}\n").into_bytes();
    message.extend_from_slice(&body);
    message.push(b'\n');
    let headers = SignedHeaders {
        serial: PUBLIC_KEY_ID.into(),
        signature: keys.platform.sign(&message),
        timestamp: NOW.to_string(),
        nonce: nonce.to_owned(),
    };
    (headers, body)
}

fn check(n: &PaymentNotification) {
    assert!(n.total_fee > 0);
    assert!(!n.out_trade_no.is_empty() && n.out_trade_no.len() <= 64);
    assert!(!n.transaction_id.is_empty() && n.transaction_id.len() <= 64);
    assert_eq!(n.fields.get("mchid").map(String::as_str), Some(V3_MCHID));
    assert_eq!(n.fields.get("appid").map(String::as_str), Some(APPID));
    assert_eq!(
        n.paid,
        n.fields.get("trade_state").map(String::as_str) == Some("SUCCESS")
    );
}
