//! Audio files for calls without a sound card (`kith call --audio-in
//! WAV --audio-out WAV`, and the tests): 48 kHz mono 16-bit PCM only, so a
//! file is exactly what a call carries; anything else is refused with a
//! clear error rather than resampled.

use crate::codec::RATE;
use std::path::Path;

/// A WAV file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    /// Not readable or writable.
    #[error("{path}: {why}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        why: String,
    },
    /// Another format.
    #[error("{path}: a call needs 48000 Hz mono 16-bit PCM, this is {got}")]
    Format {
        /// The file.
        path: String,
        /// What it is.
        got: String,
    },
}

fn io(path: &Path, e: impl std::fmt::Display) -> WavError {
    WavError::Io {
        path: path.display().to_string(),
        why: e.to_string(),
    }
}

/// The spec of every file here.
pub fn spec() -> hound::WavSpec {
    hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    }
}

/// Reads a whole file (at most `max_samples`, the rest is ignored).
pub fn read(path: &Path, max_samples: usize) -> Result<Vec<i16>, WavError> {
    let reader = hound::WavReader::open(path).map_err(|e| io(path, e))?;
    let s = reader.spec();
    if s != spec() {
        return Err(WavError::Format {
            path: path.display().to_string(),
            got: format!(
                "{} Hz, {} channel(s), {}-bit {:?}",
                s.sample_rate, s.channels, s.bits_per_sample, s.sample_format
            ),
        });
    }
    reader
        .into_samples::<i16>()
        .take(max_samples)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| io(path, e))
}

/// Writes samples as a file. The file is written beside `path` and
/// renamed over it once complete, so a reader finds the old file or the
/// whole new one, never half of it.
pub fn write(path: &Path, samples: &[i16]) -> Result<(), WavError> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    let part = path.with_file_name(name);
    let written = (|| {
        let mut w = hound::WavWriter::create(&part, spec()).map_err(|e| io(&part, e))?;
        for s in samples {
            w.write_sample(*s).map_err(|e| io(&part, e))?;
        }
        w.finalize().map_err(|e| io(&part, e))?;
        std::fs::rename(&part, path).map_err(|e| io(path, e))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    written
}
