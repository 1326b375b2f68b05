//! `aranea simweb`: runs the simulated internet standalone until interrupted (or for a set
//! time), printing where its resolver, RDAP, SMTP and web hosts listen and where the bank is.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use aranea_simweb::{SimWeb, scenario};

use crate::cli::GlobalOptions;

#[derive(Debug, clap::Args)]
pub struct SimwebArgs {
    /// Scenario: `small`, `demo`, or a TOML file (format: docs/simweb.md).
    #[arg(long, default_value = "small", value_name = "small|demo|FILE")]
    pub scenario: String,
    /// Seed: the same scenario and seed give the same world, byte for byte.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Port shared by every simulated web host (default: a free one).
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// UDP port of the DNS server (default: a free one).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    pub dns_port: u16,
    /// TCP port of the SMTP server (default: a free one; 25 makes the MX records usable as is).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    pub smtp_port: u16,
    /// Where the bank file and IP-to-ASN table go (default: DATA/simweb-SCENARIO-SEED).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The benign image corpus (default: ../shared/corpus beside the checkout).
    #[arg(long, value_name = "DIR")]
    pub corpus: Option<PathBuf>,
    /// Stop after this many seconds instead of running until interrupted.
    #[arg(long, value_name = "SECONDS")]
    pub exit_after: Option<u64>,
    /// Output: readable text, or one JSON object on one line.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub fn run(global: &GlobalOptions, args: SimwebArgs) -> anyhow::Result<std::process::ExitCode> {
    let scenario = scenario::load(&args.scenario)
        .with_context(|| format!("loading scenario {:?}", args.scenario))?;
    let label: String = scenario
        .name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| global.data.join(format!("simweb-{label}-{}", args.seed)));
    let mut builder = SimWeb::new(scenario)
        .seed(args.seed)
        .dns_port(args.dns_port)
        .smtp_port(args.smtp_port)
        .out_dir(&out);
    if let Some(port) = args.port {
        builder = builder.http_port(port);
    }
    if let Some(corpus) = &args.corpus {
        builder = builder.corpus_dir(corpus);
    }
    let started = Instant::now();
    let world = builder.start().context("starting the simulated internet")?;
    let startup = started.elapsed();
    let mut stdout = std::io::stdout().lock();
    match args.format {
        Format::Json => writeln!(stdout, "{}", summary_json(&world, args.seed, startup))?,
        Format::Text => write_text(&mut stdout, &world, args.seed, startup)?,
    }
    stdout.flush()?;
    drop(stdout);
    match args.exit_after {
        Some(seconds) => std::thread::sleep(Duration::from_secs(seconds)),
        // Until Ctrl-C: the default signal disposition ends the process; files stay in `out`.
        None => loop {
            std::thread::park();
        },
    }
    world.shutdown();
    Ok(std::process::ExitCode::SUCCESS)
}

fn summary_json(
    world: &aranea_simweb::RunningWorld,
    seed: u64,
    startup: Duration,
) -> serde_json::Value {
    let w = world.world();
    let sites: Vec<serde_json::Value> = w
        .sites
        .iter()
        .map(|s| {
            let provider = w.providers.get(s.provider).map(|p| p.name.as_str()).unwrap_or_default();
            serde_json::json!({"host": s.host, "url": world.url(&s.host, "/"), "origin_ip": s.ip.to_string(), "provider": provider,
                "cdn": s.cdn.as_ref().and_then(|c| w.providers.get(c.provider)).map(|p| p.name.clone())})
        })
        .collect();
    let providers: Vec<serde_json::Value> = w
        .providers
        .iter()
        .map(|p| {
            serde_json::json!({"name": p.name, "country": p.country, "asn": p.asn, "abuse_email": p.abuse_email,
                "webhook": world.webhook_url(&p.name), "cdn": p.cdn})
        })
        .collect();
    serde_json::json!({
        "scenario": w.name,
        "seed": seed,
        "resolver": world.dns_addr().to_string(),
        "rdap": world.rdap_base_url(),
        "smtp": world.smtp_addr().to_string(),
        "http_port": world.http_port(),
        "https_port": world.https_port(),
        "ca_cert": world.ca_cert_path().map(|p| p.display().to_string()),
        "bank": world.bank_path().display().to_string(),
        "ip_to_asn": world.ip_to_asn_path().display().to_string(),
        "time_scale": world.time_scale(),
        "startup_ms": startup.as_millis() as u64,
        "counts": {"providers": w.providers.len(), "sites": w.sites.len(),
            "pages": w.sites.iter().map(|s| s.pages.len()).sum::<usize>(), "images": w.items.len(),
            "known_photos": w.known.len()},
        "providers": providers,
        "sites": sites,
    })
}

fn write_text(
    out: &mut impl Write,
    world: &aranea_simweb::RunningWorld,
    seed: u64,
    startup: Duration,
) -> std::io::Result<()> {
    let w = world.world();
    let pages: usize = w.sites.iter().map(|s| s.pages.len()).sum();
    writeln!(
        out,
        "simweb: scenario {}, seed {seed}: {} providers, {} sites, {pages} pages, {} image URLs, {} known photos (started in {} ms)",
        w.name,
        w.providers.len(),
        w.sites.len(),
        w.items.len(),
        w.known.len(),
        startup.as_millis()
    )?;
    writeln!(out, "resolver   {} (UDP)", world.dns_addr())?;
    writeln!(out, "rdap       {}", world.rdap_base_url())?;
    writeln!(out, "smtp       {}", world.smtp_addr())?;
    writeln!(
        out,
        "http port  {} (every simulated host)",
        world.http_port()
    )?;
    if let (Some(port), Some(ca)) = (world.https_port(), world.ca_cert_path()) {
        writeln!(
            out,
            "https port {port} (HTTPS sites; HTTP/2 or HTTP/1.1), CA {}",
            ca.display()
        )?;
    }
    writeln!(out, "bank       {}", world.bank_path().display())?;
    writeln!(out, "ip2asn     {}", world.ip_to_asn_path().display())?;
    writeln!(
        out,
        "time scale {}x (simulated seconds per real second)",
        world.time_scale()
    )?;
    for site in w.sites.iter().take(20) {
        let provider = w
            .providers
            .get(site.provider)
            .map(|p| p.name.as_str())
            .unwrap_or_default();
        writeln!(out, "  {}  {provider}", world.url(&site.host, "/"))?;
    }
    if w.sites.len() > 20 {
        writeln!(
            out,
            "  … and {} more sites (--format json lists them all)",
            w.sites.len() - 20
        )?;
    }
    writeln!(out, "Press Ctrl-C to stop.")
}
