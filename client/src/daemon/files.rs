//! File transfer beside the sync: every stream on a link after the sync
//! stream is one file request (frames: `node_core::sync::file_msg`). A
//! request names a file and up to [`MAX_REQUEST`] chunks; the answer gives
//! each chunk (in pieces that fit a frame) or says it is not here. A fetcher asks every connected device
//! that may hold a file for a share of its missing chunks, checks each chunk
//! against the offer before it is written, and drops a source that sends a
//! bad one.

use super::Daemon;
use anyhow::{Context, Result, bail};
use node_core::files::{FileOffer, MAX_CHUNK};
use node_core::sync::View;
use node_core::sync::file_msg::{ChunkHead, FileRequest, MAX_REQUEST, PIECE};
use node_core::transport::{FrameReader, FrameWriter, Link};
use node_core::{DeviceId, EventId, LogId};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// Requests in flight per file and source (pipelining hides round trips).
const IN_FLIGHT: usize = 4;
/// How long a device that sent a bad chunk is not asked again for that file.
const BAD_SOURCE_PAUSE: Duration = Duration::from_secs(300);
/// How long a device that had none of the chunks asked for is left alone
/// for that file.
const LACKING_PAUSE: Duration = Duration::from_secs(10);
/// How long one request may take.
const REQUEST_LIMIT: Duration = Duration::from_secs(120);
/// File requests a peer may have served at once on one link.
const SERVING_PER_LINK: usize = 4;
/// How often the fetcher looks for work without being woken.
const FETCH_EVERY: Duration = Duration::from_secs(2);

/// Aborts a task when dropped (tasks tied to a link's life).
pub(super) struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the fetcher keeps between rounds.
#[derive(Debug, Default)]
pub(super) struct FetchState {
    /// Requests in flight per (file, source), with their chunks.
    busy: HashMap<(EventId, DeviceId), Vec<Vec<u32>>>,
    /// Sources that sent a bad chunk, and when.
    bad: HashMap<(EventId, DeviceId), Instant>,
    /// Sources that had none of the chunks asked for, and when.
    lacking: HashMap<(EventId, DeviceId), Instant>,
}

/// Serves the file requests a peer opens on `link` until it closes.
pub(super) async fn serve_streams(d: Arc<Daemon>, link: Link) {
    // A peer that asks and does not read holds at most this many requests'
    // chunks in memory.
    let serving = Arc::new(tokio::sync::Semaphore::new(SERVING_PER_LINK));
    while let Ok((writer, reader)) = link.accept().await {
        let Ok(permit) = Arc::clone(&serving).acquire_owned().await else {
            return;
        };
        let d2 = Arc::clone(&d);
        let peer = link.peer();
        // In the daemon's task set: it ends when the daemon stops.
        d.spawn(async move {
            if let Err(e) = serve_one(&d2, peer, writer, reader).await {
                debug!(peer = %peer.short(8), error = %format!("{e:#}"), "file request failed");
            }
            drop(permit);
        });
    }
}

async fn serve_one(
    d: &Daemon,
    peer: DeviceId,
    mut writer: FrameWriter,
    mut reader: FrameReader,
) -> Result<()> {
    let frame = reader.recv().await?.context("no request")?;
    let FileRequest { file: id, chunks } = FileRequest::decode(&frame)?;
    let (offer, files) = {
        let node = d.node.lock().await;
        let Some((log, offer)) = node.file_offer(id).await? else {
            bail!("unknown file");
        };
        // Only to devices that may read the conversation it is in.
        let account = node.account_of_device(&peer).context("unknown device")?;
        if !node.entitled(account, peer, &log) || node.is_deleted(log, &id) {
            bail!("not entitled to that file");
        }
        (offer, node.file_store())
    };
    for i in chunks {
        match files.read_chunk_to_serve(id, &offer, i).await {
            Ok(Some(mut data)) => {
                if d.corrupt_served
                    && let Some(b) = data.first_mut()
                {
                    *b ^= 1;
                }
                let head = ChunkHead::Chunk {
                    index: i,
                    len: data.len() as u32,
                };
                let mut frames = vec![head.encode()];
                frames.extend(data.chunks(PIECE).map(<[u8]>::to_vec));
                writer.send_many(&frames).await?;
            }
            Ok(None) => writer.send(&ChunkHead::NotHere(i).encode()).await?,
            Err(e) => {
                warn!(file = %id.short(8), error = %e, "cannot read a chunk to serve");
                writer.send(&ChunkHead::NotHere(i).encode()).await?;
            }
        }
    }
    writer.finish();
    Ok(())
}

/// Fetches missing chunks of the files this device should hold, from
/// every connected device that may hold them, until the daemon stops.
pub(super) async fn fetch_loop(d: Arc<Daemon>) {
    loop {
        if let Err(e) = fetch_round(&d).await {
            debug!(error = %format!("{e:#}"), "file fetch round failed");
        }
        let _ = tokio::time::timeout(FETCH_EVERY, d.files_notify.notified()).await;
    }
}

async fn fetch_round(d: &Arc<Daemon>) -> Result<()> {
    let (wanted, files, sources) = {
        let node = d.node.lock().await;
        let limit = node.auto_fetch_setting().unwrap_or(d.auto_fetch_limit);
        let asked = d
            .wanted_files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let wanted = node.files_to_fetch(limit, &asked).await?;
        let links: Vec<Link> = d
            .open_links
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(l, _)| l.clone())
            .collect();
        // Per log, the links to devices that may hold it.
        let mut sources: HashMap<LogId, Vec<Link>> = HashMap::new();
        for (_, log, _) in &wanted {
            let ok: Vec<Link> = links
                .iter()
                .filter(|l| {
                    node.account_of_device(&l.peer())
                        .is_some_and(|a| node.entitled(a, l.peer(), log))
                })
                .cloned()
                .collect();
            sources.insert(*log, ok);
        }
        (wanted, node.file_store(), sources)
    };
    for (id, log, offer) in wanted {
        let missing = files.missing(id, &offer).await?;
        if missing.is_empty() {
            continue;
        }
        let now = Instant::now();
        // Free request slots per usable source, and chunks already asked for.
        let (slots, asked): (Vec<(Link, usize)>, HashSet<u32>) = {
            let mut st = d.fetch.lock().unwrap_or_else(|p| p.into_inner());
            st.bad
                .retain(|_, t| now.duration_since(*t) < BAD_SOURCE_PAUSE);
            st.lacking
                .retain(|_, t| now.duration_since(*t) < LACKING_PAUSE);
            let asked = st
                .busy
                .iter()
                .filter(|((f, _), _)| *f == id)
                .flat_map(|(_, reqs)| reqs.iter().flatten().copied())
                .collect();
            let slots = sources
                .get(&log)
                .into_iter()
                .flatten()
                .filter(|l| {
                    !st.bad.contains_key(&(id, l.peer()))
                        && !st.lacking.contains_key(&(id, l.peer()))
                })
                .map(|l| {
                    let used = st.busy.get(&(id, l.peer())).map_or(0, Vec::len);
                    (l.clone(), IN_FLIGHT.saturating_sub(used))
                })
                .filter(|(_, free)| *free > 0)
                .collect();
            (slots, asked)
        };
        if slots.is_empty() {
            continue;
        }
        // Requests of missing chunks not yet asked for, dealt round-robin.
        let mut todo = missing.into_iter().filter(|c| !asked.contains(c));
        let mut requests: Vec<(Link, Vec<u32>)> = Vec::new();
        'deal: for round in 0..IN_FLIGHT {
            for (link, free) in &slots {
                if round >= *free {
                    continue;
                }
                let share: Vec<u32> = todo.by_ref().take(MAX_REQUEST).collect();
                if share.is_empty() {
                    break 'deal;
                }
                requests.push((link.clone(), share));
            }
        }
        for (link, share) in requests {
            let peer = link.peer();
            d.fetch
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .busy
                .entry((id, peer))
                .or_default()
                .push(share.clone());
            let (daemon, files, offer) = (d, files.clone(), offer.clone());
            let d = Arc::clone(d);
            daemon.spawn(async move {
                let result = tokio::time::timeout(
                    REQUEST_LIMIT,
                    fetch_from(&link, &files, id, &offer, &share),
                )
                .await
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the request timed out")));
                let mut st = d.fetch.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(reqs) = st.busy.get_mut(&(id, peer)) {
                    reqs.retain(|r| *r != share);
                    if reqs.is_empty() {
                        st.busy.remove(&(id, peer));
                    }
                }
                let progress = !matches!(result, Ok((_, 0)));
                match result {
                    Ok((true, _)) => {
                        info!(file = %id.short(8), name = %offer.name, "file complete");
                    }
                    Ok((false, 0)) => {
                        st.lacking.insert((id, peer), Instant::now());
                    }
                    Ok((false, _)) => {}
                    Err(e) => {
                        if e.downcast_ref::<BadChunk>().is_some() {
                            warn!(
                                peer = %peer.short(8),
                                file = %id.short(8),
                                "device served a corrupted chunk; fetching it elsewhere"
                            );
                            st.bad.insert((id, peer), Instant::now());
                            d.bad_chunks
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        } else if matches!(
                            e.downcast_ref::<node_core::files::FileError>(),
                            Some(node_core::files::FileError::Io { .. })
                        ) {
                            // Here, not the peer: disk full, permissions.
                            warn!(file = %id.short(8), error = %format!("{e:#}"), "cannot store a received chunk (retrying)");
                        } else {
                            debug!(peer = %peer.short(8), error = %format!("{e:#}"), "file fetch failed");
                        }
                    }
                }
                drop(st);
                // More to do, or another source to try.
                if progress {
                    d.files_wake();
                }
            });
        }
    }
    files.flush().await?;
    Ok(())
}

/// A chunk did not match the offer.
#[derive(Debug, thiserror::Error)]
#[error("chunk {0} does not match the offer")]
struct BadChunk(u32);

/// Asks `link`'s device for `chunks`; writes what it sends. Returns
/// whether the file is complete and how many chunks came.
async fn fetch_from(
    link: &Link,
    files: &node_core::files::FileStore,
    id: EventId,
    offer: &FileOffer,
    chunks: &[u32],
) -> Result<(bool, usize)> {
    let (mut writer, mut reader) = link.open().await?;
    let req = FileRequest {
        file: id,
        chunks: chunks.to_vec(),
    };
    writer.send(&req.encode()).await?;
    writer.finish();
    let mut complete = false;
    let mut got = 0usize;
    let wanted: HashSet<u32> = chunks.iter().copied().collect();
    while let Some(frame) = reader.recv().await? {
        let (i, len) = match ChunkHead::decode(&frame)? {
            ChunkHead::NotHere(_) => continue,
            ChunkHead::Chunk { index, len } => (index, len as usize),
        };
        if !wanted.contains(&i) || i >= offer.chunk_count() || len != offer.chunk_len(i) {
            return Err(BadChunk(i).into());
        }
        debug_assert!(len <= MAX_CHUNK as usize);
        let mut data = Vec::with_capacity(len);
        while data.len() < len {
            let piece = reader.recv().await?.context("the chunk was cut short")?;
            if data.len() + piece.len() > len {
                return Err(BadChunk(i).into());
            }
            data.extend_from_slice(&piece);
        }
        match files.write_chunk(id, offer, i, data).await {
            Ok(done) => {
                complete |= done;
                got += 1;
            }
            Err(node_core::files::FileError::BadChunk(i)) => return Err(BadChunk(i).into()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok((complete, got))
}
