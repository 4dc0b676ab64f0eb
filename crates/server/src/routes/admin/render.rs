//! Entities as LiteLLM's JSON: its field names, times as RFC 3339 strings.

use ferrolite_store::{format_rfc3339, Key, SpendRow, Team, User};
use serde_json::{json, Value};

fn time(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |t| Value::String(format_rfc3339(t)))
}

pub(super) fn key(k: &Key) -> Value {
    json!({
        "token": k.token,
        "key_name": k.key_name,
        "key_alias": k.key_alias,
        "spend": k.spend,
        "max_budget": k.max_budget,
        "budget_duration": k.budget_duration,
        "budget_reset_at": time(k.budget_reset_at),
        "expires": time(k.expires),
        "models": k.models,
        "aliases": k.aliases,
        "config": {},
        "permissions": {},
        "user_id": k.user_id,
        "team_id": k.team_id,
        "max_parallel_requests": k.max_parallel_requests,
        "tpm_limit": k.tpm_limit,
        "rpm_limit": k.rpm_limit,
        "metadata": k.metadata,
        "blocked": k.blocked,
        "allowed_routes": k.allowed_routes,
        "created_at": time(Some(k.created_at)),
        "updated_at": time(Some(k.updated_at)),
        "created_by": k.created_by,
        "updated_by": k.created_by,
    })
}

/// `/key/generate` and `/key/regenerate`: the key record plus the clear key,
/// shown this once.
pub(super) fn generated(k: &Key, secret: &str) -> Value {
    let mut v = key(k);
    if let Some(o) = v.as_object_mut() {
        o.insert("key".into(), secret.into());
        o.insert("token_id".into(), k.token.clone().into());
    }
    v
}

pub(super) fn user(u: &User) -> Value {
    json!({
        "user_id": u.user_id,
        "user_email": u.user_email,
        "user_role": u.user_role,
        "max_budget": u.max_budget,
        "spend": u.spend,
        "models": u.models,
        "tpm_limit": u.tpm_limit,
        "rpm_limit": u.rpm_limit,
        "max_parallel_requests": u.max_parallel_requests,
        "budget_duration": u.budget_duration,
        "budget_reset_at": time(u.budget_reset_at),
        "metadata": u.metadata,
        "created_at": time(Some(u.created_at)),
        "updated_at": time(Some(u.updated_at)),
    })
}

pub(super) fn team(t: &Team) -> Value {
    json!({
        "team_id": t.team_id,
        "team_alias": t.team_alias,
        "members_with_roles": t.members_with_roles,
        "admins": t.members_with_roles.iter().filter(|m| m.role == "admin").map(|m| &m.user_id).collect::<Vec<_>>(),
        "members": t.members_with_roles.iter().map(|m| &m.user_id).collect::<Vec<_>>(),
        "max_budget": t.max_budget,
        "spend": t.spend,
        "models": t.models,
        "tpm_limit": t.tpm_limit,
        "rpm_limit": t.rpm_limit,
        "max_parallel_requests": t.max_parallel_requests,
        "budget_duration": t.budget_duration,
        "budget_reset_at": time(t.budget_reset_at),
        "blocked": t.blocked,
        "metadata": t.metadata,
        "created_at": time(Some(t.created_at)),
        "updated_at": time(Some(t.updated_at)),
    })
}

/// A spend log row with LiteLLM's `LiteLLM_SpendLogs` field names.
pub(super) fn spend_row(r: &SpendRow) -> Value {
    json!({
        "request_id": r.request_id,
        "call_type": r.call_type,
        "api_key": r.api_key,
        "spend": r.spend,
        "total_tokens": r.total_tokens,
        "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens,
        "startTime": format_rfc3339(r.start_time),
        "endTime": format_rfc3339(r.end_time),
        "request_duration_ms": r.latency_ms,
        "model": r.model,
        "model_id": r.model_id,
        "model_group": r.model_group,
        "api_base": r.api_base,
        "custom_llm_provider": r.custom_llm_provider,
        "user": r.user.clone().unwrap_or_default(),
        "team_id": r.team_id,
        "end_user": r.end_user,
        "request_tags": r.request_tags,
        "metadata": r.metadata,
        "cache_hit": if r.cache_hit { "True" } else { "False" },
        "status": r.status,
        "messages": stored(r.messages.as_deref()),
        "response": stored(r.response.as_deref()),
    })
}

/// A stored content column (`store_prompts_in_spend_logs`) as JSON; `{}`
/// when nothing was stored, as LiteLLM's columns default to.
pub(super) fn stored(text: Option<&str>) -> Value {
    match text {
        None => json!({}),
        Some(t) => serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.to_owned())),
    }
}
