//! Frame I/O for a link: a writer task that never blocks reading, with a
//! bound on what a peer that does not read can make this device queue,
//! and a reader task (reading a frame is not cancel-safe).

use super::*;

/// Most bytes queued for a peer that does not read before the link is
/// dropped.
pub(super) const MAX_QUEUED: usize = 64 << 20;

/// Frames to send, written by their own task so that a link never stops
/// reading while it waits to write (both sides writing at once into full
/// flow-control windows would otherwise wait on each other forever).
pub(super) struct Outgoing {
    tx: tokio::sync::mpsc::UnboundedSender<Vec<Vec<u8>>>,
    queued: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Outgoing {
    pub(super) fn new(mut writer: FrameWriter) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<Vec<u8>>>();
        let queued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let q = Arc::clone(&queued);
        let task = tokio::spawn(async move {
            while let Some(frames) = rx.recv().await {
                let size: usize = frames.iter().map(Vec::len).sum();
                let result = writer.send_many(&frames).await;
                q.fetch_sub(size, std::sync::atomic::Ordering::Relaxed);
                if result.is_err() {
                    return;
                }
            }
            writer.finish();
        });
        Self { tx, queued, task }
    }

    pub(super) fn send(&self, d: &Daemon, frames: Vec<Vec<u8>>) -> Result<()> {
        let size: usize = frames.iter().map(Vec::len).sum();
        for f in &frames {
            d.count_frames(true, f.len());
        }
        let before = self
            .queued
            .fetch_add(size, std::sync::atomic::Ordering::Relaxed);
        if before + size > MAX_QUEUED {
            bail!("peer does not read: over {MAX_QUEUED} bytes queued");
        }
        self.tx
            .send(frames)
            .map_err(|_| anyhow::anyhow!("link writer stopped"))
    }
}

impl Drop for Outgoing {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads frames into `to` until the stream ends, fails, or the link's
/// driver is gone. The end of the stream is the channel's end.
pub(super) async fn read_frames(
    mut reader: FrameReader,
    to: tokio::sync::mpsc::Sender<Result<Vec<u8>, node_core::transport::TransportError>>,
) {
    loop {
        let frame = match reader.recv().await {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => return,
            Err(e) => Err(e),
        };
        let failed = frame.is_err();
        if to.send(frame).await.is_err() || failed {
            return;
        }
    }
}
