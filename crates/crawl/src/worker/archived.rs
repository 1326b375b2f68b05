//! Archive bodies (ZIP, TAR, gzip-compressed TAR): each media member is hashed, matched and
//! recorded as a sighting of the archive's URL with the member's path. Unknown members' bytes
//! are held (within `max_held_bytes`) until the verdict of the page the archive was found on,
//! so that they reach review, sealed by the review sink, as ordinary media do.
//!
//! Members are unpacked and hashed one at a time on the blocking pool; bytes of matched
//! members, and of members that do not fit the budget, never outlive their hashing.

use std::ops::ControlFlow;

use aranea_store::{
    FetchOutcome, NewSighting, SeenMedia, StoreError, UrlNext, UrlRecord, UrlSource,
};
use bytes::Bytes;

use super::host::{HostWork, outcome_of};
use super::page::{HeldMedia, Sighted};
use super::progress::Counters;
use super::{Context, now_ms};
use crate::fetch::Response;
use crate::pipeline::MatchedMedia;

/// A media member, hashed, with its bytes if unknown and within the budget.
struct Member {
    path: String,
    media: MatchedMedia,
    bytes: Option<Bytes>,
}

impl HostWork {
    pub(crate) async fn process_archive(
        &mut self,
        cx: &Context,
        url: UrlRecord,
        response: Response,
    ) -> Result<(), StoreError> {
        let (members, error) = self.hash_members(cx, &response).await;
        let page = match url.source {
            UrlSource::Embed | UrlSource::Link => url.parent_id,
            _ => None,
        };
        let now = now_ms();
        let server_ip = response.server_ip.map(|ip| ip.to_string());
        let outcome = FetchOutcome {
            error: error.map(|e| format!("archive: {e}")),
            ..outcome_of(&response, UrlNext::Done)
        };
        let mut held = Vec::with_capacity(members.len());
        for member in members {
            Counters::bump(&cx.counters.media);
            let matched = !member.media.matches.is_empty();
            if matched {
                Counters::bump(&cx.counters.matches);
            }
            held.push(HeldMedia {
                url: url.clone(),
                outcome: outcome.clone(),
                seen: SeenMedia {
                    sighting: NewSighting {
                        media_sha256: member.media.record.sha256,
                        url: url.id,
                        page,
                        member_path: Some(member.path),
                        seen_at: now,
                        server_ip: server_ip.clone(),
                    },
                    media: member.media.record,
                    matches: member.media.matches,
                },
                matched,
                bytes: member.bytes,
            });
        }
        let waiting = self.pending.iter().position(|p| p.waits_for(url.id));
        if let (Some(at), false) = (waiting, held.is_empty()) {
            self.held_bytes += held
                .iter()
                .filter_map(|h| h.bytes.as_ref())
                .map(|b| b.len() as u64)
                .sum::<u64>();
            if let Some(pending) = self.pending.get_mut(at) {
                pending.stop_waiting(url.id);
                pending.held.extend(held);
            }
            return self.settle_ready(cx).await;
        }
        for member in held {
            let SeenMedia {
                media,
                sighting,
                matches,
            } = member.seen;
            let recorded = cx
                .store
                .media()
                .record_seen(&media, &sighting, &matches, now)
                .await?;
            let seen = Sighted {
                matched: member.matched,
                sha256: media.sha256,
                sighting: recorded.sighting,
                page,
            };
            self.direct_media(cx, seen, member.bytes).await?;
        }
        self.complete(cx, &url, &outcome).await?;
        self.media_gone(cx, &url).await
    }

    /// Unpacks and hashes the media members, keeping the bytes of unknown ones while they fit
    /// what the host may still hold.
    async fn hash_members(
        &self,
        cx: &Context,
        response: &Response,
    ) -> (Vec<Member>, Option<String>) {
        let body = response.body.clone();
        let matcher = cx.matcher.clone();
        let limits = cx.config.archive.clone();
        let mut budget = cx.config.max_held_bytes.saturating_sub(self.held_bytes);
        let walked = cx
            .cpu
            .run(move || {
                let mut hashed = Vec::new();
                let walk = crate::archive::visit(&body, &limits, |member| {
                    if aranea_hash::sniff(&member.bytes).is_some()
                        && let Ok(media) = matcher.hash_and_match(&member.bytes)
                    {
                        let size = member.bytes.len() as u64;
                        let keep = media.matches.is_empty() && size <= budget;
                        let bytes = keep.then(|| {
                            budget -= size;
                            Bytes::from(member.bytes)
                        });
                        hashed.push(Member {
                            path: member.path,
                            media,
                            bytes,
                        });
                    }
                    ControlFlow::Continue(())
                });
                (hashed, walk.err().map(|e| e.to_string()))
            })
            .await;
        walked.unwrap_or_else(|e| (Vec::new(), Some(e.to_string())))
    }
}
