//! The abuse mailbox of every provider: an SMTP server (RFC 5321 subset: EHLO/HELO, MAIL,
//! RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT) that stores each message and hands it to
//! the recipient providers' behaviour.
//!
//! Lines and messages are bounded; errors are answered, never panicked on. Must not relay:
//! only the world's abuse addresses are accepted as recipients.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::Shared;
use crate::behaviour;
use crate::state::Channel;

/// RFC 5321 allows 512 octets for a command line and 1000 for a text line; be generous.
const MAX_LINE: usize = 4096;
pub const MAX_MESSAGE: usize = 10 * 1024 * 1024;
const MAX_RECIPIENTS: usize = 100;
const MAX_ERRORS: u32 = 20;
const IDLE: Duration = Duration::from_secs(60);

pub async fn serve(listener: std::net::TcpListener, shared: Arc<Shared>) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _ = session(stream, shared).await;
        });
    }
}

enum Line {
    Text(String),
    TooLong,
    Eof,
}

async fn read_line(reader: &mut BufReader<TcpStream>) -> std::io::Result<Line> {
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

async fn session(stream: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
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
                "250-mx.simweb.sim\r\n250-SIZE 10485760\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n250 PIPELINING\r\n"
                    .to_owned()
            }
            "HELO" => "250 mx.simweb.sim\r\n".to_owned(),
            "AUTH" => authenticate(&mut reader, argument).await?,
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
                        let ids = deliver(&shared, &from, &to, message);
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

/// Accepts any credentials (this is a sink, not a gate), so senders configured with a login
/// work unchanged; the exchange follows RFC 4954 for PLAIN and LOGIN.
async fn authenticate(
    reader: &mut BufReader<TcpStream>,
    argument: &str,
) -> std::io::Result<String> {
    let mut parts = argument.split_whitespace();
    let mechanism = parts.next().unwrap_or("").to_ascii_uppercase();
    let initial = parts.next();
    let prompts: &[&str] = match (mechanism.as_str(), initial) {
        ("PLAIN", Some(_)) => &[],
        ("PLAIN", None) => &["334 \r\n"],
        ("LOGIN", Some(_)) => &["334 UGFzc3dvcmQ6\r\n"],
        ("LOGIN", None) => &["334 VXNlcm5hbWU6\r\n", "334 UGFzc3dvcmQ6\r\n"],
        _ => return Ok("504 5.5.4 Unrecognized authentication type\r\n".to_owned()),
    };
    for prompt in prompts {
        reply(reader, prompt).await?;
        match read_line(reader).await? {
            Line::Text(answer) if answer.trim() == "*" => {
                return Ok("501 5.7.0 Authentication cancelled\r\n".to_owned());
            }
            Line::Text(_) => {}
            Line::TooLong => {
                return Ok("500 5.5.6 Authentication exchange line too long\r\n".to_owned());
            }
            Line::Eof => return Err(std::io::ErrorKind::UnexpectedEof.into()),
        }
    }
    Ok("235 2.7.0 Authentication successful\r\n".to_owned())
}

async fn reply(reader: &mut BufReader<TcpStream>, text: &str) -> std::io::Result<()> {
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
async fn read_message(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<String>> {
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

fn deliver(shared: &Shared, from: &str, to: &[String], message: String) -> String {
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
                Channel::Smtp,
                p,
                from.to_owned(),
                to.to_vec(),
                message.clone(),
            );
            format!("SIM-{index:06}")
        })
        .collect();
    ids.join(",")
}
