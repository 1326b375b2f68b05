//! Sending one claimed notice: SMTP (lettre: STARTTLS or implicit TLS on rustls/ring,
//! AUTH, optional DKIM) or webhook (JSON POST signed with HMAC-SHA256 over timestamp and
//! body, through the SSRF guard: a tenant-supplied URL is outside input).
//!
//! The exactly-once contract with the store: everything that cannot deliver the notice
//! (connect, TLS, EHLO, AUTH, MAIL, RCPT; building the request) happens in `sending`; the
//! caller's `commit` hook moves the notice to `committing` just before the bytes that
//! deliver it (DATA, the POST). A worker that dies in `committing` leaves the provider's copy
//! in doubt, so the notice is sent again, and every attempt carries the notice's one
//! idempotency key (the `Message-ID`, the `Idempotency-Key` header): a receiver that
//! deduplicates by it keeps exactly one. Must never attach media: a notice is text, HTML and
//! XARF.

use std::time::Duration;

use aranea_crawl::ssrf::{AddressPolicy, GuardedResolver};
use aranea_store::Notice;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, Certificate, CertificateStore, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, Message};

use crate::config::{NoticeConfig, SmtpConfig};
use crate::link::webhook_signature;

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted by the server; the detail says by whom (queue id, HTTP status).
    Accepted(String),
    /// Worth retrying later (4xx SMTP, timeouts, connection refused, HTTP 5xx/429).
    Transient(String),
    /// This contact will not take it (5xx SMTP such as unknown mailbox, HTTP 4xx): bounce.
    Permanent(String),
    /// Our own relay failed us before any recipient was named (TLS, AUTH, a refused sender):
    /// retried with back-off, never blamed on the contact.
    Relay(String),
    /// The commit hook refused (lease lost): nothing was sent.
    LeaseLost,
}

/// A step at which a crash test kills the worker (`ARANEA_NOTICE_CRASH_AT=step`): the worker
/// announces the step on stderr and waits there to be killed (`kill -9` by the test), so the
/// process dies with the exchange exactly where it stands; if nobody kills it within a minute
/// it aborts (SIGABRT, no unwinding either).
pub fn crash_point(step: &str) {
    if std::env::var("ARANEA_NOTICE_CRASH_AT").is_ok_and(|v| v == step) {
        use std::io::Write;
        let mut stderr = std::io::stderr();
        let _ = writeln!(stderr, "{CRASH_POINT_MARK}{step}");
        let _ = stderr.flush();
        std::thread::sleep(std::time::Duration::from_secs(60));
        std::process::abort();
    }
}

/// What [`crash_point`] prints before waiting to be killed.
pub const CRASH_POINT_MARK: &str = "aranea-notice crash point: ";

/// The webhook client: guarded DNS, no redirects, no proxies.
pub struct WebhookClient {
    client: reqwest::Client,
    policy: std::sync::Arc<AddressPolicy>,
}

impl WebhookClient {
    pub fn new(
        resolver: GuardedResolver,
        policy: std::sync::Arc<AddressPolicy>,
    ) -> Result<WebhookClient, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(resolver)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("aranea-notice/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(WebhookClient { client, policy })
    }
}

/// The webhook body: the notice's reference, URLs, XARF reports and respond link, as event
/// `reported`; a retraction is event `withdrawn`, naming each URL with the references it was
/// reported under (and no reports).
pub fn webhook_body(notice: &Notice) -> String {
    if notice.kind == crate::retraction::KIND {
        let document: serde_json::Value =
            serde_json::from_str(&notice.xarf).unwrap_or(serde_json::Value::Null);
        let withdraws = document
            .get("withdraws")
            .cloned()
            .unwrap_or(serde_json::Value::Array(Vec::new()));
        let urls: Vec<serde_json::Value> = withdraws
            .as_array()
            .map(|w| w.iter().filter_map(|x| x.get("url").cloned()).collect())
            .unwrap_or_default();
        return serde_json::json!({
            "event": "withdrawn",
            "notice": notice.report_id,
            "idempotency_key": notice.idempotency_key,
            "kind": notice.kind,
            "provider": notice.provider_name,
            "subject": notice.subject,
            "urls": urls,
            "withdraws": withdraws,
            "test": notice.test,
        })
        .to_string();
    }
    let reports: serde_json::Value =
        serde_json::from_str(&notice.xarf).unwrap_or(serde_json::Value::Null);
    let urls: Vec<serde_json::Value> = reports
        .as_array()
        .map(|r| r.iter().filter_map(|x| x.get("url").cloned()).collect())
        .unwrap_or_default();
    serde_json::json!({
        "event": "reported",
        "notice": notice.report_id,
        "idempotency_key": notice.idempotency_key,
        "kind": notice.kind,
        "provider": notice.provider_name,
        "via_cdn": notice.via_cdn,
        "subject": notice.subject,
        "urls": urls,
        "reports": reports,
        "test": notice.test,
    })
    .to_string()
}

/// POSTs the notice. `commit` is awaited just before the request is sent.
pub async fn send_webhook<F, Fut>(
    client: &WebhookClient,
    notice: &Notice,
    secret: &[u8],
    now_secs: i64,
    commit: F,
) -> Outcome
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let url = match url::Url::parse(&notice.recipient) {
        Ok(url) => url,
        Err(e) => return Outcome::Permanent(format!("bad webhook URL: {e}")),
    };
    if let Err(e) = client.policy.check_url(&url) {
        return Outcome::Permanent(format!("webhook URL refused by the SSRF guard: {e}"));
    }
    let body = webhook_body(notice);
    let signature = webhook_signature(secret, now_secs, body.as_bytes());
    let request = client
        .client
        .post(url)
        .header("content-type", "application/json")
        .header("idempotency-key", &notice.idempotency_key)
        .header("x-aranea-signature", signature)
        .body(body);
    crash_point("connected");
    if !commit().await {
        return Outcome::LeaseLost;
    }
    crash_point("committing");
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            crash_point("accepted");
            match status {
                200..=299 => Outcome::Accepted(format!("webhook answered HTTP {status}")),
                408 | 425 | 429 | 500..=599 => {
                    Outcome::Transient(format!("webhook answered HTTP {status}"))
                }
                _ => Outcome::Permanent(format!("webhook answered HTTP {status}")),
            }
        }
        Err(e) if e.is_connect() || e.is_timeout() => {
            Outcome::Transient(format!("webhook unreachable: {e}"))
        }
        Err(e) => Outcome::Transient(format!("webhook request failed: {e}")),
    }
}

/// The RFC 5322 message of a notice: text and HTML alternatives plus the XARF reports as a
/// JSON attachment; Message-ID is the idempotency key.
pub fn email_message(
    config: &NoticeConfig,
    notice: &Notice,
    dkim: Option<&lettre::message::dkim::DkimConfig>,
) -> Result<Vec<u8>, String> {
    let from: Mailbox = format!("{} <{}>", config.hotline.name, config.hotline.email)
        .parse()
        .map_err(|e| format!("sender address: {e}"))?;
    let to: Mailbox = notice
        .recipient
        .parse()
        .map_err(|e| format!("recipient address {:?}: {e}", notice.recipient))?;
    let json = ContentType::parse("application/json").map_err(|e| e.to_string())?;
    let mut message = Message::builder()
        .from(from)
        .to(to)
        .subject(notice.subject.clone())
        .message_id(Some(format!(
            "<{}@{}>",
            notice.idempotency_key, config.hotline.domain
        )))
        .multipart({
            let parts = MultiPart::mixed().multipart(MultiPart::alternative_plain_html(
                notice.body_text.clone(),
                notice.body_html.clone(),
            ));
            // A retraction carries no XARF: an automated intake must not read it as a report.
            let parts = if notice.kind == crate::retraction::KIND {
                parts
            } else {
                parts.singlepart(
                    Attachment::new("xarf-reports.json".to_owned()).body(notice.xarf.clone(), json),
                )
            };
            parts.singlepart(SinglePart::plain(format!(
                "Idempotency-Key: {}\r\n",
                notice.idempotency_key
            )))
        })
        .map_err(|e| format!("building the message: {e}"))?;
    if let Some(dkim) = dkim {
        message.sign(dkim);
    }
    Ok(message.formatted())
}

/// TLS towards the relay: the system's roots unless configured off, plus `ca_files`.
fn tls_parameters(smtp: &SmtpConfig, host: &str) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(host.to_owned());
    if !smtp.system_roots {
        builder = builder.certificate_store(CertificateStore::None);
    }
    for path in &smtp.ca_files {
        let pem = std::fs::read(path).map_err(|e| format!("CA file {}: {e}", path.display()))?;
        let cert =
            Certificate::from_pem(&pem).map_err(|e| format!("CA file {}: {e}", path.display()))?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build_rustls().map_err(|e| e.to_string())
}

fn classify(error: &lettre::transport::smtp::Error) -> Outcome {
    if error.is_permanent() {
        Outcome::Permanent(format!("SMTP: {error}"))
    } else {
        Outcome::Transient(format!("SMTP: {error}"))
    }
}

/// Sends by SMTP through the configured relay. `commit` is awaited after RCPT, just before
/// DATA.
pub async fn send_smtp<F, Fut>(
    config: &NoticeConfig,
    notice: &Notice,
    message: &[u8],
    commit: F,
) -> Outcome
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let smtp: &SmtpConfig = &config.smtp;
    let Some(host) = smtp.host.as_deref() else {
        return Outcome::Transient("no SMTP relay configured".to_owned());
    };
    let timeout = Some(Duration::from_secs(smtp.timeout_secs.max(1)));
    let hello = ClientId::Domain(config.hotline.domain.clone());
    let relay = |what: &str, e: &dyn std::fmt::Display| Outcome::Relay(format!("{what}: {e}"));
    let implicit = match smtp.tls.as_str() {
        "tls" => match tls_parameters(smtp, host) {
            Ok(p) => Some(p),
            Err(e) => return relay("TLS set-up", &e),
        },
        _ => None,
    };
    let mut conn = match AsyncSmtpConnection::connect_tokio1(
        (host, smtp.port),
        timeout,
        &hello,
        implicit,
        None,
    )
    .await
    {
        Ok(conn) => conn,
        Err(e) => return relay("SMTP relay", &e),
    };
    if smtp.tls == "starttls" {
        let params = match tls_parameters(smtp, host) {
            Ok(p) => p,
            Err(e) => return relay("TLS set-up", &e),
        };
        if !conn.can_starttls() {
            return Outcome::Relay("SMTP relay does not offer STARTTLS".to_owned());
        }
        if let Err(e) = conn.starttls(params, &hello).await {
            return relay("SMTP STARTTLS", &e);
        }
    }
    if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
        let credentials = Credentials::new(user.clone(), password.clone());
        if let Err(e) = conn
            .auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
            .await
        {
            return relay("SMTP relay refused authentication", &e);
        }
    }
    crash_point("connected");
    let from: Option<Address> = config.hotline.email.parse().ok();
    let to: Address = match notice.recipient.parse() {
        Ok(a) => a,
        Err(e) => return Outcome::Permanent(format!("recipient address: {e}")),
    };
    let mut params = Vec::new();
    if !message.is_ascii() {
        params.push(lettre::transport::smtp::extension::MailParameter::Body(
            lettre::transport::smtp::extension::MailBodyParameter::EightBitMime,
        ));
    }
    if let Err(e) = conn.command(Mail::new(from, params)).await {
        return relay("SMTP relay refused the sender", &e);
    }
    if let Err(e) = conn.command(Rcpt::new(to, vec![])).await {
        conn.abort().await;
        return classify(&e);
    }
    if !commit().await {
        conn.abort().await;
        return Outcome::LeaseLost;
    }
    crash_point("committing");
    if let Err(e) = conn.command(Data).await {
        return classify(&e);
    }
    // The server is reading the message: a crash here leaves it half-received (discarded).
    crash_point("data");
    let outcome = match conn.message(message).await {
        Ok(response) => Outcome::Accepted(format!(
            "SMTP {}: {}",
            u16::from(response.code()),
            response.message().collect::<Vec<_>>().join(" ")
        )),
        Err(e) => classify(&e),
    };
    crash_point("accepted");
    let _ = conn.quit().await;
    outcome
}
