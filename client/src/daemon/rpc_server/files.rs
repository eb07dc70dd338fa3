//! Files: offer, list, state, fetch, save, and the automatic fetch limit.

use super::{Daemon, a, answer};
use anyhow::{Context, Result};
use kith_client::answers::Id;
use node_core::node::Node;

impl Daemon {
    /// Hashes and encrypts the file without holding the node (it may be
    /// large), then writes the offer.
    pub(super) async fn file_send(&self, target: &str, path: &str) -> Result<serde_json::Value> {
        let (to, dir) = {
            let node = self.node.lock().await;
            let to = node.resolve_any(target)?;
            (to, node_core::files::files_dir(node.profile().dir()))
        };
        let path = std::path::PathBuf::from(path);
        let max = self.max_file_size;
        let prepared = tokio::task::spawn_blocking(move || {
            node_core::files::prepare(&dir, &path, max, &mut |_, _| {})
        })
        .await
        .context("preparing the file")??;
        let id = self
            .node
            .lock()
            .await
            .offer_file(to, &prepared, crate::now_ms())
            .await?;
        answer(Id { id })
    }

    /// Saves a fetched file (decrypting it) without holding the node.
    pub(super) async fn file_save(&self, id: &str, dest: String) -> Result<serde_json::Value> {
        let (id, offer, files) = {
            let node = self.node.lock().await;
            let id = find_file(&node, id).await?;
            let (_, offer) = node.file_offer(id).await?.context("no such file")?;
            (id, offer, node.file_store())
        };
        files.save(id, &offer, std::path::Path::new(&dest)).await?;
        answer(a::FileSaved { id, saved: dest })
    }

    /// Asks the fetcher for a file whatever its size.
    pub(super) async fn file_fetch(&self, node: &Node, id: &str) -> Result<serde_json::Value> {
        let id = find_file(node, id).await?;
        self.wanted_files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id);
        self.files_wake();
        answer(Id { id })
    }

    /// The automatic fetch limit, set first if `bytes` is given.
    pub(super) async fn file_sync_limit(
        &self,
        node: &mut Node,
        bytes: Option<u64>,
        now: i64,
    ) -> Result<serde_json::Value> {
        if let Some(b) = bytes {
            node.set_setting(
                node_core::node::read::SETTING_AUTO_FETCH,
                &b.to_be_bytes(),
                now,
            )
            .await?;
            self.files_wake();
        }
        let limit = node.auto_fetch_setting().unwrap_or(self.auto_fetch_limit);
        answer(a::SyncLimit { bytes: limit })
    }
}

pub(super) async fn list(node: &Node, target: &str) -> Result<serde_json::Value> {
    let log = node.target_log(node.resolve_any(target)?);
    answer(node.files(log).await?)
}

pub(super) async fn status(node: &Node, id: &str) -> Result<serde_json::Value> {
    let id = find_file(node, id).await?;
    let (log, _) = node.file_offer(id).await?.context("no such file")?;
    let info = node.files(log).await?.into_iter().find(|f| f.id == id);
    answer(info.context("no such file")?)
}

/// A file by id or unique prefix (at least four characters).
async fn find_file(node: &Node, id: &str) -> Result<node_core::EventId> {
    let want = id.trim().to_lowercase();
    let mut found = Vec::new();
    for id in node.file_ids().await? {
        if id.matches_prefix(&want) {
            found.push(id);
        }
    }
    match found.as_slice() {
        [one] => Ok(*one),
        [] => anyhow::bail!("no file {want:?}"),
        _ => anyhow::bail!("{want:?} matches several files; give more of the id"),
    }
}
