//! A merchant of the 2014 APP flow, as the client and the notification
//! verifier use it: the configuration checked, every key present and typed.
//! Its `Debug` redacts every secret.

use std::fmt;

use crate::util::charset::Charset;
use crate::util::secret::Secret;

/// A merchant of the 2014 APP flow.
#[derive(Clone)]
pub struct LegacyMerchant {
    /// The app id.
    pub appid: String,
    /// The app secret (for the access_token).
    pub app_secret: Secret,
    /// The paySignKey of the SHA1 signatures.
    pub app_key: Secret,
    /// The partner (merchant) id.
    pub partner_id: String,
    /// The key of the package and notification MD5.
    pub partner_key: Secret,
    /// Where payment results are posted.
    pub notify_url: String,
    /// The charset of the package.
    pub input_charset: Charset,
}

impl fmt::Debug for LegacyMerchant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LegacyMerchant")
            .field("appid", &self.appid)
            .field("partner_id", &self.partner_id)
            .field("notify_url", &self.notify_url)
            .field("input_charset", &self.input_charset)
            .finish_non_exhaustive()
    }
}
