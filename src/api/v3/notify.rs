//! API v3 notifications: the `Wechatpay-*` headers verified over the raw
//! body, then the `AEAD_AES_256_GCM` resource decrypted and checked.

use crate::api::notify::{reply_message, required, NotifyError};
use crate::api::v3::auth::{verify_signed, SignedHeaders};
use crate::api::v3::merchant::V3Merchant;
use crate::crypto::aead;
use crate::crypto::rsa::VerifyingKey;
use crate::crypto::sign::Fields;
use crate::model::PaymentNotification;
use crate::util::money::Fen;

/// The largest API v3 notification body accepted.
pub const MAX_JSON_BYTES: usize = 64 * 1024;

/// The HTTP status that acknowledges a verified API v3 notification (the
/// body is empty; 200 is accepted too).
pub const SUCCESS_STATUS: u16 = 204;

/// The HTTP status sent with [`v3_failure_reply`]: WeChat Pay sends the
/// notification again.
pub const FAILURE_STATUS: u16 = 500;

/// The failure answer of an API v3 notification (sent with a 4xx/5xx status,
/// [`FAILURE_STATUS`]; WeChat will send it again). Success is an empty 200 or
/// 204 ([`SUCCESS_STATUS`]).
pub fn v3_failure_reply(message: &str) -> String {
    serde_json::json!({ "code": "FAIL", "message": reply_message(message) }).to_string()
}

/// Verifies an API v3 payment notification: the `Wechatpay-*` headers'
/// signature over the raw body (with the key `key_for` gives for the
/// serial, at `now`), then the `AEAD_AES_256_GCM` resource decrypted with
/// the API v3 key, then the merchant's ids and the expected amount.
pub fn verify_v3_payment(
    headers: &SignedHeaders,
    body: &[u8],
    merchant: &V3Merchant,
    now: u64,
    key_for: impl Fn(&str) -> Option<VerifyingKey>,
    expected_total_fee: Option<Fen>,
) -> Result<PaymentNotification, NotifyError> {
    if body.len() > MAX_JSON_BYTES {
        return Err(NotifyError::Json(format!(
            "body larger than {MAX_JSON_BYTES} bytes"
        )));
    }
    verify_signed(headers, body, now, key_for)?;
    let envelope: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| NotifyError::Json(e.to_string()))?;
    let resource = envelope
        .get("resource")
        .ok_or_else(|| NotifyError::Json("no resource".into()))?;
    let field = |k: &str| {
        resource
            .get(k)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
    };
    if field("algorithm") != "AEAD_AES_256_GCM" {
        return Err(NotifyError::Json(
            "resource algorithm is not AEAD_AES_256_GCM".into(),
        ));
    }
    let plain = aead::decrypt(
        merchant.api_v3_key.expose().as_bytes(),
        field("nonce"),
        field("associated_data"),
        field("ciphertext"),
    )?;
    let transaction: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&plain).map_err(|e| NotifyError::Json(e.to_string()))?;
    let text = |k: &str| {
        transaction
            .get(k)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    if text("mchid").as_deref() != Some(merchant.mchid.as_str()) {
        return Err(NotifyError::WrongMerchant("mchid"));
    }
    if text("appid").as_deref() != Some(merchant.appid.as_str()) {
        return Err(NotifyError::WrongMerchant("appid"));
    }
    let total = transaction
        .get("amount")
        .and_then(|a| a.get("total"))
        .and_then(serde_json::Value::as_u64)
        .and_then(|t| i64::try_from(t).ok())
        .and_then(|t| Fen::new(t).ok())
        .ok_or(NotifyError::Field("amount.total"))?;
    if let Some(expected) = expected_total_fee {
        if expected != total {
            return Err(NotifyError::WrongAmount {
                expected: expected.get(),
                got: total.get(),
            });
        }
    }
    let fields: Fields = transaction
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
        .collect();
    Ok(PaymentNotification {
        paid: text("trade_state").as_deref() == Some("SUCCESS"),
        out_trade_no: required(&fields, "out_trade_no")?,
        transaction_id: required(&fields, "transaction_id")?,
        total_fee: total.get(),
        time_end: text("success_time"),
        attach: text("attach").filter(|a| !a.is_empty()),
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::v3::auth::SignatureError;
    use crate::api::v3::merchant::V3Verification;
    use crate::crypto::aead::AeadError;
    use crate::crypto::rsa::MerchantKey;
    use crate::util::secret::Secret;
    use std::sync::Arc;

    const PLATFORM_KEY: &str = include_str!("../../sandbox/keys/platform_key.pem");
    const PLATFORM_PUBLIC: &str = include_str!("../../sandbox/keys/platform_public_key.pem");
    const API_V3_KEY: &str = "0123456789abcdef0123456789abcdef";

    fn merchant() -> V3Merchant {
        V3Merchant {
            appid: "wxd930ea5d5a258f4f".into(),
            mchid: "1900000109".into(),
            serial_no: "S".into(),
            key: Arc::new(
                MerchantKey::from_pem(include_str!("../../sandbox/keys/merchant_key.pem"))
                    .expect("key"),
            ),
            api_v3_key: Secret::new(API_V3_KEY),
            notify_url: "https://example.com/n".into(),
            refund_notify_url: None,
            verification: V3Verification::Certificates { refresh_secs: 60 },
            unknown_serial_interval_secs: 60,
        }
    }

    /// A notification whose resource is `transaction`, sealed, then
    /// `tamper`ed, then signed by the platform key at `now`.
    fn notification(transaction: &str, tamper: bool, now: u64) -> (SignedHeaders, Vec<u8>) {
        let mut ciphertext = aead::encrypt(
            API_V3_KEY.as_bytes(),
            "0123456789ab",
            "transaction",
            transaction,
        )
        .expect("seals");
        if tamper {
            let flipped = if ciphertext.starts_with('A') {
                "B"
            } else {
                "A"
            };
            ciphertext.replace_range(0..1, flipped);
        }
        let body = serde_json::json!({
            "id": "EV-2018022511223320873",
            "event_type": "TRANSACTION.SUCCESS",
            "resource_type": "encrypt-resource",
            "resource": {"algorithm": "AEAD_AES_256_GCM", "ciphertext": ciphertext,
                         "nonce": "0123456789ab", "associated_data": "transaction",
                         "original_type": "transaction"},
        })
        .to_string();
        let signature = MerchantKey::from_pem(PLATFORM_KEY)
            .expect("key")
            .sign(format!("{now}\nn1\n{body}\n").as_bytes());
        let headers = SignedHeaders {
            serial: "PUB_KEY_ID_1".into(),
            signature,
            timestamp: now.to_string(),
            nonce: "n1".into(),
        };
        (headers, body.into_bytes())
    }

    fn key(serial: &str) -> Option<VerifyingKey> {
        (serial == "PUB_KEY_ID_1")
            .then(|| VerifyingKey::from_public_key_pem(PLATFORM_PUBLIC).expect("key"))
    }

    const PAID: &str = r#"{"mchid":"1900000109","appid":"wxd930ea5d5a258f4f","out_trade_no":"A1","transaction_id":"42","trade_state":"SUCCESS","success_time":"2018-06-08T10:34:56+08:00","amount":{"total":29,"payer_total":29,"currency":"CNY"}}"#;

    #[test]
    fn a_genuine_notification_decrypts_to_a_typed_transaction() {
        let (headers, body) = notification(PAID, false, 1_700_000_000);
        let n = verify_v3_payment(
            &headers,
            &body,
            &merchant(),
            1_700_000_000,
            key,
            Fen::new(29).ok(),
        )
        .expect("verifies");
        assert!(n.paid);
        assert_eq!(n.total_fee, 29);
        assert_eq!(n.out_trade_no, "A1");
        assert_eq!(n.time_end.as_deref(), Some("2018-06-08T10:34:56+08:00"));
    }

    #[test]
    fn a_tampered_ciphertext_fails_even_when_signed() {
        let (headers, body) = notification(PAID, true, 1_700_000_000);
        assert_eq!(
            verify_v3_payment(&headers, &body, &merchant(), 1_700_000_000, key, None),
            Err(NotifyError::Resource(AeadError::Tag))
        );
    }

    #[test]
    fn signature_time_merchant_and_amount_are_checked() {
        let (headers, body) = notification(PAID, false, 1_700_000_000);
        let mut changed = body.clone();
        changed.push(b' ');
        assert_eq!(
            verify_v3_payment(&headers, &changed, &merchant(), 1_700_000_000, key, None),
            Err(NotifyError::Signature(SignatureError::Bad))
        );
        assert_eq!(
            verify_v3_payment(&headers, &body, &merchant(), 1_700_000_300, key, None),
            Err(NotifyError::Signature(SignatureError::Stale))
        );
        assert_eq!(
            verify_v3_payment(
                &headers,
                &body,
                &merchant(),
                1_700_000_000,
                key,
                Fen::new(30).ok()
            ),
            Err(NotifyError::WrongAmount {
                expected: 30,
                got: 29
            })
        );
        let other = PAID.replace("1900000109", "1900000110");
        let (headers, body) = notification(&other, false, 1_700_000_000);
        assert_eq!(
            verify_v3_payment(&headers, &body, &merchant(), 1_700_000_000, key, None),
            Err(NotifyError::WrongMerchant("mchid"))
        );
    }
}
