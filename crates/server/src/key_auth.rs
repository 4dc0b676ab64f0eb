//! Virtual keys at the door: what the call asks for (model, prompt size,
//! `max_tokens`) is read from the request before the handler runs, so that
//! the key's model list, budgets and limits are checked once, the same way,
//! for every dialect.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use ferrolite_core::keys::{CallInfo, KeyEnforcer};
use ferrolite_core::GatewayError;
use serde::Deserialize;

use crate::state::AppState;

/// The fields of an LLM request body that enforcement needs; everything
/// else is skipped without being decoded.
#[derive(Deserialize, Default)]
struct Peek {
    model: Option<String>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    max_output_tokens: Option<u64>,
    #[serde(rename = "generationConfig")]
    generation_config: Option<GenerationConfig>,
}

#[derive(Deserialize, Default)]
struct GenerationConfig {
    #[serde(rename = "maxOutputTokens")]
    max_output_tokens: Option<u64>,
}

/// Endpoints that call a model (and are billed).
fn is_llm_call(path: &str) -> bool {
    const ENDS: &[&str] = &[
        "/chat/completions",
        "/completions",
        "/embeddings",
        "/messages",
        "/responses",
        ":generateContent",
        ":streamGenerateContent",
    ];
    ENDS.iter().any(|e| path.ends_with(e))
}

/// A model named in the path: `/engines/{m}/…`, `/openai/deployments/{m}/…`,
/// Gemini's `/v1beta/models/{m}:generateContent`.
fn path_model(path: &str) -> Option<String> {
    for prefix in ["/engines/", "/openai/deployments/"] {
        if let Some(rest) = path.strip_prefix(prefix) {
            return rest.split('/').next().map(str::to_owned);
        }
    }
    let (_, rest) = path.split_once("/models/")?;
    let model = rest.split(':').next()?;
    (!model.is_empty()).then(|| model.to_owned())
}

/// Check a virtual key for this request and admit it: the returned request
/// carries the key's [`Principal`](ferrolite_core::auth::Principal).
pub async fn admit(
    state: &AppState,
    keys: &Arc<KeyEnforcer>,
    presented: &str,
    req: Request,
) -> Result<Request, GatewayError> {
    let path = req.uri().path();
    let billable = req.method() == http::Method::POST && is_llm_call(path);
    let (principal, req) = if billable {
        let from_path = path_model(path);
        let (parts, body) = req.into_parts();
        let limit = state.gw.max_request_bytes();
        let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
            GatewayError::PayloadTooLarge(format!(
                "Request body is too large: the limit is {} MB",
                limit / (1024 * 1024)
            ))
        })?;
        // A body that does not parse is the handler's to reject (400); the
        // key is still checked, with no model.
        let peek: Peek = serde_json::from_slice(&bytes).unwrap_or_default();
        let model = from_path.or(peek.model);
        let group = model
            .as_deref()
            .and_then(|m| state.gw.router.resolve(m))
            .map(|r| r.group.to_owned());
        let info = CallInfo {
            prompt_tokens: ferrolite_core::meter::estimate_tokens(bytes.len() as u64),
            max_output_tokens: peek
                .max_tokens
                .or(peek.max_completion_tokens)
                .or(peek.max_output_tokens)
                .or(peek.generation_config.and_then(|g| g.max_output_tokens)),
            model,
            group,
        };
        let principal = keys.authorize(presented, &info).await?;
        (principal, Request::from_parts(parts, Body::from(bytes)))
    } else {
        (keys.authorize(presented, &CallInfo::default()).await?, req)
    };
    let mut req = req;
    req.extensions_mut().insert(Arc::new(principal));
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_in_paths() {
        assert_eq!(
            path_model("/v1beta/models/gemini-2.5-flash:generateContent").as_deref(),
            Some("gemini-2.5-flash")
        );
        assert_eq!(
            path_model("/openai/deployments/az/chat/completions").as_deref(),
            Some("az")
        );
        assert_eq!(path_model("/v1/chat/completions"), None);
        assert!(is_llm_call("/v1/messages"));
        assert!(!is_llm_call("/v1/messages/count_tokens"));
        assert!(!is_llm_call("/key/generate"));
    }
}
