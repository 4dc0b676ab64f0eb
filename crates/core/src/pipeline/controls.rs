//! LiteLLM's own request-body fields: read what the gateway acts on, and make
//! sure none of them reaches the upstream.

use std::time::Duration;

use ferrolite_types::JsonMap;
use serde_json::Value;

use crate::GatewayError;

/// Body fields that belong to LiteLLM, not to the model API.
const LITELLM_BODY_KEYS: &[&str] = &[
    "metadata",
    "litellm_metadata",
    "tags",
    "fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
    "max_fallbacks",
    "num_retries",
    "cache",
    "caching",
    "mock_response",
    "mock_timeout",
    "mock_testing_fallbacks",
    "mock_testing_rate_limit_error",
    "timeout",
    "stream_timeout",
    "request_timeout",
    "drop_params",
    "additional_drop_params",
    "allowed_openai_params",
    "api_key",
    "api_base",
    "base_url",
    "api_version",
    "guardrails",
    "litellm_trace_id",
    "litellm_session_id",
    "litellm_call_id",
    "proxy_server_request",
    "user_api_key",
    "no-log",
];

/// Per-request settings from the body.
#[derive(Debug, Clone, Default)]
pub struct Controls {
    pub num_retries: Option<u32>,
    pub timeout: Option<Duration>,
    /// `drop_params` in the body: drop what the provider cannot take.
    pub drop_params: Option<bool>,
    /// `allowed_openai_params`: send these even where the provider is not
    /// known to take them.
    pub allowed_openai_params: Vec<String>,
    /// `fallbacks` in the body: model groups to try after the requested one.
    pub fallbacks: Option<Vec<String>>,
    /// `metadata.tags` (or top-level `tags`), recorded with the call's spend.
    pub tags: Vec<String>,
}

impl Controls {
    /// Remove every LiteLLM field from `extra`, keeping the ones acted on.
    pub fn take(extra: &mut JsonMap) -> Result<Self, GatewayError> {
        let mut c = Controls::default();
        if !LITELLM_BODY_KEYS.iter().any(|k| extra.contains_key(*k)) {
            return Ok(c);
        }
        if let Some(v) = extra.get("num_retries").filter(|v| !v.is_null()) {
            c.num_retries = Some(
                v.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        bad("num_retries", "num_retries must be a non-negative integer")
                    })?,
            );
        }
        let tags = extra
            .get("metadata")
            .and_then(|m| m.get("tags"))
            .or_else(|| extra.get("tags"));
        if let Some(Value::Array(list)) = tags {
            c.tags = list
                .iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect();
        }
        if let Some(v) = extra.get("drop_params").filter(|v| !v.is_null()) {
            c.drop_params = Some(
                v.as_bool()
                    .ok_or_else(|| bad("drop_params", "drop_params must be true or false"))?,
            );
        }
        if let Some(v) = extra.get("allowed_openai_params").filter(|v| !v.is_null()) {
            let list = v.as_array().ok_or_else(|| {
                bad(
                    "allowed_openai_params",
                    "allowed_openai_params must be a list of parameter names",
                )
            })?;
            c.allowed_openai_params = list
                .iter()
                .filter_map(|p| p.as_str().map(str::to_owned))
                .collect();
        }
        if let Some(v) = extra.get("fallbacks").filter(|v| !v.is_null()) {
            let list = v
                .as_array()
                .ok_or_else(|| bad("fallbacks", "fallbacks must be a list of model names"))?;
            let names: Option<Vec<String>> = list
                .iter()
                .map(|f| match f {
                    Value::String(s) => Some(s.clone()),
                    Value::Object(o) => o.get("model").and_then(Value::as_str).map(str::to_owned),
                    _ => None,
                })
                .collect();
            c.fallbacks = Some(names.ok_or_else(|| {
                bad(
                    "fallbacks",
                    "fallbacks must be model names or {\"model\": ...} objects",
                )
            })?);
        }
        if let Some(v) = extra.get("timeout").filter(|v| !v.is_null()) {
            let secs = match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            };
            match secs {
                Some(s) if s.is_finite() && s > 0.0 => c.timeout = Some(Duration::from_secs_f64(s)),
                _ => {
                    return Err(bad(
                        "timeout",
                        "timeout must be a positive number of seconds",
                    ))
                }
            }
        }
        for k in LITELLM_BODY_KEYS {
            extra.remove(*k);
        }
        Ok(c)
    }
}

fn bad(param: &str, message: &str) -> GatewayError {
    GatewayError::BadRequest {
        message: message.to_owned(),
        param: Some(param.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn litellm_fields_are_removed_and_read() {
        let mut m: JsonMap = serde_json::from_value(json!({"metadata":{"a":1},"num_retries":1,"timeout":"2.5","temperature":0.1,"user":"u"})).unwrap();
        let c = Controls::take(&mut m).unwrap();
        assert_eq!(c.num_retries, Some(1));
        assert_eq!(c.timeout, Some(Duration::from_millis(2500)));
        assert_eq!(m.keys().collect::<Vec<_>>(), vec!["temperature", "user"]);
    }

    #[test]
    fn bad_values_are_400_with_param() {
        let mut m: JsonMap = serde_json::from_value(json!({"num_retries":-1})).unwrap();
        let e = Controls::take(&mut m).unwrap_err();
        assert_eq!((e.status(), e.param()), (400, Some("num_retries")));
        let mut m: JsonMap = serde_json::from_value(json!({"timeout":0})).unwrap();
        assert_eq!(Controls::take(&mut m).unwrap_err().param(), Some("timeout"));
    }
}
