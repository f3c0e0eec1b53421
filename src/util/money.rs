//! Money as integer fen (分), and the exact conversion from a decimal string of yuan.
//!
//! No binary floating point is involved anywhere: `"0.29"` is 29 fen, never 28
//! as `int(0.29 * 100)` gives in the article's Python.

use std::fmt;

/// A positive amount of money in fen (1 yuan = 100 fen).
///
/// The gateway's `total_fee` is a 32-bit signed integer, so the largest amount
/// is [`Fen::MAX`] (21,474,836.47 yuan).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fen(u32);

/// Why an amount was rejected. The messages name no field; callers add it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// The amount is zero; WeChat Pay takes positive amounts only.
    #[error("must be greater than zero")]
    Zero,
    /// The amount is below zero.
    #[error("must not be negative")]
    Negative,
    /// The amount is larger than the gateway's 32-bit `total_fee`.
    #[error("exceeds the maximum of 2147483647 fen (21474836.47 yuan)")]
    Overflow,
    /// The text is empty.
    #[error("is empty")]
    Empty,
    /// More than two digits after the decimal point.
    #[error("has more than two decimals (the smallest unit is 0.01 yuan)")]
    TooManyDecimals,
    /// Anything that is not plain decimal notation (`NaN`, `1e2`, `+1`, `1,00`, ...).
    #[error("is not a plain decimal number like \"19.99\" (got {0:?})")]
    NotDecimal(String),
}

impl Fen {
    /// The largest amount the gateway accepts: `i32::MAX` fen.
    pub const MAX: Fen = Fen(i32::MAX as u32);

    /// An amount of `fen` fen; zero, negative and over-[`Fen::MAX`] amounts are rejected.
    pub fn new(fen: i64) -> Result<Fen, AmountError> {
        match fen {
            0 => Err(AmountError::Zero),
            f if f < 0 => Err(AmountError::Negative),
            f if f > i64::from(Fen::MAX.0) => Err(AmountError::Overflow),
            f => Ok(Fen(u32::try_from(f).map_err(|_| AmountError::Overflow)?)),
        }
    }

    /// Parses a decimal string of yuan with at most two decimals: `"19.99"`,
    /// `"8.2"`, `"1"`, `"0.01"`, `" 5.00 "` (surrounding spaces are trimmed).
    /// Exponents, signs other than a leading `-` (rejected as negative), `NaN`,
    /// `inf`, separators and empty text are rejected.
    pub fn from_yuan_str(text: &str) -> Result<Fen, AmountError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, frac) = match digits.split_once('.') {
            Some((w, f)) => (w, f),
            None => (digits, ""),
        };
        let is_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        let well_formed = is_digits(whole)
            && is_digits(frac)
            && !(whole.is_empty() && frac.is_empty())
            && !digits.ends_with('.');
        if !well_formed {
            return Err(AmountError::NotDecimal(truncate_for_message(text)));
        }
        if frac.len() > 2 {
            // "1.230" is exact, but a merchant system that sends three decimals
            // is computing money in a way we should not guess about.
            return Err(AmountError::TooManyDecimals);
        }
        let mut fen: u64 = 0;
        for b in whole.bytes() {
            fen = fen
                .checked_mul(10)
                .and_then(|f| f.checked_add(u64::from(b - b'0')))
                .filter(|f| *f <= u64::from(Fen::MAX.0))
                .ok_or(AmountError::Overflow)?;
        }
        let frac_fen = frac
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(2)
            .fold(0u64, |acc, b| acc * 10 + u64::from(b - b'0'));
        let total = fen
            .checked_mul(100)
            .and_then(|f| f.checked_add(frac_fen))
            .ok_or(AmountError::Overflow)?;
        if negative && total != 0 {
            return Err(AmountError::Negative);
        }
        Fen::new(i64::try_from(total).map_err(|_| AmountError::Overflow)?)
    }

    /// The amount in fen.
    pub fn get(self) -> u32 {
        self.0
    }

    /// The amount as yuan with exactly two decimals, e.g. `"19.99"`.
    pub fn to_yuan_string(self) -> String {
        format!("{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl fmt::Display for Fen {
    /// Writes the amount in fen, as it goes on the wire.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

fn truncate_for_message(text: &str) -> String {
    text.chars().take(32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_strings_convert_exactly() {
        // The amounts that binary floating point gets wrong, and plain ones.
        let table = [
            ("0.29", 29),
            ("0.57", 57),
            ("1.15", 115),
            ("4.35", 435),
            ("8.2", 820),
            ("19.99", 1999),
            ("0.01", 1),
            ("1", 100),
            ("100", 10000),
            ("1.10", 110),
            ("0.1", 10),
            (".5", 50),
            ("007.00", 700),
            (" 3.33 ", 333),
            ("21474836.47", 2_147_483_647),
        ];
        for (text, fen) in table {
            assert_eq!(Fen::from_yuan_str(text).map(Fen::get), Ok(fen), "{text}");
        }
    }

    #[test]
    fn bad_yuan_strings_are_rejected_with_the_reason() {
        use AmountError::*;
        let table = [
            ("0", Zero),
            ("0.00", Zero),
            ("-0", Zero),
            ("-1", Negative),
            ("-0.01", Negative),
            ("", Empty),
            ("   ", Empty),
            ("0.001", TooManyDecimals),
            ("1.234", TooManyDecimals),
            ("21474836.48", Overflow),
            ("99999999999999999999999999", Overflow),
            ("NaN", NotDecimal("NaN".into())),
            ("inf", NotDecimal("inf".into())),
            ("1e2", NotDecimal("1e2".into())),
            ("+1", NotDecimal("+1".into())),
            ("1,00", NotDecimal("1,00".into())),
            ("1.", NotDecimal("1.".into())),
            (".", NotDecimal(".".into())),
            ("--1", NotDecimal("--1".into())),
            ("1.2.3", NotDecimal("1.2.3".into())),
            ("１", NotDecimal("１".into())),
        ];
        for (text, err) in table {
            assert_eq!(Fen::from_yuan_str(text), Err(err), "{text:?}");
        }
    }

    #[test]
    fn integer_fen_bounds() {
        assert_eq!(Fen::new(1).map(Fen::get), Ok(1));
        assert_eq!(Fen::new(0), Err(AmountError::Zero));
        assert_eq!(Fen::new(-5), Err(AmountError::Negative));
        assert_eq!(Fen::new(i64::from(i32::MAX)), Ok(Fen::MAX));
        assert_eq!(
            Fen::new(i64::from(i32::MAX) + 1),
            Err(AmountError::Overflow)
        );
        assert_eq!(Fen::new(i64::MAX), Err(AmountError::Overflow));
    }

    #[test]
    fn yuan_round_trip() {
        for text in ["0.01", "0.29", "8.20", "19.99", "100.00", "21474836.47"] {
            let fen = Fen::from_yuan_str(text).expect("valid");
            assert_eq!(fen.to_yuan_string(), text);
        }
    }
}
