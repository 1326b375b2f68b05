//! A hand-rolled HTTP/1.1 server, so responses can misbehave on purpose (lying lengths,
//! drips, endless bodies) in ways a conforming library would not allow.
//!
//! Requests are parsed with strict bounds (head size, header count, body size, read time);
//! anything malformed gets a 400 and the connection is closed. Must not panic on any input.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 100;
const MAX_BODY: usize = 1024 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Endless bodies stop here so a test that forgets to hang up cannot fill the machine.
const ENDLESS_CAP: u64 = 4 * 1024 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub local: SocketAddr,
    pub peer: SocketAddr,
    /// Whether it arrived over TLS.
    pub tls: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query string.
    pub fn path(&self) -> &str {
        self.target.split(['?', '#']).next().unwrap_or("/")
    }

    /// The Host header without its port, lowercased.
    pub fn host(&self) -> String {
        let host = self.header("host").unwrap_or("");
        let host = host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        });
        host.trim_end_matches('.').to_ascii_lowercase()
    }
}

/// What goes on the wire after the head.
#[derive(Debug, Clone)]
pub enum Body {
    Full(Arc<Vec<u8>>),
    /// Declares `claimed` bytes in Content-Length, then sends `actual` and closes.
    LyingLength {
        claimed: u64,
        actual: Arc<Vec<u8>>,
    },
    /// Sends `total` bytes declared in Content-Length, `chunk` bytes every `every`.
    Drip {
        total: u64,
        chunk: usize,
        every: Duration,
    },
    /// No length, bytes until the client hangs up.
    Endless,
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    /// Real time to wait before answering (a slow provider).
    pub delay: Duration,
}

impl Response {
    pub fn new(status: u16, content_type: Option<&str>, body: Vec<u8>) -> Response {
        let mut headers = Vec::new();
        if let Some(ct) = content_type {
            headers.push(("Content-Type".to_owned(), ct.to_owned()));
        }
        Response {
            status,
            headers,
            body: Body::Full(Arc::new(body)),
            delay: Duration::ZERO,
        }
    }

    pub fn shared(status: u16, content_type: &str, body: Arc<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".to_owned(), content_type.to_owned())],
            body: Body::Full(body),
            delay: Duration::ZERO,
        }
    }

    pub fn html(status: u16, html: String) -> Response {
        Response::new(status, Some("text/html; charset=utf-8"), html.into_bytes())
    }

    pub fn text(status: u16, text: &str) -> Response {
        Response::new(
            status,
            Some("text/plain; charset=utf-8"),
            text.as_bytes().to_vec(),
        )
    }

    pub fn redirect(status: u16, location: &str) -> Response {
        let mut r = Response::html(status, format!("<a href=\"{location}\">moved</a>"));
        r.headers.push(("Location".to_owned(), location.to_owned()));
        r
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// Something that answers requests; the server owns connections and framing.
pub trait Service: Send + Sync + 'static {
    fn call(&self, request: Request) -> impl Future<Output = Response> + Send;
}

/// Accepts connections forever; each is served on its own task.
pub async fn serve<S: Service>(listener: std::net::TcpListener, service: Arc<S>) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            // Out of descriptors or similar: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let service = service.clone();
        tokio::spawn(async move {
            let _ = connection(stream, peer, service).await;
        });
    }
}

async fn connection<S: Service>(
    mut stream: TcpStream,
    peer: SocketAddr,
    service: Arc<S>,
) -> std::io::Result<()> {
    let local = stream.local_addr()?;
    let _ = stream.set_nodelay(true);
    let mut buffer = Vec::with_capacity(4096);
    loop {
        let head =
            match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream, &mut buffer)).await {
                Ok(Ok(Some(head))) => head,
                Ok(Ok(None)) | Err(_) => return Ok(()),
                Ok(Err(HeadError::Io(e))) => return Err(e),
                Ok(Err(HeadError::Malformed(why))) => {
                    let r = Response::text(400, why).with_header("Connection", "close");
                    return write_response(&mut stream, &r, false).await;
                }
                Ok(Err(HeadError::TooLarge)) => {
                    let r = Response::text(431, "request head too large")
                        .with_header("Connection", "close");
                    return write_response(&mut stream, &r, false).await;
                }
            };
        let (mut request, keep_alive, content_length) = match parse_head(&head, local, peer) {
            Ok(parsed) => parsed,
            Err(why) => {
                let r = Response::text(400, why).with_header("Connection", "close");
                return write_response(&mut stream, &r, false).await;
            }
        };
        if content_length > MAX_BODY {
            let r = Response::text(413, "body too large").with_header("Connection", "close");
            return write_response(&mut stream, &r, false).await;
        }
        match tokio::time::timeout(
            READ_TIMEOUT,
            read_body(&mut stream, &mut buffer, content_length),
        )
        .await
        {
            Ok(Ok(body)) => request.body = body,
            _ => return Ok(()),
        }
        let head_only = request.method == "HEAD";
        let response = service.call(request).await;
        if !response.delay.is_zero() {
            tokio::time::sleep(response.delay).await;
        }
        let closes = !keep_alive || !matches!(response.body, Body::Full(_));
        write_response(&mut stream, &response, head_only).await?;
        if closes {
            let _ = stream.shutdown().await;
            return Ok(());
        }
    }
}

enum HeadError {
    Io(std::io::Error),
    Malformed(&'static str),
    TooLarge,
}

/// Reads until CRLFCRLF; leftover bytes stay in `buffer` for the body or the next request.
async fn read_head(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
) -> Result<Option<Vec<u8>>, HeadError> {
    loop {
        if let Some(end) = find(buffer, b"\r\n\r\n") {
            let head: Vec<u8> = buffer.drain(..end + 4).collect();
            return Ok(Some(head));
        }
        if buffer.len() > MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.map_err(HeadError::Io)?;
        if n == 0 {
            return if buffer.iter().all(|b| b.is_ascii_whitespace()) {
                Ok(None)
            } else {
                Err(HeadError::Malformed("truncated request head"))
            };
        }
        buffer.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

async fn read_body(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    length: usize,
) -> std::io::Result<Vec<u8>> {
    while buffer.len() < length {
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
    Ok(buffer.drain(..length).collect())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

type Parsed = (Request, bool, usize);

fn parse_head(head: &[u8], local: SocketAddr, peer: SocketAddr) -> Result<Parsed, &'static str> {
    let text = std::str::from_utf8(head).map_err(|_| "request head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().ok_or("empty request")?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed request line");
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err("malformed method");
    }
    if !(target.starts_with('/') || target.starts_with("http://") || target.starts_with("https://"))
        || target.len() > 8192
    {
        return Err("malformed request target");
    }
    let keep_alive_default = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err("unsupported HTTP version"),
    };
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').ok_or("header without colon")?;
        if name.is_empty()
            || name
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err("malformed header name");
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
        if headers.len() > MAX_HEADERS {
            return Err("too many headers");
        }
    }
    let header = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.as_str())
    };
    if header("transfer-encoding").is_some() {
        return Err("chunked request bodies are not accepted");
    }
    let content_length = match header("content-length") {
        Some(v) => v.parse::<usize>().map_err(|_| "malformed Content-Length")?,
        None => 0,
    };
    let keep_alive = match header("connection").map(str::to_ascii_lowercase) {
        Some(c) if c.contains("close") => false,
        Some(c) if c.contains("keep-alive") => true,
        _ => keep_alive_default,
    };
    // An absolute-form target is turned into origin-form with its host as the Host header.
    let (target, headers) = match target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    {
        Some(rest) => {
            let (authority, path) = rest.find('/').map_or((rest, "/"), |i| {
                (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("/"))
            });
            let mut headers: Vec<_> = headers
                .into_iter()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("host"))
                .collect();
            headers.push(("Host".to_owned(), authority.to_owned()));
            (path.to_owned(), headers)
        }
        None => (target.to_owned(), headers),
    };
    let request = Request {
        method: method.to_owned(),
        target,
        headers,
        body: Vec::new(),
        local,
        peer,
        tls: false,
    };
    Ok((request, keep_alive, content_length))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        410 => "Gone",
        413 => "Payload Too Large",
        421 => "Misdirected Request",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

async fn write_response(
    stream: &mut TcpStream,
    response: &Response,
    head_only: bool,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nServer: simweb\r\n",
        response.status,
        reason(response.status)
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let length = match &response.body {
        Body::Full(bytes) => Some(bytes.len() as u64),
        Body::LyingLength { claimed, .. } => Some(*claimed),
        Body::Drip { total, .. } => Some(*total),
        Body::Endless => None,
    };
    if let Some(length) = length {
        head.push_str(&format!("Content-Length: {length}\r\n"));
    }
    if !matches!(response.body, Body::Full(_)) {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    if head_only {
        return stream.flush().await;
    }
    match &response.body {
        Body::Full(bytes) => stream.write_all(bytes).await?,
        Body::LyingLength { actual, .. } => stream.write_all(actual).await?,
        Body::Drip {
            total,
            chunk,
            every,
        } => {
            let filler = vec![b'.'; (*chunk).max(1)];
            let mut sent = 0u64;
            while sent < *total {
                let n = (*total - sent).min(filler.len() as u64) as usize;
                stream
                    .write_all(filler.get(..n).unwrap_or_default())
                    .await?;
                stream.flush().await?;
                sent += n as u64;
                tokio::time::sleep(*every).await;
            }
        }
        Body::Endless => {
            let block = vec![b'A'; 64 * 1024];
            let mut sent = 0u64;
            while sent < ENDLESS_CAP {
                stream.write_all(&block).await?;
                sent += block.len() as u64;
            }
        }
    }
    stream.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 80))
    }

    #[test]
    fn absolute_form_target_becomes_host_and_path() {
        let head = b"GET http://a.sim:8080/x?y=1 HTTP/1.1\r\nHost: other\r\n\r\n";
        let (r, keep, len) = parse_head(head, addr(), addr()).unwrap();
        assert_eq!(r.target, "/x?y=1");
        assert_eq!(r.host(), "a.sim");
        assert!(keep);
        assert_eq!(len, 0);
    }

    #[test]
    fn malformed_heads_are_rejected() {
        for head in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET / HTTP/9.9\r\n\r\n",
            b"get / HTTP/1.1\r\n\r\n",
            b"GET nopath HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
            b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\n\xff\xfe: x\r\n\r\n",
            b"GET  / HTTP/1.1\r\n\r\n",
        ] {
            assert!(
                parse_head(head, addr(), addr()).is_err(),
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }
}
