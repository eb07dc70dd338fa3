//! [`Span`]: a length of time as operators write it in flags and config
//! files: `90s`, `15m`, `1h`, `7d`, or a plain number of seconds.
//!
//! Not here: which spans a server accepts (each server checks its own bounds).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

/// A whole number of seconds, written with an optional unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "SpanText")]
pub struct Span(u64);

/// Why a span was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a length of time: expected a number with s, m, h or d (e.g. 90s, 1h, 7d)")]
pub struct SpanError(String);

impl Span {
    /// `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs)
    }
    /// In seconds.
    pub const fn as_secs(self) -> u64 {
        self.0
    }
    /// As a [`Duration`].
    pub const fn duration(self) -> Duration {
        Duration::from_secs(self.0)
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
            "" | "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(err()),
        };
        number.checked_mul(scale).map(Span).ok_or_else(err)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            s if s != 0 && s % 86_400 == 0 => write!(f, "{}d", s / 86_400),
            s if s != 0 && s % 3600 == 0 => write!(f, "{}h", s / 3600),
            s if s != 0 && s % 60 == 0 => write!(f, "{}m", s / 60),
            s => write!(f, "{s}s"),
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
            SpanText::Secs(secs) => Ok(Span(secs)),
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
            assert_eq!(text.parse::<Span>(), Ok(Span(secs)), "{text}");
        }
        for bad in ["", "h", "1w", "-1h", "1.5h", "99999999999999999999d"] {
            assert!(bad.parse::<Span>().is_err(), "{bad}");
        }
    }

    #[test]
    fn display_round_trips() {
        for secs in [0, 59, 60, 3600, 86_400, 90_000] {
            let span = Span(secs);
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
        assert_eq!((t.a, t.b), (Span(7200), Span(30)));
        assert!(toml::from_str::<T>("a = \"2 weeks\"\nb = 1\n").is_err());
    }
}
