//! A minimal HTTP/1.1 client (one request per connection) and a WebDriver session on top
//! of it, enough to drive Chromium through chromedriver and to probe the UI's routes.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut stream = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect(addr),
    )
    .await
    .expect("connect timed out")
    .expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    // Read the head, then exactly Content-Length bytes: chromedriver keeps connections open.
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let read = async {
        loop {
            if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                if let Some(length) = length
                    && raw.len() >= split + 4 + length
                {
                    raw.truncate(split + 4 + length);
                    return;
                }
            }
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                return;
            }
            raw.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("response timed out");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
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
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..end]);
        let size =
            usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 2 + size + 2..];
    }
    out
}

/// chromedriver on a free port, killed on drop.
pub struct ChromeDriver {
    child: Child,
    pub addr: SocketAddr,
    /// chromedriver's and Chromium's TMPDIR: a killed driver never removes the profiles it
    /// made there, so the directory goes with it instead of piling up in the system's.
    scratch: std::path::PathBuf,
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

impl ChromeDriver {
    pub async fn start() -> ChromeDriver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let scratch =
            std::env::temp_dir().join(format!("aranea-chromedriver-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&scratch).unwrap();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .env("TMPDIR", &scratch)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian package chromium-driver; scripts/test installs it)");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        // Owned at once, so a failure below still kills and reaps it.
        let driver = ChromeDriver {
            child,
            addr,
            scratch,
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return driver;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not start");
    }

    /// A new browser (its own profile: no shared cookies).
    pub async fn browser(&self) -> Browser {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu",
                         "--disable-background-networking", "--disable-dev-shm-usage"]
            }
        }}});
        let r = post(self.addr, "/session", &caps).await;
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("{r}"))
            .to_string();
        Browser {
            driver: self.addr,
            session,
        }
    }
}

async fn post(addr: SocketAddr, path: &str, body: &Value) -> Value {
    let body = body.to_string();
    let r = request(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .await;
    serde_json::from_slice(&r.body).unwrap_or_else(|_| panic!("webdriver said {}", r.text()))
}

pub struct Browser {
    driver: SocketAddr,
    session: String,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    async fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let path = format!("/session/{}{path}", self.session);
        let v = if method == "GET" {
            let r = request(self.driver, "GET", &path, &[], b"").await;
            serde_json::from_slice::<Value>(&r.body).unwrap()
        } else {
            post(self.driver, &path, &body).await
        };
        if v["value"].get("error").is_some() {
            panic!("webdriver {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", json!({ "url": url })).await;
    }

    pub async fn url(&self) -> String {
        self.cmd("GET", "/url", Value::Null)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn source(&self) -> String {
        self.cmd("GET", "/source", Value::Null)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn find_all(&self, css: &str) -> Vec<String> {
        let v = self
            .cmd(
                "POST",
                "/elements",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e[ELEMENT].as_str().unwrap().to_string())
            .collect()
    }

    pub async fn find(&self, css: &str) -> String {
        let all = self.find_all(css).await;
        if all.is_empty() {
            let source = self.source().await;
            let body = source.split("<main>").nth(1).unwrap_or(&source).to_string();
            panic!("no element {css} on {}: {body}", self.url().await);
        }
        all[0].clone()
    }

    /// Waits (up to 10 s) for an element: clicks that submit forms return before the
    /// next page has loaded.
    pub async fn wait_for(&self, css: &str) -> String {
        for _ in 0..100 {
            if let Some(e) = self.find_all(css).await.into_iter().next() {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.find(css).await
    }

    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.cmd("POST", &format!("/element/{e}/click"), json!({}))
            .await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    /// Presses Enter on the element that has the keyboard focus.
    pub async fn press_enter_on_focused(&self) {
        let active = self.cmd("GET", "/element/active", Value::Null).await;
        let e = active[ELEMENT].as_str().unwrap().to_string();
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            json!({ "text": "\u{E007}" }),
        )
        .await;
    }

    pub async fn css(&self, css: &str, property: &str) -> String {
        let e = self.find(css).await;
        self.cmd("GET", &format!("/element/{e}/css/{property}"), Value::Null)
            .await
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub async fn property(&self, css: &str, property: &str) -> Value {
        let e = self.find(css).await;
        self.cmd(
            "GET",
            &format!("/element/{e}/property/{property}"),
            Value::Null,
        )
        .await
    }

    /// Runs a script in the page and returns its value.
    pub async fn execute(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            json!({ "script": script, "args": [] }),
        )
        .await
    }

    pub async fn login(&self, base: &str, username: &str, password: &str) {
        self.goto(&format!("{base}/ui/login")).await;
        self.type_into("input[name=username]", username).await;
        self.type_into("input[name=password]", password).await;
        self.click("button[type=submit]").await;
        self.wait_for("nav").await;
    }

    pub async fn quit(self) {
        let path = format!("/session/{}", self.session);
        request(self.driver, "DELETE", &path, &[], b"").await;
    }
}
