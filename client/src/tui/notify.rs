//! Notifications from the terminal UI: a desktop notification over D-Bus
//! where a session bus is there, else the terminal bell. They name who
//! wrote, never what (a desktop notification may show on a locked
//! screen); the UI's notice line shows the same words.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Desktop notifications waiting for the worker; more are dropped (the
/// notice line still shows the last).
const QUEUED: usize = 8;

/// Where notifications go.
#[derive(Debug, Clone)]
pub struct Notifier {
    /// False once D-Bus failed (or was never there): the bell from then on.
    desktop: Arc<AtomicBool>,
    /// The one worker that talks to D-Bus (none without a bus).
    queue: Option<std::sync::mpsc::SyncSender<(String, String)>>,
}

impl Default for Notifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Notifier {
    /// Desktop notifications if this session has a bus to send them on,
    /// through one worker thread (a slow bus never holds the UI).
    pub fn new() -> Self {
        let bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|a| !a.is_empty());
        let desktop = Arc::new(AtomicBool::new(bus));
        let queue = bus
            .then(|| {
                let (tx, rx) = std::sync::mpsc::sync_channel::<(String, String)>(QUEUED);
                let flag = Arc::clone(&desktop);
                std::thread::Builder::new()
                    .name("kith-notify".into())
                    .spawn(move || {
                        while let Ok((title, body)) = rx.recv() {
                            let shown = notify_rust::Notification::new()
                                .appname("kith")
                                .summary(&title)
                                .body(&body)
                                .show();
                            if shown.is_err() {
                                flag.store(false, Ordering::Relaxed);
                                return;
                            }
                        }
                    })
                    .ok()
                    .map(|_| tx)
            })
            .flatten();
        if queue.is_none() {
            desktop.store(false, Ordering::Relaxed);
        }
        Self { desktop, queue }
    }

    /// Shows one notification. Returns true if the caller must ring the
    /// bell (no desktop notifications here, or no more).
    pub fn show(&self, title: &str, body: &str) -> bool {
        let Some(queue) = self
            .queue
            .as_ref()
            .filter(|_| self.desktop.load(Ordering::Relaxed))
        else {
            return true;
        };
        // Names are peers' words: a notification server that reads markup
        // must show them as text.
        match queue.try_send((escape(title), escape(body))) {
            Ok(()) | Err(std::sync::mpsc::TrySendError::Full(_)) => false,
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => true,
        }
    }
}

/// Text with the markup characters of the notification spec escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn peer_names_reach_the_desktop_as_text_not_markup() {
        assert_eq!(
            super::escape("1 new message(s) from <a href='x'>bob</a> & co"),
            "1 new message(s) from &lt;a href=&apos;x&apos;&gt;bob&lt;/a&gt; &amp; co"
        );
    }
}
