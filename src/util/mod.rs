//! Small building blocks with no protocol in them: money in fen, charsets,
//! the clock, nonces, secrets, JSON strictness and logging.

pub mod charset;
pub mod clock;
pub(crate) mod json;
pub mod key_file;
pub mod logging;
pub mod money;
pub mod nonce;
pub mod secret;
