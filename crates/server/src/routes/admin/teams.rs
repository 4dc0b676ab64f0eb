//! `/team/*`: teams and their members.

use axum::extract::State;
use axum::Json;
use ferrolite_store::{now_ms, KeyFilter, Store, Team, TeamMember, User};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{
    bad, check_budget, check_duration, check_limit, db_err, keys_changed, new_secret_key,
    not_found, nullable, render, store, Res, MEMBER_ROLES, Q,
};
use crate::extract::JsonBody;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Member {
    user_id: Option<String>,
    user_email: Option<String>,
    role: Option<String>,
}

/// A member as stored: a user id (an email is accepted when a user has
/// it) and a role of `admin` or `user` (default).
async fn resolve(s: &Store, m: Member, param: &str) -> Res<TeamMember> {
    let role = m.role.unwrap_or_else(|| "user".into());
    if !MEMBER_ROLES.contains(&role.as_str()) {
        return Err(bad(
            param,
            format!("unknown member role \"{role}\"; expected admin or user"),
        ));
    }
    let user_id = match (m.user_id, m.user_email) {
        (Some(u), _) if !u.trim().is_empty() => u,
        (_, Some(email)) => {
            let (users, _) = s.list_users(None, 1, 1000).await.map_err(db_err)?;
            users
                .into_iter()
                .find(|u| u.user_email.as_deref() == Some(email.as_str()))
                .map(|u| u.user_id)
                .ok_or_else(|| {
                    bad(
                        param,
                        format!("no user has user_email {email}; give user_id"),
                    )
                })?
        }
        _ => {
            return Err(bad(
                param,
                "a member needs a user_id (or the user_email of an existing user)",
            ))
        }
    };
    Ok(TeamMember { user_id, role })
}

/// Members are users: create the ones that do not exist yet (as LiteLLM does).
async fn ensure_users(s: &Store, members: &[TeamMember], now: i64) -> Res<Vec<String>> {
    let mut created = Vec::new();
    for m in members {
        if s.get_user(&m.user_id).await.map_err(db_err)?.is_none() {
            match s.create_user(&User::new(m.user_id.clone(), now)).await {
                Ok(()) => created.push(m.user_id.clone()),
                Err(ferrolite_store::StoreError::Conflict(_)) => {}
                Err(e) => return Err(db_err(e)),
            }
        }
    }
    Ok(created)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewTeam {
    team_id: Option<String>,
    team_alias: Option<String>,
    members_with_roles: Option<Vec<Member>>,
    max_budget: Option<f64>,
    models: Option<Vec<String>>,
    tpm_limit: Option<i64>,
    rpm_limit: Option<i64>,
    max_parallel_requests: Option<i64>,
    budget_duration: Option<String>,
    blocked: Option<bool>,
    metadata: Option<Map<String, Value>>,
    tags: Option<Vec<String>>,
}

pub(super) async fn new(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<NewTeam>,
) -> Res<Json<Value>> {
    let s = store(&state)?;
    let now = now_ms();
    check_budget("max_budget", req.max_budget)?;
    check_limit("tpm_limit", req.tpm_limit)?;
    check_limit("rpm_limit", req.rpm_limit)?;
    check_limit("max_parallel_requests", req.max_parallel_requests)?;
    let reset_at = check_duration("budget_duration", req.budget_duration.as_deref(), now)?;
    let team_id = match req.team_id {
        Some(t) if t.trim().is_empty() => return Err(bad("team_id", "team_id must not be empty")),
        Some(t) => t,
        None => {
            let k = new_secret_key()?;
            format!("team-{}", &k[3..])
        }
    };
    let mut members = Vec::new();
    for (i, m) in req
        .members_with_roles
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let m = resolve(s, m, &format!("members_with_roles[{i}]")).await?;
        if !members.iter().any(|x: &TeamMember| x.user_id == m.user_id) {
            members.push(m);
        }
    }
    let mut t = Team::new(team_id, now);
    t.team_alias = req.team_alias;
    t.max_budget = req.max_budget;
    t.models = req.models.unwrap_or_default();
    t.tpm_limit = req.tpm_limit;
    t.rpm_limit = req.rpm_limit;
    t.max_parallel_requests = req.max_parallel_requests;
    t.budget_duration = req.budget_duration;
    t.budget_reset_at = reset_at;
    t.blocked = req.blocked.unwrap_or(false);
    t.metadata = req.metadata.unwrap_or_default();
    if let Some(tags) = req.tags {
        t.metadata.insert("tags".into(), json!(tags));
    }
    ensure_users(s, &members, now).await?;
    t.members_with_roles = members;
    s.create_team(&t).await.map_err(db_err)?;
    Ok(Json(render::team(&t)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TeamQuery {
    team_id: Option<String>,
}

async fn find(s: &Store, team_id: &str) -> Res<Team> {
    s.get_team(team_id)
        .await
        .map_err(db_err)?
        .ok_or_else(|| not_found(format!("Team not found: team_id={team_id}")))
}

async fn team_keys(s: &Store, team_id: &str) -> Res<Vec<ferrolite_store::Key>> {
    let (keys, _) = s
        .list_keys(&KeyFilter {
            team_id: Some(team_id.to_owned()),
            page: 1,
            size: 1000,
            ..Default::default()
        })
        .await
        .map_err(db_err)?;
    Ok(keys)
}

pub(super) async fn info(State(state): State<AppState>, Q(q): Q<TeamQuery>) -> Res<Json<Value>> {
    let s = store(&state)?;
    let id = q
        .team_id
        .ok_or_else(|| bad("team_id", "missing query parameter: team_id"))?;
    let t = find(s, &id).await?;
    let keys = team_keys(s, &id).await?;
    Ok(Json(json!({
        "team_id": id,
        "team_info": render::team(&t),
        "keys": keys.iter().map(render::key).collect::<Vec<_>>(),
        "team_memberships": [],
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateTeam {
    team_id: String,
    #[serde(default, deserialize_with = "nullable")]
    team_alias: Option<Option<String>>,
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
    blocked: Option<bool>,
    metadata: Option<Map<String, Value>>,
    tags: Option<Vec<String>>,
}

pub(super) async fn update(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<UpdateTeam>,
) -> Res<Json<Value>> {
    let s = store(&state)?;
    let now = now_ms();
    check_budget("max_budget", req.max_budget.flatten())?;
    check_limit("tpm_limit", req.tpm_limit.flatten())?;
    check_limit("rpm_limit", req.rpm_limit.flatten())?;
    check_limit("max_parallel_requests", req.max_parallel_requests.flatten())?;
    let reset_at = req
        .budget_duration
        .as_ref()
        .map(|d| check_duration("budget_duration", d.as_deref(), now))
        .transpose()?;
    let mut t = find(s, &req.team_id).await?;
    if let Some(v) = req.team_alias {
        t.team_alias = v;
    }
    if let Some(v) = req.max_budget {
        t.max_budget = v;
    }
    if let Some(v) = req.models {
        t.models = v;
    }
    if let Some(v) = req.tpm_limit {
        t.tpm_limit = v;
    }
    if let Some(v) = req.rpm_limit {
        t.rpm_limit = v;
    }
    if let Some(v) = req.max_parallel_requests {
        t.max_parallel_requests = v;
    }
    if let (Some(d), Some(at)) = (req.budget_duration, reset_at) {
        t.budget_duration = d;
        t.budget_reset_at = at;
    }
    if let Some(v) = req.blocked {
        t.blocked = v;
    }
    if let Some(v) = req.metadata {
        t.metadata = v;
    }
    if let Some(tags) = req.tags {
        t.metadata.insert("tags".into(), json!(tags));
    }
    t.updated_at = now;
    if !s.update_team(&t).await.map_err(db_err)? {
        return Err(not_found(format!(
            "Team not found: team_id={}",
            req.team_id
        )));
    }
    keys_changed(&state, None);
    // Members may have changed meanwhile: answer with the stored team.
    let t = find(s, &req.team_id).await?;
    Ok(Json(render::team(&t)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteTeams {
    team_ids: Vec<String>,
}

/// Delete teams and their keys (as LiteLLM does).
pub(super) async fn delete(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<DeleteTeams>,
) -> Res<Json<Value>> {
    let s = store(&state)?;
    if req.team_ids.is_empty() {
        return Err(bad("team_ids", "team_ids must not be empty"));
    }
    for id in &req.team_ids {
        find(s, id).await?;
    }
    for id in &req.team_ids {
        let tokens: Vec<String> = team_keys(s, id)
            .await?
            .into_iter()
            .map(|k| k.token)
            .collect();
        s.delete_keys(&tokens).await.map_err(db_err)?;
    }
    let deleted = s.delete_teams(&req.team_ids).await.map_err(db_err)?;
    keys_changed(&state, None);
    Ok(Json(json!({ "deleted_teams": deleted })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListTeams {
    user_id: Option<String>,
}

pub(super) async fn list(State(state): State<AppState>, Q(q): Q<ListTeams>) -> Res<Json<Value>> {
    let s = store(&state)?;
    let teams = s.list_teams(q.user_id.as_deref()).await.map_err(db_err)?;
    Ok(Json(Value::Array(teams.iter().map(render::team).collect())))
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(Member),
    Many(Vec<Member>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MemberAdd {
    team_id: String,
    member: OneOrMany,
}

pub(super) async fn member_add(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<MemberAdd>,
) -> Res<Json<Value>> {
    let s = store(&state)?;
    let now = now_ms();
    find(s, &req.team_id).await?;
    let given = match req.member {
        OneOrMany::One(m) => vec![m],
        OneOrMany::Many(v) => v,
    };
    if given.is_empty() {
        return Err(bad("member", "member must not be empty"));
    }
    let mut members = Vec::new();
    for m in given {
        members.push(resolve(s, m, "member").await?);
    }
    ensure_users(s, &members, now).await?;
    let team = s
        .update_team_members(&req.team_id, now, |current| {
            for m in &members {
                if current.iter().any(|x| x.user_id == m.user_id) {
                    return Err(format!(
                        "User {} is already a member of team {}",
                        m.user_id, req.team_id
                    ));
                }
            }
            current.extend(members.iter().cloned());
            Ok(())
        })
        .await
        .map_err(db_err)?
        .ok_or_else(|| not_found(format!("Team not found: team_id={}", req.team_id)))?
        .map_err(|m| bad("member", m))?;
    let mut out = render::team(&team);
    if let Some(o) = out.as_object_mut() {
        o.insert(
            "updated_users".into(),
            json!(members
                .iter()
                .map(|m| json!({"user_id": m.user_id}))
                .collect::<Vec<_>>()),
        );
    }
    Ok(Json(out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MemberDelete {
    team_id: String,
    user_id: Option<String>,
    user_email: Option<String>,
}

pub(super) async fn member_delete(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<MemberDelete>,
) -> Res<Json<Value>> {
    let s = store(&state)?;
    let m = resolve(
        s,
        Member {
            user_id: req.user_id,
            user_email: req.user_email,
            role: None,
        },
        "user_id",
    )
    .await?;
    let team = s
        .update_team_members(&req.team_id, now_ms(), |current| {
            let before = current.len();
            current.retain(|x| x.user_id != m.user_id);
            if current.len() == before {
                Err(format!(
                    "User {} is not a member of team {}",
                    m.user_id, req.team_id
                ))
            } else {
                Ok(())
            }
        })
        .await
        .map_err(db_err)?
        .ok_or_else(|| not_found(format!("Team not found: team_id={}", req.team_id)))?
        .map_err(|msg| bad("user_id", msg))?;
    Ok(Json(render::team(&team)))
}
