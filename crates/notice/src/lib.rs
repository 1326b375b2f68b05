//! Removal notices, from hosting attribution to verified removal.
//!
//! A match is only useful when the material comes down. This crate finds who hosts each
//! matched URL ([`attribution`]: DNS, IP-to-ASN table, RDAP abuse contact, operator
//! overrides, CDN detection, routing to the responsible hotline), tells them in a standard
//! form ([`xarf`] v4 `content/csam` reports plus plain-text and HTML email from editable
//! [`compose`] templates, with a signed [`link`] to acknowledge or dispute), delivers each
//! notice exactly once by SMTP or webhook ([`deliver`]), re-checks the URLs ([`recheck`]),
//! re-notifies and escalates until they are gone, and watches removed media for re-uploads.
//! [`stats`] summarises time to removal per provider, country and hotline.
//!
//! ```no_run
//! # async fn run(store: aranea_store::Store) -> Result<(), aranea_notice::NoticeError> {
//! use std::sync::Arc;
//! use aranea_notice::{NoticeConfig, NoticeEngine, SystemClock};
//! let engine = NoticeEngine::new(store, NoticeConfig::default(),
//!     aranea_crawl::fetch::FetchConfig::default(), Arc::new(SystemClock), "worker-1")?;
//! let pass = engine.run_once().await?;
//! println!("{} notices sent, {} items removed", pass.sent, pass.removed);
//! # Ok(()) }
//! ```
//!
//! Where the seams are: the store module `aranea_store::NoticeStore` holds the tables and
//! the query API the server uses; the server's respond page calls [`respond`] (which verifies
//! with [`LinkKeys`]: the current key or one rotated out lately); an appeal that reverses a decision writes `match_withdrawals` (review
//! room), which each pass reads: the items stop, and their notices' recipients get a
//! [`retraction`]. This crate must never send media bytes anywhere.

pub mod asn;
pub mod attribution;
pub mod clock;
pub mod compose;
pub mod config;
pub mod deliver;
mod engine;
mod error;
pub mod link;
pub mod link_keys;
pub mod rdap;
pub mod rdap_bootstrap;
pub mod recheck;
pub mod reload;
pub mod retraction;
pub mod reupload;
pub mod stats;
pub mod views;
pub mod xarf;

pub use clock::{Clock, SystemClock, UnixMillis};
pub use config::NoticeConfig;
pub use engine::{Answer, NoticeEngine, PassReport, link_secret, respond};
pub use error::NoticeError;
pub use link_keys::LinkKeys;
