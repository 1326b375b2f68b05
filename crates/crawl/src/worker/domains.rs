//! Requests spent per registrable domain by this process, shared by all its leased hosts, so
//! that two hosts of one domain leased at once draw on one budget instead of one each.
//!
//! Each lease starts by merging in the store's count (fetches recorded by every worker), so
//! other processes' requests are seen from one lease to the next, not within it. Must not
//! decide anything: the budget is compared in `host`.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub(crate) struct DomainSpend(Mutex<HashMap<String, i64>>);

impl DomainSpend {
    /// Requests to `domain` as far as this process knows, if it has looked before.
    pub fn get(&self, domain: &str) -> Option<i64> {
        self.0.lock().ok()?.get(domain).copied()
    }

    /// Takes the store's count into account (it may be ahead, from other workers, or behind,
    /// as pages still waiting for their media are not counted there yet); returns the result.
    pub fn merge(&self, domain: &str, stored: i64) -> i64 {
        let Ok(mut spent) = self.0.lock() else {
            return stored;
        };
        let n = spent.entry(domain.to_owned()).or_insert(stored);
        *n = (*n).max(stored);
        *n
    }

    /// One more request to `domain`.
    pub fn add(&self, domain: &str) {
        if let Ok(mut spent) = self.0.lock() {
            *spent.entry(domain.to_owned()).or_insert(0) += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_one_domain_share_one_count_and_the_store_can_only_raise_it() {
        let spend = DomainSpend::default();
        assert_eq!(spend.get("gamma.sim"), None);
        assert_eq!(spend.merge("gamma.sim", 3), 3);
        spend.add("gamma.sim");
        spend.add("gamma.sim");
        assert_eq!(spend.get("gamma.sim"), Some(5));
        assert_eq!(spend.merge("gamma.sim", 4), 5, "a lagging store count");
        assert_eq!(spend.merge("gamma.sim", 9), 9, "other workers' fetches");
        spend.add("other.sim");
        assert_eq!(spend.get("other.sim"), Some(1));
    }
}
