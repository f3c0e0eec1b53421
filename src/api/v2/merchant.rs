//! A merchant of API v2 (XML), as the client and the notification verifiers
//! use it: the configuration checked, every key present and typed. Its
//! `Debug` redacts every secret.

use std::fmt;

use crate::crypto::sign::SignType;
use crate::util::secret::Secret;

/// A merchant of API v2 (XML).
#[derive(Clone)]
pub struct V2Merchant {
    /// The app id.
    pub appid: String,
    /// The merchant id (`mch_id`).
    pub mch_id: String,
    /// The API key of every signature (and, hashed, of refund notifications).
    pub api_key: Secret,
    /// The signature algorithm the merchant chose.
    pub sign_type: SignType,
    /// Where payment and refund results are posted.
    pub notify_url: String,
    /// Where refund results are posted, when the configuration names it.
    pub refund_notify_url: Option<String>,
}

impl fmt::Debug for V2Merchant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("V2Merchant")
            .field("appid", &self.appid)
            .field("mch_id", &self.mch_id)
            .field("sign_type", &self.sign_type)
            .field("notify_url", &self.notify_url)
            .field("refund_notify_url", &self.refund_notify_url)
            .finish_non_exhaustive()
    }
}
