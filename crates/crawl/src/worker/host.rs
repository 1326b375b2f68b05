//! One leased host: its robots policy, pace, budgets and URL batch, and the step that makes
//! at most one request to it (skipping, without a request, the URLs that rules exclude).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use aranea_store::{
    Completion, FetchOutcome, Host, HostPolicy, Lease, LeasedHost, Priority, RedirectTarget,
    RobotsCache, StoreError, UnixMillis, UrlNext, UrlRecord, UrlSource,
};
use url::Url;

use super::hashing::{Harvest, HashJob};
use super::links::{Origin, frontier_entry, new_url, path_prefix};
use super::page::PendingPage;
use super::progress::Counters;
use super::{Context, now_ms};
use crate::config::RobotsForReported;
use crate::fetch::{Fetch, FetchError, Response};
use crate::politeness::Pace;
use crate::robots::{Robots, RobotsSource, robots_url};
use crate::ssrf::GuardError;

/// What a step left to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepEnd {
    /// More may be queued: schedule the host again at its next allowed time.
    Again,
    /// Nothing due: release the host.
    Done,
}

pub(crate) struct HostWork {
    pub lease: Lease,
    pub host: Host,
    robots: Option<Robots>,
    /// When `robots` must be read again (from the host row, or fetched): a host can stay
    /// leased for days (a large site at a long Crawl-delay, lease renewed step after step).
    robots_until: UnixMillis,
    pub pace: Pace,
    next_allowed: UnixMillis,
    buffer: VecDeque<UrlRecord>,
    pub pending: Vec<PendingPage>,
    pub held_bytes: u64,
    fetches: i64,
    /// Whether this lease has merged the store's count for the domain into `cx.domains`.
    domain_merged: bool,
    prefix_spent: HashMap<String, i64>,
    pub quiet_pages: i64,
    error_streak: i64,
    /// Extra spacing learnt from 429/503 answers (the host's own rate limit), in ms.
    slowdown_ms: u64,
    /// For the settlement written while the host goes on.
    pub shared: Arc<Context>,
    /// The last page's settlement and what follows it, being written
    /// ([`super::verdict::write`]); at most one per host.
    pub settling: Option<tokio::task::JoinHandle<Result<(), StoreError>>>,
    /// Media being hashed while the host goes on with its next request, oldest first
    /// ([`HostWork::harvest`] takes their results in this order).
    pub hashing: VecDeque<HashJob>,
    /// The bytes of the media in `hashing`.
    pub hashing_bytes: u64,
}

impl HostWork {
    pub fn new(cx: &Arc<Context>, leased: LeasedHost) -> HostWork {
        let host = leased.host;
        let crawl_delay = host
            .crawl_delay_ms
            .and_then(|ms| u64::try_from(ms).ok())
            .map(Duration::from_millis);
        HostWork {
            lease: leased.lease,
            robots: None,
            robots_until: 0,
            pace: Pace::new(&cx.config.politeness, crawl_delay),
            next_allowed: host.next_allowed_at.max(now_ms()),
            buffer: VecDeque::new(),
            pending: Vec::new(),
            held_bytes: 0,
            fetches: host.pages_fetched,
            domain_merged: false,
            prefix_spent: HashMap::new(),
            quiet_pages: host.quiet_pages,
            error_streak: host.error_streak,
            slowdown_ms: 0,
            shared: Arc::clone(cx),
            settling: None,
            hashing: VecDeque::new(),
            hashing_bytes: 0,
            host,
        }
    }

    pub fn next_allowed(&self) -> UnixMillis {
        self.next_allowed
    }

    /// True when the host must wait so long that holding its lease would strand it.
    pub fn should_release(&self, cx: &Context, now: UnixMillis) -> bool {
        self.next_allowed.saturating_sub(now) > cx.config.lease_ms / 2
    }

    /// Stores the host's politeness state and gives the lease back. Pages still waiting for
    /// their media were not completed: the next holder fetches them again.
    pub async fn release(mut self, cx: &Context) {
        // Runs in the scheduler's loop: it must not wait for hashing (a video takes seconds).
        // A step that ends to be released records its media first (`step`); media still
        // hashing here (an error, a shutdown) stay in flight for the next holder.
        for job in self.hashing.drain(..) {
            job.abandon();
        }
        // Its completions need the lease; a failure is the next holder's to redo.
        let _ = self.settled().await;
        let policy = HostPolicy {
            delay_ms: i64::try_from(self.pace.delay_ms(Duration::ZERO)).unwrap_or(i64::MAX),
            crawl_delay_ms: self
                .pace
                .crawl_delay_ms()
                .and_then(|ms| i64::try_from(ms).ok()),
            error_streak: self.error_streak,
            quiet_pages: self.quiet_pages,
        };
        let now = now_ms();
        let _turn = cx.writes.take().await;
        // A lost lease makes both fail; nothing else is to be done about it here.
        let _ = cx
            .store
            .frontier()
            .update_host(&self.lease, &policy, now)
            .await;
        let _ = cx
            .store
            .frontier()
            .release(&self.lease, self.next_allowed)
            .await;
    }

    /// Waits for the page settlement being written, if any, and returns its outcome.
    pub async fn settled(&mut self) -> Result<(), StoreError> {
        let Some(task) = self.settling.take() else {
            return Ok(());
        };
        match task.await {
            Ok(result) => result,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            // Cancelled only when the runtime shuts down: the page stays in flight.
            Err(_) => Ok(()),
        }
    }

    /// Makes at most one request to the host (robots.txt or the next URL not excluded).
    /// Media hashed since the last step are recorded first; media fetched by this step are
    /// hashed while the host goes on (see [`HashJob`]), unless the host is to be released
    /// for a long wait: then they are recorded before the step ends.
    pub async fn step(&mut self, cx: &Context) -> Result<StepEnd, StoreError> {
        let end = self.step_once(cx).await?;
        if end == StepEnd::Again && self.should_release(cx, now_ms()) {
            self.harvest(cx, Harvest::All).await?;
        }
        Ok(end)
    }

    async fn step_once(&mut self, cx: &Context) -> Result<StepEnd, StoreError> {
        if self.settling.as_ref().is_some_and(|t| t.is_finished()) {
            self.settled().await?;
        }
        self.harvest(cx, Harvest::Room).await?;
        let now = now_ms();
        if self.lease.until().saturating_sub(now) < cx.config.lease_ms / 2 {
            self.lease = cx
                .store
                .frontier()
                .renew(&self.lease, cx.config.lease_ms, now)
                .await?;
        }
        if (self.robots.is_none() || now >= self.robots_until) && self.load_robots(cx, now).await? {
            return Ok(StepEnd::Again);
        }
        loop {
            let Some(url) = self.next_url(cx).await? else {
                if !self.hashing.is_empty() {
                    // Their pages may be settled and queue this host's next URLs.
                    self.harvest(cx, Harvest::All).await?;
                    continue;
                }
                if self.settling.is_some() {
                    // The page being settled may have queued this host's next URLs.
                    self.settled().await?;
                    continue;
                }
                self.settle_all(cx).await?;
                self.settled().await?;
                return Ok(StepEnd::Done);
            };
            let parsed = match Url::parse(&url.url) {
                Ok(parsed) => parsed,
                Err(e) => {
                    let why = format!("unparsable: {e}");
                    self.skip(cx, &url, &why, UrlNext::Skipped).await?;
                    continue;
                }
            };
            if let Some((reason, next)) = self.exclusion(cx, &url, &parsed).await? {
                self.skip(cx, &url, &reason, next).await?;
                continue;
            }
            self.fetch_url(cx, url, parsed).await?;
            return Ok(StepEnd::Again);
        }
    }

    async fn next_url(&mut self, cx: &Context) -> Result<Option<UrlRecord>, StoreError> {
        if self.buffer.is_empty() {
            let _turn = cx.writes.take().await;
            let batch = cx
                .store
                .frontier()
                .next_urls(&self.lease, cx.config.url_batch, now_ms())
                .await?;
            self.buffer.extend(batch);
        }
        Ok(self.buffer.pop_front())
    }

    /// Puts `urls`, already handed out under the lease, before the rest of the batch.
    pub(super) fn take_first(&mut self, urls: Vec<UrlRecord>) {
        for url in urls.into_iter().rev() {
            self.buffer.push_front(url);
        }
    }

    /// Loads robots.txt from the cache, or fetches it; true if a request was made.
    async fn load_robots(&mut self, cx: &Context, now: UnixMillis) -> Result<bool, StoreError> {
        let ttl = i64::try_from(cx.config.robots_ttl_ms).unwrap_or(i64::MAX);
        if let Some(cache) = self.host.robots.as_ref().filter(|c| c.expires_at > now) {
            let robots = match cache.status {
                Some(status) => Robots::from_response(status, &cache.body, &cx.robots),
                None => Robots::blocked(RobotsSource::Unparsable),
            };
            self.robots_until = cache.expires_at;
            self.adopt_robots(robots);
            return Ok(false);
        }
        let Some(url) = Url::parse(&self.host.key).ok().and_then(|u| robots_url(&u)) else {
            self.robots_until = now.saturating_add(ttl);
            self.adopt_robots(Robots::from_response(404, b"", &cx.robots));
            return Ok(false);
        };
        let fetch = cx
            .fetcher
            .fetch_prefix(&url, u64::try_from(cx.robots.max_bytes).unwrap_or(u64::MAX))
            .await;
        Counters::bump(&cx.counters.fetched);
        self.fetches += 1;
        let robots = Robots::from_fetch(&fetch, &cx.robots);
        let done = now_ms();
        if matches!(
            robots.source(),
            RobotsSource::ServerError { .. } | RobotsSource::Unreachable { .. }
        ) && self.error_streak + 1 < cx.config.max_attempts
        {
            // Transient: back off and ask again rather than skip the whole site.
            self.error_streak += 1;
            self.next_allowed = done + ms(self.pace.backoff_ms(self.error_streak, fetch.elapsed));
            return Ok(true);
        }
        let (status, body) = match &fetch.outcome {
            Ok(response) => (Some(response.status), response.body.to_vec()),
            Err(_) => (None, Vec::new()),
        };
        let cache = RobotsCache {
            status,
            body,
            fetched_at: done,
            expires_at: done.saturating_add(ttl),
        };
        cx.store
            .frontier()
            .store_robots(&self.lease, &cache, done)
            .await?;
        self.robots_until = cache.expires_at;
        self.host.robots = Some(cache);
        self.adopt_robots(robots);
        self.next_allowed = done + ms(self.pace.delay_ms(fetch.elapsed));
        Ok(true)
    }

    fn adopt_robots(&mut self, robots: Robots) {
        self.pace = Pace::new(self.pace_config(), robots.crawl_delay());
        self.robots = Some(robots);
    }

    fn pace_config(&self) -> &crate::config::PolitenessConfig {
        self.pace.config()
    }

    /// Why `url` is not fetched, if it is not, with what the URL becomes: judged from `url`
    /// as it was handed out, so a rule reported URLs are exempt from skips it only
    /// [`UrlNext::SkippedUnlessReported`] (it may have been reported since, and the store
    /// decides from its row when the skip is written).
    async fn exclusion(
        &mut self,
        cx: &Context,
        url: &UrlRecord,
        parsed: &Url,
    ) -> Result<Option<(String, UrlNext)>, StoreError> {
        if let Some(service) = (cx.deny)(parsed) {
            let why = format!("deny-listed service: {service}");
            return Ok(Some((why, UrlNext::Skipped)));
        }
        let reported = matches!(url.source, UrlSource::Report | UrlSource::Seed);
        let robots_bind_reports = cx.config.robots_for_reported == RobotsForReported::Obey;
        let obey = !reported || robots_bind_reports;
        if obey && self.robots.as_ref().is_some_and(|r| !r.allows(parsed)) {
            let next = if robots_bind_reports {
                UrlNext::Skipped
            } else {
                UrlNext::SkippedUnlessReported
            };
            return Ok(Some(("disallowed by robots.txt".to_owned(), next)));
        }
        let ordinary = self.ordinary_exclusion(cx, url, parsed, reported).await?;
        Ok(ordinary.map(|why| (why, UrlNext::SkippedUnlessReported)))
    }

    /// Why `url` is not fetched by the rules of ordinary crawling (budgets, depth, a quiet
    /// site), which a reported URL is exempt from.
    async fn ordinary_exclusion(
        &mut self,
        cx: &Context,
        url: &UrlRecord,
        parsed: &Url,
        reported: bool,
    ) -> Result<Option<String>, StoreError> {
        let budgets = &cx.config.budgets;
        if url.source == UrlSource::Link && self.quiet_pages >= budgets.quiet_pages {
            return Ok(Some("quiet site".to_owned()));
        }
        if url.source == UrlSource::Link && url.depth > budgets.max_depth {
            return Ok(Some("too deep".to_owned()));
        }
        if !reported && self.fetches >= budgets.max_fetches_per_host {
            return Ok(Some("host budget spent".to_owned()));
        }
        if !reported {
            let domain = &self.host.registrable_domain;
            let spent = match cx.domains.get(domain) {
                Some(n) if self.domain_merged => n,
                _ => {
                    let stored = cx.store.frontier().domain_pages_fetched(domain).await?;
                    self.domain_merged = true;
                    cx.domains.merge(domain, stored)
                }
            };
            if spent >= budgets.max_fetches_per_domain {
                return Ok(Some("domain budget spent".to_owned()));
            }
        }
        // Traps mint pages; media are bounded by the pages that embed them.
        if url.source == UrlSource::Link {
            let prefix = path_prefix(parsed, budgets.path_prefix_segments);
            let spent = match self.prefix_spent.get(&prefix) {
                Some(n) => *n,
                None => {
                    let n = cx
                        .store
                        .crawl_facts()
                        .attempted_under(self.host.id, &prefix)
                        .await?;
                    self.prefix_spent.insert(prefix, n);
                    n
                }
            };
            if spent >= budgets.max_fetches_per_path_prefix {
                return Ok(Some("path budget spent".to_owned()));
            }
        }
        Ok(None)
    }

    /// Completes `url` without a request as `next` says; its reports, if it ends skipped,
    /// are rejected. A URL the store queued again for a report instead is not counted as
    /// skipped: it is counted when it is fetched.
    async fn skip(
        &mut self,
        cx: &Context,
        url: &UrlRecord,
        why: &str,
        next: UrlNext,
    ) -> Result<(), StoreError> {
        let outcome = FetchOutcome {
            error: Some(why.to_owned()),
            ..FetchOutcome::not_fetched(next)
        };
        let completion = super::verdict::complete_url(cx, &self.lease, url, &outcome).await?;
        if completion != Completion::QueuedForReport {
            Counters::bump(&cx.counters.skipped);
        }
        self.media_gone(cx, url).await
    }

    fn count_request(&mut self, cx: &Context, parsed: &Url) {
        Counters::bump(&cx.counters.fetched);
        self.fetches += 1;
        cx.domains.add(&self.host.registrable_domain);
        let prefix = path_prefix(parsed, cx.config.budgets.path_prefix_segments);
        *self.prefix_spent.entry(prefix).or_insert(0) += 1;
    }

    async fn fetch_url(
        &mut self,
        cx: &Context,
        url: UrlRecord,
        parsed: Url,
    ) -> Result<(), StoreError> {
        let fetch = cx.fetcher.fetch(&parsed).await;
        self.count_request(cx, &parsed);
        let done = now_ms();
        let took = fetch.elapsed;
        let Fetch {
            outcome, redirects, ..
        } = fetch;
        match outcome {
            Err(FetchError::Redirected { status, location }) => {
                self.error_streak = 0;
                self.next_allowed = done + ms(self.pace.delay_ms(took));
                self.redirect_elsewhere(cx, &url, status, &location).await
            }
            Err(error) => {
                let server_ip = redirects.last().and_then(|h| h.server_ip);
                self.failed(cx, &url, &error, server_ip.map(|ip| ip.to_string()), took)
                    .await
            }
            Ok(response) => self.answered(cx, url, response, took).await,
        }
    }

    async fn answered(
        &mut self,
        cx: &Context,
        url: UrlRecord,
        response: Response,
        took: Duration,
    ) -> Result<(), StoreError> {
        let done = now_ms();
        let status = response.status;
        if status == 429 || status == 503 || status >= 500 {
            self.error_streak += 1;
            let rate_limited = status == 429 || status == 503;
            let wait = if rate_limited {
                // The host says we are too fast: space all further requests out more.
                let config = self.pace.config();
                self.slowdown_ms = (self.slowdown_ms * 2)
                    .max(config.min_delay_ms * 2)
                    .max(200)
                    .min(config.max_delay_ms);
                self.pace
                    .retry_after_ms(response.retry_after_seconds(), self.error_streak, took)
            } else {
                self.pace.backoff_ms(self.error_streak, took)
            };
            self.next_allowed = done + ms(wait);
            // Being told to slow down is no fault of the URL: it gets more attempts.
            let attempts = if rate_limited { 4 } else { 1 };
            let next = self.retry_or_fail(cx, &url, self.next_allowed, attempts);
            let outcome = outcome_of(&response, next);
            self.complete(cx, &url, &outcome).await?;
            if next == UrlNext::Failed {
                Counters::bump(&cx.counters.errors);
            }
            return self.media_gone(cx, &url).await;
        }
        self.error_streak = 0;
        self.next_allowed = done + ms(self.pace.delay_ms(took).max(self.slowdown_ms));
        if !response.is_success() {
            self.complete(cx, &url, &outcome_of(&response, UrlNext::Done))
                .await?;
            return self.media_gone(cx, &url).await;
        }
        self.process_body(cx, url, response).await
    }

    fn retry_or_fail(&self, cx: &Context, url: &UrlRecord, at: UnixMillis, factor: i64) -> UrlNext {
        if url.attempts + 1 < cx.config.max_attempts.saturating_mul(factor) {
            UrlNext::RetryAt(at)
        } else {
            UrlNext::Failed
        }
    }

    async fn failed(
        &mut self,
        cx: &Context,
        url: &UrlRecord,
        error: &FetchError,
        server_ip: Option<String>,
        took: Duration,
    ) -> Result<(), StoreError> {
        let transient = may_pass(error);
        let done = now_ms();
        self.error_streak += 1;
        self.next_allowed = done + ms(self.pace.backoff_ms(self.error_streak, took));
        let next = if transient {
            self.retry_or_fail(cx, url, self.next_allowed, 1)
        } else {
            UrlNext::Failed
        };
        let outcome = FetchOutcome {
            server_ip,
            duration_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            ..FetchOutcome::failed(&error.to_string(), next)
        };
        super::verdict::complete_url(cx, &self.lease, url, &outcome).await?;
        if next == UrlNext::Failed {
            Counters::bump(&cx.counters.errors);
        }
        self.media_gone(cx, url).await
    }

    /// A redirect: the target is queued like the URL that led there (same source, depth,
    /// priority and page), under its host's own lease and pace. The URL's reports follow it
    /// (see [`aranea_store::Frontier::complete_redirect`]): they settle by the end of the
    /// chain, or are rejected here when the target is not followed, loops back or is one
    /// redirect too many.
    async fn redirect_elsewhere(
        &mut self,
        cx: &Context,
        url: &UrlRecord,
        status: u16,
        location: &Url,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut note = format!("redirected ({status}) to {location}");
        let followed = match frontier_entry(location, &cx.canonical, &*cx.deny) {
            Ok((target, key, domain)) => {
                let origin = Origin {
                    source: url.source,
                    priority: url.priority,
                    depth: url.depth,
                    parent: url.parent_id,
                    report: url.report_id,
                    not_before: now,
                };
                Some(new_url(&target, key, domain, &origin))
            }
            Err(why) => {
                note = format!("{note}, not followed: {why}");
                None
            }
        };
        let target = match &followed {
            Some(target) => RedirectTarget::Followed(target),
            None => RedirectTarget::Refused(&note),
        };
        let outcome = FetchOutcome {
            error: Some(note.clone()),
            ..FetchOutcome::fetched(status, 0, UrlNext::Done)
        };
        let max_redirects = u32::try_from(cx.config.max_redirects).unwrap_or(u32::MAX);
        let turn = cx.writes.take().await;
        cx.store
            .frontier()
            .complete_redirect(&self.lease, url.id, &outcome, target, max_redirects, now)
            .await?;
        drop(turn);
        self.media_gone(cx, url).await
    }

    pub async fn complete(
        &self,
        cx: &Context,
        url: &UrlRecord,
        outcome: &FetchOutcome,
    ) -> Result<(), StoreError> {
        super::verdict::complete_url(cx, &self.lease, url, outcome).await?;
        Ok(())
    }

    /// The URL ended without media to hold: a page waiting for it need not wait any more.
    pub(crate) async fn media_gone(
        &mut self,
        cx: &Context,
        url: &UrlRecord,
    ) -> Result<(), StoreError> {
        let mut any = false;
        for page in self.pending.iter_mut().filter(|p| p.waits_for(url.id)) {
            page.stop_waiting(url.id);
            any = true;
        }
        if any {
            self.settle_ready(cx).await?;
        }
        Ok(())
    }

    /// Settles every page that waits for nothing.
    pub async fn settle_ready(&mut self, cx: &Context) -> Result<(), StoreError> {
        while let Some(at) = self.pending.iter().position(PendingPage::ready) {
            let page = self.pending.swap_remove(at);
            self.held_bytes = self.held_bytes.saturating_sub(page.held_bytes());
            self.settle(cx, page).await?;
        }
        Ok(())
    }

    async fn settle_all(&mut self, cx: &Context) -> Result<(), StoreError> {
        while let Some(page) = self.pending.pop() {
            self.held_bytes = self.held_bytes.saturating_sub(page.held_bytes());
            self.settle(cx, page).await?;
        }
        Ok(())
    }

    /// The priority new links of a page get.
    pub fn link_priority(matched: bool) -> Priority {
        if matched {
            Priority::MatchLink
        } else {
            Priority::Ordinary
        }
    }
}

/// A fetch outcome carrying what the response said.
pub(crate) fn outcome_of(response: &Response, next: UrlNext) -> FetchOutcome {
    FetchOutcome {
        fetched: true,
        status: Some(response.status),
        server_ip: response.server_ip.map(|ip| ip.to_string()),
        bytes: response.body.len() as u64,
        duration_ms: 0,
        error: None,
        etag: response.etag.clone(),
        last_modified: response.last_modified.clone(),
        next,
    }
}

fn ms(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Whether a failed fetch is worth another attempt: the connection or the name server may
/// answer next time (a name server that timed out or failed is no answer about the name); a
/// name that does not exist, a refusal by the guard or a broken answer is final.
fn may_pass(error: &FetchError) -> bool {
    matches!(
        error,
        FetchError::Connect { .. }
            | FetchError::ConnectTimeout
            | FetchError::ReadTimeout
            | FetchError::Refused(GuardError::Resolution {
                no_such_name: false,
                ..
            })
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_name_server_is_tried_again_a_missing_name_is_not() {
        let resolution = |no_such_name| {
            FetchError::Refused(GuardError::Resolution {
                host: "example.org".into(),
                message: "request timed out".into(),
                no_such_name,
            })
        };
        assert!(may_pass(&resolution(false)));
        assert!(!may_pass(&resolution(true)));
        assert!(may_pass(&FetchError::ConnectTimeout));
        assert!(!may_pass(&FetchError::Refused(GuardError::NoHost)));
    }
}
