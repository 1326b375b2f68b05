//! The crawler's work on one URL: is it safe to reach ([`ssrf`]), fetch it within limits
//! ([`fetch`]), find the links and media in it ([`extract`]), name it canonically and find its
//! registrable domain ([`canonical`]), and read a site's robots.txt ([`robots`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use aranea_crawl::{extract, fetch};
//! let fetcher = fetch::Fetcher::new(fetch::FetchConfig::default())?;
//! let url = url::Url::parse("https://example.com/")?;
//! let fetched = fetcher.fetch(&url).await;
//! if let Ok(page) = &fetched.outcome {
//!     if page.kind == fetch::BodyKind::Html {
//!         let found = extract::extract(&page.body, &page.final_url,
//!             page.content_type.as_deref(), &extract::ExtractConfig::default());
//!         println!("{} links, {} media", found.page_links.len(), found.media_links.len());
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! The frontier (what to fetch next, politeness, budgets) builds on these pieces; this crate's
//! modules must never decide what is illegal, and never reach an address the guard refuses.

pub mod archive;
pub mod canonical;
pub mod config;
pub mod extract;
pub mod fetch;
pub mod pipeline;
pub mod politeness;
pub mod robots;
pub mod scope;
pub mod ssrf;
pub mod worker;

pub use config::CrawlConfig;
pub use worker::{CrawlError, CrawlProgress, Crawler, DiscardMedia, ReviewMediaSink, SeedOutcome};
