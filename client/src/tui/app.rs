//! The terminal UI's state and key handling, free of I/O: keys give
//! effects (requests to the daemon) and the runner feeds results back, so
//! screens can be rendered and tested without a terminal or a daemon.

use crate::rpc::Status;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use node_core::node::contacts::ContactInfo;
use node_core::node::devices::DeviceInfo;
use node_core::node::messages::MessageInfo;

/// Which screen is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    /// Conversation list and the selected conversation.
    Chat,
    /// Paste a contact's card.
    AddContact,
    /// Own card as a QR code.
    MyCard,
    /// Compare the safety number with the selected contact.
    Verify,
    /// This account's devices.
    Devices,
}

/// What the runner must ask the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send a message.
    Send {
        /// Contact id.
        to: String,
        /// Text.
        text: String,
    },
    /// Add a contact from a card.
    AddContact(String),
    /// Fetch own card.
    FetchCard,
    /// Fetch the safety number with a contact.
    FetchSafetyNumber(String),
    /// Validate a contact with this number.
    Verify {
        /// Contact id.
        contact: String,
        /// The digits.
        digits: String,
    },
    /// Mark a conversation read.
    MarkRead(String),
    /// Fetch the device list.
    FetchDevices,
    /// Make an invite code.
    Invite,
    /// Revoke a device.
    Revoke(String),
    /// Ring a contact.
    CallStart {
        /// Contact id.
        to: String,
        /// With video.
        video: bool,
    },
    /// Answer the call.
    CallAnswer {
        /// Call id.
        call: String,
        /// With video.
        video: bool,
        /// The caller is marked compromised and the user said yes.
        anyway: bool,
    },
    /// Decline the ringing call.
    CallDecline(String),
    /// Hang up.
    CallHangup(String),
    /// Mute (or unmute) this device's sound.
    CallMute {
        /// Call id.
        call: String,
        /// Mute (true) or unmute.
        on: bool,
    },
    /// Hand the call to another own device.
    CallMove {
        /// Call id.
        call: String,
        /// The device.
        device: String,
    },
}

/// A safety number being compared.
#[derive(Debug, Clone)]
pub struct Safety {
    /// Contact id.
    pub contact: String,
    /// The 60 digits.
    pub digits: String,
    /// In groups of five.
    pub grouped: String,
    /// As a QR code (text).
    pub qr: String,
}

/// Everything the UI shows.
#[derive(Debug, Clone)]
pub struct App {
    /// The daemon's status.
    pub status: Option<Status>,
    /// Contacts (conversations), in the order shown.
    pub contacts: Vec<ContactInfo>,
    /// Index of the selected conversation.
    pub selected: usize,
    /// The selected conversation's messages, in display order.
    pub messages: Vec<MessageInfo>,
    /// The selected conversation's files, with their progress.
    pub files: Vec<node_core::node::files::FileInfo>,
    /// What is being typed.
    pub input: String,
    /// The screen.
    pub screen: Screen,
    /// A line to show at the bottom (text, is an error).
    pub notice: Option<(String, bool)>,
    /// Own card: URI and QR.
    pub card: Option<(String, String)>,
    /// The safety number being compared.
    pub safety: Option<Safety>,
    /// Own devices.
    pub devices: Vec<DeviceInfo>,
    /// Selected device.
    pub device_selected: usize,
    /// Device waiting for `y` to be revoked.
    pub confirm_revoke: Option<String>,
    /// The last invite code made.
    pub invite: Option<String>,
    /// Calls on this device (from `call status`).
    pub calls: Vec<crate::rpc::CallInfo>,
    /// The call screen is put away (the call goes on; Ctrl-K shows it).
    pub call_hidden: bool,
    /// A compromised contact's call: `a` was pressed once, `y` answers.
    pub confirm_answer: bool,
    /// Choosing the own device to move the call to.
    pub moving: bool,
    /// The choice selected on the incoming-call screen: 0 answer, 1
    /// answer with video, 2 decline (none until an arrow key is pressed,
    /// so typing that goes on when a call rings does nothing).
    pub choice: Option<usize>,
    /// Set when the user quits.
    pub quit: bool,
}

impl Default for App {
    fn default() -> Self {
        Self::new()
    }
}

impl App {
    /// An empty UI (before the first refresh).
    pub fn new() -> Self {
        Self {
            status: None,
            contacts: Vec::new(),
            selected: 0,
            messages: Vec::new(),
            files: Vec::new(),
            input: String::new(),
            screen: Screen::Chat,
            notice: None,
            card: None,
            safety: None,
            devices: Vec::new(),
            device_selected: 0,
            confirm_revoke: None,
            invite: None,
            calls: Vec::new(),
            call_hidden: false,
            confirm_answer: false,
            moving: false,
            choice: None,
            quit: false,
        }
    }

    /// The call the call screen is about: one ringing here, else one
    /// going on (or being set up, or coming back) on this device.
    pub fn live_call(&self) -> Option<&crate::rpc::CallInfo> {
        self.calls
            .iter()
            .find(|c| c.state == "incoming")
            .or_else(|| {
                self.calls
                    .iter()
                    .find(|c| matches!(c.state.as_str(), "active" | "ringing" | "reconnecting"))
            })
    }

    /// Whether the call screen is up.
    pub fn call_shown(&self) -> bool {
        !self.call_hidden && self.live_call().is_some()
    }

    /// The contact at the other end of a call.
    pub fn contact_of(&self, account: &str) -> Option<&ContactInfo> {
        self.contacts.iter().find(|c| c.id.to_string() == account)
    }

    /// New call list from the daemon: a new incoming call brings the call
    /// screen up.
    pub fn set_calls(&mut self, calls: Vec<crate::rpc::CallInfo>) {
        let before = self.live_call().map(|c| (c.id.clone(), c.state.clone()));
        self.calls = calls;
        let now = self.live_call().map(|c| (c.id.clone(), c.state.clone()));
        if now != before {
            if now.as_ref().is_some_and(|(_, s)| s == "incoming") {
                self.call_hidden = false;
            }
            self.confirm_answer = false;
            self.choice = None;
            if now.is_none() {
                self.moving = false;
            }
        }
    }

    /// The selected contact.
    pub fn current(&self) -> Option<&ContactInfo> {
        self.contacts.get(self.selected)
    }

    /// Display name of a contact: alias, else its card's name.
    pub fn name_of(c: &ContactInfo) -> String {
        let name = c.alias.as_deref().unwrap_or(&c.name);
        crate::display::terminal_safe(name).into_owned()
    }

    /// New contact list from the daemon (keeps the selection on the same
    /// contact).
    pub fn set_contacts(&mut self, mut contacts: Vec<ContactInfo>) {
        let keep = self.current().map(|c| c.id);
        contacts.sort_by_key(|c| Self::name_of(c).to_lowercase());
        self.contacts = contacts;
        self.selected = keep
            .and_then(|id| self.contacts.iter().position(|c| c.id == id))
            .unwrap_or(0)
            .min(self.contacts.len().saturating_sub(1));
    }

    /// Handles a key; returns what to ask the daemon.
    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(key.code, KeyCode::Char('q') | KeyCode::Char('c')) {
            self.quit = true;
            return vec![];
        }
        if self.call_shown() {
            return self.call_key(key, ctrl);
        }
        match self.screen {
            Screen::Chat => self.chat_key(key, ctrl),
            Screen::AddContact => self.add_contact_key(key),
            Screen::MyCard => {
                if matches!(key.code, KeyCode::Esc | KeyCode::Enter) {
                    self.screen = Screen::Chat;
                }
                vec![]
            }
            Screen::Verify => self.verify_key(key),
            Screen::Devices => self.devices_key(key),
        }
    }

    /// Text pasted into the terminal (bracketed paste).
    pub fn on_paste(&mut self, text: &str) {
        if matches!(self.screen, Screen::Chat | Screen::AddContact) {
            self.input.push_str(text.trim_end_matches(['\r', '\n']));
        }
    }

    fn chat_key(&mut self, key: KeyEvent, ctrl: bool) -> Vec<Effect> {
        if ctrl {
            return match key.code {
                KeyCode::Char('n') => {
                    self.screen = Screen::AddContact;
                    self.input.clear();
                    vec![]
                }
                KeyCode::Char('o') => {
                    self.screen = Screen::MyCard;
                    vec![Effect::FetchCard]
                }
                KeyCode::Char('s') => match self.current() {
                    Some(c) => {
                        let id = c.id.to_string();
                        self.safety = None;
                        self.screen = Screen::Verify;
                        vec![Effect::FetchSafetyNumber(id)]
                    }
                    None => {
                        self.notice = Some(("add a contact first (Ctrl-N)".into(), true));
                        vec![]
                    }
                },
                KeyCode::Char('d') => {
                    self.screen = Screen::Devices;
                    self.confirm_revoke = None;
                    vec![Effect::FetchDevices]
                }
                // A call going on: back to its screen; else ring the
                // selected contact.
                KeyCode::Char('k') if self.live_call().is_some() => {
                    self.call_hidden = false;
                    vec![]
                }
                KeyCode::Char('k') => match self.current().map(|c| c.id.to_string()) {
                    Some(to) => {
                        self.call_hidden = false;
                        vec![Effect::CallStart { to, video: false }]
                    }
                    None => {
                        self.notice = Some(("add a contact first (Ctrl-N)".into(), true));
                        vec![]
                    }
                },
                _ => vec![],
            };
        }
        match key.code {
            KeyCode::Up => self.select(self.selected.saturating_sub(1)),
            KeyCode::Down => self.select(self.selected + 1),
            KeyCode::Enter => {
                let text = self.input.trim().to_owned();
                match self.current() {
                    Some(c) if !text.is_empty() => {
                        let to = c.id.to_string();
                        self.input.clear();
                        vec![Effect::Send { to, text }]
                    }
                    None if !text.is_empty() => {
                        self.notice = Some(("add a contact first (Ctrl-N)".into(), true));
                        vec![]
                    }
                    _ => vec![],
                }
            }
            KeyCode::Backspace => {
                self.input.pop();
                vec![]
            }
            KeyCode::Esc => {
                self.input.clear();
                vec![]
            }
            KeyCode::Char(ch) => {
                self.input.push(ch);
                vec![]
            }
            _ => vec![],
        }
    }

    fn call_key(&mut self, key: KeyEvent, ctrl: bool) -> Vec<Effect> {
        let Some(call) = self.live_call() else {
            return vec![];
        };
        let (id, state) = (call.id.clone(), call.state.clone());
        let muted = call.muted;
        let compromised = call.compromised
            || self
                .contact_of(&call.target)
                .is_some_and(|c| c.trust == "compromised");
        if ctrl && state != "incoming" {
            return vec![];
        }
        if self.moving {
            return match key.code {
                KeyCode::Esc => {
                    self.moving = false;
                    vec![]
                }
                KeyCode::Char(d @ '1'..='9') => {
                    let others: Vec<_> = self
                        .devices
                        .iter()
                        .filter(|d| !d.current && d.state == "active")
                        .collect();
                    let n = (d as usize) - ('1' as usize);
                    match others.get(n) {
                        Some(dev) => {
                            let device = dev.id.to_string();
                            self.moving = false;
                            vec![Effect::CallMove { call: id, device }]
                        }
                        None => vec![],
                    }
                }
                _ => vec![],
            };
        }
        if state == "incoming" {
            return self.incoming_key(key, ctrl, id, compromised);
        }
        match (state.as_str(), key.code) {
            (_, KeyCode::Char('h')) => vec![Effect::CallHangup(id)],
            ("active" | "reconnecting", KeyCode::Char('m')) => {
                vec![Effect::CallMute {
                    call: id,
                    on: !muted,
                }]
            }
            ("active", KeyCode::Char('o')) => {
                self.moving = true;
                vec![Effect::FetchDevices]
            }
            (_, KeyCode::Esc) => {
                self.call_hidden = true;
                self.confirm_answer = false;
                vec![]
            }
            _ => vec![],
        }
    }

    /// The incoming-call screen takes only deliberate keys: arrows choose,
    /// Enter does the chosen thing; a compromised contact's call is then
    /// answered only with Ctrl-A. Letters do nothing (someone typing when
    /// the call rings must not answer it).
    fn incoming_key(
        &mut self,
        key: KeyEvent,
        ctrl: bool,
        id: String,
        compromised: bool,
    ) -> Vec<Effect> {
        let video = self.choice == Some(1);
        match key.code {
            KeyCode::Char('a') if ctrl && self.confirm_answer => {
                self.confirm_answer = false;
                vec![Effect::CallAnswer {
                    call: id,
                    video,
                    anyway: true,
                }]
            }
            _ if ctrl => vec![],
            KeyCode::Right | KeyCode::Tab => {
                self.choice = Some(self.choice.map_or(0, |c| (c + 1) % 3));
                self.confirm_answer = false;
                vec![]
            }
            KeyCode::Left | KeyCode::BackTab => {
                self.choice = Some(self.choice.map_or(2, |c| (c + 2) % 3));
                self.confirm_answer = false;
                vec![]
            }
            KeyCode::Enter => match self.choice {
                Some(0 | 1) if compromised => {
                    self.confirm_answer = true;
                    vec![]
                }
                Some(c @ (0 | 1)) => vec![Effect::CallAnswer {
                    call: id,
                    video: c == 1,
                    anyway: false,
                }],
                Some(_) => vec![Effect::CallDecline(id)],
                None => vec![],
            },
            KeyCode::Esc => {
                self.call_hidden = true;
                self.confirm_answer = false;
                vec![]
            }
            _ => vec![],
        }
    }

    fn select(&mut self, index: usize) -> Vec<Effect> {
        if self.contacts.is_empty() {
            return vec![];
        }
        self.selected = index.min(self.contacts.len() - 1);
        self.messages.clear();
        vec![]
    }

    fn add_contact_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        match key.code {
            KeyCode::Esc => {
                self.input.clear();
                self.screen = Screen::Chat;
                vec![]
            }
            KeyCode::Enter => {
                let card = self.input.trim().to_owned();
                self.input.clear();
                self.screen = Screen::Chat;
                if card.is_empty() {
                    return vec![];
                }
                vec![Effect::AddContact(card)]
            }
            KeyCode::Backspace => {
                self.input.pop();
                vec![]
            }
            KeyCode::Char(ch) => {
                self.input.push(ch);
                vec![]
            }
            _ => vec![],
        }
    }

    fn verify_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        match key.code {
            KeyCode::Char('y') => {
                self.screen = Screen::Chat;
                match self.safety.take() {
                    Some(s) => vec![Effect::Verify {
                        contact: s.contact,
                        digits: s.digits,
                    }],
                    None => vec![],
                }
            }
            KeyCode::Char('n') => {
                self.screen = Screen::Chat;
                self.safety = None;
                self.notice = Some((
                    "not validated: if the numbers differ, someone may be in between. Compare again over a channel you trust".into(),
                    true,
                ));
                vec![]
            }
            KeyCode::Esc => {
                self.screen = Screen::Chat;
                self.safety = None;
                vec![]
            }
            _ => vec![],
        }
    }

    fn devices_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if let Some(id) = self.confirm_revoke.take() {
            if key.code == KeyCode::Char('y') {
                return vec![Effect::Revoke(id)];
            }
            self.notice = Some(("nothing revoked".into(), false));
            return vec![];
        }
        match key.code {
            KeyCode::Esc => {
                self.screen = Screen::Chat;
                self.invite = None;
                vec![]
            }
            KeyCode::Up => {
                self.device_selected = self.device_selected.saturating_sub(1);
                vec![]
            }
            KeyCode::Down => {
                self.device_selected =
                    (self.device_selected + 1).min(self.devices.len().saturating_sub(1));
                vec![]
            }
            KeyCode::Char('i') => vec![Effect::Invite],
            KeyCode::Char('r') => {
                match self.devices.get(self.device_selected) {
                    Some(d) if d.current => {
                        self.notice = Some(("revoke this device from another one".into(), true));
                    }
                    Some(d) if d.state == "revoked" => {
                        self.notice = Some(("already revoked".into(), false));
                    }
                    Some(d) => {
                        self.confirm_revoke = Some(d.id.to_string());
                        self.notice = Some((
                            format!("revoke {}? it is cut off everywhere (y to confirm)", d.name),
                            true,
                        ));
                    }
                    None => {}
                }
                vec![]
            }
            _ => vec![],
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crossterm::event::KeyEvent;

    fn contact(trust: &str) -> ContactInfo {
        let id = node_core::AccountId::from_bytes([5; 32]);
        serde_json::from_value(serde_json::json!({
            "id": id.to_string(),
            "name": "mallory",
            "alias": null,
            "trust": trust,
            "devices": [],
        }))
        .unwrap()
    }

    fn incoming(target: &str) -> crate::rpc::CallInfo {
        serde_json::from_value(serde_json::json!({
            "id": "c0ffee",
            "target": target,
            "state": "incoming",
            "device": null,
            "participants": [],
            "path": null,
            "rtt_ms": null,
            "loss": null,
            "audio_kbps": null,
            "video_kbps": null,
        }))
        .unwrap()
    }

    fn key(c: char) -> KeyEvent {
        KeyEvent::from(KeyCode::Char(c))
    }

    fn code(c: KeyCode) -> KeyEvent {
        KeyEvent::from(c)
    }

    #[test]
    fn typing_while_a_call_rings_does_not_answer_it() {
        let mut app = App::new();
        let c = contact("unvalidated");
        let target = c.id.to_string();
        app.set_contacts(vec![c]);
        app.set_calls(vec![incoming(&target)]);
        for ch in "okay, I said yes and maybe very loudly".chars() {
            assert!(app.on_key(key(ch)).is_empty(), "{ch:?} did something");
        }
        assert!(
            app.on_key(code(KeyCode::Enter)).is_empty(),
            "nothing chosen"
        );
        // Choosing is deliberate: → answer, → with video, Enter.
        app.on_key(code(KeyCode::Right));
        app.on_key(code(KeyCode::Right));
        assert_eq!(
            app.on_key(code(KeyCode::Enter)),
            vec![Effect::CallAnswer {
                call: "c0ffee".into(),
                video: true,
                anyway: false
            }]
        );
        // ← from nothing chosen is decline.
        app.choice = None;
        app.on_key(code(KeyCode::Left));
        assert_eq!(
            app.on_key(code(KeyCode::Enter)),
            vec![Effect::CallDecline("c0ffee".into())]
        );
        // Put away, the chat takes keys again; a new ring brings it back.
        app.on_key(code(KeyCode::Esc));
        assert!(!app.call_shown());
        app.set_calls(vec![]);
        app.set_calls(vec![incoming(&target)]);
        assert!(app.call_shown());
        assert_eq!(app.choice, None);
    }

    #[test]
    fn a_compromised_contacts_call_needs_ctrl_a_after_the_choice() {
        let mut app = App::new();
        let c = contact("compromised");
        let target = c.id.to_string();
        app.set_contacts(vec![c]);
        app.set_calls(vec![incoming(&target)]);
        app.on_key(code(KeyCode::Right));
        assert!(
            app.on_key(code(KeyCode::Enter)).is_empty(),
            "Enter alone does not answer"
        );
        assert!(app.confirm_answer);
        assert!(app.on_key(key('y')).is_empty());
        assert_eq!(
            app.on_key(KeyEvent::new(KeyCode::Char('a'), KeyModifiers::CONTROL)),
            vec![Effect::CallAnswer {
                call: "c0ffee".into(),
                video: false,
                anyway: true
            }]
        );
    }
}
