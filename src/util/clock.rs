//! The wall clock, injectable so tests can pin timestamps and expiries, and
//! the protocol's `yyyyMMddHHmmss` Beijing-time format.

use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time in Unix seconds.
pub trait Clock: Send + Sync {
    /// Seconds since 1970-01-01T00:00:00Z.
    fn now_unix(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

/// A clock that always says the same time (for tests and reproducible examples).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub u64);

impl Clock for FixedClock {
    fn now_unix(&self) -> u64 {
        self.0
    }
}

/// Beijing time is UTC+8 all year (China has no daylight saving time).
const BEIJING_OFFSET_SECS: u64 = 8 * 3600;

/// Formats Unix seconds as `yyyyMMddHHmmss` in Beijing time (UTC+8), the
/// format of `time_start` and `time_expire`.
pub fn beijing_timestamp(unix: u64) -> String {
    let local = unix + BEIJING_OFFSET_SECS;
    let days = local / 86_400;
    let secs = local % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Formats Unix seconds as RFC 3339 in Beijing time, e.g.
/// `2018-06-08T10:34:56+08:00` (API v3's `time_expire`).
pub fn beijing_rfc3339(unix: u64) -> String {
    let t = beijing_timestamp(unix);
    format!(
        "{}-{}-{}T{}:{}:{}+08:00",
        &t[0..4],
        &t[4..6],
        &t[6..8],
        &t[8..10],
        &t[10..12],
        &t[12..14]
    )
}

/// Year, month and day of the `days`-th day after 1970-01-01 (proleptic
/// Gregorian; Howard Hinnant's `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beijing_format() {
        // 1399514976 = 2014-05-08T02:09:36Z = 10:09:36 in Beijing.
        assert_eq!(beijing_timestamp(1_399_514_976), "20140508100936");
        assert_eq!(beijing_timestamp(0), "19700101080000");
        // 16:00Z on New Year's Eve is already next year in Beijing.
        assert_eq!(beijing_timestamp(1_704_038_400), "20240101000000");
        // A leap day.
        assert_eq!(beijing_timestamp(1_709_164_800), "20240229080000");
        assert_eq!(beijing_timestamp(4_102_444_800), "21000101080000");
        assert_eq!(beijing_rfc3339(1_399_514_976), "2014-05-08T10:09:36+08:00");
    }
}
