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
    /// Contact requests waiting for an answer.
    Requests,
    /// Name a new room.
    NewRoom,
    /// Paste a room's link to join it.
    JoinRoom,
    /// The selected room's members, their roles, and what those with
    /// power may do.
    Members,
    /// Choose a contact to invite to the selected room.
    InviteMember,
    /// Events of the selected room held as arrived late.
    Held,
    /// Type the path of a file to send.
    SendFile,
    /// The conversation's files, with their progress.
    Files,
    /// Type where to save the selected file.
    SaveFile,
    /// Find messages in the conversation.
    Search,
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
    /// Fetch the contact requests (the Requests screen opened).
    FetchRequests,
    /// Answer a contact request.
    AnswerRequest {
        /// The requesting account's id.
        id: String,
        /// `accept`, `decline` or `block`.
        answer: &'static str,
    },
    /// Make a room.
    RoomCreate {
        /// Its name.
        name: String,
        /// Anyone with the link may join.
        public: bool,
    },
    /// Join a room from its link.
    RoomJoin(String),
    /// Invite a contact to a room.
    RoomInvite {
        /// Room id.
        room: String,
        /// Contact id.
        contact: String,
    },
    /// Fetch a room's link (shown on the members screen).
    RoomLink(String),
    /// Change a member's role.
    RoomRole {
        /// Room id.
        room: String,
        /// The member's account.
        account: String,
        /// `admin`, `moderator` or `member`.
        role: &'static str,
    },
    /// Remove (or ban) a member.
    RoomKick {
        /// Room id.
        room: String,
        /// The member's account.
        account: String,
        /// Ban too.
        ban: bool,
    },
    /// Leave a room.
    RoomLeave(String),
    /// Release an event held as arrived late.
    RoomConfirm {
        /// Room id.
        room: String,
        /// Event id.
        event: String,
    },
    /// Offer a file.
    FileSend {
        /// Contact or room id.
        to: String,
        /// Absolute path.
        path: String,
    },
    /// Fetch a file's content.
    FileFetch(String),
    /// Write a complete file out.
    FileSave {
        /// File id.
        id: String,
        /// Absolute destination.
        dest: String,
    },
    /// Find messages.
    Search {
        /// Contact or room id.
        target: String,
        /// The text.
        text: String,
    },
    /// Mute or unmute a conversation's notifications.
    Mute {
        /// Contact or room id.
        target: String,
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

/// One row of the conversation list: a contact or a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// The contact's account id or the room's id.
    pub id: String,
    /// As shown (a room's with `#` before it).
    pub name: String,
    /// Messages not read yet.
    pub unread: usize,
    /// Its notifications are muted.
    pub muted: bool,
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
    /// Contact requests waiting.
    pub requests: Vec<kith_client::RequestInfo>,
    /// Selected request.
    pub request_selected: usize,
    /// How many requests wait (from the status, off the Requests screen).
    pub request_count: u64,
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
    /// Rooms, in the order shown (after the contacts).
    pub rooms: Vec<node_core::node::rooms::RoomInfo>,
    /// The selected room's members.
    pub members: Vec<node_core::node::rooms::MemberInfo>,
    /// Selected member (Members screen) or contact (InviteMember).
    pub member_selected: usize,
    /// The selected room's held events (Held screen).
    pub held: Vec<node_core::node::rooms::HeldInfo>,
    /// Selected held event.
    pub held_selected: usize,
    /// The selected room's link, once asked for.
    pub room_link: Option<String>,
    /// What waits for `y` on the members screen: the room, the member's
    /// account (empty for `leave`) and what (`kick`, `ban`, `leave`, or
    /// the role to give), all fixed when the key was pressed.
    pub confirm_member: Option<(String, String, &'static str)>,
    /// The held event (room, event id) waiting for `y` to be released.
    pub confirm_held: Option<(String, String)>,
    /// The file (id) the save prompt is for, fixed when it opened.
    pub save_id: Option<String>,
    /// When each conversation was last marked read (a conversation on
    /// screen is marked at most every few seconds).
    pub marked: std::collections::HashMap<String, std::time::Instant>,
    /// What is typed into a prompt (room name, link, path, search), apart
    /// from the message being written.
    pub field: String,
    /// The new room is public.
    pub public_room: bool,
    /// Selected file (Files screen).
    pub file_selected: usize,
    /// Messages found by the last search.
    pub found: Option<Vec<MessageInfo>>,
    /// Unread counts per conversation, as last seen (for notifications).
    pub seen_unread: std::collections::HashMap<String, usize>,
    /// Notifications to show: (title, body).
    pub notifications: Vec<(String, String)>,
    /// Set when the user quits.
    pub quit: bool,
    /// Set when the user quits and asks the daemon to stop too (Ctrl-X).
    pub stop_daemon: bool,
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
            requests: Vec::new(),
            request_selected: 0,
            request_count: 0,
            confirm_revoke: None,
            invite: None,
            calls: Vec::new(),
            call_hidden: false,
            confirm_answer: false,
            moving: false,
            choice: None,
            rooms: Vec::new(),
            members: Vec::new(),
            member_selected: 0,
            held: Vec::new(),
            held_selected: 0,
            room_link: None,
            confirm_member: None,
            confirm_held: None,
            save_id: None,
            marked: Default::default(),
            field: String::new(),
            public_room: false,
            file_selected: 0,
            found: None,
            seen_unread: Default::default(),
            notifications: Vec::new(),
            quit: false,
            stop_daemon: false,
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

    /// The selected contact (none when a room is selected).
    pub fn current(&self) -> Option<&ContactInfo> {
        self.contacts.get(self.selected)
    }

    /// What to say when a key needs a contact and none is selected.
    fn no_contact_here(&self) -> &'static str {
        if self.current_room().is_some() {
            "that works with a contact: select one above the rooms"
        } else {
            "add a contact first (Ctrl-N)"
        }
    }

    /// The selected room (rooms come after the contacts).
    pub fn current_room(&self) -> Option<&node_core::node::rooms::RoomInfo> {
        self.selected
            .checked_sub(self.contacts.len())
            .and_then(|i| self.rooms.get(i))
    }

    /// Row `i` of the conversation list (contacts, then rooms), whichever
    /// kind it is.
    pub fn conversation(&self, i: usize) -> Option<Conversation> {
        match self.contacts.get(i) {
            Some(c) => Some(Conversation {
                id: c.id.to_string(),
                name: Self::name_of(c),
                unread: c.unread,
                muted: c.muted,
            }),
            None => {
                let r = self.rooms.get(i.checked_sub(self.contacts.len())?)?;
                Some(Conversation {
                    id: r.id.to_string(),
                    name: format!("#{}", Self::room_name(r)),
                    unread: r.unread,
                    muted: r.muted,
                })
            }
        }
    }

    /// The selected conversation's id (a contact's or a room's), as the
    /// daemon takes it.
    pub fn current_target(&self) -> Option<String> {
        self.conversation(self.selected).map(|c| c.id)
    }

    /// Conversations in the list: contacts, then rooms.
    pub fn conversations(&self) -> usize {
        self.contacts.len() + self.rooms.len()
    }

    /// Display name of a room.
    pub fn room_name(r: &node_core::node::rooms::RoomInfo) -> String {
        let name = if r.name.is_empty() {
            r.id.short(12)
        } else {
            r.name.clone()
        };
        crate::display::terminal_safe(&name).into_owned()
    }

    /// Keeps the selection on conversation `keep` (by id) if it is still
    /// listed.
    fn reselect(&mut self, keep: Option<String>) {
        let at = keep.as_ref().and_then(|id| {
            self.contacts
                .iter()
                .position(|c| c.id.to_string() == *id)
                .or_else(|| {
                    self.rooms
                        .iter()
                        .position(|r| r.id.to_string() == *id)
                        .map(|i| i + self.contacts.len())
                })
        });
        if keep.is_some() && at.is_none() {
            // The conversation on screen went (a room one was removed
            // from, a contact deleted): what was typed or waiting for `y`
            // was meant for it, not for whatever now sits in its place.
            self.input.clear();
            self.field.clear();
            self.confirm_member = None;
            self.confirm_held = None;
            self.save_id = None;
            self.messages.clear();
            self.files.clear();
            self.members.clear();
            self.held.clear();
            if !matches!(
                self.screen,
                Screen::AddContact | Screen::MyCard | Screen::Devices | Screen::Requests
            ) {
                self.screen = Screen::Chat;
            }
            self.notice = Some((
                "the conversation you had open is gone (left, or removed from the room)".into(),
                true,
            ));
        }
        self.selected = at
            .unwrap_or(self.selected)
            .min(self.conversations().saturating_sub(1));
    }

    /// New member list of the selected room: the selection stays on the
    /// same account (a member joining must not slide under the key
    /// press), on the invite screen on the same contact.
    pub fn set_members(&mut self, members: Vec<node_core::node::rooms::MemberInfo>) {
        let keep = self.selected_person();
        self.members = members;
        self.reselect_person(keep);
    }

    /// The account the members or invite screen has selected.
    fn selected_person(&self) -> Option<node_core::AccountId> {
        match self.screen {
            Screen::Members => self.members.get(self.member_selected).map(|m| m.account),
            Screen::InviteMember => self.invitable().get(self.member_selected).map(|c| c.id),
            _ => None,
        }
    }

    fn reselect_person(&mut self, keep: Option<node_core::AccountId>) {
        let (at, len) = match self.screen {
            Screen::Members => (
                keep.and_then(|a| self.members.iter().position(|m| m.account == a)),
                self.members.len(),
            ),
            Screen::InviteMember => {
                let people = self.invitable();
                (
                    keep.and_then(|a| people.iter().position(|c| c.id == a)),
                    people.len(),
                )
            }
            _ => return,
        };
        self.member_selected = at
            .unwrap_or(self.member_selected)
            .min(len.saturating_sub(1));
    }

    /// New list of held events: the selection stays on the same event (a
    /// new one placed before it must not slide under the key press).
    pub fn set_held(&mut self, held: Vec<node_core::node::rooms::HeldInfo>) {
        let keep = self.held.get(self.held_selected).map(|h| h.id);
        self.held = held;
        self.held_selected = keep
            .and_then(|id| self.held.iter().position(|h| h.id == id))
            .unwrap_or(self.held_selected)
            .min(self.held.len().saturating_sub(1));
    }

    /// Whether the conversation `target` on screen may be marked read now
    /// (at most every few seconds, so a busy room does not fill the self
    /// log with read markers); notes the time if so.
    pub fn may_mark_read(&mut self, target: &str, now: std::time::Instant) -> bool {
        const EVERY: std::time::Duration = std::time::Duration::from_secs(5);
        match self.marked.get(target) {
            Some(at) if now.duration_since(*at) < EVERY => false,
            _ => {
                self.marked.insert(target.to_owned(), now);
                true
            }
        }
    }

    /// New room list from the daemon (keeps the selection on the same
    /// conversation).
    pub fn set_rooms(&mut self, mut rooms: Vec<node_core::node::rooms::RoomInfo>) {
        let keep = self.current_target();
        // Rooms left or banned from are not conversations any more.
        rooms.retain(|r| matches!(r.membership.as_str(), "join" | "invite" | "unknown"));
        rooms.sort_by_key(|r| Self::room_name(r).to_lowercase());
        self.rooms = rooms;
        self.reselect(keep);
        self.note_unread();
    }

    /// Compares unread counts with the last ones seen: a conversation
    /// that gained unread messages, is not muted and is not the one on
    /// screen gets a notification (naming who, never what they wrote: a
    /// desktop notification may show on a locked screen).
    fn note_unread(&mut self) {
        let on_screen = (self.screen == Screen::Chat)
            .then(|| self.current_target())
            .flatten();
        let now: Vec<Conversation> = (0..self.conversations())
            .filter_map(|i| self.conversation(i))
            .collect();
        let first = self.seen_unread.is_empty();
        for c in now {
            let before = self.seen_unread.insert(c.id.clone(), c.unread);
            let grew = before.map_or(!first && c.unread > 0, |b| c.unread > b);
            if grew && !c.muted && on_screen.as_deref() != Some(c.id.as_str()) {
                self.notifications.push((
                    "kith".to_owned(),
                    format!("{} new message(s) from {}", c.unread, c.name),
                ));
            }
        }
    }

    /// Display name of a contact: alias, else its card's name.
    pub fn name_of(c: &ContactInfo) -> String {
        let name = c.alias.as_deref().unwrap_or(&c.name);
        crate::display::terminal_safe(name).into_owned()
    }

    /// New contact list from the daemon (keeps the selection on the same
    /// contact).
    pub fn set_contacts(&mut self, mut contacts: Vec<ContactInfo>) {
        let keep = self.current_target();
        let person = self.selected_person();
        contacts.sort_by_key(|c| Self::name_of(c).to_lowercase());
        self.contacts = contacts;
        self.reselect(keep);
        self.reselect_person(person);
        self.note_unread();
    }

    /// Handles a key; returns what to ask the daemon.
    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(key.code, KeyCode::Char('q') | KeyCode::Char('c')) {
            self.quit = true;
            return vec![];
        }
        // Quit and stop the daemon (which otherwise keeps running, so
        // messages and calls still arrive).
        if ctrl && key.code == KeyCode::Char('x') {
            self.quit = true;
            self.stop_daemon = true;
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
            Screen::Requests => self.requests_key(key),
            Screen::NewRoom
            | Screen::JoinRoom
            | Screen::SendFile
            | Screen::SaveFile
            | Screen::Search => self.prompt_key(key),
            Screen::Members => self.members_key(key),
            Screen::InviteMember => self.invite_key(key),
            Screen::Held => self.held_key(key),
            Screen::Files => self.files_key(key),
        }
    }

    /// Text pasted into the terminal (bracketed paste).
    pub fn on_paste(&mut self, text: &str) {
        let text = text.trim_end_matches(['\r', '\n']);
        match self.screen {
            Screen::Chat | Screen::AddContact => self.input.push_str(text),
            Screen::NewRoom
            | Screen::JoinRoom
            | Screen::SendFile
            | Screen::SaveFile
            | Screen::Search => self.field.push_str(text),
            _ => {}
        }
    }

    /// Opens a prompt screen with `field` in it.
    fn prompt(&mut self, screen: Screen, field: String) -> Vec<Effect> {
        self.screen = screen;
        self.field = field;
        vec![]
    }

    /// A key on a prompt screen: typing edits the field, Enter does what
    /// the screen is for, Esc goes back.
    fn prompt_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        match key.code {
            KeyCode::Esc => {
                self.screen = if self.screen == Screen::SaveFile {
                    Screen::Files
                } else {
                    Screen::Chat
                };
                self.field.clear();
                self.found = None;
                vec![]
            }
            KeyCode::Tab if self.screen == Screen::NewRoom => {
                self.public_room = !self.public_room;
                vec![]
            }
            KeyCode::Backspace => {
                self.field.pop();
                vec![]
            }
            KeyCode::Char(ch) => {
                self.field.push(ch);
                vec![]
            }
            KeyCode::Enter => {
                let text = self.field.trim().to_owned();
                if text.is_empty() {
                    return vec![];
                }
                let target = self.current_target();
                match self.screen {
                    Screen::NewRoom => {
                        self.screen = Screen::Chat;
                        self.field.clear();
                        vec![Effect::RoomCreate {
                            name: text,
                            public: self.public_room,
                        }]
                    }
                    Screen::JoinRoom => {
                        self.screen = Screen::Chat;
                        self.field.clear();
                        vec![Effect::RoomJoin(text)]
                    }
                    Screen::SendFile => match target {
                        Some(to) => {
                            self.screen = Screen::Chat;
                            self.field.clear();
                            vec![Effect::FileSend {
                                to,
                                path: absolute(&text),
                            }]
                        }
                        None => vec![],
                    },
                    Screen::SaveFile => match self.save_id.take() {
                        Some(id) => {
                            self.screen = Screen::Files;
                            self.field.clear();
                            vec![Effect::FileSave {
                                id,
                                dest: absolute(&text),
                            }]
                        }
                        None => vec![],
                    },
                    Screen::Search => match target {
                        Some(target) => vec![Effect::Search { target, text }],
                        None => vec![],
                    },
                    _ => vec![],
                }
            }
            _ => vec![],
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
                        self.notice = Some((self.no_contact_here().into(), true));
                        vec![]
                    }
                },
                KeyCode::Char('r') => {
                    self.screen = Screen::Requests;
                    self.request_selected = 0;
                    vec![Effect::FetchRequests]
                }
                KeyCode::Char('d') => {
                    self.screen = Screen::Devices;
                    self.confirm_revoke = None;
                    vec![Effect::FetchDevices]
                }
                KeyCode::Char('g') => {
                    self.public_room = false;
                    self.prompt(Screen::NewRoom, String::new())
                }
                KeyCode::Char('l') => self.prompt(Screen::JoinRoom, String::new()),
                KeyCode::Char('t') => match self.current_room() {
                    Some(r) => {
                        let room = r.id.to_string();
                        self.screen = Screen::Members;
                        self.member_selected = 0;
                        self.confirm_member = None;
                        self.room_link = None;
                        vec![Effect::RoomLink(room)]
                    }
                    None => {
                        self.notice = Some(("select a room first".into(), true));
                        vec![]
                    }
                },
                KeyCode::Char('u') if self.current_target().is_some() => {
                    self.prompt(Screen::SendFile, String::new())
                }
                KeyCode::Char('e') if self.current_target().is_some() => {
                    self.screen = Screen::Files;
                    self.file_selected = 0;
                    vec![]
                }
                KeyCode::Char('f') if self.current_target().is_some() => {
                    self.found = None;
                    self.prompt(Screen::Search, String::new())
                }
                KeyCode::Char('p') => match self.conversation(self.selected) {
                    Some(c) => vec![Effect::Mute {
                        target: c.id,
                        on: !c.muted,
                    }],
                    None => vec![],
                },
                KeyCode::Char('u' | 'e' | 'f') => {
                    self.notice = Some(("add a contact or join a room first".into(), true));
                    vec![]
                }
                // A call going on: back to its screen; else ring the
                // selected contact.
                KeyCode::Char('k') if self.live_call().is_some() => {
                    self.call_hidden = false;
                    vec![]
                }
                KeyCode::Char('k') => match self
                    .current()
                    .map(|c| c.id.to_string())
                    .or_else(|| self.current_room().map(|r| r.id.to_string()))
                {
                    Some(to) => {
                        self.call_hidden = false;
                        vec![Effect::CallStart { to, video: false }]
                    }
                    None => {
                        self.notice = Some((self.no_contact_here().into(), true));
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
                match self.current_target() {
                    Some(to) if !text.is_empty() => {
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
        if self.conversations() == 0 {
            return vec![];
        }
        let index = index.min(self.conversations() - 1);
        if index != self.selected {
            self.messages.clear();
            self.files.clear();
            self.members.clear();
        }
        self.selected = index;
        vec![]
    }

    /// Members screen: ↑↓, invite, roles, kick/ban (confirmed), the
    /// held events, leave (confirmed).
    fn members_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let Some(room) = self.current_room().map(|r| r.id.to_string()) else {
            self.screen = Screen::Chat;
            return vec![];
        };
        if let Some((room, account, what)) = self.confirm_member.take() {
            if key.code != KeyCode::Char('y') {
                self.notice = Some(("nothing done".into(), false));
                return vec![];
            }
            return match what {
                "leave" => {
                    self.screen = Screen::Chat;
                    vec![Effect::RoomLeave(room)]
                }
                "kick" | "ban" => vec![Effect::RoomKick {
                    room,
                    account,
                    ban: what == "ban",
                }],
                role => vec![Effect::RoomRole {
                    room,
                    account,
                    role,
                }],
            };
        }
        let member = self
            .members
            .get(self.member_selected)
            .map(|m| (m.account.to_string(), Self::member_name(self, m)));
        let me = self.status.as_ref().map(|s| s.account.clone());
        let name = member.as_ref().map(|m| m.1.clone()).unwrap_or_default();
        // Every change to a member waits for `y`, naming whom.
        let confirm = |app: &mut Self, what: &'static str, ask: String| {
            if let Some((account, _)) = &member {
                app.notice = Some((format!("{ask} (y to confirm)"), true));
                app.confirm_member = Some((room.clone(), account.clone(), what));
            }
            vec![]
        };
        if step(&mut self.member_selected, self.members.len(), key.code) {
            return vec![];
        }
        match key.code {
            KeyCode::Esc => {
                self.screen = Screen::Chat;
                vec![]
            }
            KeyCode::Char('i') => {
                self.screen = Screen::InviteMember;
                self.member_selected = 0;
                vec![]
            }
            KeyCode::Char('a') => {
                confirm(self, "admin", format!("make {name} an admin (all powers)?"))
            }
            KeyCode::Char('m') => confirm(self, "moderator", format!("make {name} a moderator?")),
            KeyCode::Char('u') => confirm(self, "member", format!("make {name} a plain member?")),
            KeyCode::Char('k' | 'b') if member.as_ref().map(|m| &m.0) == me.as_ref() => {
                self.notice = Some(("to leave the room, press x".into(), true));
                vec![]
            }
            KeyCode::Char('k') => confirm(self, "kick", format!("remove {name}?")),
            KeyCode::Char('b') => confirm(self, "ban", format!("ban {name}?")),
            KeyCode::Char('x') => {
                self.notice = Some((
                    "leave this room on all your devices? (y to confirm)".into(),
                    true,
                ));
                self.confirm_member = Some((room, String::new(), "leave"));
                vec![]
            }
            KeyCode::Char('h') => {
                self.screen = Screen::Held;
                self.held_selected = 0;
                vec![]
            }
            _ => vec![],
        }
    }

    /// A member's name as shown: "me", a contact's name, else the account
    /// id in short.
    pub fn member_name(&self, m: &node_core::node::rooms::MemberInfo) -> String {
        if self
            .status
            .as_ref()
            .is_some_and(|s| s.account == m.account.to_string())
        {
            return "me".into();
        }
        match &m.name {
            Some(n) => crate::display::terminal_safe(n).into_owned(),
            None => m.account.short(12),
        }
    }

    /// The author of a message as shown: "me", the contact's name, else a
    /// room member's name, else the account id in short.
    pub fn author_name(&self, author: &node_core::AccountId) -> String {
        let id = author.to_string();
        if self.status.as_ref().is_some_and(|s| s.account == id) {
            return "me".into();
        }
        if let Some(c) = self.contacts.iter().find(|c| c.id == *author) {
            return Self::name_of(c);
        }
        match self.members.iter().find(|m| m.account == *author) {
            Some(m) => self.member_name(m),
            None => author.short(12),
        }
    }

    /// The contacts not in the selected room yet (whom one may invite).
    pub fn invitable(&self) -> Vec<&ContactInfo> {
        self.contacts
            .iter()
            .filter(|c| !self.members.iter().any(|m| m.account == c.id))
            .collect()
    }

    fn invite_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let count = self.invitable().len();
        if step(&mut self.member_selected, count, key.code) {
            return vec![];
        }
        match key.code {
            KeyCode::Esc => {
                self.screen = Screen::Members;
                self.member_selected = 0;
                vec![]
            }
            KeyCode::Enter => {
                let contact = self
                    .invitable()
                    .get(self.member_selected)
                    .map(|c| c.id.to_string());
                match (self.current_room().map(|r| r.id.to_string()), contact) {
                    (Some(room), Some(contact)) => {
                        self.screen = Screen::Members;
                        self.member_selected = 0;
                        vec![Effect::RoomInvite { room, contact }]
                    }
                    _ => vec![],
                }
            }
            _ => vec![],
        }
    }

    fn held_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if let Some((room, event)) = self.confirm_held.take() {
            if key.code == KeyCode::Char('y') {
                return vec![Effect::RoomConfirm { room, event }];
            }
            self.notice = Some(("nothing released".into(), false));
            return vec![];
        }
        if step(&mut self.held_selected, self.held.len(), key.code) {
            return vec![];
        }
        match key.code {
            KeyCode::Esc => {
                self.screen = Screen::Members;
                vec![]
            }
            KeyCode::Char('c') => {
                match (
                    self.current_room().map(|r| r.id.to_string()),
                    self.held.get(self.held_selected),
                ) {
                    (Some(room), Some(h)) => {
                        let event = h.id.to_string();
                        self.notice = Some((
                            format!(
                                "release {} ({} by {})? It is then shown where it was placed (y to confirm)",
                                h.id.short(12),
                                h.kind,
                                self.author_name(&h.author)
                            ),
                            true,
                        ));
                        self.confirm_held = Some((room, event));
                        vec![]
                    }
                    _ => vec![],
                }
            }
            _ => vec![],
        }
    }

    fn files_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if step(&mut self.file_selected, self.files.len(), key.code) {
            return vec![];
        }
        let file = self.files.get(self.file_selected);
        match key.code {
            KeyCode::Esc => {
                self.screen = Screen::Chat;
                vec![]
            }
            KeyCode::Char('f') => match file {
                Some(f) if f.state != "complete" => vec![Effect::FileFetch(f.id.to_string())],
                _ => vec![],
            },
            KeyCode::Char('s') | KeyCode::Enter => match file {
                Some(f) if f.state == "complete" => {
                    let name = save_name(&f.name, &f.id.short(12));
                    self.save_id = Some(f.id.to_string());
                    let dir = std::env::current_dir().unwrap_or_default();
                    let dest = dir.join(name).display().to_string();
                    self.prompt(Screen::SaveFile, dest)
                }
                Some(_) => {
                    self.notice = Some((
                        "not here yet: f fetches it, then it can be saved".into(),
                        true,
                    ));
                    vec![]
                }
                None => vec![],
            },
            _ => vec![],
        }
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

    /// New request list from the daemon: the selection stays on the same
    /// request (a new one arriving must not slide under the key press).
    pub fn set_requests(&mut self, requests: Vec<kith_client::RequestInfo>) {
        let keep = self.requests.get(self.request_selected).map(|r| r.id);
        self.requests = requests;
        self.request_count = self.requests.len() as u64;
        self.request_selected = keep
            .and_then(|id| self.requests.iter().position(|r| r.id == id))
            .unwrap_or(0)
            .min(self.requests.len().saturating_sub(1));
    }

    fn requests_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if step(&mut self.request_selected, self.requests.len(), key.code) {
            return vec![];
        }
        let answer = match key.code {
            KeyCode::Esc => {
                self.screen = Screen::Chat;
                return vec![];
            }
            KeyCode::Char('a') => "accept",
            KeyCode::Char('d') => "decline",
            KeyCode::Char('b') => "block",
            _ => return vec![],
        };
        match self.requests.get(self.request_selected) {
            Some(r) => vec![Effect::AnswerRequest {
                id: r.id.to_string(),
                answer,
            }],
            None => vec![],
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
        if step(&mut self.device_selected, self.devices.len(), key.code) {
            return vec![];
        }
        match key.code {
            KeyCode::Esc => {
                self.screen = Screen::Chat;
                self.invite = None;
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

/// ↑ and ↓ move `selected` within a list of `len` rows; true if `code`
/// was one of them.
fn step(selected: &mut usize, len: usize, code: KeyCode) -> bool {
    match code {
        KeyCode::Up => *selected = selected.saturating_sub(1),
        KeyCode::Down => *selected = (*selected + 1).min(len.saturating_sub(1)),
        _ => return false,
    }
    true
}

/// Longest file name the save prompt suggests, in characters.
const MAX_SAVE_NAME: usize = 100;

/// The name the save prompt suggests for a peer's file `name`: no
/// folders, no leading dots (no hidden files planted in the current
/// folder), no controls, bounded; `file-ID` when nothing is left.
pub fn save_name(name: &str, id: &str) -> String {
    let clean: String = crate::display::terminal_safe(name)
        .chars()
        .map(|c| {
            if matches!(c, '/' | '\\') || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let clean: String = clean
        .trim()
        .trim_start_matches('.')
        .chars()
        .take(MAX_SAVE_NAME)
        .collect();
    if clean.trim().is_empty() {
        format!("file-{id}")
    } else {
        clean
    }
}

/// A path typed by the user, made absolute (`~/` is the home folder,
/// anything else relative is from the current folder).
fn absolute(typed: &str) -> String {
    let path = match typed.strip_prefix("~/") {
        Some(rest) => match std::env::var_os("HOME") {
            Some(home) => std::path::PathBuf::from(home).join(rest),
            None => std::path::PathBuf::from(typed),
        },
        None => std::path::PathBuf::from(typed),
    };
    if path.is_absolute() {
        return path.display().to_string();
    }
    std::env::current_dir()
        .map(|d| d.join(&path))
        .unwrap_or(path)
        .display()
        .to_string()
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
