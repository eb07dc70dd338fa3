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
/// U+2066–U+2069) and the line and paragraph separators (U+2028/9).
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
        )
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
    fn newline_and_tab_are_replaced_in_line_output() {
        assert_eq!(terminal_safe("a\nb\tc"), "a\u{FFFD}b\u{FFFD}c");
    }

    #[test]
    fn printable_neighbours_of_the_ranges_stay() {
        let text = "~\u{A0}\u{200D}\u{2065}\u{206A}\u{202F}";
        assert_eq!(terminal_safe(text), text);
    }
}
