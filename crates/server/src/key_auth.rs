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

/// The body with its `model` replaced (a key alias); unchanged if it is not
/// a JSON object (the handler rejects it).
fn with_body_model(bytes: bytes::Bytes, target: &str) -> bytes::Bytes {
    let Ok(serde_json::Value::Object(mut body)) = serde_json::from_slice(&bytes) else {
        return bytes;
    };
    body.insert("model".into(), serde_json::Value::String(target.to_owned()));
    serde_json::to_vec(&body).map_or(bytes, bytes::Bytes::from)
}

/// The URI with the model segment of its path replaced (a key alias).
fn with_path_model(uri: &http::Uri, asked: &str, target: &str) -> http::Uri {
    let path = uri.path();
    let replaced = [("/", "/"), ("/", ":")].iter().find_map(|(pre, post)| {
        let from = format!("{pre}{asked}{post}");
        path.find(&from).map(|at| {
            format!(
                "{}{pre}{target}{post}{}",
                &path[..at],
                &path[at + from.len()..]
            )
        })
    });
    let Some(path) = replaced else {
        return uri.clone();
    };
    let pq = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let mut parts = uri.clone().into_parts();
    match pq.parse() {
        Ok(pq) => {
            parts.path_and_query = Some(pq);
            http::Uri::from_parts(parts).unwrap_or_else(|_| uri.clone())
        }
        Err(_) => uri.clone(),
    }
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
        let in_path = from_path.is_some();
        let (mut parts, body) = req.into_parts();
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
        let bytes = match (&principal.model_alias, &info.model) {
            (Some(target), Some(asked)) if in_path => {
                parts.uri = with_path_model(&parts.uri, asked, target);
                bytes
            }
            (Some(target), Some(_)) => with_body_model(bytes, target),
            _ => bytes,
        };
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
    fn an_alias_replaces_the_model_in_the_body_or_the_path() {
        let body = bytes::Bytes::from_static(br#"{"model":"fast","messages":[],"n":1}"#);
        let out: serde_json::Value =
            serde_json::from_slice(&with_body_model(body, "gpt-4o-mini")).unwrap();
        assert_eq!(
            out,
            serde_json::json!({"model":"gpt-4o-mini","messages":[],"n":1})
        );
        let not_json = bytes::Bytes::from_static(b"not json");
        assert_eq!(with_body_model(not_json.clone(), "x"), not_json);

        let uri: http::Uri = "/v1beta/models/fast:streamGenerateContent?alt=sse&key=k"
            .parse()
            .unwrap();
        assert_eq!(
            with_path_model(&uri, "fast", "gemini-pro").to_string(),
            "/v1beta/models/gemini-pro:streamGenerateContent?alt=sse&key=k"
        );
        let uri: http::Uri = "/openai/deployments/fast/chat/completions".parse().unwrap();
        assert_eq!(
            with_path_model(&uri, "fast", "big").to_string(),
            "/openai/deployments/big/chat/completions"
        );
    }

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
