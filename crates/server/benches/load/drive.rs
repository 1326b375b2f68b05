//! The load generator: keep-alive HTTP/1.1 connections over loopback, closed loop (each
//! connection sends its next request when the last is answered) or paced (open loop: requests
//! at a fixed rate, latency counted from when a request was due, so a stalled server is not
//! hidden by the generator waiting for it).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct LoadResult {
    pub requests: usize,
    pub errors: usize,
    pub per_second: f64,
    latencies_us: Vec<u32>,
}

impl LoadResult {
    /// Latency at quantile `p` (0..1), in ms.
    pub fn latency_ms(&self, p: f64) -> f64 {
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        let at = ((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1));
        f64::from(sorted.get(at).copied().unwrap_or(0)) / 1000.0
    }

    pub fn describe(&self) -> String {
        format!(
            "{:.0} requests/s ({} requests, {} errors), latency p50 {:.2} ms, p99 {:.2} ms",
            self.per_second,
            self.requests,
            self.errors,
            self.latency_ms(0.50),
            self.latency_ms(0.99)
        )
    }
}

pub fn request(method_path: &str, credentials: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let token = base64::engine::general_purpose::STANDARD.encode(credentials);
    let mut bytes = format!(
        "{method_path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Basic {token}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// How requests are sent.
#[derive(Clone, Copy)]
pub enum Pace {
    /// Each connection sends as soon as its last request is answered.
    ClosedLoop,
    /// This many requests per second in total, spread evenly over the connections.
    Rate(f64),
}

/// Runs `connections` keep-alive connections for `secs`, each sending its requests in turn.
pub fn drive(
    port: u16,
    requests: Vec<Vec<u8>>,
    connections: usize,
    secs: u64,
    pace: Pace,
) -> LoadResult {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let requests = Arc::new(requests);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let results = runtime.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..connections {
            let (requests, stop) = (Arc::clone(&requests), Arc::clone(&stop));
            tasks.push(tokio::spawn(async move {
                let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .unwrap();
                stream.set_nodelay(true).unwrap();
                let (mut latencies, mut errors) = (Vec::new(), 0usize);
                let mut buffer = vec![0u8; 64 * 1024];
                let interval = match pace {
                    Pace::ClosedLoop => None,
                    Pace::Rate(rate) => Some(Duration::from_secs_f64(connections as f64 / rate)),
                };
                // Connections start spread over one interval, not all at once.
                let mut due = Instant::now()
                    + interval.map_or(Duration::ZERO, |i| i.mul_f64(c as f64 / connections as f64));
                let mut i = c;
                while !stop.load(Ordering::Relaxed) {
                    let sent = match interval {
                        None => Instant::now(),
                        Some(interval) => {
                            tokio::time::sleep_until(due.into()).await;
                            let was_due = due;
                            due += interval;
                            was_due
                        }
                    };
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    stream
                        .write_all(&requests[i % requests.len()])
                        .await
                        .unwrap();
                    i += 1;
                    if !read_response(&mut stream, &mut buffer).await {
                        errors += 1;
                    }
                    latencies.push(sent.elapsed().as_micros() as u32);
                }
                (latencies, errors)
            }));
        }
        tokio::time::sleep(Duration::from_secs(secs)).await;
        stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for task in tasks {
            all.push(task.await.unwrap());
        }
        all
    });
    let elapsed = started.elapsed().as_secs_f64();
    let errors = results.iter().map(|r| r.1).sum();
    let latencies_us: Vec<u32> = results.into_iter().flat_map(|r| r.0).collect();
    LoadResult {
        requests: latencies_us.len(),
        errors,
        per_second: latencies_us.len() as f64 / elapsed,
        latencies_us,
    }
}

/// Reads one response; true when it was a 200.
async fn read_response(stream: &mut tokio::net::TcpStream, buffer: &mut [u8]) -> bool {
    let mut filled = 0;
    loop {
        let n = stream.read(&mut buffer[filled..]).await.unwrap();
        assert!(n > 0, "server closed the connection");
        filled += n;
        let Some(end) = buffer[..filled].windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = std::str::from_utf8(&buffer[..end]).unwrap().to_owned();
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        while filled < end + 4 + length {
            let n = stream.read(&mut buffer[filled..]).await.unwrap();
            assert!(n > 0, "server closed the connection");
            filled += n;
        }
        return head.starts_with("HTTP/1.1 200");
    }
}
