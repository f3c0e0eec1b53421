//! The 2014 APP flow (PROTOCOL.md 1): the access_token and where it is kept,
//! the MD5-signed order `package`, the `genprepay` request, the SHA1-signed
//! app parameters, and payment notifications.

pub mod flow;
pub mod merchant;
pub mod notify;
pub mod package;
pub mod requests;
pub mod token;
#[cfg(feature = "redis")]
pub mod token_redis;
