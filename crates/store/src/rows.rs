//! Reading rows of either backend into entities: one small column-access
//! trait implemented for both row types, so each entity has one decoder.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use crate::model::{Key, SpendRow, Team, User};
use crate::{Result, StoreError};

pub(crate) trait Cols {
    fn text(&self, c: &str) -> Result<String>;
    fn opt_text(&self, c: &str) -> Result<Option<String>>;
    fn int(&self, c: &str) -> Result<i64>;
    fn opt_int(&self, c: &str) -> Result<Option<i64>>;
    fn float(&self, c: &str) -> Result<f64>;
    fn opt_float(&self, c: &str) -> Result<Option<f64>>;
    fn flag(&self, c: &str) -> Result<bool>;
}

macro_rules! impl_cols {
    ($row:ty) => {
        impl Cols for $row {
            fn text(&self, c: &str) -> Result<String> {
                Ok(self.try_get(c)?)
            }
            fn opt_text(&self, c: &str) -> Result<Option<String>> {
                Ok(self.try_get(c)?)
            }
            fn int(&self, c: &str) -> Result<i64> {
                Ok(self.try_get(c)?)
            }
            fn opt_int(&self, c: &str) -> Result<Option<i64>> {
                Ok(self.try_get(c)?)
            }
            fn float(&self, c: &str) -> Result<f64> {
                Ok(self.try_get(c)?)
            }
            fn opt_float(&self, c: &str) -> Result<Option<f64>> {
                Ok(self.try_get(c)?)
            }
            fn flag(&self, c: &str) -> Result<bool> {
                Ok(self.try_get(c)?)
            }
        }
    };
}
impl_cols!(SqliteRow);
impl_cols!(PgRow);

fn json<T: DeserializeOwned>(r: &dyn Cols, c: &str) -> Result<T> {
    let s = r.text(c)?;
    serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("column {c}: {e}")))
}

/// A value as JSON text for a TEXT column.
pub(crate) fn to_json<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

pub(crate) fn obj(r: &dyn Cols, c: &str) -> Result<Map<String, Value>> {
    match json::<Value>(r, c)? {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Map::new()),
        other => Err(StoreError::Corrupt(format!(
            "column {c}: expected an object, got {other}"
        ))),
    }
}

pub(crate) const KEY_COLS: &str = "token, key_name, key_alias, spend, max_budget, budget_duration, budget_reset_at, expires, models, aliases, user_id, team_id, max_parallel_requests, tpm_limit, rpm_limit, metadata, blocked, allowed_routes, created_at, updated_at, created_by";

pub(crate) fn key(r: &dyn Cols) -> Result<Key> {
    Ok(Key {
        token: r.text("token")?,
        key_name: r.text("key_name")?,
        key_alias: r.opt_text("key_alias")?,
        spend: r.float("spend")?,
        max_budget: r.opt_float("max_budget")?,
        budget_duration: r.opt_text("budget_duration")?,
        budget_reset_at: r.opt_int("budget_reset_at")?,
        expires: r.opt_int("expires")?,
        models: json(r, "models")?,
        aliases: obj(r, "aliases")?,
        user_id: r.opt_text("user_id")?,
        team_id: r.opt_text("team_id")?,
        max_parallel_requests: r.opt_int("max_parallel_requests")?,
        tpm_limit: r.opt_int("tpm_limit")?,
        rpm_limit: r.opt_int("rpm_limit")?,
        metadata: obj(r, "metadata")?,
        blocked: r.flag("blocked")?,
        allowed_routes: json(r, "allowed_routes")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        created_by: r.opt_text("created_by")?,
    })
}

pub(crate) const USER_COLS: &str = "user_id, user_email, user_role, max_budget, spend, models, tpm_limit, rpm_limit, max_parallel_requests, budget_duration, budget_reset_at, metadata, created_at, updated_at";

pub(crate) fn user(r: &dyn Cols) -> Result<User> {
    Ok(User {
        user_id: r.text("user_id")?,
        user_email: r.opt_text("user_email")?,
        user_role: r.opt_text("user_role")?,
        max_budget: r.opt_float("max_budget")?,
        spend: r.float("spend")?,
        models: json(r, "models")?,
        tpm_limit: r.opt_int("tpm_limit")?,
        rpm_limit: r.opt_int("rpm_limit")?,
        max_parallel_requests: r.opt_int("max_parallel_requests")?,
        budget_duration: r.opt_text("budget_duration")?,
        budget_reset_at: r.opt_int("budget_reset_at")?,
        metadata: obj(r, "metadata")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

pub(crate) const TEAM_COLS: &str = "team_id, team_alias, members_with_roles, max_budget, spend, models, tpm_limit, rpm_limit, max_parallel_requests, budget_duration, budget_reset_at, blocked, metadata, created_at, updated_at";

pub(crate) fn team(r: &dyn Cols) -> Result<Team> {
    Ok(Team {
        team_id: r.text("team_id")?,
        team_alias: r.opt_text("team_alias")?,
        members_with_roles: json(r, "members_with_roles")?,
        max_budget: r.opt_float("max_budget")?,
        spend: r.float("spend")?,
        models: json(r, "models")?,
        tpm_limit: r.opt_int("tpm_limit")?,
        rpm_limit: r.opt_int("rpm_limit")?,
        max_parallel_requests: r.opt_int("max_parallel_requests")?,
        budget_duration: r.opt_text("budget_duration")?,
        budget_reset_at: r.opt_int("budget_reset_at")?,
        blocked: r.flag("blocked")?,
        metadata: obj(r, "metadata")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

pub(crate) const SPEND_COLS: &str = "request_id, call_type, api_key, spend, total_tokens, prompt_tokens, completion_tokens, start_time, end_time, model, model_id, model_group, api_base, custom_llm_provider, user_id, team_id, end_user, request_tags, metadata, cache_hit, status, latency_ms";

/// The stored content of a call (`store_prompts_in_spend_logs`), after
/// [`SPEND_COLS`] in writes and reads.
pub(crate) const SPEND_CONTENT_COLS: &str = "messages, response";

/// What a read selects instead of [`SPEND_CONTENT_COLS`] when the content
/// is not wanted: the columns, as NULL.
pub(crate) const NO_SPEND_CONTENT: &str =
    "CAST(NULL AS TEXT) AS messages, CAST(NULL AS TEXT) AS response";

pub(crate) fn spend_row(r: &dyn Cols) -> Result<SpendRow> {
    Ok(SpendRow {
        request_id: r.text("request_id")?,
        call_type: r.text("call_type")?,
        api_key: r.text("api_key")?,
        spend: r.float("spend")?,
        total_tokens: r.int("total_tokens")?,
        prompt_tokens: r.int("prompt_tokens")?,
        completion_tokens: r.int("completion_tokens")?,
        start_time: r.int("start_time")?,
        end_time: r.int("end_time")?,
        model: r.text("model")?,
        model_id: r.text("model_id")?,
        model_group: r.text("model_group")?,
        api_base: r.text("api_base")?,
        custom_llm_provider: r.text("custom_llm_provider")?,
        user: r.opt_text("user_id")?,
        team_id: r.opt_text("team_id")?,
        end_user: r.opt_text("end_user")?,
        request_tags: json(r, "request_tags")?,
        metadata: obj(r, "metadata")?,
        cache_hit: r.flag("cache_hit")?,
        status: r.text("status")?,
        latency_ms: r.int("latency_ms")?,
        messages: r.opt_text("messages")?,
        response: r.opt_text("response")?,
    })
}

/// A unique-constraint violation becomes [`StoreError::Conflict`].
pub(crate) fn conflict(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(what()),
        _ => StoreError::Database(e),
    }
}
