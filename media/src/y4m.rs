//! Video files for calls without a camera or a screen (`kith call
//! --video-in Y4M --video-out Y4M`, and the tests): YUV4MPEG2 with 4:2:0
//! pictures only, read and written one frame at a time (a minute of
//! 640×480 is 830 MB; nothing holds a whole file).

use crate::video::{MAX_HEIGHT, MAX_WIDTH, Picture};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

/// A Y4M file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Y4mError {
    /// Not readable or writable.
    #[error("{path}: {why}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        why: String,
    },
    /// Not a Y4M file this reads.
    #[error("{path}: {why}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
}

/// The longest header or frame line read.
const MAX_LINE: usize = 256;

/// Reads pictures from a Y4M file, one at a time.
pub struct Y4mReader {
    path: String,
    file: BufReader<std::fs::File>,
    /// Picture width.
    pub width: usize,
    /// Picture height.
    pub height: usize,
    /// Frames per second the file says (numerator, denominator).
    pub rate: (u32, u32),
}

impl std::fmt::Debug for Y4mReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Y4mReader({}, {}×{})",
            self.path, self.width, self.height
        )
    }
}

fn line(r: &mut impl BufRead, path: &str) -> Result<Option<String>, Y4mError> {
    let mut buf = Vec::new();
    let n = r
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut buf)
        .map_err(|e| Y4mError::Io {
            path: path.to_owned(),
            why: e.to_string(),
        })?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        return Err(format_error(path, "a header line too long or cut short"));
    }
    buf.pop();
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| format_error(path, "a header that is not text"))
}

fn format_error(path: &str, why: impl Into<String>) -> Y4mError {
    Y4mError::Format {
        path: path.to_owned(),
        why: why.into(),
    }
}

impl Y4mReader {
    /// Opens `path` and reads its header: 4:2:0, even sizes up to
    /// 1920×1080.
    pub fn open(path: &Path) -> Result<Self, Y4mError> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| Y4mError::Io {
            path: name.clone(),
            why: e.to_string(),
        })?;
        let mut file = BufReader::new(file);
        let header = line(&mut file, &name)?.ok_or_else(|| format_error(&name, "empty"))?;
        let mut words = header.split(' ');
        if words.next() != Some("YUV4MPEG2") {
            return Err(format_error(&name, "not a YUV4MPEG2 (.y4m) file"));
        }
        let (mut width, mut height, mut rate) = (0usize, 0usize, (30u32, 1u32));
        for w in words.filter(|w| !w.is_empty()) {
            let Some((tag, value)) = w.split_at_checked(1) else {
                return Err(format_error(&name, "a header that is not YUV4MPEG2"));
            };
            match tag {
                "W" => width = value.parse().unwrap_or(0),
                "H" => height = value.parse().unwrap_or(0),
                "F" => {
                    rate = value
                        .split_once(':')
                        .and_then(|(n, d)| Some((n.parse().ok()?, d.parse().ok()?)))
                        .filter(|(n, d)| *n > 0 && *d > 0)
                        .ok_or_else(|| format_error(&name, format!("frame rate {value}")))?;
                }
                "C" if !value.starts_with("420") => {
                    return Err(format_error(
                        &name,
                        format!("colour format {value}: a call takes 4:2:0 (C420jpeg)"),
                    ));
                }
                _ => {}
            }
        }
        if width == 0 || height == 0 || !width.is_multiple_of(2) || !height.is_multiple_of(2) {
            return Err(format_error(
                &name,
                format!("picture size {width}×{height}: even sizes only"),
            ));
        }
        if width > MAX_WIDTH || height > MAX_HEIGHT {
            return Err(format_error(
                &name,
                format!("picture size {width}×{height}: at most {MAX_WIDTH}×{MAX_HEIGHT}"),
            ));
        }
        Ok(Self {
            path: name,
            file,
            width,
            height,
            rate,
        })
    }

    /// The next picture, `None` at the end of the file.
    pub fn next_picture(&mut self) -> Result<Option<Picture>, Y4mError> {
        let Some(head) = line(&mut self.file, &self.path)? else {
            return Ok(None);
        };
        if head != "FRAME" && !head.starts_with("FRAME ") {
            return Err(format_error(&self.path, "a frame without its FRAME line"));
        }
        let mut data = vec![0; Picture::bytes(self.width, self.height)];
        self.file
            .read_exact(&mut data)
            .map_err(|_| format_error(&self.path, "the last frame is cut short"))?;
        Ok(Some(Picture {
            width: self.width,
            height: self.height,
            data,
        }))
    }
}

/// Writes pictures to a Y4M file as they come.
pub struct Y4mWriter {
    path: String,
    file: BufWriter<std::fs::File>,
    size: Option<(usize, usize)>,
    /// Frames written.
    pub frames: u64,
    /// Bytes written.
    pub bytes: u64,
}

impl std::fmt::Debug for Y4mWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Y4mWriter({}, {} frames)", self.path, self.frames)
    }
}

impl Y4mWriter {
    /// Creates (or empties) `path`; the header is written with the first
    /// picture (its size decides it).
    pub fn create(path: &Path) -> Result<Self, Y4mError> {
        let name = path.display().to_string();
        let file = std::fs::File::create(path).map_err(|e| Y4mError::Io {
            path: name.clone(),
            why: e.to_string(),
        })?;
        Ok(Self {
            path: name,
            file: BufWriter::with_capacity(1 << 20, file),
            size: None,
            frames: 0,
            bytes: 0,
        })
    }

    fn io(&self, e: std::io::Error) -> Y4mError {
        Y4mError::Io {
            path: self.path.clone(),
            why: e.to_string(),
        }
    }

    /// Appends `p` as the next frame (30 a second). A picture of another
    /// size than the first is scaled to it (nearest pixel), so the file
    /// stays one stream.
    pub fn write(&mut self, p: &Picture) -> Result<(), Y4mError> {
        let (w, h) = match self.size {
            Some(s) => s,
            None => {
                let header = format!(
                    "YUV4MPEG2 W{} H{} F30:1 Ip A1:1 C420jpeg\n",
                    p.width, p.height
                );
                self.file
                    .write_all(header.as_bytes())
                    .map_err(|e| self.io(e))?;
                self.size = Some((p.width, p.height));
                (p.width, p.height)
            }
        };
        self.file.write_all(b"FRAME\n").map_err(|e| self.io(e))?;
        if (w, h) == (p.width, p.height) {
            self.file.write_all(&p.data).map_err(|e| self.io(e))?;
        } else {
            let scaled = scale(p, w, h);
            self.file.write_all(&scaled.data).map_err(|e| self.io(e))?;
        }
        self.frames += 1;
        self.bytes += 6 + Picture::bytes(w, h) as u64;
        Ok(())
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) -> Result<(), Y4mError> {
        self.file.flush().map_err(|e| self.io(e))
    }
}

/// `p` scaled to `w × h` (nearest pixel).
pub fn scale(p: &Picture, w: usize, h: usize) -> Picture {
    let mut out = Picture::black(w, h);
    let planes = [
        (0, p.width, p.height, 0, w, h),
        (
            p.width * p.height,
            p.width / 2,
            p.height / 2,
            w * h,
            w / 2,
            h / 2,
        ),
        (
            p.width * p.height * 5 / 4,
            p.width / 2,
            p.height / 2,
            w * h * 5 / 4,
            w / 2,
            h / 2,
        ),
    ];
    for (src, sw, sh, dst, dw, dh) in planes {
        if sw == 0 || sh == 0 {
            continue;
        }
        for y in 0..dh {
            let sy = y * sh / dh;
            for x in 0..dw {
                let sx = x * sw / dw;
                out.data[dst + y * dw + x] = p.data[src + sy * sw + sx];
            }
        }
    }
    out
}
