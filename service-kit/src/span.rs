//! [`Span`]: a length of time as operators write it in flags and config
//! files: `300ms`, `90s`, `15m`, `1h`, `7d`, or a plain number of seconds.
//!
//! Not here: which spans a server accepts (each server checks its own bounds).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

/// A whole number of milliseconds, written with an optional unit (no unit:
/// seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "SpanText")]
pub struct Span(u64);

/// Why a span was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a length of time: expected a number with ms, s, m, h or d (e.g. 90s, 1h, 7d)"
)]
pub struct SpanError(String);

impl Span {
    /// `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1000))
    }
    /// `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis)
    }
    /// In whole seconds (rounded down).
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }
    /// As a [`Duration`].
    pub const fn duration(self) -> Duration {
        Duration::from_millis(self.0)
    }
}

impl FromStr for Span {
    type Err = SpanError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || SpanError(s.to_owned());
        let text = s.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: u64 = number.parse().map_err(|_| err())?;
        let scale = match unit.trim() {
            "ms" => 1,
            "" | "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(err()),
        };
        number.checked_mul(scale).map(Span).ok_or_else(err)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ms if ms != 0 && ms % 86_400_000 == 0 => write!(f, "{}d", ms / 86_400_000),
            ms if ms != 0 && ms % 3_600_000 == 0 => write!(f, "{}h", ms / 3_600_000),
            ms if ms != 0 && ms % 60_000 == 0 => write!(f, "{}m", ms / 60_000),
            ms if ms % 1000 == 0 => write!(f, "{}s", ms / 1000),
            ms => write!(f, "{ms}ms"),
        }
    }
}

/// A config-file span: text (`"7d"`) or an integer number of seconds.
#[derive(Deserialize)]
#[serde(untagged)]
enum SpanText {
    Secs(u64),
    Text(String),
}

impl TryFrom<SpanText> for Span {
    type Error = SpanError;

    fn try_from(value: SpanText) -> Result<Self, Self::Error> {
        match value {
            SpanText::Secs(secs) => secs
                .checked_mul(1000)
                .map(Span)
                .ok_or_else(|| SpanError(secs.to_string())),
            SpanText::Text(text) => text.parse(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_plain_seconds() {
        for (text, secs) in [
            ("90", 90),
            ("90s", 90),
            ("15m", 900),
            ("1h", 3600),
            ("7d", 604_800),
        ] {
            assert_eq!(text.parse::<Span>(), Ok(Span::from_secs(secs)), "{text}");
        }
        assert_eq!("300ms".parse::<Span>(), Ok(Span::from_millis(300)));
        assert_eq!(
            Span::from_millis(300).duration(),
            Duration::from_millis(300)
        );
        for bad in ["", "h", "1w", "-1h", "1.5h", "99999999999999999999d", "1us"] {
            assert!(bad.parse::<Span>().is_err(), "{bad}");
        }
    }

    #[test]
    fn display_round_trips() {
        for ms in [
            0, 300, 1500, 59_000, 60_000, 3_600_000, 86_400_000, 90_000_000,
        ] {
            let span = Span(ms);
            assert_eq!(span.to_string().parse::<Span>(), Ok(span));
        }
    }

    #[test]
    fn config_files_take_text_or_seconds() {
        #[derive(Deserialize)]
        struct T {
            a: Span,
            b: Span,
        }
        let t: T = toml::from_str("a = \"2h\"\nb = 30\n").expect("valid");
        assert_eq!((t.a, t.b), (Span::from_secs(7200), Span::from_secs(30)));
        assert!(toml::from_str::<T>("a = \"2 weeks\"\nb = 1\n").is_err());
    }
}
