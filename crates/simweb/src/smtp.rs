//! The abuse mailbox of every provider: an SMTP server (RFC 5321 subset: EHLO/HELO, MAIL,
//! RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT; STARTTLS per RFC 3207 on the plain port
//! and implicit TLS per RFC 8314 on a second port; AUTH PLAIN and LOGIN per RFC 4954 against
//! the world's one relay login) that stores each message and hands it to the recipient
//! providers' behaviour.
//!
//! Lines and messages are bounded; errors are answered, never panicked on. Must not relay:
//! only the world's abuse addresses are accepted as recipients.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::Shared;
use crate::behaviour;
use crate::state::Channel;

/// RFC 5321 allows 512 octets for a command line and 1000 for a text line; be generous.
const MAX_LINE: usize = 4096;
pub const MAX_MESSAGE: usize = 10 * 1024 * 1024;
const MAX_RECIPIENTS: usize = 100;
const MAX_ERRORS: u32 = 20;
const IDLE: Duration = Duration::from_secs(60);
const HANDSHAKE: Duration = Duration::from_secs(10);

/// The relay login the mailbox accepts (AUTH PLAIN or LOGIN); any other is refused with 535.
pub const SMTP_USERNAME: &str = "aranea";
pub const SMTP_PASSWORD: &str = "simweb-relay";

/// A session's connection: plain TCP, or TLS (from the first byte, or after STARTTLS).
enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

type Reader = BufReader<Conn>;

/// Serves SMTP on `listener`: plain with STARTTLS offered, or (`implicit_tls`) TLS from the
/// first byte.
pub async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    acceptor: TlsAcceptor,
    implicit_tls: bool,
) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let shared = shared.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let conn = if implicit_tls {
                match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => Conn::Tls(Box::new(tls)),
                    _ => return,
                }
            } else {
                Conn::Plain(stream)
            };
            let _ = session(conn, shared, acceptor).await;
        });
    }
}

enum Line {
    Text(String),
    TooLong,
    Eof,
}

async fn read_line(reader: &mut Reader) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let available = match tokio::time::timeout(IDLE, reader.fill_buf()).await {
            Ok(result) => result?,
            Err(_) => return Ok(Line::Eof),
        };
        if available.is_empty() {
            return Ok(Line::Eof);
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if !too_long {
            line.extend_from_slice(available.get(..take).unwrap_or_default());
            if line.len() > MAX_LINE {
                too_long = true;
                line.clear();
            }
        }
        reader.consume(take);
        if done {
            if too_long {
                return Ok(Line::TooLong);
            }
            while line.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
                line.pop();
            }
            return Ok(Line::Text(String::from_utf8_lossy(&line).into_owned()));
        }
    }
}

#[derive(Default)]
struct Envelope {
    from: Option<String>,
    to: Vec<String>,
}

/// What the session knows of its client beyond the envelope.
#[derive(Default)]
struct Security {
    tls: bool,
    authenticated: Option<String>,
}

async fn session(conn: Conn, shared: Arc<Shared>, acceptor: TlsAcceptor) -> std::io::Result<()> {
    let mut security = Security {
        tls: matches!(conn, Conn::Tls(_)),
        authenticated: None,
    };
    let mut reader = BufReader::new(conn);
    reply(&mut reader, "220 mx.simweb.sim ESMTP simweb\r\n").await?;
    let mut envelope = Envelope::default();
    let mut errors = 0;
    loop {
        let line = match read_line(&mut reader).await? {
            Line::Eof => return Ok(()),
            Line::TooLong => {
                errors += 1;
                reply(&mut reader, "500 5.5.2 Line too long\r\n").await?;
                continue;
            }
            Line::Text(line) => line,
        };
        if errors >= MAX_ERRORS {
            return reply(&mut reader, "421 4.7.0 Too many errors, closing\r\n").await;
        }
        let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
        let argument = line.get(verb.len()..).unwrap_or("").trim();
        let answer: String = match verb.as_str() {
            "EHLO" => {
                let starttls = if security.tls { "" } else { "250-STARTTLS\r\n" };
                format!(
                    "250-mx.simweb.sim\r\n250-SIZE 10485760\r\n250-8BITMIME\r\n{starttls}250-AUTH PLAIN LOGIN\r\n250 PIPELINING\r\n"
                )
            }
            "HELO" => "250 mx.simweb.sim\r\n".to_owned(),
            "STARTTLS" if security.tls => "503 5.5.1 TLS already active\r\n".to_owned(),
            "STARTTLS" => {
                // Anything the client sent after STARTTLS and before the handshake would be
                // read as if it came over TLS (CVE-2011-0411): refuse instead.
                if !reader.buffer().is_empty() {
                    return reply(&mut reader, "501 5.5.4 Pipelining after STARTTLS\r\n").await;
                }
                reply(&mut reader, "220 2.0.0 Ready to start TLS\r\n").await?;
                let Conn::Plain(stream) = reader.into_inner() else {
                    return Ok(());
                };
                let tls = match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => tls,
                    _ => return Ok(()),
                };
                reader = BufReader::new(Conn::Tls(Box::new(tls)));
                // RFC 3207: the session starts over; nothing said before TLS counts.
                security = Security {
                    tls: true,
                    authenticated: None,
                };
                envelope = Envelope::default();
                continue;
            }
            "AUTH" if security.authenticated.is_some() => {
                "503 5.5.1 Already authenticated\r\n".to_owned()
            }
            "AUTH" => {
                let (answer, user) = authenticate(&mut reader, argument).await?;
                security.authenticated = user;
                answer
            }
            "MAIL" => match address(argument, "FROM:") {
                Some(from) if envelope.from.is_none() => {
                    envelope.from = Some(from);
                    "250 2.1.0 OK\r\n".to_owned()
                }
                Some(_) => "503 5.5.1 Nested MAIL command\r\n".to_owned(),
                None => "501 5.5.4 Syntax: MAIL FROM:<address>\r\n".to_owned(),
            },
            "RCPT" => match (envelope.from.is_some(), address(argument, "TO:")) {
                (false, _) => "503 5.5.1 MAIL first\r\n".to_owned(),
                (true, None) => "501 5.5.4 Syntax: RCPT TO:<address>\r\n".to_owned(),
                (true, Some(_)) if envelope.to.len() >= MAX_RECIPIENTS => {
                    "452 4.5.3 Too many recipients\r\n".to_owned()
                }
                (true, Some(to)) if shared.world.provider_by_email(&to).is_some() => {
                    envelope.to.push(to);
                    "250 2.1.5 OK\r\n".to_owned()
                }
                (true, Some(_)) => "550 5.1.1 No such mailbox here\r\n".to_owned(),
            },
            "DATA" if envelope.to.is_empty() => "503 5.5.1 RCPT first\r\n".to_owned(),
            "DATA" => {
                reply(&mut reader, "354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                match read_message(&mut reader).await? {
                    Some(message) => {
                        let from = envelope.from.take().unwrap_or_default();
                        let to = std::mem::take(&mut envelope.to);
                        let ids = deliver(&shared, &from, &to, message, &security);
                        format!("250 2.0.0 OK queued as {ids}\r\n")
                    }
                    None => {
                        envelope = Envelope::default();
                        "552 5.3.4 Message too big\r\n".to_owned()
                    }
                }
            }
            "RSET" => {
                envelope = Envelope::default();
                "250 2.0.0 OK\r\n".to_owned()
            }
            "NOOP" => "250 2.0.0 OK\r\n".to_owned(),
            "VRFY" => "252 2.1.5 Cannot verify, send some mail\r\n".to_owned(),
            "QUIT" => return reply(&mut reader, "221 2.0.0 Bye\r\n").await,
            _ => {
                errors += 1;
                "500 5.5.2 Command not recognized\r\n".to_owned()
            }
        };
        reply(&mut reader, &answer).await?;
    }
}

/// Checks the login against [`SMTP_USERNAME`] and [`SMTP_PASSWORD`]; the exchange follows
/// RFC 4954 for PLAIN and LOGIN. Returns the reply and the user, when accepted.
async fn authenticate(
    reader: &mut Reader,
    argument: &str,
) -> std::io::Result<(String, Option<String>)> {
    let mut parts = argument.split_whitespace();
    let mechanism = parts.next().unwrap_or("").to_ascii_uppercase();
    let initial = parts.next().map(str::to_owned);
    let prompts: &[&str] = match (mechanism.as_str(), &initial) {
        ("PLAIN", Some(_)) => &[],
        ("PLAIN", None) => &["334 \r\n"],
        ("LOGIN", Some(_)) => &["334 UGFzc3dvcmQ6\r\n"],
        ("LOGIN", None) => &["334 VXNlcm5hbWU6\r\n", "334 UGFzc3dvcmQ6\r\n"],
        _ => {
            let answer = "504 5.5.4 Unrecognized authentication type\r\n".to_owned();
            return Ok((answer, None));
        }
    };
    let mut answers: Vec<String> = initial.into_iter().collect();
    for prompt in prompts {
        reply(reader, prompt).await?;
        match read_line(reader).await? {
            Line::Text(answer) if answer.trim() == "*" => {
                return Ok(("501 5.7.0 Authentication cancelled\r\n".to_owned(), None));
            }
            Line::Text(answer) => answers.push(answer.trim().to_owned()),
            Line::TooLong => {
                let answer = "500 5.5.6 Authentication exchange line too long\r\n".to_owned();
                return Ok((answer, None));
            }
            Line::Eof => return Err(std::io::ErrorKind::UnexpectedEof.into()),
        }
    }
    let decode = |text: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
    };
    let decoded: Option<Vec<String>> = answers.iter().map(|a| decode(a)).collect();
    let Some(decoded) = decoded else {
        return Ok(("501 5.5.2 Cannot decode response\r\n".to_owned(), None));
    };
    // PLAIN: authzid NUL authcid NUL password; LOGIN: user, then password.
    let (user, password) = match (mechanism.as_str(), decoded.as_slice()) {
        ("PLAIN", [one]) => {
            let mut fields = one.split('\0').skip(1);
            (fields.next(), fields.next())
        }
        (_, [user, password]) => (Some(user.as_str()), Some(password.as_str())),
        _ => (None, None),
    };
    if user == Some(SMTP_USERNAME) && password == Some(SMTP_PASSWORD) {
        let answer = "235 2.7.0 Authentication successful\r\n".to_owned();
        Ok((answer, Some(SMTP_USERNAME.to_owned())))
    } else {
        let answer = "535 5.7.8 Authentication credentials invalid\r\n".to_owned();
        Ok((answer, None))
    }
}

async fn reply(reader: &mut Reader, text: &str) -> std::io::Result<()> {
    let stream = reader.get_mut();
    stream.write_all(text.as_bytes()).await?;
    stream.flush().await
}

/// `FROM:<a@b>` or `TO:<a@b> PARAMS` → the address (empty allowed for the null sender).
fn address(argument: &str, prefix: &str) -> Option<String> {
    let upper = argument.to_ascii_uppercase();
    if !upper.starts_with(prefix) {
        return None;
    }
    let rest = argument.get(prefix.len()..)?.trim_start();
    let inner = rest.strip_prefix('<')?;
    let end = inner.find('>')?;
    let addr = inner.get(..end)?;
    if addr.len() > 254 || addr.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    if prefix == "TO:" && !addr.contains('@') {
        return None;
    }
    Some(addr.to_owned())
}

/// Reads DATA up to the lone dot; `None` if it was larger than allowed (the rest is drained).
async fn read_message(reader: &mut Reader) -> std::io::Result<Option<String>> {
    let mut message = String::new();
    let mut too_big = false;
    loop {
        let line = match read_line(reader).await? {
            Line::Eof => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Line::TooLong => {
                too_big = true;
                continue;
            }
            Line::Text(line) => line,
        };
        if line == "." {
            return Ok(if too_big { None } else { Some(message) });
        }
        let unstuffed = line.strip_prefix('.').unwrap_or(&line);
        if message.len() + unstuffed.len() + 2 > MAX_MESSAGE {
            too_big = true;
        }
        if !too_big {
            message.push_str(unstuffed);
            message.push_str("\r\n");
        }
    }
}

fn deliver(
    shared: &Shared,
    from: &str,
    to: &[String],
    message: String,
    security: &Security,
) -> String {
    let mut providers: Vec<usize> = to
        .iter()
        .filter_map(|a| shared.world.provider_by_email(a))
        .map(|p| p.id)
        .collect();
    providers.sort_unstable();
    providers.dedup();
    let ids: Vec<String> = providers
        .into_iter()
        .map(|p| {
            let index = behaviour::receive(
                shared,
                behaviour::Arrival {
                    channel: Channel::Smtp,
                    provider: p,
                    from: from.to_owned(),
                    to: to.to_vec(),
                    key: behaviour::message_id(&message),
                    raw: message.clone(),
                    tls: security.tls,
                    authenticated: security.authenticated.clone(),
                },
            );
            format!("SIM-{index:06}")
        })
        .collect();
    ids.join(",")
}
