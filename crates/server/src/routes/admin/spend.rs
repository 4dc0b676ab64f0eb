//! Spend: `/spend/logs`, `/global/spend`, `/global/spend/keys`,
//! `/global/spend/models`.

use axum::extract::State;
use axum::Json;
use ferrolite_store::{parse_time, SpendLogFilter};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{bad, db_err, render, store, token_of, Res, Q};
use crate::state::AppState;

const DAY_MS: i64 = 86_400_000;

/// `start_date` / `end_date`: a day (`YYYY-MM-DD`, the end day included)
/// or an RFC 3339 time. Returns `[start, end)` in ms.
fn range(start: Option<&str>, end: Option<&str>) -> Res<(Option<i64>, Option<i64>)> {
    let start = start
        .map(|s| parse_time(s).map_err(|m| bad("start_date", m)))
        .transpose()?;
    let end = end
        .map(|e| {
            parse_time(e)
                .map(|t| if e.trim().len() == 10 { t + DAY_MS } else { t })
                .map_err(|m| bad("end_date", m))
        })
        .transpose()?;
    if let (Some(s), Some(e)) = (start, end) {
        if e <= s {
            return Err(bad("end_date", "end_date must be after start_date"));
        }
    }
    Ok((start, end))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LogsQuery {
    request_id: Option<String>,
    api_key: Option<String>,
    user_id: Option<String>,
    team_id: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
    limit: Option<u32>,
}

pub(super) async fn logs(State(state): State<AppState>, Q(q): Q<LogsQuery>) -> Res<Json<Value>> {
    let s = store(&state)?;
    let (start, end) = range(q.start_date.as_deref(), q.end_date.as_deref())?;
    let rows = s
        .spend_logs(&SpendLogFilter {
            request_id: q.request_id,
            api_key: q.api_key.as_deref().map(token_of),
            user_id: q.user_id,
            team_id: q.team_id,
            start,
            end,
            limit: q.limit.unwrap_or(1000),
            content: true,
        })
        .await
        .map_err(db_err)?;
    Ok(Json(Value::Array(
        rows.iter().map(render::spend_row).collect(),
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RangeQuery {
    start_date: Option<String>,
    end_date: Option<String>,
    limit: Option<u32>,
}

pub(super) async fn global(State(state): State<AppState>, Q(q): Q<RangeQuery>) -> Res<Json<Value>> {
    let s = store(&state)?;
    let (start, end) = range(q.start_date.as_deref(), q.end_date.as_deref())?;
    let total = s.global_spend(start, end).await.map_err(db_err)?;
    Ok(Json(json!({ "spend": total, "max_budget": null })))
}

pub(super) async fn keys(State(state): State<AppState>, Q(q): Q<RangeQuery>) -> Res<Json<Value>> {
    let s = store(&state)?;
    if q.start_date.is_some() || q.end_date.is_some() {
        return Err(bad(
            "start_date",
            "/global/spend/keys reports each key's total spend; no date range",
        ));
    }
    let keys = s
        .spend_per_key(q.limit.unwrap_or(5))
        .await
        .map_err(db_err)?;
    Ok(Json(Value::Array(
        keys.iter()
            .map(|k| json!({"api_key": k.token, "total_spend": k.spend, "key_alias": k.key_alias, "key_name": k.key_name}))
            .collect(),
    )))
}

pub(super) async fn models(State(state): State<AppState>, Q(q): Q<RangeQuery>) -> Res<Json<Value>> {
    let s = store(&state)?;
    let (start, end) = range(q.start_date.as_deref(), q.end_date.as_deref())?;
    let models = s
        .spend_per_model(start, end, q.limit.unwrap_or(5))
        .await
        .map_err(db_err)?;
    Ok(Json(Value::Array(
        models
            .iter()
            .map(|m| json!({"model": m.model, "total_spend": m.spend, "requests": m.requests, "total_tokens": m.total_tokens}))
            .collect(),
    )))
}
