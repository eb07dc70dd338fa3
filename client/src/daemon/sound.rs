//! The system's microphone and speaker for calls, through cpal (ALSA on
//! Linux), behind [`SoundDevice`]: the media tasks take 20 ms frames from
//! it and give it 20 ms frames, never waiting on the sound card. cpal's
//! streams live on a thread of their own (they are not `Send`); their
//! callbacks and the media tasks meet in two short rings (at most
//! [`RING`] of audio each way; a card that runs ahead or behind loses
//! the oldest samples, never grows a delay). What the speaker plays is
//! taken out of what the microphone hears again ([`EchoCanceller`]).
//!
//! The card is opened when a call's media starts and closed when it
//! stops; with no card (a server, a container) calls go on silent.

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, Sample, SizedSample};
use kith_media::codec::RATE;
use kith_media::echo::EchoCanceller;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tracing::warn;

/// Most audio held between a sound card and the media tasks, each way
/// (100 ms).
const RING: usize = RATE as usize / 10;

/// Where a call's sound comes from and goes to when no file is named.
pub(super) trait SoundDevice: Send + Sync + std::fmt::Debug {
    /// The next 20 ms the microphone took, cleaned of the speaker's echo
    /// (silence while it has none).
    fn capture(&self, out: &mut [i16]);
    /// 20 ms for the speaker.
    fn play(&self, frame: &[i16]);
    /// The device's name, for `call status`.
    fn name(&self) -> &str;
}

/// Which sound card calls use (`kith daemon --sound-card`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SoundCard {
    /// The system's default input and output, if it has any.
    #[default]
    Default,
    /// None: calls without files are silent.
    None,
    /// The input and output devices of this name (ALSA: `null`,
    /// `hw:CARD=…`, …).
    Named(String),
}

impl std::str::FromStr for SoundCard {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "default" => SoundCard::Default,
            "none" => SoundCard::None,
            other => SoundCard::Named(other.to_owned()),
        })
    }
}

#[derive(Default)]
struct Rings {
    mic: VecDeque<i16>,
    speaker: VecDeque<i16>,
}

/// A sound card opened through cpal.
pub(super) struct Cpal {
    name: String,
    rings: Arc<Mutex<Rings>>,
    echo: Mutex<EchoCanceller>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Cpal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cpal({})", self.name)
    }
}

impl Drop for Cpal {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl SoundDevice for Cpal {
    fn capture(&self, out: &mut [i16]) {
        {
            let mut r = self.rings.lock().unwrap_or_else(|p| p.into_inner());
            let n = out.len();
            if r.mic.len() >= n {
                for (o, s) in out.iter_mut().zip(r.mic.drain(..n)) {
                    *o = s;
                }
            } else {
                out.fill(0);
            }
        }
        self.echo
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .captured(out);
    }

    fn play(&self, frame: &[i16]) {
        self.echo
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .played(frame);
        let mut r = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        r.speaker.extend(frame);
        let over = r.speaker.len().saturating_sub(RING);
        r.speaker.drain(..over);
    }

    fn name(&self) -> &str {
        &self.name
    }
}

/// Opens `card` for a call: `Ok(None)` when there is none to open.
pub(super) fn open(card: &SoundCard) -> anyhow::Result<Option<Arc<dyn SoundDevice>>> {
    if *card == SoundCard::None {
        return Ok(None);
    }
    let card = card.clone();
    let rings: Arc<Mutex<Rings>> = Default::default();
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (r, s) = (Arc::clone(&rings), Arc::clone(&stop));
    std::thread::Builder::new()
        .name("kith-sound".into())
        .spawn(move || {
            // The streams live (and die) on this thread.
            let streams = match start_streams(&card, &r) {
                Ok(Some((name, streams))) => {
                    // Nobody waits any more (opening took too long): close
                    // the card rather than hold it open for no call.
                    if ready_tx.send(Ok(Some(name))).is_err() {
                        return;
                    }
                    streams
                }
                Ok(None) => {
                    let _ = ready_tx.send(Ok(None));
                    return;
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            drop(streams);
        })?;
    let name = ready_rx
        .recv_timeout(std::time::Duration::from_secs(5))
        .map_err(|_| anyhow::anyhow!("the sound card did not answer"))??;
    Ok(name.map(|name| {
        Arc::new(Cpal {
            name,
            rings,
            echo: Mutex::new(EchoCanceller::new()),
            stop,
        }) as Arc<dyn SoundDevice>
    }))
}

fn find(host: &cpal::Host, name: &str, input: bool) -> anyhow::Result<Option<cpal::Device>> {
    let devices = if input {
        host.input_devices()?.collect::<Vec<_>>()
    } else {
        host.output_devices()?.collect::<Vec<_>>()
    };
    Ok(devices.into_iter().find(|d| {
        let id = d.id().map(|i| i.to_string()).unwrap_or_default();
        id == name || id.split_once(':').is_some_and(|(_, n)| n == name) || d.to_string() == name
    }))
}

type Streams = (cpal::Stream, cpal::Stream);

fn start_streams(
    card: &SoundCard,
    rings: &Arc<Mutex<Rings>>,
) -> anyhow::Result<Option<(String, Streams)>> {
    let host = cpal::default_host();
    let (input, output) = match card {
        SoundCard::None => return Ok(None),
        SoundCard::Default => (host.default_input_device(), host.default_output_device()),
        SoundCard::Named(n) => {
            let (i, o) = (find(&host, n, true)?, find(&host, n, false)?);
            if i.is_none() && o.is_none() {
                anyhow::bail!("no sound card named {n:?}");
            }
            (i, o)
        }
    };
    let (Some(input), Some(output)) = (input, output) else {
        return Ok(None);
    };
    let name = input
        .id()
        .map(|i| i.to_string())
        .unwrap_or_else(|_| input.to_string());
    let mic = input_stream(&input, rings)?;
    let speaker = output_stream(&output, rings)?;
    mic.play()?;
    speaker.play()?;
    Ok(Some((name, (mic, speaker))))
}

/// The device's own channels and sample format, at 48 kHz; and how many
/// channels a frame has.
fn at_48k(def: &cpal::SupportedStreamConfig) -> (cpal::StreamConfig, usize) {
    let config = cpal::StreamConfig {
        channels: def.channels(),
        sample_rate: RATE,
        buffer_size: cpal::BufferSize::Default,
    };
    (config, usize::from(def.channels().max(1)))
}

fn input_stream(dev: &cpal::Device, rings: &Arc<Mutex<Rings>>) -> anyhow::Result<cpal::Stream> {
    let def = dev.default_input_config()?;
    let (config, channels) = at_48k(&def);
    Ok(match def.sample_format() {
        cpal::SampleFormat::I16 => mic::<i16>(dev, config, channels, rings)?,
        cpal::SampleFormat::F32 => mic::<f32>(dev, config, channels, rings)?,
        other => anyhow::bail!("the microphone's sample format {other} is not used"),
    })
}

fn mic<T>(
    dev: &cpal::Device,
    config: cpal::StreamConfig,
    channels: usize,
    rings: &Arc<Mutex<Rings>>,
) -> anyhow::Result<cpal::Stream>
where
    T: SizedSample,
    i16: FromSample<T>,
{
    let rings = Arc::clone(rings);
    Ok(dev.build_input_stream::<T, _, _>(
        config,
        move |data: &[T], _| {
            let mut r = rings.lock().unwrap_or_else(|p| p.into_inner());
            // The first channel of each frame: mono.
            r.mic
                .extend(data.chunks(channels).map(|f| i16::from_sample(f[0])));
            let over = r.mic.len().saturating_sub(RING);
            r.mic.drain(..over);
        },
        |e| warn!(error = %e, "the microphone failed"),
        None,
    )?)
}

fn output_stream(dev: &cpal::Device, rings: &Arc<Mutex<Rings>>) -> anyhow::Result<cpal::Stream> {
    let def = dev.default_output_config()?;
    let (config, channels) = at_48k(&def);
    Ok(match def.sample_format() {
        cpal::SampleFormat::I16 => speaker::<i16>(dev, config, channels, rings)?,
        cpal::SampleFormat::F32 => speaker::<f32>(dev, config, channels, rings)?,
        other => anyhow::bail!("the speaker's sample format {other} is not used"),
    })
}

fn speaker<T>(
    dev: &cpal::Device,
    config: cpal::StreamConfig,
    channels: usize,
    rings: &Arc<Mutex<Rings>>,
) -> anyhow::Result<cpal::Stream>
where
    T: SizedSample + FromSample<i16>,
{
    let rings = Arc::clone(rings);
    Ok(dev.build_output_stream::<T, _, _>(
        config,
        move |data: &mut [T], _| {
            let mut r = rings.lock().unwrap_or_else(|p| p.into_inner());
            for frame in data.chunks_mut(channels) {
                let v = r.speaker.pop_front().unwrap_or(0);
                frame.fill(T::from_sample(v));
            }
        },
        |e| warn!(error = %e, "the speaker failed"),
        None,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sound_card_names_parse() {
        assert_eq!("default".parse::<SoundCard>(), Ok(SoundCard::Default));
        assert_eq!("none".parse::<SoundCard>(), Ok(SoundCard::None));
        assert_eq!(
            "hw:CARD=PCH".parse::<SoundCard>(),
            Ok(SoundCard::Named("hw:CARD=PCH".into()))
        );
    }
}
