//! Media hashing for Aranea.
//!
//! (Work in progress: the foundation issue fills this crate in.)

mod pdq_hash;

pub use pdq_hash::{PdqHash, PdqHashParseError};
