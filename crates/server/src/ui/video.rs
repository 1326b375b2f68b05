//! Video on the item page: the video itself, muted, never autoplaying, blurred and gray by
//! CSS until the analyst reveals it (a logged step), and blurred thumbnails of the frames
//! vPDQ samples, each with its time. Every serving of the video or a thumbnail is audited
//! by the review crate.
//!
//! It must not serve a frame unblurred nor the video to anyone the item is not visible to.

use aranea_review::now_millis;
use aranea_store::ReviewItemId;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::UiState;
use super::items::{media_response, parse_sha};
use super::session::{SignedIn, error_response};

/// Media kinds (as the store records them) shown as video.
pub fn is_video(kind: &str) -> bool {
    matches!(kind, "mp4" | "webm" | "matroska" | "mov" | "avi")
}

/// The figure body of video `n` of item `id`: the video (revealed or blurred) and its
/// blurred frame thumbnails.
pub async fn figure(
    ui: &UiState,
    s: &SignedIn,
    id: i64,
    n: usize,
    sha: &[u8; 32],
    base: &str,
    revealed: bool,
) -> String {
    let mut out = if revealed {
        format!(
            "<video class=\"revealed\" id=\"video-{n}\" src=\"{base}/original\" muted controls \
             preload=\"metadata\"></video>"
        )
    } else {
        format!(
            "<video class=\"blurred\" id=\"video-{n}\" src=\"{base}/video\" muted controls \
             preload=\"metadata\" aria-label=\"blurred grayscale video, muted\"></video>"
        )
    };
    let frames = ui
        .review
        .video_frames(
            &s.actor,
            ReviewItemId(id),
            sha,
            "video frames listed",
            now_millis(),
        )
        .await;
    match frames {
        Ok(frames) => {
            out.push_str(&format!("<ol class=\"frames\" id=\"frames-{n}\">"));
            for (k, f) in frames.iter().enumerate() {
                out.push_str(&format!(
                    "<li><img class=\"blurred frame\" src=\"{base}/frames/{k}\" \
                     alt=\"blurred grayscale frame {}\"><span class=\"at\">{:.1} s</span></li>",
                    f.number, f.timestamp
                ));
            }
            out.push_str("</ol>");
        }
        Err(_) => out.push_str(
            "<p class=\"notice\" id=\"frames-unavailable\">Frame thumbnails are unavailable \
             for this video.</p>",
        ),
    }
    out
}

/// The video for blurred, muted playback.
pub async fn playback(
    State(ui): State<UiState>,
    s: SignedIn,
    Path((id, sha)): Path<(i64, String)>,
) -> Response {
    let Some(sha) = parse_sha(&sha) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match ui
        .review
        .video_playback(&s.actor, ReviewItemId(id), &sha, now_millis())
        .await
    {
        Ok((bytes, kind)) => media_response(bytes, kind),
        Err(e) => error_response(e),
    }
}

/// One blurred frame thumbnail.
pub async fn frame(
    State(ui): State<UiState>,
    s: SignedIn,
    Path((id, sha, k)): Path<(i64, String, usize)>,
) -> Response {
    let Some(sha) = parse_sha(&sha) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let what = format!("video frame thumbnail {k}");
    match ui
        .review
        .video_frames(&s.actor, ReviewItemId(id), &sha, &what, now_millis())
        .await
    {
        Ok(frames) => match frames.get(k) {
            Some(f) => media_response(f.png.clone(), "image/png"),
            None => StatusCode::NOT_FOUND.into_response(),
        },
        Err(e) => error_response(e),
    }
}
