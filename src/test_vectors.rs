//! Public test vectors and fixtures the unit tests of several modules share
//! (compiled for tests only).

use crate::api::v2::merchant::V2Merchant;
use crate::crypto::sign::{Fields, SignType};
use crate::util::secret::Secret;

/// The official 2014 package example's fields (PROTOCOL.md 1.2), signed with
/// the partner key `8934e7d15453e97507ef794cf7b0519d`.
pub fn public_package_fields() -> Fields {
    [
        ("bank_type", "WX"),
        ("body", "支付测试"),
        ("fee_type", "1"),
        ("input_charset", "UTF-8"),
        ("notify_url", "http://weixin.qq.com"),
        ("out_trade_no", "7240b65810859cbf2a8d9f76a638c0a3"),
        ("partner", "1900000109"),
        ("spbill_create_ip", "196.168.1.1"),
        ("total_fee", "1"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

/// The API v2 merchant of WeChat's documentation examples.
pub fn v2_merchant(sign_type: SignType) -> V2Merchant {
    V2Merchant {
        appid: "wxd930ea5d5a258f4f".into(),
        mch_id: "10000100".into(),
        api_key: Secret::new("192006250b4c09247ec02edce69f6a2d"),
        sign_type,
        notify_url: "https://example.com/notify".into(),
        refund_notify_url: None,
    }
}
