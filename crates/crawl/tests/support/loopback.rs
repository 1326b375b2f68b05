//! A web server of the test's own on loopback, and a crawler allowed to reach it: for what
//! the simulated web does not serve (redirect chains, flaky pages, answers held back).

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;

use aranea_crawl::{CrawlConfig, Crawler};
use aranea_simweb::RunningWorld;
use aranea_store::Store;

/// An HTTP/1.1 server on 127.0.0.1 that reads one request per connection and answers it
/// with what its handler returns for the request's target, then closes the connection.
/// Requests are answered one after the other: a handler that waits holds the next back.
/// Stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Starts the server; `answer` gets the server's address and the request's target
    /// (`/path?query`) and returns the whole response ([`response`]).
    pub async fn start<F, Fut>(answer: F) -> Server
    where
        F: Fn(SocketAddr, String) -> Fut + Send + 'static,
        Fut: Future<Output = String> + Send,
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned();
                let target = line.split(' ').nth(1).unwrap_or("").to_owned();
                let answer = answer(addr, target).await;
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        Server { addr, task }
    }

    /// `path` on this server, as an absolute URL.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A response with `status` (`"200 OK"`), `headers` and `body`, its length given and the
/// connection closed after it.
pub fn response(status: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut head = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    format!(
        "{head}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A crawler for the `small` world under `worker` that may also reach 127.0.0.1 (where
/// [`Server`] listens), with three attempts per URL; `tune` changes the rest of its config.
pub fn crawler(
    store: &Store,
    world: &RunningWorld,
    banks_dir: &Path,
    worker: &str,
    tune: impl FnOnce(&mut CrawlConfig),
) -> Crawler {
    let mut config = super::config(world, 0);
    config.allow_cidrs.push("127.0.0.1/32".parse().unwrap());
    config.max_attempts = 3;
    tune(&mut config);
    super::crawler(store, world, banks_dir, config, worker)
}
