//! What the app hands to the WeChat SDK, as every generation returns it.

use serde::{Deserialize, Serialize};

use super::order::Order;
use crate::crypto::sign::Fields;

/// The `package` value the app SDK expects in the final parameters.
pub const APP_PACKAGE: &str = "Sign=WXPay";

/// What the app hands to the WeChat SDK (`PayReq`), plus the order's number
/// and amount for the server's records. Every API generation returns this
/// shape; only `sign` differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct PayParams {
    /// The app id.
    pub appid: String,
    /// The merchant number (2014 `partner_id`, API v2 `mch_id`, API v3
    /// `mchid`).
    pub partnerid: String,
    /// The prepay id from the gateway.
    pub prepayid: String,
    /// Always `Sign=WXPay` (Android's SDK calls it `packageValue`; iOS
    /// `package`).
    pub package: String,
    /// The nonce the signature covers.
    pub noncestr: String,
    /// Unix seconds, as a string of 10 digits.
    pub timestamp: String,
    /// The signature, by generation. 2014 flow: SHA1 over `appid, appkey,
    /// noncestr, package, partnerid, prepayid, timestamp`, 40 lower-case hex
    /// digits. API v2: the merchant's `sign_type` over `appid, noncestr,
    /// package, partnerid, prepayid, timestamp` keyed with the API key: MD5
    /// (32 upper-case hex digits) or HMAC-SHA256 (64). API v3: SHA256 with
    /// RSA over `appid\ntimestamp\nnoncestr\nprepayid\n` with the
    /// merchant's private key, in base64 (344 characters for a 2048-bit key).
    pub sign: String,
    /// The merchant's trade number (not sent to the SDK).
    pub out_trade_no: String,
    /// The amount in fen (not sent to the SDK).
    pub total_fee: u32,
}

impl PayParams {
    /// The parameters for `prepayid` with an empty `sign`, for the API
    /// generation's signature to fill in.
    pub(crate) fn unsigned(
        appid: &str,
        partnerid: &str,
        prepayid: &str,
        order: &Order,
        now: u64,
        noncestr: &str,
    ) -> PayParams {
        PayParams {
            appid: appid.to_owned(),
            partnerid: partnerid.to_owned(),
            prepayid: prepayid.to_owned(),
            package: APP_PACKAGE.to_owned(),
            noncestr: noncestr.to_owned(),
            timestamp: now.to_string(),
            sign: String::new(),
            out_trade_no: order.out_trade_no().to_owned(),
            total_fee: order.total_fee().get(),
        }
    }

    /// The fields the 2014 and API v2 signatures cover, by their protocol
    /// names: `appid, noncestr, package, partnerid, prepayid, timestamp`.
    pub(crate) fn signed_fields(&self) -> Fields {
        [
            ("appid", &self.appid),
            ("noncestr", &self.noncestr),
            ("package", &self.package),
            ("partnerid", &self.partnerid),
            ("prepayid", &self.prepayid),
            ("timestamp", &self.timestamp),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect()
    }
}
