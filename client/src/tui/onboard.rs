//! First run: `kith` in a terminal with no profile. Asks for a name and a
//! passphrase (twice, with a strength hint and what losing it means),
//! makes the profile with a recovery code, shows the code once and has
//! one of its groups typed back. The state and keys are here, free of I/O
//! (tested without a terminal); [`run`] drives them in the terminal.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use zeroize::Zeroizing;

/// The most characters a field takes (a passphrase's bytes stay below
/// the 4,096 the daemon reads).
const MAX_FIELD: usize = 1000;

/// Where the user is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The account's name.
    Name,
    /// The passphrase.
    Passphrase,
    /// The passphrase again.
    Again,
    /// The recovery code, shown once.
    Recovery,
    /// One of its groups typed back.
    Confirm,
}

/// What the runner must do.
#[derive(Debug, PartialEq, Eq)]
pub enum Effect {
    /// Make the profile (name, passphrase) with a recovery code, and give
    /// the code's words back ([`Onboarding::made`]).
    Create,
}

/// The onboarding's state.
pub struct Onboarding {
    /// The step shown.
    pub step: Step,
    /// The name typed.
    pub name: String,
    pass: Zeroizing<String>,
    again: Zeroizing<String>,
    /// The recovery code's words, once made.
    words: Zeroizing<Vec<String>>,
    /// Which group of the code is asked back (0-based).
    pub ask: usize,
    /// What is typed on the confirm step.
    pub typed: Zeroizing<String>,
    /// A problem to show (the step stays).
    pub error: Option<String>,
    /// The user confirmed the code: onboarding is done.
    pub done: bool,
    /// The user left (Ctrl-C, Ctrl-Q, or Esc on the first step).
    pub quit: bool,
    /// Something slow is under way (making the keys, starting the daemon).
    pub busy: bool,
}

impl std::fmt::Debug for Onboarding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Onboarding")
            .field("step", &self.step)
            .field("name", &self.name)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Default for Onboarding {
    fn default() -> Self {
        Self::new()
    }
}

/// How strong a passphrase looks, roughly: the bits of a random string of
/// its length over the kinds of character it uses (an upper bound: a
/// word or a pattern is weaker), and a word for it.
pub fn strength(pass: &str) -> (u32, &'static str) {
    let kinds = [
        pass.chars().any(|c| c.is_ascii_lowercase()),
        pass.chars().any(|c| c.is_ascii_uppercase()),
        pass.chars().any(|c| c.is_ascii_digit()),
        pass.chars().any(|c| !c.is_ascii_alphanumeric()),
    ];
    let alphabet: f64 = [26.0, 26.0, 10.0, 33.0]
        .iter()
        .zip(kinds)
        .filter(|(_, used)| *used)
        .map(|(n, _)| n)
        .sum();
    let distinct = {
        let mut c: Vec<char> = pass.chars().collect();
        c.sort_unstable();
        c.dedup();
        c.len()
    };
    // Repeats add little: count at most twice the distinct characters.
    let len = pass.chars().count().min(distinct * 2);
    let bits = if alphabet > 0.0 {
        (len as f64 * alphabet.log2()) as u32
    } else {
        0
    };
    let word = match bits {
        0..40 => "weak: easy to guess from a copy of your files",
        40..60 => "fair: longer is better",
        60..80 => "good",
        _ => "strong",
    };
    (bits, word)
}

impl Onboarding {
    /// The first step.
    pub fn new() -> Self {
        Self {
            step: Step::Name,
            name: String::new(),
            // Sized for the longest passphrase taken, so typing never
            // moves it (a move would leave an unwiped copy).
            pass: Zeroizing::new(String::with_capacity(MAX_FIELD * 4)),
            again: Zeroizing::new(String::with_capacity(MAX_FIELD * 4)),
            words: Zeroizing::new(Vec::new()),
            ask: 0,
            typed: Zeroizing::new(String::with_capacity(MAX_FIELD * 4)),
            error: None,
            done: false,
            quit: false,
            busy: false,
        }
    }

    /// The passphrase chosen (once both entries match).
    pub fn passphrase(&self) -> &str {
        &self.pass
    }

    /// The profile was made with this recovery code: show it; `ask` is
    /// the word to type back (0-based, below the number of words).
    pub fn made(&mut self, words: Vec<String>, ask: usize) {
        self.ask = ask.min(words.len().saturating_sub(1));
        *self.words = words;
        self.step = Step::Recovery;
        self.error = None;
    }

    /// Making the profile failed: say why, and start the passphrase again.
    pub fn failed(&mut self, why: String) {
        self.error = Some(why);
        self.step = Step::Name;
    }

    /// The recovery code's words.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    fn field(&mut self) -> Option<&mut String> {
        match self.step {
            Step::Name => Some(&mut self.name),
            Step::Passphrase => Some(&mut self.pass),
            Step::Again => Some(&mut self.again),
            Step::Confirm => Some(&mut self.typed),
            Step::Recovery => None,
        }
    }

    /// Handles a key; returns what the runner must do.
    pub fn on_key(&mut self, key: KeyEvent) -> Option<Effect> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('q')) {
            self.quit = true;
            return None;
        }
        match key.code {
            KeyCode::Enter => return self.enter(),
            KeyCode::Esc => {
                self.error = None;
                match self.step {
                    Step::Name => self.quit = true,
                    Step::Passphrase => self.step = Step::Name,
                    Step::Again => {
                        self.again.clear();
                        self.step = Step::Passphrase;
                    }
                    // The profile is made: the code must be seen again.
                    Step::Confirm => self.step = Step::Recovery,
                    Step::Recovery => {}
                }
            }
            KeyCode::Backspace => {
                if let Some(f) = self.field() {
                    f.pop();
                }
            }
            KeyCode::Char(c) if !ctrl => {
                if let Some(f) = self.field()
                    && f.chars().count() < MAX_FIELD
                {
                    f.push(c);
                }
            }
            _ => {}
        }
        None
    }

    /// Text pasted (bracketed paste): into the field being typed.
    pub fn on_paste(&mut self, text: &str) {
        if let Some(f) = self.field() {
            let room = MAX_FIELD.saturating_sub(f.chars().count());
            f.extend(text.chars().filter(|c| !c.is_control()).take(room));
        }
    }

    fn enter(&mut self) -> Option<Effect> {
        self.error = None;
        match self.step {
            Step::Name => {
                let name = self.name.trim().to_owned();
                match node_core::identity::entry::check_name(&name) {
                    Ok(()) if !name.is_empty() => {
                        self.name = name;
                        self.step = Step::Passphrase;
                    }
                    Ok(()) => self.error = Some("type a name".into()),
                    Err(why) => self.error = Some(format!("that name will not do: {why}")),
                }
            }
            Step::Passphrase => {
                if self.pass.is_empty() {
                    self.error = Some("choose a passphrase".into());
                } else {
                    self.again.clear();
                    self.step = Step::Again;
                }
            }
            Step::Again => {
                if *self.again == *self.pass {
                    return Some(Effect::Create);
                }
                self.pass.clear();
                self.again.clear();
                self.error = Some("the two passphrases differ: choose it again".into());
                self.step = Step::Passphrase;
            }
            Step::Recovery => {
                self.typed.clear();
                self.step = Step::Confirm;
            }
            Step::Confirm => {
                let want = self.words.get(self.ask).map(|w| w.to_lowercase());
                if want.as_deref() == Some(self.typed.trim().to_lowercase().as_str()) {
                    self.done = true;
                } else {
                    self.typed.clear();
                    self.error = Some(format!(
                        "that is not group {} (Esc shows the code again)",
                        self.ask + 1
                    ));
                }
            }
        }
        None
    }
}

/// Draws the onboarding.
pub fn draw(f: &mut Frame, o: &Onboarding) {
    let [top, body, bottom] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(8),
        Constraint::Length(2),
    ])
    .areas(f.area());
    let step = match o.step {
        Step::Name => 1,
        Step::Passphrase | Step::Again => 2,
        Step::Recovery | Step::Confirm => 3,
    };
    f.render_widget(
        Paragraph::new(format!(
            "Welcome to kith — setting up this device (step {step} of 3)"
        ))
        .style(Style::default().add_modifier(Modifier::BOLD))
        .block(Block::default().borders(Borders::BOTTOM)),
        top,
    );
    let hidden = |s: &str| "•".repeat(s.chars().count());
    let mut lines: Vec<Line> = Vec::new();
    match o.step {
        Step::Name => {
            lines.push(Line::from("Your name, as your contacts will see it:"));
            lines.push(Line::from(""));
            lines.push(Line::from(format!(
                "> {}",
                crate::display::terminal_safe(&o.name)
            )));
        }
        Step::Passphrase | Step::Again => {
            lines.push(Line::from(
                "A passphrase locks this device's copy of your messages and keys.",
            ));
            lines.push(Line::from(
                "If you forget it, nobody can open this profile: no server keeps a copy.",
            ));
            lines.push(Line::from(
                "Your other devices and the recovery code (next) keep your account, not this copy.",
            ));
            lines.push(Line::from(""));
            let (bits, word) = strength(&o.pass);
            if o.step == Step::Passphrase {
                lines.push(Line::from(format!("passphrase > {}", hidden(&o.pass))));
                if !o.pass.is_empty() {
                    let color = if bits < 40 {
                        Color::Red
                    } else if bits < 60 {
                        Color::Yellow
                    } else {
                        Color::Green
                    };
                    lines.push(Line::from(Span::styled(
                        format!("strength: {word} (about {bits} bits)"),
                        Style::default().fg(color),
                    )));
                }
            } else {
                lines.push(Line::from(format!("passphrase > {}", hidden(&o.pass))));
                lines.push(Line::from(format!("again      > {}", hidden(&o.again))));
            }
        }
        Step::Recovery => {
            lines.push(Line::from(Span::styled(
                "Your recovery code — shown this once. Write it down and keep it apart from this device:",
                Style::default().add_modifier(Modifier::BOLD),
            )));
            lines.push(Line::from(""));
            lines.push(Line::from(format!("    {}", o.words().join("-"))));
            lines.push(Line::from(""));
            lines.push(Line::from(
                "With it you can revoke a lost or stolen device, even with no other device left.",
            ));
            lines.push(Line::from("Press Enter when it is written down."));
        }
        Step::Confirm => {
            lines.push(Line::from(format!(
                "Type group {} of your recovery code (the groups are counted from 1):",
                o.ask + 1
            )));
            lines.push(Line::from(""));
            lines.push(Line::from(format!(
                "> {}",
                crate::display::terminal_safe(&o.typed)
            )));
        }
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), body);
    let help = match (&o.error, o.step) {
        _ if o.busy && o.done => Line::from("starting kith in the background…"),
        _ if o.busy => Line::from("making your keys and the encrypted store (a few seconds)…"),
        (Some(e), _) => Line::from(Span::styled(e.clone(), Style::default().fg(Color::Red))),
        (None, Step::Name) => Line::from("Enter: next   Esc: leave"),
        (None, Step::Recovery) => Line::from("Enter: I wrote it down"),
        (None, _) => Line::from("Enter: next   Esc: back"),
    };
    f.render_widget(Paragraph::new(help), bottom);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn typing(o: &mut Onboarding, text: &str) -> Option<Effect> {
        for c in text.chars() {
            o.on_key(key(KeyCode::Char(c)));
        }
        o.on_key(key(KeyCode::Enter))
    }

    #[test]
    fn a_first_run_asks_twice_then_has_a_word_typed_back() {
        let mut o = Onboarding::new();
        assert_eq!(typing(&mut o, ""), None);
        assert!(o.error.is_some());
        assert_eq!(typing(&mut o, "Alice"), None);
        assert_eq!(o.step, Step::Passphrase);
        assert_eq!(typing(&mut o, "correct horse battery"), None);
        assert_eq!(o.step, Step::Again);
        assert_eq!(typing(&mut o, "correct horse batery"), None);
        assert_eq!(o.step, Step::Passphrase, "a mismatch starts again");
        assert!(o.error.as_deref().unwrap().contains("differ"));
        typing(&mut o, "correct horse battery");
        assert_eq!(
            typing(&mut o, "correct horse battery"),
            Some(Effect::Create)
        );
        assert_eq!(o.passphrase(), "correct horse battery");
        o.made(
            "apple bird cloud door"
                .split(' ')
                .map(String::from)
                .collect(),
            2,
        );
        assert_eq!(o.step, Step::Recovery);
        o.on_key(key(KeyCode::Enter));
        assert_eq!(o.step, Step::Confirm);
        typing(&mut o, "bird");
        assert!(!o.done && o.error.is_some());
        typing(&mut o, "Cloud");
        assert!(o.done);
    }

    #[test]
    fn strength_grows_with_length_and_kinds() {
        assert!(strength("aaaaaaaa").0 < 40);
        assert!(strength("password").0 < 40);
        assert!(strength("correct horse battery staple").0 >= 80);
        assert!(strength("Tr0ub4dor&3").0 >= 60);
        assert_eq!(strength("").0, 0);
    }

    #[test]
    fn esc_on_the_first_step_leaves_and_the_code_can_be_seen_again() {
        let mut o = Onboarding::new();
        o.on_key(key(KeyCode::Esc));
        assert!(o.quit);
        let mut o = Onboarding::new();
        o.made(vec!["a".into(), "b".into()], 1);
        o.on_key(key(KeyCode::Enter));
        o.on_key(key(KeyCode::Esc));
        assert_eq!(o.step, Step::Recovery);
    }
}
