//! Video frames through the `ffmpeg` and `ffprobe` command-line tools, run as sandboxed child
//! processes.
//!
//! Decoding untrusted video in-process would put FFmpeg's whole attack surface inside the
//! crawler; a child process can be killed, capped and thrown away. Each child runs without a
//! shell, under `prlimit` (address space, CPU seconds, no core dumps, no file writes), with the
//! demuxer forced to the sniffed container and only the `file` protocol allowed (so a hostile
//! file cannot make FFmpeg open URLs or other local files), against a private copy of the
//! input that is removed afterwards. A watchdog kills it at the wall-clock deadline.
//!
//! Frames are streamed: one RGB frame is in memory at a time, and at most
//! [`VideoLimits::max_frames`] are ever read. This module must never pass input-derived text
//! to a shell, never read a file the caller did not hand it, and never wait without a deadline.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{HashError, MediaKind};

/// Hard bounds on one video decode.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoLimits {
    /// Largest input accepted, in bytes (default 512 MiB).
    pub max_bytes: u64,
    /// Wall-clock budget for probing, decoding and hashing together (default 120 s).
    pub max_wall: Duration,
    /// Longest duration a container may declare, in seconds (default 3 h); checked before
    /// any frame is decoded.
    pub max_duration_seconds: f64,
    /// Most frames handed to the caller (default 20,000: over 5 h at one frame a second).
    pub max_frames: u64,
    /// Largest frame accepted, in pixels (default 4096 × 2304, above 4K UHD).
    pub max_frame_pixels: u64,
    /// Address-space limit of each child process, in bytes (default 2 GiB).
    pub max_child_memory: u64,
}

impl Default for VideoLimits {
    fn default() -> Self {
        Self {
            max_bytes: 512 * 1024 * 1024,
            max_wall: Duration::from_secs(120),
            max_duration_seconds: 3.0 * 3600.0,
            max_frames: 20_000,
            max_frame_pixels: 4096 * 2304,
            max_child_memory: 2 * 1024 * 1024 * 1024,
        }
    }
}

/// Where the decoder programs are and how frames are sampled.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoOptions {
    /// Seconds between hashed frames, as the reference's `secondsPerHash`: frame `n` is kept
    /// when `n % floor(seconds_per_hash × fps) == 0`. 0 keeps every frame. Default 1.
    pub seconds_per_hash: f64,
    /// Scale frames to this size before hashing (the reference's downsample option);
    /// `None` hashes at the stored size.
    pub downsample: Option<(u32, u32)>,
    pub limits: VideoLimits,
    /// The `ffmpeg` program (default: found on `PATH`).
    pub ffmpeg: PathBuf,
    /// The `ffprobe` program (default: found on `PATH`).
    pub ffprobe: PathBuf,
    /// Directory for the private copy of the input (default: the system temporary directory).
    pub temp_dir: Option<PathBuf>,
}

impl Default for VideoOptions {
    fn default() -> Self {
        Self {
            seconds_per_hash: 1.0,
            downsample: None,
            limits: VideoLimits::default(),
            ffmpeg: PathBuf::from("ffmpeg"),
            ffprobe: PathBuf::from("ffprobe"),
            temp_dir: None,
        }
    }
}

/// What the container says about its first video stream.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    pub width: u32,
    pub height: u32,
    /// Average frame rate (the reference's choice), or the base rate when there is none.
    pub frame_rate: f64,
    /// Declared duration in seconds (0 when the container declares none).
    pub duration_seconds: f64,
}

/// One sampled frame, borrowed for the length of the callback.
#[derive(Debug)]
pub struct Frame<'a> {
    /// Index of the frame among all decoded frames, counting from 0.
    pub number: u64,
    /// `number / frame_rate`, in seconds, computed in single precision as the reference does.
    pub timestamp: f64,
    pub width: u32,
    pub height: u32,
    /// Interleaved RGB, `width * height * 3` bytes.
    pub rgb: &'a [u8],
}

/// Decode `bytes` (a container of `kind`) and hand each sampled frame to `on_frame`, in order.
/// Returns what the container declared; an error from `on_frame` stops decoding and is
/// returned as is.
pub fn decode_video_frames(
    bytes: &[u8],
    kind: MediaKind,
    options: &VideoOptions,
    mut on_frame: impl FnMut(Frame<'_>) -> Result<(), HashError>,
) -> Result<VideoInfo, HashError> {
    let limits = &options.limits;
    if bytes.is_empty() {
        return Err(HashError::Empty);
    }
    if bytes.len() as u64 > limits.max_bytes {
        return Err(HashError::TooLarge {
            size: bytes.len() as u64,
            limit: limits.max_bytes,
        });
    }
    let demuxer = demuxer_for(kind).ok_or(HashError::UnknownFormat)?;
    let deadline = Instant::now() + limits.max_wall;
    let input = PrivateCopy::write(bytes, options.temp_dir.as_deref())?;
    let info = probe(input.path(), kind, demuxer, options, deadline)?;
    let (width, height) = options.downsample.unwrap_or((info.width, info.height));
    if width == 0 || height == 0 {
        return Err(HashError::ZeroDimension {
            kind,
            width,
            height,
        });
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_frame_pixels {
        return Err(HashError::TooManyPixels {
            width,
            height,
            limit: limits.max_frame_pixels,
        });
    }
    let step = frame_step(options.seconds_per_hash, info.frame_rate);
    let mut command = sandboxed(&options.ffmpeg, limits, deadline);
    command.args(["-nostdin", "-hide_banner", "-loglevel", "error"]);
    command.args([
        "-protocol_whitelist",
        "file",
        "-threads",
        "1",
        "-f",
        demuxer,
    ]);
    command.arg("-i").arg(input.path());
    command.args(["-map", "0:v:0", "-an", "-sn", "-dn", "-filter_threads", "1"]);
    command.arg("-vf").arg(filter_chain(step, width, height));
    command.args(["-fps_mode", "passthrough", "-frames:v"]);
    command.arg(limits.max_frames.saturating_add(1).to_string());
    command.args(["-pix_fmt", "rgb24", "-f", "rawvideo", "pipe:1"]);
    let frame_bytes = usize::try_from(pixels * 3).map_err(|_| HashError::TooManyPixels {
        width,
        height,
        limit: limits.max_frame_pixels,
    })?;
    let mut frame = vec![0u8; frame_bytes];
    let mut index = 0u64;
    let run = Sandboxed::spawn(command, &options.ffmpeg, deadline)?;
    let outcome = run.stream(|stdout| {
        loop {
            if !read_frame(stdout, &mut frame)? {
                return Ok(());
            }
            if index >= limits.max_frames {
                return Err(HashError::TooManyFrames {
                    limit: limits.max_frames,
                });
            }
            let number = index * step;
            // The reference divides in single precision; so do we, for identical text output.
            let timestamp = f64::from(number as f32 / info.frame_rate as f32);
            on_frame(Frame {
                number,
                timestamp,
                width,
                height,
                rgb: &frame,
            })?;
            index += 1;
        }
    });
    let finished = outcome.map_err(|error| error.into_hash_error(kind, &options.ffmpeg))?;
    if !finished.status.success() && index == 0 {
        return Err(classify_failure(kind, &finished.stderr));
    }
    Ok(info)
}

/// The reference's sampling step: `floor(seconds × fps)`, never below one frame.
fn frame_step(seconds_per_hash: f64, frame_rate: f64) -> u64 {
    let step = (seconds_per_hash * frame_rate).floor();
    if step.is_finite() && step >= 1.0 {
        step as u64
    } else {
        1
    }
}

/// Select, then convert. The reference converts with an `SWS_AREA` context between the
/// decoded and the target size even when they are equal; `scale` with `flags=area` is the
/// same context.
fn filter_chain(step: u64, width: u32, height: u32) -> String {
    let convert = format!("scale={width}:{height}:flags=area,format=rgb24");
    if step > 1 {
        format!("select=not(mod(n\\,{step})),{convert}")
    } else {
        convert
    }
}

/// Fill `frame` from the pipe; `false` at a clean end of stream. A partial last frame (the
/// child was killed mid-write) also ends the stream.
fn read_frame(stdout: &mut ChildStdout, frame: &mut [u8]) -> Result<bool, HashError> {
    let mut filled = 0;
    while filled < frame.len() {
        let slot = frame.get_mut(filled..).unwrap_or_default();
        match stdout.read(slot) {
            Ok(0) => return Ok(false),
            Ok(read) => filled += read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => {
                return Err(HashError::DecoderIo {
                    message: error.to_string(),
                });
            }
        }
    }
    Ok(true)
}

/// The FFmpeg demuxer for a sniffed kind: never let FFmpeg guess from content (a text
/// playlist could make it fetch URLs).
fn demuxer_for(kind: MediaKind) -> Option<&'static str> {
    match kind {
        MediaKind::Mp4 | MediaKind::Mov => Some("mov"),
        MediaKind::Webm | MediaKind::Matroska => Some("matroska"),
        MediaKind::Avi => Some("avi"),
        MediaKind::Gif => Some("gif"),
        _ => None,
    }
}

fn probe(
    input: &Path,
    kind: MediaKind,
    demuxer: &str,
    options: &VideoOptions,
    deadline: Instant,
) -> Result<VideoInfo, HashError> {
    let mut command = sandboxed(&options.ffprobe, &options.limits, deadline);
    command.args(["-v", "error", "-protocol_whitelist", "file", "-f", demuxer]);
    command.args(["-select_streams", "v:0", "-show_entries"]);
    command.arg("stream=width,height,avg_frame_rate,r_frame_rate,duration:format=duration");
    command.args(["-of", "default=noprint_wrappers=1"]);
    command.arg(input);
    let run = Sandboxed::spawn(command, &options.ffprobe, deadline)?;
    let mut text = String::new();
    let finished = run
        .stream(|stdout| {
            // Eight lines of numbers; anything longer is not ffprobe answering this query.
            let mut limited = BufReader::new(stdout.take(4096));
            let mut line = String::new();
            while limited.read_line(&mut line).unwrap_or(0) > 0 {
                text.push_str(&line);
                line.clear();
            }
            Ok(())
        })
        .map_err(|error| error.into_hash_error(kind, &options.ffprobe))?;
    if !finished.status.success() {
        return Err(classify_failure(kind, &finished.stderr));
    }
    let info = parse_probe(&text, kind)?;
    if info.duration_seconds > options.limits.max_duration_seconds {
        return Err(HashError::TooLong {
            declared_seconds: info.duration_seconds.min(u64::MAX as f64) as u64,
            limit_seconds: options.limits.max_duration_seconds as u64,
        });
    }
    Ok(info)
}

fn parse_probe(text: &str, kind: MediaKind) -> Result<VideoInfo, HashError> {
    let mut width = None;
    let mut height = None;
    let mut average = None;
    let mut base = None;
    let mut duration: f64 = 0.0;
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match key {
            "width" => width = value.trim().parse::<u32>().ok(),
            "height" => height = value.trim().parse::<u32>().ok(),
            "avg_frame_rate" => average = parse_rate(value),
            "r_frame_rate" => base = parse_rate(value),
            // Stream and container durations both print as `duration`: keep the longer claim.
            "duration" => {
                if let Ok(seconds) = value.trim().parse::<f64>()
                    && seconds.is_finite()
                {
                    duration = duration.max(seconds);
                }
            }
            _ => {}
        }
    }
    let (Some(width), Some(height)) = (width, height) else {
        return Err(HashError::NoVideoStream { kind });
    };
    if width == 0 || height == 0 {
        return Err(HashError::ZeroDimension {
            kind,
            width,
            height,
        });
    }
    let frame_rate = average.or(base).ok_or(HashError::NoFrameRate { kind })?;
    Ok(VideoInfo {
        width,
        height,
        frame_rate,
        duration_seconds: duration,
    })
}

/// `num/den` as a positive finite rate; `None` for `0/0` and other non-rates.
fn parse_rate(text: &str) -> Option<f64> {
    let (num, den) = text.trim().split_once('/')?;
    let rate = num.parse::<f64>().ok()? / den.parse::<f64>().ok()?;
    (rate.is_finite() && rate > 0.0).then_some(rate)
}

/// Map a failed child's stderr to what was wrong with the input.
fn classify_failure(kind: MediaKind, stderr: &str) -> HashError {
    let lower = stderr.to_ascii_lowercase();
    if lower.contains("cannot allocate memory") || lower.contains("out of memory") {
        return HashError::MemoryLimit { kind };
    }
    if lower.contains("moov atom not found")
        || lower.contains("end of file")
        || lower.contains("truncat")
    {
        return HashError::Truncated { kind };
    }
    let message = stderr.lines().rev().find(|line| !line.trim().is_empty());
    HashError::Decode {
        kind,
        message: message
            .unwrap_or("the decoder failed without a message")
            .to_string(),
    }
}

/// A command that runs `program` under `prlimit`: address space, CPU seconds (a backstop to
/// the wall deadline), no core files, and no file writes at all (output goes to a pipe).
fn sandboxed(program: &Path, limits: &VideoLimits, deadline: Instant) -> Command {
    let cpu = deadline
        .saturating_duration_since(Instant::now())
        .as_secs()
        .saturating_add(2);
    let mut command = Command::new("prlimit");
    command
        .arg(format!("--as={}", limits.max_child_memory))
        .arg(format!("--cpu={cpu}"))
        .args(["--core=0", "--fsize=0", "--nofile=64", "--"])
        .arg(program);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// A running child with a watchdog and a stderr drain.
struct Sandboxed {
    child: Arc<Mutex<Child>>,
    stdout: ChildStdout,
    stderr: std::thread::JoinHandle<String>,
    stop: mpsc::Sender<()>,
    watchdog: std::thread::JoinHandle<()>,
    timed_out: Arc<AtomicBool>,
    program: PathBuf,
    wall: Duration,
}

/// How a child ended.
struct Finished {
    status: ExitStatus,
    stderr: String,
}

/// Why streaming from a child stopped early.
enum RunError {
    Timeout { seconds: u64 },
    Input(HashError),
}

impl RunError {
    fn into_hash_error(self, _kind: MediaKind, program: &Path) -> HashError {
        match self {
            Self::Timeout { seconds } => HashError::DecodeTimeout {
                program: program.display().to_string(),
                seconds,
            },
            Self::Input(error) => error,
        }
    }
}

/// Most stderr text kept for the error message.
const STDERR_KEEP: usize = 8 * 1024;

impl Sandboxed {
    fn spawn(mut command: Command, program: &Path, deadline: Instant) -> Result<Self, HashError> {
        let mut child = command
            .spawn()
            .map_err(|error| HashError::DecoderUnavailable {
                program: "prlimit".to_string(),
                message: error.to_string(),
            })?;
        let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(HashError::DecoderIo {
                message: "the child's pipes were not created".to_string(),
            });
        };
        let stderr = std::thread::spawn(move || {
            let mut kept = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(read) = stderr.read(&mut chunk) {
                if read == 0 {
                    break;
                }
                let room = STDERR_KEEP.saturating_sub(kept.len()).min(read);
                kept.extend_from_slice(chunk.get(..room).unwrap_or_default());
            }
            String::from_utf8_lossy(&kept).into_owned()
        });
        let child = Arc::new(Mutex::new(child));
        let timed_out = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = mpsc::channel::<()>();
        let watchdog = {
            let child = Arc::clone(&child);
            let timed_out = Arc::clone(&timed_out);
            let wait = deadline.saturating_duration_since(Instant::now());
            std::thread::spawn(move || {
                if let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(wait) {
                    timed_out.store(true, Ordering::SeqCst);
                    if let Ok(mut child) = child.lock() {
                        let _ = child.kill();
                    }
                }
            })
        };
        Ok(Self {
            child,
            stdout,
            stderr,
            stop,
            watchdog,
            timed_out,
            program: program.to_path_buf(),
            wall: deadline.saturating_duration_since(Instant::now()),
        })
    }

    /// Run `read` on the child's stdout, then reap the child. An error from `read` kills the
    /// child first; a deadline kill wins over whatever `read` saw.
    fn stream(
        mut self,
        read: impl FnOnce(&mut ChildStdout) -> Result<(), HashError>,
    ) -> Result<Finished, RunError> {
        let result = read(&mut self.stdout);
        if let Ok(mut child) = self.child.lock()
            && result.is_err()
        {
            let _ = child.kill();
        }
        drop(self.stdout);
        let status = match self.child.lock() {
            Ok(mut child) => child.wait(),
            Err(_) => Err(std::io::Error::other("watchdog panicked")),
        };
        let _ = self.stop.send(());
        let _ = self.watchdog.join();
        let stderr = self.stderr.join().unwrap_or_default();
        if self.timed_out.load(Ordering::SeqCst) {
            return Err(RunError::Timeout {
                seconds: self.wall.as_secs(),
            });
        }
        result.map_err(RunError::Input)?;
        let status = status.map_err(|error| {
            RunError::Input(HashError::DecoderIo {
                message: error.to_string(),
            })
        })?;
        // prlimit exits 127 (or 126) when it cannot run the program at all.
        if matches!(status.code(), Some(126 | 127)) && stderr.contains("prlimit") {
            return Err(RunError::Input(HashError::DecoderUnavailable {
                program: self.program.display().to_string(),
                message: stderr.trim().to_string(),
            }));
        }
        Ok(Finished { status, stderr })
    }
}

/// A private copy of the input for the child to read: created exclusively, readable only by
/// this user, removed when dropped. A file rather than stdin because MP4 indexes often sit at
/// the end and the demuxer must seek.
struct PrivateCopy {
    path: PathBuf,
}

impl PrivateCopy {
    fn write(bytes: &[u8], dir: Option<&Path>) -> Result<Self, HashError> {
        use std::os::unix::fs::OpenOptionsExt;
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = dir.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "aranea-video-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = dir.join(name);
        let io_error = |error: std::io::Error| HashError::DecoderIo {
            message: format!("private input copy: {error}"),
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_error)?;
        let copy = Self { path };
        file.write_all(bytes).map_err(io_error)?;
        Ok(copy)
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PrivateCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_step_follows_the_reference() {
        assert_eq!(frame_step(1.0, 25.0), 25);
        assert_eq!(frame_step(1.0, 29.97), 29);
        assert_eq!(frame_step(0.0, 30.0), 1);
        assert_eq!(frame_step(1.0, 0.5), 1);
        assert_eq!(frame_step(f64::NAN, 30.0), 1);
        assert_eq!(frame_step(2.5, 10.0), 25);
    }

    #[test]
    fn probe_text_is_parsed_and_hostile_rates_refused() {
        let info = parse_probe(
            "width=320\nheight=240\nr_frame_rate=30/1\navg_frame_rate=0/0\nduration=N/A\nduration=4.5\n",
            MediaKind::Mp4,
        )
        .unwrap();
        assert_eq!((info.width, info.height), (320, 240));
        assert_eq!(info.frame_rate, 30.0);
        assert_eq!(info.duration_seconds, 4.5);
        assert_eq!(
            parse_probe("duration=3\n", MediaKind::Webm),
            Err(HashError::NoVideoStream {
                kind: MediaKind::Webm
            })
        );
        assert_eq!(
            parse_probe(
                "width=2\nheight=2\navg_frame_rate=0/0\nr_frame_rate=1/0\n",
                MediaKind::Avi
            ),
            Err(HashError::NoFrameRate {
                kind: MediaKind::Avi
            })
        );
        assert!(parse_rate("-5/1").is_none());
        assert!(parse_rate("30000/1001").is_some());
    }

    #[test]
    fn private_copy_is_owner_only_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let copy = PrivateCopy::write(b"abc", None).unwrap();
        let path = copy.path().to_path_buf();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        drop(copy);
        assert!(!path.exists());
    }
}
