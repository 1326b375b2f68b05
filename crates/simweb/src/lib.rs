//! A deterministic simulated internet on loopback, for Aranea's end-to-end tests, benchmarks
//! and `aranea demo`.
//!
//! From a scenario (TOML) and a seed it builds hosting providers with IP blocks inside
//! 127.0.0.0/8, ASNs and abuse contacts; sites with pages and benign corpus photos (some
//! declared "known", with transformed copies); and it serves them over real sockets: HTTP/1.1
//! per simulated host address (and HTTPS with HTTP/2 for some sites, under a CA the world
//! exports), authoritative DNS, RDAP, an SMTP abuse mailbox and webhooks. Notices that reach a
//! provider trigger its behaviour (remove, ignore, re-upload, move, placeholder, forward to the
//! origin) on a scaled simulated clock, and the ground truth answers what was served when.
//! The scenario format and the served misbehaviours are documented in `docs/simweb.md`.
//!
//! ```no_run
//! let scenario = aranea_simweb::scenario::load("small")?;
//! let world = aranea_simweb::SimWeb::new(scenario).seed(7).start()?;
//! println!("resolver {} bank {}", world.dns_addr(), world.bank_path().display());
//! world.shutdown();
//! # Ok::<(), aranea_simweb::SimWebError>(())
//! ```
//!
//! It is a test fixture: it must never be needed in production, and it never sends traffic
//! anywhere but to its own clients (redirects to private addresses are only headers).

pub mod archive_sites;
pub mod archives;
mod bank;
mod behaviour;
mod clock;
pub mod corpus;
mod dns;
mod error;
mod generate;
mod http;
mod layout;
mod media;
mod names;
mod pages;
mod quirks;
mod rdap;
mod rng;
pub mod scenario;
mod site;
mod smtp;
mod sockets;
mod state;
mod tls;
mod traps;
mod truth;
pub mod world;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub use clock::EPOCH_UNIX;
pub use error::SimWebError;
pub use quirks::{GZIP_BOMB_INFLATED, LENGTH_LIE_ACTUAL};
pub use scenario::Scenario;
pub use smtp::{SMTP_PASSWORD, SMTP_USERNAME};
pub use state::{Channel, ItemStatus, ReceivedNotice, RemovalKind, RequestRecord};
pub use truth::{RemovalRecord, ServedImage, SiteMoveRecord};

use crate::clock::SimClock;
use crate::media::MediaCache;
use crate::state::State;
use crate::world::World;

/// Everything the servers share: the immutable world, what changed, the clock.
pub(crate) struct Shared {
    pub(crate) world: World,
    pub(crate) state: Mutex<State>,
    pub(crate) clock: SimClock,
    pub(crate) media: MediaCache,
    /// The port every simulated web host listens on.
    pub(crate) port: u16,
    /// The port HTTPS sites listen on, if the world has any.
    pub(crate) https_port: Option<u16>,
    /// The address DNS, RDAP, SMTP and webhooks listen on (what `mx.simweb.<tld>` resolves to).
    pub(crate) infra_ip: Ipv4Addr,
    pub(crate) gzip_bomb: OnceLock<Arc<Vec<u8>>>,
    /// Files added with [`SimWeb::extra_file`], by (host, path): content type and bytes.
    pub(crate) extra_files: ExtraFiles,
}

/// Files added with [`SimWeb::extra_file`]: (host, path) → (content type, bytes).
pub(crate) type ExtraFiles = HashMap<(String, String), (String, Arc<Vec<u8>>)>;

/// Where the infrastructure servers (DNS, RDAP, SMTP, webhooks) listen by default: outside
/// every provider block the shipped scenarios use.
pub const DEFAULT_INFRA_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 53, 1);

/// How to start a world: a scenario plus options, each with a default.
#[derive(Debug, Clone)]
pub struct SimWeb {
    scenario: Scenario,
    seed: u64,
    http_port: Option<u16>,
    https_port: Option<u16>,
    dns_port: u16,
    smtp_port: u16,
    infra_ip: Ipv4Addr,
    corpus_dir: PathBuf,
    out_dir: Option<PathBuf>,
    extra_files: ExtraFiles,
}

impl SimWeb {
    pub fn new(scenario: Scenario) -> SimWeb {
        SimWeb {
            scenario,
            seed: 0,
            http_port: None,
            https_port: None,
            dns_port: 0,
            smtp_port: 0,
            infra_ip: DEFAULT_INFRA_IP,
            corpus_dir: PathBuf::from(corpus::DEFAULT_DIR),
            out_dir: None,
            extra_files: HashMap::new(),
        }
    }

    /// Shorthand for `SimWeb::new(scenario).seed(seed).start()`.
    pub fn start_with(scenario: Scenario, seed: u64) -> Result<RunningWorld, SimWebError> {
        SimWeb::new(scenario).seed(seed).start()
    }

    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The port all simulated web hosts share (default: a free one).
    pub fn http_port(mut self, port: u16) -> Self {
        self.http_port = Some(port);
        self
    }

    /// The port all HTTPS sites share (default: a free one).
    pub fn https_port(mut self, port: u16) -> Self {
        self.https_port = Some(port);
        self
    }

    /// The DNS server's UDP port (default: a free one).
    pub fn dns_port(mut self, port: u16) -> Self {
        self.dns_port = port;
        self
    }

    /// The SMTP server's port (default: a free one; 25 makes the MX records usable as is).
    pub fn smtp_port(mut self, port: u16) -> Self {
        self.smtp_port = port;
        self
    }

    /// The address DNS, RDAP, SMTP and webhooks listen on (default [`DEFAULT_INFRA_IP`]).
    pub fn infra_ip(mut self, ip: Ipv4Addr) -> Self {
        self.infra_ip = ip;
        self
    }

    pub fn corpus_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.corpus_dir = dir.into();
        self
    }

    /// Where the bank file and IP-to-ASN table go (default: a fresh temporary directory,
    /// removed at shutdown).
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Serves `bytes` as `content_type` at `path` (no query) on the world's site `host`, ahead
    /// of the site's own pages and media: for tests that need a file the generator does not
    /// make, such as a video or a hand-written page. Not part of the ground truth.
    pub fn extra_file(
        mut self,
        host: &str,
        path: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Self {
        self.extra_files.insert(
            (host.to_owned(), path.to_owned()),
            (content_type.to_owned(), Arc::new(bytes)),
        );
        self
    }

    fn dns_addr(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.infra_ip, self.dns_port)
    }

    /// Builds the world, writes its files and starts every server.
    pub fn start(self) -> Result<RunningWorld, SimWebError> {
        let corpus = corpus::Corpus::open(&self.corpus_dir)?;
        let world = World::generate(&self.scenario, self.seed, corpus)?;
        let (out_dir, owns_out_dir) = match &self.out_dir {
            Some(dir) => (dir.clone(), false),
            None => (sockets::fresh_temp_dir(), true),
        };
        std::fs::create_dir_all(&out_dir)
            .map_err(|source| io("creating the output directory", source))?;
        let bank_path = out_dir.join("known-bank.csv");
        bank::write_bank(&world, &bank_path)?;
        let asn_path = out_dir.join("ip2asn-v4.tsv");
        bank::write_ip_to_asn(&world, &asn_path)?;

        let sockets = sockets::bind(
            &world,
            self.seed,
            &out_dir,
            self.http_port,
            self.https_port,
            self.dns_addr(),
            self.smtp_port,
        )?;
        let sockets::Sockets {
            http_port,
            hosts,
            tls,
            dns,
            infra,
            smtp,
            smtps,
            mail_pki,
        } = sockets;
        let (dns_addr, infra_addr, smtp_addr, smtps_addr) = (
            sockets::udp_addr(&dns)?,
            sockets::tcp_addr(&infra)?,
            sockets::tcp_addr(&smtp)?,
            sockets::tcp_addr(&smtps)?,
        );

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("simweb")
            .enable_all()
            .build()
            .map_err(|source| io("starting the runtime", source))?;
        let shared = Arc::new(Shared {
            clock: SimClock::new(world.time_scale),
            world,
            state: Mutex::new(State::default()),
            media: MediaCache::default(),
            port: http_port,
            https_port: tls.as_ref().map(|t| t.port),
            infra_ip: self.infra_ip,
            gzip_bomb: OnceLock::new(),
            extra_files: self.extra_files,
        });
        let host_service = Arc::new(site::HostService {
            shared: shared.clone(),
        });
        for listener in hosts {
            runtime.spawn(http::serve(listener, host_service.clone()));
        }
        let ca = tls.map(|t| {
            for listener in t.listeners {
                runtime.spawn(tls::serve(
                    listener,
                    t.pki.acceptor.clone(),
                    host_service.clone(),
                ));
            }
            (t.pki.ca_pem, t.ca_path)
        });
        runtime.spawn(dns::serve(dns, shared.clone()));
        runtime.spawn(http::serve(
            infra,
            Arc::new(rdap::InfraService {
                shared: shared.clone(),
            }),
        ));
        runtime.spawn(smtp::serve(
            smtp,
            shared.clone(),
            mail_pki.acceptor.clone(),
            false,
        ));
        runtime.spawn(smtp::serve(smtps, shared.clone(), mail_pki.acceptor, true));

        Ok(RunningWorld {
            shared,
            runtime: Some(runtime),
            http_port,
            dns_addr,
            infra_addr,
            smtp_addr,
            smtps_addr,
            mail_ca_pem: mail_pki.ca_pem,
            bank_path,
            asn_path,
            ca,
            out_dir,
            owns_out_dir,
        })
    }
}

fn io(what: &str, source: std::io::Error) -> SimWebError {
    SimWebError::Io {
        what: what.to_owned(),
        source,
    }
}

/// A world that is serving. Dropping it stops every server (as [`RunningWorld::shutdown`]).
pub struct RunningWorld {
    pub(crate) shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
    http_port: u16,
    dns_addr: SocketAddr,
    infra_addr: SocketAddr,
    smtp_addr: SocketAddr,
    smtps_addr: SocketAddr,
    /// The CA that issued the mail server's certificate (the same CA as the HTTPS sites').
    mail_ca_pem: String,
    bank_path: PathBuf,
    asn_path: PathBuf,
    /// The CA certificate (PEM) and where it was written, if any site uses HTTPS.
    ca: Option<(String, PathBuf)>,
    out_dir: PathBuf,
    owns_out_dir: bool,
}

impl RunningWorld {
    /// The port HTTPS sites listen on (every simulated host address), if there are any.
    pub fn https_port(&self) -> Option<u16> {
        self.shared.https_port
    }

    /// The self-signed CA that issued the HTTPS sites' certificate, as PEM, for clients to trust.
    pub fn ca_cert_pem(&self) -> Option<&str> {
        self.ca.as_ref().map(|(pem, _)| pem.as_str())
    }

    /// The CA certificate file (`simweb-ca.pem` in the output directory).
    pub fn ca_cert_path(&self) -> Option<&Path> {
        self.ca.as_ref().map(|(_, path)| path.as_path())
    }

    /// The port every simulated web host listens on (URLs are `http://host:PORT/…`).
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The authoritative DNS server for the simulated zones (UDP).
    pub fn dns_addr(&self) -> SocketAddr {
        self.dns_addr
    }

    /// RDAP base URL, ending in `/` (queries: `ip/{addr}`, `domain/{name}`, `autnum/{asn}`).
    pub fn rdap_base_url(&self) -> String {
        format!("http://{}/rdap/", self.infra_addr)
    }

    /// Where a provider's webhook takes notices, if it has one.
    pub fn webhook_url(&self, provider: &str) -> Option<String> {
        let p = self
            .shared
            .world
            .provider_by_name(provider)
            .filter(|p| p.webhook)?;
        Some(format!("http://{}/webhook/{}", self.infra_addr, p.slug))
    }

    /// The SMTP server taking abuse mail for every provider (plain, offering STARTTLS).
    pub fn smtp_addr(&self) -> SocketAddr {
        self.smtp_addr
    }

    /// The same mailbox with implicit TLS (RFC 8314, as on port 465).
    pub fn smtps_addr(&self) -> SocketAddr {
        self.smtps_addr
    }

    /// The CA (PEM) that issued the mail server's certificate, which names the infrastructure
    /// address and `mx.simweb.sim`; the same CA as [`RunningWorld::ca_cert_pem`].
    pub fn smtp_ca_cert_pem(&self) -> &str {
        &self.mail_ca_pem
    }

    /// The bank of known hashes (HMA CSV: `signal_type,signal_value`).
    pub fn bank_path(&self) -> &Path {
        &self.bank_path
    }

    /// The IP-to-ASN table in iptoasn.com's TSV format.
    pub fn ip_to_asn_path(&self) -> &Path {
        &self.asn_path
    }

    pub fn out_dir(&self) -> &Path {
        &self.out_dir
    }

    /// The generated world (providers, sites, pages, items).
    pub fn world(&self) -> &World {
        &self.shared.world
    }

    /// Renders every media item and keeps the bytes in memory until the world stops, so that a
    /// benchmark's timed crawl measures the crawler, not simweb's encoders (which otherwise run
    /// on the same cores on first request). Returns how many items were rendered. Memory grows
    /// with the world (tens of KiB per item): for benchmarks, not the demo.
    pub fn prerender_media(&self) -> Result<usize, SimWebError> {
        let shared = &self.shared;
        for item in &shared.world.items {
            shared
                .media
                .pin(&shared.world.corpus, item.source, item.transform)?;
        }
        Ok(shared.world.items.len())
    }

    /// The URL of a path on a simulated host (`https://…:HTTPS_PORT` for HTTPS sites).
    pub fn url(&self, host: &str, path: &str) -> String {
        match (
            self.shared
                .world
                .site_by_host(host)
                .is_some_and(|s| s.https),
            self.shared.https_port,
        ) {
            (true, Some(port)) => format!("https://{host}:{port}{path}"),
            _ => format!("http://{host}:{}{path}", self.http_port),
        }
    }

    /// Simulated time elapsed since the world started.
    pub fn sim_now(&self) -> Duration {
        self.shared.clock.now()
    }

    /// Jumps the simulated clock forward, so a test can let a week of provider behaviour pass
    /// at once instead of waiting for it. The clock never goes back.
    pub fn advance(&self, by: Duration) {
        self.shared.clock.advance(by);
    }

    /// Simulated seconds per real second.
    pub fn time_scale(&self) -> f64 {
        self.shared.clock.scale()
    }

    /// Real time that passes while `sim` passes in the world.
    pub fn real_time_for(&self, sim: Duration) -> Duration {
        self.shared.clock.real_for(sim)
    }

    /// Stops every server and removes the output directory if the world created it.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Non-blocking, so a world may also be dropped inside an async test.
            runtime.shutdown_background();
        }
        if self.owns_out_dir {
            let _ = std::fs::remove_dir_all(&self.out_dir);
            self.owns_out_dir = false;
        }
    }
}

impl Drop for RunningWorld {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for RunningWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningWorld")
            .field("scenario", &self.shared.world.name)
            .field("http_port", &self.http_port)
            .field("dns", &self.dns_addr)
            .field("infra", &self.infra_addr)
            .field("smtp", &self.smtp_addr)
            .finish()
    }
}
