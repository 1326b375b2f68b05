//! The analyst's pages: the queue with the exposure timer and daily cap, the item page
//! (blurred media, sightings, the classification form), reveal, my history, and the
//! senior analyst's disagreements, settlement and appeal.

use super::session::FormBody;
use aranea_review::facts::{AGE_BANDS, SEVERITIES};
use aranea_review::{Classification, ReviewError, now_millis};
use aranea_store::{Facts, ItemState, ReviewItemId};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::UiState;
use super::exposure::exposure_box;
use super::html::{esc, form, page};
use super::session::{Fields, SignedIn, checked_form, error_response};
use super::video::{self, is_video};

/// How long a reveal lasts: long enough to load the image, not a standing permission.
const GRANT_MS: i64 = 120_000;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn parse_sha(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

fn describe(facts: &Facts) -> String {
    if facts.not_relevant {
        return "not relevant".to_string();
    }
    format!(
        "age {}, severity {}{}",
        facts.age_band,
        facts.severity,
        if facts.harmful_context {
            ", harmful-abusive context"
        } else {
            ""
        }
    )
}

pub async fn queue(State(ui): State<UiState>, s: SignedIn, Query(q): Query<Fields>) -> Response {
    let wellness = match ui.review.wellness(&s.actor, now_millis()).await {
        Ok(w) => w,
        Err(e) => return error_response(e),
    };
    let mut body = exposure_box(&wellness);
    if q.contains_key("empty") {
        body.push_str(
            "<p class=\"notice\" role=\"status\" id=\"empty\">Nothing to review right now.</p>",
        );
    }
    if wellness.cap_reached() {
        body.push_str("<p class=\"notice\" role=\"status\" id=\"capped\">You have reached today's limit. The queue will serve you again tomorrow.</p>");
    } else if s.actor.reviews() {
        body.push_str(&form(
            "/ui/next",
            &s.csrf,
            "<button type=\"submit\" accesskey=\"n\" id=\"next\" autofocus>Next item</button>",
        ));
    }
    page("Review queue", Some((&s.actor, &s.csrf)), &body)
}

pub async fn next(
    State(ui): State<UiState>,
    s: SignedIn,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Response {
    if let Err(r) = checked_form(&s, &headers, &body) {
        return r.into_response();
    }
    if let Err(e) = ui.review.intake(now_millis()).await {
        return error_response(e);
    }
    match ui.review.next_item(&s.actor, now_millis()).await {
        Ok(Some(id)) => Redirect::to(&format!("/ui/items/{id}")).into_response(),
        Ok(None) => Redirect::to("/ui/?empty=1").into_response(),
        Err(e) => error_response(e),
    }
}

fn classification_fields(prefix: &str) -> String {
    let options = |list: &[(&str, &str)]| {
        list.iter()
            .map(|(code, label)| format!("<option value=\"{}\">{}</option>", esc(code), esc(label)))
            .collect::<String>()
    };
    format!(
        "<fieldset><legend>{prefix}</legend>\
         <label>Estimated age (youngest person) <select name=\"age_band\" id=\"age_band\">{}</select></label>\
         <label>Severity <select name=\"severity\" id=\"severity\">{}</select></label>\
         <label><input type=\"checkbox\" name=\"harmful_context\" value=\"1\" id=\"harmful_context\"> \
         Nude or partially nude child in a sexualised context (harmful-abusive)</label>\
         <label><input type=\"checkbox\" name=\"not_relevant\" value=\"1\" id=\"not_relevant\"> Not relevant</label>\
         </fieldset>",
        options(AGE_BANDS),
        options(SEVERITIES)
    )
}

fn classification(fields: &Fields) -> Result<Classification, ReviewError> {
    let get = |k: &str| fields.get(k).map_or("", String::as_str);
    Classification::new(
        get("age_band"),
        get("severity"),
        get("harmful_context") == "1",
        get("not_relevant") == "1",
    )
}

fn granted(ui: &UiState, user: i64, sha: &[u8; 32], now: i64) -> bool {
    ui.grants
        .lock()
        .map(|g| g.get(&(user, *sha)).is_some_and(|&until| until > now))
        .unwrap_or(false)
}

pub async fn item(State(ui): State<UiState>, s: SignedIn, Path(id): Path<i64>) -> Response {
    let now = now_millis();
    let view = match ui.review.item_for(&s.actor, ReviewItemId(id), now).await {
        Ok(v) => v,
        Err(e) => return error_response(e),
    };
    let mut body = match ui.review.wellness(&s.actor, now).await {
        Ok(w) => exposure_box(&w),
        Err(e) => return error_response(e),
    };
    body.push_str(&format!(
        "<p>State: <strong id=\"state\">{}</strong> · seen on {} pages, {} sites, {} providers</p>",
        view.item.state.as_str(),
        view.item.pages,
        view.item.sites,
        view.item.providers
    ));
    for (n, m) in view.media.iter().enumerate() {
        let sha = hex(&m.sha256);
        let base = format!("/ui/items/{id}/media/{sha}");
        let kind = ui
            .review
            .store()
            .media()
            .get(&m.sha256)
            .await
            .ok()
            .flatten()
            .map(|m| m.record.kind)
            .unwrap_or_default();
        body.push_str(&format!(
            "<figure><figcaption>Media {} (SHA-256 {}…)</figcaption>",
            n + 1,
            &sha[..16]
        ));
        let revealed = granted(&ui, s.actor.user.id.0, &m.sha256, now);
        if is_video(&kind) {
            body.push_str(&video::figure(&ui, &s, id, n, &m.sha256, &base, revealed).await);
            if !revealed && view.item.state != ItemState::Decided {
                body.push_str(&form(&format!("{base}/reveal"), &s.csrf,
                    &format!("<button type=\"submit\" id=\"reveal-{n}\">Reveal this video (logged)</button>")));
            }
        } else if revealed {
            body.push_str(&format!("<img class=\"revealed\" id=\"revealed-{n}\" src=\"{base}/original\" alt=\"revealed media\">"));
        } else {
            body.push_str(&format!("<img class=\"blurred\" id=\"media-{n}\" src=\"{base}/thumb\" alt=\"blurred grayscale preview\">"));
            if view.item.state != ItemState::Decided {
                let key = if n == 0 { " accesskey=\"r\"" } else { "" };
                body.push_str(&form(&format!("{base}/reveal"), &s.csrf,
                    &format!("<button type=\"submit\" id=\"reveal-{n}\"{key}>Reveal this media (logged)</button>")));
            }
        }
        body.push_str("</figure>");
    }
    body.push_str("<h2>Sightings</h2><ul>");
    for (page_url, media_url) in &view.sightings {
        body.push_str(&format!(
            "<li>{} — <code>{}</code></li>",
            esc(page_url),
            esc(media_url)
        ));
    }
    body.push_str("</ul>");
    if let Some(mine) = &view.my_vote {
        body.push_str(&format!(
            "<p id=\"my-vote\">Your classification: {}</p>",
            esc(&describe(mine))
        ));
    }
    if let Some(d) = &view.decision {
        body.push_str(&format!(
            "<p id=\"decision\">Decision ({}): {} — {}</p><ul>",
            d.kind.as_str(),
            esc(&d.classification),
            esc(&describe(&d.facts))
        ));
        for v in &view.verdicts {
            let scheme = match &v.jurisdiction {
                Some(j) => format!("{} ({j})", v.scheme),
                None => v.scheme.clone(),
            };
            body.push_str(&format!("<li>{}: {}</li>", esc(&scheme), esc(&v.verdict)));
        }
        body.push_str("</ul>");
    }
    if !view.all_votes.is_empty() {
        body.push_str("<h2>Votes</h2><ul id=\"votes\">");
        for v in &view.all_votes {
            body.push_str(&format!("<li>{}</li>", esc(&describe(&v.facts))));
        }
        body.push_str("</ul>");
    }
    let note = "<label>Note <input name=\"note\" id=\"note\"></label>";
    match view.item.state {
        ItemState::Open if view.my_vote.is_none() => body.push_str(&form(
            &format!("/ui/items/{id}/vote"),
            &s.csrf,
            &format!(
                "{}<button type=\"submit\" id=\"submit-vote\">Record classification</button>",
                classification_fields("Classification")
            ),
        )),
        ItemState::Disputed if s.actor.is_senior() => body.push_str(&form(
            &format!("/ui/items/{id}/settle"),
            &s.csrf,
            &format!(
                "{}{note}<button type=\"submit\" id=\"settle\">Settle</button>",
                classification_fields("Senior decision")
            ),
        )),
        ItemState::Decided if s.actor.is_senior() => body.push_str(&form(
            &format!("/ui/items/{id}/reopen"),
            &s.csrf,
            &format!(
                "{}{note}<button type=\"submit\" id=\"reopen\">Reclassify on appeal</button>",
                classification_fields("Appeal")
            ),
        )),
        _ => {}
    }
    page(&format!("Item {id}"), Some((&s.actor, &s.csrf)), &body)
}

pub async fn vote(
    State(ui): State<UiState>,
    s: SignedIn,
    Path(id): Path<i64>,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Response {
    let fields = match checked_form(&s, &headers, &body) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let outcome = match classification(&fields) {
        Ok(c) => {
            ui.review
                .vote(&s.actor, ReviewItemId(id), &c, now_millis())
                .await
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(_) => Redirect::to("/ui/").into_response(),
        Err(e) => error_response(e),
    }
}

pub async fn settle(
    State(ui): State<UiState>,
    s: SignedIn,
    Path(id): Path<i64>,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Response {
    senior_action(ui, s, id, headers, body, false).await
}

pub async fn reopen(
    State(ui): State<UiState>,
    s: SignedIn,
    Path(id): Path<i64>,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Response {
    senior_action(ui, s, id, headers, body, true).await
}

async fn senior_action(
    ui: UiState,
    s: SignedIn,
    id: i64,
    headers: HeaderMap,
    body: axum::body::Bytes,
    appeal: bool,
) -> Response {
    let fields = match checked_form(&s, &headers, &body) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let note = fields.get("note").map_or("", String::as_str);
    let result = match classification(&fields) {
        Ok(c) if appeal => {
            ui.review
                .reopen(&s.actor, ReviewItemId(id), &c, note, now_millis())
                .await
        }
        Ok(c) => {
            ui.review
                .settle_dispute(&s.actor, ReviewItemId(id), &c, note, now_millis())
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Redirect::to(&format!("/ui/items/{id}")).into_response(),
        Err(e) => error_response(e),
    }
}

pub(super) fn media_response(bytes: Vec<u8>, content_type: &'static str) -> Response {
    let mut response = bytes.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub async fn thumb(
    State(ui): State<UiState>,
    s: SignedIn,
    Path((id, sha)): Path<(i64, String)>,
) -> Response {
    let Some(sha) = parse_sha(&sha) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match ui
        .review
        .media_for(&s.actor, ReviewItemId(id), &sha, false, now_millis())
        .await
    {
        Ok((bytes, kind)) => media_response(bytes, kind),
        Err(e) => error_response(e),
    }
}

pub async fn reveal(
    State(ui): State<UiState>,
    s: SignedIn,
    Path((id, sha_text)): Path<(i64, String)>,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Response {
    if let Err(r) = checked_form(&s, &headers, &body) {
        return r.into_response();
    }
    let Some(sha) = parse_sha(&sha_text) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let now = now_millis();
    // Only media the user may see gets a grant; serving it is audited as the reveal.
    if let Err(e) = ui
        .review
        .media_for(&s.actor, ReviewItemId(id), &sha, false, now)
        .await
    {
        return error_response(e);
    }
    if let Ok(mut grants) = ui.grants.lock() {
        grants.retain(|_, until| *until > now);
        grants.insert((s.actor.user.id.0, sha), now + GRANT_MS);
    }
    Redirect::to(&format!("/ui/items/{id}")).into_response()
}

pub async fn original(
    State(ui): State<UiState>,
    s: SignedIn,
    Path((id, sha)): Path<(i64, String)>,
) -> Response {
    let now = now_millis();
    let Some(sha) = parse_sha(&sha) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !granted(&ui, s.actor.user.id.0, &sha, now) {
        return (StatusCode::FORBIDDEN, "press Reveal first").into_response();
    }
    match ui
        .review
        .media_for(&s.actor, ReviewItemId(id), &sha, true, now)
        .await
    {
        Ok((bytes, kind)) => media_response(bytes, kind),
        Err(e) => error_response(e),
    }
}

pub async fn history(State(ui): State<UiState>, s: SignedIn) -> Response {
    let rows = match ui.review.history(&s.actor, 200).await {
        Ok(r) => r,
        Err(e) => return error_response(e),
    };
    let mut body = String::from(
        "<table id=\"history\"><thead><tr><th>Item</th><th>Your classification</th><th>Item state</th></tr></thead><tbody>",
    );
    for (vote, state) in rows {
        body.push_str(&format!(
            "<tr><td><a href=\"/ui/items/{0}\">{0}</a></td><td>{1}</td><td>{2}</td></tr>",
            vote.item,
            esc(&describe(&vote.facts)),
            state.as_str()
        ));
    }
    body.push_str("</tbody></table>");
    page("My history", Some((&s.actor, &s.csrf)), &body)
}

pub async fn disputes(State(ui): State<UiState>, s: SignedIn) -> Response {
    let (disputed, decided) = match (
        ui.review.disputed_items(&s.actor).await,
        ui.review.decided_items(&s.actor).await,
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return error_response(e),
    };
    let list = |items: &[aranea_store::ReviewItem], id: &str| {
        let mut out = format!("<ul id=\"{id}\">");
        for i in items {
            out.push_str(&format!(
                "<li><a href=\"/ui/items/{0}\">Item {0}</a> — {1} pages</li>",
                i.id, i.pages
            ));
        }
        out.push_str("</ul>");
        out
    };
    let body = format!(
        "<h2>Waiting for a senior decision</h2>{}<h2>Decided (appeal)</h2>{}",
        list(&disputed, "disputed"),
        list(&decided, "decided")
    );
    page("Disagreements", Some((&s.actor, &s.csrf)), &body)
}
