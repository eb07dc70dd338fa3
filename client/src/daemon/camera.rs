//! The camera for video calls, through V4L2 (`linuxvideo`, pure Rust: no
//! C headers or bindgen to build), behind [`Camera`]: a thread of its own
//! takes the camera's frames as they come (YUYV 4:2:2, asked for at
//! 640×480 and 30 a second) and keeps the latest as an I420 picture; the
//! video sender takes the latest on its own clock, so a camera that runs
//! slower or faster never holds the call up.

use kith_media::video::{HEIGHT, MAX_HEIGHT, MAX_WIDTH, Picture, WIDTH};
use linuxvideo::format::{PixFormat, PixelFormat};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tracing::warn;

/// Which camera video calls use (`kith daemon --camera`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CameraChoice {
    /// `/dev/video0` if there is one.
    #[default]
    Default,
    /// None: video calls send the test picture.
    None,
    /// This V4L2 device.
    Path(PathBuf),
}

impl std::str::FromStr for CameraChoice {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "default" => CameraChoice::Default,
            "none" => CameraChoice::None,
            p => CameraChoice::Path(PathBuf::from(p)),
        })
    }
}

impl CameraChoice {
    /// The device to open, if any.
    pub(super) fn path(&self) -> Option<PathBuf> {
        match self {
            CameraChoice::Default => {
                let p = PathBuf::from("/dev/video0");
                p.exists().then_some(p)
            }
            CameraChoice::None => None,
            CameraChoice::Path(p) => Some(p.clone()),
        }
    }
}

/// Where a video call's pictures come from.
pub(super) trait Camera: Send {
    /// The latest picture the camera took (none yet: `None`).
    fn latest(&self) -> Option<Picture>;
}

/// A V4L2 camera being read; dropping it closes the device (it waits
/// for the reading thread, which looks at its stop flag every 5 ms).
pub(super) struct V4l2 {
    latest: Arc<Mutex<Option<Picture>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for V4l2 {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Camera for V4l2 {
    fn latest(&self) -> Option<Picture> {
        self.latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Opens the camera at `path` and starts reading it; a device still busy
/// (a call's earlier flow letting go of it) is tried again for half a
/// second.
pub(super) fn open(path: &Path) -> anyhow::Result<V4l2> {
    let mut tries = 0;
    loop {
        match open_once(path) {
            Ok(c) => return Ok(c),
            Err(e) if tries < 10 && e.to_string().contains("busy") => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    }
}

fn open_once(path: &Path) -> anyhow::Result<V4l2> {
    let device = linuxvideo::Device::open(path)
        .map_err(|e| anyhow::anyhow!("{}: not a camera ({e})", path.display()))?;
    let capture = device
        .video_capture(PixFormat::new(
            WIDTH as u32,
            HEIGHT as u32,
            PixelFormat::YUYV,
        ))
        .map_err(|e| anyhow::anyhow!("{}: no video capture ({e})", path.display()))?;
    let fmt = capture.format();
    let (w, h) = (fmt.width() as usize, fmt.height() as usize);
    let stride = fmt.bytes_per_line() as usize;
    if fmt.pixel_format() != PixelFormat::YUYV {
        anyhow::bail!(
            "{}: the camera gives {:?}, not YUYV",
            path.display(),
            fmt.pixel_format()
        );
    }
    if w == 0
        || h == 0
        || w % 2 == 1
        || h % 2 == 1
        || w > MAX_WIDTH
        || h > MAX_HEIGHT
        || stride < w * 2
    {
        anyhow::bail!("{}: a {w}×{h} picture is not used", path.display());
    }
    let _ = capture.set_frame_interval(linuxvideo::Fract::new(1, 30));
    let mut stream = capture.into_stream()?;
    let latest: Arc<Mutex<Option<Picture>>> = Default::default();
    let stop = Arc::new(AtomicBool::new(false));
    let (l, s) = (Arc::clone(&latest), Arc::clone(&stop));
    let thread = std::thread::Builder::new()
        .name("kith-camera".into())
        .spawn(move || {
            while !s.load(Ordering::Relaxed) {
                // Never block on the device: a stalled camera must not
                // keep the thread (and the device) past the call.
                match stream.will_block() {
                    Ok(true) => {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        continue;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        warn!(error = %e, "the camera stopped");
                        return;
                    }
                }
                let got = stream.dequeue(|buf| {
                    if buf.is_error() {
                        return Ok(None);
                    }
                    Ok(yuyv_to_i420(&buf, w, h, stride))
                });
                match got {
                    Ok(Some(p)) => *l.lock().unwrap_or_else(|p| p.into_inner()) = Some(p),
                    Ok(None) => {}
                    Err(e) => {
                        warn!(error = %e, "the camera stopped");
                        return;
                    }
                }
            }
        })?;
    Ok(V4l2 {
        latest,
        stop,
        thread: Some(thread),
    })
}

/// A YUYV (4:2:2, packed) frame as an I420 picture; `None` if the buffer
/// is shorter than the size says.
pub(super) fn yuyv_to_i420(buf: &[u8], w: usize, h: usize, stride: usize) -> Option<Picture> {
    if buf.len() < stride * (h - 1) + w * 2 {
        return None;
    }
    let mut p = Picture::black(w, h);
    let (cw, y_len) = (w / 2, w * h);
    for y in 0..h {
        let row = &buf[y * stride..y * stride + w * 2];
        for x in 0..cw {
            let q = &row[x * 4..x * 4 + 4];
            p.data[y * w + 2 * x] = q[0];
            p.data[y * w + 2 * x + 1] = q[2];
            // Chroma from the even rows (4:2:2 to 4:2:0).
            if y % 2 == 0 {
                let c = (y / 2) * cw + x;
                p.data[y_len + c] = q[1];
                p.data[y_len + y_len / 4 + c] = q[3];
            }
        }
    }
    Some(p)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn yuyv_becomes_i420_and_short_buffers_are_refused() {
        // 4×2: Y 10..17, U 100/101, V 200/201 on the first row.
        let row0 = [10, 100, 11, 200, 12, 101, 13, 201];
        let row1 = [14, 1, 15, 2, 16, 3, 17, 4];
        let buf: Vec<u8> = row0.iter().chain(&row1).copied().collect();
        let p = yuyv_to_i420(&buf, 4, 2, 8).unwrap();
        assert_eq!(&p.data[..8], &[10, 11, 12, 13, 14, 15, 16, 17]);
        assert_eq!(&p.data[8..10], &[100, 101]);
        assert_eq!(&p.data[10..12], &[200, 201]);
        assert!(yuyv_to_i420(&buf[..10], 4, 2, 8).is_none());
    }

    #[test]
    fn something_that_is_not_a_camera_is_refused_clearly() {
        let e = open(Path::new("/dev/null")).err().unwrap().to_string();
        assert!(e.contains("/dev/null"), "{e}");
        assert_eq!("none".parse::<CameraChoice>(), Ok(CameraChoice::None));
        assert_eq!(CameraChoice::None.path(), None);
    }
}
