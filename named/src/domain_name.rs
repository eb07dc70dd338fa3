//! The DNS domain a `kith-named` instance serves handles for.
//!
//! Parsed once from `--domain`: lower-cased, without a trailing dot, made of
//! 1–63 character labels of letters, digits and inner hyphens, at most 253
//! characters. Not here: internationalised names (give the `xn--` form) and
//! any DNS lookup.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// A syntactically valid, lower-case DNS domain name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct DomainName(String);

/// Why a domain name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainNameError {
    /// Empty, or only a dot.
    #[error("the domain is empty")]
    Empty,
    /// Longer than 253 characters.
    #[error("the domain is longer than 253 characters")]
    TooLong,
    /// A label is empty, too long or has a character DNS does not allow.
    #[error(
        "`{0}` is not a valid domain label (letters, digits and inner hyphens, 1-63 characters)"
    )]
    BadLabel(String),
}

impl FromStr for DomainName {
    type Err = DomainNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
        if name.is_empty() {
            return Err(DomainNameError::Empty);
        }
        if name.len() > 253 {
            return Err(DomainNameError::TooLong);
        }
        match name.split('.').find(|label| !is_label(label)) {
            Some(bad) => Err(DomainNameError::BadLabel(bad.to_owned())),
            None => Ok(Self(name)),
        }
    }
}

impl TryFrom<String> for DomainName {
    type Error = DomainNameError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<DomainName, DomainNameError> {
        s.parse()
    }

    #[test]
    fn accepts_and_normalises() {
        assert_eq!(
            parse("Example.ORG.").map(|d| d.to_string()),
            Ok("example.org".into())
        );
        assert_eq!(
            parse("localhost").map(|d| d.to_string()),
            Ok("localhost".into())
        );
        assert!(parse("xn--bcher-kva.example").is_ok());
    }

    #[test]
    fn refuses_bad_names() {
        assert_eq!(parse(""), Err(DomainNameError::Empty));
        assert_eq!(parse("."), Err(DomainNameError::Empty));
        assert_eq!(parse("a..b"), Err(DomainNameError::BadLabel(String::new())));
        assert_eq!(parse("-a.org"), Err(DomainNameError::BadLabel("-a".into())));
        assert_eq!(
            parse("a_b.org"),
            Err(DomainNameError::BadLabel("a_b".into()))
        );
        assert_eq!(
            parse("user@example.org"),
            Err(DomainNameError::BadLabel("user@example".into()))
        );
        assert_eq!(
            parse(&"a".repeat(64)),
            Err(DomainNameError::BadLabel("a".repeat(64)))
        );
        assert_eq!(parse(&["a"; 128].join(".")), Err(DomainNameError::TooLong));
    }
}
