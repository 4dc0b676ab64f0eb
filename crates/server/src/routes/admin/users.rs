//! `/user/*`: users. `/user/new` also creates a key for the user unless
//! `auto_create_key` is false, as LiteLLM does.

use axum::extract::State;
use axum::Json;
use ferrolite_store::{
    hash_key, key_display_name, now_ms, Key, KeyFilter, Store, TeamMember, User,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{
    bad, check_budget, check_duration, check_limit, db_err, keys_changed, new_secret_key,
    not_found, nullable, render, store, Res, Q, USER_ROLES,
};
use crate::extract::JsonBody;
use crate::state::AppState;

fn check_role(role: Option<&str>) -> Res<()> {
    match role {
        Some(r) if !USER_ROLES.contains(&r) => Err(bad(
            "user_role",
            format!(
                "unknown user_role \"{r}\"; expected one of {}",
                USER_ROLES.join(", ")
            ),
        )),
        _ => Ok(()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewUser {
    user_id: Option<String>,
    user_email: Option<String>,
    user_role: Option<String>,
    max_budget: Option<f64>,
    models: Option<Vec<String>>,
    tpm_limit: Option<i64>,
    rpm_limit: Option<i64>,
    max_parallel_requests: Option<i64>,
    budget_duration: Option<String>,
    metadata: Option<Map<String, Value>>,
    teams: Option<Vec<String>>,
    auto_create_key: Option<bool>,
    key_alias: Option<String>,
    duration: Option<String>,
}

pub(super) async fn new(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<NewUser>,
) -> Res<Json<Value>> {
    let s = store(&state)?;
    let now = now_ms();
    check_budget("max_budget", req.max_budget)?;
    check_limit("tpm_limit", req.tpm_limit)?;
    check_limit("rpm_limit", req.rpm_limit)?;
    check_limit("max_parallel_requests", req.max_parallel_requests)?;
    check_role(req.user_role.as_deref())?;
    let reset_at = check_duration("budget_duration", req.budget_duration.as_deref(), now)?;
    let expires = check_duration("duration", req.duration.as_deref(), now)?;
    let teams = req.teams.unwrap_or_default();
    for t in &teams {
        if s.get_team(t).await.map_err(db_err)?.is_none() {
            return Err(bad("teams", format!("Team not found: team_id={t}")));
        }
    }
    let user_id = match req.user_id {
        Some(u) if u.trim().is_empty() => return Err(bad("user_id", "user_id must not be empty")),
        Some(u) => u,
        None => uuid_like()?,
    };
    let mut u = User::new(user_id, now);
    u.user_email = req.user_email;
    u.user_role = Some(req.user_role.unwrap_or_else(|| "internal_user".into()));
    u.max_budget = req.max_budget;
    u.models = req.models.unwrap_or_default();
    u.tpm_limit = req.tpm_limit;
    u.rpm_limit = req.rpm_limit;
    u.max_parallel_requests = req.max_parallel_requests;
    u.budget_duration = req.budget_duration;
    u.budget_reset_at = reset_at;
    u.metadata = req.metadata.unwrap_or_default();
    s.create_user(&u).await.map_err(db_err)?;
    for t in &teams {
        let uid = u.user_id.clone();
        s.update_team_members(t, now, |m| {
            if !m.iter().any(|x| x.user_id == uid) {
                m.push(TeamMember {
                    user_id: uid.clone(),
                    role: "user".into(),
                });
            }
            Ok(())
        })
        .await
        .map_err(db_err)?;
    }
    let mut out = render::user(&u);
    let Some(o) = out.as_object_mut() else {
        return Ok(Json(out));
    };
    o.insert("teams".into(), json!(teams));
    if req.auto_create_key.unwrap_or(true) {
        let secret = new_secret_key()?;
        let mut k = Key::new(hash_key(&secret), key_display_name(&secret), now);
        k.user_id = Some(u.user_id.clone());
        k.key_alias = req.key_alias;
        k.expires = expires;
        k.models = u.models.clone();
        k.created_by = Some("admin".into());
        s.create_key(&k).await.map_err(db_err)?;
        o.insert("key".into(), secret.into());
        o.insert("token".into(), k.token.into());
        o.insert("key_name".into(), k.key_name.into());
        o.insert(
            "expires".into(),
            json!(k.expires.map(ferrolite_store::format_rfc3339)),
        );
    }
    Ok(Json(out))
}

/// A random user id (LiteLLM uses a UUID).
fn uuid_like() -> Res<String> {
    let k = new_secret_key()?;
    Ok(format!("user-{}", &k[3..]))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UserQuery {
    user_id: Option<String>,
}

async fn find(s: &Store, user_id: &str) -> Res<User> {
    s.get_user(user_id)
        .await
        .map_err(db_err)?
        .ok_or_else(|| not_found(format!("User not found: user_id={user_id}")))
}

pub(super) async fn info(State(state): State<AppState>, Q(q): Q<UserQuery>) -> Res<Json<Value>> {
    let s = store(&state)?;
    let id = q
        .user_id
        .ok_or_else(|| bad("user_id", "missing query parameter: user_id"))?;
    let u = find(s, &id).await?;
    let (keys, _) = s
        .list_keys(&KeyFilter {
            user_id: Some(id.clone()),
            page: 1,
            size: 1000,
            ..Default::default()
        })
        .await
        .map_err(db_err)?;
    let teams = s.list_teams(Some(&id)).await.map_err(db_err)?;
    Ok(Json(json!({
        "user_id": id,
        "user_info": render::user(&u),
        "keys": keys.iter().map(render::key).collect::<Vec<_>>(),
        "teams": teams.iter().map(render::team).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateUser {
    user_id: String,
    #[serde(default, deserialize_with = "nullable")]
    user_email: Option<Option<String>>,
    user_role: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    max_budget: Option<Option<f64>>,
    models: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    tpm_limit: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    rpm_limit: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    max_parallel_requests: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    budget_duration: Option<Option<String>>,
    metadata: Option<Map<String, Value>>,
}

pub(super) async fn update(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<UpdateUser>,
) -> Res<Json<Value>> {
    let s = store(&state)?;
    let now = now_ms();
    check_budget("max_budget", req.max_budget.flatten())?;
    check_limit("tpm_limit", req.tpm_limit.flatten())?;
    check_limit("rpm_limit", req.rpm_limit.flatten())?;
    check_limit("max_parallel_requests", req.max_parallel_requests.flatten())?;
    check_role(req.user_role.as_deref())?;
    let reset_at = req
        .budget_duration
        .as_ref()
        .map(|d| check_duration("budget_duration", d.as_deref(), now))
        .transpose()?;
    let mut u = find(s, &req.user_id).await?;
    if let Some(v) = req.user_email {
        u.user_email = v;
    }
    if let Some(v) = req.user_role {
        u.user_role = Some(v);
    }
    if let Some(v) = req.max_budget {
        u.max_budget = v;
    }
    if let Some(v) = req.models {
        u.models = v;
    }
    if let Some(v) = req.tpm_limit {
        u.tpm_limit = v;
    }
    if let Some(v) = req.rpm_limit {
        u.rpm_limit = v;
    }
    if let Some(v) = req.max_parallel_requests {
        u.max_parallel_requests = v;
    }
    if let (Some(d), Some(at)) = (req.budget_duration, reset_at) {
        u.budget_duration = d;
        u.budget_reset_at = at;
    }
    if let Some(v) = req.metadata {
        u.metadata = v;
    }
    u.updated_at = now;
    if !s.update_user(&u).await.map_err(db_err)? {
        return Err(not_found(format!(
            "User not found: user_id={}",
            req.user_id
        )));
    }
    keys_changed(&state, None);
    Ok(Json(render::user(&u)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteUsers {
    user_ids: Vec<String>,
}

/// Delete users, their keys, and their team memberships (as LiteLLM does).
pub(super) async fn delete(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<DeleteUsers>,
) -> Res<Json<Value>> {
    let s = store(&state)?;
    if req.user_ids.is_empty() {
        return Err(bad("user_ids", "user_ids must not be empty"));
    }
    let mut missing = Vec::new();
    for id in &req.user_ids {
        if s.get_user(id).await.map_err(db_err)?.is_none() {
            missing.push(id.as_str());
        }
    }
    if !missing.is_empty() {
        return Err(not_found(format!(
            "Users not found, nothing deleted: {}",
            missing.join(", ")
        )));
    }
    let now = now_ms();
    for id in &req.user_ids {
        let (keys, _) = s
            .list_keys(&KeyFilter {
                user_id: Some(id.clone()),
                page: 1,
                size: 1000,
                ..Default::default()
            })
            .await
            .map_err(db_err)?;
        let tokens: Vec<String> = keys.into_iter().map(|k| k.token).collect();
        s.delete_keys(&tokens).await.map_err(db_err)?;
        for t in s.list_teams(Some(id)).await.map_err(db_err)? {
            s.update_team_members(&t.team_id, now, |m| {
                m.retain(|x| &x.user_id != id);
                Ok(())
            })
            .await
            .map_err(db_err)?;
        }
    }
    let deleted = s.delete_users(&req.user_ids).await.map_err(db_err)?;
    keys_changed(&state, None);
    Ok(Json(json!({ "deleted_users": deleted })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListUsers {
    role: Option<String>,
    page: Option<u32>,
    page_size: Option<u32>,
}

pub(super) async fn list(State(state): State<AppState>, Q(q): Q<ListUsers>) -> Res<Json<Value>> {
    let s = store(&state)?;
    let page = q.page.unwrap_or(1);
    let size = q.page_size.unwrap_or(25);
    if page == 0 || !(1..=100).contains(&size) {
        return Err(bad(
            "page",
            "page must be ≥ 1 and page_size between 1 and 100",
        ));
    }
    let (users, total) = s
        .list_users(q.role.as_deref(), page, size)
        .await
        .map_err(db_err)?;
    let size64 = i64::from(size);
    Ok(Json(json!({
        "users": users.iter().map(render::user).collect::<Vec<_>>(),
        "total": total,
        "page": page,
        "page_size": size,
        "total_pages": (total + size64 - 1) / size64,
    })))
}
