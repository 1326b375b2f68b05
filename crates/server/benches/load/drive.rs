//! The load generator: keep-alive HTTP/1.1 connections over loopback, closed loop (each
//! connection sends its next request when the last is answered; woken by every answer, or
//! ticked: asleep between turns) or paced (open loop: requests
//! at a fixed rate, latency counted from when a request was due, so a stalled server is not
//! hidden by the generator waiting for it).
//!
//! It shares the 2 cores with the server it measures, so every CPU microsecond it spends is
//! taken from the server: one thread, one `epoll` (mio) for all connections, requests written
//! from prepared bytes, responses parsed in place without allocating, a socket read only
//! when the kernel says it is readable (an async runtime's speculative read costs an extra
//! `EAGAIN` system call per request), and no read after a response is complete. Its own CPU
//! time is measured and reported per request.

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

pub struct LoadResult {
    pub requests: usize,
    pub errors: usize,
    pub per_second: f64,
    /// CPU seconds the generator itself used (user + system).
    pub generator_cpu_secs: f64,
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

    /// The generator's CPU time per answered request, in µs.
    pub fn generator_us_per_request(&self) -> f64 {
        self.generator_cpu_secs * 1e6 / self.requests.max(1) as f64
    }

    pub fn describe(&self) -> String {
        format!(
            "{:.0} requests/s ({} requests, {} errors), latency p50 {:.2} ms, p99 {:.2} ms; generator {:.1} CPU µs/request",
            self.per_second,
            self.requests,
            self.errors,
            self.latency_ms(0.50),
            self.latency_ms(0.99),
            self.generator_us_per_request()
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
    /// Closed loop, but the generator sleeps `tick` between turns and then takes every answer
    /// that arrived meanwhile, instead of waking for each one. Woken per answer, the generator
    /// preempts the server on one of the two cores it shares with it once per request (about
    /// 14 CPU µs per request at 1M, a seventh of what the server spends); a sleeping generator
    /// is not woken by an answer at all. The cost: an answer waits up to a tick before the
    /// generator sees it, which latency includes (so percentiles err high, not low), and each
    /// connection idles that long before its next request.
    Ticked(Duration),
    /// This many requests per second in total, spread evenly over the connections.
    Rate(f64),
}

/// One keep-alive connection and the request it has in flight.
struct Connection {
    stream: TcpStream,
    token: Token,
    /// Index of the next request to send (connections start at different requests).
    next: usize,
    /// Bytes of the request in flight written so far; `None` when idle.
    written: Option<usize>,
    request: usize,
    response: Vec<u8>,
    /// When the request in flight was sent (closed loop) or due (paced).
    started: Instant,
    /// Paced: when the next request is due.
    due: Instant,
}

/// Runs `connections` keep-alive connections for `secs`, each sending its requests in turn.
pub fn drive(
    port: u16,
    requests: Vec<Vec<u8>>,
    connections: usize,
    secs: u64,
    pace: Pace,
) -> LoadResult {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(connections.max(16));
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let interval = match pace {
        Pace::ClosedLoop | Pace::Ticked(_) => None,
        Pace::Rate(rate) => Some(Duration::from_secs_f64(connections as f64 / rate)),
    };
    let tick = match pace {
        Pace::Ticked(tick) => Some(tick),
        Pace::ClosedLoop | Pace::Rate(_) => None,
    };
    let cpu_before = thread_cpu_secs();
    let started = Instant::now();
    let mut open: Vec<Connection> = (0..connections)
        .map(|c| {
            let stream = std::net::TcpStream::connect(address).unwrap();
            stream.set_nodelay(true).unwrap();
            stream.set_nonblocking(true).unwrap();
            let mut stream = TcpStream::from_std(stream);
            poll.registry()
                .register(&mut stream, Token(c), Interest::READABLE)
                .unwrap();
            // Paced connections start spread over one interval, not all at once.
            let offset =
                interval.map_or(Duration::ZERO, |i| i.mul_f64(c as f64 / connections as f64));
            Connection {
                stream,
                token: Token(c),
                next: c,
                written: None,
                request: 0,
                response: Vec::with_capacity(64 * 1024),
                started,
                due: started + offset,
            }
        })
        .collect();
    let deadline = started + Duration::from_secs(secs);
    let (mut latencies_us, mut errors) = (Vec::with_capacity(1 << 20), 0usize);
    // One read buffer for all responses: zeroing a fresh 16 KiB per response showed in a
    // profile of the generator (2 % of its time).
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        // Send what is due: closed loop, every idle connection; paced, those whose time came.
        let mut next_due = deadline;
        for connection in open.iter_mut().filter(|c| c.written.is_none()) {
            if interval.is_some() && connection.due > now {
                next_due = next_due.min(connection.due);
                continue;
            }
            connection.request = connection.next % requests.len();
            connection.next += 1;
            connection.started = if interval.is_some() {
                connection.due
            } else {
                now
            };
            if let Some(interval) = interval {
                connection.due += interval;
            }
            connection.written = Some(0);
            send(connection, &requests, &poll, false);
        }
        let timeout = match tick {
            Some(tick) => {
                std::thread::sleep(tick.min(deadline.saturating_duration_since(Instant::now())));
                Duration::ZERO
            }
            None => next_due.saturating_duration_since(Instant::now()),
        };
        poll.poll(&mut events, Some(timeout)).unwrap();
        for event in &events {
            let Some(connection) = open.get_mut(event.token().0) else {
                continue;
            };
            if event.is_writable() {
                send(connection, &requests, &poll, true);
            }
            if event.is_readable()
                && let Some(ok) = receive(connection, &mut chunk)
            {
                latencies_us.push(connection.started.elapsed().as_micros() as u32);
                errors += usize::from(!ok);
                connection.written = None;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let generator_cpu_secs = thread_cpu_secs() - cpu_before;
    LoadResult {
        requests: latencies_us.len(),
        errors,
        per_second: latencies_us.len() as f64 / elapsed,
        generator_cpu_secs,
        latencies_us,
    }
}

/// Writes what the socket takes of the request in flight; asks to hear when it takes more
/// (only large bodies, such as 1-MP JPEGs, ever need that).
fn send(connection: &mut Connection, requests: &[Vec<u8>], poll: &Poll, was_waiting: bool) {
    let Some(mut written) = connection.written else {
        return;
    };
    let bytes = &requests[connection.request];
    while written < bytes.len() {
        match connection.stream.write(&bytes[written..]) {
            Ok(0) => panic!("server closed the connection"),
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("write: {e}"),
        }
    }
    connection.written = Some(written);
    let waiting = written < bytes.len();
    if waiting != was_waiting {
        let interest = if waiting {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        poll.registry()
            .reregister(&mut connection.stream, connection.token, interest)
            .unwrap();
    }
}

/// Reads what has arrived; `Some(status was 200)` once the whole response is in.
///
/// Reads stop as soon as the response is complete rather than at `EAGAIN`: with one request
/// in flight nothing else can be waiting, so draining would only cost one more system call per
/// request (mio's readiness is edge-triggered, which is why an incomplete response keeps
/// reading until the socket is empty).
fn receive(connection: &mut Connection, chunk: &mut [u8]) -> Option<bool> {
    let (head_end, length) = loop {
        match connection.stream.read(chunk) {
            Ok(0) => panic!("server closed the connection"),
            Ok(n) => connection.response.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => panic!("read: {e}"),
        }
        if let Some((head_end, length)) = parse_head(&connection.response)
            && connection.response.len() >= head_end + length
        {
            break (head_end, length);
        }
    };
    assert_eq!(
        connection.response.len(),
        head_end + length,
        "a response arrived that was not asked for"
    );
    let ok = connection.response.starts_with(b"HTTP/1.1 200");
    connection.response.clear();
    Some(ok)
}

/// The end of the head (after its blank line) and the body's Content-Length, once the head
/// is complete.
fn parse_head(response: &[u8]) -> Option<(usize, usize)> {
    let end = response.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let length = response[..end]
        .split(|&b| b == b'\n')
        .find_map(|line| {
            let (name, value) = line.split_at(line.iter().position(|&b| b == b':')?);
            name.eq_ignore_ascii_case(b"content-length").then(|| {
                std::str::from_utf8(&value[1..])
                    .unwrap()
                    .trim()
                    .parse::<usize>()
                    .unwrap()
            })
        })
        .unwrap_or(0);
    Some((end, length))
}

/// CPU seconds of the calling thread (the generator runs on one).
fn thread_cpu_secs() -> f64 {
    super::server::cpu_secs_of("/proc/thread-self/stat")
}
