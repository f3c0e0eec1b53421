//! API v2 notifications: signed XML payment results, and refund results
//! whose `req_info` is sealed with the API key.

use crate::api::notify::{check_id, fen_field, payment, reply_message, required, NotifyError};
use crate::api::v2::merchant::V2Merchant;
use crate::api::v2::{req_info, xml};
use crate::crypto::sign::{sign_v2, signatures_match};
use crate::model::{PaymentNotification, RefundNotification};
use crate::util::money::Fen;

/// The reply that stops WeChat from repeating an API v2 notification.
pub const V2_SUCCESS_REPLY: &str =
    "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>";

/// An API v2 failure reply (WeChat will send the notification again).
pub fn v2_failure_reply(message: &str) -> String {
    xml::write([
        ("return_code", "FAIL"),
        ("return_msg", &reply_message(message)),
    ])
}

/// Verifies an API v2 payment notification (the XML POST body).
pub fn verify_v2_payment(
    body: &[u8],
    merchant: &V2Merchant,
    expected_total_fee: Option<Fen>,
) -> Result<PaymentNotification, NotifyError> {
    let fields = xml::parse(body)?;
    if fields.get("return_code").map(String::as_str) != Some("SUCCESS") {
        return Err(NotifyError::NotSuccess);
    }
    let sign = fields.get("sign").ok_or(NotifyError::Unsigned)?;
    // The merchant's algorithm, whatever `sign_type` the message claims.
    let expected = sign_v2(&fields, &merchant.api_key, merchant.sign_type);
    if !signatures_match(expected.signature(), sign) {
        return Err(NotifyError::BadSignature);
    }
    check_id(&fields, "appid", &merchant.appid)?;
    check_id(&fields, "mch_id", &merchant.mch_id)?;
    let paid = fields.get("result_code").map(String::as_str) == Some("SUCCESS");
    payment(fields, paid, expected_total_fee)
}

/// Decrypts and checks an API v2 refund notification. Refund notifications
/// carry no `sign`: the `req_info` decrypting under the API key is what
/// authenticates them.
pub fn verify_v2_refund(
    body: &[u8],
    merchant: &V2Merchant,
    expected_refund_fee: Option<Fen>,
) -> Result<RefundNotification, NotifyError> {
    let outer = xml::parse(body)?;
    if outer.get("return_code").map(String::as_str) != Some("SUCCESS") {
        return Err(NotifyError::NotSuccess);
    }
    check_id(&outer, "appid", &merchant.appid)?;
    check_id(&outer, "mch_id", &merchant.mch_id)?;
    let sealed = outer
        .get("req_info")
        .ok_or(NotifyError::Field("req_info"))?;
    let plain = req_info::decrypt(sealed, &merchant.api_key)?;
    let fields = xml::parse_with_root(plain.as_bytes(), "root")?;
    let refund_fee = fen_field(&fields, "refund_fee")?;
    if let Some(expected) = expected_refund_fee {
        if expected.get() != refund_fee {
            return Err(NotifyError::WrongAmount {
                expected: expected.get(),
                got: refund_fee,
            });
        }
    }
    Ok(RefundNotification {
        out_trade_no: required(&fields, "out_trade_no")?,
        out_refund_no: required(&fields, "out_refund_no")?,
        refund_id: required(&fields, "refund_id")?,
        total_fee: fen_field(&fields, "total_fee")?,
        refund_fee,
        refund_status: required(&fields, "refund_status")?,
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::notify::SeenNotifications;
    use crate::api::v2::req_info::ReqInfoError;
    use crate::api::v2::xml::XmlError;
    use crate::crypto::sign::{Fields, SignType};
    use crate::test_vectors::v2_merchant as v2;
    use crate::util::secret::Secret;

    fn payment_fields() -> Vec<(&'static str, String)> {
        vec![
            ("appid", "wxd930ea5d5a258f4f".into()),
            ("bank_type", "CFT".into()),
            ("cash_fee", "29".into()),
            ("fee_type", "CNY".into()),
            ("is_subscribe", "N".into()),
            ("mch_id", "10000100".into()),
            ("nonce_str", "5d2b6c2a8db53831f7eda20af46e531c".into()),
            ("openid", "oUpF8uMEb4qRXf22hE3X68TekukE".into()),
            ("out_trade_no", "A1001".into()),
            ("result_code", "SUCCESS".into()),
            ("return_code", "SUCCESS".into()),
            ("time_end", "20140903131540".into()),
            ("total_fee", "29".into()),
            ("trade_type", "APP".into()),
            ("transaction_id", "1004400740201409030005092168".into()),
        ]
    }

    /// A notification body signed with `sign_type`, after `edit`.
    fn signed_body(
        sign_type: SignType,
        edit: impl FnOnce(&mut Vec<(&'static str, String)>),
    ) -> String {
        let mut list = payment_fields();
        edit(&mut list);
        let fields: Fields = list
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let sign = sign_v2(&fields, &v2(sign_type).api_key, sign_type).into_signature();
        list.push(("sign", sign));
        xml::write(list.iter().map(|(k, v)| (*k, v.as_str())))
    }

    #[test]
    fn a_genuine_v2_notification_verifies() {
        for sign_type in [SignType::Md5, SignType::HmacSha256] {
            let body = signed_body(sign_type, |_| {});
            let n = verify_v2_payment(body.as_bytes(), &v2(sign_type), Fen::new(29).ok())
                .expect("verifies");
            assert!(n.paid);
            assert_eq!(n.out_trade_no, "A1001");
            assert_eq!(n.total_fee, 29);
            assert_eq!(n.time_end.as_deref(), Some("20140903131540"));
        }
    }

    #[test]
    fn a_forged_sign_type_does_not_choose_the_algorithm() {
        // Signed with MD5 and claiming MD5, sent to an HMAC-SHA256 merchant.
        let body = signed_body(SignType::Md5, |f| f.push(("sign_type", "MD5".into())));
        assert_eq!(
            verify_v2_payment(body.as_bytes(), &v2(SignType::HmacSha256), None),
            Err(NotifyError::BadSignature)
        );
        // The same message verifies for the MD5 merchant it was made for.
        assert!(verify_v2_payment(body.as_bytes(), &v2(SignType::Md5), None).is_ok());
    }

    #[test]
    fn a_duplicated_total_fee_is_refused_before_any_signature_check() {
        let body = signed_body(SignType::Md5, |_| {});
        let forged = body.replace(
            "<total_fee>",
            "<total_fee><![CDATA[1]]></total_fee><total_fee>",
        );
        assert_eq!(
            verify_v2_payment(forged.as_bytes(), &v2(SignType::Md5), None),
            Err(NotifyError::Xml(XmlError::Duplicate("total_fee".into())))
        );
        let two_signs = body.replace("<sign>", "<sign><![CDATA[X]]></sign><sign>");
        assert!(matches!(
            verify_v2_payment(two_signs.as_bytes(), &v2(SignType::Md5), None),
            Err(NotifyError::Xml(XmlError::Duplicate(_)))
        ));
    }

    #[test]
    fn xxe_and_billion_laughs_are_refused() {
        let xxe = format!(
            "<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>{}",
            signed_body(SignType::Md5, |f| f.push(("attach", "&xxe;".into())))
        );
        assert_eq!(
            verify_v2_payment(xxe.as_bytes(), &v2(SignType::Md5), None),
            Err(NotifyError::Xml(XmlError::DocType))
        );
        let laughs = "<!DOCTYPE xml [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]><xml><attach>&c;</attach></xml>";
        assert_eq!(
            verify_v2_payment(laughs.as_bytes(), &v2(SignType::Md5), None),
            Err(NotifyError::Xml(XmlError::DocType))
        );
    }

    #[test]
    fn a_wrong_amount_or_merchant_is_refused() {
        let body = signed_body(SignType::Md5, |_| {});
        assert_eq!(
            verify_v2_payment(body.as_bytes(), &v2(SignType::Md5), Fen::new(2900).ok()),
            Err(NotifyError::WrongAmount {
                expected: 2900,
                got: 29
            })
        );
        let other = signed_body(SignType::Md5, |f| {
            f.retain(|(k, _)| *k != "mch_id");
            f.push(("mch_id", "10000101".into()));
        });
        assert_eq!(
            verify_v2_payment(other.as_bytes(), &v2(SignType::Md5), None),
            Err(NotifyError::WrongMerchant("mch_id"))
        );
        // Changing a signed value breaks the signature.
        let tampered = body.replace("<![CDATA[29]]></total_fee>", "<![CDATA[1]]></total_fee>");
        assert_eq!(
            verify_v2_payment(tampered.as_bytes(), &v2(SignType::Md5), None),
            Err(NotifyError::BadSignature)
        );
    }

    #[test]
    fn a_replayed_notification_verifies_again_but_is_seen_once() {
        let body = signed_body(SignType::HmacSha256, |_| {});
        let seen = SeenNotifications::new(16);
        let first = verify_v2_payment(
            body.as_bytes(),
            &v2(SignType::HmacSha256),
            Fen::new(29).ok(),
        )
        .expect("ok");
        let again = verify_v2_payment(
            body.as_bytes(),
            &v2(SignType::HmacSha256),
            Fen::new(29).ok(),
        )
        .expect("ok");
        assert_eq!(first, again);
        assert!(seen.first_delivery(&first));
        assert!(!seen.first_delivery(&again));
    }

    #[test]
    fn refund_notifications_decrypt_and_check() {
        let merchant = v2(SignType::Md5);
        let inner = xml::write([
            ("out_refund_no", "R1"),
            ("out_trade_no", "A1001"),
            ("refund_fee", "29"),
            ("refund_id", "50000408942018111907145868882"),
            ("refund_status", "SUCCESS"),
            ("total_fee", "29"),
            ("transaction_id", "1004400740201409030005092168"),
        ])
        .replace("<xml>", "<root>")
        .replace("</xml>", "</root>");
        let body = |mch_id: &str, key: &Secret| {
            xml::write([
                ("return_code", "SUCCESS"),
                ("appid", "wxd930ea5d5a258f4f"),
                ("mch_id", mch_id),
                ("nonce_str", "n"),
                ("req_info", &req_info::encrypt(&inner, key)),
            ])
        };
        let ok = verify_v2_refund(
            body("10000100", &merchant.api_key).as_bytes(),
            &merchant,
            Fen::new(29).ok(),
        )
        .expect("decrypts");
        assert_eq!(ok.out_refund_no, "R1");
        assert_eq!(ok.refund_fee, 29);
        assert_eq!(ok.refund_status, "SUCCESS");
        assert_eq!(
            verify_v2_refund(
                body("10000100", &Secret::new("forger")).as_bytes(),
                &merchant,
                None
            ),
            Err(NotifyError::ReqInfo(ReqInfoError::Decrypt))
        );
        assert_eq!(
            verify_v2_refund(
                body("10000101", &merchant.api_key).as_bytes(),
                &merchant,
                None
            ),
            Err(NotifyError::WrongMerchant("mch_id"))
        );
        assert_eq!(
            verify_v2_refund(
                body("10000100", &merchant.api_key).as_bytes(),
                &merchant,
                Fen::new(1).ok()
            ),
            Err(NotifyError::WrongAmount {
                expected: 1,
                got: 29
            })
        );
    }

    #[test]
    fn replies() {
        assert_eq!(
            xml::parse(V2_SUCCESS_REPLY.as_bytes()).expect("parses")["return_code"],
            "SUCCESS"
        );
        let fail = v2_failure_reply("bad sign");
        let parsed = xml::parse(fail.as_bytes()).expect("parses");
        assert_eq!(parsed["return_code"], "FAIL");
        assert_eq!(parsed["return_msg"], "bad sign");
    }
}
