//! Hotline administration (operators: their hotline; platform administrators: all) and
//! the audit trail (auditors: their hotline's rows; platform administrators: all).

use super::session::FormBody;
use aranea_review::{NewUserRequest, now_millis};
use aranea_store::{HotlineId, User, UserId, UserRole};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};

use super::UiState;
use super::html::{esc, form, page};
use super::session::{SignedIn, checked_form, error_response};

const ROLES: [UserRole; 5] = [
    UserRole::Analyst,
    UserRole::SeniorAnalyst,
    UserRole::HotlineOperator,
    UserRole::Auditor,
    UserRole::PlatformAdmin,
];

pub async fn admin(State(ui): State<UiState>, s: SignedIn) -> Response {
    let (hotlines, users) = match (
        ui.review.hotlines_for(&s.actor).await,
        ui.review.users_for(&s.actor).await,
    ) {
        (Ok(h), Ok(u)) => (h, u),
        (Err(e), _) | (_, Err(e)) => return error_response(e),
    };
    let mut body = String::from("<h2>Hotlines</h2>");
    for h in &hotlines {
        let check = |on: bool| if on { " checked" } else { "" };
        body.push_str(&format!(
            "<h3>{} ({})</h3><p>Country {}, jurisdiction {}, languages {}</p>",
            esc(&h.name),
            esc(&h.code),
            esc(&h.country),
            esc(&h.jurisdiction),
            esc(&h.languages.join(", "))
        ));
        body.push_str(&form(&format!("/ui/admin/hotlines/{}", h.id), &s.csrf, &format!(
            "<label><input type=\"checkbox\" name=\"shares_review_pool\" value=\"1\"{}> Share the review pool with other hotlines</label>\
             <label><input type=\"checkbox\" name=\"shares_banks\" value=\"1\"{}> Decisions feed the shared platform bank</label>\
             <label>Daily cap per analyst <input name=\"daily_cap\" type=\"number\" min=\"0\" value=\"{}\"></label>\
             <button type=\"submit\">Save settings</button>",
            check(h.shares_review_pool), check(h.shares_banks), h.daily_cap
        )));
    }
    body.push_str("<h2>Users</h2><table id=\"users\"><thead><tr><th>Username</th><th>Hotline</th><th>Role</th><th>Status</th><th>Second factor</th><th></th><th></th></tr></thead><tbody>");
    for u in &users {
        let code = hotlines
            .iter()
            .find(|h| h.id == u.hotline)
            .map_or("", |h| h.code.as_str());
        let (label, value) = if u.disabled {
            ("Enable", "0")
        } else {
            ("Disable", "1")
        };
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&u.username), esc(code), u.role.as_str(), if u.disabled { "disabled" } else { "active" },
            second_factor(u),
            form(&format!("/ui/admin/users/{}/disabled", u.id), &s.csrf,
                &format!("<input type=\"hidden\" name=\"disabled\" value=\"{value}\"><button type=\"submit\">{label}</button>")),
            form(&format!("/ui/admin/users/{}/totp-reset", u.id), &s.csrf,
                &format!("<button type=\"submit\" id=\"totp-reset-{}\">Reset second factor</button>", esc(&u.username)))
        ));
    }
    body.push_str("</tbody></table><h2>Add a user</h2>");
    let hotline_options: String = hotlines
        .iter()
        .map(|h| format!("<option value=\"{}\">{}</option>", h.id, esc(&h.code)))
        .collect();
    let role_options: String = ROLES
        .iter()
        .filter(|r| s.actor.is_platform_admin() || **r != UserRole::PlatformAdmin)
        .map(|r| format!("<option value=\"{0}\">{0}</option>", r.as_str()))
        .collect();
    body.push_str(&form("/ui/admin/users", &s.csrf, &format!(
        "<label>Hotline <select name=\"hotline\">{hotline_options}</select></label>\
         <label>Username <input name=\"username\" required></label>\
         <label>Display name <input name=\"display_name\"></label>\
         <label>Role <select name=\"role\">{role_options}</select></label>\
         <label>Initial password (12+ characters) <input name=\"password\" type=\"password\" autocomplete=\"new-password\" required></label>\
         <button type=\"submit\">Add user</button>"
    )));
    page("Hotline administration", Some((&s.actor, &s.csrf)), &body)
}

pub async fn hotline_settings(
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
    let on = |k: &str| fields.get(k).is_some_and(|v| v == "1");
    let cap = fields
        .get("daily_cap")
        .and_then(|c| c.parse::<u32>().ok())
        .unwrap_or(0);
    match ui
        .review
        .set_hotline_sharing(
            &s.actor,
            HotlineId(id),
            on("shares_review_pool"),
            on("shares_banks"),
            cap,
            now_millis(),
        )
        .await
    {
        Ok(()) => Redirect::to("/ui/admin").into_response(),
        Err(e) => error_response(e),
    }
}

pub async fn add_user(
    State(ui): State<UiState>,
    s: SignedIn,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Response {
    let fields = match checked_form(&s, &headers, &body) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
    let Some(role) = UserRole::from_name(&get("role")) else {
        return error_response(aranea_review::ReviewError::NotFound("role"));
    };
    let Ok(hotline) = get("hotline").parse::<i64>() else {
        return error_response(aranea_review::ReviewError::NotFound("hotline"));
    };
    let request = NewUserRequest {
        hotline: HotlineId(hotline),
        username: get("username"),
        display_name: get("display_name"),
        role,
        password: get("password"),
    };
    match ui
        .review
        .add_user((&s.actor).into(), request, now_millis())
        .await
    {
        Ok(_) => Redirect::to("/ui/admin").into_response(),
        Err(e) => error_response(e),
    }
}

pub async fn user_disabled(
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
    let disabled = fields.get("disabled").is_some_and(|v| v == "1");
    match ui
        .review
        .set_user_disabled((&s.actor).into(), UserId(id), disabled, now_millis())
        .await
    {
        Ok(()) => Redirect::to("/ui/admin").into_response(),
        Err(e) => error_response(e),
    }
}

/// The user's second factor as the users table shows it.
fn second_factor(u: &User) -> &'static str {
    match (&u.totp_secret, &u.totp_pending, u.totp_enrol_required) {
        (Some(_), _, _) => "on",
        (None, _, true) => "reset: must enrol at next sign-in",
        (None, Some(_), false) => "being set up",
        (None, None, false) => "off",
    }
}

/// An operator resets a user's lost second factor (the review crate checks they manage
/// the user's hotline and audits it); the user enrols a new one at their next sign-in.
pub async fn totp_reset(
    State(ui): State<UiState>,
    s: SignedIn,
    Path(id): Path<i64>,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Response {
    if let Err(r) = checked_form(&s, &headers, &body) {
        return r.into_response();
    }
    match ui
        .review
        .reset_totp((&s.actor).into(), UserId(id), now_millis())
        .await
    {
        Ok(()) => Redirect::to("/ui/admin").into_response(),
        Err(e) => error_response(e),
    }
}

pub async fn audit(State(ui): State<UiState>, s: SignedIn) -> Response {
    let rows = match ui.review.audit_trail(&s.actor, 500, now_millis()).await {
        Ok(r) => r,
        Err(e) => return error_response(e),
    };
    let mut body = String::from(
        "<table id=\"audit\"><thead><tr><th>#</th><th>When (UTC ms)</th><th>Who</th><th>Hotline</th><th>What</th><th>Subject</th><th>Detail</th><th>From</th></tr></thead><tbody>",
    );
    for r in rows {
        let rec = &r.record;
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            r.seq, rec.at, esc(&rec.actor), esc(&rec.hotline), esc(&rec.action), esc(&rec.subject), esc(&rec.detail), esc(&rec.source)
        ));
    }
    body.push_str("</tbody></table>");
    page("Audit trail", Some((&s.actor, &s.csrf)), &body)
}
