//! 2014 payment notifications: the query string WeChat calls `notify_url`
//! with, MD5-signed with the partner key in the message's `input_charset`.

use percent_encoding::percent_decode;

use crate::api::legacy::merchant::LegacyMerchant;
use crate::api::notify::{check_id, payment, NotifyError};
use crate::crypto::sign::{sign_package, signatures_match, Fields};
use crate::model::PaymentNotification;
use crate::util::charset::Charset;
use crate::util::money::Fen;

/// The reply that stops WeChat from repeating a 2014 notification.
pub const LEGACY_SUCCESS_REPLY: &str = "success";

/// The largest 2014 notification query string accepted.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;

/// Verifies a 2014 payment notification: the query string WeChat calls
/// `notify_url` with, MD5-signed with the partner key in its `input_charset`.
pub fn verify_legacy_payment(
    query: &str,
    merchant: &LegacyMerchant,
    expected_total_fee: Option<Fen>,
) -> Result<PaymentNotification, NotifyError> {
    let fields = parse_query(query)?;
    let sign = fields.get("sign").ok_or(NotifyError::Unsigned)?;
    let charset = charset_of(&fields)?;
    let expected = sign_package(&fields, &merchant.partner_key, charset)
        .map_err(|_| NotifyError::BadSignature)?;
    if !signatures_match(expected.signature(), sign) {
        return Err(NotifyError::BadSignature);
    }
    check_id(&fields, "partner", &merchant.partner_id)?;
    let paid = fields.get("trade_state").map(String::as_str) == Some("0");
    payment(fields, paid, expected_total_fee)
}

fn charset_of(fields: &Fields) -> Result<Charset, NotifyError> {
    match fields.get("input_charset") {
        None => Ok(Charset::Utf8),
        Some(name) => Charset::from_name(name).ok_or(NotifyError::Field("input_charset")),
    }
}

/// Splits a 2014 notification query string; `+` is a space, every key once,
/// values decoded in the charset the `input_charset` field names.
fn parse_query(query: &str) -> Result<Fields, NotifyError> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(NotifyError::Query(format!(
            "longer than {MAX_QUERY_BYTES} bytes"
        )));
    }
    let query = query.strip_prefix('?').unwrap_or(query);
    let mut raw: Vec<(String, Vec<u8>)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode =
            |s: &str| -> Vec<u8> { percent_decode(s.replace('+', " ").as_bytes()).collect() };
        let key = String::from_utf8(decode(k))
            .map_err(|_| NotifyError::Query("a key is not UTF-8".into()))?;
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(NotifyError::Query("a key is not a field name".into()));
        }
        if raw.iter().any(|(seen, _)| *seen == key) {
            return Err(NotifyError::Query(format!("duplicated key {key}")));
        }
        raw.push((key, decode(v)));
    }
    let charset = match raw.iter().find(|(k, _)| k == "input_charset") {
        None => Charset::Utf8,
        Some((_, v)) => std::str::from_utf8(v)
            .ok()
            .and_then(Charset::from_name)
            .ok_or(NotifyError::Field("input_charset"))?,
    };
    raw.into_iter()
        .map(|(k, v)| {
            let value = charset
                .decode(&v)
                .ok_or_else(|| NotifyError::Query(format!("{k} is not valid {charset}")))?;
            Ok((k, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::legacy::package::percent_encode;
    use crate::util::secret::Secret;

    fn legacy() -> LegacyMerchant {
        LegacyMerchant {
            appid: "wxd930ea5d5a258f4f".into(),
            app_secret: Secret::new("s"),
            app_key: Secret::new("k"),
            partner_id: "1900000109".into(),
            partner_key: Secret::new("8934e7d15453e97507ef794cf7b0519d"),
            notify_url: "https://example.com/notify".into(),
            input_charset: Charset::Utf8,
        }
    }

    fn legacy_query(charset: Charset, total_fee: &str) -> String {
        let mut fields: Fields = [
            ("attach", "支付测试"),
            ("bank_type", "0"),
            ("fee_type", "1"),
            ("input_charset", charset.as_str()),
            ("notify_id", "KeKmCz0tPAGwfJRsYPHrVg"),
            ("out_trade_no", "A1001"),
            ("partner", "1900000109"),
            ("sign_type", "MD5"),
            ("time_end", "20140508100936"),
            ("total_fee", total_fee),
            ("trade_mode", "1"),
            ("trade_state", "0"),
            ("transaction_id", "1900000109201405083199982386"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let sign = sign_package(&fields, &legacy().partner_key, charset)
            .expect("signs")
            .into_signature();
        fields.insert("sign".into(), sign);
        fields
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    percent_encode(&charset.encode(v).expect("encodes"))
                )
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    #[test]
    fn legacy_notifications_verify_in_either_charset() {
        for charset in [Charset::Utf8, Charset::Gbk] {
            let query = legacy_query(charset, "1999");
            let n =
                verify_legacy_payment(&query, &legacy(), Fen::new(1999).ok()).expect("verifies");
            assert!(n.paid);
            assert_eq!(n.attach.as_deref(), Some("支付测试"));
            assert_eq!(n.total_fee, 1999);
        }
    }

    #[test]
    fn legacy_notifications_refuse_tampering_duplicates_and_wrong_amounts() {
        let query = legacy_query(Charset::Utf8, "1999");
        assert_eq!(
            verify_legacy_payment(
                &query.replace("total_fee=1999", "total_fee=1"),
                &legacy(),
                None
            ),
            Err(NotifyError::BadSignature)
        );
        assert!(matches!(
            verify_legacy_payment(&format!("{query}&total_fee=1"), &legacy(), None),
            Err(NotifyError::Query(_))
        ));
        assert_eq!(
            verify_legacy_payment(&query, &legacy(), Fen::new(1).ok()),
            Err(NotifyError::WrongAmount {
                expected: 1,
                got: 1999
            })
        );
        let unsigned: String = query
            .split('&')
            .filter(|p| !p.starts_with("sign="))
            .collect::<Vec<_>>()
            .join("&");
        assert_eq!(
            verify_legacy_payment(&unsigned, &legacy(), None),
            Err(NotifyError::Unsigned)
        );
        let zero = legacy_query(Charset::Utf8, "0");
        assert_eq!(
            verify_legacy_payment(&zero, &legacy(), None),
            Err(NotifyError::Field("total_fee"))
        );
    }
}
