//! The pure steps of the 2014 APP flow (PROTOCOL.md 1.2 to 1.5), between the
//! two network calls: the order's package fields, the signed prepay request,
//! and the signed parameters the app hands to the WeChat SDK.
//!
//! Every input is explicit (time, nonce), so a test pins every signature.

use crate::api::legacy::merchant::LegacyMerchant;
use crate::api::legacy::package::build_package;
use crate::api::legacy::requests::PrepayBody;
use crate::crypto::sign::{sign_sha1, Fields};
use crate::error::{Error, Result};
use crate::model::{Order, PayParams};
use crate::util::clock::beijing_timestamp;

/// The order's package fields at `now` (PROTOCOL.md 1.2): required fields,
/// `time_start`/`time_expire` in Beijing time, and `attach` when set.
pub fn package_fields(merchant: &LegacyMerchant, order: &Order, now: u64) -> Fields {
    let expire = now + u64::from(order.expire_minutes()) * 60;
    let mut fields = Fields::new();
    let mut put = |k: &str, v: String| {
        fields.insert(k.to_owned(), v);
    };
    put("bank_type", "WX".into());
    put("body", order.body().to_owned());
    put("fee_type", "1".into());
    put("input_charset", merchant.input_charset.as_str().into());
    put("notify_url", merchant.notify_url.clone());
    put("out_trade_no", order.out_trade_no().to_owned());
    put("partner", merchant.partner_id.clone());
    put("spbill_create_ip", order.client_ip().to_string());
    put("total_fee", order.total_fee().to_string());
    put("time_start", beijing_timestamp(now));
    put("time_expire", beijing_timestamp(expire));
    if let Some(attach) = order.attach() {
        put("attach", attach.to_owned());
    }
    fields
}

/// The signed `genprepay` body for `order` at `now` with `noncestr`.
pub fn prepay_body(
    merchant: &LegacyMerchant,
    order: &Order,
    now: u64,
    noncestr: &str,
) -> Result<PrepayBody> {
    // The free-text fields are the ones a charset may fail to hold: name the
    // field before the package builder meets it.
    for (field, text) in [("body", Some(order.body())), ("attach", order.attach())] {
        if let Some(text) = text {
            merchant
                .input_charset
                .encode(text)
                .map_err(|e| Error::order(field, e.to_string()))?;
        }
    }
    let fields = package_fields(merchant, order, now);
    let package = build_package(&fields, &merchant.partner_key, merchant.input_charset)?;
    let mut signed = Fields::new();
    signed.insert("appid".into(), merchant.appid.clone());
    signed.insert("noncestr".into(), noncestr.to_owned());
    signed.insert("package".into(), package.text);
    signed.insert("timestamp".into(), now.to_string());
    signed.insert("traceid".into(), order.traceid().to_owned());
    let app_signature = sign_sha1(&signed, &merchant.app_key)?.into_signature();
    Ok(PrepayBody {
        appid: signed.remove("appid").unwrap_or_default(),
        traceid: signed.remove("traceid").unwrap_or_default(),
        noncestr: signed.remove("noncestr").unwrap_or_default(),
        package: signed.remove("package").unwrap_or_default(),
        timestamp: now,
        app_signature,
        sign_method: "sha1".into(),
    })
}

/// The app's parameters for `prepayid`, signed with the same nonce and time
/// as the prepay request (PROTOCOL.md 1.5).
pub fn pay_params(
    merchant: &LegacyMerchant,
    order: &Order,
    prepayid: &str,
    now: u64,
    noncestr: &str,
) -> Result<PayParams> {
    let mut params = PayParams::unsigned(
        &merchant.appid,
        &merchant.partner_id,
        prepayid,
        order,
        now,
        noncestr,
    );
    params.sign = sign_sha1(&params.signed_fields(), &merchant.app_key)?.into_signature();
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::legacy::package::ParsedPackage;
    use crate::util::money::Fen;
    use sha1::{Digest, Sha1};

    const APP_KEY: &str = "L8LrMqqeGRxST5reouB0K66CaYAWpqhAVsq7ggKkxHCOastWksvuX1uvmvQclxaHoYd3ElNBrNO2DHnnzgfVG9Qs473M3DTOZug5er46FhuGofumV8H2FVR9qkjSlC5K";

    fn config() -> LegacyMerchant {
        crate::Config::from_json(&format!(
            r#"{{"appid":"wxd930ea5d5a258f4f","app_secret":"s","app_key":"{APP_KEY}",
               "partner_id":"1900000109","partner_key":"8934e7d15453e97507ef794cf7b0519d",
               "notify_url":"http://weixin.qq.com"}}"#
        ))
        .and_then(|c| c.legacy_merchant())
        .expect("valid")
    }

    fn order() -> Order {
        Order::new(
            "7240b65810859cbf2a8d9f76a638c0a3",
            Fen::new(1).expect("fen"),
            "支付测试",
            "196.168.1.1",
        )
        .expect("valid")
    }

    fn sha1_hex(text: &str) -> String {
        hex::encode(Sha1::digest(text.as_bytes()))
    }

    #[test]
    fn package_fields_carry_beijing_times() {
        let fields = package_fields(&config(), &order(), 1_399_514_976);
        assert_eq!(fields["time_start"], "20140508100936");
        assert_eq!(fields["time_expire"], "20140508102936");
        assert_eq!(fields["total_fee"], "1");
        assert!(!fields.contains_key("attach"));
    }

    #[test]
    fn prepay_body_is_signed_as_documented() {
        let body = prepay_body(
            &config(),
            &order(),
            1_399_514_976,
            "e7d161ac8d8a76529d39d9f5b4249ccb",
        )
        .expect("signs");
        let parsed = ParsedPackage::parse(&body.package).expect("package parses");
        parsed
            .verify(&config().partner_key)
            .expect("package verifies");
        // The app_signature recomputed by hand from PROTOCOL.md 1.3/1.4.
        let expected = sha1_hex(&format!(
            "appid=wxd930ea5d5a258f4f&appkey={APP_KEY}&noncestr=e7d161ac8d8a76529d39d9f5b4249ccb&package={}&timestamp=1399514976&traceid=7240b65810859cbf2a8d9f76a638c0a3",
            body.package
        ));
        assert_eq!(body.app_signature, expected);
        assert_eq!(body.sign_method, "sha1");
        let json = serde_json::to_string(&body).expect("json");
        assert!(!json.contains("appkey"), "{json}");
        assert!(json.contains(r#""timestamp":1399514976"#), "{json}");
    }

    #[test]
    fn pay_params_are_signed_as_documented() {
        let p = pay_params(
            &config(),
            &order(),
            "1101000000140429eb40476f8896f4c9",
            1_399_514_976,
            "e7d161ac8d8a76529d39d9f5b4249ccb",
        )
        .expect("signs");
        let expected = sha1_hex(&format!(
            "appid=wxd930ea5d5a258f4f&appkey={APP_KEY}&noncestr=e7d161ac8d8a76529d39d9f5b4249ccb&package=Sign=WXPay&partnerid=1900000109&prepayid=1101000000140429eb40476f8896f4c9&timestamp=1399514976"
        ));
        assert_eq!(p.sign, expected);
        assert_eq!(p.package, "Sign=WXPay");
        assert_eq!(p.timestamp, "1399514976");
        assert_eq!(p.total_fee, 1);
    }

    #[test]
    fn gbk_config_rejects_unmappable_body() {
        let mut c = config();
        c.input_charset = crate::util::charset::Charset::Gbk;
        let o = Order::new("A1", Fen::new(1).expect("fen"), "emoji 😀", "1.2.3.4").expect("valid");
        let err = prepay_body(&c, &o, 0, "n").expect_err("unmappable");
        assert!(
            matches!(err, Error::InvalidOrder { ref field, .. } if field == "body"),
            "{err}"
        );
    }
}
