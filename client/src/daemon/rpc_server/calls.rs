//! Calls: start, answer, decline, hang up (the calls themselves run in
//! `daemon::calls`).

use super::{Daemon, a, answer};
use anyhow::Result;
use kith_client::answers::Id;
use node_core::call::machine::Command;

impl Daemon {
    /// Rings the contact's devices; the call's id once one rings.
    pub(super) async fn call_start(
        self: &std::sync::Arc<Self>,
        target: &str,
        video: bool,
        files: [Option<String>; 4],
    ) -> Result<serde_json::Value> {
        let audio = self.audio_for(video, files)?;
        let id = crate::daemon::calls::start(self, target, video, audio).await?;
        answer(Id { id: id.to_string() })
    }

    /// Answers the call named (or the one ringing), with its audio.
    pub(super) async fn call_answer(
        &self,
        call: Option<String>,
        (video, anyway): (bool, bool),
        files: [Option<String>; 4],
    ) -> Result<serde_json::Value> {
        let audio = self.audio_for(video, files)?;
        crate::daemon::calls::command_with(
            self,
            call.as_deref(),
            Command::Answer { video },
            (Some(audio), anyway),
        )
        .await?;
        answer(a::Done {})
    }

    /// The sound and pictures a call command names (`files`: audio in and
    /// out, video in and out), or the daemon's when it names none.
    fn audio_for(
        &self,
        video: bool,
        files: [Option<String>; 4],
    ) -> Result<crate::daemon::media::Audio> {
        let [audio_in, audio_out, video_in, video_out] = files;
        let mut audio = if audio_in.is_none() && audio_out.is_none() {
            self.default_audio()
        } else {
            crate::daemon::media::Audio::open(audio_in.as_deref(), audio_out.as_deref())?
        };
        audio.video =
            crate::daemon::video::VideoIo::open(video, video_in.as_deref(), video_out.as_deref())?;
        if audio.video.input.is_none() {
            audio.video.camera = self.camera().path();
        }
        Ok(audio)
    }

    /// Answers, declines or hangs up the call named (or the one that fits).
    pub(super) async fn call_command(
        &self,
        call: Option<String>,
        cmd: Command,
    ) -> Result<serde_json::Value> {
        crate::daemon::calls::command(self, call.as_deref(), cmd).await?;
        answer(a::Done {})
    }
}
