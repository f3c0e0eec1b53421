//! A standard-error logger for hosts that cannot install a Rust logger.
//!
//! libwxpay logs through the [`log`] facade. A Rust program sees those
//! records by installing a logger of its choice; a C, Python, Kotlin or Swift
//! host, or the `wxpay` command line, has no such hook. For them, setting the
//! environment variable [`ENV_VAR`] (`WXPAY_LOG`) to `error`, `warn`, `info`,
//! `debug` or `trace` makes [`init_from_env`] install this logger, which
//! writes one line per record to standard error:
//!
//! ```text
//! wxpay[TRACE] wxpay::token: access_token cache hit (due for refresh in 6899 s)
//! ```
//!
//! `off`, an unset variable and any other value install nothing. The logger
//! is installed at most once per process, and never over a logger the host
//! installed first. The C ABI's `wxpay_client_new`, the uniffi client
//! constructor, the command line and `Sandbox::start` call [`init_from_env`].
//!
//! Nothing libwxpay logs contains a key, an app secret, a private key, an
//! access_token, a signature or its input, a query string, a request body or
//! request headers, at any level.

use std::io::Write;
use std::sync::OnceLock;

use log::{LevelFilter, Log, Metadata, Record};

/// The environment variable read by [`init_from_env`]: `error`, `warn`,
/// `info`, `debug`, `trace` or `off` (any case).
pub const ENV_VAR: &str = "WXPAY_LOG";

/// Installs the standard-error logger at the level [`ENV_VAR`] names, unless
/// it is unset, `off` or unknown, or another logger is installed already.
///
/// The variable is read at the first call only; later calls cost one atomic
/// load, so call it from wherever a host may enter the library.
pub fn init_from_env() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        if let Some(level) = std::env::var(ENV_VAR).ok().as_deref().and_then(parse_level) {
            install(level);
        }
    });
}

/// The level a [`ENV_VAR`] value names; `None` for `off` and unknown values.
fn parse_level(value: &str) -> Option<LevelFilter> {
    let level = match value.trim().to_ascii_lowercase().as_str() {
        "error" => LevelFilter::Error,
        "warn" => LevelFilter::Warn,
        "info" => LevelFilter::Info,
        "debug" => LevelFilter::Debug,
        "trace" => LevelFilter::Trace,
        _ => return None,
    };
    Some(level)
}

/// Installs the logger at `level`; false when a logger was installed before
/// (the host's choice stands, and the maximum level stays as it set it).
fn install(level: LevelFilter) -> bool {
    static LOGGER: OnceLock<StderrLogger> = OnceLock::new();
    let logger = LOGGER.get_or_init(|| StderrLogger { level });
    if log::set_logger(logger).is_err() {
        return false;
    }
    log::set_max_level(level);
    true
}

/// Writes every record at or above its level to standard error, one line each.
struct StderrLogger {
    level: LevelFilter,
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // One write per line, so lines of concurrent threads do not mix. A
        // failed write (a closed stderr) is ignored: logging never fails a call.
        let _ = std::io::stderr().lock().write_all(line(record).as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// `wxpay[LEVEL] target: message\n`, always one line: control characters in
/// the message (a gateway's text may hold any) are escaped.
fn line(record: &Record<'_>) -> String {
    let message = record.args().to_string();
    let mut text = format!("wxpay[{}] {}: ", record.level(), record.target());
    for c in message.chars() {
        if c.is_control() {
            text.extend(c.escape_default());
        } else {
            text.push(c);
        }
    }
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_in_any_case_and_unknown_ones_are_ignored() {
        assert_eq!(parse_level("trace"), Some(LevelFilter::Trace));
        assert_eq!(parse_level(" DEBUG "), Some(LevelFilter::Debug));
        assert_eq!(parse_level("Info"), Some(LevelFilter::Info));
        assert_eq!(parse_level("warn"), Some(LevelFilter::Warn));
        assert_eq!(parse_level("error"), Some(LevelFilter::Error));
        for value in ["off", "", "verbose", "wxpay=trace", "5"] {
            assert_eq!(parse_level(value), None, "{value:?}");
        }
    }

    #[test]
    fn a_line_names_the_level_and_target_and_stays_one_line() {
        let text = line(
            &Record::builder()
                .level(log::Level::Trace)
                .target("wxpay::client")
                .args(format_args!("access_token cache hit"))
                .build(),
        );
        assert_eq!(text, "wxpay[TRACE] wxpay::client: access_token cache hit\n");
        let text = line(
            &Record::builder()
                .level(log::Level::Debug)
                .target("wxpay")
                .args(format_args!("a\nwxpay[ERROR] forged\r\tline"))
                .build(),
        );
        assert_eq!(
            text,
            "wxpay[DEBUG] wxpay: a\\nwxpay[ERROR] forged\\r\\tline\n"
        );
    }

    #[test]
    fn the_logger_filters_by_its_own_level() {
        let logger = StderrLogger {
            level: LevelFilter::Info,
        };
        let meta = |level| Metadata::builder().level(level).target("wxpay").build();
        assert!(logger.enabled(&meta(log::Level::Warn)));
        assert!(logger.enabled(&meta(log::Level::Info)));
        assert!(!logger.enabled(&meta(log::Level::Debug)));
    }
}
