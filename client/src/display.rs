//! Making text from peers safe to show in a terminal.
//!
//! Message text, file names, contact, device and room names come from
//! peers and are stored exactly as received. Written raw to a terminal they
//! could carry escape sequences (clear the screen, set the window title,
//! rewrite earlier lines), a carriage return that hides what came before
//! it, or bidi overrides that make text read differently from what it is.
//! Every human-readable printer and the TUI pass such text through
//! [`terminal_safe`]; `--json` output does not (JSON escaping already
//! makes it safe, and scripts get the exact text).
//!
//! Human output is one line per item, so a newline in peer text is
//! replaced too: kept, it would let a peer forge a line that looks like
//! another message or contact.
//!
//! Not here: storing or validating text (the node keeps it exact).

use std::borrow::Cow;

/// What replaces each unsafe character.
pub const REPLACEMENT: char = '\u{FFFD}';

/// `text` with every character that could steer a terminal replaced by
/// [`REPLACEMENT`]: C0 controls (newline and tab included), DEL, C1
/// controls, the Unicode bidi controls (U+061C, U+200E/F, U+202A–U+202E,
/// U+2066–U+2069), the line and paragraph separators (U+2028/9), and
/// invisible characters a name could hide behind (soft hyphen U+00AD,
/// the Hangul fillers U+115F, U+1160, U+3164, U+FFA0, the Mongolian vowel
/// separator U+180E, zero-width space U+200B, word joiner and invisible
/// operators U+2060–U+2064, U+FEFF, the tag block U+E0000–U+E007F; not
/// the zero-width joiners emoji are made of).
/// Borrowed when nothing needed replacing.
pub fn terminal_safe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| if is_unsafe(c) { REPLACEMENT } else { c })
            .collect(),
    )
}

/// Whether `c` is a control or bidi character (see [`terminal_safe`]).
fn is_unsafe(c: char) -> bool {
    c.is_control() // C0, DEL and C1: U+0000–U+001F, U+007F–U+009F
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
                // Invisible: a name could hide in them or look like another.
                | '\u{00AD}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{180E}'
                | '\u{200B}'
                | '\u{2060}'..='\u{2064}'
                | '\u{3164}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{E0000}'..='\u{E007F}'
        )
}

/// How a contact requester says it found this account, as a claim, made
/// safe for the terminal (for `kith contact requests` and the UI).
pub fn request_how(r: &kith_client::RequestInfo) -> String {
    match r.how.as_str() {
        "introduction" => match (&r.introducer_name, r.introduced_by) {
            (Some(name), Some(by)) => format!(
                "says your contact {} ({}) introduced them",
                terminal_safe(name),
                by.short(12)
            ),
            (None, Some(by)) => format!(
                "says {} (not one of your contacts) introduced them",
                by.short(12)
            ),
            _ => "says they were introduced".into(),
        },
        "nameserver" => format!(
            "found you as {} on a nameserver",
            terminal_safe(r.handle.as_deref().unwrap_or("?"))
        ),
        _ => "has your card".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        let text = "héllo, wörld — 你好 👋";
        assert!(matches!(terminal_safe(text), Cow::Borrowed(t) if t == text));
    }

    #[test]
    fn escape_sequences_lose_their_escape() {
        let safe = terminal_safe("\x1b[2J\x1b]0;pwned\x07\rok");
        assert_eq!(safe, "\u{FFFD}[2J\u{FFFD}]0;pwned\u{FFFD}\u{FFFD}ok");
    }

    #[test]
    fn every_c0_del_and_c1_control_is_replaced() {
        let controls: String = (0u32..0x20)
            .chain(0x7f..0xa0)
            .filter_map(char::from_u32)
            .collect();
        let safe = terminal_safe(&controls);
        assert!(safe.chars().all(|c| c == REPLACEMENT), "{safe:?}");
        assert_eq!(safe.chars().count(), 0x20 + 0x21);
    }

    #[test]
    fn bidi_controls_and_separators_are_replaced() {
        for c in [
            '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}',
            '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{2028}', '\u{2029}',
        ] {
            let text = format!("a{c}b");
            assert_eq!(terminal_safe(&text), "a\u{FFFD}b", "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn invisible_characters_are_replaced() {
        for c in [
            '\u{00AD}',
            '\u{115F}',
            '\u{3164}',
            '\u{FFA0}',
            '\u{180E}',
            '\u{200B}',
            '\u{2060}',
            '\u{2064}',
            '\u{FEFF}',
            '\u{E0001}',
            '\u{E007F}',
        ] {
            let text = format!("a{c}b");
            assert_eq!(terminal_safe(&text), "a\u{FFFD}b", "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn newline_and_tab_are_replaced_in_line_output() {
        assert_eq!(terminal_safe("a\nb\tc"), "a\u{FFFD}b\u{FFFD}c");
    }

    #[test]
    fn printable_neighbours_of_the_ranges_stay() {
        let text = "~\u{A0}\u{200D}\u{2065}\u{206A}\u{202F}";
        assert_eq!(terminal_safe(text), text);
    }
}
