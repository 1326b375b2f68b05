//! A real server on a loopback socket, and a minimal HTTP/1.1 client, for the end-to-end
//! tests. The client is written out (not a crate) so tests can send what no polite client
//! would: wrong methods, lying headers, truncated bodies.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use aranea_server::{AppState, ServerConfig};
use aranea_store::Store;
use serde_json::Value;

pub struct Server {
    pub addr: SocketAddr,
    pub store: Store,
    pub dir: PathBuf,
    pub state: AppState,
    _runtime: tokio::runtime::Runtime,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The analyst [`install_review_ui`] registers, as the UI tests sign in.
pub const ANALYST: &str = "ana";
pub const PASSWORD: &str = "correct horse battery staple";

/// Registers hotline `gb` and its analyst [`ANALYST`] (password [`PASSWORD`]).
pub async fn add_hotline_and_analyst(review: &aranea_review::Review) {
    use aranea_review::{AuditActor, NewUserRequest};
    use aranea_store::{NewHotline, UserRole};
    let hotline = NewHotline {
        code: "gb".into(),
        name: "Hotline gb".into(),
        country: "GB".into(),
        languages: vec!["en".into()],
        jurisdiction: "GB".into(),
        shares_review_pool: true,
        shares_banks: true,
        daily_cap: 100,
    };
    let now = aranea_review::now_millis();
    let gb = review
        .add_hotline(AuditActor::Cli, &hotline, now)
        .await
        .unwrap();
    let analyst = NewUserRequest {
        hotline: gb,
        username: ANALYST.into(),
        display_name: String::new(),
        role: UserRole::Analyst,
        password: PASSWORD.into(),
    };
    review
        .add_user(AuditActor::Cli, analyst, now)
        .await
        .unwrap();
}

/// Signs [`ANALYST`] in through the login form over a socket; returns the session token.
pub fn sign_in(addr: SocketAddr) -> String {
    let form = format!("username={ANALYST}&password={}", PASSWORD.replace(' ', "+"));
    let request = format!(
        "POST /ui/login HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    let reply = raw(addr, request.as_bytes());
    assert_eq!(reply.status, 303, "sign-in refused: {reply:?}");
    assert_eq!(reply.header("location"), Some("/ui/"), "{reply:?}");
    let cookie = reply.header("set-cookie").unwrap_or_default();
    cookie
        .strip_prefix("aranea_session=")
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("no session cookie: {reply:?}"))
        .to_owned()
}

/// The web UI (a process-wide setting, read when a server builds its routes) on a review
/// service whose database is `url`, holding one hotline (`gb`) and its analyst [`ANALYST`].
pub fn install_review_ui(url: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let review = runtime.block_on(async {
        let store = Store::open(url).await.unwrap();
        let review =
            aranea_review::Review::from_config(store, aranea_review::ReviewConfig::default(), None)
                .unwrap();
        add_hotline_and_analyst(&review).await;
        review
    });
    // The review service's database pool lives on this runtime: keep it for the process.
    std::mem::forget(runtime);
    aranea_server::ui::install_review(review, false);
}

pub fn start(name: &str, config: ServerConfig) -> Server {
    let dir = std::env::temp_dir().join(format!("aranea-server-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let db = format!("sqlite://{}", dir.join("aranea.db").display());
    let (addr, store, state) = runtime.block_on(async {
        let store = Store::open(&db).await.unwrap();
        let state = AppState::open(config, &dir.join("banks"), store.clone())
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let serving = state.clone();
        tokio::spawn(aranea_server::serve(
            listener,
            serving,
            std::future::pending(),
        ));
        (addr, store, state)
    });
    Server {
        addr,
        store,
        dir,
        state,
        _runtime: runtime,
    }
}

impl Server {
    /// Creates a platform client and returns `NAME:SECRET`.
    pub fn client(&self, name: &str, scopes: &[&str], rate: Option<u32>) -> String {
        self.hotline_client(name, scopes, rate, None)
    }

    /// Creates a client, bound to `hotline` when given, and returns `NAME:SECRET`.
    pub fn hotline_client(
        &self,
        name: &str,
        scopes: &[&str],
        rate: Option<u32>,
        hotline: Option<&str>,
    ) -> String {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        let issued = self
            ._runtime
            .block_on(aranea_server::issue_hotline_client(
                &self.store,
                name,
                &scopes,
                rate,
                hotline,
            ))
            .unwrap();
        // The server re-reads clients every few seconds; a test need not wait for it.
        self._runtime
            .block_on(self.state.clients().reload())
            .unwrap();
        format!("{}:{}", issued.client.name, issued.secret)
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self._runtime.block_on(f)
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends raw bytes and reads the reply (the server closes after `Connection: close`).
pub fn raw(addr: SocketAddr, request: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    parse(&bytes)
}

fn parse(bytes: &[u8]) -> Reply {
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(bytes)));
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = bytes[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 2 + size + 2..];
    }
    out
}

/// A request with optional credentials (`NAME:SECRET`, sent as Basic) and body.
pub fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    credentials: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Reply {
    use base64::Engine;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    if let Some(c) = credentials {
        let token = base64::engine::general_purpose::STANDARD.encode(c);
        head.push_str(&format!("Authorization: Basic {token}\r\n"));
    }
    if let Some(t) = content_type {
        head.push_str(&format!("Content-Type: {t}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    raw(addr, &request)
}

pub fn get(addr: SocketAddr, path: &str, credentials: Option<&str>) -> Reply {
    call(addr, "GET", path, credentials, None, b"")
}

pub fn post_json(
    addr: SocketAddr,
    path: &str,
    credentials: Option<&str>,
    body: &serde_json::Value,
) -> Reply {
    call(
        addr,
        "POST",
        path,
        credentials,
        Some("application/json"),
        body.to_string().as_bytes(),
    )
}

/// Checks `value` against an OpenAPI 3.1 schema (the subset the document uses: type, enum,
/// required, properties, additionalProperties, items, oneOf, $ref).
pub fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.trim_start_matches("#/components/schemas/");
        let target = &doc["components"]["schemas"][name];
        assert!(!target.is_null(), "dangling $ref {reference}");
        return conforms(doc, target, value, at);
    }
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let fits = options
            .iter()
            .filter(|o| conforms(doc, o, value, at).is_ok())
            .count();
        return if fits == 1 {
            Ok(())
        } else {
            Err(format!("{at}: {fits} oneOf options fit {value}"))
        };
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        return Err(format!("{at}: {value} not in {allowed:?}"));
    }
    if let Some(kind) = schema.get("type") {
        let kinds: Vec<&str> = match kind {
            Value::String(k) => vec![k.as_str()],
            Value::Array(ks) => ks.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let actual = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        let ok = kinds.contains(&actual) || (actual == "integer" && kinds.contains(&"number"));
        if !ok {
            return Err(format!("{at}: {actual} where {kinds:?} expected"));
        }
    }
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for key in required.iter().filter_map(Value::as_str) {
            if value.get(key).is_none() {
                return Err(format!("{at}: missing {key}"));
            }
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for (key, item) in object {
            match properties.and_then(|p| p.get(key)) {
                Some(sub) => conforms(doc, sub, item, &format!("{at}.{key}"))?,
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => return Err(format!("{at}: unexpected {key}")),
                    Some(sub @ Value::Object(_)) => {
                        conforms(doc, sub, item, &format!("{at}.{key}"))?
                    }
                    _ if properties.is_some() => return Err(format!("{at}: undocumented {key}")),
                    _ => {}
                },
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            conforms(doc, items, item, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// Asserts the reply's status and that its body matches the documented response.
pub fn documented(doc: &Value, method: &str, path: &str, reply: &Reply, status: u16) -> Value {
    assert_eq!(
        reply.status,
        status,
        "{method} {path}: {:?}",
        String::from_utf8_lossy(&reply.body)
    );
    let response = &doc["paths"][path][method]["responses"][status.to_string()];
    assert!(
        !response.is_null(),
        "{method} {path} {status} is not documented"
    );
    let schema = &response["content"]["application/json"]["schema"];
    let body = reply.json();
    conforms(doc, schema, &body, &format!("{method} {path}")).unwrap();
    body
}

/// A notice item as the notice room opens them, of `hotline`, first seen and due at `at`.
pub fn notice_item(url: &str, provider: &str, hotline: &str, at: i64) -> aranea_store::NewItem {
    aranea_store::NewItem {
        sighting_id: None,
        url: url.into(),
        host: "files.example".into(),
        sha256: "aa".repeat(32),
        md5: "bb".repeat(16),
        sha1: "cc".repeat(20),
        pdq: None,
        media_kind: "jpeg".into(),
        classification: "A1".into(),
        first_seen_at: at,
        provider_key: provider.into(),
        provider_name: "Quickhost".into(),
        asn: Some(64501),
        prefix: Some("127.10.1.0/24".into()),
        country: Some("NL".into()),
        hotline: hotline.into(),
        via_cdn: None,
        method: "rdap_abuse".into(),
        confidence_pct: 90,
        contacts: r#"[{"channel":"smtp","address":"abuse@q.example","role":"abuse"}]"#.into(),
        upstream_contact: None,
        notice_due_at: at,
        reupload_of: None,
    }
}

/// A notice of `hotline` to `provider`; `key` is its idempotency key (at least 2 bytes).
pub fn new_notice(key: &str, provider: &str, hotline: &str) -> aranea_store::NewNotice {
    aranea_store::NewNotice {
        // As the notice room makes them: hex digits and dashes (which links carry).
        report_id: format!("5eed-{}", &key[1..]),
        idempotency_key: key.into(),
        provider_key: provider.into(),
        provider_name: "Quickhost".into(),
        hotline: hotline.into(),
        kind: "initial".into(),
        escalation_step: None,
        via_cdn: None,
        channel: "smtp".into(),
        recipient: "abuse@q.example".into(),
        contacts: "[]".into(),
        contact_index: 0,
        language: "en".into(),
        subject: format!("Notice {key}"),
        body_text: "text".into(),
        body_html: "<p>text</p>".into(),
        xarf: "[]".into(),
        parent_id: None,
        test: false,
    }
}
