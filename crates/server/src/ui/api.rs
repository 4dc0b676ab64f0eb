//! The UI's read-only JSON endpoints: what the management API does not give
//! in one call. Every one needs a UI session (401 otherwise).

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::Extension;
use ferrolite_core::router::health::DeploymentState;
use ferrolite_store::{SpendDimension, SpendLogFilter, SpendRow, Store};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::stats::{self, Bucket, Series};
use super::{no_store, Ui};
use crate::state::AppState;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// Most log rows read for one overview.
const OVERVIEW_ROWS: u32 = 100_000;

pub(crate) fn json_error(status: StatusCode, message: &str) -> Response {
    let code = status.as_u16().to_string();
    let mut r = json_ok(
        &json!({"error": {"message": message, "type": "auth_error", "param": null, "code": code}}),
    );
    *r.status_mut() = status;
    r
}

fn json_ok(v: &Value) -> Response {
    let mut r = Response::new(Body::from(v.to_string()));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    no_store(r.headers_mut());
    r
}

fn unauthorized() -> Response {
    json_error(
        StatusCode::UNAUTHORIZED,
        "Not logged in to the UI: log in at /ui/login.",
    )
}

fn store_error(e: &ferrolite_store::StoreError) -> Response {
    tracing::warn!("UI query failed: {e}");
    let mut r = json_ok(
        &json!({"error": {"message": "the database query failed", "type": "internal_server_error", "param": null, "code": "500"}}),
    );
    *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    r
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

macro_rules! require_session {
    ($ui:expr, $headers:expr) => {
        if $ui.session(&$headers).is_none() {
            return unauthorized();
        }
    };
}

/// The CSRF token for this session, and what the UI can do.
pub async fn session_info(
    State(s): State<AppState>,
    Extension(ui): Extension<Ui>,
    headers: HeaderMap,
) -> Response {
    let Some(sess) = ui.session(&headers) else {
        return unauthorized();
    };
    json_ok(&json!({
        "csrf_token": ui.sessions().csrf(&sess),
        "expires": sess.expires,
        "store": s.store.as_ref().map(|st| st.backend()),
        "version": ferrolite_core::VERSION,
    }))
}

pub async fn not_found(Extension(ui): Extension<Ui>, headers: HeaderMap) -> Response {
    require_session!(ui, headers);
    json_error(StatusCode::NOT_FOUND, "No such UI endpoint.")
}

/// Every model group and deployment: limits, live use, health. No secrets:
/// only the fields listed here leave the gateway.
pub async fn models(
    State(s): State<AppState>,
    Extension(ui): Extension<Ui>,
    headers: HeaderMap,
) -> Response {
    require_session!(ui, headers);
    let gw = &s.gw;
    let now = tokio::time::Instant::now();
    let wall = now_ms();
    // Failures and requests in the last hour, per deployment, from the logs.
    let mut recent: HashMap<String, (i64, i64)> = HashMap::new();
    if let Some(store) = &s.store {
        let f = SpendLogFilter {
            start: Some(wall - HOUR),
            limit: OVERVIEW_ROWS,
            ..Default::default()
        };
        if let Ok(rows) = store.spend_logs(&f).await {
            for r in rows {
                let e = recent.entry(r.model_id).or_default();
                e.0 += 1;
                if r.status != "success" {
                    e.1 += 1;
                }
            }
        }
    }
    let mut groups: Vec<(String, Vec<Value>)> = Vec::new();
    for d in gw.router.all() {
        let view = gw.usage.view(d.index, now);
        let (state, until) = match gw.health.state(d.index, now) {
            DeploymentState::Healthy => ("healthy", None),
            DeploymentState::Probation => ("probation", None),
            DeploymentState::CoolingDown { until } => {
                let left = until.saturating_duration_since(now).as_millis() as i64;
                ("cooling_down", Some(wall + left))
            }
        };
        let (requests_1h, failures_1h) = recent.get(&d.id).copied().unwrap_or_default();
        let provider = d
            .target
            .as_ref()
            .map(|t| t.provider.to_string())
            .unwrap_or_default();
        let entry = json!({
            "id": d.id,
            "model": d.litellm_model,
            "provider": provider,
            "api_base": d.public_params.get("api_base"),
            "mock": d.mock_response.is_some(),
            "state": state,
            "cooling_until": until,
            "in_flight": view.in_flight,
            "rpm_used": view.requests_this_minute,
            "tpm_used": view.tokens_this_minute,
            "rpm_limit": d.rpm,
            "tpm_limit": d.tpm,
            "max_parallel_requests": d.max_parallel_requests,
            "latency_ms": view.latency_ms.map(|l| l.round()),
            "requests_1h": requests_1h,
            "failures_1h": failures_1h,
            "mode": d.model_info.get("mode").cloned().unwrap_or(json!("chat")),
        });
        match groups.iter_mut().find(|(n, _)| *n == d.model_name) {
            Some((_, v)) => v.push(entry),
            None => groups.push((d.model_name.clone(), vec![entry])),
        }
    }
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(name, deployments)| json!({"name": name, "deployments": deployments}))
        .collect();
    json_ok(&json!({ "groups": groups }))
}

fn as_bucket(r: &SpendRow) -> Bucket {
    Bucket {
        t: r.start_time,
        requests: 1,
        errors: i64::from(r.status != "success"),
        tokens: r.total_tokens,
        spend: r.spend,
    }
}

/// Labels for key hashes: alias, else the `sk-...abcd` display name.
async fn key_labels(store: &Store, hashes: Vec<String>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for h in hashes {
        if h.is_empty() || out.contains_key(&h) {
            continue;
        }
        let label = match store.get_key(&h).await {
            Ok(Some(k)) => k.key_alias.unwrap_or(k.key_name),
            _ => format!("{}…", h.get(..10).unwrap_or(&h)),
        };
        out.insert(h, label);
    }
    out
}

/// Requests, errors, tokens and spend over the last hour, day and 30 days;
/// latency percentiles; top models, keys and teams by spend.
pub async fn overview(
    State(s): State<AppState>,
    Extension(ui): Extension<Ui>,
    headers: HeaderMap,
) -> Response {
    require_session!(ui, headers);
    let now = now_ms();
    let mut hour = Series::ending_at(now, MINUTE, 60);
    let mut day = Series::ending_at(now, HOUR, 24);
    let mut month = Series::ending_at(now, DAY, 30);
    let Some(store) = &s.store else {
        return json_ok(&json!({
            "store": false,
            "windows": {"hour": hour.finish(), "day": day.finish(), "month": month.finish()},
            "top": {"models": [], "keys": [], "teams": []},
        }));
    };
    let f = SpendLogFilter {
        start: Some(month.start()),
        limit: OVERVIEW_ROWS,
        ..Default::default()
    };
    let rows = match store.spend_logs(&f).await {
        Ok(r) => r,
        Err(e) => return store_error(&e),
    };
    let truncated = rows.len() as u32 >= OVERVIEW_ROWS;
    for r in &rows {
        let b = as_bucket(r);
        // Every row carries its latency; 0 is a real sub-millisecond answer
        // (the mock model, a cache hit), not a missing value.
        let lat = Some(r.latency_ms.max(r.end_time - r.start_time).max(0));
        hour.add(r.start_time, &b, lat);
        day.add(r.start_time, &b, lat);
        month.add(r.start_time, &b, lat);
    }
    let start = Some(month.start());
    let per = |dim| async move { store.spend_per_day(dim, start, None).await };
    let (models, keys, teams) = match (
        per(SpendDimension::Model).await,
        per(SpendDimension::Key).await,
        per(SpendDimension::Team).await,
    ) {
        (Ok(m), Ok(k), Ok(t)) => (m, k, t),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return store_error(&e),
    };
    let pick = |v: Vec<ferrolite_store::DailySpend>| {
        stats::top(
            v.into_iter()
                .filter(|d| !d.group.is_empty())
                .map(|d| (d.group, d.spend, d.requests)),
            5,
        )
    };
    let top_models = pick(models);
    let mut top_keys = pick(keys);
    let top_teams = pick(teams);
    let hashes: Vec<String> = top_keys.iter().map(|t| t.id.clone()).collect();
    let labels = key_labels(store, hashes).await;
    for t in &mut top_keys {
        if let Some(l) = labels.get(&t.id) {
            t.label = l.clone();
        }
    }
    json_ok(&json!({
        "store": true,
        "truncated": truncated,
        "windows": {"hour": hour.finish(), "day": day.finish(), "month": month.finish()},
        "top": {"models": top_models, "keys": top_keys, "teams": top_teams},
    }))
}

#[derive(Deserialize, Default)]
pub struct LogQuery {
    /// A key (`sk-…`), its hash, or its alias.
    key: Option<String>,
    model: Option<String>,
    /// `success` or `failure`.
    status: Option<String>,
    /// Times as ms since the epoch or RFC 3339 / `YYYY-MM-DD[THH:MM]`.
    since: Option<String>,
    until: Option<String>,
    request_id: Option<String>,
    limit: Option<u32>,
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn parse_when(v: &str) -> Option<i64> {
    if let Ok(ms) = v.parse::<i64>() {
        return Some(ms);
    }
    // `datetime-local` gives `YYYY-MM-DDTHH:MM` with no zone: read it as UTC.
    let full = match v.len() {
        16 => format!("{v}:00Z"),
        19 => format!("{v}Z"),
        _ => v.to_owned(),
    };
    ferrolite_store::parse_time(&full)
        .or_else(|_| ferrolite_store::parse_time(v))
        .ok()
}

/// The key hash a filter names: a raw key is hashed, a hash kept, an alias looked up.
async fn key_hash(store: &Store, k: &str) -> Option<String> {
    if k.starts_with("sk-") {
        return Some(ferrolite_store::hash_key(k));
    }
    if k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(k.to_ascii_lowercase());
    }
    match store.get_key_by_alias(k).await {
        Ok(Some(key)) => Some(key.token),
        _ => Some(String::from("-no-such-key-")),
    }
}

/// Recent calls, newest first, filtered by key, model, status and time.
pub async fn logs(
    State(s): State<AppState>,
    Extension(ui): Extension<Ui>,
    headers: HeaderMap,
    Query(q): Query<LogQuery>,
) -> Response {
    require_session!(ui, headers);
    let Some(store) = &s.store else {
        return json_ok(&json!({"store": false, "logs": []}));
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000) as usize;
    let model = nonempty(&q.model).map(str::to_owned);
    let status = nonempty(&q.status).map(str::to_owned);
    // One call's detail carries its stored content (if any); lists do not.
    let content = nonempty(&q.request_id).is_some();
    let mut f = SpendLogFilter {
        content,
        request_id: nonempty(&q.request_id).map(str::to_owned),
        start: nonempty(&q.since).and_then(parse_when),
        end: nonempty(&q.until).and_then(parse_when),
        // Model and status are filtered here: read more rows to fill the page.
        limit: if model.is_some() || status.is_some() {
            10_000
        } else {
            limit as u32
        },
        ..Default::default()
    };
    if let Some(k) = nonempty(&q.key) {
        f.api_key = key_hash(store, k).await;
    }
    let rows = match store.spend_logs(&f).await {
        Ok(r) => r,
        Err(e) => return store_error(&e),
    };
    let rows: Vec<SpendRow> = rows
        .into_iter()
        .filter(|r| {
            model
                .as_deref()
                .is_none_or(|m| r.model_group == m || r.model == m)
        })
        .filter(|r| status.as_deref().is_none_or(|st| r.status == st))
        .take(limit)
        .collect();
    let hashes: Vec<String> = rows.iter().map(|r| r.api_key.clone()).collect();
    let labels = key_labels(store, hashes).await;
    let logs: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let alias = labels.get(&r.api_key).cloned();
            let stored = |t: &Option<String>| match t {
                Some(t) => serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.clone())),
                None => Value::Null,
            };
            let (messages, response) = (stored(&r.messages), stored(&r.response));
            json!({
                "request_id": r.request_id,
                "call_type": r.call_type,
                "api_key": r.api_key,
                "key_label": alias.unwrap_or_else(|| if r.api_key.is_empty() { "master key".into() } else { String::new() }),
                "spend": r.spend,
                "total_tokens": r.total_tokens,
                "prompt_tokens": r.prompt_tokens,
                "completion_tokens": r.completion_tokens,
                "startTime": ferrolite_store::format_rfc3339(r.start_time),
                "endTime": ferrolite_store::format_rfc3339(r.end_time),
                "start_ms": r.start_time,
                "latency_ms": if r.latency_ms > 0 { r.latency_ms } else { (r.end_time - r.start_time).max(0) },
                "model": r.model,
                "model_group": r.model_group,
                "model_id": r.model_id,
                "api_base": r.api_base,
                "custom_llm_provider": r.custom_llm_provider,
                "user": r.user,
                "team_id": r.team_id,
                "end_user": r.end_user,
                "request_tags": r.request_tags,
                "metadata": r.metadata,
                "cache_hit": r.cache_hit,
                "status": r.status,
                "messages": messages,
                "response": response,
            })
        })
        .collect();
    json_ok(&json!({"store": true, "logs": logs}))
}

#[derive(Deserialize, Default)]
pub struct UsageQuery {
    /// `key`, `team`, `model` or `user`.
    by: Option<String>,
    days: Option<i64>,
}

struct UsageTable {
    by: &'static str,
    days: Vec<String>,
    rows: Vec<ferrolite_store::DailySpend>,
    labels: HashMap<String, String>,
}

async fn usage_table(
    store: &Store,
    q: &UsageQuery,
) -> Result<UsageTable, ferrolite_store::StoreError> {
    let (dim, by) = match q.by.as_deref() {
        Some("team") => (SpendDimension::Team, "team"),
        Some("model") => (SpendDimension::Model, "model"),
        Some("user") => (SpendDimension::User, "user"),
        _ => (SpendDimension::Key, "key"),
    };
    let n = q.days.unwrap_or(30).clamp(1, 366);
    let now = now_ms();
    let today = now - now.rem_euclid(DAY);
    let start = today - (n - 1) * DAY;
    let rows = store.spend_per_day(dim, Some(start), None).await?;
    let days = (0..n)
        .map(|i| ferrolite_store::format_day((start + i * DAY) / DAY))
        .collect();
    let labels = if by == "key" {
        let hashes: Vec<String> = rows.iter().map(|r| r.group.clone()).collect();
        key_labels(store, hashes).await
    } else {
        HashMap::new()
    };
    Ok(UsageTable {
        by,
        days,
        rows,
        labels,
    })
}

fn label(t: &UsageTable, group: &str) -> String {
    match t.labels.get(group) {
        Some(l) => l.clone(),
        None if group.is_empty() => match t.by {
            "key" => "master key".into(),
            _ => "(none)".into(),
        },
        None => group.to_owned(),
    }
}

/// Spend per day by key, team, model or user.
pub async fn usage(
    State(s): State<AppState>,
    Extension(ui): Extension<Ui>,
    headers: HeaderMap,
    Query(q): Query<UsageQuery>,
) -> Response {
    require_session!(ui, headers);
    let Some(store) = &s.store else {
        return json_ok(&json!({"store": false, "days": [], "groups": []}));
    };
    let t = match usage_table(store, &q).await {
        Ok(t) => t,
        Err(e) => return store_error(&e),
    };
    let mut groups: BTreeMap<String, (f64, i64, i64, Vec<f64>)> = BTreeMap::new();
    for r in &t.rows {
        let g = groups
            .entry(r.group.clone())
            .or_insert_with(|| (0.0, 0, 0, vec![0.0; t.days.len()]));
        g.0 += r.spend;
        g.1 += r.requests;
        g.2 += r.total_tokens;
        if let Some(i) = t.days.iter().position(|d| *d == r.day) {
            g.3[i] += r.spend;
        }
    }
    let mut list: Vec<Value> = groups
        .into_iter()
        .map(|(g, (spend, requests, tokens, per_day))| {
            json!({"group": g, "label": label(&t, &g), "spend": spend, "requests": requests, "total_tokens": tokens, "per_day": per_day})
        })
        .collect();
    list.sort_by(|a, b| {
        let f = |v: &Value| v["spend"].as_f64().unwrap_or(0.0);
        f(b).total_cmp(&f(a))
    });
    json_ok(&json!({"store": true, "by": t.by, "days": t.days, "groups": list}))
}

fn csv_field(s: &str) -> String {
    // Quote, and defuse spreadsheet formulas.
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The same table as CSV, one line per day and group.
pub async fn usage_csv(
    State(s): State<AppState>,
    Extension(ui): Extension<Ui>,
    headers: HeaderMap,
    Query(q): Query<UsageQuery>,
) -> Response {
    require_session!(ui, headers);
    let mut out = String::from(
        "day,by,group,label,spend_usd,requests,prompt_tokens,completion_tokens,total_tokens\n",
    );
    let by = if let Some(store) = &s.store {
        let t = match usage_table(store, &q).await {
            Ok(t) => t,
            Err(e) => return store_error(&e),
        };
        for r in &t.rows {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{}\n",
                r.day,
                t.by,
                csv_field(&r.group),
                csv_field(&label(&t, &r.group)),
                r.spend,
                r.requests,
                r.prompt_tokens,
                r.completion_tokens,
                r.total_tokens
            ));
        }
        t.by
    } else {
        "key"
    };
    let mut r = Response::new(Body::from(out));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"ferrolite-spend-by-{by}.csv\""
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    no_store(h);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
    }

    #[test]
    fn times_parse_from_ms_and_datetime_local() {
        assert_eq!(parse_when("1700000000000"), Some(1_700_000_000_000));
        assert_eq!(parse_when("1970-01-01T00:01"), Some(60_000));
        assert_eq!(parse_when("nonsense"), None);
    }
}
