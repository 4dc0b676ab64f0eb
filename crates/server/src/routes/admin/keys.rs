//! `/key/*`: virtual keys. The clear key is returned once, by
//! `/key/generate` and `/key/regenerate`; only its SHA-256 is stored.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use ferrolite_store::{hash_key, key_display_name, now_ms, Key, KeyFilter, Store, User};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{
    bad, check_budget, check_duration, check_limit, db_err, keys_changed, new_secret_key,
    not_found, nullable, render, store, token_of, Res, Q,
};
use crate::extract::{decode, JsonBody};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GenerateKey {
    key: Option<String>,
    key_alias: Option<String>,
    duration: Option<String>,
    models: Option<Vec<String>>,
    aliases: Option<Map<String, Value>>,
    max_budget: Option<f64>,
    budget_duration: Option<String>,
    user_id: Option<String>,
    team_id: Option<String>,
    max_parallel_requests: Option<i64>,
    tpm_limit: Option<i64>,
    rpm_limit: Option<i64>,
    metadata: Option<Map<String, Value>>,
    blocked: Option<bool>,
    allowed_routes: Option<Vec<String>>,
    tags: Option<Vec<String>>,
}

/// The team must exist; the user is created if it does not (as LiteLLM does).
async fn check_owner(s: &Store, user_id: Option<&str>, team_id: Option<&str>, now: i64) -> Res<()> {
    if let Some(t) = team_id {
        if s.get_team(t).await.map_err(db_err)?.is_none() {
            return Err(bad(
                "team_id",
                format!("Team not found: team_id={t}. Create it with /team/new first."),
            ));
        }
    }
    if let Some(u) = user_id {
        if s.get_user(u).await.map_err(db_err)?.is_none() {
            match s.create_user(&User::new(u.to_owned(), now)).await {
                Ok(()) | Err(ferrolite_store::StoreError::Conflict(_)) => {}
                Err(e) => return Err(db_err(e)),
            }
        }
    }
    Ok(())
}

fn check_alias(alias: Option<&str>) -> Res<()> {
    match alias {
        Some(a) if a.trim().is_empty() => Err(bad("key_alias", "key_alias must not be empty")),
        _ => Ok(()),
    }
}

fn put_tags(metadata: &mut Map<String, Value>, tags: Option<Vec<String>>) {
    if let Some(tags) = tags {
        metadata.insert("tags".into(), json!(tags));
    }
}

pub(super) async fn generate(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<GenerateKey>,
) -> Res<Json<Value>> {
    let s = store(&state)?;
    let now = now_ms();
    check_budget("max_budget", req.max_budget)?;
    check_limit("max_parallel_requests", req.max_parallel_requests)?;
    check_limit("tpm_limit", req.tpm_limit)?;
    check_limit("rpm_limit", req.rpm_limit)?;
    check_alias(req.key_alias.as_deref())?;
    let expires = check_duration("duration", req.duration.as_deref(), now)?;
    let reset_at = check_duration("budget_duration", req.budget_duration.as_deref(), now)?;
    let secret = match req.key {
        Some(k) if !k.starts_with("sk-") || k.len() < 8 || k.chars().any(char::is_whitespace) => {
            return Err(bad(
                "key",
                "a custom key must start with \"sk-\", have at least 8 characters and no spaces",
            ));
        }
        Some(k) => k,
        None => new_secret_key()?,
    };
    check_owner(s, req.user_id.as_deref(), req.team_id.as_deref(), now).await?;
    let mut k = Key::new(hash_key(&secret), key_display_name(&secret), now);
    k.key_alias = req.key_alias;
    k.expires = expires;
    k.models = req.models.unwrap_or_default();
    k.aliases = req.aliases.unwrap_or_default();
    k.max_budget = req.max_budget;
    k.budget_duration = req.budget_duration;
    k.budget_reset_at = reset_at;
    k.user_id = req.user_id;
    k.team_id = req.team_id;
    k.max_parallel_requests = req.max_parallel_requests;
    k.tpm_limit = req.tpm_limit;
    k.rpm_limit = req.rpm_limit;
    k.metadata = req.metadata.unwrap_or_default();
    put_tags(&mut k.metadata, req.tags);
    k.blocked = req.blocked.unwrap_or(false);
    k.allowed_routes = req.allowed_routes.unwrap_or_default();
    k.created_by = Some("admin".into());
    s.create_key(&k).await.map_err(db_err)?;
    // An instance may have cached the hash as unknown.
    keys_changed(&state, Some(&k.token));
    Ok(Json(render::generated(&k, &secret)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KeyQuery {
    key: Option<String>,
}

async fn find(s: &Store, key: &str) -> Res<Key> {
    s.get_key(&token_of(key))
        .await
        .map_err(db_err)?
        .ok_or_else(|| not_found(format!("Key not found: {}", shown(key))))
}

/// A key as it may appear in a message: the hash as given, a clear key shortened.
fn shown(key: &str) -> String {
    if key.starts_with("sk-") {
        key_display_name(key)
    } else {
        key.to_owned()
    }
}

pub(super) async fn info(State(state): State<AppState>, Q(q): Q<KeyQuery>) -> Res<Json<Value>> {
    let s = store(&state)?;
    let key = q
        .key
        .filter(|k| !k.trim().is_empty())
        .ok_or_else(|| bad("key", "missing query parameter: key (the key or its hash)"))?;
    let k = find(s, &key).await?;
    Ok(Json(json!({"key": key, "info": render::key(&k)})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateKey {
    key: String,
    #[serde(default, deserialize_with = "nullable")]
    key_alias: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    duration: Option<Option<String>>,
    models: Option<Vec<String>>,
    aliases: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "nullable")]
    max_budget: Option<Option<f64>>,
    #[serde(default, deserialize_with = "nullable")]
    budget_duration: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    user_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    team_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    max_parallel_requests: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    tpm_limit: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    rpm_limit: Option<Option<i64>>,
    metadata: Option<Map<String, Value>>,
    blocked: Option<bool>,
    allowed_routes: Option<Vec<String>>,
    tags: Option<Vec<String>>,
}

pub(super) async fn update(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<UpdateKey>,
) -> Res<Json<Value>> {
    let s = store(&state)?;
    let now = now_ms();
    check_budget("max_budget", req.max_budget.flatten())?;
    check_limit("max_parallel_requests", req.max_parallel_requests.flatten())?;
    check_limit("tpm_limit", req.tpm_limit.flatten())?;
    check_limit("rpm_limit", req.rpm_limit.flatten())?;
    check_alias(req.key_alias.as_ref().and_then(|a| a.as_deref()))?;
    let expires = req
        .duration
        .as_ref()
        .map(|d| check_duration("duration", d.as_deref(), now))
        .transpose()?;
    let reset_at = req
        .budget_duration
        .as_ref()
        .map(|d| check_duration("budget_duration", d.as_deref(), now))
        .transpose()?;
    let mut k = find(s, &req.key).await?;
    check_owner(
        s,
        req.user_id.as_ref().and_then(|u| u.as_deref()),
        req.team_id.as_ref().and_then(|t| t.as_deref()),
        now,
    )
    .await?;
    if let Some(v) = req.key_alias {
        k.key_alias = v;
    }
    if let Some(v) = expires {
        k.expires = v;
    }
    if let Some(v) = req.models {
        k.models = v;
    }
    if let Some(v) = req.aliases {
        k.aliases = v;
    }
    if let Some(v) = req.max_budget {
        k.max_budget = v;
    }
    if let (Some(d), Some(at)) = (req.budget_duration, reset_at) {
        k.budget_duration = d;
        k.budget_reset_at = at;
    }
    if let Some(v) = req.user_id {
        k.user_id = v;
    }
    if let Some(v) = req.team_id {
        k.team_id = v;
    }
    if let Some(v) = req.max_parallel_requests {
        k.max_parallel_requests = v;
    }
    if let Some(v) = req.tpm_limit {
        k.tpm_limit = v;
    }
    if let Some(v) = req.rpm_limit {
        k.rpm_limit = v;
    }
    if let Some(v) = req.metadata {
        k.metadata = v;
    }
    put_tags(&mut k.metadata, req.tags);
    if let Some(v) = req.blocked {
        k.blocked = v;
    }
    if let Some(v) = req.allowed_routes {
        k.allowed_routes = v;
    }
    k.updated_at = now;
    if !s.update_key(&k).await.map_err(db_err)? {
        return Err(not_found(format!("Key not found: {}", shown(&req.key))));
    }
    keys_changed(&state, Some(&k.token));
    let mut v = render::key(&k);
    if let Some(o) = v.as_object_mut() {
        o.insert("key".into(), req.key.into());
    }
    Ok(Json(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteKeys {
    keys: Option<Vec<String>>,
    key_aliases: Option<Vec<String>>,
}

pub(super) async fn delete(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<DeleteKeys>,
) -> Res<Json<Value>> {
    let s = store(&state)?;
    let mut tokens = Vec::new();
    let mut missing = Vec::new();
    let given: Vec<String> = match (&req.keys, &req.key_aliases) {
        (Some(keys), None) if !keys.is_empty() => {
            for k in keys {
                match s.get_key(&token_of(k)).await.map_err(db_err)? {
                    Some(found) => tokens.push(found.token),
                    None => missing.push(shown(k)),
                }
            }
            keys.clone()
        }
        (None, Some(aliases)) if !aliases.is_empty() => {
            for a in aliases {
                match s.get_key_by_alias(a).await.map_err(db_err)? {
                    Some(found) => tokens.push(found.token),
                    None => missing.push(format!("alias {a}")),
                }
            }
            aliases.clone()
        }
        _ => {
            return Err(bad(
                "keys",
                "give a non-empty list in exactly one of \"keys\" or \"key_aliases\"",
            ))
        }
    };
    if !missing.is_empty() {
        return Err(not_found(format!(
            "Keys not found, nothing deleted: {}",
            missing.join(", ")
        )));
    }
    s.delete_keys(&tokens).await.map_err(db_err)?;
    for t in &tokens {
        keys_changed(&state, Some(t));
    }
    Ok(Json(json!({ "deleted_keys": given })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListKeys {
    user_id: Option<String>,
    team_id: Option<String>,
    key_alias: Option<String>,
    page: Option<u32>,
    size: Option<u32>,
    return_full_object: Option<bool>,
}

pub(super) async fn list(State(state): State<AppState>, Q(q): Q<ListKeys>) -> Res<Json<Value>> {
    let s = store(&state)?;
    let page = q.page.unwrap_or(1);
    let size = q.size.unwrap_or(10);
    if page == 0 || !(1..=100).contains(&size) {
        return Err(bad("page", "page must be ≥ 1 and size between 1 and 100"));
    }
    let (keys, total) = s
        .list_keys(&KeyFilter {
            user_id: q.user_id,
            team_id: q.team_id,
            key_alias: q.key_alias,
            page,
            size,
        })
        .await
        .map_err(db_err)?;
    let keys: Vec<Value> = if q.return_full_object.unwrap_or(false) {
        keys.iter().map(render::key).collect()
    } else {
        keys.into_iter().map(|k| Value::String(k.token)).collect()
    };
    let size = i64::from(size);
    Ok(Json(json!({
        "keys": keys,
        "total_count": total,
        "current_page": page,
        "total_pages": (total + size - 1) / size,
    })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RegenerateKey {
    key: Option<String>,
    new_key: Option<String>,
}

async fn do_regenerate(
    state: &AppState,
    s: &Store,
    key: &str,
    new_key: Option<String>,
) -> Res<Json<Value>> {
    let old = find(s, key).await?;
    let secret = match new_key {
        Some(k) if !k.starts_with("sk-") || k.len() < 8 => {
            return Err(bad(
                "new_key",
                "new_key must start with \"sk-\" and have at least 8 characters",
            ))
        }
        Some(k) => k,
        None => new_secret_key()?,
    };
    let k = s
        .regenerate_key(
            &old.token,
            &hash_key(&secret),
            &key_display_name(&secret),
            now_ms(),
        )
        .await
        .map_err(db_err)?
        .ok_or_else(|| not_found(format!("Key not found: {}", shown(key))))?;
    keys_changed(state, Some(&old.token));
    keys_changed(state, Some(&k.token));
    Ok(Json(render::generated(&k, &secret)))
}

pub(super) async fn regenerate(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<RegenerateKey>,
) -> Res<Json<Value>> {
    let s = store(&state)?;
    let key = req.key.ok_or_else(|| bad("key", "missing field: key"))?;
    do_regenerate(&state, s, &key, req.new_key).await
}

pub(super) async fn regenerate_path(
    State(state): State<AppState>,
    Path(key): Path<String>,
    body: Bytes,
) -> Res<Json<Value>> {
    let s = store(&state)?;
    let req: RegenerateKey = if body.iter().all(u8::is_ascii_whitespace) {
        RegenerateKey::default()
    } else {
        decode(&body)?
    };
    if req.key.as_deref().is_some_and(|k| k != key) {
        return Err(bad(
            "key",
            "the key in the body differs from the key in the path",
        ));
    }
    do_regenerate(&state, s, &key, req.new_key).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BlockKey {
    key: String,
}

async fn set_blocked(state: &AppState, key: &str, blocked: bool) -> Res<Json<Value>> {
    let s = store(state)?;
    let k = s
        .set_key_blocked(&token_of(key), blocked, now_ms())
        .await
        .map_err(db_err)?
        .ok_or_else(|| not_found(format!("Key not found: {}", shown(key))))?;
    keys_changed(state, Some(&k.token));
    Ok(Json(render::key(&k)))
}

pub(super) async fn block(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<BlockKey>,
) -> Res<Json<Value>> {
    set_blocked(&state, &req.key, true).await
}

pub(super) async fn unblock(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<BlockKey>,
) -> Res<Json<Value>> {
    set_blocked(&state, &req.key, false).await
}
